/* Unit tests: query/jobs/compact.c — merging an hour's segments into one block,
 * generations, idempotence, late entries, corrupt entries, retention,
 * objects readable only in part, unreadable hour manifests — against the
 * real directory store, the real codec and the real query engine (what a
 * query answers must not change with compaction). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec/manifest.h"
#include "codec/segment.h"
#include "codec/calltree.h"
#include "codec/topsum.h"
#include "codec/wire.h"
#include "exporter/profile.h"
#include "query/engine/ctree.h"
#include "query/engine/plan.h"
#include "query/jobs/compact.h"
#include "query/jobs/lease.h"
#include "query/engine/engine.h"
#include "query/engine/selector.h"
#include "query/engine/views.h"
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

/* One service's part of a flush: leaf hot_a gets @a samples, hot_b @b.
 * @ntypes 1 keeps only the first sample type (samples), so the section's
 * types differ from a full one's (samples, cpu). */
struct part {
    const char *service;
    uint64_t a, b;
    size_t ntypes;
};

/* Set: service api's hot_a stack is hot_a < main < main (recursion). */
static bool recursive_api;

/* One flush of @host holding @parts, written as segment + entry (@entry:
 * the layout before one object per flush) or as the segment alone. @key
 * (may be NULL) receives the segment key, @cut the end of its first
 * section. */
static void put_writer(struct env *e, struct seg_writer *w, const char *host, int64_t t, char *key,
                       uint64_t *cut, bool entry);

static void put_parts_as(struct env *e, const char *host, int64_t t, const struct part *parts,
                         size_t nparts, char *key, uint64_t *cut, bool entry)
{
    struct seg_writer *w = seg_writer_new("default", host);
    for (size_t i = 0; i < nparts; i++) {
        const struct part *pt = &parts[i];
        struct profile *p =
            profile_new(pt->service, (uint64_t)t * 1000000, 10000000000ull, 10000000);
        struct label_set ls = {0};
        struct sym_result fa = frame("hot_a", 0x100), fb = frame("hot_b", 0x200),
                          fm = frame("main", 0x300);
        uint32_t sa[3] = {profile_location(p, &fa), profile_location(p, &fm),
                          profile_location(p, &fm)};
        uint32_t sb[2] = {profile_location(p, &fb), profile_location(p, &fm)};
        label_set_put(&ls, "service_name", pt->service);
        label_set_put(&ls, "host_name", host);
        if (pt->a)
            assert_int_equal(profile_add(p, sa,
                                         recursive_api && !strcmp(pt->service, "api") ? 3 : 2, &ls,
                                         pt->a),
                             0);
        if (pt->b)
            assert_int_equal(profile_add(p, sb, 2, &ls, pt->b), 0);
        struct profile_pprof *pp;
        assert_int_equal(profile_to_pprof(p, &pp), 0);
        Perftools__Profiles__Profile *msg = (Perftools__Profiles__Profile *)profile_pprof_msg(pp);
        size_t ntypes = msg->n_sample_type;
        if (pt->ntypes)
            msg->n_sample_type = pt->ntypes;
        assert_int_equal(seg_writer_add_pprof(w, pt->service, msg, NULL, 0, t), 0);
        msg->n_sample_type = ntypes;
        profile_pprof_free(pp);
        profile_free(p);
        label_set_clear(&ls);
    }
    put_writer(e, w, host, t, key, cut, entry);
}

/* Finishes @w (@host's flush at @t) and stores it: the segment, and with
 * @entry its entry manifest too (the layout before one object per flush);
 * @key (may be NULL) receives the segment key, @cut the end of its first
 * section. Frees @w. */
static void put_writer(struct env *e, struct seg_writer *w, const char *host, int64_t t, char *key,
                       uint64_t *cut, bool entry)
{
    uint8_t *buf, *mbuf;
    size_t len, mlen;
    struct seg_footer *f;
    char skey[512], ekey[512];
    assert_int_equal(seg_writer_finish(w, &buf, &len, &f), 0);
    assert_true(seg_object_key(skey, sizeof(skey), "default", host, t, seg_hash64(buf, len)) > 0);
    assert_int_equal(store_put(e->st, skey, buf, len), 0);
    struct manifest *m = calloc(1, sizeof(*m));
    assert_int_equal(manifest_add(m, skey, f), 0);
    assert_int_equal(manifest_encode(m, &mbuf, &mlen), 0);
    assert_true(manifest_entry_key(ekey, sizeof(ekey), "default", host, t, seg_hash64(mbuf, mlen)) >
                0);
    if (entry)
        assert_int_equal(store_put(e->st, ekey, mbuf, mlen), 0);
    if (key)
        snprintf(key, 512, "%s", skey);
    if (cut)
        *cut = f->sections[0].offset + f->sections[0].length;
    free(buf);
    free(mbuf);
    manifest_free(m);
    seg_footer_free(f);
    seg_writer_free(w);
}

static void put_parts(struct env *e, const char *host, int64_t t, const struct part *parts,
                      size_t nparts, char *key, uint64_t *cut)
{
    put_parts_as(e, host, t, parts, nparts, key, cut, true);
}

/* One flush of @host: a profile of service "api" whose leaf functions get
 * @a samples of hot_a and @b of hot_b, written as segment + entry. */
static void put_flush(struct env *e, const char *host, int64_t t, uint64_t a, uint64_t b)
{
    struct part pt = {"api", a, b, 0};
    put_parts(e, host, t, &pt, 1, NULL, NULL);
}

/* What a query of the hour answers: the total of @ptype over the series
 * @sel selects, and how many sections or manifests it skipped. */
struct answer {
    int64_t total;
    uint64_t skipped;
};

#define SAMPLES "process_cpu:samples:count:cpu:nanoseconds"

static struct answer ask(struct env *e, const char *sel_text, const char *ptype)
{
    struct engine_opts eo = {.store = e->st};
    struct engine *eng = engine_new(&eo);
    struct selector *sel = NULL;
    struct mprof *mp = NULL;
    struct top_row *rows = NULL;
    struct answer a = {0};
    char err[256];
    size_t n = 0;

    assert_non_null(eng);
    assert_int_equal(selector_parse(sel_text, &sel, err, sizeof(err)), 0);
    struct query q = {.tenant = "default",
                      .sel = sel,
                      .selector_text = sel_text,
                      .from = H,
                      .until = H + HOUR_MS,
                      .profile_type = ptype,
                      .mode = Q_PROFILE};
    if (engine_query(eng, &q, &mp, err, sizeof(err)))
        fail_msg("query: %s", err);
    assert_int_equal(view_top(mp, 0, &rows, &n, &a.total), 0);
    a.skipped = mp->stats.skipped;
    free(rows);
    mprof_free(mp);
    selector_free(sel);
    engine_free(eng);
    return a;
}

/* The four answers compared: services api and db, cpu and samples. */
static void answers(struct env *e, struct answer out[4])
{
    static const char *const sels[2] = {"{service_name=\"api\"}", "{service_name=\"db\"}"};
    for (int i = 0; i < 4; i++)
        out[i] = ask(e, sels[i / 2], i % 2 ? SAMPLES : NULL);
}

static void assert_same_answers(struct env *e, const struct answer before[4])
{
    struct answer now[4];
    answers(e, now);
    for (int i = 0; i < 4; i++)
        if (now[i].total != before[i].total || now[i].skipped != before[i].skipped)
            fail_msg("answer %d: total %lld, %llu skipped; before compaction %lld, %llu skipped", i,
                     (long long)now[i].total, (unsigned long long)now[i].skipped,
                     (long long)before[i].total, (unsigned long long)before[i].skipped);
}

static void write_file(struct env *e, const char *key, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", e->dir, key);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
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

/* The top table of @sel over [from, until) in @mode, as "name self total"
 * lines in view_top's order; *@bytes gets what the query read, and
 * top_gets its GETs. */
static uint64_t top_gets;
static char *top_text(struct env *e, const char *sel_text, const char *ptype, int64_t from,
                      int64_t until, enum qmode mode, uint64_t *bytes)
{
    /* one decode thread: with two, each may read a block's totals range
     * for itself, and the request count would depend on timing */
    struct engine_opts eo = {.store = e->st, .threads = 1};
    struct engine *eng = engine_new(&eo);
    struct selector *sel = NULL;
    struct mprof *mp = NULL;
    struct top_row *rows = NULL;
    struct wbuf b = {0};
    int64_t total;
    char err[256];
    size_t n = 0;

    assert_int_equal(selector_parse(sel_text, &sel, err, sizeof(err)), 0);
    struct query q = {.tenant = "default",
                      .sel = sel,
                      .from = from,
                      .until = until,
                      .profile_type = ptype,
                      .mode = mode};
    uint64_t g0 = e->st->stats.gets;
    if (engine_query(eng, &q, &mp, err, sizeof(err)))
        fail_msg("query: %s", err);
    top_gets = e->st->stats.gets - g0;
    assert_int_equal(mp->stats.skipped, 0);
    assert_int_equal(view_top(mp, 0, &rows, &n, &total), 0);
    wb_printf(&b, "total %lld\n", (long long)total);
    for (size_t i = 0; i < n; i++)
        wb_printf(&b, "%s %lld %lld\n", intern_str_get(&mp->str, rows[i].name),
                  (long long)rows[i].self, (long long)rows[i].total);
    wb_bytes(&b, "", 1);
    if (bytes)
        *bytes = mp->stats.bytes_read;
    free(rows);
    mprof_free(mp);
    selector_free(sel);
    engine_free(eng);
    return (char *)b.p;
}

/* Flushes of two hosts and two services, hot_a's stack recursive in api. */
static void put_top_hour(struct env *e)
{
    for (int i = 0; i < 4; i++)
        for (int h = 0; h < 2; h++) {
            struct part parts[2] = {{"api", 10 + i + h, 5 + h, 0}, {"db", 3, 7 + 2 * i, 0}};
            recursive_api = true;
            put_parts_as(e, h ? "host-b" : "host-a", H + i * 60000 + h, parts, 2, NULL, NULL,
                         false);
            recursive_api = false;
        }
}

#define NTOPQ 6
static const struct {
    const char *sel, *ptype;
    int64_t from, until;
} topq[NTOPQ] = {
    {"{}", NULL, H, H + HOUR_MS},
    {"{service_name=\"api\"}", NULL, H, H + HOUR_MS},
    {"{service_name=~\"a.*|db\"}", SAMPLES, H, H + HOUR_MS},
    {"{host_name=\"host-b\"}", NULL, H, H + HOUR_MS}, /* not every series: rows */
    {"{}", NULL, H + 60000, H + HOUR_MS},             /* part of a block: rows */
    {"{service_name=\"nope\"}", NULL, H, H + HOUR_MS},
};

/* A top query (Q_TOP) answers what the whole profile's top table says,
 * before compaction (from rows) and after it (from the blocks' function
 * totals where they answer exactly), reading less from the blocks; a
 * damaged totals frame falls back to the rows. */
static void test_top_from_function_totals(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    char *want[NTOPQ];
    uint64_t pbytes[NTOPQ], tbytes[NTOPQ];

    put_top_hour(e);
    for (int i = 0; i < NTOPQ; i++) {
        want[i] =
            top_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, Q_PROFILE, NULL);
        char *got =
            top_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, Q_TOP, NULL);
        assert_string_equal(got, want[i]);
        free(got);
    }
    /* recursion counted once a stack: main's total is every sample */
    assert_non_null(strstr(want[1], "\nmain 0 "));
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.blocks_written, 1);

    struct store_list l = {0};
    struct store_buf b = {0};
    struct seg_footer *f;
    char err[256];
    uint64_t need;
    assert_int_equal(store_list(e->st, "default/blocks/", &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(store_get(e->st, l.keys[0], 0, 0, &b), 0);
    assert_int_equal(seg_footer_parse(b.data, b.len, b.len, &f, &need, err, sizeof(err)), 0);
    assert_int_equal(f->nsections, 2);
    for (size_t k = 0; k < f->nsections; k++) {
        struct seg_topsum t;
        const struct seg_section_info *in = &f->sections[k];
        assert_true(in->top_length > 0);
        assert_int_equal(
            seg_topsum_decode(b.data + in->top_offset, in->top_length, in, &t, err, sizeof(err)),
            0);
        assert_int_equal(t.ntypes, 2);
        assert_int_equal(t.nfuncs, 3); /* hot_a, hot_b, main */
        assert_int_equal(t.nbuild_ids, 0);
        seg_topsum_free(&t);
    }

    for (int i = 0; i < NTOPQ; i++) {
        char *p = top_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, Q_PROFILE,
                           &pbytes[i]);
        uint64_t pg = top_gets;
        char *t =
            top_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, Q_TOP, &tbytes[i]);
        /* {}: both sections' totals in one read (with the manifest's: 2),
         * where the rows take one read each (3) */
        if (i == 0 && (top_gets != 2 || pg != 3))
            fail_msg("GETs: top %llu, profile %llu", (unsigned long long)top_gets,
                     (unsigned long long)pg);
        assert_string_equal(p, want[i]);
        assert_string_equal(t, want[i]);
        free(p);
        free(t);
    }
    /* whole sections in range, every series kept: the totals, not the rows */
    for (int i = 0; i < 3; i++)
        assert_true(tbytes[i] < pbytes[i]);
    assert_int_equal(tbytes[3], pbytes[3]);
    assert_int_equal(tbytes[4], pbytes[4]);

    /* Damaged rows: the queries the totals answer do not read them. */
    uint8_t *good = malloc(b.len);
    memcpy(good, b.data, b.len);
    for (size_t k = 0; k < f->nsections; k++)
        b.data[f->sections[k].offset + f->sections[k].length / 2] ^= 0x55;
    write_file(e, l.keys[0], b.data, b.len);
    for (int i = 0; i < 3; i++) {
        char *t = top_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, Q_TOP,
                           NULL); /* asserts nothing was skipped */
        assert_string_equal(t, want[i]);
        free(t);
    }
    /* A damaged totals frame: the rows answer, nothing is lost. */
    memcpy(b.data, good, b.len);
    free(good);
    b.data[f->sections[0].top_offset + f->sections[0].top_length / 2] ^= 0x55;
    write_file(e, l.keys[0], b.data, b.len);
    for (int i = 0; i < 3; i++) {
        char *t = top_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, Q_TOP, NULL);
        assert_string_equal(t, want[i]);
        free(t);
    }
    for (int i = 0; i < NTOPQ; i++)
        free(want[i]);
    seg_footer_free(f);
    free(b.data);
    store_list_free(&l);
}

