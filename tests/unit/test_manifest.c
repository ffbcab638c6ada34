/* SPDX-License-Identifier: Apache-2.0 */
/* codec/manifest: round trip, replaces, corruption, version, keys, golden. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/manifest.h"
#include "codec/wire.h"

static struct seg_footer *sample_footer(const char *host, int64_t t0)
{
    static char *types[] = {"process_cpu:cpu:nanoseconds:cpu:nanoseconds"};
    static char *vals[] = {"100", "200"};
    struct seg_label_summary ls = {
        .name = "pid", .values = vals, .nvalues = 2, .values_truncated = true};
    struct seg_section_info si = {.service = "api",
                                  .offset = 16,
                                  .length = 500,
                                  .raw_length = 2000,
                                  .crc32c = 0xdeadbeef,
                                  .t_min_ms = t0,
                                  .t_max_ms = t0 + 50000,
                                  .nsamples = 42,
                                  .total = {7, 9},
                                  .profile_types = types,
                                  .nprofile_types = 1,
                                  .labels = &ls,
                                  .nlabels = 1};
    struct seg_footer f = {.version = 1,
                           .tenant = "acme",
                           .host = (char *)host,
                           .t_min_ms = t0,
                           .t_max_ms = t0 + 50000,
                           .object_length = 600,
                           .sections = &si,
                           .nsections = 1};
    struct seg_footer *c = seg_footer_copy(&f);
    assert_non_null(c);
    return c;
}

static void check_entry(const struct manifest_entry *e, const char *key, const char *host,
                        int64_t t0)
{
    const struct seg_footer *f = e->footer;
    assert_string_equal(e->key, key);
    assert_int_equal(f->version, 1);
    assert_string_equal(f->tenant, "acme");
    assert_string_equal(f->host, host);
    assert_int_equal(f->t_min_ms, t0);
    assert_int_equal(f->t_max_ms, t0 + 50000);
    assert_int_equal(f->object_length, 600);
    assert_int_equal(f->nsections, 1);
    const struct seg_section_info *s = &f->sections[0];
    assert_string_equal(s->service, "api");
    assert_int_equal(s->offset, 16);
    assert_int_equal(s->length, 500);
    assert_int_equal(s->raw_length, 2000);
    assert_int_equal(s->crc32c, 0xdeadbeef);
    assert_int_equal(s->nsamples, 42);
    assert_int_equal(s->total[0], 7);
    assert_int_equal(s->total[1], 0); /* one type: one total */
    assert_string_equal(s->profile_types[0], "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    assert_int_equal(s->nlabels, 1);
    assert_string_equal(s->labels[0].name, "pid");
    assert_true(s->labels[0].values_truncated);
    assert_int_equal(s->labels[0].nvalues, 2);
    assert_string_equal(s->labels[0].values[1], "200");
}

static uint8_t *encode_two(size_t *len)
{
    struct manifest *m = calloc(1, sizeof(*m));
    struct seg_footer *a = sample_footer("h1", 1700000000000ll),
                      *b = sample_footer("h2", 1700000060000ll);
    uint8_t *buf;
    assert_int_equal(manifest_add(m, "k/1.seg", a), 0);
    assert_int_equal(manifest_add(m, "k/2.seg", b), 0);
    m->replaces = calloc(2, sizeof(char *));
    m->replaces[0] = strdup("k/entries/1.man");
    m->replaces[1] = strdup("k/entries/2.man");
    m->nreplaces = 2;
    assert_int_equal(manifest_encode(m, &buf, len), 0);
    seg_footer_free(a);
    seg_footer_free(b);
    manifest_free(m);
    return buf;
}

