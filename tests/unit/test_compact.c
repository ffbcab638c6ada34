/* Unit tests: query/compact.c — merging an hour's segments into one block,
 * generations, idempotence, late entries, corrupt entries, retention —
 * against the real directory store and the real codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/manifest.h"
#include "codec/segment.h"
#include "exporter/profile.h"
#include "query/compact.h"
#include "store/store.h"

#define HOUR_MS 3600000LL
/* 2026-01-01T10:00:00Z */
static const int64_t H = 1767261600000LL;

struct env {
    char dir[64];
    struct store *st;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char err[256];
    snprintf(e->dir, sizeof(e->dir), "/tmp/stoke-compact-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    struct store_opts o = {.url = e->dir};
    e->st = store_open(&o, err, sizeof(err));
    assert_non_null(e->st);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    char cmd[128];
    store_close(e->st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    assert_int_equal(system(cmd), 0);
    free(e);
    return 0;
}

static struct sym_result frame(const char *fn, uint64_t off)
{
    struct sym_result r = {.kind = SYM_USER,
                           .mapping = "/usr/bin/app",
                           .build_id = "abcd",
                           .file_offset = off,
                           .nframes = 1};
    r.frames[0].function = fn;
    return r;
}

/* One flush of @host: a profile of service "api" whose leaf functions get
 * @a samples of hot_a and @b of hot_b, written as segment + entry. */
static void put_flush(struct env *e, const char *host, int64_t t, uint64_t a, uint64_t b)
{
    struct profile *p = profile_new("api", (uint64_t)t * 1000000, 10000000000ull, 10000000);
    struct label_set ls = {0};
    struct sym_result fa = frame("hot_a", 0x100), fb = frame("hot_b", 0x200),
                      fm = frame("main", 0x300);
    uint32_t sa[2] = {profile_location(p, &fa), profile_location(p, &fm)};
    uint32_t sb[2] = {profile_location(p, &fb), profile_location(p, &fm)};
    label_set_put(&ls, "service_name", "api");
    label_set_put(&ls, "host_name", host);
    if (a)
        assert_int_equal(profile_add(p, sa, 2, &ls, a), 0);
    if (b)
        assert_int_equal(profile_add(p, sb, 2, &ls, b), 0);
    struct profile_pprof *pp;
    assert_int_equal(profile_to_pprof(p, &pp), 0);
    struct seg_writer *w = seg_writer_new("default", host);
    assert_int_equal(seg_writer_add_pprof(w, "api", profile_pprof_msg(pp), NULL, 0, t), 0);
    uint8_t *buf, *mbuf;
    size_t len, mlen;
    struct seg_footer *f;
    char key[512], ekey[512];
    assert_int_equal(seg_writer_finish(w, &buf, &len, &f), 0);
    assert_true(seg_object_key(key, sizeof(key), "default", host, t, seg_hash64(buf, len)) > 0);
    assert_int_equal(store_put(e->st, key, buf, len), 0);
    struct manifest *m = calloc(1, sizeof(*m));
    assert_int_equal(manifest_add(m, key, f), 0);
    assert_int_equal(manifest_encode(m, &mbuf, &mlen), 0);
    assert_true(manifest_entry_key(ekey, sizeof(ekey), "default", host, t, seg_hash64(mbuf, mlen)) >
                0);
    assert_int_equal(store_put(e->st, ekey, mbuf, mlen), 0);
    free(buf);
    free(mbuf);
    manifest_free(m);
    seg_footer_free(f);
    seg_writer_free(w);
    profile_pprof_free(pp);
    profile_free(p);
    label_set_clear(&ls);
}

static size_t count(struct env *e, const char *prefix)
{
    struct store_list l = {0};
    if (store_list(e->st, prefix, &l) != 0)
        return 0;
    size_t n = l.n;
    store_list_free(&l);
    return n;
}

/* Sums, over every block of the hour, the samples whose leaf is @fn (all
 * functions when NULL). */
static uint64_t block_samples(struct env *e, const char *fn)
{
    struct store_list l = {0};
    uint64_t total = 0;
    assert_int_equal(store_list(e->st, "default/blocks/", &l), 0);
    for (size_t i = 0; i < l.n; i++) {
        struct store_buf b = {0};
        struct seg_footer *f;
        char err[256];
        uint64_t need;
        assert_int_equal(store_get(e->st, l.keys[i], 0, 0, &b), 0);
        assert_int_equal(seg_footer_parse(b.data, b.len, b.len, &f, &need, err, sizeof(err)), 0);
        for (size_t s = 0; s < f->nsections; s++) {
            struct seg_section *sec;
            const struct seg_section_info *in = &f->sections[s];
            assert_int_equal(
                seg_section_decode(b.data + in->offset, in->length, in, &sec, err, sizeof(err)), 0);
            for (uint64_t r = 0; r < sec->nsamples; r++) {
                uint32_t st = sec->sample_stack[r];
                uint32_t leaf = sec->stack_locs[sec->stack_off[st]];
                const struct seg_location *loc = &sec->locations[leaf];
                const char *name =
                    sec->strings[sec->functions[sec->lines[loc->line_off].function].name];
                if (!fn || strcmp(name, fn) == 0)
                    total += (uint64_t)sec->sample_values[r * sec->ntypes]; /* samples/count */
            }
            seg_section_free(sec);
        }
        seg_footer_free(f);
        free(b.data);
    }
    store_list_free(&l);
    return total;
}

static void test_merge_hour(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};

    for (int i = 0; i < 3; i++) {
        put_flush(e, "host-a", H + i * 60000, 10 + i, 5);
        put_flush(e, "host-b", H + i * 60000, 7, 1 + i);
    }
    assert_int_equal(count(e, "default/manifest/"), 6);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(s.entries_merged, 6);
    assert_int_equal(s.blocks_written, 1);
    assert_int_equal(s.errors, 0);
    /* one block, one hour manifest, nothing else left */
    assert_int_equal(count(e, "default/blocks/"), 1);
    assert_int_equal(count(e, "default/segments/"), 0);
    assert_int_equal(count(e, "default/manifest/"), 1);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/hour-000001.man"), 1);
    /* every sample is still there: a = 10+11+12 + 3*7, b = 3*5 + 1+2+3 */
    assert_int_equal(block_samples(e, "hot_a"), 33 + 21);
    assert_int_equal(block_samples(e, "hot_b"), 15 + 6);
    assert_int_equal(block_samples(e, NULL), 75);

    /* a second pass finds nothing to do */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 0);
    assert_int_equal(block_samples(e, NULL), 75);
}