/* ---- flame graphs from call trees ------------------------------------ */

/* A flame graph's nodes as lines "depth name self total", depth first. */
static void flame_line(void *ctx, uint32_t depth, const char *name, int64_t self, int64_t total)
{
    wb_printf(ctx, "%u %s %lld %lld\n", depth, name, (long long)self, (long long)total);
}
static void flame_leave(void *ctx, uint32_t depth)
{
    (void)ctx;
    (void)depth;
}

/* The flame graph (max_nodes 1024) of a query as text; @flame lets it read
 * call trees; *ctrees how many sections came from one. */
static char *flame_text(struct env *e, const char *sel_text, const char *ptype, int64_t from,
                        int64_t until, bool flame, uint64_t *bytes, uint32_t *ctrees)
{
    struct engine_opts eo = {.store = e->st, .threads = 1};
    struct engine *eng = engine_new(&eo);
    struct selector *sel = NULL;
    struct mprof *mp = NULL;
    struct wbuf b = {0};
    char err[256];

    assert_int_equal(selector_parse(sel_text, &sel, err, sizeof(err)), 0);
    struct query q = {.tenant = "default",
                      .sel = sel,
                      .from = from,
                      .until = until,
                      .profile_type = ptype,
                      .mode = Q_PROFILE,
                      .flame = flame};
    if (engine_query(eng, &q, &mp, err, sizeof(err)))
        fail_msg("query: %s", err);
    assert_int_equal(mp->stats.skipped, 0);
    struct flame_visit v = {flame_line, flame_leave};
    assert_int_equal(view_flame_walk(mp, 0, 1024, &v, &b), 0);
    wb_bytes(&b, "", 1);
    if (bytes)
        *bytes = mp->stats.bytes_read;
    if (ctrees)
        *ctrees = mp->ctrees;
    if (!flame)
        assert_int_equal(mp->ctrees, 0);
    mprof_free(mp);
    selector_free(sel);
    engine_free(eng);
    return (char *)b.p;
}

/* A flame graph that may read call trees (query.flame) is the one the rows
 * give, before compaction and after it, where whole sections whose every
 * series matches come from their blocks' call tree frames and read less;
 * damaged rows are not read for them, and a damaged tree frame falls back
 * to the rows. */
static void test_flame_from_call_trees(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    char *want[NTOPQ];
    uint64_t pbytes[NTOPQ], tbytes[NTOPQ];
    uint32_t ct;

    put_top_hour(e);
    for (int i = 0; i < NTOPQ; i++) {
        want[i] = flame_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, false,
                             NULL, NULL);
        char *got =
            flame_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, true, NULL, &ct);
        assert_string_equal(got, want[i]);
        assert_int_equal(ct, 0); /* flushes carry no trees */
        free(got);
    }
    /* the recursive stack shows as a path, not merged: main under main */
    assert_non_null(strstr(want[1], "\n1 main "));
    assert_non_null(strstr(want[1], "\n2 main "));
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.blocks_written, 1);

    struct store_list l = {0};
    struct store_buf b = {0};
    struct seg_footer *f;
    char err[256];
    uint64_t need;
    assert_int_equal(store_list(e->st, "default/blocks/", &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(store_get(e->st, l.keys[0], 0, 0, &b), 0);
    assert_int_equal(seg_footer_parse(b.data, b.len, b.len, &f, &need, err, sizeof(err)), 0);
    assert_int_equal(f->nsections, 2);
    for (size_t k = 0; k < f->nsections; k++) {
        struct seg_calltree t;
        const struct seg_section_info *in = &f->sections[k];
        assert_true(in->tree_length > 0);
        /* after the totals frames */
        assert_true(in->tree_offset >= f->sections[f->nsections - 1].top_offset);
        assert_int_equal(seg_calltree_decode(b.data + in->tree_offset, in->tree_length, in, &t, err,
                                             sizeof(err)),
                         0);
        assert_int_equal(t.ntypes, 2);
        assert_true(t.nnodes >= 2);
        for (uint32_t ty = 0; ty < t.ntypes; ty++)
            assert_int_equal(t.cut[ty], 0); /* small: nothing left out */
        seg_calltree_free(&t);
    }

    for (int i = 0; i < NTOPQ; i++) {
        char *p = flame_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, false,
                             &pbytes[i], NULL);
        char *t = flame_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, true,
                             &tbytes[i], &ct);
        assert_string_equal(p, want[i]);
        assert_string_equal(t, want[i]);
        /* whole sections in range, every series kept: the trees */
        if (i < 3 && (!ct || tbytes[i] >= pbytes[i]))
            fail_msg("query %d: %u trees, %llu bytes against %llu", i, ct,
                     (unsigned long long)tbytes[i], (unsigned long long)pbytes[i]);
        if ((i == 3 || i == 4) && (ct || tbytes[i] != pbytes[i]))
            fail_msg("query %d read %u trees", i, ct);
        free(p);
        free(t);
    }

    /* Damaged rows: the flame graphs the trees answer do not read them. */
    uint8_t *good = malloc(b.len);
    memcpy(good, b.data, b.len);
    for (size_t k = 0; k < f->nsections; k++)
        b.data[f->sections[k].offset + f->sections[k].length / 2] ^= 0x55;
    write_file(e, l.keys[0], b.data, b.len);
    for (int i = 0; i < 3; i++) {
        char *t = flame_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, true, NULL,
                             NULL); /* asserts nothing was skipped */
        assert_string_equal(t, want[i]);
        free(t);
    }
    /* A damaged tree frame: the rows answer, nothing is lost. */
    memcpy(b.data, good, b.len);
    free(good);
    for (size_t k = 0; k < f->nsections; k++)
        b.data[f->sections[k].tree_offset + f->sections[k].tree_length / 2] ^= 0x55;
    write_file(e, l.keys[0], b.data, b.len);
    for (int i = 0; i < 3; i++) {
        char *t =
            flame_text(e, topq[i].sel, topq[i].ptype, topq[i].from, topq[i].until, true, NULL, &ct);
        assert_string_equal(t, want[i]);
        assert_int_equal(ct, 0);
        free(t);
    }
    for (int i = 0; i < NTOPQ; i++)
        free(want[i]);
    seg_footer_free(f);
    free(b.data);
    store_list_free(&l);
}

/* Nodes of a flame graph by path: "a;b;c" -> total. */
struct pathset {
    char path[64][256];
    char *key[4096];
    int64_t total[4096];
    uint32_t n;
};
static void path_enter(void *ctx, uint32_t depth, const char *name, int64_t self, int64_t total)
{
    struct pathset *ps = ctx;
    (void)self;
    if (depth >= 64 || ps->n == 4096)
        fail_msg("flame graph too deep or large");
    snprintf(ps->path[depth], sizeof(ps->path[depth]), "%s;%s", depth ? ps->path[depth - 1] : "",
             name);
    ps->key[ps->n] = strdup(ps->path[depth]);
    ps->total[ps->n++] = total;
}
static int64_t path_total(const struct pathset *ps, const char *key, bool *found)
{
    for (uint32_t i = 0; i < ps->n; i++)
        if (!strcmp(ps->key[i], key)) {
            *found = true;
            return ps->total[i];
        }
    *found = false;
    return 0;
}

/* A tree cut to a few nodes keeps the largest ones, and no node of the
 * flame graph drawn from it is off by more than the cut it records; what
 * it left out shows under CTREE_OTHER; cut to nothing, it is the rows'. */
