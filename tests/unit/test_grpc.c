/* SPDX-License-Identifier: Apache-2.0 */
/* gRPC both ways. ingest/grpc.c: the length-prefixed framing,
 * grpc-message's encoding, and whole calls against a real HTTP/2 client
 * (an nghttp2 client session in the same process, bytes passed by hand:
 * no socket): answers, trailers, gzip, the refusals (and their report to
 * the refused hook) and the shared budget (its answer's RetryInfo).
 * common/grpc_frame.c's grpc-status-details-bin both ways.
 * exporter/http_push.c's gRPC mode: reading grpc-status, grpc-message and
 * RetryInfo, the retry policy by code, and whole exports through libcurl
 * to ingest/grpc_server.c over a socket: OK, partial success, retried and
 * dropped codes, gzip, RESOURCE_EXHAUSTED with RetryInfo (retried after
 * its delay) and without (dropped at once), final stats after a drain. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/gzip.h"
#include "exporter/http_push.h"
#include "exporter/otlp.h"
#include "ingest/grpc.h"
#include "ingest/grpc_server.h"
#include "grpc/status.pb-c.h"

/* ---- framing ------------------------------------------------------------ */

static void test_unframe(void **unused)
{
    static const struct {
        const char *what;
        const char *in;
        size_t n;
        int rc;
        size_t len;
        bool z;
    } cases[] = {
        {"empty", "", 0, -EBADMSG, 0, false},
        {"flag 2", "\2\0\0\0\0", 5, -EBADMSG, 0, false},
        {"prefix cut short", "\0\0\0", 3, -EBADMSG, 0, false},
        {"zero-length message", "\0\0\0\0\0", 5, 0, 0, false},
        {"one message", "\0\0\0\0\3abc", 8, 0, 3, false},
        {"compressed", "\1\0\0\0\2xy", 7, 0, 2, true},
        {"message cut short", "\0\0\0\0\4abc", 8, -EBADMSG, 0, false},
        {"two messages", "\0\0\0\0\1a\0\0\0\0\1b", 12, -EBADMSG, 0, false},
        {"past max (prefix alone)", "\0\0\0\1\0", 5, -EFBIG, 0, false},
        {"past max by one", "\0\0\0\0\x41", 5, -EFBIG, 0, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const uint8_t *m = NULL;
        size_t len = 99;
        bool z = false;
        char err[128] = "";
        int rc = grpc_unframe((const uint8_t *)cases[i].in, cases[i].n, 64, &m, &len, &z, err,
                              sizeof(err));
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d, want %d (%s)", cases[i].what, rc, cases[i].rc, err);
        if (rc == 0) {
            assert_int_equal(len, cases[i].len);
            assert_true(z == cases[i].z);
            assert_ptr_equal(m, (const uint8_t *)cases[i].in + 5);
        } else {
            assert_true(err[0]); /* a refusal says why */
        }
    }
}

static void test_percent(void **unused)
{
    char out[64];
    grpc_percent_encode("a%b\nc \xc3\xa9~", out, sizeof(out));
    assert_string_equal(out, "a%25b%0Ac %C3%A9~");
    grpc_percent_encode("\n\n\n", out, 7); /* never a cut escape */
    assert_string_equal(out, "%0A%0A");
    /* and back, as the exporter reads it: control characters never pass */
    static const char in[] = "a%25b%0Ac %C3%A9~%zz%4";
    grpc_percent_decode(in, sizeof(in) - 1, out, sizeof(out));
    assert_string_equal(out, "a%b?c \xc3\xa9~%zz%4");
    grpc_percent_decode("x\x01%7F%41", 8, out, sizeof(out));
    assert_string_equal(out, "x??A");
    grpc_percent_decode("abcdef", 6, out, 4); /* cut, terminated */
    assert_string_equal(out, "abc");
}

/* ---- calls through a real HTTP/2 client ---------------------------------- */

struct seen { /* what the handler got */
    int calls;
    unsigned refused[16]; /* the refused hook's statuses, in order */
    int nrefused;
    char auth[64], tenant[64];
    uint8_t msg[256];
    size_t len;
};

static void on_refused(void *ctx, unsigned status, size_t bytes)
{
    struct seen *s = ctx;
    if (s->nrefused < 16)
        s->refused[s->nrefused] = status;
    s->nrefused++;
}

static void handler(void *ctx, const struct grpc_call *c, struct grpc_reply *out)
{
    struct seen *s = ctx;
    s->calls++;
    snprintf(s->auth, sizeof(s->auth), "%s", c->authorization ? c->authorization : "");
    snprintf(s->tenant, sizeof(s->tenant), "%s", c->tenant ? c->tenant : "");
    s->len = c->len < sizeof(s->msg) ? c->len : sizeof(s->msg);
    memcpy(s->msg, c->msg, s->len);
    if (c->len == 4 && !memcmp(c->msg, "fail", 4)) {
        out->code = GRPC_INVALID_ARGUMENT;
        snprintf(out->message, sizeof(out->message), "bad 100%%\n");
        return;
    }
    out->code = GRPC_OK;
    out->body = malloc(c->len + 3);
    memcpy(out->body, "ok:", 3);
    memcpy(out->body + 3, c->msg, c->len);
    out->len = c->len + 3;
}

struct result {
    int http, grpc_status; /* -1: not sent */
    char grpc_message[256], accept_encoding[64], details[1024];
    uint8_t data[512];
    size_t ndata;
    bool closed;
    uint32_t rst;
};

struct client {
    nghttp2_session *s;
    struct result r;
    const uint8_t *body;
    size_t len, off;
};

static int c_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                    const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    struct client *c = ud;
    char v[256];
    snprintf(v, sizeof(v), "%.*s", (int)vl, (const char *)value);
    if (nl == 7 && !memcmp(name, ":status", 7))
        c->r.http = atoi(v);
    else if (nl == 11 && !memcmp(name, "grpc-status", 11))
        c->r.grpc_status = atoi(v);
    else if (nl == 12 && !memcmp(name, "grpc-message", 12))
        snprintf(c->r.grpc_message, sizeof(c->r.grpc_message), "%s", v);
    else if (nl == 23 && !memcmp(name, "grpc-status-details-bin", 23))
        snprintf(c->r.details, sizeof(c->r.details), "%.*s", (int)vl, (const char *)value);
    else if (nl == 20 && !memcmp(name, "grpc-accept-encoding", 20))
        snprintf(c->r.accept_encoding, sizeof(c->r.accept_encoding), "%.63s", v);
    return 0;
}

