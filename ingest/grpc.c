/* SPDX-License-Identifier: Apache-2.0 */
#include "ingest/grpc.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/gzip.h"

#define MAX_META 256 /* one kept metadata value */

struct gstream {
    int32_t id;
    bool post, path_ok;
    char ctype[64], encoding[32];
    char *auth, *tenant;
    size_t header_bytes;
    uint8_t *buf; /* the request body (prefix + message) */
    size_t len, held;
    bool answered;
    bool rst_after; /* the client was still sending: reset once answered */
    uint8_t *resp;  /* prefix + response message */
    size_t resp_len, resp_off;
    struct gstream *prev, *next; /* the connection's (nghttp2 frees its own, not ours) */
};

struct grpc_conn {
    nghttp2_session *s;
    struct grpc_limits l;
    grpc_handler_fn h;
    void *ctx;
    struct gstream *streams;
};

/* ---- answers ---------------------------------------------------------------- */

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

static void release(struct grpc_conn *c, struct gstream *st)
{
    if (st->held && c->l.inflight)
        atomic_fetch_sub(c->l.inflight, st->held);
    st->held = 0;
    free(st->buf);
    st->buf = NULL;
    st->len = 0;
}

/* A trailers-only answer; what the client sends after it is dropped. A
 * refusal of grpc.c's own (@why: the HTTP status the HTTP receiver would
 * answer) is reported to the limits' refused hook; the handler's answers
 * (@why 0) are the handler's to count. @retry_s >= 0 adds
 * grpc-status-details-bin with a RetryInfo of that many seconds (the
 * OTLP specification's "retry, after this long"; without it a
 * RESOURCE_EXHAUSTED is final). With @stop, the stream is reset
 * (NO_ERROR) once the answer is out, so a client still sending a body
 * too large stops (some clients, curl's HTTP/2 among them, then lose the
 * answer itself: only for the refusals of a body). */
static void answer_error(struct grpc_conn *c, struct gstream *st, unsigned why, unsigned http,
                         unsigned code, const char *msg, int retry_s, bool stop)
{
    char status[4], gcode[12], gmsg[1024];
    struct wbuf details = {0};

    if (st->answered)
        return;
    st->answered = true;
    if (why && c->l.refused)
        c->l.refused(c->ctx, why, st->len);
    release(c, st);
    snprintf(status, sizeof(status), "%u", http);
    snprintf(gcode, sizeof(gcode), "%u", code);
    grpc_percent_encode(msg, gmsg, sizeof(gmsg));
    nghttp2_nv nv[6] = {
        NV(":status", status),
        NV("content-type", "application/grpc"),
        NV("grpc-status", gcode),
        NV("grpc-message", gmsg),
    };
    size_t nnv = 4;
    if (code == GRPC_UNIMPLEMENTED) /* only with an encoding refused */
        nv[nnv++] = (nghttp2_nv)NV("grpc-accept-encoding", "identity,gzip");
    if (retry_s >= 0) {
        grpc_status_details(&details, code, msg, (unsigned)retry_s);
        if (!details.err) /* out of memory: a final answer, as without */
            nv[nnv++] = (nghttp2_nv)NV("grpc-status-details-bin", details.s);
    }
    nghttp2_submit_response(c->s, st->id, nv, nnv, NULL); /* copies nv */
    wb_free(&details);
    st->rst_after = stop; /* after the answer is out: on_sent */
}

