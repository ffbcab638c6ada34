/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errmsg — how parsers and decoders of outside input (relabel rules, query
 * selectors, segments and manifests) say why they refuse it: a message that
 * names the problem in the caller's buffer (and, for the parsers, -EINVAL).
 */
#ifndef STOKE_COMMON_ERRMSG_H
#define STOKE_COMMON_ERRMSG_H

#include <stddef.h>

/* Formats @fmt into @err (at most @errlen bytes; nothing when @err is NULL
 * or @errlen 0). */
void errmsg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The same, and returns -EINVAL. */
int fail_einval(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