static void test_call_tree_cut_bound(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};

    put_top_hour(e);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    char *exact = flame_text(e, "{service_name=\"api\"}", NULL, H, H + HOUR_MS, false, NULL, NULL);

    struct store_list l = {0};
    struct store_buf b = {0};
    struct seg_footer *f;
    char err[256];
    uint64_t need;
    assert_int_equal(store_list(e->st, "default/blocks/", &l), 0);
    assert_int_equal(store_get(e->st, l.keys[0], 0, 0, &b), 0);
    assert_int_equal(seg_footer_parse(b.data, b.len, b.len, &f, &need, err, sizeof(err)), 0);
    const struct seg_section_info *in = &f->sections[0];
    assert_string_equal(in->service, "api");
    uint32_t col = UINT32_MAX;
    for (uint32_t k = 0; k < in->nprofile_types; k++)
        if (!strcmp(in->profile_types[k], DEFAULT_PROFILE_TYPE))
            col = k;
    assert_true(col != UINT32_MAX);

    /* the rows' graph, every node */
    struct pathset *want = calloc(1, sizeof(*want)), *got = calloc(1, sizeof(*got));
    struct flame_visit pv = {path_enter, flame_leave};
    {
        struct engine_opts eo = {.store = e->st, .threads = 1};
        struct engine *eng = engine_new(&eo);
        struct selector *sel = NULL;
        struct mprof *mp = NULL;
        assert_int_equal(selector_parse("{service_name=\"api\"}", &sel, err, sizeof(err)), 0);
        struct query q = {
            .tenant = "default", .sel = sel, .from = H, .until = H + HOUR_MS, .mode = Q_PROFILE};
        assert_int_equal(engine_query(eng, &q, &mp, err, sizeof(err)), 0);
        assert_int_equal(view_flame_walk(mp, 0, 4096, &pv, want), 0);
        mprof_free(mp);
        selector_free(sel);
        engine_free(eng);
    }
    bool saw_cut = false;
    for (uint32_t max = 1; max <= 8; max++) {
        uint8_t *raw = NULL;
        size_t rawlen = 0;
        assert_int_equal(
            engine_calltree_summary(&max, b.data + in->offset, in->length, in, &raw, &rawlen), 0);
        assert_non_null(raw);
        struct wbuf z = {0};
        assert_int_equal(zstd_append(&z, raw, rawlen, 1), 0);
        struct seg_section_info ti = *in;
        ti.tree_length = z.len;
        ti.tree_raw = rawlen;
        ti.tree_crc = crc32c(z.p, z.len);
        struct seg_calltree t;
        assert_int_equal(seg_calltree_decode(z.p, z.len, &ti, &t, err, sizeof(err)), 0);
        assert_true(t.nnodes <= max);
        struct mprof *mp = mprof_new(1);
        assert_int_equal(ctree_merge(mp, &t, col, "cpu", "nanoseconds"), 0);
        for (uint32_t k = 0; k < got->n; k++)
            free(got->key[k]);
        got->n = 0;
        assert_int_equal(view_flame_walk(mp, 0, 4096, &pv, got), 0);
        int64_t cut = t.cut[col];
        saw_cut |= cut > 0;
        /* every node of the rows' graph: within the cut (absent: at most
         * the cut); the root's total exact */
        for (uint32_t k = 0; k < want->n; k++) {
            bool found;
            int64_t v = path_total(got, want->key[k], &found);
            int64_t d = v - want->total[k];
            if (d < 0)
                d = -d;
            if (d > cut || (k == 0 && d))
                fail_msg("max %u: %s %lld against %lld, cut %lld", max, want->key[k], (long long)v,
                         (long long)want->total[k], (long long)cut);
        }
        if (!cut) {
            char *text = NULL;
            struct wbuf tb = {0};
            struct flame_visit v = {flame_line, flame_leave};
            assert_int_equal(view_flame_walk(mp, 0, 1024, &v, &tb), 0);
            wb_bytes(&tb, "", 1);
            text = (char *)tb.p;
            assert_string_equal(text, exact);
            free(text);
        } else {
            /* what was left out is shown, not dropped */
            bool found = false;
            for (uint32_t k = 0; k < got->n && !found; k++)
                found = strstr(got->key[k], CTREE_OTHER) != NULL;
            assert_true(found);
        }
        mprof_free(mp);
        seg_calltree_free(&t);
        wb_free(&z);
        free(raw);
    }
    assert_true(saw_cut);
    for (uint32_t k = 0; k < got->n; k++)
        free(got->key[k]);
    for (uint32_t k = 0; k < want->n; k++)
        free(want->key[k]);
    free(got);
    free(want);
    free(exact);
    seg_footer_free(f);
    free(b.data);
    store_list_free(&l);
}

static uint64_t xorshift64(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* One flush of service api on @host at @t: @n stacks of 1-5 frames drawn
 * from 8 names by @seed (xorshift), values skewed (a few large). */
static void put_random_flush(struct env *e, const char *host, int64_t t, uint64_t seed, int n)
{
    static const char *names[8] = {"main", "run", "parse", "eval", "alloc", "hash", "io", "gc"};
    struct seg_writer *w = seg_writer_new("default", host);
    struct profile *p = profile_new("api", (uint64_t)t * 1000000, 10000000000ull, 10000000);
    struct label_set ls = {0};
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

    label_set_put(&ls, "service_name", "api");
    label_set_put(&ls, "host_name", host);
    for (int i = 0; i < n; i++) {
        uint32_t st[5], depth = 1 + (uint32_t)(xorshift64(&x) % 5);
        for (uint32_t d = 0; d < depth; d++) {
            /* frame d (leaf first) from the first 3 + d names, the
             * outermost from all 8: stacks share many of their frames */
            uint32_t k = (uint32_t)(xorshift64(&x) % (d + 1 == depth ? 8 : 3 + d));
            struct sym_result fr = frame(names[k], 0x100 * (k + 1));
            st[d] = profile_location(p, &fr);
        }
        uint64_t v = 1 + xorshift64(&x) % 20;
        v *= xorshift64(&x) % 4 == 0 ? 50 : 1;
        assert_int_equal(profile_add(p, st, depth, &ls, v), 0);
    }
    struct profile_pprof *pp;
    assert_int_equal(profile_to_pprof(p, &pp), 0);
    assert_int_equal(seg_writer_add_pprof(w, "api",
                                          (Perftools__Profiles__Profile *)profile_pprof_msg(pp),
                                          NULL, 0, t),
                     0);
    profile_pprof_free(pp);
    profile_free(p);
    label_set_clear(&ls);
    put_writer(e, w, host, t, NULL, NULL, false);
}

/* @in's call tree (the section at @data) cut to @max nodes, decoded. */
static void cut_tree(const uint8_t *data, const struct seg_section_info *in, uint32_t max,
                     struct seg_calltree *t)
{
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    char err[256];
    struct wbuf z = {0};

    assert_int_equal(
        engine_calltree_summary(&max, data + in->offset, in->length, in, &raw, &rawlen), 0);
    assert_non_null(raw);
    assert_int_equal(zstd_append(&z, raw, rawlen, 1), 0);
    struct seg_section_info ti = *in;
    ti.tree_length = z.len;
    ti.tree_raw = rawlen;
    ti.tree_crc = crc32c(z.p, z.len);
    assert_int_equal(seg_calltree_decode(z.p, z.len, &ti, t, err, sizeof(err)), 0);
    wb_free(&z);
    free(raw);
}

static char *walk_text(const struct mprof *mp, uint32_t max_nodes)
{
    struct wbuf tb = {0};
    struct flame_visit v = {flame_line, flame_leave};

    assert_int_equal(view_flame_walk(mp, 0, max_nodes, &v, &tb), 0);
    wb_bytes(&tb, "", 1);
    return (char *)tb.p;
}

/* view_flame_proved: two sections' trees, each cut anywhere from 1 node
 * to whole, merged; wherever it says the graph is the rows', for every
 * max_nodes, it is, text for text; it says so for whole trees, and
 * refuses some cut ones (or it would prove nothing). */
static void test_call_tree_proof(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 3 * HOUR_MS};
    char err[256];

    /* two hours of different stacks: two blocks, a section each */
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 3; i++)
            put_random_flush(e, i % 2 ? "host-b" : "host-a", H + h * HOUR_MS + i * 60000,
                             (uint64_t)(10 * h + i + 1), 40);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    struct store_list l = {0};
    struct store_buf b[2] = {{0}};
    struct seg_footer *f[2];
    const struct seg_section_info *in[2];
    uint32_t col[2], n[2];
    uint64_t need;
    assert_int_equal(store_list(e->st, "default/blocks/", &l), 0);
    assert_int_equal(l.n, 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(store_get(e->st, l.keys[k], 0, 0, &b[k]), 0);
        assert_int_equal(
            seg_footer_parse(b[k].data, b[k].len, b[k].len, &f[k], &need, err, sizeof(err)), 0);
        assert_int_equal(f[k]->nsections, 1);
        in[k] = &f[k]->sections[0];
        col[k] = UINT32_MAX;
        for (uint32_t j = 0; j < in[k]->nprofile_types; j++)
            if (!strcmp(in[k]->profile_types[j], DEFAULT_PROFILE_TYPE))
                col[k] = j;
        assert_true(col[k] != UINT32_MAX);
        struct seg_calltree whole;
        cut_tree(b[k].data, in[k], CTREE_MAX_NODES, &whole);
        n[k] = whole.nnodes;
        assert_true(n[k] >= 30);
        seg_calltree_free(&whole);
    }
    /* the rows of both sections */
    struct mprof *rows = NULL;
    {
        struct engine_opts eo = {.store = e->st, .threads = 1};
        struct engine *eng = engine_new(&eo);
        struct selector *sel = NULL;
        assert_int_equal(selector_parse("{service_name=\"api\"}", &sel, err, sizeof(err)), 0);
        struct query q = {.tenant = "default",
                          .sel = sel,
                          .from = H,
                          .until = H + 2 * HOUR_MS,
                          .mode = Q_PROFILE};
        assert_int_equal(engine_query(eng, &q, &rows, err, sizeof(err)), 0);
        assert_int_equal(rows->ctrees, 0);
        selector_free(sel);
        engine_free(eng);
    }
    static const uint32_t cuts[] = {1, 2, 3, 5, 8, 12, 18, 27, 40, 60, CTREE_MAX_NODES};
    uint32_t proved = 0, refused = 0, most = n[0] > n[1] ? n[0] : n[1];
    char **want = calloc(most + 3, sizeof(*want));
    for (uint32_t mn = 1; mn <= most + 2; mn++)
        want[mn] = walk_text(rows, mn);
    for (size_t a = 0; a < sizeof(cuts) / sizeof(*cuts); a++)
        for (size_t c = 0; c < sizeof(cuts) / sizeof(*cuts); c++) {
            struct seg_calltree ta, tc;
            cut_tree(b[0].data, in[0], cuts[a], &ta);
            cut_tree(b[1].data, in[1], cuts[c], &tc);
            /* through a thread's merge too, as the engine does */
            struct mprof *part = mprof_new(1), *mp = mprof_new(1);
            assert_int_equal(ctree_merge(part, &ta, col[0], "cpu", "nanoseconds"), 0);
            assert_int_equal(ctree_merge(mp, &tc, col[1], "cpu", "nanoseconds"), 0);
            assert_int_equal(mprof_merge(mp, part), 0);
            assert_int_equal(mp->cpf_trees, 2);
            for (uint32_t mn = 1; mn <= most + 2; mn++) {
                int r = view_flame_proved(mp, 0, mn, CTREE_OTHER);
                assert_true(r == 0 || r == 1);
                if (!r) {
                    refused++;
                    continue;
                }
                proved++;
                char *got = walk_text(mp, mn);
                if (strcmp(want[mn], got))
                    fail_msg("cuts %u+%u, max_nodes %u: proved, but\n%s\nagainst the rows'\n%s",
                             cuts[a], cuts[c], mn, got, want[mn]);
                free(got);
            }
            /* whole trees: exact for any max_nodes */
            if (ta.cut[col[0]] == 0 && tc.cut[col[1]] == 0)
                assert_int_equal(view_flame_proved(mp, 0, 4096, CTREE_OTHER), 1);
            /* a peer's answer (SQP3) carries the proof: the same verdicts
             * on the coordinator; an older peer's (SQP2) none: never */
            for (int old = 0; old < 2; old++) {
                struct mprof *peer = NULL, *coord = mprof_new(1);
                uint8_t *wire = NULL;
                size_t wl = 0;
                uint32_t keep = mp->cpf_trees;
                mp->cpf_trees = old ? 0 : keep;
                assert_int_equal(mprof_encode(mp, &wire, &wl), 0);
                mp->cpf_trees = keep;
                assert_memory_equal(wire, old ? "SQP2" : "SQP3", 4);
                assert_int_equal(mprof_decode(wire, wl, &peer), 0);
                assert_int_equal(mprof_merge(coord, peer), 0);
                for (uint32_t mn = 1; mn <= most + 2; mn += 7)
                    assert_int_equal(view_flame_proved(coord, 0, mn, CTREE_OTHER),
                                     old ? 0 : view_flame_proved(mp, 0, mn, CTREE_OTHER));
                free(wire);
                mprof_free(peer);
                mprof_free(coord);
            }
            mprof_free(part);
            mprof_free(mp);
            seg_calltree_free(&ta);
            seg_calltree_free(&tc);
        }
    print_message("proof: %u proved, %u refused (nodes %u, %u)\n", proved, refused, n[0], n[1]);
    assert_true(proved > 0 && refused > 0);
    /* no trees: nothing to prove */
    assert_int_equal(view_flame_proved(rows, 0, 1, CTREE_OTHER), 1);
    for (uint32_t mn = 0; mn < most + 3; mn++)
        free(want[mn]);
    free(want);
    mprof_free(rows);
    for (int k = 0; k < 2; k++) {
        seg_footer_free(f[k]);
        free(b[k].data);
    }
    store_list_free(&l);
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
    /* the index follows its manifest's generation */
    assert_int_equal(count(e, "default/index/2026-01-01/10/hour-000002.man"), 1);
    assert_int_equal(count(e, "default/index/"), 1);
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

