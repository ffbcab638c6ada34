/* SPDX-License-Identifier: Apache-2.0 */
#include "query/serve/connguard.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "query/engine/cancel.h"

enum phase { READING, WORKING, SENDING, CUT };

struct connguard_conn {
    int fd;
    enum phase phase;
    int64_t since_us;
    struct connguard_conn *prev, *next; /* in the phase's list (READING, SENDING) */
};

/* Connections of one phase, oldest first: entries are appended when they
 * enter the phase, so the head is always the next to expire. */
struct clist {
    struct connguard_conn *head, *tail;
    unsigned n;
};

struct connguard {
    struct connguard_opts o;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop;
    struct clist reading, sending;
    unsigned open;
    uint64_t cut_reading, cut_sending, evicted;
};

static struct clist *list_of(struct connguard *g, enum phase p)
{
    return p == READING ? &g->reading : p == SENDING ? &g->sending : NULL;
}

static void unlink_conn(struct connguard *g, struct connguard_conn *c)
{
    struct clist *l = list_of(g, c->phase);

    if (!l)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
}

static void enter(struct connguard *g, struct connguard_conn *c, enum phase p)
{
    struct clist *l;

    unlink_conn(g, c);
    c->phase = p;
    c->since_us = qcancel_now_us();
    if (!(l = list_of(g, p)))
        return;
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->n++;
}

static void cut(struct connguard *g, struct connguard_conn *c)
{
    unlink_conn(g, c);
    c->phase = CUT;
    /* The descriptor is still open: the server closes it only after
     * connguard_close, which waits for this lock. */
    shutdown(c->fd, SHUT_RDWR);
}

/* Keeps READING connections within max_reading, cutting the oldest. */
static void evict(struct connguard *g)
{
    while (g->o.max_reading && g->reading.n > g->o.max_reading && g->reading.head) {
        cut(g, g->reading.head);
        g->evicted++;
    }
}

static unsigned sweep_locked(struct connguard *g, int64_t now)
{
    unsigned n = 0;
    int64_t rt = (int64_t)g->o.read_timeout_ms * 1000, wt = (int64_t)g->o.write_timeout_ms * 1000;

    while (rt && g->reading.head && g->reading.head->since_us + rt <= now) {
        cut(g, g->reading.head);
        g->cut_reading++;
        n++;
    }
    while (wt && g->sending.head && g->sending.head->since_us + wt <= now) {
        cut(g, g->sending.head);
        g->cut_sending++;
        n++;
    }
    return n;
}

unsigned connguard_sweep(struct connguard *g, int64_t now_us)
{
    pthread_mutex_lock(&g->lock);
    unsigned n = sweep_locked(g, now_us);
    pthread_mutex_unlock(&g->lock);
    return n;
}

static void *sweeper(void *arg)
{
    struct connguard *g = arg;
    struct timespec ts;

    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += CONNGUARD_SWEEP_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g->cv, &g->lock, &ts);
        if (!g->stop)
            sweep_locked(g, qcancel_now_us());
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

struct connguard *connguard_new(const struct connguard_opts *o)
{
    struct connguard *g = calloc(1, sizeof(*g));
    pthread_condattr_t ca;

    if (!g)
        return NULL;
    g->o = *o;
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!o->manual) {
        if (pthread_create(&g->thread, NULL, sweeper, g)) {
            connguard_free(g);
            return NULL;
        }
        g->running = true;
    }
    return g;
}

void connguard_free(struct connguard *g)
{
    if (!g)
        return;
    if (g->running) {
        pthread_mutex_lock(&g->lock);
        g->stop = true;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

struct connguard_conn *connguard_open(struct connguard *g, int fd)
{
    struct connguard_conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->fd = fd;
    c->phase = WORKING; /* in no list until enter() */
    pthread_mutex_lock(&g->lock);
    g->open++;
    enter(g, c, READING);
    evict(g);
    pthread_mutex_unlock(&g->lock);
    return c;
}

static void change(struct connguard *g, struct connguard_conn *c, enum phase p)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->phase != CUT) {
        enter(g, c, p);
        if (p == READING)
            evict(g);
    }
    pthread_mutex_unlock(&g->lock);
}

void connguard_working(struct connguard *g, struct connguard_conn *c)
{
    change(g, c, WORKING);
}

void connguard_sending(struct connguard *g, struct connguard_conn *c)
{
    change(g, c, SENDING);
}

void connguard_reading(struct connguard *g, struct connguard_conn *c)
{
    change(g, c, READING);
}

void connguard_close(struct connguard *g, struct connguard_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    unlink_conn(g, c);
    g->open--;
    pthread_mutex_unlock(&g->lock);
    free(c);
}

void connguard_stats(struct connguard *g, struct connguard_stats *out)
{
    pthread_mutex_lock(&g->lock);
    out->cut_reading = g->cut_reading;
    out->cut_sending = g->cut_sending;
    out->evicted = g->evicted;
    out->open = g->open;
    out->reading = g->reading.n;
    pthread_mutex_unlock(&g->lock);
}
