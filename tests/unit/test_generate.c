/* Unit tests for the fleet generator (query/jobs/generate.c): a fleet made
 * from a pprof source writes one segment per host and flush, and every
 * source is handed back whole (run under ASan by make test-san, which fails
 * on a leak), also when a source is refused; a fleet from the calibrated
 * model, read back through the codec, has the model's rows, services per
 * host, depths and churn between windows, and the same seed gives the same
 * bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/segment.h"
#include "common/file.h"
#include "common/gzip.h"
#include "common/hash.h"
#include "proto/profile.pb-c.h"
#include "query/jobs/generate.h"
#include "store/store.h"

struct env {
    char dir[64];
    struct store *st;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    char err[256];
    snprintf(e->dir, sizeof(e->dir), "/tmp/stoke-generate-XXXXXX");
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

/* Writes a gzipped pprof of @nsamples samples over two functions to @path;
 * with @bad_location the first sample refers to a location not defined. */
static void write_source(const char *path, size_t nsamples, int bad_location)
{
    char *strs[] = {"", "cpu", "nanoseconds", "main", "work", "app.c"};
    Perftools__Profiles__Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
    Perftools__Profiles__ValueType vt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    Perftools__Profiles__ValueType *vts[] = {&vt};
    Perftools__Profiles__Function fn[2] = {PERFTOOLS__PROFILES__FUNCTION__INIT,
                                           PERFTOOLS__PROFILES__FUNCTION__INIT};
    Perftools__Profiles__Function *fns[] = {&fn[0], &fn[1]};
    Perftools__Profiles__Line line[2] = {PERFTOOLS__PROFILES__LINE__INIT,
                                         PERFTOOLS__PROFILES__LINE__INIT};
    Perftools__Profiles__Line *lines[2][1] = {{&line[0]}, {&line[1]}};
    Perftools__Profiles__Location loc[2] = {PERFTOOLS__PROFILES__LOCATION__INIT,
                                            PERFTOOLS__PROFILES__LOCATION__INIT};
    Perftools__Profiles__Location *locs[] = {&loc[0], &loc[1]};
    Perftools__Profiles__Sample *samples[16];
    Perftools__Profiles__Sample sm[16];
    uint64_t stack[16][2];
    int64_t value[16];

    assert_true(nsamples <= 16);
    vt.type = 1;
    vt.unit = 2;
    for (int i = 0; i < 2; i++) {
        fn[i].id = (uint64_t)i + 1;
        fn[i].name = 3 + i;
        fn[i].filename = 5;
        line[i].function_id = (uint64_t)i + 1;
        line[i].line = 10 + i;
        loc[i].id = (uint64_t)i + 1;
        loc[i].n_line = 1;
        loc[i].line = lines[i];
    }
    for (size_t i = 0; i < nsamples; i++) {
        perftools__profiles__sample__init(&sm[i]);
        stack[i][0] = bad_location && i == 0 ? 99 : 2;
        stack[i][1] = 1;
        value[i] = (int64_t)(i + 1) * 10000000;
        sm[i].n_location_id = 2;
        sm[i].location_id = stack[i];
        sm[i].n_value = 1;
        sm[i].value = &value[i];
        samples[i] = &sm[i];
    }
    p.n_sample_type = 1;
    p.sample_type = vts;
    p.n_sample = nsamples;
    p.sample = samples;
    p.n_function = 2;
    p.function = fns;
    p.n_location = 2;
    p.location = locs;
    p.n_string_table = sizeof(strs) / sizeof(strs[0]);
    p.string_table = strs;
    p.period_type = &vt;
    p.period = 10000000;

    size_t len = perftools__profiles__profile__get_packed_size(&p);
    uint8_t *raw = malloc(len), *gz = NULL;
    size_t gzlen = 0;
    assert_non_null(raw);
    perftools__profiles__profile__pack(&p, raw);
    assert_int_equal(gzip_compress(raw, len, &gz, &gzlen), 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(gz, 1, gzlen, f), gzlen);
    assert_int_equal(fclose(f), 0);
    free(raw);
    free(gz);
}

