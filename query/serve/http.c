/* SPDX-License-Identifier: Apache-2.0 */
#include "query/serve/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "common/buf.h"
#include "common/file.h"
#include "common/listen.h"
#include "query/engine/peer.h"
#include "query/serve/connect.h"
#include "query/serve/connguard.h"
#include "query/serve/debuginfo_api.h"
#include "query/serve/native_api.h"
#include "query/serve/pyroscope_api.h"
#include "query/serve/rules_api.h"
#include "query/serve/workpool.h"
#include "symbolizer/debuginfod.h"

/* The page embedded at build time (build/web_index.c defines it), when
 * linked into the binary; weak so the library links without it. */
const char *stoke_web_index(size_t *len) __attribute__((weak));

/* What requests are counted by in /metrics: the native API's endpoints
 * (enum native_ep), then these. */
enum ep { EP_PYROSCOPE = NATIVE_N, EP_OTHER, EP_N };

static const char *ep_name(int ep)
{
    return ep < NATIVE_N ? native_names[ep] : ep == EP_PYROSCOPE ? "pyroscope" : "other";
}

struct http_server {
    struct http_opts o;
    struct http_limits lim;
    struct MHD_Daemon *d;
    unsigned port;
    atomic_bool stopping; /* every query checks it (query/engine/cancel.h) */
    struct connguard *guard;
    struct workpool *queries, *shards; /* client queries; peers' shard reads */
    atomic_uint_fast64_t requests[EP_N], errors[EP_N], latency_us[EP_N];
    atomic_uint_fast64_t busy, timeouts, cancelled; /* 429s, 504s, cancelled queries */
    atomic_uint_fast64_t busy_memory;               /* 429s: no memory left to start */
    struct qmem_pool mem;                           /* all queries' memory budget */
    pthread_mutex_t log_lock;                       /* libmicrohttpd's messages */
    int64_t log_window_us;
    unsigned log_n, log_dropped;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void ep_metrics(struct http_server *s, struct http_response *r)
{
    struct wbuf b = {0};
    struct engine_counters ec;

    engine_counters(s->o.engine, &ec);
    wb_printf(&b, "# TYPE stoke_query_requests_total counter\n");
    for (int i = 0; i < EP_N; i++)
        wb_printf(&b, "stoke_query_requests_total{endpoint=\"%s\"} %" PRIu64 "\n", ep_name(i),
                  (uint64_t)s->requests[i]);
    wb_printf(&b, "# TYPE stoke_query_errors_total counter\n");
    for (int i = 0; i < EP_N; i++)
        wb_printf(&b, "stoke_query_errors_total{endpoint=\"%s\"} %" PRIu64 "\n", ep_name(i),
                  (uint64_t)s->errors[i]);
    wb_printf(&b, "# TYPE stoke_query_latency_seconds_sum counter\n");
    for (int i = 0; i < EP_N; i++)
        wb_printf(&b, "stoke_query_latency_seconds_sum{endpoint=\"%s\"} %.6f\n", ep_name(i),
                  (double)s->latency_us[i] / 1e6);
    wb_printf(&b,
              "# TYPE stoke_query_sections_read_total counter\n"
              "stoke_query_sections_read_total %" PRIu64 "\n"
              "# TYPE stoke_query_bytes_read_total counter\n"
              "stoke_query_bytes_read_total %" PRIu64 "\n"
              "# TYPE stoke_query_skipped_segments_total counter\n"
              "stoke_query_skipped_segments_total %" PRIu64 "\n"
              "# TYPE stoke_query_peer_errors_total counter\n"
              "stoke_query_peer_errors_total %" PRIu64 "\n",
              ec.sections, ec.bytes_read, ec.skipped, ec.peer_errors);
    wb_printf(&b,
              "# TYPE stoke_query_peers gauge\n"
              "stoke_query_peers %" PRIu64 "\n"
              "# TYPE stoke_query_peer_dns_lookups_total counter\n"
              "stoke_query_peer_dns_lookups_total %" PRIu64 "\n"
              "# TYPE stoke_query_peer_dns_failures_total counter\n"
              "stoke_query_peer_dns_failures_total %" PRIu64 "\n"
              "# TYPE stoke_query_peer_dns_empty_total counter\n"
              "stoke_query_peer_dns_empty_total %" PRIu64 "\n",
              ec.peers.peers, ec.peers.lookups, ec.peers.failures, ec.peers.empty);
    wb_printf(&b,
              "# TYPE stoke_query_busy_total counter\n"
              "stoke_query_busy_total %" PRIu64 "\n"
              "# TYPE stoke_query_deadline_exceeded_total counter\n"
              "stoke_query_deadline_exceeded_total %" PRIu64 "\n"
              "# TYPE stoke_query_cancelled_total counter\n"
              "stoke_query_cancelled_total %" PRIu64 "\n",
              (uint64_t)s->busy, (uint64_t)s->timeouts, (uint64_t)s->cancelled);
    wb_printf(&b,
              "# TYPE stoke_query_memory_bytes gauge\n"
              "stoke_query_memory_bytes %" PRIu64 "\n"
              "# TYPE stoke_query_memory_peak_bytes gauge\n"
              "stoke_query_memory_peak_bytes %" PRIu64 "\n"
              "# TYPE stoke_query_memory_limit_bytes gauge\n"
              "stoke_query_memory_limit_bytes{scope=\"query\"} %" PRIu64 "\n"
              "stoke_query_memory_limit_bytes{scope=\"total\"} %" PRIu64 "\n"
              "# TYPE stoke_query_memory_refused_total counter\n"
              "stoke_query_memory_refused_total{reason=\"query_limit\"} %" PRIu64 "\n"
              "stoke_query_memory_refused_total{reason=\"total_limit\"} %" PRIu64 "\n"
              "stoke_query_memory_refused_total{reason=\"full_at_start\"} %" PRIu64 "\n",
              (uint64_t)atomic_load(&s->mem.used), (uint64_t)atomic_load(&s->mem.peak),
              s->lim.query_memory, s->lim.total_query_memory,
              (uint64_t)atomic_load(&s->mem.over_query), (uint64_t)atomic_load(&s->mem.over_worker),
              (uint64_t)s->busy_memory);
    /* What the object store was asked, whoever asked (queries, the
     * footer index, deferred symbolization): requests are what S3 bills. */
    const struct store *st = engine_store(s->o.engine);
    if (st) {
#define SLOAD(f) __atomic_load_n(&st->stats.f, __ATOMIC_RELAXED)
        wb_printf(&b,
                  "# TYPE stoke_query_store_requests_total counter\n"
                  "stoke_query_store_requests_total{op=\"get\"} %" PRIu64 "\n"
                  "stoke_query_store_requests_total{op=\"list\"} %" PRIu64 "\n"
                  "stoke_query_store_requests_total{op=\"put\"} %" PRIu64 "\n"
                  "stoke_query_store_requests_total{op=\"delete\"} %" PRIu64 "\n"
                  "# TYPE stoke_query_store_bytes_got_total counter\n"
                  "stoke_query_store_bytes_got_total %" PRIu64 "\n",
                  SLOAD(gets), SLOAD(lists), SLOAD(puts), SLOAD(deletes), SLOAD(bytes_got));
#undef SLOAD
    }
    if (s->guard) {
        struct connguard_stats gs;
        connguard_stats(s->guard, &gs);
        wb_printf(&b,
                  "# TYPE stoke_query_connections gauge\n"
                  "stoke_query_connections %u\n"
                  "# TYPE stoke_query_connections_reading gauge\n"
                  "stoke_query_connections_reading %u\n"
                  "# TYPE stoke_query_connections_cut_total counter\n"
                  "stoke_query_connections_cut_total{reason=\"read_timeout\"} %" PRIu64 "\n"
                  "stoke_query_connections_cut_total{reason=\"write_timeout\"} %" PRIu64 "\n"
                  "stoke_query_connections_cut_total{reason=\"evicted\"} %" PRIu64 "\n",
                  gs.open, gs.reading, gs.cut_reading, gs.cut_sending, gs.evicted);
    }
    if (s->o.cache) {
        struct cache_stats cs;
        cache_stats(s->o.cache, &cs);
        wb_printf(&b,
                  "# TYPE stoke_query_cache_hits_total counter\n"
                  "stoke_query_cache_hits_total %" PRIu64 "\n"
                  "# TYPE stoke_query_cache_disk_hits_total counter\n"
                  "stoke_query_cache_disk_hits_total %" PRIu64 "\n"
                  "# TYPE stoke_query_cache_misses_total counter\n"
                  "stoke_query_cache_misses_total %" PRIu64 "\n"
                  "# TYPE stoke_query_cache_bytes gauge\n"
                  "stoke_query_cache_bytes %" PRIu64 "\n",
                  cs.hits, cs.disk_hits, cs.misses, cs.bytes);
    }
    struct dsym *ds = engine_dsym(s->o.engine);
    if (ds) {
        struct dsym_stats d;
        dsym_get_stats(ds, &d);
        wb_printf(&b,
                  "# TYPE stoke_query_dsym_lookups_total counter\n"
                  "stoke_query_dsym_lookups_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_cache_hits_total counter\n"
                  "stoke_query_dsym_cache_hits_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_named_total counter\n"
                  "stoke_query_dsym_named_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_files_loaded_total counter\n"
                  "stoke_query_dsym_files_loaded_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_files_evicted_total counter\n"
                  "stoke_query_dsym_files_evicted_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_store_misses_total counter\n"
                  "stoke_query_dsym_store_misses_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_bad_files_total counter\n"
                  "stoke_query_dsym_bad_files_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_debuginfod_files_total counter\n"
                  "stoke_query_dsym_debuginfod_files_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_debuginfod_pending_total counter\n"
                  "stoke_query_dsym_debuginfod_pending_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_cache_clears_total counter\n"
                  "stoke_query_dsym_cache_clears_total %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_files_open gauge\n"
                  "stoke_query_dsym_files_open %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_bytes_open gauge\n"
                  "stoke_query_dsym_bytes_open %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_names_cached gauge\n"
                  "stoke_query_dsym_names_cached %" PRIu64 "\n"
                  "# TYPE stoke_query_dsym_seconds_total counter\n"
                  "stoke_query_dsym_seconds_total %.6f\n",
                  d.lookups, d.cache_hits, d.named, d.files_loaded, d.files_evicted, d.store_misses,
                  d.bad_files, d.dbgd_files, d.dbgd_pending, d.cache_clears, d.files_open,
                  d.bytes_open, d.names_cached, (double)d.ns / 1e9);
    }
    if (s->o.dbgd) {
        struct sym_dbgd_stats g;
        sym_dbgd_get_stats(s->o.dbgd, &g);
        wb_printf(&b,
                  "# TYPE stoke_query_debuginfod_fetches_total counter\n"
                  "stoke_query_debuginfod_fetches_total %" PRIu64 "\n"
                  "# TYPE stoke_query_debuginfod_fetched_total counter\n"
                  "stoke_query_debuginfod_fetched_total %" PRIu64 "\n"
                  "# TYPE stoke_query_debuginfod_misses_total counter\n"
                  "stoke_query_debuginfod_misses_total %" PRIu64 "\n"
                  "# TYPE stoke_query_debuginfod_negative_hits_total counter\n"
                  "stoke_query_debuginfod_negative_hits_total %" PRIu64 "\n"
                  "# TYPE stoke_query_debuginfod_failures_total counter\n",
                  g.fetches, g.fetched, g.misses, g.negative_hits);
        for (int i = 0; i < DBGD_FAIL_N; i++)
            wb_printf(&b, "stoke_query_debuginfod_failures_total{reason=\"%s\"} %" PRIu64 "\n",
                      sym_dbgd_fail_names[i], g.failures[i]);
    }
    /* The recording rules' series, for those who pull (query/serve/rules_api.h). */
    rules_api_metrics(engine_store(s->o.engine), s->o.tenant, &b);
    http_respond(r, 200, "text/plain; version=0.0.4", &b);
}

#define PAGE_MAX (64u << 20)

static void ep_index(struct http_server *s, struct http_response *r)
{
    struct wbuf b = {0};
    char path[4096], *page = NULL;
    size_t n = 0;
    int rc;

    if (stoke_web_index && !s->o.web_dir) {
        const char *embedded = stoke_web_index(&n);
        wb_bytes(&b, embedded, n);
        http_respond(r, 200, "text/html; charset=utf-8", &b);
        return;
    }
    /* --web-dir, or, not embedded (a library-only build), the source
     * tree's copy, so a worker started from the repository root still
     * serves it. */
    snprintf(path, sizeof(path), "%s/index.html", s->o.web_dir ? s->o.web_dir : "query/web");
    rc = read_file(path, PAGE_MAX, &page, &n);
    if (rc) {
        if (s->o.web_dir)
            http_error_json(r, 404, "web page %s: %s", path, strerror(-rc));
        else
            http_error_json(r, 404, "no web page embedded in this build; start with --web-dir DIR");
        return;
    }
    r->status = 200;
    r->content_type = "text/html; charset=utf-8";
    r->body = (uint8_t *)page;
    r->len = n;
}

/* Is @path answered on the query pool (it may run a query)? */
/* The largest debug file POST /api/v1/debuginfo/ takes. */
static size_t debuginfo_cap(const struct http_server *s)
{
    uint64_t m = s->o.debuginfo_max_bytes ? s->o.debuginfo_max_bytes : DSYM_DEFAULT_MAX_FILE;
    return m < SIZE_MAX ? (size_t)m : SIZE_MAX;
}

static bool query_path(const char *path)
{
    return pyroscope_path(path) || rules_api_path(path) || debuginfo_path(path) ||
           native_find(path) != NATIVE_N;
}

void http_limits(const struct http_opts *o, uint64_t nofile, struct http_limits *l)
{
    uint64_t mc = o->max_connections ? o->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
    uint64_t room = nofile > HTTP_FD_RESERVE + 16 ? nofile - HTTP_FD_RESERVE : 16;

    l->query_timeout_ms = o->query_timeout_ms ? o->query_timeout_ms : HTTP_DEFAULT_QUERY_TIMEOUT_MS;
    l->read_timeout_ms = o->read_timeout_ms ? o->read_timeout_ms : HTTP_DEFAULT_READ_TIMEOUT_MS;
    l->write_timeout_ms = o->write_timeout_ms ? o->write_timeout_ms : HTTP_DEFAULT_WRITE_TIMEOUT_MS;
    l->max_queries = o->max_queries ? o->max_queries : HTTP_DEFAULT_MAX_QUERIES;
    l->max_waiting = 4 * l->max_queries;
    l->query_memory = o->query_memory ? o->query_memory : (uint64_t)QMEM_DEFAULT_QUERY_MB << 20;
    l->total_query_memory =
        o->total_query_memory ? o->total_query_memory : (uint64_t)QMEM_DEFAULT_TOTAL_MB << 20;
    if (l->query_memory > l->total_query_memory)
        l->query_memory = l->total_query_memory;
    l->max_connections = (unsigned)(mc < room ? mc : room);
    /* Connections reading a request leave a quarter free for the ones
     * being answered, so a slow crowd cannot take the last slot. */
    l->max_reading = l->max_connections * 3 / 4 ? l->max_connections * 3 / 4 : 1;
    l->max_per_ip = o->max_per_ip;
}

void http_route(struct http_server *s, const char *method, const char *path, http_param_fn param,
                void *ctx, const uint8_t *body, size_t body_len, struct http_response *out)
{
    http_route_headers(s, method, path, param, NULL, ctx, body, body_len, out);
}

static const char *no_header(void *ctx, const char *name)
{
    return NULL;
}

bool http_authorized(const struct http_server *s, const char *method, const char *path,
                     http_param_fn header, void *ctx)
{
    if (!s->o.auth)
        return true;
    /* Liveness and the static page (it holds no data and asks for the
     * token itself) stay open. */
    if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
        (strcmp(path, "/healthz") == 0 || strcmp(path, "/") == 0 ||
         strcmp(path, "/index.html") == 0))
        return true;
    return auth_check(s->o.auth, header ? header(ctx, "Authorization") : NULL);
}