static int c_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                  void *ud)
{
    struct client *c = ud;
    assert_true(c->r.ndata + n <= sizeof(c->r.data));
    memcpy(c->r.data + c->r.ndata, d, n);
    c->r.ndata += n;
    return 0;
}

static int c_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct client *c = ud;
    c->r.closed = true;
    c->r.rst = code;
    return 0;
}

static ssize_t c_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                      nghttp2_data_source *src, void *ud)
{
    struct client *c = ud;
    size_t n = c->len - c->off < length ? c->len - c->off : length;
    memcpy(buf, c->body + c->off, n);
    c->off += n;
    if (c->off == c->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Moves bytes both ways until neither side has more. */
static void pump(struct client *c, struct grpc_conn *g)
{
    for (int moved = 1, rounds = 0; moved; rounds++) {
        assert_true(rounds < 10000);
        moved = 0;
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(c->s, &p)) > 0) {
            moved = 1;
            assert_int_equal(grpc_conn_recv(g, p, (size_t)n), 0);
        }
        long m;
        while ((m = grpc_conn_pending(g, &p)) > 0) {
            moved = 1;
            assert_int_equal(nghttp2_session_mem_recv(c->s, p, (size_t)m), m);
        }
    }
}

#define CNV(n, v)                                                                                  \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE                 \
    }

struct req {
    const char *path, *ctype, *encoding, *auth, *tenant;
};

/* One call on a new connection: the body as given (prefix included). */
static struct result call(const struct grpc_limits *l, struct seen *seen, const struct req *q,
                          const void *body, size_t len)
{
    struct client c = {.r = {.http = -1, .grpc_status = -1}, .body = body, .len = len};
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_close);
    assert_int_equal(nghttp2_session_client_new(&c.s, cb, &c), 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c.s, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_nv nv[8] = {
        CNV(":method", "POST"),
        CNV(":scheme", "http"),
        CNV(":authority", "localhost"),
        CNV(":path", q->path ? q->path : GRPC_EXPORT_PATH),
    };
    size_t n = 4;
    if (q->ctype)
        nv[n++] = (nghttp2_nv)CNV("content-type", q->ctype);
    if (q->encoding)
        nv[n++] = (nghttp2_nv)CNV("grpc-encoding", q->encoding);
    if (q->auth)
        nv[n++] = (nghttp2_nv)CNV("authorization", q->auth);
    if (q->tenant)
        nv[n++] = (nghttp2_nv)CNV("x-scope-orgid", q->tenant);
    nghttp2_data_provider dp = {.read_callback = c_read};
    assert_true(nghttp2_submit_request(c.s, NULL, nv, n, &dp, NULL) > 0);
    struct grpc_conn *g = grpc_conn_new(l, handler, seen);
    assert_non_null(g);
    pump(&c, g);
    grpc_conn_free(g);
    nghttp2_session_del(c.s);
    return c.r;
}