static void test_roundtrip(void **state)
{
    size_t len, len2;
    char err[128];
    struct manifest *m;
    uint8_t *buf = encode_two(&len), *buf2;
    assert_memory_equal(buf, "STKM", 4);
    assert_int_equal(manifest_decode(buf, len, &m, err, sizeof(err)), 0);
    assert_int_equal(m->nentries, 2);
    check_entry(&m->entries[0], "k/1.seg", "h1", 1700000000000ll);
    check_entry(&m->entries[1], "k/2.seg", "h2", 1700000060000ll);
    assert_int_equal(m->nreplaces, 2);
    assert_string_equal(m->replaces[1], "k/entries/2.man");
    /* decode → encode gives the same bytes */
    assert_int_equal(manifest_encode(m, &buf2, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    manifest_free(m);
    free(buf);
    free(buf2);

    struct manifest empty = {0};
    assert_int_equal(manifest_encode(&empty, &buf, &len), 0);
    assert_int_equal(manifest_decode(buf, len, &m, err, sizeof(err)), 0);
    assert_int_equal(m->nentries, 0);
    assert_int_equal(m->nreplaces, 0);
    manifest_free(m);
    free(buf);
}

static void test_corruption(void **state)
{
    size_t len;
    char err[128];
    struct manifest *m;
    uint8_t *buf = encode_two(&len);
    for (size_t i = 0; i < len; i++) {
        if (i >= 6 && i < 8)
            continue; /* the minor version: a newer minor must stay readable */
        if (i >= 8 && i < 10)
            continue; /* compatible flags are ignored by design */
        uint8_t *cp = malloc(len);
        memcpy(cp, buf, len);
        cp[i] ^= 0x5a;
        int r = manifest_decode(cp, len, &m, err, sizeof(err));
        if (!r)
            fail_msg("flipping byte %zu went unnoticed", i);
        assert_true(r == -EBADMSG || r == -EPROTO);
        assert_true(err[0]);
        free(cp);
    }
    for (size_t n = 0; n < len; n++) {
        uint8_t *t = malloc(n + 1);
        memcpy(t, buf, n);
        assert_int_not_equal(manifest_decode(t, n, &m, err, sizeof(err)), 0);
        free(t);
    }
    wr_u16(buf + 4, 2);
    assert_int_equal(manifest_decode(buf, len, &m, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "version 2"));
    free(buf);
}

static void test_keys(void **state)
{
    char k[256];
    assert_true(manifest_entry_key(k, sizeof(k), "acme", "h1", 1700000123456ll, 0xabcull) > 0);
    assert_string_equal(
        k, "acme/manifest/2023-11-14/22/entries/1700000123456-h1-0000000000000abc.man");
    assert_true(manifest_hour_key(k, sizeof(k), "acme", 1700000000000ll, 3) > 0);
    assert_string_equal(k, "acme/manifest/2023-11-14/22/hour-000003.man");
    assert_int_equal(manifest_hour_key(k, 10, "acme", 0, 3), -ENAMETOOLONG);
    assert_int_equal(manifest_entry_key(k, sizeof(k), "a b", "h", 0, 1), -EINVAL);
    assert_int_equal(manifest_hour_key(k, sizeof(k), "acme", -5, 0), -EINVAL);
}

/* An old-layout entry key gives its flush's segment key but the hash: the
 * prefix of what seg_object_key writes for the same host and start. */
static void test_entry_segment_prefix(void **state)
{
    char e[256], sk[256], pre[256];
    int n;
    assert_true(manifest_entry_key(e, sizeof(e), "acme", "web-1.a", 1700000123456ll, 0xabcull) > 0);
    assert_true(seg_object_key(sk, sizeof(sk), "acme", "web-1.a", 1700000123456ll, 0x123ull) > 0);
    n = manifest_entry_segment_prefix(e, pre, sizeof(pre));
    assert_int_equal(n, (int)strlen(pre));
    assert_string_equal(pre, "acme/segments/2023-11-14/22/web-1.a/1700000123456-");
    assert_int_equal(strncmp(sk, pre, (size_t)n), 0);
    assert_int_equal(strrchr(sk, '-') - sk + 1, n);
    /* not entry keys */
    const char *bad[] = {
        "",
        "acme",
        "acme/manifest/2023-11-14/22/hour-000003.man",
        "acme/segments/2023-11-14/22/h/1700000123456-0000000000000abc.seg",
        "acme/manifest/2023-11-14/22/entries/1700000123456-h-0000000000000abc.seg",
        "acme/manifest/2023-11-14/22/entries/1700000123456--0000000000000abc.man",
        "acme/manifest/2023-11-14/22/entries/170000012345x-h-0000000000000abc.man",
        "acme/manifest/2023-11-14/22/entries/1700000123456-h-0000000000000abg.man",
        "acme/manifest/2023-11-14/22/entries/1700000123456-a/b-0000000000000abc.man",
        "/manifest/2023-11-14/22/entries/1700000123456-h-0000000000000abc.man"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (manifest_entry_segment_prefix(bad[i], pre, sizeof(pre)) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
    assert_int_equal(manifest_entry_segment_prefix(e, pre, 20), -ENAMETOOLONG);
}

/* The golden manifest (written by test_segment's generator) stays readable. */
static void test_golden(void **state)
{
    FILE *fp = fopen("tests/data/codec/golden-v1.man", "rb");
    uint8_t buf[65536];
    char err[128];
    struct manifest *m;
    assert_non_null(fp);
    size_t len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    assert_int_equal(manifest_decode(buf, len, &m, err, sizeof(err)), 0);
    assert_int_equal(m->nentries, 1);
    assert_non_null(strstr(m->entries[0].key, "acme/segments/2023-11-14/22/host-1/1700000000000-"));
    const struct seg_footer *f = m->entries[0].footer;
    assert_int_equal(f->object_length, 681);
    assert_int_equal(f->nsections, 2);
    assert_string_equal(f->sections[0].service, "api");
    assert_int_equal(f->sections[0].nsamples, 6);
    assert_int_equal(f->sections[0].total[0], 28);
    assert_string_equal(f->sections[1].service, "db");
    assert_int_equal(m->nreplaces, 1);
    assert_string_equal(m->replaces[0], "acme/manifest/2023-11-14/22/entries/x.man");
    manifest_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_keys),      cmocka_unit_test(test_entry_segment_prefix),
        cmocka_unit_test(test_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