uint64_t http_query_timeout_ms(const struct http_server *s, const char *path, http_param_fn header,
                               void *ctx)
{
    uint64_t t = s->lim.query_timeout_ms;
    const char *v;

    /* Connect's own deadline header: at most 10 digits of milliseconds. */
    if (header && strncmp(path, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) == 0 &&
        (v = header(ctx, "Connect-Timeout-Ms")) && *v && strlen(v) <= 10 &&
        strspn(v, "0123456789") == strlen(v)) {
        uint64_t c = strtoull(v, NULL, 10);
        if (c > 0 && c < t)
            t = c;
    }
    return t;
}

void http_cancel_all(struct http_server *s)
{
    atomic_store(&s->stopping, true);
}

/* The error answer of a query stopped by its memory budget (-E2BIG: 422,
 * the query is too large for --query-memory-limit; -ENOBUFS: 429, the
 * worker's queries hold --total-query-memory-limit, retry), in the API's
 * own form. */
static void memory_error(const char *path, struct qcancel *qc, int rc, struct http_response *out)
{
    char msg[256];

    qmem_error(qc->mem, rc, msg, sizeof(msg));
    if (pyroscope_path(path))
        connect_error(out, 0, CONNECT_RESOURCE_EXHAUSTED, "%s", msg);
    else
        http_error_json(out, rc == -E2BIG ? 422 : 429, "%s", msg);
}