static void frame(uint8_t *out, uint8_t flag, const void *msg, size_t n)
{
    out[0] = flag;
    out[1] = (uint8_t)(n >> 24);
    out[2] = (uint8_t)(n >> 16);
    out[3] = (uint8_t)(n >> 8);
    out[4] = (uint8_t)n;
    memcpy(out + 5, msg, n);
}

static const struct req GOOD = {.ctype = "application/grpc", .auth = "Bearer t", .tenant = "ten"};

static void test_call_ok(void **unused)
{
    atomic_size_t inflight = 0;
    struct grpc_limits l = {.max_msg = 1024,
                            .max_decoded = 4096,
                            .inflight = &inflight,
                            .pending = 1 << 20,
                            .refused = on_refused};
    struct seen seen = {0};
    uint8_t body[64];
    frame(body, 0, "hello", 5);

    struct result r = call(&l, &seen, &GOOD, body, 10);
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.auth, "Bearer t");
    assert_string_equal(seen.tenant, "ten");
    assert_int_equal(seen.len, 5);
    assert_memory_equal(seen.msg, "hello", 5);
    assert_int_equal(r.http, 200);
    assert_int_equal(r.grpc_status, 0); /* in the trailers, after the data */
    assert_int_equal(r.ndata, 5 + 8);
    uint8_t want[16];
    frame(want, 0, "ok:hello", 8);
    assert_memory_equal(r.data, want, 13);
    assert_true(r.closed);
    assert_int_equal(r.rst, 0);
    assert_int_equal(atomic_load(&inflight), 0); /* every byte held is given back */

    /* the handler's error: trailers-only, grpc-message percent-encoded */
    frame(body, 0, "fail", 4);
    r = call(&l, &seen, &(struct req){.ctype = "application/grpc+proto"}, body, 9);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(r.http, 200);
    assert_int_equal(r.grpc_status, GRPC_INVALID_ARGUMENT);
    assert_string_equal(r.grpc_message, "bad 100%25%0A");
    assert_int_equal(r.ndata, 0);
    assert_int_equal(seen.nrefused, 0); /* the handler's answers are the handler's to count */
    assert_string_equal(seen.auth, ""); /* no metadata: NULL */
}

static void test_call_gzip(void **unused)
{
    struct grpc_limits l = {.max_msg = 1024, .max_decoded = 64, .refused = on_refused};
    struct seen seen = {0};
    uint8_t *z;
    size_t zn;
    uint8_t body[256];

    assert_int_equal(gzip_compress((const uint8_t *)"squeezed", 8, &z, &zn), 0);
    frame(body, 1, z, zn);
    struct req q = GOOD;
    q.encoding = "gzip";
    struct result r = call(&l, &seen, &q, body, zn + 5);
    assert_int_equal(r.grpc_status, 0);
    assert_int_equal(seen.len, 8);
    assert_memory_equal(seen.msg, "squeezed", 8);

    /* compressed without an encoding; under one this server lacks */
    q.encoding = NULL;
    r = call(&l, &seen, &q, body, zn + 5);
    assert_int_equal(r.grpc_status, GRPC_INVALID_ARGUMENT);
    q.encoding = "snappy";
    r = call(&l, &seen, &q, body, zn + 5);
    assert_int_equal(r.grpc_status, GRPC_UNIMPLEMENTED);
    assert_string_equal(r.accept_encoding, "identity,gzip");
    /* damaged gzip; gzip that inflates past max_decoded */
    body[5 + zn / 2] ^= 0xff;
    q.encoding = "gzip";
    r = call(&l, &seen, &q, body, zn + 5);
    assert_int_equal(r.grpc_status, GRPC_INVALID_ARGUMENT);
    uint8_t zeros[200] = {0};
    free(z);
    assert_int_equal(gzip_compress(zeros, sizeof(zeros), &z, &zn), 0);
    frame(body, 1, z, zn);
    r = call(&l, &seen, &q, body, zn + 5);
    assert_int_equal(r.grpc_status, GRPC_RESOURCE_EXHAUSTED);
    free(z);
    assert_int_equal(seen.calls, 1); /* the refused never reach the handler */
    /* each refusal reported once, as the HTTP receiver's status for it */
    static const unsigned want[] = {400, 415, 400, 413};
    assert_int_equal(seen.nrefused, 4);
    assert_memory_equal(seen.refused, want, sizeof(want));
}