/* A segment whose second section is cut off (a truncated upload, a bad
 * disk) stays an entry, whole: merging its first section into the block
 * too would count that section twice, once in the block and once through
 * the entry that stays. Queries answer the same before and after. */
static void test_partial_segment_stays_whole(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    const struct part both[2] = {{"api", 5, 3, 0}, {"db", 2, 7, 0}};
    struct answer before[4];
    char bad[512], path[1024];
    uint64_t cut;

    put_parts(e, "host-a", H, both, 2, NULL, NULL);
    put_parts(e, "host-b", H + 60000, both, 2, bad, &cut);
    put_parts(e, "host-c", H + 120000, both, 2, NULL, NULL);
    snprintf(path, sizeof(path), "%s/%s", e->dir, bad);
    assert_int_equal(truncate(path, (off_t)cut), 0); /* host-b's "db" is gone */
    answers(e, before);
    assert_int_equal(before[1].total, 3 * (5 + 3)); /* api, samples */
    assert_int_equal(before[1].skipped, 0);
    assert_int_equal(before[3].total, 2 * (2 + 7)); /* db: host-b's skipped */
    assert_int_equal(before[3].skipped, 1);

    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_same_answers(e, before);
    /* the block holds the two whole segments; the cut one stays */
    assert_int_equal(block_samples(e, NULL), 2 * (8 + 9));
    assert_int_equal(count(e, bad), 1);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(s.entries_merged, 2);
    assert_int_equal(s.objects_kept, 1);
    assert_true(s.errors >= 1);
    assert_non_null(strstr(s.last_error, bad));
    /* a second pass changes nothing either */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 0);
    assert_same_answers(e, before);
}

/* A segment with a section the block cannot take (other sample types for
 * the same service) stays whole too, its other sections included. */
static void test_mismatched_types_stay_whole(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    const struct part full[2] = {{"api", 5, 3, 0}, {"db", 2, 7, 0}};
    const struct part odd[2] = {{"api", 4, 4, 0}, {"db", 1, 1, 1}}; /* db: samples only */
    struct answer before[4];
    char oddkey[512];

    put_parts(e, "host-a", H, full, 2, NULL, NULL);
    put_parts(e, "host-b", H + 60000, odd, 2, oddkey, NULL);
    answers(e, before);
    assert_int_equal(before[1].total, 16);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_same_answers(e, before);
    assert_int_equal(block_samples(e, NULL), 8 + 9);
    assert_int_equal(count(e, oddkey), 1);
    assert_int_equal(s.entries_merged, 1);
    assert_int_equal(s.objects_kept, 1);
    assert_non_null(strstr(s.last_error, "sample types"));
}

/* An hour manifest that does not decode is skipped with an error, replaced
 * by the next generation built from what readers still see (the entries),
 * and deleted; the pass goes on to the other hours. */
struct seen {
    unsigned n, manifest;
};

static void on_error(const char *msg, void *arg)
{
    struct seen *v = arg;
    v->n++;
    v->manifest += strstr(msg, "manifest/2026-01-01/10/hour-000001.man") != NULL;
}

static void test_garbage_hour_manifest(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct seen seen = {0};
    struct compact_opts o = {
        .now_ms = H + 2 * HOUR_MS, .on_error = on_error, .on_error_arg = &seen};
    const char *garbage = "default/manifest/2026-01-01/10/hour-000001.man";
    struct answer before[4];

    put_flush(e, "host-a", H, 3, 4);
    put_flush(e, "host-b", H + 60000, 5, 6);
    put_flush(e, "host-a", H - HOUR_MS, 1, 1); /* the hour before */
    assert_int_equal(store_put(e->st, garbage, "garbage", 7), 0);
    answers(e, before);
    assert_int_equal(before[1].total, 18);
    assert_int_equal(before[1].skipped, 1); /* the manifest */

    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 2);
    assert_int_equal(s.errors, 1);
    assert_non_null(strstr(s.last_error, "hour-000001.man"));
    assert_int_equal(seen.n, 1); /* every error reported as it is counted */
    assert_int_equal(seen.manifest, 1);
    assert_int_equal(count(e, garbage), 0);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/hour-000002.man"), 1);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/entries/"), 0);
    assert_int_equal(count(e, "default/manifest/2026-01-01/09/hour-000001.man"), 1);
    assert_int_equal(block_samples(e, NULL), 3 + 4 + 5 + 6 + 1 + 1);
    struct answer after = ask(e, "{service_name=\"api\"}", SAMPLES);
    assert_int_equal(after.total, before[1].total);
    assert_int_equal(after.skipped, 0);
    /* and the next pass has nothing to say */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.errors, 0);
}

/* A compacted hour whose newer manifest is garbage: the readable one stays
 * in force (as for queries), late entries are merged into the generation
 * after the garbage's, and the block only the garbage listed is kept and
 * counted, not merged (its data is in the readable block already here:
 * adopting it would count it twice). */
static void test_garbage_over_compacted_hour(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    const char *garbage = "default/manifest/2026-01-01/10/hour-000002.man";
    const char *orphan = "default/blocks/2026-01-01/10/000002-0000000000000000.blk";
    struct store_list l = {0};
    struct store_buf b = {0};
    struct answer before[4];

    put_flush(e, "host-a", H, 4, 4);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    put_flush(e, "host-c", H + 30 * 60000, 2, 0); /* late */
    assert_int_equal(store_list(e->st, "default/blocks/", &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(store_get(e->st, l.keys[0], 0, 0, &b), 0);
    assert_int_equal(store_put(e->st, orphan, b.data, b.len), 0);
    free(b.data);
    store_list_free(&l);
    assert_int_equal(store_put(e->st, garbage, "\0\0\0\0", 4), 0);
    answers(e, before);
    assert_int_equal(before[1].total, 10);

    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(s.entries_merged, 1);
    assert_int_equal(s.blocks_orphaned, 1);
    assert_non_null(strstr(s.last_error, "hour-000002.man"));
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/hour-000003.man"), 1);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/hour-0000"), 1);
    assert_int_equal(count(e, orphan), 1);
    struct answer after = ask(e, "{service_name=\"api\"}", SAMPLES);
    assert_int_equal(after.total, before[1].total);
    assert_int_equal(after.skipped, 0);
    /* and it is not taken for a crashed pass's debris: not of the
     * generation in force (3) */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.orphans_deleted, 0);
    assert_int_equal(count(e, orphan), 1);
}

/* A block of the previous generation readable only in part is listed again
 * as it is, next to the new block, instead of stopping the pass. */
static void test_corrupt_block_stays_listed(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    const struct part both[2] = {{"api", 5, 3, 0}, {"db", 2, 7, 0}};
    struct store_list l = {0};
    struct store_buf b = {0};
    struct seg_footer *f;
    struct answer before[4];
    char err[256], blk[512];
    uint64_t need;

    put_parts(e, "host-a", H, both, 2, NULL, NULL);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(store_list(e->st, "default/blocks/", &l), 0);
    assert_int_equal(l.n, 1);
    snprintf(blk, sizeof(blk), "%s", l.keys[0]);
    store_list_free(&l);
    assert_int_equal(store_get(e->st, blk, 0, 0, &b), 0);
    assert_int_equal(seg_footer_parse(b.data, b.len, b.len, &f, &need, err, sizeof(err)), 0);
    assert_string_equal(f->sections[1].service, "db");
    b.data[f->sections[1].offset + f->sections[1].length / 2] ^= 0x55;
    write_file(e, blk, b.data, b.len);
    seg_footer_free(f);
    free(b.data);
    put_parts(e, "host-b", H + 60000, both, 2, NULL, NULL); /* late */
    answers(e, before);
    assert_int_equal(before[3].skipped, 1);

    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(s.objects_kept, 1);
    assert_int_equal(count(e, blk), 1);
    assert_int_equal(count(e, "default/blocks/"), 2);
    assert_int_equal(count(e, "default/manifest/"), 1);
    assert_same_answers(e, before);
}

/* A manifest of a newer format version is not ours to replace: its hour is
 * left as it is (counted), and the other hours are compacted. */
static void test_newer_version_manifest_left_alone(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    const char *newer = "default/manifest/2026-01-01/10/hour-000001.man";
    struct manifest m = {0};
    uint8_t *buf;
    size_t len;

    put_flush(e, "host-a", H, 3, 3);
    put_flush(e, "host-a", H - HOUR_MS, 1, 1);
    assert_int_equal(manifest_encode(&m, &buf, &len), 0);
    buf[4] = 2; /* major 2 */
    assert_int_equal(store_put(e->st, newer, buf, len), 0);
    free(buf);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_non_null(strstr(s.last_error, "version"));
    assert_int_equal(count(e, newer), 1);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/entries/"), 1);
    assert_int_equal(count(e, "default/manifest/2026-01-01/09/hour-000001.man"), 1);
}

/* ---- two compactors at once ---------------------------------------------
 * A store that forwards to the test's directory store and, once, at a
 * chosen call, lets another compactor run a whole pass on the same store
 * (and a late flush arrive first): the moments where a pass's view of the
 * hour goes stale. */
struct race {
    struct store base;
    struct env *e;
    int at;   /* 1: the second segment read; 2: the first block put;
                 3: the hour manifest's put */
    int gets; /* segment reads so far */
    bool late, done;
    /* at the second segment read: wait past half the lease TTL, and
     * another replica ("other") takes the hour's lease over */
    bool take_lease;
};

static void race_take_lease(struct race *r);

