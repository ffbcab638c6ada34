/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store: one acceptance suite (the contract[] table) run against every
 * backend we can reach, plus the pieces of the S3 backend that need no
 * server (SHA-256, URI encoding, the ListObjectsV2 parser, credentials).
 *
 * Always: the contract against the directory backend in a temp directory.
 * STOKE_TEST_S3_URL=s3://BUCKET/PREFIX (+ AWS_* or STOKE_TEST_S3_ENDPOINT):
 *   the same contract against that S3 server (tests/integration/
 *   test_store_s3.sh sets this up with s3rver), and s3_cli_objects leaves
 *   objects under PREFIX/cli/ for the AWS CLI to read back.
 * STOKE_TEST_FAKE_S3=http://127.0.0.1:PORT: tests/integration/fake_s3.py,
 *   which verifies every SigV4 signature and injects failures; the contract
 *   runs against it too, then the failure-mapping tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/backend.h"
#include "store/sha256.h"
#include "store/store.h"

/* ---- backends ---------------------------------------------------------- */

struct backend {
    const char *name;
    char url[512];
    const char *endpoint;
    unsigned list_page;
    const char *access_key, *secret_key; /* NULL = from the environment */
    int path_style;
};

struct fixture {
    const struct backend *be;
    void (*fn)(struct store *s, const struct backend *be);
    struct store *s;
    char name[96];
};

static char tmp_root[256];
static unsigned run_id;

static struct store *open_be(const struct backend *be)
{
    struct store_opts o = {.url = be->url,
                           .endpoint = be->endpoint,
                           .list_page = be->list_page,
                           .timeout_ms = 20000,
                           .access_key = be->access_key,
                           .secret_key = be->secret_key,
                           .path_style = be->path_style};
    char err[512];
    struct store *s = store_open(&o, err, sizeof(err));

    if (!s)
        fail_msg("store_open %s: %s", be->url, err);
    return s;
}