static void test_call_refused(void **unused)
{
    atomic_size_t inflight = 0;
    struct grpc_limits l = {.max_msg = 100,
                            .max_decoded = 4096,
                            .inflight = &inflight,
                            .pending = 1000,
                            .busy_retry_s = 3,
                            .refused = on_refused};
    struct seen seen = {0};
    static uint8_t body[4096];
    unsigned ms;
    struct result r;

    frame(body, 0, "x", 1);
    r = call(&l, &seen, &(struct req){.path = "/other.Service/Export", .ctype = "application/grpc"},
             body, 6);
    assert_int_equal(r.grpc_status, GRPC_UNIMPLEMENTED);
    assert_non_null(strstr(r.grpc_message, "unknown method"));
    r = call(&l, &seen, &(struct req){.ctype = "application/json"}, body, 6);
    assert_int_equal(r.http, 415);
    assert_int_equal(r.grpc_status, GRPC_INVALID_ARGUMENT);
    r = call(&l, &seen, &(struct req){0}, body, 6); /* no content-type */
    assert_int_equal(r.http, 415);
    r = call(&l, &seen, &(struct req){.ctype = "application/grpcx"}, body, 6);
    assert_int_equal(r.http, 415);

    /* too long: the prefix says so, and the rest is not read */
    uint8_t big[200] = {0};
    frame(body, 0, big, sizeof(big));
    r = call(&l, &seen, &GOOD, body, sizeof(big) + 5);
    assert_int_equal(r.grpc_status, GRPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(r.grpc_message, "larger than 100"));
    assert_string_equal(r.details, ""); /* final: no RetryInfo */
    /* a small first message, then more: not one message */
    frame(body, 0, big, 50);
    frame(body + 55, 0, big, 90);
    r = call(&l, &seen, &GOOD, body, 55 + 95);
    assert_int_equal(r.grpc_status, GRPC_INVALID_ARGUMENT);
    r = call(&l, &seen, &GOOD, body, 55 + 6);
    assert_int_equal(r.grpc_status, GRPC_INVALID_ARGUMENT);
    r = call(&l, &seen, &GOOD, body, 0); /* no message */
    assert_int_equal(r.grpc_status, GRPC_INVALID_ARGUMENT);
    r = call(&l, &seen, &GOOD, body, 3); /* a prefix cut short */
    assert_int_equal(r.grpc_status, GRPC_INVALID_ARGUMENT);

    /* the shared budget: others hold all but 20 bytes of it */
    atomic_store(&inflight, 980);
    frame(body, 0, big, 50);
    r = call(&l, &seen, &GOOD, body, 55);
    assert_int_equal(r.grpc_status, GRPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(r.grpc_message, "retry later"));
    /* busy: a RetryInfo of busy_retry_s, in a Status that repeats the answer */
    assert_int_equal(grpc_status_retry_ms(r.details, strlen(r.details), 60000, &ms), 0);
    assert_int_equal(ms, 3000);
    assert_null(strchr(r.details, '=')); /* unpadded, as gRPC sends binary headers */
    uint8_t raw[1024];
    long rawn = base64_decode_lenient(r.details, strlen(r.details), raw, sizeof(raw));
    assert_true(rawn > 0);
    Google__Rpc__Status *gs = google__rpc__status__unpack(NULL, (size_t)rawn, raw);
    assert_non_null(gs);
    assert_int_equal(gs->code, GRPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(gs->message, "retry later"));
    assert_int_equal(gs->n_details, 1);
    assert_string_equal(gs->details[0]->type_url, GRPC_RETRY_INFO_TYPE);
    google__rpc__status__free_unpacked(gs, NULL);
    assert_int_equal(atomic_load(&inflight), 980); /* nothing of this call left counted */
    atomic_store(&inflight, 0);
    r = call(&l, &seen, &GOOD, body, 55);
    assert_int_equal(r.grpc_status, 0);
    assert_int_equal(atomic_load(&inflight), 0);
    assert_int_equal(seen.calls, 1);
    /* every refusal above reported once, as the HTTP receiver's status */
    static const unsigned want[] = {404, 415, 415, 415, 413, 400, 400, 400, 400, 429};
    assert_int_equal(seen.nrefused, 10);
    assert_memory_equal(seen.refused, want, sizeof(want));
}