static void race_other_compactor(struct race *r)
{
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    r->done = true;
    if (r->late)
        put_flush(r->e, "host-late", H + 50 * 60000, 100, 0);
    assert_int_equal(compact_run(r->e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
}

static int race_put(struct store *st, const char *key, const void *d, size_t n)
{
    struct race *r = (struct race *)st;
    if (!r->done && r->at == 2 && strstr(key, ".blk"))
        race_other_compactor(r);
    if (!r->done && r->at == 3 && strstr(key, "/hour-"))
        race_other_compactor(r);
    int ret = store_put(r->e->st, key, d, n);
    snprintf(st->err, sizeof(st->err), "%s", r->e->st->err);
    return ret;
}

static int race_get(struct store *st, const char *key, uint64_t off, uint64_t len,
                    struct store_buf *out)
{
    struct race *r = (struct race *)st;
    if (strstr(key, "/segments/") && ++r->gets == 2 && !r->done && r->at == 1)
        race_other_compactor(r);
    if (r->gets == 2 && !r->done && r->take_lease)
        race_take_lease(r);
    int ret = store_get(r->e->st, key, off, len, out);
    snprintf(st->err, sizeof(st->err), "%s", r->e->st->err);
    return ret;
}

static int race_head(struct store *st, const char *key, uint64_t *size)
{
    return store_head(((struct race *)st)->e->st, key, size);
}

static int race_list(struct store *st, const char *prefix, struct store_list *out)
{
    return store_list(((struct race *)st)->e->st, prefix, out);
}

static int race_del(struct store *st, const char *key)
{
    return store_del(((struct race *)st)->e->st, key);
}

static void race_free(struct store *st)
{
    (void)st;
}

static int race_put_new(struct store *st, const char *key, const void *d, size_t n)
{
    struct race *r = (struct race *)st;
    if (!r->done && r->at == 2 && strstr(key, ".blk"))
        race_other_compactor(r);
    if (!r->done && r->at == 3 && strstr(key, "/hour-"))
        race_other_compactor(r);
    int ret = store_put_new(r->e->st, key, d, n);
    snprintf(st->err, sizeof(st->err), "%s", r->e->st->err);
    return ret;
}

static const struct store_ops race_ops = {.put = race_put,
                                          .put_new = race_put_new,
                                          .get = race_get,
                                          .head = race_head,
                                          .list = race_list,
                                          .del = race_del,
                                          .free = race_free};

/* Another compactor compacts the hour and deletes its entries while this
 * pass is reading them: this pass must not then write its own manifest of
 * the same generation, holding only what it read before, over the other's. */
static void test_other_compactor_deletes_under_us(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    struct race r = {.base = {.ops = &race_ops}, .e = e, .at = 1};

    for (int i = 0; i < 4; i++)
        put_flush(e, "host-a", H + i * 60000, 1 + i, 1);
    struct answer before = ask(e, "{}", SAMPLES);
    assert_int_equal(before.total, 14);
    assert_int_equal(compact_run(&r.base, &o, &s), 0);
    assert_true(r.done);
    struct answer after = ask(e, "{}", SAMPLES);
    assert_int_equal(after.total, before.total);
    assert_int_equal(after.skipped, 0);
    assert_int_equal(count(e, "default/blocks/"), 1);
}

/* Another compactor writes the next generation, with a flush that arrived
 * after this pass listed the hour, between this pass's block and its hour
 * manifest: this pass must not overwrite it (the other one has deleted the
 * late entry it merged), and its own block goes. */
static void test_other_compactor_writes_first(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    struct race r = {.base = {.ops = &race_ops}, .e = e, .at = 2, .late = true};

    for (int i = 0; i < 4; i++)
        put_flush(e, "host-a", H + i * 60000, 1 + i, 1);
    assert_int_equal(compact_run(&r.base, &o, &s), 0);
    assert_true(r.done);
    struct answer after = ask(e, "{}", SAMPLES);
    assert_int_equal(after.total, 14 + 100);
    assert_int_equal(count(e, "default/blocks/"), 1);
    assert_int_equal(count(e, "default/manifest/"), 1);
}

/* One flush of @host as agents write it now: the segment alone. @key (may
 * be NULL) receives its key. */
static void put_flush1(struct env *e, const char *host, int64_t t, uint64_t a, uint64_t b,
                       char *key)
{
    struct part pt = {"api", a, b, 0};
    put_parts_as(e, host, t, &pt, 1, key, NULL, false);
}

static void get_object(struct env *e, const char *key, struct store_buf *b)
{
    assert_int_equal(store_get(e->st, key, 0, 0, b), 0);
}

/* An hour of segments alone (no entry, no hour manifest yet): queries find
 * them by their footers, compaction merges them, answers do not change. */
static void test_one_object_hour(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};

    for (int i = 0; i < 3; i++) {
        put_flush1(e, "host-a", H + i * 60000, 10 + i, 5, NULL);
        put_flush1(e, "host-b", H + i * 60000, 7, 1 + i, NULL);
    }
    assert_int_equal(count(e, "default/manifest/"), 0);
    struct answer before = ask(e, "{}", SAMPLES);
    assert_int_equal(before.total, 75);
    assert_int_equal(before.skipped, 0);
    assert_int_equal(ask(e, "{host_name=\"host-b\"}", SAMPLES).total, 21 + 6);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(s.entries_merged, 6);
    assert_int_equal(s.segments_read, 6);
    assert_int_equal(s.errors, 0);
    assert_int_equal(count(e, "default/segments/"), 0);
    assert_int_equal(count(e, "default/manifest/"), 1);
    assert_int_equal(block_samples(e, NULL), 75);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 75);
    /* a second pass finds nothing to do */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 0);
    assert_int_equal(block_samples(e, NULL), 75);
}

/* GetProfileStats' engine side sees a tenant whose flushes are segments
 * alone (no manifest of any kind yet). */
static void test_profile_stats_segments_only(void **state)
{
    struct env *e = *state;
    struct engine_opts eo = {.store = e->st};
    struct engine *eng = engine_new(&eo);
    struct profile_stats ps;
    char err[256] = "";

    put_flush1(e, "host-a", H + 60000, 1, 1, NULL);
    put_flush1(e, "host-b", H + 120000, 1, 1, NULL);
    assert_int_equal(count(e, "default/manifest/"), 0);
    assert_int_equal(engine_profile_stats(eng, "default", NULL, &ps, err, sizeof(err)), 0);
    assert_true(ps.ingested);
    assert_int_equal(ps.oldest_ms, H + 60000);
    assert_int_equal(ps.newest_ms, H + 120000);
    engine_free(eng);
}

/* The same flushes with and without their entry objects answer the same:
 * an old-layout store reads with the same totals. */
static void test_old_layout_same_answers(void **state)
{
    struct env *e = *state;
    struct answer old[4];
    struct part pt[2] = {{"api", 3, 4, 0}, {"db", 2, 9, 0}};

    for (int i = 0; i < 4; i++) {
        put_parts(e, "host-a", H + i * 60000, pt, 2, NULL, NULL);
        put_parts(e, "host-b", H + i * 60000 + 1000, pt, 1, NULL, NULL);
    }
    assert_int_equal(count(e, "default/manifest/"), 8);
    answers(e, old);
    assert_int_equal(old[1].total, 4 * (7 + 7));
    assert_int_equal(old[3].total, 4 * 11);
    /* the entries gone: the segments' footers alone give the same */
    struct store_list l = {0};
    assert_int_equal(store_list(e->st, "default/manifest/", &l), 0);
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(store_del(e->st, l.keys[i]), 0);
    store_list_free(&l);
    assert_int_equal(count(e, "default/manifest/"), 0);
    assert_same_answers(e, old);
}

/* Old entries (two objects per flush) and new single segments in one hour:
 * read with totals equal to the sum, nothing counted twice, and compacted
 * into one block with the same answers. */
static void test_mixed_hour(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    struct answer before[4];

    for (int i = 0; i < 3; i++) {
        put_flush(e, "host-a", H + i * 60000, 10 + i, 5);       /* old: 33 + 15 */
        put_flush1(e, "host-b", H + i * 60000, 7, 1 + i, NULL); /* new: 21 + 6 */
    }
    assert_int_equal(count(e, "default/manifest/"), 3);
    assert_int_equal(count(e, "default/segments/"), 6);
    answers(e, before);
    assert_int_equal(before[1].total, 48 + 27);
    assert_int_equal(before[1].skipped, 0);
    assert_int_equal(ask(e, "{host_name=\"host-a\"}", SAMPLES).total, 48);
    assert_int_equal(ask(e, "{host_name=\"host-b\"}", SAMPLES).total, 27);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(s.entries_merged, 6);
    assert_int_equal(s.segments_read, 6);
    assert_int_equal(s.errors, 0);
    assert_int_equal(count(e, "default/segments/"), 0);
    assert_int_equal(count(e, "default/manifest/"), 1);
    assert_int_equal(block_samples(e, NULL), 75);
    assert_same_answers(e, before);
    /* a late flush of each layout: the next generation, still the sum */
    put_flush(e, "host-a", H + 10 * 60000, 1, 0);
    put_flush1(e, "host-b", H + 10 * 60000, 0, 2, NULL);
    /* two flushes of one host and start, one of each layout (a host whose
     * agent was upgraded and its clock stepped back): both count */
    put_flush(e, "host-c", H + 30 * 60000, 3, 0);
    put_flush1(e, "host-c", H + 30 * 60000, 0, 4, NULL);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 85);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.entries_merged, 4);
    assert_int_equal(block_samples(e, NULL), 85);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 85);
    assert_int_equal(count(e, "default/segments/"), 0);
}

/* A segment put again after compaction merged it (an agent's retry, or a
 * reader that listed it before the compactor deleted it): the hour
 * manifest's replaces names it, so queries skip it and the next pass
 * deletes it, never merges it twice. */
static void test_segment_back_after_compaction(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    char key[512];
    struct store_buf b = {0};

    put_flush1(e, "host-a", H, 4, 4, key);
    put_flush1(e, "host-a", H + 60000, 1, 1, NULL);
    get_object(e, key, &b);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(count(e, "default/segments/"), 0);
    assert_int_equal(store_put(e->st, key, b.data, b.len), 0);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 10);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 0);
    assert_int_equal(s.objects_deleted, 1);
    assert_int_equal(count(e, "default/segments/"), 0);
    assert_int_equal(block_samples(e, NULL), 10);
    free(b.data);
}

/* An hour manifest of an older compactor names the entries it merged, not
 * their segments: a segment still there (listed before that compactor
 * deleted it) is known by its entry's key, so it is neither read nor
 * merged again. */
static void test_old_compactor_manifest(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    char key[512], hkey[512], err[256];
    struct store_buf b = {0}, hb = {0};
    struct manifest *hm = NULL;
    uint8_t *buf;
    size_t len;

    put_parts(e, "host-a", H, &(struct part){"api", 4, 4, 0}, 1, key, NULL);
    put_flush(e, "host-b", H, 1, 1);
    get_object(e, key, &b);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    /* the hour manifest as the older compactor wrote it: entry keys only */
    assert_true(manifest_hour_key(hkey, sizeof(hkey), "default", H, 1) > 0);
    get_object(e, hkey, &hb);
    assert_int_equal(manifest_decode(hb.data, hb.len, &hm, err, sizeof(err)), 0);
    size_t k = 0;
    for (size_t i = 0; i < hm->nreplaces; i++)
        if (strstr(hm->replaces[i], "/segments/"))
            free(hm->replaces[i]);
        else
            hm->replaces[k++] = hm->replaces[i];
    assert_int_equal(k, 2);
    hm->nreplaces = k;
    assert_int_equal(manifest_encode(hm, &buf, &len), 0);
    assert_int_equal(store_put(e->st, hkey, buf, len), 0);
    /* the segment is back, its entry is not */
    assert_int_equal(store_put(e->st, key, b.data, b.len), 0);
    struct answer a = ask(e, "{}", SAMPLES);
    assert_int_equal(a.total, 10);
    assert_int_equal(a.skipped, 0);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 0);
    assert_int_equal(count(e, "default/segments/"), 0);
    assert_int_equal(block_samples(e, NULL), 10);
    free(buf);
    free(b.data);
    free(hb.data);
    manifest_free(hm);
}

/* A segment whose tail is damaged: queries skip it with a warning,
 * compaction counts it and leaves it, the others are merged. */
