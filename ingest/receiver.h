/* SPDX-License-Identifier: Apache-2.0 */
/*
 * receiver — the agent's receiver (--receive ADDR): OTLP profiles over
 * HTTP (POST /v1development/profiles, protobuf, gzip) and, on an address
 * of its own (--receive-grpc ADDR, ingest/grpc_server.h), over gRPC
 * (ProfilesService/Export, each call handled as the same OTLP/HTTP
 * request: one parse and write path, the same limits), Pyroscope's
 * POST /ingest (pprof raw or multipart, folded) and its Connect
 * push.v1.PusherService/Push, written into the agent's own per-host
 * segments, per tenant (X-Scope-OrgID), exactly as its own samples are:
 * there is no ingest tier.
 *
 * Owns: the libmicrohttpd daemon (one polling thread: requests are parsed
 * on it, one at a time), a writer (seg_upload) per tenant that arrives
 * (the agent's own writer serves its own tenant), and the bounds:
 *   - a body larger than max_body on the wire (Content-Length, or as it
 *     arrives) is answered 413 without reading on; past max_decoded after
 *     gunzip, 413 too;
 *   - bodies being read at once, HTTP and gRPC together, hold at most
 *     pending_bytes: past it a request gets 429 with Retry-After (gRPC:
 *     RESOURCE_EXHAUSTED with a RetryInfo of as long), as does a tenant whose upload
 *     queue is three quarters full (seg_upload_full) — memory never grows
 *     with the number or speed of clients;
 *   - at most max_tenants tenants (503 for a new one past it);
 *   - with an auth token file, 401 without one of its tokens.
 * A request is parsed and checked whole (every profile through
 * seg_pprof_check) before anything is written: a bad one writes nothing
 * and gets a 4xx naming the problem.
 *
 * Threads: the daemon's thread and the gRPC thread write (one at a time,
 * under the writers' lock); the agent's window loop writes its
 * own windows between receiver_lock/receiver_unlock and calls
 * receiver_tick once a second so an idle receiver still flushes.
 */
#ifndef STOKE_INGEST_RECEIVER_H
#define STOKE_INGEST_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exporter/segment_upload.h"
#include "store/store.h"

struct auth;

struct receiver_opts {
    const char *listen;             /* HOST:PORT (port 0: any); NULL: no server (tests) */
    const char *listen_grpc;        /* HOST:PORT of the gRPC server; NULL: none */
    size_t max_body;                /* 16 MiB when 0 */
    size_t max_decoded;             /* 64 MiB when 0 */
    size_t pending_bytes;           /* 64 MiB when 0 */
    unsigned max_tenants;           /* 16 when 0 */
    const struct auth *auth;        /* NULL: no token needed; not taken over */
    struct seg_upload_opts upload;  /* each new tenant's writer (store and tenant replaced) */
    const struct store_opts *store; /* each new tenant opens its own; must outlive @r */
    struct seg_upload *own; /* the agent's writer of upload.tenant; NULL: none (not taken) */
};

/* What the agent's /metrics shows (agent/metrics.c): requests by
 * protocol (the path and, for OTLP and Push, the encoding) and status
 * class, body bytes by protocol, refusals by reason. */
enum rx_protocol {
    RX_OTLP,      /* POST /v1development/profiles, protobuf */
    RX_OTLP_JSON, /* the same, JSON */
    RX_OTLP_GRPC, /* ProfilesService/Export over gRPC (--receive-grpc) */
    RX_INGEST,    /* POST /ingest */
    RX_PUSH,      /* Connect Push, protobuf */
    RX_PUSH_JSON, /* the same, JSON */
    RX_OTHER,     /* any other path */
    RX_PROTOCOLS
};
enum rx_class { RX_2XX, RX_4XX, RX_5XX, RX_CLASSES };
enum rx_reason {
    RX_TOO_LARGE,    /* 413 */
    RX_BUSY,         /* 429: pending bytes or a full upload queue */
    RX_BAD_INPUT,    /* 400, 404, 405, 415 */
    RX_UNAUTHORIZED, /* 401 */
    RX_UNAVAILABLE,  /* 503: the tenant cap, out of memory */
    RX_INTERNAL,     /* 500: writing failed */
    RX_REASONS
};
extern const char *const rx_protocol_names[RX_PROTOCOLS]; /* "otlp", "otlp_json", ... */
extern const char *const rx_reason_names[RX_REASONS];     /* "too_large", "busy", ... */

struct receiver_stats {
    uint64_t requests, profiles, bytes; /* accepted requests, profiles written, body bytes */
    uint64_t samples;                   /* sample rows of the profiles written */
    uint64_t rejected_profiles;         /* OTLP partial success */
    uint64_t status_4xx, status_413, status_429, status_5xx;
    uint64_t tenants;
    uint64_t answers[RX_PROTOCOLS][RX_CLASSES];
    uint64_t bytes_received[RX_PROTOCOLS]; /* every body, accepted or not (as far as read) */
    uint64_t refused[RX_REASONS];
};

/* One tenant's accepted requests and what they wrote. */
struct receiver_tenant_stats {
    char name[65];
    uint64_t requests, profiles, samples;
};

struct receiver;

struct receiver *receiver_new(const struct receiver_opts *o, char *err, size_t errlen);
unsigned receiver_port(const struct receiver *r);
unsigned receiver_grpc_port(const struct receiver *r); /* 0: no gRPC server */
void receiver_lock(struct receiver *r);
void receiver_unlock(struct receiver *r);
/* Flushes writers whose flush interval has passed. */
void receiver_tick(struct receiver *r);
void receiver_get_stats(struct receiver *r, struct receiver_stats *out);
/* Up to @cap tenants' counters into @out; returns how many there are
 * (the tenants arrived so far, at most max_tenants). */
size_t receiver_get_tenant_stats(struct receiver *r, struct receiver_tenant_stats *out, size_t cap);
/* Stops the daemon, flushes and frees the tenants' writers (up to
 * @timeout_ms for their uploads). The own writer is left to the caller. */
void receiver_free(struct receiver *r, unsigned timeout_ms);

/* One request, as the daemon hands it over (and the unit tests do). */
typedef const char *(*rx_lookup_fn)(void *ctx, const char *name);
struct rx_request {
    const char *method, *path;
    rx_lookup_fn header, param;
    void *ctx;
    const uint8_t *body;
    size_t len;
    bool grpc; /* an Export call over gRPC, counted as protocol otlp_grpc */
};
struct rx_response {
    unsigned status;
    char *body; /* malloc'd */
    size_t len;
    const char *content_type;
    unsigned retry_after; /* seconds; 0: no header */
    char message[512];    /* an error's message, as it is in the body */
};
void receiver_handle(struct receiver *r, const struct rx_request *q, struct rx_response *out);

#endif