static void test_garbage(void **unused)
{
    struct grpc_limits l = {.max_msg = 100, .max_decoded = 100};
    struct seen seen = {0};
    struct grpc_conn *g = grpc_conn_new(&l, handler, &seen);
    static const char http1[] = "POST /v1development/profiles HTTP/1.1\r\nHost: x\r\n\r\n";

    assert_int_equal(grpc_conn_recv(g, (const uint8_t *)http1, sizeof(http1) - 1), -EPROTO);
    grpc_conn_free(g);
    /* the preface, then a frame of an unknown length past the maximum */
    g = grpc_conn_new(&l, handler, &seen);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert_int_equal(grpc_conn_recv(g, (const uint8_t *)preface, sizeof(preface) - 1), 0);
    static const uint8_t settings_bad[] = {0xff, 0xff, 0xff, 4, 0, 0, 0, 0, 0};
    int rc = grpc_conn_recv(g, settings_bad, sizeof(settings_bad));
    const uint8_t *p;
    long n = grpc_conn_pending(g, &p); /* SETTINGS, then a GOAWAY */
    assert_true(rc == -EPROTO || n > 0);
    while (grpc_conn_pending(g, &p) > 0)
        ;
    assert_true(grpc_conn_done(g));
    grpc_conn_free(g);
    assert_int_equal(seen.calls, 0);
}

/* ---- grpc-status-details-bin -------------------------------------------- */

