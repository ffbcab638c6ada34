/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request — what every API of stoke-query shares: a response (status,
 * content type, body), how handlers read query parameters and headers
 * without knowing libmicrohttpd (so unit tests call them without
 * sockets), JSON error bodies and the closing stats of a JSON answer, and
 * the time syntax of the native API (Unix milliseconds, now, now-<N>).
 *
 * The checks of a query's parts (profile type ids, label names, ranges)
 * are the engine's (query/engine/query.h, plan_range_check): the peers'
 * parser applies them too.
 */
#ifndef STOKE_QUERY_REQUEST_H
#define STOKE_QUERY_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "query/engine/cancel.h"
#include "query/engine/mprof.h"

#define HTTP_MAX_BODY   (64 * 1024)
#define HTTP_MAX_URI    16384 /* bytes of path and query string */
#define HTTP_MAX_PARAMS 64

struct http_response {
    int status;
    const char *content_type;
    uint8_t *body; /* malloc'd */
    size_t len;
    bool queried;     /* a query ran: send X-Stoke-Skipped */
    uint64_t skipped; /* segments and manifests its queries skipped */
};

/* Looks up query parameter @name (already URL-decoded), NULL when absent. */
typedef const char *(*http_param_fn)(void *ctx, const char *name);

/* A request's query parameters, and what stops its queries. */
struct http_params {
    http_param_fn get;
    void *ctx;
    struct qcancel *cancel; /* NULL = never */
};

/* Fills @r with status @status, @ctype and the body of @b (taken over);
 * 500 and "out of memory" when @b failed. */
void http_respond(struct http_response *r, int status, const char *ctype, struct wbuf *b);

/* Fills @r with status @status and the JSON body {"error": "<message>"}
 * (500 and "out of memory" when the body cannot be built). */
void http_error_json(struct http_response *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends ,"stats":{...},"warnings":[...]} to a JSON object being written
 * in @b (its closing brace included): what @p's query read and skipped. */
void http_finish_json(struct wbuf *b, const struct mprof *p);

/* Records in @r that a query ran, for X-Stoke-Skipped. */
void http_note_query(struct http_response *r, const struct mprof *mp);

/* The current time, Unix milliseconds. */
int64_t http_now_ms(void);

/* Unix ms, "now" or "now-<N><s|m|h|d>" into *out (@now = the current ms).
 * NULL on success, else what is wrong. */
const char *http_parse_time(const char *s, int64_t now, int64_t *out);

#endif