static void test_generate_fleet(void **state)
{
    struct env *e = *state;
    char path[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/src.pb.gz", e->dir);
    write_source(path, 12, 0);
    const char *files[] = {path};
    struct generate_opts o = {.hosts = 3,
                              .services = 2,
                              .hours = 1,
                              .files = files,
                              .nfiles = 1,
                              .seed = 7,
                              .start_ms = 1700000000000};
    struct generate_stats st;
    assert_int_equal(fleet_generate(e->st, &o, &st, err, sizeof(err)), 0);
    /* 60 flushes an hour for each of 3 hosts, each with both services */
    assert_true(st.objects >= 3 * 60);
    assert_true(st.rows > 0 && st.rows <= 3ull * 2 * 60 * 6 * 12);
    assert_true(st.samples > 0);
    assert_true(st.segment_bytes > 0 && st.segment_bytes <= st.bytes);
}

static void test_generate_refused_source(void **state)
{
    struct env *e = *state;
    char good[128], bad[128], err[256] = "";
    snprintf(good, sizeof(good), "%s/good.pb.gz", e->dir);
    snprintf(bad, sizeof(bad), "%s/bad.pb.gz", e->dir);
    write_source(good, 4, 0);
    write_source(bad, 4, 1);
    /* the refused source is the second: the first, loaded, is handed back */
    const char *files[] = {good, bad};
    struct generate_opts o = {.hosts = 1,
                              .services = 1,
                              .hours = 1,
                              .files = files,
                              .nfiles = 2,
                              .start_ms = 1700000000000};
    struct generate_stats st;
    assert_true(fleet_generate(e->st, &o, &st, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "location 99 is not defined"));
    assert_int_equal(st.objects, 0);
}

/* What the model test reads back: host-000's main service (svc-00),
 * per 10 s window, the fingerprints of its stacks (function names). */
#define MT_WINDOWS 360
#define MT_MAXROWS 64
static struct {
    uint64_t fp[MT_WINDOWS][MT_MAXROWS];
    unsigned n[MT_WINDOWS];
    char svcs[2][8][16]; /* services seen per host */
    unsigned nsvcs[2];
    unsigned maxdepth, mindepth;
    uint64_t stacks, shallow; /* stacks, and those under the first decile */
    uint64_t bytes;
    int64_t start;
} mt;

static void mt_service(unsigned h, const char *svc)
{
    for (unsigned i = 0; i < mt.nsvcs[h]; i++)
        if (!strcmp(mt.svcs[h][i], svc))
            return;
    assert_true(mt.nsvcs[h] < 8);
    snprintf(mt.svcs[h][mt.nsvcs[h]++], 16, "%s", svc);
}

static int mt_visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F)
        return 0;
    char *buf = NULL, err[256];
    size_t len = 0;
    struct seg_footer *f = NULL;
    uint64_t need = 0;
    assert_int_equal(read_file(path, 64 << 20, &buf, &len), 0);
    assert_int_equal((size_t)sb->st_size, len);
    mt.bytes += len;
    assert_int_equal(seg_footer_parse((uint8_t *)buf, len, len, &f, &need, err, sizeof(err)), 0);
    unsigned h = !strcmp(f->host, "host-000") ? 0 : 1;
    for (size_t i = 0; i < f->nsections; i++) {
        struct seg_section *sec = NULL;
        mt_service(h, f->sections[i].service);
        assert_int_equal(seg_section_decode((uint8_t *)buf + f->sections[i].offset,
                                            f->sections[i].length, &f->sections[i], &sec, err,
                                            sizeof(err)),
                         0);
        for (uint32_t st = 0; st < sec->nstacks; st++) {
            unsigned d = sec->stack_off[st + 1] - sec->stack_off[st];
            mt.maxdepth = d > mt.maxdepth ? d : mt.maxdepth;
            mt.mindepth = d < mt.mindepth ? d : mt.mindepth;
            mt.stacks++;
            mt.shallow += d < 6;
        }
        if (h == 0 && !strcmp(sec->service, "svc-00")) {
            for (uint64_t r = 0; r < sec->nsamples; r++) {
                int64_t w = (sec->sample_time_ms[r] - mt.start) / 10000;
                assert_true(w >= 0 && w < MT_WINDOWS);
                uint32_t st = sec->sample_stack[r];
                uint64_t fp = 1469598103934665603ull;
                for (uint32_t k = sec->stack_off[st]; k < sec->stack_off[st + 1]; k++) {
                    const struct seg_location *l = &sec->locations[sec->stack_locs[k]];
                    const char *name =
                        sec->strings[sec->functions[sec->lines[l->line_off].function].name];
                    fp = (fp ^ hash_bytes(name, strlen(name))) * 1099511628211ull;
                }
                assert_true(mt.n[w] < MT_MAXROWS);
                mt.fp[w][mt.n[w]++] = fp;
            }
        }
        seg_section_free(sec);
    }
    seg_footer_free(f);
    free(buf);
    return 0;
}