/* The answer's body is the query's last large allocation: charged like
 * the rest, and replaced by the error when the budget refuses it. */
static void charge_answer(const char *path, struct qcancel *qc, struct http_response *out)
{
    int rc;

    if (out->status >= 300 || !out->len || !(rc = qcancel_charge(qc, out->len)))
        return;
    free(out->body);
    memset(out, 0, sizeof(*out));
    memory_error(path, qc, rc, out);
}

void http_route_headers(struct http_server *s, const char *method, const char *path,
                        http_param_fn param, http_param_fn header, void *ctx, const uint8_t *body,
                        size_t body_len, struct http_response *out)
{
    struct qcancel qc;
    struct qmem mem;

    qcancel_init(&qc, http_query_timeout_ms(s, path, header, ctx), &s->stopping, NULL, NULL);
    qmem_init(&mem, &s->mem, s->lim.query_memory);
    qc.mem = &mem;
    struct http_request rq = {.method = method,
                              .path = path,
                              .param = param,
                              .header = header,
                              .ctx = ctx,
                              .body = body,
                              .body_len = body_len,
                              .cancel = &qc};
    http_handle(s, &rq, out);
    charge_answer(path, &qc, out);
    qmem_end(&mem);
}

void http_handle(struct http_server *s, const struct http_request *rq, struct http_response *out)
{
    const char *method = rq->method, *path = rq->path;
    struct http_params p = {rq->param, rq->ctx, rq->cancel};
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int ep = EP_OTHER;
    int64_t t0 = mono_us();

    memset(out, 0, sizeof(*out));
    if (!http_authorized(s, method, path, rq->header, rq->ctx)) {
        if (strncmp(path, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) == 0 ||
            rules_api_path(path))
            connect_error(out, 401, CONNECT_UNAUTHENTICATED,
                          "missing or invalid token (Authorization: Bearer <token>)");
        else
            http_error_json(out, 401,
                            "authorization: missing or invalid token (Authorization: Bearer "
                            "<token>)");
        goto done;
    }
    if (rules_api_path(path)) {
        struct rules_api a = {engine_store(s->o.engine), s->o.tenant};
        ep = EP_PYROSCOPE;
        rules_api_route(&a, method, path, rq->header ? rq->header : no_header, rq->ctx, rq->body,
                        rq->body_len, out);
        goto done;
    }
    if (debuginfo_path(path)) {
        struct debuginfo_api a = {engine_store(s->o.engine), engine_dsym(s->o.engine), s->o.tenant,
                                  debuginfo_cap(s)};
        debuginfo_route(&a, method, path, &p, rq->body, rq->body_len, out);
        goto done;
    }
    if (pyroscope_path(path)) {
        struct pyroscope_api a = {s->o.engine, s->o.tenant, rq->cancel};
        ep = EP_PYROSCOPE;
        pyroscope_route(&a, method, path, rq->param, rq->header ? rq->header : no_header, rq->ctx,
                        rq->body, rq->body_len, out);
        goto done;
    }
    if ((ep = native_find(path)) == NATIVE_N) {
        ep = EP_OTHER;
        if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
            strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0) {
            if (!get) {
                http_error_json(out, 405, "%s: method %s not allowed (use GET)", path, method);
            } else if (strcmp(path, "/healthz") == 0) {
                struct wbuf b = {0};
                wb_bytes(&b, "ok\n", 3);
                http_respond(out, 200, "text/plain", &b);
            } else if (strcmp(path, "/metrics") == 0) {
                ep_metrics(s, out);
            } else {
                ep_index(s, out);
            }
        } else {
            http_error_json(out, 404, "%.200s: no such endpoint", path);
        }
        goto done;
    }
    if (ep == NATIVE_SELECT ? strcmp(method, "POST") != 0 : !get) {
        http_error_json(out, 405, "%s: method %s not allowed (use %s)", path, method,
                        ep == NATIVE_SELECT ? "POST" : "GET");
        goto done;
    }
    struct native_api a = {.engine = s->o.engine,
                           .tenant = s->o.tenant,
                           .query_timeout_ms = s->lim.query_timeout_ms,
                           .timeouts = &s->timeouts,
                           .cancelled = &s->cancelled};
    native_route(&a, (enum native_ep)ep, &p, rq->body, rq->body_len, out);
