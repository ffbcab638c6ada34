/* SPDX-License-Identifier: Apache-2.0 */
/*
 * connguard — which client connections stoke-query cuts so that slow or
 * idle clients cannot starve the others (DESIGN.md §7).
 *
 * A connection is in one of three phases: READING a request (from its
 * accept, or from the end of its previous answer when kept alive, until the
 * whole request, head and body, has arrived), WORKING (its query runs under
 * the query's own deadline) or SENDING (its answer is being written).
 *
 * - A connection READING for longer than read_timeout, or SENDING for
 *   longer than write_timeout, is cut. The deadline runs from the start of
 *   the phase, not from the last byte, so trickling bytes does not extend
 *   it (libmicrohttpd's own connection timeout restarts on every byte).
 * - READING connections hold at most max_reading slots: a connection that
 *   starts reading beyond that cuts the one that has been reading longest.
 *   A client that sends its request at once reads for a millisecond and is
 *   never the oldest, so it always gets a slot, whatever the number of slow
 *   clients and whatever their addresses.
 *
 * Cutting is shutdown(fd, SHUT_RDWR): the server's loop sees end of file
 * and closes the connection as usual. The guard never closes a descriptor;
 * the server removes a connection (connguard_close) before it closes its
 * descriptor, and every call takes the guard's lock, so a cut never reaches
 * a reused descriptor. A thread of the guard sweeps the deadlines every
 * CONNGUARD_SWEEP_MS (or the tests call connguard_sweep themselves).
 */
#ifndef STOKE_QUERY_CONNGUARD_H
#define STOKE_QUERY_CONNGUARD_H

#include <stdbool.h>
#include <stdint.h>

#define CONNGUARD_SWEEP_MS 100

struct connguard_opts {
    unsigned read_timeout_ms;  /* 0 = never cut for reading slowly */
    unsigned write_timeout_ms; /* 0 = never cut for reading answers slowly */
    unsigned max_reading;      /* 0 = no limit */
    bool manual;               /* no sweeping thread: the caller sweeps */
};

struct connguard_stats {
    uint64_t cut_reading, cut_sending, evicted; /* since start */
    unsigned open, reading;                     /* now */
};

struct connguard;
struct connguard_conn;

/* Allocates the guard (connguard_free) and starts its sweeping thread.
 * NULL when out of memory or threads. */
struct connguard *connguard_new(const struct connguard_opts *o);
/* Stops the thread; every connection must have been closed. */
void connguard_free(struct connguard *g);

/* A new connection on @fd, READING from now; may cut the connection that
 * has been reading longest. NULL when out of memory (the connection is then
 * not guarded). */
struct connguard_conn *connguard_open(struct connguard *g, int fd);
/* Phase changes; a cut connection stays cut. @c may be NULL. */
void connguard_working(struct connguard *g, struct connguard_conn *c);
void connguard_sending(struct connguard *g, struct connguard_conn *c);
void connguard_reading(struct connguard *g, struct connguard_conn *c);
/* Forgets @c (frees it); call before its descriptor is closed. */
void connguard_close(struct connguard *g, struct connguard_conn *c);

/* Cuts the connections whose phase deadline is at or before @now_us
 * (CLOCK_MONOTONIC µs). Returns how many it cut. */
unsigned connguard_sweep(struct connguard *g, int64_t now_us);

void connguard_stats(struct connguard *g, struct connguard_stats *out);

#endif