static void test_late_entry_next_generation(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};

    put_flush(e, "host-a", H, 4, 4);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    put_flush(e, "host-c", H + 30 * 60000, 2, 0); /* arrives after compaction */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/hour-000002.man"), 1);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/hour-000001.man"), 0);
    assert_int_equal(count(e, "default/blocks/"), 1);
    assert_int_equal(block_samples(e, "hot_a"), 6);
    assert_int_equal(block_samples(e, NULL), 10);
}

static void test_corrupt_entry_left_alone(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    const char *bad =
        "default/manifest/2026-01-01/10/entries/1767261600000-host-x-0000000000000000.man";

    put_flush(e, "host-a", H, 3, 0);
    assert_int_equal(store_put(e->st, bad, "garbage", 7), 0);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_true(s.errors >= 1);
    assert_non_null(strstr(s.last_error, "host-x"));
    assert_int_equal(block_samples(e, NULL), 3);
    assert_int_equal(count(e, bad), 1); /* not deleted: it was never merged */
}

static void test_retention(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 5 * HOUR_MS, .retention_h = 2};

    put_flush(e, "host-a", H, 3, 3);               /* hour 10: expired at 15:00 */
    put_flush(e, "host-a", H + 4 * HOUR_MS, 1, 1); /* hour 14: kept */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_true(s.hours_expired >= 1);
    assert_int_equal(count(e, "default/segments/2026-01-01/10/"), 0);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/"), 0);
    assert_int_equal(count(e, "default/manifest/2026-01-01/14/"), 1);
    /* late data for the expired hour never comes back */
    put_flush(e, "host-b", H + 60000, 9, 9);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(count(e, "default/segments/2026-01-01/10/"), 0);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/"), 0);
    assert_int_equal(count(e, "default/blocks/2026-01-01/10/"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_entry_next_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_entry_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
