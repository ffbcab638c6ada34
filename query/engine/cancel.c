/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/cancel.h"

#include <errno.h>
#include <sys/socket.h>
#include <time.h>

int64_t qcancel_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void qcancel_init(struct qcancel *c, uint64_t timeout_ms, const atomic_bool *stop,
                  bool (*gone)(void *ctx), void *ctx)
{
    int64_t now = qcancel_now_us();

    /* A deadline beyond a century is no deadline (and cannot overflow). */
    c->deadline_us =
        timeout_ms && timeout_ms < 100ULL * 365 * 86400000 ? now + (int64_t)timeout_ms * 1000 : 0;
    c->stop = stop;
    c->gone = gone;
    c->ctx = ctx;
    atomic_init(&c->state, 0);
    atomic_init(&c->next_poll, now + QCANCEL_POLL_MS * 1000);
    c->mem = NULL;
}

static int decide(struct qcancel *c, int why)
{
    int expected = 0;

    /* The first reason wins; a later one does not overwrite it. */
    if (!atomic_compare_exchange_strong(&c->state, &expected, why))
        return expected;
    return why;
}

int qcancel_check(struct qcancel *c)
{
    int st;

    if (!c)
        return 0;
    if ((st = atomic_load_explicit(&c->state, memory_order_relaxed)))
        return st;
    if (c->stop && atomic_load_explicit(c->stop, memory_order_relaxed))
        return decide(c, -ECANCELED);
    if (!c->deadline_us && !c->gone)
        return 0;
    int64_t now = qcancel_now_us();
    if (c->deadline_us && now >= c->deadline_us)
        return decide(c, -ETIMEDOUT);
    if (c->gone) {
        int_fast64_t due = atomic_load_explicit(&c->next_poll, memory_order_relaxed);
        /* One thread polls per interval: the one that moves the mark. */
        if (now >= due &&
            atomic_compare_exchange_strong(&c->next_poll, &due, now + QCANCEL_POLL_MS * 1000) &&
            c->gone(c->ctx))
            return decide(c, -ECANCELED);
    }
    return 0;
}

int qcancel_charge(struct qcancel *c, uint64_t n)
{
    int rc;

    if (!c || !c->mem)
        return 0;
    /* A query already stopping takes no more. */
    if ((rc = atomic_load_explicit(&c->state, memory_order_relaxed)))
        return rc;
    if ((rc = qmem_charge(c->mem, n)))
        return decide(c, rc);
    return 0;
}

void qcancel_release(struct qcancel *c, uint64_t n)
{
    if (c)
        qmem_release(c->mem, n);
}

int qcancel_recharge(struct qcancel *c, uint64_t *charged, uint64_t now)
{
    int rc = 0;

    if (now > *charged)
        rc = qcancel_charge(c, now - *charged);
    else
        qcancel_release(c, *charged - now);
    if (!rc)
        *charged = now;
    return rc;
}

int64_t qcancel_left_ms(const struct qcancel *c)
{
    if (!c || !c->deadline_us)
        return -1;
    int64_t left = c->deadline_us - qcancel_now_us();
    return left > 0 ? (left + 999) / 1000 : 0;
}

bool qcancel_socket_gone(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n > 0)
        return false;
    if (n == 0)
        return true;
    return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}
