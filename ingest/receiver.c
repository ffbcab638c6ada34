/* SPDX-License-Identifier: Apache-2.0 */
#include "ingest/receiver.h"

#include <errno.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/gzip.h"
#include "common/listen.h"
#include "common/log.h"
#include "common/pbjson.h"
#include "ingest/batch.h"
#include "ingest/grpc.h"
#include "ingest/grpc_server.h"
#include "ingest/otlp_read.h"
#include "ingest/pyroscope_ingest.h"
#include "otlp/profiles_service.pb-c.h"

#define OTLP_PATH    "/v1development/profiles"
#define INGEST_PATH  "/ingest"
#define PUSH_PATH    "/push.v1.PusherService/Push"
#define MAX_TENANT   64 /* what the query workers accept */
#define BUSY_RETRY_S 1
#define FULL_RETRY_S 5

struct tenant {
    char *name;
    struct seg_upload *u;
    struct store *st; /* NULL for the agent's own writer */
    uint64_t requests, profiles, samples;
};

const char *const rx_protocol_names[RX_PROTOCOLS] = {
    [RX_OTLP] = "otlp",     [RX_OTLP_JSON] = "otlp_json", [RX_OTLP_GRPC] = "otlp_grpc",
    [RX_INGEST] = "ingest", [RX_PUSH] = "push",           [RX_PUSH_JSON] = "push_json",
    [RX_OTHER] = "other",
};
const char *const rx_reason_names[RX_REASONS] = {
    [RX_TOO_LARGE] = "too_large",     [RX_BUSY] = "busy",
    [RX_BAD_INPUT] = "bad_input",     [RX_UNAUTHORIZED] = "unauthorized",
    [RX_UNAVAILABLE] = "unavailable", [RX_INTERNAL] = "internal",
};

