/* Unit tests for the fleet generator (query/jobs/generate.c): a fleet made
 * from a pprof source writes one segment per host and flush, and every
 * source is handed back whole (run under ASan by make test-san, which fails
 * on a leak), also when a source is refused. */
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

#include "common/gzip.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generate_fleet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_refused_source, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
