/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grpc_server — the receiver's gRPC listener (--receive-grpc ADDR): one
 * thread polling the listening socket and its connections, each a
 * grpc_conn (ingest/grpc.h) over a non-blocking socket.
 *
 * Owns: the thread, the sockets and the bounds no request can move:
 *   - at most max_conns connections (one past it is accepted and closed);
 *   - a connection that sends nothing and has nothing left to take for
 *     idle_s seconds is closed (a stalled or trickling client holds its
 *     bytes for no longer);
 *   - a connection is read only once what it was answered has been
 *     written (a client that does not read its answers stops being read),
 *     and at most 64 KiB a turn, so one fast client does not starve the
 *     others;
 *   - the loop sleeps in poll() when nothing happens: a garbage or slow
 *     client costs a wake-up per packet, never a spinning core.
 * Calls run on this thread, one at a time; the HTTP receiver's thread is
 * another, so neither blocks the other beyond the writers' lock.
 * grpc_server_free wakes the thread (an eventfd), closes every connection
 * and joins it.
 */
#ifndef STOKE_INGEST_GRPC_SERVER_H
#define STOKE_INGEST_GRPC_SERVER_H

#include <stddef.h>

#include "ingest/grpc.h"

struct grpc_server_opts {
    const char *listen; /* HOST:PORT (port 0: any) */
    const char *flag;   /* the option it came from, for errors */
    struct grpc_limits limits;
    grpc_handler_fn handler;
    void *ctx;
    unsigned max_conns; /* 256 when 0 */
    unsigned idle_s;    /* 60 when 0 */
};

struct grpc_server;

/* Listens and starts the thread: NULL with @err when it cannot. */
struct grpc_server *grpc_server_new(const struct grpc_server_opts *o, char *err, size_t errlen);
unsigned grpc_server_port(const struct grpc_server *s);
void grpc_server_free(struct grpc_server *s);

#endif
