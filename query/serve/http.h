/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http — stoke-query's HTTP server (docs/api.md) on libmicrohttpd: the
 * router and the connections.
 *
 * Routes each request to the native API (native_api.h), the Pyroscope API
 * (pyroscope_api.h), the page, /healthz or /metrics: unknown paths 404,
 * wrong methods 405. URLs are capped at HTTP_MAX_URI bytes and
 * HTTP_MAX_PARAMS parameters (414, 400), headers by the connection memory
 * limit, POST bodies by HTTP_MAX_BODY. Routing is a plain function
 * (http_route) so the unit tests reach it without sockets. With --auth-token-file it also
 * refuses requests without a valid token (401) as soon as their head has
 * arrived, before any routing and without reading their body.
 *
 * Serving (docs/api.md, Limits): one libmicrohttpd thread polls every
 * connection (epoll), so an idle or slow client costs a descriptor, not a
 * thread. Queries run on a bounded pool of threads (429 when it and its
 * queue are full; peers' shard reads have a pool of their own, so two
 * workers waiting on each other never deadlock); their connections are
 * suspended meanwhile. connguard cuts connections that read or send too
 * slowly and keeps room for clients that send their request at once. Each
 * query has a deadline and stops when its client goes away or the server
 * stops (query/engine/cancel.h), or when it needs more memory than its
 * budget (query/engine/qmem.h: 422 past the query's own limit, 429 with
 * Retry-After when all queries together hold the worker's; a new query is
 * refused with 429 while less than a sixteenth of a query's limit is left
 * of the worker's). Every answer that ran a query carries the header
 * X-Stoke-Skipped: N, the number of segments and manifests it had to skip.
 */
#ifndef STOKE_QUERY_HTTP_H
#define STOKE_QUERY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/engine/cache.h"
#include "query/engine/cancel.h"
#include "query/engine/engine.h"
#include "common/auth.h"
#include "query/serve/request.h"

/* Defaults of the limits in struct http_opts. */
#define HTTP_DEFAULT_QUERY_TIMEOUT_MS 60000
#define HTTP_DEFAULT_READ_TIMEOUT_MS  10000
#define HTTP_DEFAULT_WRITE_TIMEOUT_MS 60000
#define HTTP_DEFAULT_MAX_CONNECTIONS  1024
#define HTTP_DEFAULT_MAX_QUERIES      8
/* Descriptors kept for the store, the cache and peers. */
#define HTTP_FD_RESERVE 64

struct sym_dbgd;

struct http_opts {
    const char *listen; /* "HOST:PORT", ":PORT"; port 0 = any */
    struct engine *engine;
    struct cache *cache; /* for /metrics; may be NULL */
    const char *tenant;  /* default tenant */
    const char *web_dir; /* serve WEB_DIR/index.html instead of the embedded page */
    /* When set, every request but GET/HEAD of /healthz, / and /index.html
     * needs a token (common/auth.h); others get 401. */
    const struct auth *auth;
    /* Limits; 0 = the default above. */
    unsigned query_timeout_ms; /* a request's queries, from its last byte */
    unsigned read_timeout_ms;  /* a whole request (head and body), from its first */
    unsigned write_timeout_ms; /* an answer, from its first byte */
    unsigned max_connections;  /* at most the descriptors left (see http_limits) */
    unsigned max_per_ip;       /* 0 = no per-address limit */
    unsigned max_queries;      /* running at once; as many more may wait */
    /* Memory budgets (query/engine/qmem.h), bytes: one query's, and all
     * running queries' together. */
    uint64_t query_memory, total_query_memory;
    /* Deferred symbolization: the largest debug file uploaded (0 =
     * DSYM_DEFAULT_MAX_FILE), and the worker's debuginfod client for
     * /metrics (NULL: none). */
    uint64_t debuginfo_max_bytes;
    struct sym_dbgd *dbgd;
};

/* The limits a server with @o runs with: defaults filled in, connections
 * capped by @nofile (the descriptor limit) minus HTTP_FD_RESERVE, and the
 * connections that may be reading a request at once (3/4 of them; the rest
 * stay free for requests being answered). */
struct http_limits {
    unsigned query_timeout_ms, read_timeout_ms, write_timeout_ms;
    unsigned max_connections, max_reading, max_per_ip, max_queries, max_waiting;
    uint64_t query_memory, total_query_memory; /* bytes */
};
void http_limits(const struct http_opts *o, uint64_t nofile, struct http_limits *out);

struct http_server;

/* Starts serving on its own threads. NULL with a message in @err. */
struct http_server *http_start(const struct http_opts *o, char *err, size_t errlen);
/* The limits it runs with. */
const struct http_limits *http_server_limits(const struct http_server *s);
/* The port actually bound (useful with port 0). */
unsigned http_port(const struct http_server *s);
void http_stop(struct http_server *s);

/* Handles one request. @body is the POST body (may be NULL). */
void http_route(struct http_server *s, const char *method, const char *path, http_param_fn param,
                void *ctx, const uint8_t *body, size_t body_len, struct http_response *out);

/* http_route with request headers (@header, may be NULL), which the
 * Connect endpoints need (Content-Type, X-Scope-OrgID). Its queries have
 * the server's deadline and stop with the server. */
void http_route_headers(struct http_server *s, const char *method, const char *path,
                        http_param_fn param, http_param_fn header, void *ctx, const uint8_t *body,
                        size_t body_len, struct http_response *out);

/* One request, for http_handle. */
struct http_request {
    const char *method, *path;
    http_param_fn param, header; /* header may be NULL */
    void *ctx;                   /* for param and header */
    const uint8_t *body;
    size_t body_len;
    struct qcancel *cancel; /* its queries stop when it fires; NULL = never */
};
void http_handle(struct http_server *s, const struct http_request *rq, struct http_response *out);

/* The deadline of a request's queries: the server's, or less when a
 * Connect client asks for less (Connect-Timeout-Ms, looked up through
 * @header, may be NULL). */
uint64_t http_query_timeout_ms(const struct http_server *s, const char *path, http_param_fn header,
                               void *ctx);

/* Sets the flag every running query checks: they stop at once. */
void http_cancel_all(struct http_server *s);

/* False when @s requires a token and the request's Authorization header
 * (looked up through @header, may be NULL) does not carry one. */
bool http_authorized(const struct http_server *s, const char *method, const char *path,
                     http_param_fn header, void *ctx);

/* A server without a listener, for tests: routes only. */
struct http_server *http_new_unbound(const struct http_opts *o);

#endif