/* Like assert_int_equal, but says what the store said. */
#define expect_rc(s, call, want)                                                                   \
    do {                                                                                           \
        long long rc_ = (call), want_ = (want);                                                    \
        if (rc_ != want_)                                                                          \
            fail_msg("%s = %lld, want %lld: %s", #call, rc_, want_, (s)->err);                     \
    } while (0)

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

static void expect_object(struct store *s, const char *key, const void *data, size_t len)
{
    struct store_buf b;
    uint64_t size = 0;

    expect_rc(s, store_get(s, key, 0, 0, &b), 0);
    assert_int_equal(b.len, len);
    assert_non_null(b.data);
    if (len)
        assert_memory_equal(b.data, data, len);
    free(b.data);
    expect_rc(s, store_head(s, key, &size), 0);
    assert_int_equal(size, len);
}

/* ---- the contract ------------------------------------------------------ */

static void c_put_get(struct store *s, const struct backend *be)
{
    static const char msg[] = "segment bytes\0with a NUL inside";
    struct store_stats before = s->stats;

    expect_rc(s, store_put(s, "t1/2024-05-01/13/host-a/0001.seg", msg, sizeof(msg)), 0);
    expect_object(s, "t1/2024-05-01/13/host-a/0001.seg", msg, sizeof(msg));
    expect_rc(s, store_put(s, "empty", "", 0), 0);
    expect_object(s, "empty", "", 0);
    assert_int_equal(s->stats.puts, before.puts + 2);
    assert_true(s->stats.gets >= before.gets + 2);
    assert_int_equal(s->stats.bytes_put, before.bytes_put + sizeof(msg));
    assert_true(s->stats.bytes_got >= before.bytes_got + sizeof(msg));
}

static void c_range(struct store *s, const struct backend *be)
{
    static const struct {
        uint64_t off, len, want_off, want_len;
    } cases[] = {
        {10, 20, 10, 20},   {0, 1, 0, 1},       {500, 0, 500, 500}, {990, 100, 990, 10},
        {999, 1, 999, 1},   {1000, 0, 0, 0},    {1000, 5, 0, 0},    {5000, 10, 0, 0},
        {0, 1000, 0, 1000}, {0, 5000, 0, 1000},
    };
    uint8_t data[1000];
    struct store_buf b;

    fill(data, sizeof(data), 7);
    expect_rc(s, store_put(s, "r/obj", data, sizeof(data)), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_rc(s, store_get(s, "r/obj", cases[i].off, cases[i].len, &b), 0);
        if (b.len != cases[i].want_len)
            fail_msg("range %zu: off %llu len %llu: got %zu bytes, want %llu", i,
                     (unsigned long long)cases[i].off, (unsigned long long)cases[i].len, b.len,
                     (unsigned long long)cases[i].want_len);
        assert_non_null(b.data);
        if (b.len)
            assert_memory_equal(b.data, data + cases[i].want_off, b.len);
        free(b.data);
    }
}

static void c_missing(struct store *s, const struct backend *be)
{
    struct store_buf b = {(uint8_t *)1, 1};
    uint64_t size = 77;

    expect_rc(s, store_get(s, "no/such/key", 0, 0, &b), -ENOENT);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_non_null(strstr(s->err, "no/such/key"));
    expect_rc(s, store_get(s, "no/such/key", 10, 10, &b), -ENOENT);
    expect_rc(s, store_head(s, "no/such/key", &size), -ENOENT);
    assert_int_equal(size, 77);
    expect_rc(s, store_del(s, "no/such/key"), 0);
}

static void c_idempotent_put(struct store *s, const struct backend *be)
{
    expect_rc(s, store_put(s, "i/k", "same", 4), 0);
    expect_rc(s, store_put(s, "i/k", "same", 4), 0);
    expect_object(s, "i/k", "same", 4);
    /* Not what the exporter does, but the last writer must win whole. */
    expect_rc(s, store_put(s, "i/k", "different!", 10), 0);
    expect_object(s, "i/k", "different!", 10);
}

static void expect_list(struct store *s, const char *prefix, const char *const *want, size_t n)
{
    struct store_list l;

    expect_rc(s, store_list(s, prefix, &l), 0);
    if (l.n != n)
        fail_msg("list '%s': %zu keys, want %zu", prefix, l.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(l.keys[i], want[i]);
        assert_int_equal(l.sizes[i], strlen(want[i]));
    }
    store_list_free(&l);
    assert_null(l.keys);
}

static void c_list_prefix(struct store *s, const struct backend *be)
{
    /* Put in an order unlike the sorted one; each object holds its key. */
    static const char *const keys[] = {
        "t2/segments/a",
        "t1/segments/2024/13/h2/b",
        "t10/x",
        "t1/manifest/m",
        "t1/segments/2024/13/h1/a",
        "t1/segments/2024/13/h10/z",
        "t1/segments/2024/14/h1/a",
    };
    static const char *const t1[] = {"t1/manifest/m", "t1/segments/2024/13/h1/a",
                                     "t1/segments/2024/13/h10/z", "t1/segments/2024/13/h2/b",
                                     "t1/segments/2024/14/h1/a"};
    static const char *const t1_any[] = {"t1/manifest/m",
                                         "t1/segments/2024/13/h1/a",
                                         "t1/segments/2024/13/h10/z",
                                         "t1/segments/2024/13/h2/b",
                                         "t1/segments/2024/14/h1/a",
                                         "t10/x"};
    static const char *const h1[] = {"t1/segments/2024/13/h1/a", "t1/segments/2024/13/h10/z"};
    static const char *const all[] = {"t1/manifest/m",
                                      "t1/segments/2024/13/h1/a",
                                      "t1/segments/2024/13/h10/z",
                                      "t1/segments/2024/13/h2/b",
                                      "t1/segments/2024/14/h1/a",
                                      "t10/x",
                                      "t2/segments/a"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        expect_rc(s, store_put(s, keys[i], keys[i], strlen(keys[i])), 0);
    expect_list(s, "t1/", t1, 5);
    expect_list(s, "t1", t1_any, 6); /* a string prefix, not a directory */
    expect_list(s, "t1/segments/2024/13/h1", h1, 2);
    expect_list(s, "", all, 7);
    expect_list(s, NULL, all, 7);
    expect_list(s, "nope/", NULL, 0);
    expect_list(s, "t1/segments/2024/13/h1/a", h1, 1);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void c_many_keys(struct store *s, const struct backend *be)
{
    enum { N = 1500 };
    char **want = calloc(N, sizeof(*want));
    struct store_list l;

    assert_non_null(want);
    for (unsigned i = 0; i < N; i++) {
        /* A permutation, so put order differs from list order. */
        unsigned j = (i * 7919u) % N;
        assert_true(asprintf(&want[i], "m/h%u/%05u", j % 7, j) > 0);
        expect_rc(s, store_put(s, want[i], want[i], strlen(want[i]) % 5), 0);
    }
    qsort(want, N, sizeof(*want), cmp_str);
    expect_rc(s, store_list(s, "m/", &l), 0);
    assert_int_equal(l.n, N);
    for (unsigned i = 0; i < N; i++) {
        assert_string_equal(l.keys[i], want[i]);
        assert_int_equal(l.sizes[i], strlen(want[i]) % 5);
        free(want[i]);
    }
    store_list_free(&l);
    free(want);
    expect_rc(s, store_list(s, "m/h3/", &l), 0);
    assert_true(l.n > N / 7 - 2 && l.n < N / 7 + 2);
    store_list_free(&l);
}

static void c_delete(struct store *s, const struct backend *be)
{
    static const char *const rest[] = {"d/x/keep"};
    uint64_t size;

    expect_rc(s, store_put(s, "d/x/y/z", "zz", 2), 0);
    expect_rc(s, store_put(s, "d/x/keep", "d/x/keep", 8), 0);
    expect_rc(s, store_del(s, "d/x/y/z"), 0);
    expect_rc(s, store_head(s, "d/x/y/z", &size), -ENOENT);
    expect_list(s, "d/", rest, 1);
    expect_rc(s, store_del(s, "d/x/y/z"), 0); /* again: still fine */
    expect_rc(s, store_del(s, "d/x/keep"), 0);
    expect_list(s, "d/", NULL, 0);
    /* The same key can be written again after the tree under it went. */
    expect_rc(s, store_put(s, "d/x/y/z", "again", 5), 0);
    expect_object(s, "d/x/y/z", "again", 5);
}

static void c_bad_keys(struct store *s, const struct backend *be)
{
    static const char *const bad[] = {
        "",          "/abs",    "a//b",         "a/../b",
        "..",        "../x",    "a/..",         ".",
        "a/./b",     "a/",      "a\nb",         "a\x01z",
        "tab\there", "del\x7f", ".stoke-tmp-1", "a/.stoke-tmp-x/b",
    };
    char longkey[STORE_KEY_MAX + 2], longcomp[STORE_COMPONENT_MAX + 2];
    struct store_buf b;
    struct store_list l;
    uint64_t size;

    /* 128-byte components, STORE_KEY_MAX + 1 bytes in all. */
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = 0;
    for (size_t i = 128; i < STORE_KEY_MAX - 1; i += 129)
        longkey[i] = '/';
    memset(longcomp, 'c', sizeof(longcomp) - 1);
    longcomp[sizeof(longcomp) - 1] = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + 2; i++) {
        const char *k = i < sizeof(bad) / sizeof(bad[0])    ? bad[i]
                        : i == sizeof(bad) / sizeof(bad[0]) ? longkey
                                                            : longcomp;
        if (store_put(s, k, "x", 1) != -EINVAL)
            fail_msg("put of bad key #%zu accepted", i);
        expect_rc(s, store_get(s, k, 0, 0, &b), -EINVAL);
        expect_rc(s, store_head(s, k, &size), -EINVAL);
        expect_rc(s, store_del(s, k), -EINVAL);
        assert_true(s->err[0] != 0);
    }
    expect_rc(s, store_list(s, "../", &l), -EINVAL);
    expect_rc(s, store_list(s, "/x", &l), -EINVAL);
    expect_rc(s, store_list(s, "a//", &l), -EINVAL);
    expect_rc(s, store_put(s, NULL, "x", 1), -EINVAL);
    longkey[STORE_KEY_MAX] = 0; /* exactly the limits are fine */
    expect_rc(s, store_put(s, longkey, "x", 1), 0);
    expect_object(s, longkey, "x", 1);
    expect_rc(s, store_del(s, longkey), 0);
    longcomp[STORE_COMPONENT_MAX] = 0;
    if (!strcmp(be->name, "s3"))
        return; /* s3rver stores KEY._S3rver_object: 255 bytes crash it */
    expect_rc(s, store_put(s, longcomp, "y", 1), 0);
    expect_rc(s, store_del(s, longcomp), 0);
}

static void c_odd_keys(struct store *s, const struct backend *be)
{
    /* Characters that are legal in keys but need care in URLs and SigV4. */
    static const char *const odd[] = {
        "odd/a b+c=d&e?f#g%h", "odd/ünï/ключ/キー", "odd/~tilde_-.dots..x",
        "odd/(paren)!*'$,;:@", "odd/.hidden",       "odd/x..y",
    };
    struct store_list l;

    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        expect_rc(s, store_put(s, odd[i], odd[i], strlen(odd[i])), 0);
        expect_object(s, odd[i], odd[i], strlen(odd[i]));
    }
    expect_rc(s, store_list(s, "odd/", &l), 0);
    assert_int_equal(l.n, sizeof(odd) / sizeof(odd[0]));
    for (size_t i = 0; i < l.n; i++) {
        int found = 0;
        for (size_t j = 0; j < l.n; j++)
            found |= !strcmp(l.keys[i], odd[j]);
        if (!found)
            fail_msg("list returned unknown key '%s'", l.keys[i]);
        if (i)
            assert_true(strcmp(l.keys[i - 1], l.keys[i]) < 0);
    }
    store_list_free(&l);
    expect_rc(s, store_list(s, "odd/ünï/", &l), 0);
    assert_int_equal(l.n, 1);
    store_list_free(&l);
}

static void c_large(struct store *s, const struct backend *be)
{
    size_t n = 10u << 20;
    uint8_t *data = malloc(n);
    struct store_buf b;

    assert_non_null(data);
    fill(data, n, 42);
    expect_rc(s, store_put(s, "big/10mb", data, n), 0);
    expect_object(s, "big/10mb", data, n);
    expect_rc(s, store_get(s, "big/10mb", 3u << 20, 1u << 20, &b), 0);
    assert_int_equal(b.len, 1u << 20);
    assert_memory_equal(b.data, data + (3u << 20), b.len);
    free(b.data);
    expect_rc(s, store_get(s, "big/10mb", n - 100, 0, &b), 0);
    assert_int_equal(b.len, 100);
    assert_memory_equal(b.data, data + n - 100, 100);
    free(b.data);
    free(data);
}

#define CONC_SIZE   (512u << 10)
#define CONC_ROUNDS 12

struct writer {
    const struct backend *be;
    uint8_t byte;
    int rc, torn, read_errors;
    volatile int *stop;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct store *s = open_be(w->be); /* own handle: no shared connection */
    uint8_t *data = malloc(CONC_SIZE);

    memset(data, w->byte, CONC_SIZE);
    for (int i = 0; i < CONC_ROUNDS && !w->rc; i++)
        w->rc = store_put(s, "conc/key", data, CONC_SIZE);
    free(data);
    store_close(s);
    return NULL;
}

/* A whole object is CONC_SIZE bytes of one writer's byte. */
static int whole(const struct store_buf *b)
{
    if (b->len != CONC_SIZE || (b->data[0] != 'A' && b->data[0] != 'B'))
        return 0;
    for (size_t i = 1; i < b->len; i++)
        if (b->data[i] != b->data[0])
            return 0;
    return 1;
}

static void *reader_main(void *arg)
{
    struct writer *r = arg;
    struct store *s = open_be(r->be);
    struct store_buf b;

    /* Until the writers are done, and at least one read made it: on a busy
     * machine this thread may first run after both writers finished. */
    for (int after = 0; !*r->stop || (r->rc == 0 && after++ < 1000);) {
        int rc = store_get(s, "conc/key", 0, 0, &b);
        if (rc == 0) {
            r->torn += !whole(&b);
            r->rc++; /* reads done */
            free(b.data);
        } else if (rc != -ENOENT) {
            r->read_errors++;
        }
    }
    store_close(s);
    return NULL;
}

static void c_concurrent_put(struct store *s, const struct backend *be)
{
    volatile int stop = 0;
    struct writer a = {be, 'A', 0, 0, 0, &stop}, b = {be, 'B', 0, 0, 0, &stop},
                  r = {be, 0, 0, 0, 0, &stop};
    pthread_t ta, tb, tr;
    struct store_buf got;

    assert_int_equal(pthread_create(&tr, NULL, reader_main, &r), 0);
    assert_int_equal(pthread_create(&ta, NULL, writer_main, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, writer_main, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    stop = 1;
    pthread_join(tr, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    /* A reader sees one writer's whole object, never a mix or a part (the
     * test's s3rver gets S3's atomic PUT from s3rver_cond.js). */
    if (r.torn || r.read_errors)
        fail_msg("%d of %d reads saw a partial object, %d failed", r.torn, r.rc, r.read_errors);
    assert_true(r.rc > 0);
    expect_rc(s, store_get(s, "conc/key", 0, 0, &got), 0);
    assert_true(whole(&got));
    free(got.data);
}

/* Create-only put: the first writes, a second gets -EEXIST and leaves
 * the object as it was; of two threads racing for a fresh key each time,
 * exactly one wins. */
struct racer {
    const struct backend *be;
    const char *key;
    char who;
    int rc;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    struct store *s = open_be(r->be);
    r->rc = store_put_new(s, r->key, &r->who, 1);
    store_close(s);
    return NULL;
}

static void c_put_new(struct store *s, const struct backend *be)
{
    struct store_buf got;

    store_del(s, "pn/lease");
    expect_rc(s, store_put_new(s, "pn/lease", "first", 5), 0);
    assert_int_equal(store_put_new(s, "pn/lease", "second", 6), -EEXIST);
    expect_object(s, "pn/lease", "first", 5);
    expect_rc(s, store_del(s, "pn/lease"), 0);
    expect_rc(s, store_put_new(s, "pn/lease", "third", 5), 0);
    expect_object(s, "pn/lease", "third", 5);
    for (int round = 0; round < 8; round++) {
        char key[32];
        snprintf(key, sizeof(key), "pn/race-%d", round);
        store_del(s, key);
        struct racer a = {be, key, 'A', 1}, b = {be, key, 'B', 1};
        pthread_t ta, tb;
        assert_int_equal(pthread_create(&ta, NULL, racer_main, &a), 0);
        assert_int_equal(pthread_create(&tb, NULL, racer_main, &b), 0);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        if (!((a.rc == 0 && b.rc == -EEXIST) || (a.rc == -EEXIST && b.rc == 0)))
            fail_msg("round %d: put_new returned %d and %d", round, a.rc, b.rc);
        expect_rc(s, store_get(s, key, 0, 0, &got), 0);
        assert_int_equal(got.len, 1);
        assert_int_equal(got.data[0], a.rc == 0 ? 'A' : 'B');
        free(got.data);
    }
}

static const struct contract {
    const char *name;
    void (*fn)(struct store *s, const struct backend *be);
} contract[] = {
    {"put_get", c_put_get},
    {"range", c_range},
    {"missing", c_missing},
    {"idempotent_put", c_idempotent_put},
    {"list_prefix", c_list_prefix},
    {"many_keys", c_many_keys},
    {"delete", c_delete},
    {"bad_keys", c_bad_keys},
    {"odd_keys", c_odd_keys},
    {"large_10mb", c_large},
    {"concurrent_put", c_concurrent_put},
    {"put_new", c_put_new},
};

/* ---- directory-only checks --------------------------------------------- */

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static int count_entries(const char *dir, const char *needle)
{
    char cmd[600];
    int n = -1;
    FILE *f;

    snprintf(cmd, sizeof(cmd), "find '%s' -mindepth 1 -name '%s' | wc -l", dir, needle);
    f = popen(cmd, "r");
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        pclose(f);
    }
    return n;
}

static void dir_layout(struct store *s, const struct backend *be)
{
    const char *root = be->url;
    char path[600];
    struct store_list l;
    FILE *f;

    expect_rc(s, store_put(s, "a/b/c", "abc", 3), 0);
    snprintf(path, sizeof(path), "%s/a/b/c", root);
    f = fopen(path, "r");
    assert_non_null(f); /* the key is the path */
    fclose(f);
    assert_int_equal(count_entries(root, ".stoke-tmp-*"), 0);
    /* A writer killed mid-put leaves a temp file: never listed. */
    snprintf(path, sizeof(path), "%s/a/b/.stoke-tmp-123-dead", root);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("partial", f);
    fclose(f);
    expect_rc(s, store_list(s, "", &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], "a/b/c");
    store_list_free(&l);
    unlink(path);
    /* Delete prunes the empty parents, never the root. */
    expect_rc(s, store_del(s, "a/b/c"), 0);
    snprintf(path, sizeof(path), "%s/a", root);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(root, F_OK), 0);
}

static void dir_open_urls(void **state)
{
    char dir[300], url[320], err[256];
    struct store_opts o = {0};
    struct store *s;

    snprintf(dir, sizeof(dir), "%s/open/deep/er", tmp_root);
    snprintf(url, sizeof(url), "file://%s", dir);
    o.url = url;
    s = store_open(&o, err, sizeof(err));
    assert_non_null(s);
    expect_rc(s, store_put(s, "k", "v", 1), 0);
    store_close(s);
    o.url = dir; /* the same directory, plain */
    s = store_open(&o, err, sizeof(err));
    assert_non_null(s);
    expect_object(s, "k", "v", 1);
    store_close(s);
    o.url = "gs://user:hunter2@bucket/x";
    assert_null(store_open(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "gs://"));
    assert_null(strstr(err, "hunter2"));
    snprintf(url, sizeof(url), "%s/k", dir); /* a file, not a directory */
    o.url = url;
    assert_null(store_open(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot use directory"));
    store_close(NULL);
}

/* Tests that play with credentials in the environment put it back after,
 * so the S3 runs that follow still find theirs. */
static const char *const aws_env[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                      "AWS_SESSION_TOKEN", "AWS_PROFILE",
                                      "AWS_SHARED_CREDENTIALS_FILE"};
static char *saved_env[5];

static void env_save(void)
{
    for (size_t i = 0; i < 5; i++)
        saved_env[i] = getenv(aws_env[i]) ? strdup(getenv(aws_env[i])) : NULL;
}

static void env_restore(void)
{
    for (size_t i = 0; i < 5; i++) {
        if (saved_env[i])
            setenv(aws_env[i], saved_env[i], 1);
        else
            unsetenv(aws_env[i]);
        free(saved_env[i]);
        saved_env[i] = NULL;
    }
}

static int env_teardown(void **state)
{
    env_restore();
    return 0;
}

/* ---- S3 pieces that need no server ------------------------------------- */

static void sha256_vectors(void **state)
{
    static const struct {
        const char *in, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char hex[65];
    struct sha256 c;
    uint8_t d[32], a[1000];

    for (size_t i = 0; i < 3; i++) {
        sha256_hex(v[i].in, strlen(v[i].in), hex);
        assert_string_equal(hex, v[i].hex);
    }
    /* A million 'a's, fed in odd-sized pieces to cross block borders. */
    memset(a, 'a', sizeof(a));
    sha256_init(&c);
    for (size_t done = 0, step = 1; done < 1000000; done += step, step = step % 997 + 1)
        sha256_update(&c, a, done + step > 1000000 ? 1000000 - done : step);
    sha256_final(&c, d);
    assert_int_equal(d[0], 0xcd);
    assert_int_equal(d[1], 0xc7);
    assert_int_equal(d[31], 0xd0);
}

static void s3_encode(void **state)
{
    char out[64];

    assert_int_equal(s3_uri_encode("a b/c", 1, out, sizeof(out)), 7);
    assert_string_equal(out, "a%20b/c");
    s3_uri_encode("a b/c", 0, out, sizeof(out));
    assert_string_equal(out, "a%20b%2Fc");
    s3_uri_encode("AZaz09-._~", 0, out, sizeof(out));
    assert_string_equal(out, "AZaz09-._~");
    s3_uri_encode("ü+=&?#%*", 1, out, sizeof(out));
    assert_string_equal(out, "%C3%BC%2B%3D%26%3F%23%25%2A");
    assert_int_equal(s3_uri_encode("abc", 0, out, 3), -ENAMETOOLONG);
    assert_int_equal(s3_uri_encode(" ", 0, out, 3), -ENAMETOOLONG);
    assert_int_equal(s3_uri_encode(" ", 0, out, 4), 3);
}

static int parse(const char *xml, struct store_list *l, int *trunc, char **tok)
{
    size_t cap = 0;
    memset(l, 0, sizeof(*l));
    return s3_list_parse(xml, strlen(xml), l, &cap, trunc, tok);
}

static void s3_list_xml(void **state)
{
    static const char ok[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount>"
        "<IsTruncated>true</IsTruncated>"
        "<Contents><Key>p/a&amp;b&lt;c&gt;&quot;&apos;</Key><LastModified>x</LastModified>"
        "<Size>123</Size><Owner><ID>o</ID><Key>not-this</Key></Owner></Contents>"
        "<!-- a comment <Key>no</Key> -->"
        "<Contents><Size> 18446744073709551615 </Size><Key>p/&#65;&#x42;&#xfc;&#x1F600;</Key>"
        "</Contents>"
        "<NextContinuationToken>tok/+=&amp;</NextContinuationToken>"
        "</ListBucketResult>";
    static const char *const bad[] = {
        "",
        "<Error><Code>AccessDenied</Code></Error>",
        "<!DOCTYPE x [<!ENTITY e \"boom\">]><ListBucketResult></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>18446744073709551616</Size>"
        "</Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&#0;b</Key><Size>1</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&#xD800;</Key><Size>1</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><Contents><Key>a<b/></Key><Size>1</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents>",
        "<ListBucketResult></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents></ListBucketResult>"
        "<ListBucketResult></ListBucketResult>",
        "<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Key",
    };
    struct store_list l;
    char deep[2000] = "<ListBucketResult>", code[32];
    int trunc;
    char *tok;

    assert_int_equal(parse(ok, &l, &trunc, &tok), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.keys[0], "p/a&b<c>\"'");
    assert_int_equal(l.sizes[0], 123);
    assert_string_equal(l.keys[1], "p/AB\xc3\xbc\xf0\x9f\x98\x80");
    assert_int_equal(l.sizes[1], UINT64_MAX);
    assert_int_equal(trunc, 1);
    assert_string_equal(tok, "tok/+=&");
    free(tok);
    store_list_free(&l);

    assert_int_equal(parse("<ListBucketResult><IsTruncated>false</IsTruncated>"
                           "</ListBucketResult>",
                           &l, &trunc, &tok),
                     0);
    assert_int_equal(l.n, 0);
    assert_int_equal(trunc, 0);
    assert_null(tok);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &l, &trunc, &tok) != -EPROTO)
            fail_msg("bad XML #%zu accepted", i);
        assert_null(tok);
        store_list_free(&l);
    }
    for (int i = 0; i < 40; i++)
        strcat(deep, "<a>");
    assert_int_equal(parse(deep, &l, &trunc, &tok), -EPROTO);

    s3_error_code("<Error><Code>Slow&amp;Down\x1b[31m</Code></Error>", 46, code, sizeof(code));
    assert_string_equal(code, "SlowDown31m");
    s3_error_code("<Error></Error>", 15, code, sizeof(code));
    assert_string_equal(code, "");
    s3_error_code("<Code>NoSuchKey</Code>", 22, code, 4);
    assert_string_equal(code, "NoS");
}

static void s3_creds_file(void **state)
{
    static const char text[] = "# comment\n"
                               "[default]\n"
                               "aws_access_key_id = AKDEF\n"
                               "aws_secret_access_key=SKDEF  \n"
                               "\n"
                               "[profile ci]\r\n"
                               "  AWS_ACCESS_KEY_ID=AKCI\r\n"
                               "aws_secret_access_key = SK=CI\r\n"
                               "aws_session_token = TOK\r\n"
                               "[half]\n"
                               "aws_access_key_id = AKHALF\n";
    struct s3_creds c;

    assert_int_equal(s3_creds_parse(text, strlen(text), "default", &c), 0);
    assert_string_equal(c.access_key, "AKDEF");
    assert_string_equal(c.secret_key, "SKDEF");
    assert_null(c.session_token);
    s3_creds_clear(&c);
    assert_int_equal(s3_creds_parse(text, strlen(text), "ci", &c), 0);
    assert_string_equal(c.access_key, "AKCI");
    assert_string_equal(c.secret_key, "SK=CI");
    assert_string_equal(c.session_token, "TOK");
    s3_creds_clear(&c);
    assert_null(c.access_key);
    assert_int_equal(s3_creds_parse(text, strlen(text), "half", &c), -ENOENT);
    assert_int_equal(s3_creds_parse(text, strlen(text), "nope", &c), -ENOENT);
    assert_null(c.access_key);
}

static void s3_open_errors(void **state)
{
    static const char *const unset[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                        "AWS_SESSION_TOKEN", "AWS_PROFILE",
                                        "AWS_ENDPOINT_URL",  "AWS_ENDPOINT_URL_S3"};
    struct store_opts o = {.url = "s3://bucket/p", .endpoint = "http://127.0.0.1:1"};
    char err[512], creds[300];
    struct store *s;
    FILE *f;

    env_save();
    for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
        unsetenv(unset[i]);
    snprintf(creds, sizeof(creds), "%s/creds", tmp_root);
    setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
    assert_null(store_open(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "no credentials"));

    f = fopen(creds, "w");
    assert_non_null(f);
    fputs("[default]\naws_access_key_id=AKFILE\naws_secret_access_key=VERYSECRET\n", f);
    fclose(f);
    s = store_open(&o, err, sizeof(err));
    assert_non_null(s);
    /* Nothing listens on port 1: a connection error, retried, as -EIO. */
    uint64_t size;
    expect_rc(s, store_head(s, "k", &size), -EIO);
    assert_int_equal(s->stats.retries, 4);
    assert_null(strstr(s->err, "VERYSECRET"));
    assert_null(strstr(s->err, "AKFILE"));
    assert_non_null(strstr(s->err, "(5 attempts)"));
    store_close(s);

    o.url = "s3://";
    assert_null(store_open(&o, err, sizeof(err)));
    o.url = "s3://bucket/../x";
    assert_null(store_open(&o, err, sizeof(err)));
    o.url = "s3://bucket";
    o.endpoint = "ftp://127.0.0.1";
    assert_null(store_open(&o, err, sizeof(err)));
    o.endpoint = "http://user:pw@127.0.0.1";
    assert_null(store_open(&o, err, sizeof(err)));
    assert_null(strstr(err, "pw@"));
    o.endpoint = NULL;
    o.url = "s3://Not_DNS";
    o.path_style = 0;
    assert_null(store_open(&o, err, sizeof(err)));
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

/* ---- against a real or fake server ------------------------------------- */

/* Objects the integration script reads back with the AWS CLI. */
static void s3_cli_objects(void **state)
{
    const struct backend *be = *state;
    struct store_opts o = {.url = be->url, .endpoint = be->endpoint, .path_style = 1};
    char err[512], url[600];
    uint8_t *big, bytes[256];
    struct store *s;

    snprintf(url, sizeof(url), "%s/cli", getenv("STOKE_TEST_S3_URL"));
    o.url = url;
    s = store_open(&o, err, sizeof(err));
    if (!s)
        fail_msg("store_open %s: %s", url, err);
    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t)i;
    big = malloc(3u << 20);
    assert_non_null(big);
    fill(big, 3u << 20, 1234);
    expect_rc(s, store_put(s, "small.txt", "hello from stoke\n", 17), 0);
    expect_rc(s, store_put(s, "odd name+ü&.bin", bytes, sizeof(bytes)), 0);
    expect_rc(s, store_put(s, "t1/segments/big.bin", big, 3u << 20), 0);
    free(big);
    store_close(s);
}

static struct store *open_fake(const struct backend *be, const char *prefix, unsigned timeout,
                               unsigned retries)
{
    char url[600], err[512];
    struct store_opts o = {.url = url,
                           .endpoint = be->endpoint,
                           .timeout_ms = timeout,
                           .retries = retries,
                           .path_style = 1,
                           .access_key = "AKFAKE",
                           .secret_key = "fake-secret"};
    struct store *s;

    snprintf(url, sizeof(url), "%s/%s", be->url, prefix);
    s = store_open(&o, err, sizeof(err));
    if (!s)
        fail_msg("open fake: %s", err);
    return s;
}

static void fake_failures(void **state)
{
    const struct backend *be = *state;
    struct store *s = open_fake(be, "fail", 500, 3);
    struct store_buf b;
    uint64_t size;
    struct timespec t0, t1;

    /* 500 twice, then 200: two retries, success. */
    expect_rc(s, store_put(s, "flaky/1", "ok", 2), 0);
    assert_int_equal(s->stats.retries, 2);
    assert_int_equal(s->stats.errors, 0);
    /* 503 SlowDown once. */
    expect_rc(s, store_put(s, "slowdown/1", "ok", 2), 0);
    assert_int_equal(s->stats.retries, 3);
    /* 500 forever: 1 + 3 attempts, then -EIO naming the status. */
    expect_rc(s, store_put(s, "broken/1", "x", 1), -EIO);
    assert_int_equal(s->stats.retries, 6);
    assert_non_null(strstr(s->err, "500 InternalError"));
    /* 4xx: no retries. */
    expect_rc(s, store_get(s, "denied/1", 0, 0, &b), -EACCES);
    assert_int_equal(s->stats.retries, 6);
    assert_non_null(strstr(s->err, "s3 GET denied/1: 403 AccessDenied (check the credentials"));
    expect_rc(s, store_get(s, "missing/1", 0, 0, &b), -ENOENT);
    assert_non_null(strstr(s->err, "404 NoSuchKey"));
    expect_rc(s, store_head(s, "missing/1", &size), -ENOENT);
    expect_rc(s, store_put(s, "badreq/1", "x", 1), -EINVAL);
    assert_non_null(strstr(s->err, "400 InvalidArgument"));
    assert_int_equal(s->stats.retries, 6);
    /* Beyond the timeout on every attempt: -ETIMEDOUT after 3 retries. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_rc(s, store_get(s, "slow/1", 0, 0, &b), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(s->stats.retries, 9);
    assert_true(t1.tv_sec - t0.tv_sec < 10);
    assert_non_null(strstr(s->err, "timed out"));
    /* Connection reset: retried, then -EIO. */
    expect_rc(s, store_get(s, "reset/1", 0, 0, &b), -EIO);
    assert_int_equal(s->stats.retries, 12);
    /* Reset once, then fine. */
    expect_rc(s, store_put(s, "resetonce/1", "ok", 2), 0);
    assert_int_equal(s->stats.retries, 13);
    assert_null(strstr(s->err, "fake-secret"));
    store_close(s);
}

static void fake_creds_precedence(void **state)
{
    const struct backend *be = *state;
    char url[600], err[512], creds[300];
    struct store_opts o = {.url = url, .endpoint = be->endpoint, .path_style = -1};
    struct store_buf b;
    struct store *s;
    FILE *f;

    env_save();
    snprintf(url, sizeof(url), "%s/creds", be->url);
    snprintf(creds, sizeof(creds), "%s/fake-creds", tmp_root);
    f = fopen(creds, "w");
    assert_non_null(f);
    fputs("[default]\naws_access_key_id=AKFILE\naws_secret_access_key=file-secret\n"
          "[other]\naws_access_key_id=AKOTHER\naws_secret_access_key=other-secret\n",
          f);
    fclose(f);
    setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    static const struct {
        int opts, env;
        const char *profile, *want;
    } cases[] = {{1, 1, NULL, "AKFAKE"},
                 {0, 1, NULL, "AKENV"},
                 {0, 0, NULL, "AKFILE"},
                 {0, 0, "other", "AKOTHER"}};
    for (size_t i = 0; i < 4; i++) {
        o.access_key = cases[i].opts ? "AKFAKE" : NULL;
        o.secret_key = cases[i].opts ? "fake-secret" : NULL;
        if (!cases[i].env) {
            unsetenv("AWS_ACCESS_KEY_ID");
            unsetenv("AWS_SECRET_ACCESS_KEY");
        }
        if (cases[i].profile)
            setenv("AWS_PROFILE", cases[i].profile, 1);
        s = store_open(&o, err, sizeof(err));
        assert_non_null(s);
        /* The fake answers "whoami" with the access key it verified. */
        expect_rc(s, store_get(s, "whoami", 0, 0, &b), 0);
        assert_int_equal(b.len, strlen(cases[i].want));
        assert_memory_equal(b.data, cases[i].want, b.len);
        free(b.data);
        store_close(s);
    }
    /* A session token goes out as x-amz-security-token, signed. */
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    setenv("AWS_SESSION_TOKEN", "SESSIONTOKEN", 1);
    s = store_open(&o, err, sizeof(err));
    assert_non_null(s);
    expect_rc(s, store_get(s, "whoami", 0, 0, &b), 0);
    assert_memory_equal(b.data, "AKENV+token", 11);
    free(b.data);
    store_close(s);
    /* A wrong secret is a signature mismatch: 403, -EACCES, no retries. */
    setenv("AWS_SECRET_ACCESS_KEY", "wrong", 1);
    s = store_open(&o, err, sizeof(err));
    assert_non_null(s);
    expect_rc(s, store_get(s, "whoami", 0, 0, &b), -EACCES);
    assert_non_null(strstr(s->err, "SignatureDoesNotMatch"));
    assert_null(strstr(s->err, "wrong"));
    assert_int_equal(s->stats.retries, 0);
    store_close(s);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

static void fake_virtual_hosted(void **state)
{
    const struct backend *be = *state;
    const char *port = strrchr(be->endpoint, ':');
    char ep[64], err[512];
    struct store_opts o = {.url = "s3://vbucket/v",
                           .endpoint = ep,
                           .path_style = 0,
                           .access_key = "AKFAKE",
                           .secret_key = "fake-secret"};
    struct store_list l;
    struct store *s;

    /* curl resolves *.localhost to loopback itself; the fake reads the
     * bucket from the Host header. */
    assert_non_null(port);
    snprintf(ep, sizeof(ep), "http://localhost%s", port);
    s = store_open(&o, err, sizeof(err));
    assert_non_null(s);
    expect_rc(s, store_put(s, "a b/ü", "v", 1), 0);
    expect_object(s, "a b/ü", "v", 1);
    expect_rc(s, store_list(s, "a", &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], "a b/ü");
    store_list_free(&l);
    expect_rc(s, store_del(s, "a b/ü"), 0);
    store_close(s);
}

/* ---- runner ------------------------------------------------------------ */

static int setup(void **state)
{
    struct fixture *f = *state;
    struct backend *be = (struct backend *)f->be;

    if (!strcmp(be->name, "dir")) {
        snprintf(be->url, sizeof(be->url), "%s/%s", tmp_root, f->name);
    } else {
        /* A fresh prefix per test and run: tests never see each other. */
        const char *base =
            getenv(!strcmp(be->name, "s3") ? "STOKE_TEST_S3_URL" : "STOKE_TEST_FAKE_S3_URL");
        snprintf(be->url, sizeof(be->url), "%s/%u-%s", base, run_id, strchr(f->name, '/') + 1);
    }
    f->s = open_be(be);
    return f->s ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    store_close(f->s);
    return 0;
}

static void run_contract(void **state)
{
    struct fixture *f = *state;

    f->fn(f->s, f->be);
}

int main(void)
{
    static struct backend dir = {.name = "dir"}, s3 = {.name = "s3", .path_style = 1},
                          fake = {.name = "fake",
                                  .list_page = 7,
                                  .path_style = -1,
                                  .access_key = "AKFAKE",
                                  .secret_key = "fake-secret"};
    const struct backend *bes[3] = {&dir};
    size_t nbe = 1, nc = sizeof(contract) / sizeof(contract[0]), n = 0;
    struct CMUnitTest tests[64];
    static struct fixture fx[64];
    static struct backend dir_only;
    int rc;

    snprintf(tmp_root, sizeof(tmp_root), "/tmp/stoke-test-store-XXXXXX");
    if (!mkdtemp(tmp_root))
        return 1;
    run_id = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    if (getenv("STOKE_TEST_S3_URL")) {
        s3.endpoint = getenv("STOKE_TEST_S3_ENDPOINT");
        s3.list_page = 100; /* many_keys spans 15 pages */
        bes[nbe++] = &s3;
    }
    if (getenv("STOKE_TEST_FAKE_S3")) {
        static char fake_url[64] = "s3://fake";
        setenv("STOKE_TEST_FAKE_S3_URL", fake_url, 1);
        fake.endpoint = getenv("STOKE_TEST_FAKE_S3");
        bes[nbe++] = &fake;
    }
    for (size_t b = 0; b < nbe; b++) {
        for (size_t i = 0; i < nc; i++, n++) {
            fx[n] = (struct fixture){.be = bes[b], .fn = contract[i].fn};
            snprintf(fx[n].name, sizeof(fx[n].name), "%s/%s", bes[b]->name, contract[i].name);
            tests[n] = (struct CMUnitTest){fx[n].name, run_contract, setup, teardown, &fx[n]};
        }
    }
    dir_only = dir;
    fx[n] = (struct fixture){.be = &dir_only, .fn = dir_layout, .name = "dir/layout"};
    tests[n] = (struct CMUnitTest){fx[n].name, run_contract, setup, teardown, &fx[n]};
    n++;
    tests[n++] = (struct CMUnitTest){"dir/open_urls", dir_open_urls, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"sha256_vectors", sha256_vectors, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"s3_uri_encode", s3_encode, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"s3_list_xml", s3_list_xml, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"s3_creds_file", s3_creds_file, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"s3_open_errors", s3_open_errors, NULL, env_teardown, NULL};
    if (getenv("STOKE_TEST_S3_URL"))
        tests[n++] = (struct CMUnitTest){"s3/cli_objects", s3_cli_objects, NULL, NULL, &s3};
    if (getenv("STOKE_TEST_FAKE_S3")) {
        tests[n++] = (struct CMUnitTest){"fake/failures", fake_failures, NULL, NULL, &fake};
        tests[n++] =
            (struct CMUnitTest){"fake/creds", fake_creds_precedence, NULL, env_teardown, &fake};
        tests[n++] =
            (struct CMUnitTest){"fake/virtual_hosted", fake_virtual_hosted, NULL, NULL, &fake};
    }
    rc = _cmocka_run_group_tests("store", tests, n, NULL, NULL);
    nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
