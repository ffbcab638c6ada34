/* SPDX-License-Identifier: Apache-2.0 */
/*
 * label_limiter — the agent's cardinality cap: at most @max_values distinct
 * values per label name (except service_name and host_name, which are never
 * capped). Values past the cap are replaced by "_overflow_" and counted.
 *
 * Owns one set of the values seen per label name (common/intern.h); the
 * cap is never
 * exceeded, even when memory to track a value runs out (the value then
 * counts as over the cap).
 */
#ifndef STOKE_LABEL_LIMITER_H
#define STOKE_LABEL_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#include "common/labels.h"

struct label_limiter;
/* Allocates. label_limiter_apply(NULL, ls) does nothing. */
struct label_limiter *label_limiter_new(size_t max_values);
void label_limiter_free(struct label_limiter *l);
void label_limiter_apply(struct label_limiter *l, struct label_set *ls);
uint64_t label_limiter_overflows(const struct label_limiter *l);

#endif
