/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/qmem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

static void raise_peak(atomic_uint_fast64_t *peak, uint64_t v)
{
    uint_fast64_t p = atomic_load_explicit(peak, memory_order_relaxed);

    while (v > p && !atomic_compare_exchange_weak(peak, &p, v))
        ;
}

/* Adds @n to @used unless that passes @limit (0 = none): 0 or -1. */
static int take(atomic_uint_fast64_t *used, atomic_uint_fast64_t *peak, uint64_t limit, uint64_t n)
{
    uint_fast64_t u = atomic_load_explicit(used, memory_order_relaxed), v;

    do {
        v = u + n;
        if (v < u || (limit && v > limit))
            return -1;
    } while (!atomic_compare_exchange_weak(used, &u, v));
    raise_peak(peak, v);
    return 0;
}

void qmem_pool_init(struct qmem_pool *p, uint64_t limit)
{
    p->limit = limit;
    atomic_init(&p->used, 0);
    atomic_init(&p->peak, 0);
    atomic_init(&p->over_query, 0);
    atomic_init(&p->over_worker, 0);
}

bool qmem_pool_full(struct qmem_pool *p, uint64_t need)
{
    if (!p || !p->limit)
        return false;
    uint64_t u = atomic_load(&p->used);
    return u >= p->limit || p->limit - u < need;
}

void qmem_init(struct qmem *m, struct qmem_pool *pool, uint64_t limit)
{
    m->pool = pool;
    m->limit = limit;
    atomic_init(&m->used, 0);
    atomic_init(&m->peak, 0);
}

int qmem_charge(struct qmem *m, uint64_t n)
{
    if (!m || !n)
        return 0;
    if (take(&m->used, &m->peak, m->limit, n)) {
        if (m->pool)
            atomic_fetch_add(&m->pool->over_query, 1);
        return -E2BIG;
    }
    if (m->pool && take(&m->pool->used, &m->pool->peak, m->pool->limit, n)) {
        atomic_fetch_sub(&m->used, n);
        atomic_fetch_add(&m->pool->over_worker, 1);
        return -ENOBUFS;
    }
    return 0;
}

void qmem_release(struct qmem *m, uint64_t n)
{
    if (!m || !n)
        return;
    /* Never below zero: a release of more than was charged is a caller's
     * bug, and must not wrap the pool. */
    uint_fast64_t u = atomic_load(&m->used);
    while (!atomic_compare_exchange_weak(&m->used, &u, u >= n ? u - n : 0))
        ;
    if (n > u)
        n = u;
    if (m->pool)
        atomic_fetch_sub(&m->pool->used, n);
}

int qmem_resize(struct qmem *m, uint64_t old, uint64_t now)
{
    if (now > old)
        return qmem_charge(m, now - old);
    qmem_release(m, old - now);
    return 0;
}

void qmem_end(struct qmem *m)
{
    if (!m)
        return;
    uint64_t u = atomic_exchange(&m->used, 0);
    if (m->pool && u)
        atomic_fetch_sub(&m->pool->used, u);
}

/* @n bytes as "N MiB" when a whole number of MiB, else "N KiB" (rounded up). */
static void size_str(uint64_t n, char *buf, size_t len)
{
    if (n >= 1u << 20 && !(n & ((1u << 20) - 1)))
        snprintf(buf, len, "%" PRIu64 " MiB", n >> 20);
    else
        snprintf(buf, len, "%" PRIu64 " KiB", (n + 1023) >> 10);
}

const char *qmem_error(const struct qmem *m, int rc, char *buf, unsigned len)
{
    char sz[32];

    if (rc == -E2BIG) {
        size_str(m ? m->limit : 0, sz, sizeof(sz));
        snprintf(buf, len,
                 "query needs more than %s of memory; narrow the range or the selector, or raise "
                 "--query-memory-limit",
                 sz);
    } else {
        size_str(m && m->pool ? m->pool->limit : 0, sz, sizeof(sz));
        snprintf(buf, len,
                 "the worker's queries hold all of its memory budget of %s "
                 "(--total-query-memory-limit); retry",
                 sz);
    }
    return buf;
}