static ssize_t read_resp(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct gstream *st = src->ptr;
    size_t n = st->resp_len - st->resp_off;

    if (n > length)
        n = length;
    memcpy(buf, st->resp + st->resp_off, n);
    st->resp_off += n;
    if (st->resp_off == st->resp_len) {
        nghttp2_nv tr[] = {NV("grpc-status", "0")};
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (nghttp2_submit_trailer(s, id, tr, 1) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

static void answer_ok(struct grpc_conn *c, struct gstream *st, const uint8_t *body, size_t len)
{
    st->answered = true;
    st->resp = malloc(len + 5);
    if (!st->resp) {
        st->answered = false;
        answer_error(c, st, 0, 200, GRPC_UNAVAILABLE, "out of memory", -1, false);
        return;
    }
    grpc_frame_prefix(st->resp, false, (uint32_t)len);
    if (len)
        memcpy(st->resp + 5, body, len);
    st->resp_len = len + 5;
    nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_resp};
    nghttp2_submit_response(c->s, st->id, nv, 2, &dp);
}

/* ---- requests --------------------------------------------------------------- */

static bool ctype_grpc(const char *ct)
{
    /* application/grpc, application/grpc+proto, application/grpc;... */
    return !strncasecmp(ct, "application/grpc", 16) &&
           (ct[16] == 0 || ct[16] == '+' || ct[16] == ';');
}

/* The headers are whole: refuses what no message can make right. */
static void check_headers(struct grpc_conn *c, struct gstream *st)
{
    char msg[160];

    if (!st->path_ok || !st->post) {
        answer_error(c, st, 404, 200, GRPC_UNIMPLEMENTED,
                     "unknown method (this receiver serves POST " GRPC_EXPORT_PATH ")", -1, false);
        return;
    }
    if (!ctype_grpc(st->ctype)) {
        snprintf(msg, sizeof(msg), "content-type %.64s: not application/grpc",
                 st->ctype[0] ? st->ctype : "(none)");
        answer_error(c, st, 415, 415, GRPC_INVALID_ARGUMENT, msg, -1, false);
    }
}

/* The request is whole: unframes, gunzips and hands it to the handler. */
static void finish(struct grpc_conn *c, struct gstream *st)
{
    char err[256];
    const uint8_t *msg;
    size_t len;
    bool z;
    uint8_t *plain = NULL;

    if (st->answered)
        return;
    int rc = grpc_unframe(st->buf, st->len, c->l.max_msg, &msg, &len, &z, err, sizeof(err));
    if (rc) {
        answer_error(c, st, rc == -EFBIG ? 413 : 400, 200,
                     rc == -EFBIG ? GRPC_RESOURCE_EXHAUSTED : GRPC_INVALID_ARGUMENT, err, -1,
                     false);
        return;
    }
    if (z) {
        const char *e = st->encoding;
        if (!e[0] || !strcasecmp(e, "identity")) {
            answer_error(c, st, 400, 200, GRPC_INVALID_ARGUMENT,
                         "compressed flag set without a grpc-encoding", -1, false);
            return;
        }
        if (strcasecmp(e, "gzip")) {
            snprintf(err, sizeof(err), "grpc-encoding %.31s: not supported (gzip or identity)", e);
            answer_error(c, st, 415, 200, GRPC_UNIMPLEMENTED, err, -1, false);
            return;
        }
        rc = gzip_decompress(msg, len, c->l.max_decoded, &plain, &len);
        if (rc) {
            if (rc == -EFBIG)
                snprintf(err, sizeof(err), "message: more than %zu bytes after gunzip",
                         c->l.max_decoded);
            else
                snprintf(err, sizeof(err), "message: %s",
                         rc == -ENOMEM ? "out of memory" : "damaged or truncated gzip data");
            answer_error(c, st,
                         rc == -EFBIG    ? 413
                         : rc == -ENOMEM ? 503
                                         : 400,
                         200,
                         rc == -EFBIG    ? GRPC_RESOURCE_EXHAUSTED
                         : rc == -ENOMEM ? GRPC_UNAVAILABLE
                                         : GRPC_INVALID_ARGUMENT,
                         err, -1, false);
            return;
        }
        msg = plain;
    }
    struct grpc_call call = {
        .authorization = st->auth, .tenant = st->tenant, .msg = msg, .len = len};
    struct grpc_reply r = {0};
    c->h(c->ctx, &call, &r);
    free(plain);
    release(c, st);
    if (r.code == GRPC_OK)
        answer_ok(c, st, r.body, r.len);
    else
        answer_error(c, st, 0, 200, r.code, r.message, r.retry_s ? (int)r.retry_s : -1, false);
    free(r.body);
}

/* ---- nghttp2 callbacks ------------------------------------------------------ */

static struct gstream *stream_of(nghttp2_session *s, int32_t id)
{
    return nghttp2_session_get_stream_user_data(s, id);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct gstream *st = calloc(1, sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    struct grpc_conn *c = ud;
    st->id = f->hd.stream_id;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    nghttp2_session_set_stream_user_data(s, st->id, st);
    return 0;
}

static void keep(char *dst, size_t cap, const uint8_t *v, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers of a request: nothing of ours is in them */
    struct gstream *st = stream_of(s, f->hd.stream_id);
    if (!st)
        return 0;
    st->header_bytes += namelen + valuelen + 32; /* HTTP/2's own accounting */
    if (st->header_bytes > GRPC_MAX_HEADERS)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
#define IS(lit) (namelen == sizeof(lit) - 1 && !memcmp(name, lit, namelen))
    if (IS(":method")) {
        st->post = valuelen == 4 && !memcmp(value, "POST", 4);
    } else if (IS(":path")) {
        st->path_ok =
            valuelen == sizeof(GRPC_EXPORT_PATH) - 1 && !memcmp(value, GRPC_EXPORT_PATH, valuelen);
    } else if (IS("content-type")) {
        keep(st->ctype, sizeof(st->ctype), value, valuelen);
    } else if (IS("grpc-encoding")) {
        keep(st->encoding, sizeof(st->encoding), value, valuelen);
    } else if (IS("authorization") || IS("x-scope-orgid")) {
        char **dst = IS("authorization") ? &st->auth : &st->tenant;
        if (valuelen > MAX_META)
            valuelen = MAX_META; /* what is cut is wrong either way, and said so */
        free(*dst);
        *dst = strndup((const char *)value, valuelen);
        if (!*dst)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
#undef IS
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t n,
                   void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st = stream_of(s, id);
    char err[256];

    if (!st || st->answered)
        return 0; /* what comes after an answer is dropped */
    if (st->len + n > c->l.max_msg + 5) {
        const uint8_t *m;
        size_t l;
        bool z;
        /* the prefix tells a message too long from a second message */
        uint8_t head[5];
        size_t have = st->len < 5 ? st->len : 5; /* st->len + n > 5: head is whole */
        if (have)
            memcpy(head, st->buf, have);
        memcpy(head + have, data, 5 - have);
        int rc = grpc_unframe(head, 5, c->l.max_msg, &m, &l, &z, err, sizeof(err));
        if (rc != -EFBIG)
            snprintf(err, sizeof(err), "more than one request message (a unary call takes one)");
        answer_error(c, st, rc == -EFBIG ? 413 : 400, 200,
                     rc == -EFBIG ? GRPC_RESOURCE_EXHAUSTED : GRPC_INVALID_ARGUMENT, err, -1, true);
        return 0;
    }
    if (c->l.inflight) {
        size_t was = atomic_fetch_add(c->l.inflight, n);
        if (was + n > c->l.pending) {
            atomic_fetch_sub(c->l.inflight, n);
            snprintf(err, sizeof(err),
                     "the receiver holds %zu bytes of requests already; retry later", c->l.pending);
            answer_error(c, st, 429, 200, GRPC_RESOURCE_EXHAUSTED, err,
                         c->l.busy_retry_s ? (int)c->l.busy_retry_s : 1, true);
            return 0;
        }
        st->held += n;
    }
    uint8_t *nb = realloc(st->buf, st->len + n);
    if (!nb) {
        answer_error(c, st, 503, 200, GRPC_UNAVAILABLE, "out of memory", -1, true);
        return 0;
    }
    st->buf = nb;
    memcpy(st->buf + st->len, data, n);
    st->len += n;
    /* a prefix announcing too much is refused before the rest arrives */
    if (st->len >= 5 && st->len - n < 5 && grpc_frame_len(st->buf) > c->l.max_msg) {
        snprintf(err, sizeof(err), "message of %u bytes: larger than %zu", grpc_frame_len(st->buf),
                 c->l.max_msg);
        answer_error(c, st, 413, 200, GRPC_RESOURCE_EXHAUSTED, err, -1, true);
    }
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct grpc_conn *c = ud;
    struct gstream *st;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        st = stream_of(s, f->hd.stream_id);
        if (!st)
            return 0;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
            check_headers(c, st);
        if (end)
            finish(c, st);
        break;
    case NGHTTP2_DATA:
        st = stream_of(s, f->hd.stream_id);
        if (st && end)
            finish(c, st);
        break;
    }
    return 0;
}

static void stream_destroy(struct grpc_conn *c, struct gstream *st)
{
    release(c, st);
    free(st->auth);
    free(st->tenant);
    free(st->resp);
    free(st);
}

static void stream_free(struct grpc_conn *c, struct gstream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    stream_destroy(c, st);
}

/* A trailers-only answer to a client still sending went out: stop its
 * stream (NO_ERROR), as grpc-go does, rather than read what is dropped. */
static int on_sent(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct gstream *st = stream_of(s, f->hd.stream_id);
    if (st && st->rst_after) {
        st->rst_after = false;
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct gstream *st = stream_of(s, id);

    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    stream_free(ud, st);
    return 0;
}

/* ---- the connection --------------------------------------------------------- */

struct grpc_conn *grpc_conn_new(const struct grpc_limits *l, grpc_handler_fn h, void *ctx)
{
    struct grpc_conn *c = calloc(1, sizeof(*c));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;

    if (!c || nghttp2_session_callbacks_new(&cb) || nghttp2_option_new(&opt))
        goto fail;
    c->l = *l;
    c->h = h;
    c->ctx = ctx;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_sent);
    /* streams past the advertised maximum are refused by nghttp2 itself */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    if (nghttp2_session_server_new2(&c->s, cb, c, opt))
        goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, GRPC_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GRPC_MAX_HEADERS},
    };
    if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])))
        goto fail;
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    return c;
fail:
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    grpc_conn_free(c);
    return NULL;
}

int grpc_conn_recv(struct grpc_conn *c, const uint8_t *p, size_t n)
{
    ssize_t rc = nghttp2_session_mem_recv(c->s, p, n);
    if (rc == NGHTTP2_ERR_NOMEM)
        return -ENOMEM;
    return rc < 0 ? -EPROTO : 0;
}

long grpc_conn_pending(struct grpc_conn *c, const uint8_t **out)
{
    const uint8_t *p;
    ssize_t n = nghttp2_session_mem_send(c->s, &p);
    if (n < 0)
        return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
    *out = p;
    return (long)n;
}

bool grpc_conn_done(const struct grpc_conn *c)
{
    return !nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s);
}

void grpc_conn_free(struct grpc_conn *c)
{
    if (!c)
        return;
    nghttp2_session_del(c->s); /* no close callbacks: the streams left are freed here */
    for (struct gstream *st = c->streams, *next; st; st = next) {
        next = st->next;
        stream_destroy(c, st);
    }
    free(c);
}