static void test_damaged_segment_tail(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    char key[512];
    struct store_buf b = {0};

    put_flush1(e, "host-a", H, 4, 4, key);
    put_flush1(e, "host-b", H, 1, 1, NULL);
    get_object(e, key, &b);
    b.data[b.len - 5] ^= 0x40; /* the trailer */
    write_file(e, key, b.data, b.len);
    struct answer a = ask(e, "{}", SAMPLES);
    assert_int_equal(a.total, 2);
    assert_int_equal(a.skipped, 1);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(s.entries_merged, 1);
    assert_int_equal(s.objects_kept, 1);
    assert_true(s.errors >= 1);
    assert_non_null(strstr(s.last_error, "footer of"));
    assert_int_equal(count(e, "default/segments/"), 1);
    a = ask(e, "{}", SAMPLES);
    assert_int_equal(a.total, 2);
    assert_int_equal(a.skipped, 1);
    free(b.data);
}

/* ---- continuous, tiered compaction -------------------------------------- */

/* Objects a query of [from, until) reads: manifests, footers, and the
 * objects its sections are in. */
static uint64_t objects_read(struct env *e, int64_t from, int64_t until)
{
    struct plan_req r = {.tenant = "default", .from = from, .until = until};
    struct plan *p = NULL;
    char err[256];
    if (plan_build(e->st, NULL, &r, &p, err, sizeof(err)))
        fail_msg("plan: %s", err);
    uint64_t n = p->manifests + p->footers + p->objects;
    plan_free(p);
    return n;
}

/* Two hosts, one flush a minute from H to H + 16 min, half of host-b's in
 * the old layout (segment + entry). Returns the samples written. */
static int64_t put_open_hour(struct env *e)
{
    int64_t total = 0;
    for (int m = 0; m <= 16; m++) {
        put_flush1(e, "host-a", H + m * 60000, 1 + m, 2, NULL);
        if (m % 2)
            put_flush(e, "host-b", H + m * 60000, 3, 1);
        else
            put_flush1(e, "host-b", H + m * 60000, 3, 1, NULL);
        total += 1 + m + 2 + 3 + 1;
    }
    return total;
}

/* Level 1 at H + 17 min with 5-minute spans and 90 s grace: spans 0-2
 * (minutes 0-14, ended by 16.5) become one block each, appended to the
 * hour manifest; minutes 15 and 16 stay segments. Answers do not change;
 * a query of the last 15 minutes reads a handful of objects instead of one
 * per host per flush. A second pass finds nothing to do; level 2, once
 * the hour is closed, merges the three blocks and the rest into one. */
static void test_level1_spans(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 17 * 60000, .continuous = 1, .span_s = 300};
    int64_t total = put_open_hour(e);

    assert_int_equal(ask(e, "{}", SAMPLES).total, total);
    uint64_t before = objects_read(e, H + 2 * 60000, H + 17 * 60000);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.spans_compacted, 3);
    assert_int_equal(s.hours_compacted, 0);
    assert_int_equal(s.entries_merged, 30);
    assert_int_equal(count(e, "default/blocks/2026-01-01/10/000001-l1-00-"), 1);
    assert_int_equal(count(e, "default/blocks/2026-01-01/10/000001-l1-01-"), 1);
    assert_int_equal(count(e, "default/blocks/2026-01-01/10/000001-l1-02-"), 1);
    assert_int_equal(count(e, "default/blocks/"), 3);
    assert_int_equal(count(e, "default/segments/"), 4);                       /* minutes 15, 16 */
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/entries/"), 1); /* minute 15 */
    struct answer a = ask(e, "{}", SAMPLES);
    assert_int_equal(a.total, total);
    assert_int_equal(a.skipped, 0);
    uint64_t after = objects_read(e, H + 2 * 60000, H + 17 * 60000);
    /* before: one footer or entry + one segment per host per flush; after:
     * the hour manifest, three blocks, and the open span's objects */
    assert_true(before >= 60);
    assert_true(after <= 1 + 3 + 4 + 1 + 3);
    print_message("objects read, last 15 min: %llu before, %llu after level 1\n",
                  (unsigned long long)before, (unsigned long long)after);

    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.spans_compacted, 0);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/hour-000001.man"), 1);
    assert_int_equal(count(e, "default/manifest/2026-01-01/10/hour-000002.man"), 0);

    o.now_ms = H + 2 * HOUR_MS;
    o.continuous = 0;
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(count(e, "default/blocks/"), 1);
    assert_int_equal(count(e, "default/blocks/2026-01-01/10/000002-"), 1);
    assert_int_equal(count(e, "default/segments/"), 0);
    assert_int_equal(count(e, "default/manifest/"), 1);
    assert_int_equal(ask(e, "{}", SAMPLES).total, total);
    assert_int_equal(block_samples(e, NULL), (uint64_t)total);
}

/* A flush of a span level 1 merged already arrives late: the next level-1
 * pass gives it a block of its own; nothing counted twice or lost. */
static void test_level1_late_flush(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 17 * 60000, .continuous = 1, .span_s = 300};
    int64_t total = put_open_hour(e);

    assert_int_equal(compact_run(e->st, &o, &s), 0);
    put_flush1(e, "host-late", H + 2 * 60000, 100, 0, NULL);
    o.now_ms = H + 22 * 60000; /* span 3 closed too now */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.spans_compacted, 2); /* span 0 again, span 3 */
    assert_int_equal(count(e, "default/blocks/"), 5);
    assert_int_equal(count(e, "default/segments/"), 0);
    assert_int_equal(ask(e, "{}", SAMPLES).total, total + 100);
}

/* Level selection: which flushes a level-1 pass merges depends on the
 * span, the grace and the clock; closed hours get level 2, open ones
 * level 1 only when continuous. */
static void test_level_selection(void **state)
{
    struct env *e = *state;
    static const struct {
        unsigned span_s, grace_s;
        int64_t now_min10; /* minutes after H, times 10 */
        uint64_t spans;    /* level-1 blocks written */
        size_t segs_left;  /* of 17 flushes of host-a */
    } cases[] = {
        {300, 90, 169, 3, 2},   /* 16.9 min: span 2 closed at 16.5 */
        {300, 90, 164, 2, 7},   /* 16.4 min: span 2 (ends 16.5) still open */
        {300, 1, 151, 3, 2},    /* 1 s grace: span 2 closed at 15:01 */
        {60, 60, 100, 9, 8},    /* 1-minute spans: minutes 0-8 */
        {600, 90, 170, 1, 7},   /* 10-minute spans: span 0 only */
        {3600, 90, 170, 0, 17}, /* one span: the hour is not over */
        {7, 90, 170, 3, 2},     /* not a divisor of 3600: the default 300 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct compact_stats s;
        struct compact_opts o = {.now_ms = H + cases[i].now_min10 * 6000,
                                 .continuous = 1,
                                 .span_s = cases[i].span_s,
                                 .grace_s = cases[i].grace_s};
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s/default", e->dir);
        assert_int_equal(system(cmd), 0);
        for (int m = 0; m <= 16; m++)
            put_flush1(e, "host-a", H + m * 60000, 1, 1, NULL);
        assert_int_equal(compact_run(e->st, &o, &s), 0);
        if (s.spans_compacted != cases[i].spans ||
            count(e, "default/segments/") != cases[i].segs_left)
            fail_msg("case %zu: %llu spans, %zu segments left", i,
                     (unsigned long long)s.spans_compacted, count(e, "default/segments/"));
        assert_int_equal(ask(e, "{}", SAMPLES).total, 34);
    }
    /* not continuous: an open hour is left alone */
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 30 * 60000};
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.spans_compacted + s.hours_compacted, 0);
}

/* Another compactor commits the same generation between this pass's
 * blocks and its hour manifest (with a late flush it merged and deleted):
 * the create-only put refuses ours, which would have overwritten the
 * other's and lost the late flush. */
static void test_commit_is_create_only(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS};
    struct race r = {.base = {.ops = &race_ops}, .e = e, .at = 3, .late = true};

    for (int i = 0; i < 4; i++)
        put_flush1(e, "host-a", H + i * 60000, 1 + i, 1, NULL);
    assert_int_equal(compact_run(&r.base, &o, &s), 0);
    assert_true(r.done);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 14 + 100);
    assert_int_equal(s.commits_lost, 1);
    assert_int_equal(s.hours_compacted, 0);
    assert_int_equal(count(e, "default/blocks/"), 1); /* ours went */
    assert_int_equal(count(e, "default/segments/"), 0);
}

static int64_t lease_now = H;

static void test_lease(void **state)
{
    struct env *e = *state;
    const char *pre = "default/leases/2026-01-01/10/";
    struct lease a, b;

    assert_int_equal(lease_acquire(e->st, pre, "a", lease_now, 1000, &a), 0);
    assert_int_equal(lease_acquire(e->st, pre, "b", lease_now + 999, 1000, &b), -EBUSY);
    /* the holder may take it again (a longer pass) */
    assert_int_equal(lease_acquire(e->st, pre, "a", lease_now + 500, 1000, &a), 0);
    assert_int_equal(a.seq, 1);
    assert_int_equal(count(e, pre), 1); /* history deleted */
    /* expired: taken over */
    assert_int_equal(lease_acquire(e->st, pre, "b", lease_now + 1501, 1000, &b), 0);
    assert_int_equal(b.seq, 2);
    assert_int_equal(lease_acquire(e->st, pre, "a", lease_now + 1600, 1000, &a), -EBUSY);
    /* released: free at once */
    assert_int_equal(lease_release(e->st, &b), 0);
    assert_int_equal(lease_acquire(e->st, pre, "a", lease_now + 1700, 1000, &a), 0);
    assert_int_equal(a.seq, 4);
    /* a replica that saw the same top as another loses the create-only put */
    assert_int_equal(store_put_new(e->st, "default/leases/2026-01-01/10/000000005.lease", "x", 1),
                     0);
    struct lease c;
    assert_int_equal(lease_acquire(e->st, pre, "c", lease_now + 9000, 1000, &c), 0);
    assert_int_equal(c.seq, 6); /* "x" does not parse: an expired lease */
    /* bad owners */
    assert_int_equal(lease_acquire(e->st, pre, "has space", lease_now, 1000, &c), -EINVAL);
    assert_int_equal(lease_acquire(e->st, pre, "", lease_now, 1000, &c), -EINVAL);
    assert_int_equal(lease_store_check(e->st, "default/leases/", "a"), 0);
}

/* A store whose create-only put overwrites (s3rver 3 ignores
 * If-None-Match): lease_store_check finds out. */
static int overwrite_put_new(struct store *st, const char *key, const void *d, size_t n)
{
    return store_put(((struct race *)st)->e->st, key, d, n);
}

static void test_lease_store_check_overwriting(void **state)
{
    struct env *e = *state;
    struct store_ops ops = race_ops;
    ops.put_new = overwrite_put_new;
    struct race r = {.base = {.ops = &ops}, .e = e, .done = true};
    assert_int_equal(lease_store_check(&r.base, "default/leases/", "a"), -EOPNOTSUPP);
    assert_non_null(strstr(r.base.err, "If-None-Match"));
    assert_int_equal(count(e, "default/leases/"), 0);
}

/* An hour another replica holds the lease of is left to it; once the
 * lease expires, the hour is compacted. */
static void test_compact_under_lease(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS, .owner = "me", .lease_ttl_s = 60};
    struct lease other;

    put_flush1(e, "host-a", H, 3, 4, NULL);
    assert_int_equal(
        lease_acquire(e->st, "default/leases/2026-01-01/10/", "other", o.now_ms, 60000, &other), 0);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_busy, 1);
    assert_int_equal(s.hours_compacted, 0);
    assert_int_equal(count(e, "default/segments/"), 1);
    o.now_ms += 60001; /* "other" crashed: its lease lapsed */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(count(e, "default/segments/"), 0);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 7);
}

