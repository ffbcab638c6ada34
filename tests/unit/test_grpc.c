/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/grpc.c: the length-prefixed framing, grpc-message's encoding,
 * and whole calls against a real HTTP/2 client (an nghttp2 client session
 * in the same process, bytes passed by hand: no socket): answers,
 * trailers, gzip, the refusals and the shared budget. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "common/gzip.h"
#include "ingest/grpc.h"

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
}

/* ---- calls through a real HTTP/2 client ---------------------------------- */

struct seen { /* what the handler got */
    int calls;
    char auth[64], tenant[64];
    uint8_t msg[256];
    size_t len;
};

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
    char grpc_message[256], accept_encoding[64];
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
    struct grpc_limits l = {
        .max_msg = 1024, .max_decoded = 4096, .inflight = &inflight, .pending = 1 << 20};
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
    assert_string_equal(seen.auth, ""); /* no metadata: NULL */
}

static void test_call_gzip(void **unused)
{
    struct grpc_limits l = {.max_msg = 1024, .max_decoded = 64};
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
}

static void test_call_refused(void **unused)
{
    atomic_size_t inflight = 0;
    struct grpc_limits l = {
        .max_msg = 100, .max_decoded = 4096, .inflight = &inflight, .pending = 1000};
    struct seen seen = {0};
    static uint8_t body[4096];
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
    assert_int_equal(atomic_load(&inflight), 980); /* nothing of this call left counted */
    atomic_store(&inflight, 0);
    r = call(&l, &seen, &GOOD, body, 55);
    assert_int_equal(r.grpc_status, 0);
    assert_int_equal(atomic_load(&inflight), 0);
    assert_int_equal(seen.calls, 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unframe),      cmocka_unit_test(test_percent),
        cmocka_unit_test(test_call_ok),      cmocka_unit_test(test_call_gzip),
        cmocka_unit_test(test_call_refused), cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
