/* SPDX-License-Identifier: Apache-2.0 */
/*
 * qmem — how much memory a query may hold, and the worker's queries
 * together: the budgets that keep a query worker's RSS bounded under
 * concurrent load (issue #18 item 5; DESIGN.md section 7).
 *
 * A qmem_pool is the worker-wide budget; a qmem is one query's, charged
 * to its pool as well. The engine charges what a query holds while it runs,
 * where it grows: the plan's decoded footers, each section's fetched bytes
 * and decoded form while it is merged, its merge tables (the mprof's
 * strings, stacks, values and series, as they grow), and the answer's
 * body. A charge that would take the query past its own limit fails with
 * -E2BIG (the query needs more than it may have: narrow it or raise the
 * limit); one that would take the pool past its limit fails with -ENOBUFS
 * (the worker is full now: retry). Either way the query stops (qcancel
 * carries the reason, so every loop unwinds as for a deadline) and its
 * charges go back to the pool when it ends (qmem_end), whatever it still
 * held. Limits of 0 are no limit.
 *
 * The accounting is of bytes asked of malloc for the large structures,
 * not of every allocation: small fixed costs (a request's parameters, the
 * thread stacks) are not charged, and the allocator's own overhead and
 * fragmentation come on top (BENCHMARKS.md has RSS against the budgets).
 * All functions are thread-safe; a query's decode threads charge the same
 * qmem.
 */
#ifndef STOKE_QUERY_QMEM_H
#define STOKE_QUERY_QMEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Defaults of --query-memory-limit and --total-query-memory-limit (MiB). */
#define QMEM_DEFAULT_QUERY_MB 64
#define QMEM_DEFAULT_TOTAL_MB 96

struct qmem_pool {
    uint64_t limit; /* bytes; 0 = none */
    atomic_uint_fast64_t used, peak;
    atomic_uint_fast64_t over_query, over_worker; /* queries stopped, by reason */
};

struct qmem {
    struct qmem_pool *pool; /* may be NULL */
    uint64_t limit;         /* bytes; 0 = none */
    atomic_uint_fast64_t used, peak;
};

void qmem_pool_init(struct qmem_pool *p, uint64_t limit);

/* Whether the pool has less than @need bytes left: a new query is refused
 * (429) rather than started to be stopped. False without a limit. */
bool qmem_pool_full(struct qmem_pool *p, uint64_t need);

/* A query's budget of @limit bytes, drawn from @pool (may be NULL). */
void qmem_init(struct qmem *m, struct qmem_pool *pool, uint64_t limit);

/* Charges @n bytes: 0, -E2BIG past the query's limit, -ENOBUFS past the
 * pool's. A refused charge is not kept (the caller frees or does not
 * allocate) and is counted in the pool's over_query / over_worker. A NULL
 * @m always succeeds. */
int qmem_charge(struct qmem *m, uint64_t n);

/* Gives back @n bytes charged before. */
void qmem_release(struct qmem *m, uint64_t n);

/* Moves the charge from @old to @now bytes (a table that grew or shrank):
 * qmem_charge of the growth, qmem_release of a shrink. */
int qmem_resize(struct qmem *m, uint64_t old, uint64_t now);

/* The query is over: whatever it still holds goes back to the pool. */
void qmem_end(struct qmem *m);

/* The message for a charge refused with @rc (-E2BIG or -ENOBUFS), in @buf. */
const char *qmem_error(const struct qmem *m, int rc, char *buf, unsigned len);

#endif