static void test_details(void **unused)
{
    struct wbuf b = {0};
    unsigned ms = 7;

    grpc_status_details(&b, GRPC_RESOURCE_EXHAUSTED, "busy", 2);
    assert_int_equal(b.err, 0);
    assert_int_equal(grpc_status_retry_ms(b.s, b.len, 60000, &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(grpc_status_retry_ms(b.s, b.len, 1500, &ms), 0); /* capped */
    assert_int_equal(ms, 1500);
    /* padded, as some servers send it: the same */
    size_t unpadded = b.len;
    while (b.len % 4)
        wb_u8(&b, '=');
    assert_true(b.len > unpadded);
    assert_int_equal(grpc_status_retry_ms(b.s, b.len, 60000, &ms), 0);
    assert_int_equal(ms, 2000);
    wb_free(&b);

    /* a delay of a whole day is capped; a Status without RetryInfo, or with
     * another detail, is no signal; a broken RetryInfo neither */
    Google__Rpc__Duration d = GOOGLE__RPC__DURATION__INIT;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    Google__Rpc__Any any = GOOGLE__RPC__ANY__INIT, *details[] = {&any};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    uint8_t rib[64], sb[256];
    static const struct {
        const char *type_url;
        int64_t seconds;
        int32_t nanos;
        bool broken;
        size_t ndetails;
        int rc;
        unsigned ms;
    } cases[] = {
        {GRPC_RETRY_INFO_TYPE, 86400, 0, false, 1, 0, 60000},
        {GRPC_RETRY_INFO_TYPE, 0, 250000000, false, 1, 0, 250},
        {GRPC_RETRY_INFO_TYPE, -5, 0, false, 1, 0, 0},
        {"example.com/x/google.rpc.RetryInfo", 1, 0, false, 1, 0, 1000},
        {"type.googleapis.com/google.rpc.ErrorInfo", 1, 0, false, 1, -ENOENT, 0},
        {"type.googleapis.com/google.rpc.RetryInfoX", 1, 0, false, 1, -ENOENT, 0},
        {GRPC_RETRY_INFO_TYPE, 1, 0, true, 1, -ENOENT, 0},
        {GRPC_RETRY_INFO_TYPE, 1, 0, false, 0, -ENOENT, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        d.seconds = cases[i].seconds;
        d.nanos = cases[i].nanos;
        ri.retry_delay = &d;
        any.type_url = (char *)cases[i].type_url;
        any.value.len = google__rpc__retry_info__pack(&ri, rib);
        if (cases[i].broken)
            any.value.len--; /* cut short */
        any.value.data = rib;
        st.code = GRPC_RESOURCE_EXHAUSTED;
        st.n_details = cases[i].ndetails;
        st.details = details;
        size_t n = google__rpc__status__pack(&st, sb);
        struct wbuf e = {0};
        base64_encode(&e, sb, n);
        int rc = grpc_status_retry_ms(e.s, e.len, 60000, &ms);
        if (rc != cases[i].rc || ms != cases[i].ms)
            fail_msg("case %zu: %d %u, want %d %u", i, rc, ms, cases[i].rc, cases[i].ms);
        wb_free(&e);
    }
    /* not base64, not a Status, too long */
    static char big[GRPC_DETAILS_MAX + 4];
    memset(big, 'A', sizeof(big));
    assert_int_equal(grpc_status_retry_ms("!!!!", 4, 60000, &ms), -EBADMSG);
    assert_int_equal(grpc_status_retry_ms("/w", 2, 60000, &ms), -EBADMSG);
    assert_int_equal(grpc_status_retry_ms(big, sizeof(big), 60000, &ms), -EBADMSG);
    assert_int_equal(grpc_status_retry_ms("", 0, 60000, &ms), -ENOENT); /* an empty Status */
}

/* ---- the exporter's side (exporter/http_push.c, grpc mode) --------------- */

static void test_answer(void **unused)
{
    static const struct {
        const char *lines; /* '|' between lines */
        long http;
        int code;
        const char *message;
        bool retry_info;
        unsigned retry_ms;
    } cases[] = {
        {"grpc-status: 0\r\n", 200, GRPC_OK, "", false, 0},
        {"Grpc-Status:  14 \r\n|grpc-message: busy%20now%0A\r\n", 200, GRPC_UNAVAILABLE,
         "busy now?", false, 0},
        {"grpc-status: 3\r\n", 415, GRPC_INVALID_ARGUMENT, "", false, 0}, /* grpc-status wins */
        {"grpc-status: x\r\n", 200, GRPC_UNKNOWN, "", false, 0},
        {"grpc-status: 1234\r\n", 200, GRPC_UNKNOWN, "", false, 0},
        {"grpc-status:\r\n", 200, GRPC_UNKNOWN, "", false, 0},
        {"content-type: application/grpc\r\n", 200, GRPC_INTERNAL, "", false, 0}, /* no trailers */
        {"", 503, GRPC_UNAVAILABLE, "", false, 0}, /* a proxy's answer: gRPC's mapping */
        {"", 429, GRPC_UNAVAILABLE, "", false, 0},
        {"", 401, GRPC_UNAUTHENTICATED, "", false, 0},
        {"", 404, GRPC_UNIMPLEMENTED, "", false, 0},
        {"", 400, GRPC_INTERNAL, "", false, 0},
        {"", 418, GRPC_UNKNOWN, "", false, 0},
        {"", 0, -1, "", false, 0}, /* no answer at all */
        {"grpc-status-details-bin: AAA\r\n|grpc-statusx: 5\r\n", 200, GRPC_INTERNAL, "", false, 0},
        /* Status{8, "x", [RetryInfo{1 s}]}, then {1.5 s} (unpadded) */
        {"grpc-status: 8\r\n|grpc-status-details-bin: "
         "CAgSAXgaMgoodHlwZS5nb29nbGVhcGlzLmNvbS9nb29nbGUucnBjLlJldHJ5SW5mbxIGCgQIARAA\r\n",
         200, GRPC_RESOURCE_EXHAUSTED, "", true, 1000},
        {"grpc-status: 8\r\n|grpc-status-details-bin: "
         "CAgSAXgaNgoodHlwZS5nb29nbGVhcGlzLmNvbS9nb29nbGUucnBjLlJldHJ5SW5mbxIKCggIARCAyrXuAQ\r\n",
         200, GRPC_RESOURCE_EXHAUSTED, "", true, 1500},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct grpc_answer a;
        char buf[256];
        grpc_answer_init(&a);
        snprintf(buf, sizeof(buf), "%s", cases[i].lines);
        for (char *save, *l = strtok_r(buf, "|", &save); l; l = strtok_r(NULL, "|", &save))
            grpc_answer_header(&a, l, strlen(l));
        int code = grpc_answer_code(&a, cases[i].http);
        if (code != cases[i].code || strcmp(a.message, cases[i].message) ||
            a.retry_info != cases[i].retry_info || a.retry_ms != cases[i].retry_ms)
            fail_msg("case %zu: code %d '%s' %d %u, want %d '%s'", i, code, a.message, a.retry_info,
                     a.retry_ms, cases[i].code, cases[i].message);
    }
    /* the policy: what OpenTelemetry's exporters retry, and no more */
    static const int retry[] = {-1, 1, 4, 10, 11, 14, 15};
    static const int drop[] = {2, 3, 5, 6, 7, 9, 12, 13, 16, 17, 99};
    assert_int_equal(grpc_push_classify(GRPC_OK, false), PUSH_DONE);
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
        assert_int_equal(grpc_push_classify(retry[i], false), PUSH_RETRY);
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        assert_int_equal(grpc_push_classify(drop[i], false), PUSH_DROP);
    /* RESOURCE_EXHAUSTED: retried only when the server says it recovers */
    assert_int_equal(grpc_push_classify(GRPC_RESOURCE_EXHAUSTED, true), PUSH_RETRY);
    assert_int_equal(grpc_push_classify(GRPC_RESOURCE_EXHAUSTED, false), PUSH_DROP);
}

/* A server whose answer is the message's first byte: 'o' OK (an empty
 * response), 'p' OK with a partial success of 3 profiles, 'z' OK with a
 * gzip'd response message, 'u' UNAVAILABLE, 'i' INVALID_ARGUMENT. */
struct served {
    atomic_int calls[128];
    atomic_int gz_ok;             /* a 'z' call arrived gunzipped, as sent */
    atomic_llong b_first, b_last; /* CLOCK_MONOTONIC ms of the 'b' calls */
    atomic_int refused413;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void export_handler(void *ctx, const struct grpc_call *c, struct grpc_reply *out)
{
    struct served *sv = ctx;
    /* ExportProfilesServiceResponse{partial_success{rejected_profiles: 3,
     * error_message: "x"}} */
    static const uint8_t partial[] = {0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, 'x'};
    unsigned char k = c->len ? c->msg[0] & 127 : 0;

    atomic_fetch_add(&sv->calls[k], 1);
    out->code = GRPC_OK;
    if (k == 'u') {
        out->code = GRPC_UNAVAILABLE;
        snprintf(out->message, sizeof(out->message), "try again");
    } else if (k == 'b') { /* busy: RetryInfo 2 s */
        out->code = GRPC_RESOURCE_EXHAUSTED;
        out->retry_s = 2;
        snprintf(out->message, sizeof(out->message), "busy");
        if (!atomic_load(&sv->b_first))
            atomic_store(&sv->b_first, now_ms());
        atomic_store(&sv->b_last, now_ms());
    } else if (k == 'e') { /* exhausted for good: no RetryInfo */
        out->code = GRPC_RESOURCE_EXHAUSTED;
        snprintf(out->message, sizeof(out->message), "too much");
    } else if (k == 'i') {
        out->code = GRPC_INVALID_ARGUMENT;
        snprintf(out->message, sizeof(out->message), "bad profile\n");
    } else if (k == 'p' && (out->body = malloc(sizeof(partial)))) {
        memcpy(out->body, partial, sizeof(partial));
        out->len = sizeof(partial);
    } else if (k == 'z') {
        atomic_store(&sv->gz_ok, c->len == 4 && !memcmp(c->msg, "zzzz", 4));
    }
}

static int64_t read_response(void *ctx, const uint8_t *body, size_t len)
{
    int64_t rejected;
    char msg[64];
    return otlp_response_parse(body, len, &rejected, msg, sizeof(msg)) ? -1 : rejected;
}

static void submit(struct http_push *h, const char *url, const char *what, bool gz)
{
    uint8_t *b;
    size_t n;
    if (gz) {
        assert_int_equal(gzip_compress((const uint8_t *)what, strlen(what), &b, &n), 0);
    } else {
        n = strlen(what);
        b = malloc(n);
        memcpy(b, what, n);
    }
    assert_int_equal(http_push_submit(h, url, "application/grpc", gz ? "gzip" : NULL, b, n, 1), 0);
}

/* A server on a free port; its Export URL in @url. */
static struct grpc_server *serve(const struct grpc_server_opts *so, char *url, size_t urllen)
{
    char err[256];
    struct grpc_server *srv = grpc_server_new(so, err, sizeof(err));
    assert_non_null(srv);
    snprintf(url, urllen, "http://127.0.0.1:%u" GRPC_EXPORT_PATH, grpc_server_port(srv));
    return srv;
}

/* Everything queued sent (or given up), the stats final (what the agent's
 * exit line reads), then freed. */
static void push_done(struct http_push *h, struct http_push_stats *st)
{
    http_push_drain(h, 10000);
    http_push_get_stats(h, st);
    assert_int_equal(st->queued, 0);
    http_push_free(h, 0);
}

static void test_push_grpc(void **unused)
{
    struct served sv = {0};
    char err[256], url[128];
    struct grpc_server_opts so = {
        .listen = "127.0.0.1:0",
        .flag = "test",
        .limits = {.max_msg = 1 << 20, .max_decoded = 1 << 20},
        .handler = export_handler,
        .ctx = &sv,
    };
    struct grpc_server *srv = serve(&so, url, sizeof(url));
    struct http_push_opts po = {
        .name = "test",
        .grpc = true,
        .timeout_ms = 5000,
        .max_attempts = 2,
        .on_success = read_response,
    };
    struct http_push *h = http_push_new(&po, err, sizeof(err));
    assert_non_null(h);
    submit(h, url, "ok", false);
    submit(h, url, "partial", true);
    submit(h, url, "unavailable", false);
    submit(h, url, "invalid", false);
    submit(h, url, "zzzz", true);
    submit(h, url, "ok again", false); /* a call after each of the others */
    struct http_push_stats st;
    push_done(h, &st);
    grpc_server_free(srv);
    assert_int_equal(st.sent, 4);            /* o, p, z, o */
    assert_int_equal(st.rejected, 3);        /* p's partial success */
    assert_int_equal(st.bad_responses, 0);   /* every OK answer readable */
    assert_int_equal(st.dropped, 2);         /* u after its retry, i at once */
    assert_int_equal(st.failed_attempts, 3); /* u twice, i once */
    assert_int_equal(atomic_load(&sv.calls['u']), 2);
    assert_int_equal(atomic_load(&sv.calls['i']), 1);
    assert_int_equal(atomic_load(&sv.calls['o']), 2);
    assert_int_equal(atomic_load(&sv.calls['p']), 1); /* gzip'd on the wire, whole here */
    assert_true(atomic_load(&sv.gz_ok));
}

static void on_refused_srv(void *ctx, unsigned status, size_t bytes)
{
    struct served *sv = ctx;
    if (status == 413)
        atomic_fetch_add(&sv->refused413, 1);
    if (status == 429) { /* the 'b' clock serves the budget's refusals too */
        if (!atomic_load(&sv->b_first))
            atomic_store(&sv->b_first, now_ms());
        atomic_store(&sv->b_last, now_ms());
    }
}

/* RESOURCE_EXHAUSTED through libcurl: with RetryInfo retried after its
 * delay, without it (the handler's, or grpc.c's message too large) tried
 * once and dropped. */
static void test_push_grpc_exhausted(void **unused)
{
    struct served sv = {0};
    char err[256], url[128];
    struct grpc_server_opts so = {
        .listen = "127.0.0.1:0",
        .flag = "test",
        .limits = {.max_msg = 64, .max_decoded = 1 << 20, .refused = on_refused_srv},
        .handler = export_handler,
        .ctx = &sv,
    };
    struct grpc_server *srv = serve(&so, url, sizeof(url));
    struct http_push_opts po = {
        .name = "test", .grpc = true, .timeout_ms = 5000, .max_attempts = 2};
    struct http_push *h = http_push_new(&po, err, sizeof(err));
    assert_non_null(h);
    char big[100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    submit(h, url, "busy", false);
    submit(h, url, "exhausted", false);
    submit(h, url, big, false); /* past max_msg: grpc.c's own refusal */
    submit(h, url, "ok", false);
    struct http_push_stats st;
    push_done(h, &st);
    grpc_server_free(srv);
    assert_int_equal(st.sent, 1);
    assert_int_equal(st.dropped, 3);
    assert_int_equal(atomic_load(&sv.calls['b']), 2); /* retried */
    assert_int_equal(atomic_load(&sv.calls['e']), 1); /* at once */
    assert_int_equal(atomic_load(&sv.refused413), 1); /* at once */
    assert_int_equal(st.failed_attempts, 4);          /* b twice, e, x */
    long long gap = atomic_load(&sv.b_last) - atomic_load(&sv.b_first);
    assert_true(gap >= 1900); /* RetryInfo's 2 s, over a 0.5-1.5 s back-off */
    assert_true(gap < 4000);

    /* grpc.c's own busy answer (the shared budget full): retried, its
     * RetryInfo seen (grpc-status 8, not a lost answer's -1) and waited */
    atomic_size_t inflight = 100;
    so.limits.inflight = &inflight;
    so.limits.pending = 100;
    so.limits.busy_retry_s = 2;
    atomic_store(&sv.b_first, 0);
    srv = serve(&so, url, sizeof(url));
    h = http_push_new(&po, err, sizeof(err));
    assert_non_null(h);
    submit(h, url, "ok", false);
    push_done(h, &st);
    grpc_server_free(srv);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.failed_attempts, 2); /* retried: max_attempts */
    assert_int_equal(st.last_status, GRPC_RESOURCE_EXHAUSTED);
    assert_int_equal(atomic_load(&sv.calls['o']), 1); /* the first server's */
    gap = atomic_load(&sv.b_last) - atomic_load(&sv.b_first);
    assert_true(gap >= 1900);
    assert_true(gap < 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unframe),      cmocka_unit_test(test_percent),
        cmocka_unit_test(test_call_ok),      cmocka_unit_test(test_call_gzip),
        cmocka_unit_test(test_call_refused), cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_details),      cmocka_unit_test(test_answer),
        cmocka_unit_test(test_push_grpc),    cmocka_unit_test(test_push_grpc_exhausted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
