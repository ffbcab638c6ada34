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
 */
#ifndef STOKE_QUERY_CANCEL_H
#define STOKE_QUERY_CANCEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define QCANCEL_POLL_MS 50

struct qcancel {
    int64_t deadline_us;     /* CLOCK_MONOTONIC µs; 0 = none */
    const atomic_bool *stop; /* true once the worker stops; may be NULL */
    /* Has the client gone? (its socket closed or reset); may be NULL. */
    bool (*gone)(void *ctx);
    void *ctx;
    atomic_int state;              /* 0, or -ETIMEDOUT / -ECANCELED once decided */
    atomic_int_fast64_t next_poll; /* µs: when @gone may be asked next */
};

/* @timeout_ms 0 = no deadline. */
void qcancel_init(struct qcancel *c, uint64_t timeout_ms, const atomic_bool *stop,
                  bool (*gone)(void *ctx), void *ctx);

/* 0 while the query may go on; -ETIMEDOUT once its deadline passed,
 * -ECANCELED once its client went away or the worker is stopping. */
int qcancel_check(struct qcancel *c);

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
