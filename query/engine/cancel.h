/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cancel — when a running query has to stop: its deadline passed, its
 * client went away, or the worker is shutting down.
 *
 * The HTTP layer fills one qcancel per request; the planner and the engine
 * call qcancel_check() in their loops (per day, manifest, section and
 * series), so no request can keep a core busy after any of the three. A
 * check costs a monotonic clock read; the client's socket is looked at (by
 * @gone) at most every QCANCEL_POLL_MS, by one thread at a time. The first
 * reason found sticks: every later check answers the same, so the layers
 * above unwind without deciding again. A NULL qcancel never cancels.
 *
 * A query may also stop because it needs more memory than it may have
 * (query/engine/qmem.h): qcancel_charge() charges its budget @mem, and a
 * refused charge is decided like a deadline, as -E2BIG (over the query's
 * limit) or -ENOBUFS (over the worker's).
 */
#ifndef STOKE_QUERY_CANCEL_H
#define STOKE_QUERY_CANCEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "query/engine/qmem.h"

#define QCANCEL_POLL_MS 50

struct qcancel {
    int64_t deadline_us;     /* CLOCK_MONOTONIC µs; 0 = none */
    const atomic_bool *stop; /* true once the worker stops; may be NULL */
    /* Has the client gone? (its socket closed or reset); may be NULL. */
    bool (*gone)(void *ctx);
    void *ctx;
    atomic_int state;              /* 0, or -ETIMEDOUT / -ECANCELED once decided */
    atomic_int_fast64_t next_poll; /* µs: when @gone may be asked next */
    struct qmem *mem;              /* the query's memory budget; NULL = none */
};

/* @timeout_ms 0 = no deadline. No memory budget (set c->mem after). */
void qcancel_init(struct qcancel *c, uint64_t timeout_ms, const atomic_bool *stop,
                  bool (*gone)(void *ctx), void *ctx);

/* 0 while the query may go on; -ETIMEDOUT once its deadline passed,
 * -ECANCELED once its client went away or the worker is stopping, -E2BIG
 * or -ENOBUFS once a memory charge was refused. */
int qcancel_check(struct qcancel *c);

/* Charges @n bytes to c->mem (qmem_charge): 0, or the query stops with
 * -E2BIG / -ENOBUFS, returned. Also 0 with no qcancel or no budget. */
int qcancel_charge(struct qcancel *c, uint64_t n);
/* Gives back @n bytes charged with qcancel_charge. */
void qcancel_release(struct qcancel *c, uint64_t n);
/* Moves a charge of *@charged bytes to @now (a table that grew); on a
 * refusal *@charged stays and the query stops. 0 or -E2BIG / -ENOBUFS. */
int qcancel_recharge(struct qcancel *c, uint64_t *charged, uint64_t now);

/* Milliseconds left before the deadline (0 when passed), or -1 without a
 * deadline. */
int64_t qcancel_left_ms(const struct qcancel *c);

/* CLOCK_MONOTONIC in µs. */
int64_t qcancel_now_us(void);

/* True when the peer of the connected socket @fd has closed or reset it
 * (a read would give end of file or an error); data waiting to be read
 * (a pipelined request) is not "gone". */
bool qcancel_socket_gone(int fd);

#endif