done:
    s->requests[ep]++;
    if (out->status >= 400)
        s->errors[ep]++;
    s->latency_us[ep] += (uint64_t)(mono_us() - t0);
}

/* ---- libmicrohttpd glue ------------------------------------------------ */

/* One request on a connection (libmicrohttpd's con_cls), from its URI to
 * its answer. */
struct conn {
    struct http_server *s;
    struct MHD_Connection *c;
    struct connguard_conn *g; /* the connection's guard record */
    int fd;
    uint8_t *body;
    size_t len;
    bool started;  /* the access handler has seen the head */
    bool too_big;  /* the body went over its cap (discarded) */
    bool queued;   /* handed to a pool: r holds the answer once resumed */
    int refused;   /* 414 or 400: the URI was too long or had too many parameters */
    size_t urilen; /* of a refused URI */
    unsigned nparams;
    const char *method, *url;
    struct qcancel cancel;
    struct qmem mem; /* the query's budget (cancel.mem) */
    struct http_response r;
};

static const char *mhd_param(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static const char *mhd_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static bool conn_gone(void *ctx)
{
    const struct conn *cn = ctx;
    return cn->fd >= 0 && qcancel_socket_gone(cn->fd);
}

/* Called with the raw request URI before libmicrohttpd splits its
 * arguments; what it returns is the request's con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct conn *cn = calloc(1, sizeof(*cn));
    const char *q = strchr(uri, '?');
    size_t n = strlen(uri);
    unsigned np = 0;

    if (!cn)
        return NULL;
    cn->fd = -1;
    if (q) {
        np = 1;
        for (const char *t = q + 1; *t; t++)
            np += *t == '&';
    }
    if (n > HTTP_MAX_URI || np > HTTP_MAX_PARAMS) {
        cn->refused = n > HTTP_MAX_URI ? 414 : 400;
        cn->urilen = n;
        cn->nparams = np;
        /* libmicrohttpd (0.9.75) next parses every argument into the
         * connection's memory pool; thousands of them exhaust it and it
         * closes the connection without an answer (its 431 cannot be built
         * in the full pool). The string is the connection's own read
         * buffer: ending it at the '?' leaves no arguments to parse, and
         * the handler answers. */
        if (q)
            ((char *)q)[1] = '\0';
    }
    return cn;
}

