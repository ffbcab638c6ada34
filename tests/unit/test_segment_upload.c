/* Unit tests: exporter/segment_upload.c — one object (one PUT) per flush
 * reaches the store, in order; a store that is down fills the bounded buffer
 * and then drops (counted) or spills to disk, and spilled objects are
 * uploaded when a store is back. "Down" is real: the S3 backend pointed at
 * a loopback port nobody listens on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exporter/segment_upload.h"
#include "store/store.h"

static const uint64_t T0 = 1767261600000000000ull; /* 2026-01-01T10:00Z in ns */

static struct profile *make_profile(uint64_t start_ns, uint64_t n)
{
    struct profile *p = profile_new("api", start_ns, 10000000000ull, 52631578);
    struct label_set ls = {0};
    struct sym_result r = {.kind = SYM_USER,
                           .mapping = "/bin/app",
                           .build_id = "ab",
                           .file_offset = 0x10,
                           .nframes = 1};
    r.frames[0].function = "hot";
    uint32_t loc = profile_location(p, &r);
    label_set_put(&ls, "service_name", "api");
    assert_int_equal(profile_add(p, &loc, 1, &ls, n), 0);
    label_set_clear(&ls);
    return p;
}

static size_t count_files(const char *dir, const char *suffix)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "find %s -type f -name '*%s' 2>/dev/null | wc -l", dir, suffix);
    FILE *f = popen(cmd, "r");
    size_t n = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%zu", &n), 1);
    pclose(f);
    return n;
}

static struct store *dead_store(void)
{
    char err[256];
    struct store_opts o = {.url = "s3://bucket/p",
                           .endpoint = "http://127.0.0.1:9", /* discard port: refused */
                           .access_key = "k",
                           .secret_key = "s",
                           .retries = 1,
                           .timeout_ms = 300};
    struct store *st = store_open(&o, err, sizeof(err));
    assert_non_null(st);
    return st;
}