/* A pass takes a lease and lists in detail only the hours that have work:
 * its 48 hours are read from one listing per day of segments/, manifest/
 * and blocks/. Quiet hours cost no PUT, no GET; an open span's flushes are
 * not work until the span is merged; work that appears (a late flush, a
 * closed hour's level-1 blocks) is found at the next pass. */
struct cost {
    uint64_t puts, gets, lists;
};

static struct cost pass_cost(struct env *e, const struct compact_opts *o, struct compact_stats *s)
{
    struct store_stats a = e->st->stats;
    assert_int_equal(compact_run(e->st, o, s), 0);
    return (struct cost){e->st->stats.puts - a.puts, e->st->stats.gets - a.gets,
                         e->st->stats.lists - a.lists};
}

static void test_quiet_hours_not_leased(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    /* 10:17 on 2026-01-01: the window reaches back 48 hours, 3 days */
    struct compact_opts o = {
        .now_ms = H + 17 * 60000, .continuous = 1, .span_s = 300, .owner = "me"};

    for (int m = 0; m < 15; m++)
        put_flush1(e, "host-a", H + m * 60000, 1, 1, NULL);
    put_flush1(e, "host-a", H - 20 * HOUR_MS, 5, 0, NULL); /* 14:00 the day before */
    struct cost c = pass_cost(e, &o, &s);
    assert_int_equal(s.spans_compacted, 3);
    assert_int_equal(s.hours_compacted, 1); /* yesterday's 14:00, closed */
    assert_int_equal(s.hours_quiet, 46);
    /* two hours: a lease and its release, a manifest and its index each;
     * the blocks: one for 14:00, one per span for 10:00 */
    assert_int_equal(c.puts, 2 * 4 + 1 + 3);
    /* the lease and its release, of those two hours only */
    assert_int_equal(count(e, "default/leases/2026-01-01/10/"), 2);
    assert_int_equal(count(e, "default/leases/2025-12-31/14/"), 2);
    assert_int_equal(count(e, "default/leases/"), 4);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 30);

    /* nothing new: nothing but the day listings */
    c = pass_cost(e, &o, &s);
    assert_int_equal(s.hours_quiet, 48);
    assert_int_equal(c.puts, 0);
    assert_int_equal(c.gets, 0);
    assert_int_equal(c.lists, 3 * 3);

    /* a flush of the open span is not work yet; once its span is over,
     * it is, and only its hour is leased */
    put_flush1(e, "host-a", H + 16 * 60000, 1, 1, NULL);
    c = pass_cost(e, &o, &s);
    assert_int_equal(c.puts, 0);
    o.now_ms = H + 21 * 60000 + 31000;
    c = pass_cost(e, &o, &s);
    assert_int_equal(s.spans_compacted, 1);
    assert_int_equal(s.hours_quiet, 47);
    assert_int_equal(c.puts, 5); /* lease, release, block, manifest, index */

    /* a late flush for a closed hour compacted already */
    put_flush1(e, "host-b", H - 20 * HOUR_MS + 60000, 7, 0, NULL);
    c = pass_cost(e, &o, &s);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(c.puts, 5); /* lease, release, block, manifest, index */

    /* the hour closes: its level-1 blocks alone are work for level 2 */
    o.now_ms = H + HOUR_MS + 11 * 60000;
    c = pass_cost(e, &o, &s);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(count(e, "default/blocks/2026-01-01/10/"), 1);
    c = pass_cost(e, &o, &s);
    assert_int_equal(s.hours_quiet, 48);
    assert_int_equal(c.puts, 0);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 32);
    assert_int_equal(block_samples(e, NULL), 32 + 12);
}

/* Renewal: the holder extends its lease with the next sequence number,
 * unless another replica wrote one after it, even one deleted since. */
static void test_lease_renew(void **state)
{
    struct env *e = *state;
    const char *pre = "default/leases/2026-01-01/10/";
    struct lease a, b, c;

    assert_int_equal(lease_acquire(e->st, pre, "a", lease_now, 1000, &a), 0);
    assert_int_equal(lease_renew(e->st, &a, lease_now + 600, 1000), 0);
    assert_int_equal(a.seq, 1);
    assert_int_equal(count(e, pre), 1); /* the one before goes */
    /* renewed until +1600: still a's at +1500 */
    assert_int_equal(lease_acquire(e->st, pre, "b", lease_now + 1500, 1000, &b), -EBUSY);
    /* lapsed and taken over: a's renewal fails */
    assert_int_equal(lease_acquire(e->st, pre, "b", lease_now + 1700, 1000, &b), 0);
    assert_int_equal(lease_renew(e->st, &a, lease_now + 1800, 1000), -EBUSY);
    assert_int_equal(a.seq, 1);
    /* b renews, releases; c takes it and deletes the numbers before its
     * own, a's next number among them: a's renewal still fails */
    assert_int_equal(lease_renew(e->st, &b, lease_now + 1800, 1000), 0);
    assert_int_equal(lease_release(e->st, &b), 0);
    assert_int_equal(lease_acquire(e->st, pre, "c", lease_now + 1900, 1000, &c), 0);
    assert_int_equal(c.seq, 5);
    assert_int_equal(count(e, "default/leases/2026-01-01/10/000000002.lease"), 0);
    assert_int_equal(lease_renew(e->st, &a, lease_now + 2000, 1000), -EBUSY);
    assert_int_equal(count(e, pre), 1);
    assert_int_equal(lease_acquire(e->st, pre, "a", lease_now + 2100, 1000, &a), -EBUSY);
}

/* A pass longer than half its lease's TTL renews the lease before its
 * next costly step (here the commit, after a block that took 0.7 s of a
 * 1 s TTL), so no other replica takes the hour meanwhile. */
static void slow_step(const char *step, void *arg)
{
    if (strcmp(step, (const char *)arg) == 0)
        usleep(700000);
}

/* The hour of the lease tests: host-a's flushes at minutes 0-3 (14
 * samples), compacted closed (level 2) by "me" under a 1 s lease, @fault
 * called after each step. Returns the options the pass ran with. */
static struct compact_opts leased_hour(struct env *e, void (*fault)(const char *, void *),
                                       void *arg, struct compact_stats *s)
{
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS,
                             .owner = "me",
                             .lease_ttl_s = 1,
                             .fault = fault,
                             .fault_arg = arg};
    for (int i = 0; i < 4; i++)
        put_flush1(e, "host-a", H + i * 60000, 1 + i, 1, NULL);
    assert_int_equal(compact_run(e->st, &o, s), 0);
    return o;
}

static void test_lease_renewed_in_long_pass(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = leased_hour(e, slow_step, "block", &s);
    struct lease other;

    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(s.leases_renewed, 1);
    assert_int_equal(s.leases_lost, 0);
    /* taken (0), renewed (1), released (2) */
    assert_int_equal(count(e, "default/leases/2026-01-01/10/000000001.lease"), 1);
    assert_int_equal(count(e, "default/leases/2026-01-01/10/000000002.lease"), 1);
    assert_int_equal(count(e, "default/leases/2026-01-01/10/"), 2);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 14);
    /* released: another replica may take it at once */
    assert_int_equal(
        lease_acquire(e->st, "default/leases/2026-01-01/10/", "other", o.now_ms, 60000, &other), 0);
}

/* Another replica takes the lease over while a long pass still works on
 * the hour (the pass stalled past the TTL): the pass finds out when it
 * renews before its commit, commits nothing and deletes its block; the
 * other replica's pass merges every flush once. */
static void take_over(const char *step, void *arg)
{
    struct env *e = arg;
    struct lease other;
    if (strcmp(step, "block"))
        return;
    usleep(700000);
    assert_int_equal(lease_acquire(e->st, "default/leases/2026-01-01/10/", "other",
                                   H + 2 * HOUR_MS + 5000, 60000, &other),
                     0);
}

static void test_lease_lost_before_commit(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = leased_hour(e, take_over, e, &s);

    assert_int_equal(s.blocks_written, 1);
    assert_int_equal(s.leases_lost, 1);
    assert_int_equal(s.hours_compacted, 0);
    assert_int_equal(s.commits_lost, 0);
    assert_int_equal(count(e, "default/manifest/"), 0);
    assert_int_equal(count(e, "default/blocks/"), 0);
    assert_int_equal(count(e, "default/segments/"), 4);
    /* the lease stays the other's: no release over it */
    assert_int_equal(count(e, "default/leases/2026-01-01/10/"), 1);
    assert_int_equal(count(e, "default/leases/2026-01-01/10/000000001.lease"), 1);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 14);

    o.owner = "other";
    o.now_ms += 5000;
    o.fault = NULL;
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(s.entries_merged, 4);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 14);
    assert_int_equal(block_samples(e, NULL), 14);
}

/* The same while the pass reads the hour's flushes: it stops reading at
 * the next one, before writing anything. */
static void race_take_lease(struct race *r)
{
    r->done = true;
    take_over("block", r->e);
}

static void test_lease_lost_while_reading(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS, .owner = "me", .lease_ttl_s = 1};
    struct race r = {.base = {.ops = &race_ops}, .e = e, .take_lease = true};

    for (int i = 0; i < 4; i++)
        put_flush1(e, "host-a", H + i * 60000, 1 + i, 1, NULL);
    uint64_t puts = e->st->stats.puts;
    assert_int_equal(compact_run(&r.base, &o, &s), 0);
    assert_true(r.done);
    assert_int_equal(r.gets, 2);
    assert_int_equal(s.leases_lost, 1);
    assert_int_equal(s.blocks_written, 0);
    assert_int_equal(e->st->stats.puts - puts, 1 + 1); /* our lease; the other's */
    assert_int_equal(count(e, "default/segments/"), 4);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 14);
}

/* A compactor killed after each step (a block written; the hour manifest
 * committed; the first replaced object deleted), at level 1 and level 2:
 * answers never change, and the next pass finishes the work. The child
 * process dies by _exit in the fault hook, as a crash would leave it. */
static void crash_at(const char *step, void *arg)
{
    if (strcmp(step, (const char *)arg) == 0)
        _exit(42);
}

static void test_crash_at_each_step(void **state)
{
    struct env *e = *state;
    static const char *const steps[] = {"block", "manifest", "delete"};
    for (int level = 1; level <= 2; level++)
        for (size_t i = 0; i < 3; i++) {
            char cmd[128];
            snprintf(cmd, sizeof(cmd), "rm -rf %s/default", e->dir);
            assert_int_equal(system(cmd), 0);
            int64_t total = put_open_hour(e);
            struct compact_opts o = {.now_ms = level == 1 ? H + 17 * 60000 : H + 2 * HOUR_MS,
                                     .continuous = level == 1,
                                     .fault = crash_at,
                                     .fault_arg = (void *)steps[i]};
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                struct compact_stats cs;
                compact_run(e->st, &o, &cs);
                _exit(0);
            }
            int status = 0;
            assert_int_equal(waitpid(pid, &status, 0), pid);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 42)
                fail_msg("level %d, step %s: the child did not stop there", level, steps[i]);
            struct answer a = ask(e, "{}", SAMPLES);
            if (a.total != total || a.skipped)
                fail_msg("level %d, killed after %s: %lld samples (%llu skipped), want %lld", level,
                         steps[i], (long long)a.total, (unsigned long long)a.skipped,
                         (long long)total);
            struct compact_stats s;
            o.fault = NULL;
            assert_int_equal(compact_run(e->st, &o, &s), 0);
            o.now_ms = H + 2 * HOUR_MS;
            o.continuous = 0;
            assert_int_equal(compact_run(e->st, &o, &s), 0);
            a = ask(e, "{}", SAMPLES);
            assert_int_equal(a.total, total);
            assert_int_equal(count(e, "default/segments/"), 0);
            assert_int_equal(count(e, "default/manifest/2026-01-01/10/entries/"), 0);
            assert_int_equal(count(e, "default/manifest/"), 1);
        }
}

