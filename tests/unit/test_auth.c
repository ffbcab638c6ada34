/* SPDX-License-Identifier: Apache-2.0 */
/* query/serve/auth.c: the token file, the Authorization header check, the base64
 * decoders (common/base64.c); and how http_route answers without a token
 * (401, JSON or Connect error). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/base64.h"
#include "common/auth.h"
#include "query/serve/http.h"

static struct auth *parse(const char *text)
{
    struct auth *a = NULL;
    char err[256] = "";
    int rc = auth_parse(text, strlen(text), &a, err, sizeof(err));
    if (rc)
        return NULL;
    return a;
}

static void test_file_format(void **st)
{
    struct auth *a;
    char err[256] = "";

    a = parse("  tok-one \r\n\r\n\tsecond_T0ken\t\n\nthird");
    assert_non_null(a);
    assert_int_equal(auth_count(a), 3);
    assert_string_equal(auth_first(a), "tok-one");
    auth_free(a);

    a = parse("only\r\n");
    assert_non_null(a);
    assert_int_equal(auth_count(a), 1);
    assert_string_equal(auth_first(a), "only");
    auth_free(a);

    /* Empty, blank-only: an error, not "no auth". */
    assert_int_equal(auth_parse("", 0, &a, err, sizeof(err)), -EINVAL);
    assert_null(a);
    assert_non_null(strstr(err, "no token"));
    assert_int_equal(auth_parse(" \r\n\n\t\n", 6, &a, err, sizeof(err)), -EINVAL);
    /* Blanks inside a token, control bytes: refused, the token not echoed. */
    assert_int_equal(auth_parse("good\nse cret\n", 13, &a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "line 2"));
    assert_null(strstr(err, "cret"));
    assert_int_equal(auth_parse("a\0b", 3, &a, err, sizeof(err)), -EINVAL);
    char big[AUTH_MAX_TOKEN + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(auth_parse(big, strlen(big), &a, err, sizeof(err)), -EINVAL);
    big[AUTH_MAX_TOKEN] = '\0';
    assert_int_equal(auth_parse(big, strlen(big), &a, err, sizeof(err)), 0);
    auth_free(a);
}

static void test_load(void **st)
{
    char path[] = "/tmp/stoke-auth-XXXXXX", err[512] = "";
    struct auth *a = NULL;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "t1\r\nt2\r\n", 8), 8);
    close(fd);
    assert_int_equal(auth_load(path, &a, err, sizeof(err)), 0);
    assert_int_equal(auth_count(a), 2);
    assert_true(auth_check(a, "Bearer t2"));
    auth_free(a);

    /* Empty file. */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    assert_int_equal(auth_load(path, &a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, path));
    unlink(path);
    /* Missing file. */
    assert_int_equal(auth_load(path, &a, err, sizeof(err)), -ENOENT);
    assert_null(a);
    assert_non_null(strstr(err, "No such file"));
}

static void test_bearer(void **st)
{
    struct auth *a = parse("s3cret\nnext-token\n");

    assert_non_null(a);
    assert_true(auth_check(a, "Bearer s3cret"));
    assert_true(auth_check(a, "Bearer next-token"));
    assert_true(auth_check(a, "bearer s3cret"));
    assert_true(auth_check(a, "BEARER   s3cret  "));
    assert_true(auth_check(a, " Bearer\ts3cret"));
    assert_false(auth_check(a, NULL));
    assert_false(auth_check(a, ""));
    assert_false(auth_check(a, "Bearer"));
    assert_false(auth_check(a, "Bearer "));
    assert_false(auth_check(a, "Bearers3cret"));
    assert_false(auth_check(a, "Bearer s3cre"));
    assert_false(auth_check(a, "Bearer s3cret2"));
    assert_false(auth_check(a, "Bearer S3CRET"));
    assert_false(auth_check(a, "Bearer s3cret next-token"));
    assert_false(auth_check(a, "s3cret"));
    assert_false(auth_check(a, "Token s3cret"));
    assert_false(auth_check(NULL, "Bearer s3cret"));
    auth_free(a);
}

static void test_basic(void **st)
{
    struct auth *a = parse("s3cret\nnext-token\n");

    assert_non_null(a);
    /* "grafana:s3cret", ":s3cret", "u:next-token", "a:b:s3cret" */
    assert_true(auth_check(a, "Basic Z3JhZmFuYTpzM2NyZXQ="));
    assert_true(auth_check(a, "basic OnMzY3JldA=="));
    assert_true(auth_check(a, "Basic dTpuZXh0LXRva2Vu"));
    assert_false(auth_check(a, "Basic YTpiOnMzY3JldA==")); /* password "b:s3cret" */
    /* "grafana:wrong", "s3cret" (no colon), "s3cret:" (token as user) */
    assert_false(auth_check(a, "Basic Z3JhZmFuYTp3cm9uZw=="));
    assert_false(auth_check(a, "Basic czNjcmV0"));
    assert_false(auth_check(a, "Basic czNjcmV0Og=="));
    /* Malformed base64. */
    assert_false(auth_check(a, "Basic Z3JhZmFuYTpzM2NyZXQ"));
    assert_false(auth_check(a, "Basic Z3JhZmFuYTpz!2NyZXQ="));
    assert_false(auth_check(a, "Basic Z3JhZm=uYTpzM2NyZXQ="));
    assert_false(auth_check(a, "Basic ===="));
    assert_false(auth_check(a, "Basic "));
    assert_false(auth_check(a, "Basic"));
    auth_free(a);
}