static void test_uploads_in_order(void **state)
{
    char dir[] = "/tmp/stoke-upl-XXXXXX", err[256];
    assert_non_null(mkdtemp(dir));
    struct store_opts so = {.url = dir};
    struct store *st = store_open(&so, err, sizeof(err));
    struct seg_upload_opts uo = {.store = st, .host = "h1", .flush_s = 60};
    struct seg_upload *u = seg_upload_new(&uo, err, sizeof(err));
    assert_non_null(u);
    /* 12 windows of 10 s: two flushes of 60 s */
    for (int w = 0; w < 12; w++) {
        struct profile *p = make_profile(T0 + (uint64_t)w * 10000000000ull, 3);
        assert_int_equal(seg_upload_add(u, "api", p, T0 + (uint64_t)w * 10000000000ull), 0);
        profile_free(p);
    }
    assert_int_equal(seg_upload_flush(u), 0);
    assert_int_equal(seg_upload_drain(u, 5000), 0);
    struct seg_upload_stats s;
    seg_upload_get_stats(u, &s);
    assert_int_equal(s.objects_uploaded, 2);
    assert_int_equal(s.objects_dropped, 0);
    seg_upload_free(u, 1000);
    /* one object per flush: the segment alone, one PUT each (issue #18) */
    assert_int_equal(st->stats.puts, 2);
    assert_int_equal(count_files(dir, ".seg"), 2);
    assert_int_equal(count_files(dir, ".man"), 0);
    assert_int_equal(count_files(dir, ""), 2);
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* An object's key carries its flush start's UTC hour and readers list an
 * hour's manifests: windows of the next hour start an object of their own,
 * even within flush_s (else a query of 10:00-10:30 misses 10:00:00). */
static void test_cut_at_hour(void **state)
{
    char dir[] = "/tmp/stoke-upl-XXXXXX", err[256], path[300];
    assert_non_null(mkdtemp(dir));
    struct store_opts so = {.url = dir};
    struct store *st = store_open(&so, err, sizeof(err));
    struct seg_upload_opts uo = {.store = st, .host = "h1", .flush_s = 60};
    struct seg_upload *u = seg_upload_new(&uo, err, sizeof(err));
    assert_non_null(u);
    (void)state;
    /* 09:59:30, 09:59:40, 09:59:50, 10:00:00, 10:00:10: one flush interval */
    for (int w = -3; w < 2; w++) {
        uint64_t t = T0 + (uint64_t)((int64_t)w * 10000000000ll);
        struct profile *p = make_profile(t, 3);
        assert_int_equal(seg_upload_add(u, "api", p, t), 0);
        profile_free(p);
    }
    assert_int_equal(seg_upload_flush(u), 0);
    assert_int_equal(seg_upload_drain(u, 5000), 0);
    seg_upload_free(u, 1000);
    snprintf(path, sizeof(path), "%s/default/segments/2026-01-01/09", dir);
    assert_int_equal(count_files(path, ".seg"), 1);
    snprintf(path, sizeof(path), "%s/default/segments/2026-01-01/10", dir);
    assert_int_equal(count_files(path, ".seg"), 1);
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A host with many services fills the segment faster than flush_s: past
 * writer_bytes it is cut early, and counted, instead of growing. */
static void test_cut_at_writer_cap(void **state)
{
    char dir[] = "/tmp/stoke-upl3-XXXXXX", err[256], svc[32];
    assert_non_null(mkdtemp(dir));
    struct store_opts so = {.url = dir};
    struct store *st = store_open(&so, err, sizeof(err));
    struct seg_upload_opts uo = {
        .store = st, .host = "h1", .flush_s = 60, .writer_bytes = 64 << 10};
    struct seg_upload *u = seg_upload_new(&uo, err, sizeof(err));
    assert_non_null(u);
    /* 3 windows of 10 s, 80 services each: one flush interval's worth */
    for (int w = 0; w < 3; w++) {
        for (int i = 0; i < 80; i++) {
            snprintf(svc, sizeof(svc), "svc-%d", i);
            struct profile *p = make_profile(T0 + (uint64_t)w * 10000000000ull, 3);
            assert_int_equal(seg_upload_add(u, svc, p, T0 + (uint64_t)w * 10000000000ull), 0);
            profile_free(p);
        }
    }
    struct seg_upload_stats s;
    seg_upload_get_stats(u, &s);
    assert_true(s.objects_cut_early >= 2);
    assert_int_equal(seg_upload_flush(u), 0);
    assert_int_equal(seg_upload_drain(u, 5000), 0);
    seg_upload_get_stats(u, &s);
    /* the early cuts, and what was left for the flush (if anything) */
    assert_true(s.objects_uploaded == s.objects_cut_early ||
                s.objects_uploaded == s.objects_cut_early + 1);
    assert_int_equal(s.objects_dropped, 0);
    assert_int_equal(s.encode_errors, 0);
    seg_upload_free(u, 1000);
    assert_int_equal(count_files(dir, ".seg"), (int)s.objects_uploaded);
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_store_down_drops_counted(void **state)
{
    char err[256];
    struct store *st = dead_store();
    /* a buffer of 1 byte: every object beyond the one in flight is dropped */
    struct seg_upload_opts uo = {.store = st, .host = "h1", .flush_s = 10, .buffer_bytes = 1};
    struct seg_upload *u = seg_upload_new(&uo, err, sizeof(err));
    assert_non_null(u);
    for (int w = 0; w < 6; w++) {
        struct profile *p = make_profile(T0 + (uint64_t)w * 10000000000ull, 5);
        assert_int_equal(seg_upload_add(u, "api", p, T0 + (uint64_t)w * 10000000000ull), 0);
        profile_free(p);
    }
    seg_upload_flush(u);
    seg_upload_drain(u, 300);
    struct seg_upload_stats s;
    seg_upload_get_stats(u, &s);
    assert_int_equal(s.objects_uploaded, 0);
    assert_true(s.objects_dropped >= 4);
    assert_true(s.samples_dropped >= 20);
    assert_true(s.bytes_pending <= 1 || s.objects_pending <= 1);
    seg_upload_free(u, 0);
    store_close(st);
}

static void test_spill_then_recover(void **state)
{
    char spill[] = "/tmp/stoke-spill-XXXXXX", dir[] = "/tmp/stoke-upl2-XXXXXX", err[256];
    assert_non_null(mkdtemp(spill));
    assert_non_null(mkdtemp(dir));
    struct store *st = dead_store();
    struct seg_upload_opts uo = {
        .store = st, .host = "h1", .flush_s = 10, .buffer_bytes = 1, .spill_dir = spill};
    struct seg_upload *u = seg_upload_new(&uo, err, sizeof(err));
    assert_non_null(u);
    for (int w = 0; w < 4; w++) {
        struct profile *p = make_profile(T0 + (uint64_t)w * 10000000000ull, 7);
        assert_int_equal(seg_upload_add(u, "api", p, T0 + (uint64_t)w * 10000000000ull), 0);
        profile_free(p);
    }
    /* stopping with the store still down: everything ends up on disk */
    seg_upload_free(u, 200);
    store_close(st);
    assert_int_equal(count_files(spill, ".spill"), 4);

    /* the store is back (a new agent process): spilled objects go first */
    struct store_opts so = {.url = dir};
    st = store_open(&so, err, sizeof(err));
    uo = (struct seg_upload_opts){.store = st, .host = "h1", .spill_dir = spill};
    u = seg_upload_new(&uo, err, sizeof(err));
    assert_non_null(u);
    for (int i = 0; i < 50 && count_files(spill, ".spill") > 0; i++)
        usleep(100000);
    seg_upload_free(u, 2000);
    assert_int_equal(count_files(spill, ".spill"), 0);
    assert_int_equal(count_files(dir, ".seg"), 4);
    assert_int_equal(count_files(dir, ".man"), 0);
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", spill, dir);
    assert_int_equal(system(cmd), 0);
}

/* Writes one spill file the way agents before one object per flush did:
 * magic, then seg key, entry key, segment, entry, each with a native u64
 * length. */
static void write_old_spill(const char *path, const char *const parts[4])
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("STKSPIL1", 1, 8, f), 8);
    for (int i = 0; i < 4; i++) {
        uint64_t n = strlen(parts[i]);
        assert_int_equal(fwrite(&n, sizeof(n), 1, f), 1);
        assert_int_equal(fwrite(parts[i], 1, n, f), n);
    }
    fclose(f);
}

/* A spill file of an older agent holds a segment and its entry: both are
 * uploaded (its store is of the old layout, which readers still read); a
 * file of ours with an entry key but no entry is damaged, set aside. */
static void test_old_spill_file(void **state)
{
    char spill[] = "/tmp/stoke-spill3-XXXXXX", dir[] = "/tmp/stoke-upl4-XXXXXX", err[256];
    char path[512], cmd[256];
    assert_non_null(mkdtemp(spill));
    assert_non_null(mkdtemp(dir));
    const char *old[4] = {"default/segments/2026-01-01/10/h0/1767261600000-0000000000000001.seg",
                          "default/manifest/2026-01-01/10/entries/"
                          "1767261600000-h0-0000000000000002.man",
                          "segment bytes", "entry bytes"};
    const char *bad[4] = {"default/segments/2026-01-01/10/h0/1767261660000-0000000000000003.seg",
                          "default/manifest/2026-01-01/10/entries/x.man", "segment", ""};
    snprintf(path, sizeof(path), "%s/a.spill", spill);
    write_old_spill(path, old);
    snprintf(path, sizeof(path), "%s/b.spill", spill);
    write_old_spill(path, bad);
    struct store_opts so = {.url = dir};
    struct store *st = store_open(&so, err, sizeof(err));
    struct seg_upload_opts uo = {.store = st, .host = "h1", .spill_dir = spill};
    struct seg_upload *u = seg_upload_new(&uo, err, sizeof(err));
    assert_non_null(u);
    for (int i = 0; i < 50 && count_files(spill, ".spill") > 0; i++)
        usleep(100000);
    struct seg_upload_stats s;
    seg_upload_get_stats(u, &s);
    seg_upload_free(u, 2000);
    assert_int_equal(s.objects_uploaded, 1);
    assert_int_equal(s.entries_uploaded, 1);
    assert_int_equal(count_files(dir, ".seg"), 1);
    assert_int_equal(count_files(dir, ".man"), 1);
    assert_int_equal(count_files(spill, ".spill.bad"), 1);
    store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", spill, dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_spill_file),
        cmocka_unit_test(test_uploads_in_order),
        cmocka_unit_test(test_cut_at_hour),
        cmocka_unit_test(test_cut_at_writer_cap),
        cmocka_unit_test(test_store_down_drops_counted),
        cmocka_unit_test(test_spill_then_recover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