/* A pass killed after writing its block, and the hour then committed by
 * another pass with another block (a flush came in between): the killed
 * pass's block is of the generation in force, which does not list it, nor
 * will any later one. The next pass on the hour deletes it; a block of the
 * next generation (a live pass's work in progress) stays, as do the
 * blocks only an unreadable manifest listed
 * (test_garbage_over_compacted_hour). */
static void test_crash_debris_deleted(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 2 * HOUR_MS, .fault = crash_at, .fault_arg = "block"};
    const char *next = "default/blocks/2026-01-01/10/000002-00000000000000ff.blk";
    struct store_list l = {0};
    char debris[512];
    int status = 0;

    for (int i = 0; i < 4; i++)
        put_flush1(e, "host-a", H + i * 60000, 1 + i, 1, NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        compact_run(e->st, &o, &s);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 42);
    assert_int_equal(store_list(e->st, "default/blocks/", &l), 0);
    assert_int_equal(l.n, 1);
    snprintf(debris, sizeof(debris), "%s", l.keys[0]);
    store_list_free(&l);
    assert_non_null(strstr(debris, "/000001-"));

    put_flush1(e, "host-b", H + 30 * 60000, 7, 0, NULL);
    o.fault = NULL;
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(count(e, "default/blocks/2026-01-01/10/000001-"), 2);
    assert_int_equal(count(e, debris), 1);
    write_file(e, next, "x", 1);

    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.orphans_deleted, 1);
    assert_int_equal(s.hours_compacted, 0);
    assert_int_equal(count(e, debris), 0);
    assert_int_equal(count(e, next), 1);
    assert_int_equal(count(e, "default/blocks/"), 2);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 14 + 7);
    assert_int_equal(store_del(e->st, next), 0);
    assert_int_equal(block_samples(e, NULL), 14 + 7);
    /* nothing more to delete: the hour is quiet again */
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.hours_quiet, 48);
}

/* An old-layout writer puts the segment, then the entry: a pass in between
 * merges the segment alone. The entry, when it comes, names a replaced
 * segment: queries skip it without a warning, the next pass deletes it. */
static void test_entry_after_its_segment_merged(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 17 * 60000, .continuous = 1};
    struct store_list l = {0};
    struct store_buf b = {0};

    put_flush(e, "host-a", H + 60000, 5, 6);
    put_flush1(e, "host-b", H + 60000, 1, 1, NULL);
    assert_int_equal(store_list(e->st, "default/manifest/2026-01-01/10/entries/", &l), 0);
    assert_int_equal(l.n, 1);
    char *entry = strdup(l.keys[0]);
    store_list_free(&l);
    get_object(e, entry, &b);
    assert_int_equal(store_del(e->st, entry), 0);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.entries_merged, 2);
    assert_int_equal(store_put(e->st, entry, b.data, b.len), 0); /* the entry, late */
    struct answer a = ask(e, "{}", SAMPLES);
    assert_int_equal(a.total, 13);
    assert_int_equal(a.skipped, 0);
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.errors, 0);
    assert_int_equal(count(e, entry), 0);
    assert_int_equal(ask(e, "{}", SAMPLES).total, 13);
    free(b.data);
    free(entry);
}

/* Compaction reads each object it merges with one GET: a flush's segment
 * whole (footer and sections together), an entry's segment and a level-1
 * block by one range covering their sections; not one GET per section
 * plus one per footer (docs/storage.md, cost model). */
static void test_one_get_per_object(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 17 * 60000, .continuous = 1, .span_s = 300};
    const struct part three[3] = {{"api", 3, 1, 0}, {"db", 2, 2, 0}, {"web", 1, 4, 0}};
    int64_t total = 0;

    /* minutes 0-14: 3 spans; host-a one object per flush, host-b the old
     * layout (segment + entry); each flush 3 sections */
    for (int m = 0; m < 15; m++) {
        put_parts_as(e, "host-a", H + m * 60000, three, 3, NULL, NULL, false);
        put_parts_as(e, "host-b", H + m * 60000, three, 3, NULL, NULL, true);
        total += 2 * (4 + 4 + 5);
    }
    uint64_t g0 = e->st->stats.gets;
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.spans_compacted, 3);
    assert_int_equal(s.sections_merged, 30 * 3);
    /* 15 entries, 15 of their segments, 15 segments alone: one GET each */
    assert_int_equal(e->st->stats.gets - g0, 15 + 15 + 15);
    assert_int_equal(ask(e, "{}", SAMPLES).total, total);

    /* level 2 merges the hour manifest's three blocks: one GET each, and
     * one for the hour manifest */
    o.now_ms = H + 2 * HOUR_MS;
    o.continuous = 0;
    g0 = e->st->stats.gets;
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.hours_compacted, 1);
    assert_int_equal(e->st->stats.gets - g0, 1 + 3);
    assert_int_equal(count(e, "default/blocks/"), 1);
    assert_int_equal(ask(e, "{}", SAMPLES).total, total);
    assert_int_equal(block_samples(e, NULL), (uint64_t)total);
}

/* An hour level 1 has caught up with (every flush in a block, nothing
 * else listed) is planned from its hour manifest's entries: the keys it
 * replaces (600,000 at 10,000 hosts) are not decoded nor charged to the
 * query. A segment listed again (an agent's retry) brings them back: it is
 * skipped, not counted twice. */
static void test_caught_up_hour_skips_replaces(void **state)
{
    struct env *e = *state;
    struct compact_stats s;
    struct compact_opts o = {.now_ms = H + 17 * 60000, .continuous = 1, .span_s = 300};
    char host[64], again[512] = "";
    int64_t total = 0;

    for (int h = 0; h < 40; h++)
        for (int m = 0; m < 15; m++) {
            snprintf(host, sizeof(host), "host-with-a-longish-name-%02d", h);
            put_flush1(e, host, H + m * 60000, 1 + m % 3, 1, h == 7 && m == 3 ? again : NULL);
            total += 1 + m % 3 + 1;
        }
    assert_int_equal(compact_run(e->st, &o, &s), 0);
    assert_int_equal(s.spans_compacted, 3);
    assert_int_equal(count(e, "default/segments/"), 0);
    struct store_buf b = {0};
    struct manifest *hm = NULL;
    get_object(e, "default/manifest/2026-01-01/10/hour-000001.man", &b);
    assert_int_equal(manifest_decode(b.data, b.len, &hm, NULL, 0), 0);
    free(b.data);
    uint64_t rep = 0;
    for (size_t i = 0; i < hm->nreplaces; i++)
        rep += strlen(hm->replaces[i]) + 1;
    assert_int_equal(hm->nreplaces, 600);
    manifest_free(hm);

    struct plan_req r = {.tenant = "default", .from = H + 2 * 60000, .until = H + 17 * 60000};
    struct plan *p = NULL;
    char err[256];
    assert_int_equal(plan_build(e->st, NULL, &r, &p, err, sizeof(err)), 0);
    assert_int_equal(p->manifests, 1);
    assert_int_equal(p->objects, 3);
    print_message("plan bytes %llu, replaced keys %llu bytes\n", (unsigned long long)p->bytes,
                  (unsigned long long)rep);
    assert_true(p->bytes < rep);
    uint64_t whole = p->notes->stats.bytes_read;
    plan_free(p);
    assert_int_equal(ask(e, "{}", SAMPLES).total, total);

    /* The manifest's index (its entries alone) is read instead when the
     * manifest is large enough; without it, or damaged, the manifest. */
    const char *ikey = "default/index/2026-01-01/10/hour-000001.man";
    assert_int_equal(s.indexes_written, 1);
    assert_int_equal(count(e, "default/index/"), 1);
    r.index_min_bytes = 1;
    assert_int_equal(plan_build(e->st, NULL, &r, &p, err, sizeof(err)), 0);
    assert_int_equal(p->objects, 3);
    assert_int_equal(p->manifests, 1);
    print_message("manifest read whole %llu bytes, through its index %llu\n",
                  (unsigned long long)whole, (unsigned long long)p->notes->stats.bytes_read);
    assert_true(p->notes->stats.bytes_read * 2 < whole);
    plan_free(p);
    get_object(e, ikey, &b);
    b.data[b.len / 2] ^= 0x5a;
    write_file(e, ikey, b.data, b.len);
    free(b.data);
    assert_int_equal(plan_build(e->st, NULL, &r, &p, err, sizeof(err)), 0);
    assert_int_equal(p->objects, 3);
    assert_int_equal(p->skipped, 0);
    assert_int_equal(p->notes->stats.bytes_read, whole + b.len);
    plan_free(p);
    r.index_min_bytes = 0;

    /* keys of an hour "99" (no such hour; a stray object) are counted
     * without harm and read by nobody */
    char dir99[256];
    snprintf(dir99, sizeof(dir99),
             "mkdir -p %s/default/segments/2026-01-01/99/h %s/default/manifest/2026-01-01/99",
             e->dir, e->dir);
    assert_int_equal(system(dir99), 0);
    for (int i = 0; i < 40; i++) {
        char k[256];
        snprintf(k, sizeof(k), "default/segments/2026-01-01/99/h/%013d-%016x.seg", i, i);
        write_file(e, k, "x", 1);
        snprintf(k, sizeof(k), "default/manifest/2026-01-01/99/hour-%06d.man", i);
        write_file(e, k, "x", 1);
    }
    assert_int_equal(plan_build(e->st, NULL, &r, &p, err, sizeof(err)), 0);
    assert_true(p->bytes < rep);
    plan_free(p);

    /* a retry puts a merged segment back: the replaces are read again and
     * it is skipped */
    int64_t t = plan_seg_key_start(again);
    snprintf(host, sizeof(host), "host-with-a-longish-name-%02d", 7);
    char key2[512];
    put_flush1(e, host, t, 1 + 3 % 3, 1, key2);
    assert_string_equal(key2, again);
    assert_int_equal(count(e, "default/segments/2026-01-01/10/"), 1);
    assert_int_equal(plan_build(e->st, NULL, &r, &p, err, sizeof(err)), 0);
    assert_true(p->bytes >= rep);
    plan_free(p);
    r.index_min_bytes = 1; /* the index has no replaces: not read now */
    assert_int_equal(plan_build(e->st, NULL, &r, &p, err, sizeof(err)), 0);
    assert_true(p->bytes >= rep);
    assert_int_equal(p->objects, 3);
    plan_free(p);
    assert_int_equal(ask(e, "{}", SAMPLES).total, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_object_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_stats_segments_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_layout_same_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_back_after_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_compactor_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_segment_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_entry_next_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_entry_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_segment_stays_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mismatched_types_stay_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_hour_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_over_compacted_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_block_stays_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_manifest_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_compactor_deletes_under_us, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_compactor_writes_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level1_spans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level1_late_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_selection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_is_create_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_store_check_overwriting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact_under_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiet_hours_not_leased, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_renewed_in_long_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_lost_before_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_lost_while_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_at_each_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_debris_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_after_its_segment_merged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_get_per_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caught_up_hour_skips_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_top_from_function_totals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flame_from_call_trees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_tree_cut_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_tree_proof, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