struct receiver {
    struct receiver_opts o;
    struct MHD_Daemon *d;
    struct grpc_server *g; /* --receive-grpc; NULL: off */
    unsigned port;
    pthread_mutex_t mu; /* tenants, their writers, stats */
    struct tenant *t;
    size_t nt;
    atomic_size_t inflight; /* body bytes held by connections, HTTP and gRPC */
    struct receiver_stats st;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- answers --------------------------------------------------------------- */

static void set_body(struct rx_response *out, const void *p, size_t n)
{
    out->body = malloc(n ? n : 1);
    if (out->body) {
        memcpy(out->body, p, n);
        out->len = n;
    }
}

/* OTLP/HTTP errors carry a google.rpc.Status (code = 1, message = 2). */
static unsigned rpc_code(unsigned status)
{
    switch (status) {
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 404:
        return 5; /* NOT_FOUND */
    case 405:
        return 12; /* UNIMPLEMENTED */
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 503:
        return 14; /* UNAVAILABLE */
    case 500:
        return 13; /* INTERNAL */
    default:
        return 3; /* INVALID_ARGUMENT */
    }
}

static bool is_otlp(const struct rx_request *q)
{
    return q->path && !strcmp(q->path, OTLP_PATH);
}

static bool is_push(const struct rx_request *q)
{
    return q->path && !strcmp(q->path, PUSH_PATH);
}

static bool ctype_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return ct && !strncasecmp(ct, want, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* A body in the protobuf JSON encoding: answered in it too. */
static bool is_json(const struct rx_request *q)
{
    return q->header && ctype_is(q->header(q->ctx, "Content-Type"), "application/json");
}

/* Connect's error codes (connectrpc.com/docs/protocol, "Error codes"). */
static const char *connect_code(unsigned status)
{
    switch (status) {
    case 401:
        return "unauthenticated";
    case 404:
    case 405:
        return "unimplemented";
    case 413:
    case 429:
        return "resource_exhausted";
    case 503:
        return "unavailable";
    case 500:
        return "internal";
    default:
        return "invalid_argument";
    }
}

static void fail(struct rx_response *out, const struct rx_request *q, unsigned status,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(struct rx_response *out, const struct rx_request *q, unsigned status,
                 const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    out->status = status;
    snprintf(out->message, sizeof(out->message), "%s", msg);
    if (is_otlp(q) && !is_json(q)) {
        struct wbuf b = {0};
        wb_u8(&b, 0x08);
        wb_uv(&b, rpc_code(status));
        wb_u8(&b, 0x12);
        wb_str(&b, msg); /* uvarint length + bytes: the protobuf string */
        set_body(out, b.p, b.len);
        wb_free(&b);
        out->content_type = "application/x-protobuf";
    } else if (is_otlp(q) || is_push(q)) {
        /* OTLP's google.rpc.Status in JSON (a numeric code), or Connect's
         * error (a code name) */
        struct wbuf b = {0};
        if (is_otlp(q))
            wb_printf(&b, "{\"code\":%u,\"message\":", rpc_code(status));
        else
            wb_printf(&b, "{\"code\":\"%s\",\"message\":", connect_code(status));
        wb_json_str(&b, msg);
        wb_puts(&b, "}");
        set_body(out, b.p, b.len);
        wb_free(&b);
        out->content_type = "application/json";
    } else {
        size_t n = strlen(msg);
        msg[n < sizeof(msg) - 1 ? n : n - 1] = '\n';
        set_body(out, msg, n < sizeof(msg) - 1 ? n + 1 : n);
        out->content_type = "text/plain; charset=utf-8";
    }
}

/* ---- counters ------------------------------------------------------------ */

static enum rx_protocol protocol_of(const struct rx_request *q)
{
    if (q->grpc)
        return RX_OTLP_GRPC;
    if (is_otlp(q))
        return is_json(q) ? RX_OTLP_JSON : RX_OTLP;
    if (is_push(q))
        return is_json(q) ? RX_PUSH_JSON : RX_PUSH;
    return q->path && !strcmp(q->path, INGEST_PATH) ? RX_INGEST : RX_OTHER;
}

/* One answer: its class, and a refusal's reason. Called with mu held. */
static void count_answer(struct receiver *r, const struct rx_request *q, unsigned status,
                         size_t bytes)
{
    enum rx_protocol p = protocol_of(q);
    enum rx_reason why;

    r->st.bytes_received[p] += bytes;
    r->st.answers[p][status < 300 ? RX_2XX : status < 500 ? RX_4XX : RX_5XX]++;
    if (status < 300)
        return;
    if (status >= 500)
        r->st.status_5xx++;
    else if (status == 413)
        r->st.status_413++;
    else if (status == 429)
        r->st.status_429++;
    else
        r->st.status_4xx++;
    why = status == 413   ? RX_TOO_LARGE
          : status == 429 ? RX_BUSY
          : status == 401 ? RX_UNAUTHORIZED
          : status == 503 ? RX_UNAVAILABLE
          : status >= 500 ? RX_INTERNAL
                          : RX_BAD_INPUT;
    r->st.refused[why]++;
}

/* ---- tenants ------------------------------------------------------------- */

static bool tenant_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > MAX_TENANT || !strcmp(t, ".") || !strcmp(t, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The tenant @name with its writer, created on first use. Called with mu
 * held. NULL with @err when the tenant cap is reached or the store cannot
 * open. */
static struct tenant *tenant_upload(struct receiver *r, const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < r->nt; i++)
        if (!strcmp(r->t[i].name, name))
            return &r->t[i];
    if (r->nt >= r->o.max_tenants) {
        snprintf(err, errlen, "tenant %s: this receiver already writes for %u tenants", name,
                 r->o.max_tenants);
        return NULL;
    }
    struct tenant *nt = realloc(r->t, (r->nt + 1) * sizeof(*nt));
    if (!nt) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->t = nt;
    struct tenant *t = &r->t[r->nt];
    memset(t, 0, sizeof(*t));
    t->name = strdup(name);
    if (!t->name || !r->o.store) {
        free(t->name);
        snprintf(err, errlen, t->name ? "no store for tenant %s" : "out of memory", name);
        return NULL;
    }
    t->st = store_open(r->o.store, err, errlen);
    if (!t->st) {
        free(t->name);
        return NULL;
    }
    struct seg_upload_opts uo = r->o.upload;
    uo.store = t->st;
    uo.tenant = name;
    uo.spill_dir = NULL; /* one spill directory holds one tenant's objects */
    t->u = seg_upload_new(&uo, err, errlen);
    if (!t->u) {
        store_close(t->st);
        free(t->name);
        return NULL;
    }
    r->nt++;
    r->st.tenants = r->nt;
    log_info("receiver: writing for tenant %s", name);
    return t;
}

/* ---- requests -------------------------------------------------------------- */

static void otlp_ok(struct rx_response *out, const struct ingest_batch *b, bool json)
{
    Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_SERVICE_RESPONSE__INIT;
    Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesPartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_PARTIAL_SUCCESS__INIT;
    char msg[300];

    if (b->rejected) {
        snprintf(msg, sizeof(msg), "%lld profile(s) rejected; first: %s", (long long)b->rejected,
                 b->why_rejected);
        ps.rejected_profiles = b->rejected;
        ps.error_message = msg;
        resp.partial_success = &ps;
    }
    if (json) {
        struct wbuf jb = {0};
        pbjson_encode(&resp.base, &jb);
        out->status = 200;
        out->content_type = "application/json";
        set_body(out, jb.p, jb.len);
        wb_free(&jb);
        return;
    }
    size_t n =
        opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__get_packed_size(
            &resp);
    out->status = 200;
    out->content_type = "application/x-protobuf";
    out->body = malloc(n ? n : 1);
    if (out->body)
        out->len =
            opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__pack(
                &resp, (uint8_t *)out->body);
}

void receiver_handle(struct receiver *r, const struct rx_request *q, struct rx_response *out)
{
    struct ingest_batch b = {0};
    uint8_t *decoded = NULL;
    const uint8_t *body = q->body;
    size_t len = q->len;
    char err[512] = "";
    int rc;

    memset(out, 0, sizeof(*out));
    bool otlp = is_otlp(q), push = is_push(q), ingest = q->path && !strcmp(q->path, INGEST_PATH);
    if (!otlp && !ingest && !push) {
        fail(out, q, 404, "%s: not found (the receiver takes POST %s, %s and %s)",
             q->path ? q->path : "", OTLP_PATH, INGEST_PATH, PUSH_PATH);
        goto done;
    }
    if (strcmp(q->method, "POST")) {
        fail(out, q, 405, "%s: use POST", q->path);
        goto done;
    }
    if (r->o.auth && !auth_check(r->o.auth, q->header(q->ctx, "Authorization"))) {
        fail(out, q, 401, "a valid bearer token is required");
        goto done;
    }
    const char *tenant = q->header(q->ctx, "X-Scope-OrgID");
    if (!tenant || !*tenant)
        tenant = r->o.upload.tenant ? r->o.upload.tenant : "default";
    if (!tenant_ok(tenant)) {
        fail(out, q, 400, "X-Scope-OrgID: want 1 to %d of [A-Za-z0-9._-], not . or ..", MAX_TENANT);
        goto done;
    }
    const char *ct = q->header(q->ctx, "Content-Type");
    bool json = is_json(q);
    if (otlp && !json && !ctype_is(ct, "application/x-protobuf") &&
        !ctype_is(ct, "application/protobuf")) {
        fail(out, q, 415,
             "Content-Type %.64s: not supported (send application/x-protobuf or "
             "application/json)",
             ct ? ct : "(none)");
        goto done;
    }
    if (push && !json && !ctype_is(ct, "application/proto")) {
        fail(out, q, 415,
             "Content-Type %.64s: not supported (send application/proto or application/json)",
             ct ? ct : "(none)");
        goto done;
    }
    const char *ce = q->header(q->ctx, "Content-Encoding");
    if (ce && *ce && strcasecmp(ce, "identity")) {
        if (strcasecmp(ce, "gzip")) {
            fail(out, q, 415, "Content-Encoding %.32s: not supported (gzip or none)", ce);
            goto done;
        }
        if (len < 2 || q->body[0] != 0x1f || q->body[1] != 0x8b) {
            fail(out, q, 400, "Content-Encoding gzip: the body is not gzip data");
            goto done;
        }
        rc = gzip_decompress(q->body, len, r->o.max_decoded, &decoded, &len);
        if (rc) {
            if (rc == -EFBIG)
                fail(out, q, 413, "body: more than %zu bytes after gunzip", r->o.max_decoded);
            else
                fail(out, q, rc == -ENOMEM ? 503 : 400, "body: %s",
                     rc == -ENOMEM ? "out of memory" : "damaged or truncated gzip data");
            goto done;
        }
        body = decoded;
    }

    /* parse and check the whole request before anything is written */
    int64_t now = wall_ms();
    if (otlp) {
        rc = (json ? otlp_read_json : otlp_read)(body, len, now, &b, err, sizeof(err));
    } else if (push) {
        rc = (json ? ingest_pyroscope_push_json
                   : ingest_pyroscope_push)(&b, body, len, r->o.max_decoded, now, err, sizeof(err));
    } else {
        rc = ingest_pyroscope(&b, q->param, q->ctx, ct, body, len, r->o.max_decoded, now, err,
                              sizeof(err));
    }
    if (rc == 0)
        rc = ingest_batch_check(&b, err, sizeof(err));
    if (rc == 0 && otlp && b.n == 0 && b.rejected) {
        rc = -EINVAL;
        snprintf(err, sizeof(err), "every profile rejected; first: %s", b.why_rejected);
    }
    if (rc) {
        unsigned status = rc == -EPROTONOSUPPORT ? 415
                          : rc == -EFBIG         ? 413
                          : rc == -ENOMEM        ? 503
                                                 : 400;
        fail(out, q, status, "%s", err[0] ? err : strerror(-rc));
        goto done;
    }

    pthread_mutex_lock(&r->mu);
    struct tenant *tn = tenant_upload(r, tenant, err, sizeof(err));
    struct seg_upload *u = tn ? tn->u : NULL;
    if (!u) {
        pthread_mutex_unlock(&r->mu);
        fail(out, q, 503, "%s", err);
        goto done;
    }
    if (seg_upload_full(u)) {
        pthread_mutex_unlock(&r->mu);
        fail(out, q, 429,
             "tenant %s: the upload queue is full (the store is slow or down); "
             "retry later",
             tenant);
        out->retry_after = FULL_RETRY_S;
        goto done;
    }
    size_t written = 0;
    uint64_t rows = 0;
    for (; written < b.n; written++) {
        const struct ingest_profile *ip = &b.v[written];
        rc = seg_upload_add_pprof(u, ip->service, ip->p, ip->labels, ip->nlabels, ip->time_ms,
                                  ip->nrows);
        if (rc)
            break;
        rows += ip->nrows;
    }
    r->st.profiles += written;
    r->st.samples += rows;
    tn->profiles += written;
    tn->samples += rows;
    r->st.rejected_profiles += (uint64_t)b.rejected;
    if (!rc) {
        r->st.requests++;
        r->st.bytes += q->len;
        tn->requests++;
    }
    pthread_mutex_unlock(&r->mu);
    if (rc) {
        log_error("receiver: tenant %s: writing profile %zu of %zu: %s", tenant, written + 1, b.n,
                  strerror(-rc));
        fail(out, q, 500, "writing profile %zu of %zu: %s", written + 1, b.n, strerror(-rc));
        goto done;
    }
    if (otlp) {
        otlp_ok(out, &b, json);
    } else if (push) { /* an empty PushResponse */
        out->status = 200;
        out->content_type = json ? "application/json" : "application/proto";
        set_body(out, json ? "{}" : "", json ? 2 : 0);
    } else {
        out->status = 200;
        out->content_type = "text/plain";
        set_body(out, "", 0);
    }
done:
    free(decoded);
    ingest_batch_free(&b);
    pthread_mutex_lock(&r->mu);
    count_answer(r, q, out->status, q->len);
    pthread_mutex_unlock(&r->mu);
}

/* ---- gRPC ------------------------------------------------------------------ */

/* An Export call goes through receiver_handle as the OTLP/HTTP request it
 * is the same as: the same checks, limits, tenants and writers, the same
 * ExportProfilesServiceResponse; its metadata stands for the headers. */
static const char *grpc_meta(void *ctx, const char *name)
{
    const struct grpc_call *c = ctx;
    if (!strcasecmp(name, "Authorization"))
        return c->authorization;
    if (!strcasecmp(name, "X-Scope-OrgID"))
        return c->tenant;
    if (!strcasecmp(name, "Content-Type"))
        return "application/x-protobuf"; /* grpc.c took application/grpc */
    return NULL;                         /* no Content-Encoding: grpc.c gunzipped */
}

static unsigned grpc_code(unsigned status)
{
    if (status == 200)
        return GRPC_OK;
    if (status == 413)
        return GRPC_RESOURCE_EXHAUSTED; /* what gRPC says of a message too large */
    return rpc_code(status);
}

/* What grpc.c refused before a call got here (framing, sizes, the
 * budget, content-type, method): counted as the HTTP side counts its own. */
static void grpc_refused(void *ctx, unsigned status, size_t bytes)
{
    struct receiver *r = ctx;
    struct rx_request q = {.method = "POST", .path = OTLP_PATH, .grpc = true};

    pthread_mutex_lock(&r->mu);
    count_answer(r, &q, status, bytes);
    pthread_mutex_unlock(&r->mu);
}

static void grpc_export(void *ctx, const struct grpc_call *call, struct grpc_reply *out)
{
    struct receiver *r = ctx;
    struct rx_request q = {.method = "POST",
                           .path = OTLP_PATH,
                           .header = grpc_meta,
                           .ctx = (void *)call,
                           .body = call->msg,
                           .len = call->len,
                           .grpc = true};
    struct rx_response rs;

    receiver_handle(r, &q, &rs);
    out->code = grpc_code(rs.status);
    if (out->code == GRPC_OK) {
        out->body = (uint8_t *)rs.body;
        out->len = rs.len;
        return;
    }
    snprintf(out->message, sizeof(out->message), "%s", rs.message);
    out->retry_s = rs.retry_after; /* a full upload queue: retry, in a while */
    free(rs.body);
}

/* ---- the daemon ------------------------------------------------------------ */

struct conn {
    uint8_t *body;
    size_t len, held; /* held: bytes counted in r->inflight */
    unsigned refuse;  /* 413 or 429: the rest of the body is not kept */
    bool started;
};

static const char *mhd_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static const char *mhd_param(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result send_response(struct MHD_Connection *c, struct rx_response *rs)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(rs->len, rs->body ? rs->body : (void *)"",
                                        rs->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    char ra[16];
    if (!resp) {
        free(rs->body);
        return MHD_NO;
    }
    if (rs->content_type)
        MHD_add_response_header(resp, "Content-Type", rs->content_type);
    if (rs->retry_after) {
        snprintf(ra, sizeof(ra), "%u", rs->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (rs->status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"stoke-agent\"");
    enum MHD_Result ret = MHD_queue_response(c, rs->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void release(struct receiver *r, struct conn *cn)
{
    atomic_fetch_sub(&r->inflight, cn->held);
    cn->held = 0;
    free(cn->body);
    cn->body = NULL;
}

static bool expects_continue(struct MHD_Connection *c)
{
    const char *e = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
    return e && strcasecmp(e, "100-continue") == 0;
}

static enum MHD_Result refuse(struct receiver *r, struct MHD_Connection *c, const char *url,
                              struct conn *cn)
{
    struct rx_request q = {.method = "POST", .path = url, .header = mhd_header, .ctx = c};
    struct rx_response rs = {0};
    if (cn->refuse == 413)
        fail(&rs, &q, 413, "body: larger than %zu bytes", r->o.max_body);
    else {
        fail(&rs, &q, 429, "the receiver holds %zu bytes of bodies already; retry later",
             r->o.pending_bytes);
        rs.retry_after = BUSY_RETRY_S;
    }
    pthread_mutex_lock(&r->mu);
    count_answer(r, &q, rs.status, cn->len);
    pthread_mutex_unlock(&r->mu);
    release(r, cn);
    return send_response(c, &rs);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct receiver *r = cls;
    struct conn *cn = *con_cls;

    if (!cn) {
        if (!(cn = calloc(1, sizeof(*cn))))
            return MHD_NO;
        *con_cls = cn;
        /* refuse at once what the head already says is too big or too much */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
        if (n > r->o.max_body)
            cn->refuse = 413;
        else if (atomic_load(&r->inflight) + n > r->o.pending_bytes)
            cn->refuse = 429;
        /* A client that waits for 100-continue gets the refusal before it
         * sends a byte. One that is already sending a body we could take
         * (a 429) has it read and dropped, and the answer follows: closing
         * on unread data resets the connection, and the client would see
         * no status at all instead of the Retry-After. */
        if (cn->refuse == 413 || (cn->refuse && expects_continue(c)))
            return refuse(r, c, url, cn);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cn->refuse)
            return MHD_YES;
        if (cn->len + n > r->o.max_body)
            cn->refuse = 413;
        else if (atomic_fetch_add(&r->inflight, n) + n > r->o.pending_bytes) {
            atomic_fetch_sub(&r->inflight, n);
            cn->refuse = 429;
        }
        if (cn->refuse) {
            release(r, cn);
            return MHD_YES;
        }
        cn->held += n; /* counted in r->inflight above */
        uint8_t *nb = realloc(cn->body, cn->len + n);
        if (!nb)
            return MHD_NO;
        cn->body = nb;
        memcpy(cn->body + cn->len, upload_data, n);
        cn->len += n;
        return MHD_YES;
    }
    if (cn->refuse)
        return refuse(r, c, url, cn);
    struct rx_request q = {.method = method,
                           .path = url,
                           .header = mhd_header,
                           .param = mhd_param,
                           .ctx = c,
                           .body = cn->body,
                           .len = cn->len};
    struct rx_response rs;
    receiver_handle(r, &q, &rs);
    release(r, cn);
    return send_response(c, &rs);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct receiver *r = cls;
    struct conn *cn = *con_cls;
    if (cn) {
        release(r, cn);
        free(cn);
        *con_cls = NULL;
    }
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_debug("receiver: %s", msg);
}

static struct receiver *start_grpc(struct receiver *r, char *err, size_t errlen);

struct receiver *receiver_new(const struct receiver_opts *o, char *err, size_t errlen)
{
    struct receiver *r = calloc(1, sizeof(*r));
    struct addrinfo *ai = NULL;

    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->o = *o;
    if (!r->o.max_body)
        r->o.max_body = 16u << 20;
    if (!r->o.max_decoded)
        r->o.max_decoded = 64u << 20;
    if (!r->o.pending_bytes)
        r->o.pending_bytes = 64u << 20;
    if (!r->o.max_tenants)
        r->o.max_tenants = 16;
    pthread_mutex_init(&r->mu, NULL);
    if (o->own) {
        r->t = calloc(1, sizeof(*r->t));
        if (!r->t || !(r->t[0].name = strdup(o->upload.tenant ? o->upload.tenant : "default"))) {
            snprintf(err, errlen, "out of memory");
            receiver_free(r, 0);
            return NULL;
        }
        r->t[0].u = o->own;
        r->nt = r->st.tenants = 1;
    }
    if (!o->listen)
        return o->listen_grpc ? start_grpc(r, err, errlen) : r;
    if (listen_resolve(o->listen, "--receive", &ai, err, errlen)) {
        receiver_free(r, 0);
        return NULL;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    r->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, r, MHD_OPTION_EXTERNAL_LOGGER, on_log,
                            r, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED,
                            on_done, r, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_CONNECTION_LIMIT, 512u, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!r->d) {
        snprintf(err, errlen, "--receive %s: cannot listen (address in use or not permitted)",
                 o->listen);
        receiver_free(r, 0);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
    r->port = di ? di->port : 0;
    return o->listen_grpc ? start_grpc(r, err, errlen) : r;
}

static struct receiver *start_grpc(struct receiver *r, char *err, size_t errlen)
{
    struct grpc_server_opts go = {
        .listen = r->o.listen_grpc,
        .flag = "--receive-grpc",
        .limits = {.max_msg = r->o.max_body,
                   .max_decoded = r->o.max_decoded,
                   .inflight = &r->inflight,
                   .pending = r->o.pending_bytes,
                   .busy_retry_s = BUSY_RETRY_S,
                   .refused = grpc_refused},
        .handler = grpc_export,
        .ctx = r,
    };
    r->g = grpc_server_new(&go, err, errlen);
    if (!r->g) {
        receiver_free(r, 0);
        return NULL;
    }
    return r;
}

unsigned receiver_port(const struct receiver *r)
{
    return r->port;
}

unsigned receiver_grpc_port(const struct receiver *r)
{
    return r->g ? grpc_server_port(r->g) : 0;
}

void receiver_lock(struct receiver *r)
{
    pthread_mutex_lock(&r->mu);
}

void receiver_unlock(struct receiver *r)
{
    pthread_mutex_unlock(&r->mu);
}

void receiver_tick(struct receiver *r)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nt; i++) {
        int rc = seg_upload_tick(r->t[i].u);
        if (rc)
            log_error("receiver: tenant %s: flushing: %s", r->t[i].name, strerror(-rc));
    }
    pthread_mutex_unlock(&r->mu);
}

void receiver_get_stats(struct receiver *r, struct receiver_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->st;
    pthread_mutex_unlock(&r->mu);
}

size_t receiver_get_tenant_stats(struct receiver *r, struct receiver_tenant_stats *out, size_t cap)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->nt;
    for (size_t i = 0; i < n && i < cap; i++) {
        snprintf(out[i].name, sizeof(out[i].name), "%s", r->t[i].name);
        out[i].requests = r->t[i].requests;
        out[i].profiles = r->t[i].profiles;
        out[i].samples = r->t[i].samples;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

void receiver_free(struct receiver *r, unsigned timeout_ms)
{
    if (!r)
        return;
    if (r->d)
        MHD_stop_daemon(r->d);
    grpc_server_free(r->g);
    for (size_t i = 0; r->t && i < r->nt; i++) {
        if (r->t[i].st) { /* a tenant of the receiver's own */
            seg_upload_flush(r->t[i].u);
            seg_upload_drain(r->t[i].u, timeout_ms);
            seg_upload_free(r->t[i].u, 0);
            store_close(r->t[i].st);
        }
        free(r->t[i].name);
    }
    free(r->t);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