static void test_base64(void **st)
{
    uint8_t out[16];

    assert_int_equal(base64_decode("", 0, out, sizeof(out)), 0);
    assert_int_equal(base64_decode("Zm9v", 4, out, sizeof(out)), 3);
    assert_memory_equal(out, "foo", 3);
    assert_int_equal(base64_decode("Zm8=", 4, out, sizeof(out)), 2);
    assert_memory_equal(out, "fo", 2);
    assert_int_equal(base64_decode("Zg==", 4, out, sizeof(out)), 1);
    assert_memory_equal(out, "f", 1);
    assert_int_equal(base64_decode("+/+/", 4, out, sizeof(out)), 3);
    assert_int_equal(base64_decode("Zg=", 3, out, sizeof(out)), -1);
    assert_int_equal(base64_decode("Z===", 4, out, sizeof(out)), -1);
    assert_int_equal(base64_decode("Zg=a", 4, out, sizeof(out)), -1);
    assert_int_equal(base64_decode("Zg==Zm9v", 8, out, sizeof(out)), -1);
    assert_int_equal(base64_decode("Zm9vYmFy", 8, out, 5), -1);
}

/* The protobuf JSON flavour: URL-safe characters, padding optional. */
static void test_base64_lenient(void **st)
{
    uint8_t out[16];

    assert_int_equal(base64_decode_lenient("Zg", 2, out, sizeof(out)), 1);
    assert_memory_equal(out, "f", 1);
    assert_int_equal(base64_decode_lenient("Zm8", 3, out, sizeof(out)), 2);
    assert_memory_equal(out, "fo", 2);
    assert_int_equal(base64_decode_lenient("-_-_", 4, out, sizeof(out)), 3);
    assert_int_equal(base64_decode("-_-_", 4, out, sizeof(out)), -1);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    assert_int_equal(base64_decode_lenient("Zg=a", 4, out, sizeof(out)), -1);
    assert_int_equal(base64_decode_lenient("Zm9vYmFy", 8, out, 5), -1);
    struct wbuf b = {0};
    base64_encode(&b, (const uint8_t *)"fo", 2);
    base64_encode(&b, (const uint8_t *)"\xfb\xff\xbf", 3);
    assert_string_equal(b.s, "Zm8=+/+/");
    wb_free(&b);
}

/* ---- http_route with auth ---- */

struct hdrs {
    const char *authorization;
};

static const char *no_param(void *ctx, const char *name)
{
    return NULL;
}

static const char *get_header(void *ctx, const char *name)
{
    const struct hdrs *h = ctx;
    return strcasecmp(name, "Authorization") == 0 ? h->authorization : NULL;
}

static int route(struct http_server *s, const char *method, const char *path, const char *authz,
                 char **body)
{
    struct hdrs h = {authz};
    struct http_response r;

    http_route_headers(s, method, path, no_param, get_header, &h, NULL, 0, &r);
    *body = strndup((const char *)r.body, r.len);
    free(r.body);
    return r.status;
}

static void test_http(void **st)
{
    struct auth *a = parse("tok\n");
    struct http_opts ho = {.tenant = "default", .auth = a};
    struct http_server *s = http_new_unbound(&ho);
    char *b;

    assert_non_null(s);
    /* Open: liveness and the page. */
    assert_int_equal(route(s, "GET", "/healthz", NULL, &b), 200);
    free(b);
    assert_true(http_authorized(s, "GET", "/", NULL, NULL));
    assert_true(http_authorized(s, "HEAD", "/index.html", NULL, NULL));
    assert_false(http_authorized(s, "POST", "/healthz", NULL, NULL));
    assert_false(http_authorized(s, "GET", "/metrics", NULL, NULL));

    /* JSON API: 401 with {"error": ...}; with the token it reaches the
     * endpoint (400: from is missing, no store needed). */
    assert_int_equal(route(s, "GET", "/api/v1/top", NULL, &b), 401);
    assert_non_null(strstr(b, "\"error\":\"authorization: "));
    free(b);
    assert_int_equal(route(s, "GET", "/api/v1/top", "Bearer nope", &b), 401);
    free(b);
    assert_int_equal(route(s, "GET", "/api/v1/top", "Bearer tok", &b), 400);
    assert_non_null(strstr(b, "from: missing"));
    free(b);
    assert_int_equal(route(s, "GET", "/api/v1/top", "Basic eDp0b2s=", &b), 400); /* x:tok */
    free(b);
    /* Unknown paths, peers, render: 401 before routing. */
    assert_int_equal(route(s, "GET", "/nope", NULL, &b), 401);
    free(b);
    assert_int_equal(route(s, "POST", "/internal/v1/select", NULL, &b), 401);
    free(b);
    assert_int_equal(route(s, "GET", "/pyroscope/render", NULL, &b), 401);
    assert_non_null(strstr(b, "\"error\""));
    free(b);
    /* Connect: the Connect error. */
    assert_int_equal(route(s, "POST", "/querier.v1.QuerierService/ProfileTypes", "Bearer tok2", &b),
                     401);
    assert_non_null(strstr(b, "\"code\":\"unauthenticated\""));
    free(b);
    http_stop(s);

    /* Without auth nothing changes. */
    ho.auth = NULL;
    s = http_new_unbound(&ho);
    assert_true(http_authorized(s, "GET", "/metrics", NULL, NULL));
    assert_int_equal(route(s, "GET", "/api/v1/top", NULL, &b), 400);
    free(b);
    http_stop(s);
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_format), cmocka_unit_test(test_load),
        cmocka_unit_test(test_bearer),      cmocka_unit_test(test_basic),
        cmocka_unit_test(test_base64),      cmocka_unit_test(test_base64_lenient),
        cmocka_unit_test(test_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
