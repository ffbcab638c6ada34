/* SPDX-License-Identifier: Apache-2.0 */
/*
 * listen — a listening address given as HOST:PORT ("127.0.0.1:4040",
 * "[::1]:0", ":4040" for every address) resolved for bind(): what the
 * query worker's --listen and the agent's --receive take.
 */
#ifndef STOKE_COMMON_LISTEN_H
#define STOKE_COMMON_LISTEN_H

#include <stddef.h>

struct addrinfo;

/* Resolves @addr (numeric port) into *@ai (free with freeaddrinfo). 0, or
 * -EINVAL with @err naming @flag and the problem. */
int listen_resolve(const char *addr, const char *flag, struct addrinfo **ai, char *err,
                   size_t errlen);

#endif
