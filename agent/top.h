/* SPDX-License-Identifier: Apache-2.0 */
/*
 * top — the machine's hottest functions, for `stoke-agent --top`.
 *
 * Owns: an open-addressing table of function name → self and total sample
 * counts. A stack adds its count to the self of its leaf frame and to the
 * total of every distinct function on it (recursion counted once).
 */
#ifndef STOKE_TOP_H
#define STOKE_TOP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct top;

struct top *top_new(void);
void top_free(struct top *t);

/* @names: the stack's frame names, leaf first. 0 or -ENOMEM. */
int top_add(struct top *t, const char *const *names, size_t n, uint64_t count);

uint64_t top_total(const struct top *t);

/* Prints the @n hottest functions by self samples as a table. */
void top_print(const struct top *t, FILE *out, size_t n, uint64_t period_ns);

#endif
