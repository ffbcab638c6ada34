/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errmsg — how parsers and decoders of outside input (relabel rules, query
 * selectors, segments and manifests) say why they refuse it: a message that
 * names the problem in the caller's buffer (and, for the parsers, -EINVAL).
 */
#ifndef STOKE_COMMON_ERRMSG_H
#define STOKE_COMMON_ERRMSG_H

#include <errno.h>
#include <stddef.h>

/* Formats @fmt into @err (at most @errlen bytes; nothing when @err is NULL
 * or @errlen 0). */
void errmsg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The same, and evaluates to -EINVAL. A macro so that every caller (and the
 * static analyzer reading it) sees the error it returns. */
#define fail_einval(err, errlen, ...) (errmsg((err), (errlen), __VA_ARGS__), -EINVAL)

#endif
