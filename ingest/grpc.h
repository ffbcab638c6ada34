/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grpc — the receiver's gRPC side: unary calls over HTTP/2 cleartext
 * (h2c with prior knowledge, what OTLP/gRPC exporters with insecure=true
 * speak), one connection at a time as a byte stream in and out; the
 * sockets and the polling thread are grpc_server's.
 *
 * Owns: one nghttp2 server session per connection (HTTP/2 framing, HPACK
 * and flow control are libnghttp2's: Debian's, well kept, and exactly what
 * should not be written by hand), the streams' request messages and their
 * answers. A call is answered once: the handler's message framed as gRPC
 * (5-byte prefix) followed by trailers with grpc-status 0, or a
 * trailers-only answer with grpc-status and grpc-message (percent-encoded
 * as the gRPC spec wants). What is refused before the handler runs:
 *   - another :path than GRPC_EXPORT_PATH or another method than POST:
 *     UNIMPLEMENTED (12);
 *   - a content-type not starting with application/grpc: HTTP 415 with
 *     INVALID_ARGUMENT (3), as grpc-go answers;
 *   - a message longer than max_msg (the prefix says so, or the data
 *     does), or past max_decoded after gunzip: RESOURCE_EXHAUSTED (8);
 *   - request bytes past the shared pending budget (*inflight over
 *     pending, counted with the HTTP receiver's): RESOURCE_EXHAUSTED
 *     with grpc-status-details-bin's RetryInfo (busy_retry_s), the one
 *     RESOURCE_EXHAUSTED a client should retry (the too-large ones have
 *     none: sending the same message again cannot help);
 *   - no message, two messages, or one cut short: INVALID_ARGUMENT;
 *   - the compressed flag under grpc-encoding gzip is gunzipped; under
 *     another encoding UNIMPLEMENTED (with grpc-accept-encoding), without
 *     one INVALID_ARGUMENT;
 *   - metadata past GRPC_MAX_HEADERS bytes on one stream: the stream is
 *     reset.
 * Memory per connection: at most GRPC_MAX_STREAMS streams, each holding
 * no more than max_msg + 5 request bytes, all of them under the budget.
 */
#ifndef STOKE_INGEST_GRPC_H
#define STOKE_INGEST_GRPC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/grpc_frame.h"

#define GRPC_MAX_STREAMS 16
#define GRPC_MAX_HEADERS (16u << 10)

/* One call's request, as the handler gets it. */
struct grpc_call {
    const char *authorization, *tenant; /* metadata; NULL when not sent */
    const uint8_t *msg;                 /* the request message, gunzipped */
    size_t len;
};
/* The handler's answer: code GRPC_OK with @body (malloc'd, taken over), or
 * an error code with @message, and with @retry_s > 0 a RetryInfo of that
 * many seconds in grpc-status-details-bin (retry, after that long). */
struct grpc_reply {
    unsigned code;
    unsigned retry_s;
    char message[512];
    uint8_t *body;
    size_t len;
};
typedef void (*grpc_handler_fn)(void *ctx, const struct grpc_call *call, struct grpc_reply *out);

/* A call refused before the handler ran (every refusal listed above but
 * the reset): @status is what the HTTP receiver answers for the same
 * (400, 404, 413, 415, 429, 503), @bytes the request bytes read of it. */
typedef void (*grpc_refused_fn)(void *ctx, unsigned status, size_t bytes);

struct grpc_limits {
    size_t max_msg;          /* a message on the wire */
    size_t max_decoded;      /* after gunzip */
    atomic_size_t *inflight; /* request bytes held, shared; NULL: no budget */
    size_t pending;          /* the budget */
    unsigned busy_retry_s;   /* RetryInfo of the budget's refusal (1 when 0) */
    grpc_refused_fn refused; /* called with the handler's ctx; NULL: none */
};

struct grpc_conn;

/* A server session (SETTINGS queued): NULL when out of memory. */
struct grpc_conn *grpc_conn_new(const struct grpc_limits *l, grpc_handler_fn h, void *ctx);
/* Feeds bytes read from the peer; handlers run from here. 0, or -EPROTO
 * when the peer broke HTTP/2 (a GOAWAY is queued: send it, then close),
 * or -ENOMEM. */
int grpc_conn_recv(struct grpc_conn *c, const uint8_t *p, size_t n);
/* What to write to the peer next: up to about 64 KiB in *@out, valid until
 * the next call; 0 bytes when nothing is queued, -ENOMEM. Whatever it
 * returns must be written before more is read (that is the backpressure). */
long grpc_conn_pending(struct grpc_conn *c, const uint8_t **out);
/* True once both sides are done (GOAWAY sent and nothing left to send). */
bool grpc_conn_done(const struct grpc_conn *c);
void grpc_conn_free(struct grpc_conn *c);

#endif