static bool mt_in(unsigned w, uint64_t fp)
{
    for (unsigned i = 0; i < mt.n[w]; i++)
        if (mt.fp[w][i] == fp)
            return true;
    return false;
}

static void test_generate_model(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    const struct generate_model m = {.rows = 55,
                                     .samples_per_row = 1.5,
                                     .zipf = 1.2,
                                     .churn = 0.5,
                                     .churn_new = 0.25,
                                     .functions = 400,
                                     .label_sets = 2,
                                     .services_per_host = 3,
                                     .depth_deciles = {6, 7, 8, 9, 10, 11, 12, 13, 14, 16}};
    struct generate_opts o = {.hosts = 2,
                              .services = 5,
                              .hours = 1,
                              .model = &m,
                              .seed = 9,
                              .start_ms = 1700002800000}; /* an hour boundary */
    struct generate_stats st;
    assert_int_equal(fleet_generate(e->st, &o, &st, err, sizeof(err)), 0);
    assert_int_equal(st.objects, 2 * 60);
    /* every window of every host: 55 rows over its 3 services (30 + 15 + 10) */
    assert_int_equal(st.rows, 2ull * 360 * (30 + 15 + 10));
    /* 1.5 samples per row on average, within rounding */
    assert_true(st.samples > st.rows * 14 / 10 && st.samples < st.rows * 16 / 10);

    memset(&mt, 0, sizeof(mt));
    mt.mindepth = ~0u;
    mt.start = o.start_ms;
    assert_int_equal(nftw(e->dir, mt_visit, 16, FTW_PHYS), 0);
    /* host h runs services h, h+1, h+2 */
    assert_int_equal(mt.nsvcs[0], 3);
    assert_int_equal(mt.nsvcs[1], 3);
    for (unsigned h = 0; h < 2; h++)
        for (unsigned i = 0; i < 3; i++) {
            char want[16];
            snprintf(want, sizeof(want), "svc-%02u", h + i);
            bool found = false;
            for (unsigned k = 0; k < 3; k++)
                found |= !strcmp(mt.svcs[h][k], want);
            assert_true(found);
        }
    /* depths follow the deciles: a tenth from 1 to the first, none past the last */
    assert_true(mt.mindepth >= 1 && mt.maxdepth <= 16);
    assert_true(mt.shallow > mt.stacks / 20 && mt.shallow < mt.stacks * 3 / 20);
    /* the main service's windows: its rows (a stack drawn twice merges),
     * half of them absent from the window before, a quarter or more never
     * seen before */
    double churn = 0, fresh = 0;
    unsigned rows = 0;
    for (unsigned w = 0; w < MT_WINDOWS; w++) {
        rows += mt.n[w];
        if (!w)
            continue;
        unsigned absent = 0, never = 0;
        for (unsigned i = 0; i < mt.n[w]; i++) {
            uint64_t fp = mt.fp[w][i];
            absent += !mt_in(w - 1, fp);
            bool seen = false;
            for (unsigned p = 0; p < w && !seen; p++)
                seen = mt_in(p, fp);
            never += !seen;
        }
        churn += (double)absent / mt.n[w];
        fresh += (double)never / mt.n[w];
    }
    churn /= MT_WINDOWS - 1;
    fresh /= MT_WINDOWS - 1;
    assert_true(rows > 360 * 30 * 95 / 100 && rows <= 360 * 30);
    assert_true(churn > 0.42 && churn < 0.55);
    assert_true(fresh > 0.2 && fresh < 0.4);

    /* the same seed gives the same bytes, another seed others */
    uint64_t bytes = st.bytes;
    for (unsigned seed = 9; seed <= 10; seed++) {
        char dir[128], err2[256];
        snprintf(dir, sizeof(dir), "%s/again%u", e->dir, seed);
        struct store_opts so = {.url = dir};
        struct store *s2 = store_open(&so, err2, sizeof(err2));
        assert_non_null(s2);
        o.seed = seed;
        struct generate_stats st2;
        assert_int_equal(fleet_generate(s2, &o, &st2, err, sizeof(err)), 0);
        if (seed == 9)
            assert_int_equal(st2.bytes, bytes);
        else
            assert_int_not_equal(st2.bytes, bytes);
        store_close(s2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generate_fleet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_refused_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
