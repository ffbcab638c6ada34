/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http — stoke-query's HTTP API (docs/api.md) on libmicrohttpd.
 *
 * Owns request validation and response rendering; the engine does the
 * work. Every parameter is checked before any store access: bad input is a
 * 4xx with {"error": "<parameter>: <problem>"}, unknown paths 404, wrong
 * methods 405. URLs and headers are capped by the connection memory limit,
 * POST bodies by HTTP_MAX_BODY. Routing is a plain function (http_route)
 * so the unit tests reach it without sockets. With --auth-token-file it
 * also refuses requests without a valid token (401) before any routing.
 */
#ifndef STOKE_QUERY_HTTP_H
#define STOKE_QUERY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/auth.h"
#include "query/cache.h"
#include "query/engine.h"

#define HTTP_MAX_BODY (64 * 1024)

struct http_opts {
    const char *listen; /* "HOST:PORT", ":PORT"; port 0 = any */
    struct engine *engine;
    struct cache *cache; /* for /metrics; may be NULL */
    const char *tenant;  /* default tenant */
    const char *web_dir; /* serve WEB_DIR/index.html instead of the embedded page */
    /* When set, every request but GET/HEAD of /healthz, / and /index.html
     * needs a token (query/auth.h); others get 401. */
    const struct auth *auth;
};

struct http_server;

/* Starts serving on its own threads. NULL with a message in @err. */
struct http_server *http_start(const struct http_opts *o, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
unsigned http_port(const struct http_server *s);
void http_stop(struct http_server *s);

struct http_response {
    int status;
    const char *content_type;
    uint8_t *body; /* malloc'd */
    size_t len;
};

/* Fills @r with status @status and the JSON body {"error": "<message>"}
 * (500 and "out of memory" when the body cannot be built). */
void http_error_json(struct http_response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Looks up query parameter @name (already URL-decoded), NULL when absent. */
typedef const char *(*http_param_fn)(void *ctx, const char *name);

/* Handles one request. @body is the POST body (may be NULL). */
void http_route(struct http_server *s, const char *method, const char *path, http_param_fn param,
                void *ctx, const uint8_t *body, size_t body_len, struct http_response *out);

/* http_route with request headers (@header, may be NULL), which the
 * Connect endpoints need (Content-Type, X-Scope-OrgID). */
void http_route_headers(struct http_server *s, const char *method, const char *path,
                        http_param_fn param, http_param_fn header, void *ctx, const uint8_t *body,
                        size_t body_len, struct http_response *out);

/* False when @s requires a token and the request's Authorization header
 * (looked up through @header, may be NULL) does not carry one. */
bool http_authorized(const struct http_server *s, const char *method, const char *path,
                     http_param_fn header, void *ctx);

/* Unix ms, "now" or "now-<N><s|m|h|d>" into *out (@now = the current ms).
 * NULL on success, else what is wrong. */
const char *http_parse_time(const char *s, int64_t now, int64_t *out);
/* "name:type:unit:period_type:period_unit": five fields of safe characters;
 * the period fields may be empty (profiles without a period type). */
bool http_profile_type_valid(const char *s);
/* [a-zA-Z_][a-zA-Z0-9_]*, at most 128 characters. */
bool http_label_name_valid(const char *s);

/* A server without a listener, for tests: routes only. */
struct http_server *http_new_unbound(const struct http_opts *o);

#endif