/* Queues @cn's answer @r (taking its body). */
static enum MHD_Result answer(struct conn *cn, const char *url, struct http_response *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;
    char skipped[32];

    if (!resp) {
        free(r->body);
        r->body = NULL;
        return MHD_NO;
    }
    r->body = NULL;
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "text/plain");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->queried) {
        snprintf(skipped, sizeof(skipped), "%" PRIu64, r->skipped);
        MHD_add_response_header(resp, "X-Stoke-Skipped", skipped);
    }
    if (r->status == 405)
        MHD_add_response_header(
            resp, "Allow",
            strcmp(url, PEER_SELECT_PATH) == 0 ||
                    strncmp(url, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) == 0
                ? "POST"
                : "GET, HEAD");
    if (r->status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"stoke-query\"");
    if (r->status == 415)
        MHD_add_response_header(resp, "Accept-Post", "application/json, application/proto");
    if (r->status == 429 || r->status == 503)
        MHD_add_response_header(resp, "Retry-After", "1");
    connguard_sending(cn->s->guard, cn->g);
    ret = MHD_queue_response(cn->c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Bytes a query must have held for the allocator to be trimmed after it. */
#define HTTP_TRIM_AFTER (4u << 20)

/* A pool's job: runs the request, then wakes its connection, whose
 * handler (called again) sends the answer. */
static void run_job(void *job)
{
    struct conn *cn = job;
    struct http_request rq = {.method = cn->method,
                              .path = cn->url,
                              .param = mhd_param,
                              .header = mhd_header,
                              .ctx = cn->c,
                              .body = cn->body,
                              .body_len = cn->len,
                              .cancel = &cn->cancel};

    if (qcancel_check(&cn->cancel) == -ETIMEDOUT) {
        /* Waited in the queue past its deadline. */
        cn->s->timeouts++;
        http_error_json(&cn->r, 504, "query: waited longer than its deadline of %u ms for a turn",
                        cn->s->lim.query_timeout_ms);
    } else {
        http_handle(cn->s, &rq, &cn->r);
        charge_answer(cn->url, &cn->cancel, &cn->r);
    }
    /* Whatever the query still held goes back to the worker's budget, and
     * what it freed to the allocator goes back to the system: each query
     * thread allocates from its own malloc arena, and freed pages an arena
     * keeps would otherwise add up across arenas (RSS under 32 clients,
     * BENCHMARKS.md). Only after a query that held a few MiB: trimming
     * costs ~0.5 ms, a seventh of a small query's CPU. */
    uint64_t held = atomic_load(&cn->mem.peak);
    qmem_end(&cn->mem);
    if (held >= HTTP_TRIM_AFTER)
        malloc_trim(0);
    MHD_resume_connection(cn->c);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *s = cls;
    struct conn *cn = *con_cls;
    const union MHD_ConnectionInfo *ci;
    struct http_response r;

    if (!cn)
        return MHD_NO; /* on_uri ran out of memory */
    if (!cn->started) {
        /* The head has arrived: refuse at once what needs no body. */
        cn->started = true;
        cn->s = s;
        cn->c = c;
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        cn->g = ci ? ci->socket_context : NULL;
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        cn->fd = ci ? ci->connect_fd : -1;
        memset(&r, 0, sizeof(r));
        if (cn->refused == 414) {
            http_error_json(&r, 414, "url: %zu bytes, more than %d", cn->urilen, HTTP_MAX_URI);
            return answer(cn, url, &r);
        }
        if (cn->refused) {
            http_error_json(&r, 400, "query string: %u parameters, more than %d", cn->nparams,
                            HTTP_MAX_PARAMS);
            return answer(cn, url, &r);
        }
        if (!http_authorized(s, method, url, mhd_header, c)) {
            /* 401 before the body: a refused client costs no reading. */
            http_route_headers(s, method, url, mhd_param, mhd_header, c, NULL, 0, &r);
            return answer(cn, url, &r);
        }
        return MHD_YES;
    }
    /* Connect requests may be larger than the JSON API's queries. */
    size_t cap = pyroscope_path(url)   ? CONNECT_MAX_BODY
                 : debuginfo_path(url) ? debuginfo_cap(s)
                                       : HTTP_MAX_BODY;
    if (*upload_size) {
        if (cn->len + *upload_size > cap) {
            cn->too_big = true;
        } else {
            uint8_t *nb = realloc(cn->body, cn->len + *upload_size + 1);
            if (!nb)
                return MHD_NO;
            cn->body = nb;
            memcpy(cn->body + cn->len, upload_data, *upload_size);
            cn->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cn->queued) /* resumed: the pool has answered */
        return answer(cn, url, &cn->r);
    connguard_working(s->guard, cn->g);
    memset(&r, 0, sizeof(r));
    if (cn->too_big) {
        if (pyroscope_path(url))
            connect_error(&r, 0, CONNECT_RESOURCE_EXHAUSTED, "body: larger than %zu bytes", cap);
        else if (debuginfo_path(url))
            http_error_json(&r, 413,
                            "debug file: larger than %zu bytes (the worker's --debuginfo-max-mb)",
                            cap);
        else
            http_error_json(&r, 413, "body: larger than %d bytes", HTTP_MAX_BODY);
        return answer(cn, url, &r);
    }
    if (!query_path(url)) {
        /* The page, /healthz, /metrics, 404: answered here, at once. */
        http_route_headers(s, method, url, mhd_param, mhd_header, c, cn->body, cn->len, &r);
        return answer(cn, url, &r);
    }
    /* A query: on a pool, its connection suspended meanwhile. */
    cn->method = method;
    cn->url = url;
    qcancel_init(&cn->cancel, http_query_timeout_ms(s, url, mhd_header, c), &s->stopping, conn_gone,
                 cn);
    qmem_init(&cn->mem, &s->mem, s->lim.query_memory);
    cn->cancel.mem = &cn->mem;
    cn->queued = true;
    MHD_suspend_connection(c);
    /* No memory left to start a query in: refused as when the pool is full
     * (a sixteenth of a query's limit, at least, must be free). */
    int rc = qmem_pool_full(&s->mem, s->lim.query_memory / 16)
                 ? -ENOBUFS
                 : workpool_submit(strcmp(url, PEER_SELECT_PATH) == 0 ? s->shards : s->queries, cn);
    if (rc == -ENOBUFS) {
        memset(&cn->r, 0, sizeof(cn->r));
        s->busy++;
        s->busy_memory++;
        memory_error(url, &cn->cancel, rc, &cn->r);
        MHD_resume_connection(c);
    } else if (rc) {
        memset(&cn->r, 0, sizeof(cn->r));
        if (rc == -EAGAIN)
            s->busy++;
        if (pyroscope_path(url))
            connect_error(&cn->r, rc == -EAGAIN ? 429 : 503,
                          rc == -EAGAIN ? CONNECT_RESOURCE_EXHAUSTED : CONNECT_UNAVAILABLE, "%s",
                          rc == -EAGAIN ? "too many queries at once; retry" : "stopping");
        else
            http_error_json(&cn->r, rc == -EAGAIN ? 429 : 503, "%s",
                            rc == -EAGAIN ? "too many queries at once (--max-queries); retry"
                                          : "stopping");
        MHD_resume_connection(c);
    }
    return MHD_YES;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct conn *cn = *con_cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    /* Kept alive, the connection now reads its next request. */
    if (ci)
        connguard_reading(s->guard, ci->socket_context);
    if (cn) {
        free(cn->r.body);
        free(cn->body);
        free(cn);
        *con_cls = NULL;
    }
}

/* libmicrohttpd's messages, at most HTTP_LOG_BURST per minute: a crowd
 * of slow clients being cut must not flood the log. */
#define HTTP_LOG_BURST 20
static void on_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *s = cls;
    int64_t now = mono_us();
    char msg[512];

    pthread_mutex_lock(&s->log_lock);
    if (now - s->log_window_us >= 60000000) {
        if (s->log_dropped)
            fprintf(stderr, "stoke-query: http: %u more messages in the last minute not shown\n",
                    s->log_dropped);
        s->log_window_us = now;
        s->log_n = s->log_dropped = 0;
    }
    bool show = s->log_n++ < HTTP_LOG_BURST;
    if (!show)
        s->log_dropped++;
    pthread_mutex_unlock(&s->log_lock);
    if (!show)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    fprintf(stderr, "stoke-query: http: %s\n", msg);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? connguard_open(s->guard, ci->connect_fd) : NULL;
    } else {
        /* Before libmicrohttpd closes the descriptor. */
        connguard_close(s->guard, *socket_context);
        *socket_context = NULL;
    }
}

struct http_server *http_new_unbound(const struct http_opts *o)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (s) {
        s->o = *o;
        http_limits(o, UINT64_MAX, &s->lim);
        qmem_pool_init(&s->mem, s->lim.total_query_memory);
        pthread_mutex_init(&s->log_lock, NULL);
        s->log_window_us = mono_us();
    }
    return s;
}

const struct http_limits *http_server_limits(const struct http_server *s)
{
    return &s->lim;
}

struct http_server *http_start(const struct http_opts *o, char *err, size_t errlen)
{
    struct http_server *s = http_new_unbound(o);
    struct addrinfo *ai = NULL;
    struct rlimit nofile = {0};
    /* One thread polls every connection: an idle or slow client costs a
     * descriptor, not a thread; queries run on the pools. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0)
        http_limits(o, nofile.rlim_cur, &s->lim);
    if (listen_resolve(o->listen, "--listen", &ai, err, errlen)) {
        http_stop(s);
        return NULL;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct connguard_opts go = {.read_timeout_ms = s->lim.read_timeout_ms,
                                .write_timeout_ms = s->lim.write_timeout_ms,
                                .max_reading = s->lim.max_reading};
    s->guard = connguard_new(&go);
    s->queries = workpool_new(s->lim.max_queries, s->lim.max_waiting, run_job);
    s->shards = workpool_new(s->lim.max_queries, s->lim.max_waiting, run_job);
    if (s->guard && s->queries && s->shards)
        s->d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
            MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
            MHD_OPTION_NOTIFY_COMPLETED, on_done, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_CONNECTION_LIMIT,
            s->lim.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->lim.max_per_ip,
            MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        snprintf(err, errlen, "--listen %s: cannot listen (address in use or not permitted)",
                 o->listen);
        http_stop(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return s;
}

unsigned http_port(const struct http_server *s)
{
    return s->port;
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    /* Running queries stop at their next check; queued ones answer 503
     * without running; new ones are refused. Only then may the daemon stop:
     * it must not find a connection still suspended. */
    atomic_store(&s->stopping, true);
    if (s->queries)
        workpool_close(s->queries);
    if (s->shards)
        workpool_close(s->shards);
    if (s->d)
        MHD_stop_daemon(s->d);
    workpool_free(s->queries);
    workpool_free(s->shards);
    connguard_free(s->guard);
    pthread_mutex_destroy(&s->log_lock);
    free(s);
}
