/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Recording rules: validation (query/engine/rule.c), evaluation over
 * decoded sections and through compaction (query/jobs/rules.c, compact.c),
 * the remote-write encoder (decoded back with protobuf-c after a snappy
 * round trip) and the text exposition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/manifest.h"
#include "codec/segment.h"
#include "exporter/profile.h"
#include "prometheus/remote.pb-c.h"
#include "query/engine/rule.h"
#include "query/jobs/compact.h"
#include "query/jobs/remote_write.h"
#include "query/jobs/rules.h"
#include "query/serve/rules_api.h"
#include "store/store.h"

#define PT_SAMPLES "process_cpu:samples:count:cpu:nanoseconds"
#define PT_CPU     "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
/* 2026-01-01T10:00:00Z */
static const int64_t H = 1767261600000LL;

/* ---- validation ---------------------------------------------------------- */

struct vcase {
    const char *metric;
    const char *matchers[3];
    const char *group_by[3];
    const char *ext_name, *ext_value;
    const char *fn;  /* NULL: no filter; "" an empty one */
    const char *err; /* NULL: valid; else a substring of the message */
};

static const struct vcase vcases[] = {
    {"profiles_recorded_cpu", {"{__profile_type__=\"" PT_CPU "\"}"}, {0}, 0, 0, 0, NULL},
    {"profiles_recorded_cpu",
     {"{__profile_type__=\"" PT_CPU "\", service_name=\"a\"}", "{host_name=~\"h.*\"}"},
     {"service_name", "host_name"},
     "env",
     "prod",
     "main",
     NULL},
    /* an empty selector among others (fuzz_rule: memcpy from its NULL array) */
    {"profiles_recorded_cpu", {"{}", "{__profile_type__=\"" PT_CPU "\"}"}, {0}, 0, 0, 0, NULL},
    {"profiles_recorded_cpu",
     {"{__name__=\"process_cpu\",__profile_type__=\"" PT_CPU "\"}"},
     {0},
     0,
     0,
     0,
     NULL},
    {"cpu_total", {"{__profile_type__=\"" PT_CPU "\"}"}, {0}, 0, 0, 0, "must start with"},
    {"profiles_recorded_", {"{__profile_type__=\"" PT_CPU "\"}"}, {0}, 0, 0, 0, "metric_name"},
    {"profiles_recorded_a b", {"{__profile_type__=\"" PT_CPU "\"}"}, {0}, 0, 0, 0, "metric_name"},
    {"profiles_recorded_x", {0}, {0}, 0, 0, 0, "matchers: empty"},
    {"profiles_recorded_x", {"{service_name=\"a\"}"}, {0}, 0, 0, 0, "found 0"},
    {"profiles_recorded_x",
     {"{__profile_type__=\"" PT_CPU "\"}", "{__profile_type__=\"" PT_SAMPLES "\"}"},
     {0},
     0,
     0,
     0,
     "found 2"},
    {"profiles_recorded_x", {"{__profile_type__!=\"" PT_CPU "\"}"}, {0}, 0, 0, 0, "matched with ="},
    {"profiles_recorded_x", {"{__profile_type__=\"cpu\"}"}, {0}, 0, 0, 0, "not a profile type"},
    {"profiles_recorded_x", {"{__profile_type__=\"" PT_CPU "\""}, {0}, 0, 0, 0, "matchers[0]"},
    {"profiles_recorded_x",
     {"{__profile_type__=\"" PT_CPU "\"}", ""},
     {0},
     0,
     0,
     0,
     "matchers[1]: empty"},
    {"profiles_recorded_x",
     {"{__name__=\"memory\",__profile_type__=\"" PT_CPU "\"}"},
     {0},
     0,
     0,
     0,
     "__name__ never matches"},
    {"profiles_recorded_x", {"{__profile_type__=\"" PT_CPU "\"}"}, {"a-b"}, 0, 0, 0, "group_by[0]"},
    {"profiles_recorded_x",
     {"{__profile_type__=\"" PT_CPU "\"}"},
     {"__name__"},
     0,
     0,
     0,
     "group_by[0]"},
    {"profiles_recorded_x",
     {"{__profile_type__=\"" PT_CPU "\"}"},
     {"a", "a"},
     0,
     0,
     0,
     "given twice"},
    {"profiles_recorded_x",
     {"{__profile_type__=\"" PT_CPU "\"}"},
     {"env"},
     "env",
     "x",
     0,
     "also a group_by"},
    {"profiles_recorded_x",
     {"{__profile_type__=\"" PT_CPU "\"}"},
     {0},
     "env",
     "",
     0,
     "value is empty"},
    {"profiles_recorded_x",
     {"{__profile_type__=\"" PT_CPU "\"}"},
     {0},
     "__x",
     "1",
     0,
     "external_labels[0]"},
    {"profiles_recorded_x", {"{__profile_type__=\"" PT_CPU "\"}"}, {0}, 0, 0, "", "function_name"},
};

/* A RecordingRule message of @c (pointers into @c; free only the arrays). */
static void vcase_msg(const struct vcase *c, Settings__V1__RecordingRule *m, char **mt, char **gb,
                      Types__V1__LabelPair *lp, Types__V1__LabelPair **lpp,
                      Settings__V1__StacktraceFilter *sf,
                      Settings__V1__StacktraceFilterFunctionName *sfn)
{
    settings__v1__recording_rule__init(m);
    m->id = "r1";
    m->metric_name = (char *)c->metric;
    for (size_t i = 0; i < 3 && c->matchers[i]; i++)
        mt[m->n_matchers++] = (char *)c->matchers[i];
    m->matchers = mt;
    for (size_t i = 0; i < 3 && c->group_by[i]; i++)
        gb[m->n_group_by++] = (char *)c->group_by[i];
    m->group_by = gb;
    if (c->ext_name) {
        types__v1__label_pair__init(lp);
        lp->name = (char *)c->ext_name;
        lp->value = (char *)c->ext_value;
        lpp[0] = lp;
        m->external_labels = lpp;
        m->n_external_labels = 1;
    }
    if (c->fn) {
        settings__v1__stacktrace_filter__init(sf);
        settings__v1__stacktrace_filter_function_name__init(sfn);
        sfn->function_name = (char *)c->fn;
        sf->function_name = sfn;
        m->stacktrace_filter = sf;
    }
}

static void test_validation(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
        const struct vcase *c = &vcases[i];
        Settings__V1__RecordingRule m;
        char *mt[3], *gb[3], err[512] = "";
        Types__V1__LabelPair lp, *lpp[1];
        Settings__V1__StacktraceFilter sf;
        Settings__V1__StacktraceFilterFunctionName sfn;
        struct rule *r = NULL;
        vcase_msg(c, &m, mt, gb, &lp, lpp, &sf, &sfn);
        int rc = rule_compile(&m, &r, err, sizeof(err));
        if (!c->err) {
            if (rc)
                fail_msg("case %zu: refused: %s", i, err);
            assert_string_equal(r->profile_type, PT_CPU);
            assert_int_equal(r->ngroup, m.n_group_by);
            /* __profile_type__ and __name__ are the rule's, not the engine's */
            for (size_t k = 0; k < r->sel->n; k++)
                assert_true(strncmp(r->sel->m[k].name, "__", 2) != 0);
            if (c->fn)
                assert_string_equal(r->function_name, c->fn);
            rule_free(r);
        } else {
            if (rc != -EINVAL)
                fail_msg("case %zu: accepted (want '%s')", i, c->err);
            if (!strstr(err, c->err))
                fail_msg("case %zu: message '%s' lacks '%s'", i, err, c->err);
        }
    }
    assert_true(rule_id_valid("a-B_9"));
    assert_false(rule_id_valid(""));
    assert_false(rule_id_valid("a/b"));
    assert_false(rule_id_valid("../x"));
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = 0;
    assert_false(rule_id_valid(long_id));
}

static void test_decode(void **state)
{
    (void)state;
    Settings__V1__RecordingRule m, *back = NULL;
    char *mt[3], *gb[3], err[512];
    Types__V1__LabelPair lp, *lpp[1];
    Settings__V1__StacktraceFilter sf;
    Settings__V1__StacktraceFilterFunctionName sfn;
    struct rule *r = NULL;
    uint8_t buf[4096];

    vcase_msg(&vcases[1], &m, mt, gb, &lp, lpp, &sf, &sfn);
    m.generation = 7;
    size_t n = settings__v1__recording_rule__pack(&m, buf);
    assert_int_equal(rule_decode(buf, n, &r, &back, err, sizeof(err)), 0);
    assert_string_equal(r->id, "r1");
    assert_int_equal(r->generation, 7);
    assert_string_equal(r->function_name, "main");
    assert_int_equal(r->next, 1);
    assert_string_equal(r->ext_names[0], "env");
    assert_string_equal(back->metric_name, "profiles_recorded_cpu");
    rule_free(r);
    settings__v1__recording_rule__free_unpacked(back, NULL);

    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(rule_decode(junk, sizeof(junk), &r, NULL, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "RecordingRule"));
    uint8_t *big = calloc(1, RULE_MAX_OBJECT + 1);
    assert_int_equal(rule_decode(big, RULE_MAX_OBJECT + 1, &r, NULL, err, sizeof(err)), -EBADMSG);
    free(big);
    m.id = "a/b";
    n = settings__v1__recording_rule__pack(&m, buf);
    assert_int_equal(rule_decode(buf, n, &r, NULL, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "id"));
    m.id = "r1";
    m.metric_name = "cpu";
    n = settings__v1__recording_rule__pack(&m, buf);
    assert_int_equal(rule_decode(buf, n, &r, NULL, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "profiles_recorded_"));

    char key[256];
    assert_true(rule_key(key, sizeof(key), "t1", "r1") > 0);
    assert_string_equal(key, "t1/rules/r1.rule");
    assert_true(rule_recorded_key(key, sizeof(key), "t1") > 0);
    assert_string_equal(key, "t1/recorded/latest.prom");
}

static void test_counter(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t want;
    } c[] = {
        {"# TYPE x counter\nx 42\n", 42},
        {"x 42", 42},
        {"x_total 5\nx 7\n", 7},
        {"x 4a\n", 0},
        {"x \n", 0},
        {"x -1\n", 0},
        {"x 99999999999999999999999\n", 0},
        {"", 0},
        {"xx 3\n", 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        assert_int_equal(rule_recorded_counter(c[i].text, strlen(c[i].text), "x"), c[i].want);
}

/* ---- evaluation ---------------------------------------------------------- */

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

/* A segment of @host at @t: service "api", region=eu gets @eu samples of
 * [hot_a, main], region=us @us samples of [hot_b, main]. */
static uint8_t *segment(const char *host, int64_t t, uint64_t eu, uint64_t us, size_t *len,
                        struct seg_footer **f)
{
    struct seg_writer *w = seg_writer_new("default", host);
    struct profile *p = profile_new("api", (uint64_t)t * 1000000, 10000000000ull, 10000000);
    struct sym_result fa = frame("hot_a", 0x100), fb = frame("hot_b", 0x200),
                      fm = frame("main", 0x300);
    uint32_t sa[2] = {profile_location(p, &fa), profile_location(p, &fm)};
    uint32_t sb[2] = {profile_location(p, &fb), profile_location(p, &fm)};
    struct label_set eu_l = {0}, us_l = {0};
    const char *const names[] = {"service_name", "host_name"}, *vals[] = {"api", host};
    for (int i = 0; i < 2; i++) {
        label_set_put(&eu_l, names[i], vals[i]);
        label_set_put(&us_l, names[i], vals[i]);
    }
    label_set_put(&eu_l, "region", "eu");
    label_set_put(&us_l, "region", "us");
    if (eu)
        assert_int_equal(profile_add(p, sa, 2, &eu_l, eu), 0);
    if (us)
        assert_int_equal(profile_add(p, sb, 2, &us_l, us), 0);
    struct profile_pprof *pp;
    assert_int_equal(profile_to_pprof(p, &pp), 0);
    assert_int_equal(seg_writer_add_pprof(w, "api",
                                          (Perftools__Profiles__Profile *)profile_pprof_msg(pp),
                                          NULL, 0, t),
                     0);
    uint8_t *buf;
    assert_int_equal(seg_writer_finish(w, &buf, len, f), 0);
    profile_pprof_free(pp);
    profile_free(p);
    label_set_clear(&eu_l);
    label_set_clear(&us_l);
    seg_writer_free(w);
    return buf;
}

static struct seg_section *section(const char *host, int64_t t, uint64_t eu, uint64_t us)
{
    size_t len;
    struct seg_footer *f;
    struct seg_section *s;
    char err[256];
    uint8_t *buf = segment(host, t, eu, us, &len, &f);
    assert_int_equal(seg_section_decode(buf + f->sections[0].offset, f->sections[0].length,
                                        &f->sections[0], &s, err, sizeof(err)),
                     0);
    free(buf);
    seg_footer_free(f);
    return s;
}

static struct rule *mk(const char *metric, const char *matcher, const char *g1, const char *g2,
                       const char *fn)
{
    char mt0[256];
    snprintf(mt0, sizeof(mt0), "{__profile_type__=\"%s\"%s%s}", PT_SAMPLES, matcher ? "," : "",
             matcher ? matcher : "");
    struct vcase c = {metric, {mt0}, {g1, g2}, "src", "unit", fn, NULL};
    Settings__V1__RecordingRule m;
    char *mt[3], *gb[3], err[512];
    Types__V1__LabelPair lp, *lpp[1];
    Settings__V1__StacktraceFilter sf;
    Settings__V1__StacktraceFilterFunctionName sfn;
    struct rule *r = NULL;
    vcase_msg(&c, &m, mt, gb, &lp, lpp, &sf, &sfn);
    if (rule_compile(&m, &r, err, sizeof(err)))
        fail_msg("%s: %s", metric, err);
    return r;
}

/* The value at @t of the series of @s whose labels include @k=@v (@k NULL:
 * the only series of metric @name), or -1. */
static double value(const struct rec_series *s, size_t n, const char *name, const char *k,
                    const char *v, int64_t t)
{
    for (size_t i = 0; i < n; i++) {
        bool named = false, has = !k;
        for (size_t j = 0; j < s[i].nlabels; j++) {
            named |= !strcmp(s[i].names[j], "__name__") && !strcmp(s[i].values[j], name);
            has |= k && !strcmp(s[i].names[j], k) && !strcmp(s[i].values[j], v);
        }
        if (!named || !has)
            continue;
        for (size_t j = 0; j < s[i].n; j++)
            if (s[i].t[j] == t)
                return s[i].v[j];
    }
    return -1;
}

static size_t count_named(const struct rec_series *s, size_t n, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += !strcmp(s[i].values[0], name) || (s[i].nlabels > 1 && !strcmp(s[i].values[1], name));
    return c;
}

static void test_eval(void **state)
{
    (void)state;
    struct rule *rules[] = {
        mk("profiles_recorded_region", NULL, "region", NULL, NULL),
        mk("profiles_recorded_hot_a", NULL, "region", NULL, "hot_a"),
        mk("profiles_recorded_us", "region=\"us\"", NULL, NULL, NULL),
        mk("profiles_recorded_zone", NULL, "zone", "host_name", NULL),
        mk("profiles_recorded_main", NULL, NULL, NULL, "main"),
    };
    size_t nr = sizeof(rules) / sizeof(rules[0]);
    struct rule_eval *ev = rule_eval_new(rules, nr, 0);
    struct seg_section *a = section("h1", H, 5, 7), *b = section("h2", H, 1, 2),
                       *c = section("h1", H + 60000, 3, 0);
    struct rec_series *s;
    size_t n;

    /* the later interval first: series come out in time order anyway */
    assert_int_equal(rule_eval_section(ev, c, "h1", 100), 0);
    assert_int_equal(rule_eval_section(ev, a, "h1", 100), 0);
    size_t mark = rule_eval_mark(ev);
    assert_int_equal(rule_eval_section(ev, b, "h2", 100), 0);
    assert_int_equal(rule_eval_series(ev, &s, &n), 0);
    /* two hosts, one interval: summed */
    assert_true(value(s, n, "profiles_recorded_region", "region", "eu", H) == 6);
    assert_true(value(s, n, "profiles_recorded_region", "region", "us", H) == 9);
    assert_true(value(s, n, "profiles_recorded_region", "region", "eu", H + 60000) == 3);
    /* function filter: only stacks through hot_a; a group without any is 0 */
    assert_true(value(s, n, "profiles_recorded_hot_a", "region", "eu", H) == 6);
    assert_true(value(s, n, "profiles_recorded_hot_a", "region", "us", H) == 0);
    assert_true(value(s, n, "profiles_recorded_main", NULL, NULL, H) == 15);
    /* matcher */
    assert_true(value(s, n, "profiles_recorded_us", NULL, NULL, H) == 9);
    assert_true(value(s, n, "profiles_recorded_us", NULL, NULL, H + 60000) == -1);
    /* a group_by label no series has: left out of the labels */
    assert_true(value(s, n, "profiles_recorded_zone", "host_name", "h1", H) == 12);
    for (size_t i = 0; i < n; i++) {
        /* sorted labels, external label on each, samples in time order */
        for (size_t j = 1; j < s[i].nlabels; j++)
            assert_true(strcmp(s[i].names[j - 1], s[i].names[j]) < 0);
        bool src = false;
        for (size_t j = 0; j < s[i].nlabels; j++) {
            src |= !strcmp(s[i].names[j], "src") && !strcmp(s[i].values[j], "unit");
            assert_string_not_equal(s[i].names[j], "zone");
        }
        assert_true(src);
        for (size_t j = 1; j < s[i].n; j++)
            assert_true(s[i].t[j - 1] < s[i].t[j]);
    }
    assert_int_equal(count_named(s, n, "profiles_recorded_zone"), 2);
    rec_series_free(s, n);

    /* a truncated flush no longer counts */
    rule_eval_truncate(ev, mark);
    assert_int_equal(rule_eval_series(ev, &s, &n), 0);
    assert_true(value(s, n, "profiles_recorded_region", "region", "eu", H) == 5);
    struct rule_eval_stats st;
    rule_eval_stats(ev, &st);
    assert_int_equal(st.sections, 3);
    assert_int_equal(st.bytes, 300);

    /* the text form: the newest sample of each series, escaped */
    struct wbuf w = {0};
    rec_series_expose(s, n, &w);
    assert_non_null(
        strstr(w.s, "# TYPE profiles_recorded_region gauge\n"
                    "profiles_recorded_region{region=\"eu\",src=\"unit\"} 3 1767261660000\n"));
    assert_null(
        strstr(strstr(w.s, "profiles_recorded_region") + 1, "# TYPE profiles_recorded_region"));
    wb_free(&w);
    free(s[0].values[1]);
    s[0].values[1] = strdup("a\"b\\c\nd");
    rec_series_expose(s, 1, &w);
    assert_non_null(strstr(w.s, "=\"a\\\"b\\\\c\\nd\""));
    wb_free(&w);
    rec_series_free(s, n);

    rule_eval_free(ev);
    seg_section_free(a);
    seg_section_free(b);
    seg_section_free(c);
    for (size_t i = 0; i < nr; i++)
        rule_free(rules[i]);
}

/* Flushes of hosts that started at other seconds add up in the aligned
 * interval each sample was taken in: one sample per interval, at its start. */
static void test_intervals(void **state)
{
    (void)state;
    struct rule *rules[] = {mk("profiles_recorded_all", NULL, NULL, NULL, NULL)};
    struct rule_eval *ev = rule_eval_new(rules, 1, 60);
    struct seg_section *a = section("h1", H + 5000, 1, 2), *b = section("h2", H + 37000, 4, 0),
                       *c = section("h1", H + 65000, 8, 0), *d = section("h3", H - 1000, 16, 0);
    struct rec_series *s;
    size_t n;

    assert_int_equal(rule_eval_section(ev, a, "h1", 1), 0);
    assert_int_equal(rule_eval_section(ev, b, "h2", 1), 0);
    assert_int_equal(rule_eval_section(ev, c, "h1", 1), 0);
    assert_int_equal(rule_eval_section(ev, d, "h3", 1), 0);
    assert_int_equal(rule_eval_series(ev, &s, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].n, 3);
    assert_int_equal(s[0].t[0], H - 60000);
    assert_true(s[0].v[0] == 16);
    assert_int_equal(s[0].t[1], H);
    assert_true(s[0].v[1] == 7);
    assert_int_equal(s[0].t[2], H + 60000);
    assert_true(s[0].v[2] == 8);
    rec_series_free(s, n);
    rule_eval_free(ev);
    seg_section_free(a);
    seg_section_free(b);
    seg_section_free(c);
    seg_section_free(d);
    rule_free(rules[0]);
}

/* ---- remote-write encoding ----------------------------------------------- */

static void test_encode(void **state)
{
    (void)state;
    char *n0[] = {"__name__", "job"}, *v0[] = {"profiles_recorded_a", "x\"y"};
    char *n1[] = {"__name__"}, *v1[] = {"profiles_recorded_b"};
    enum { BIG = 20000 };
    int64_t t0[] = {H, H + 60000};
    double x0[] = {1.5, 1e15};
    int64_t *t1 = malloc(BIG * sizeof(*t1));
    double *x1 = malloc(BIG * sizeof(*x1));
    for (int i = 0; i < BIG; i++) {
        t1[i] = H + i * 1000LL;
        x1[i] = i * 3;
    }
    struct rec_series s[] = {{n0, v0, 2, t0, x0, 2}, {n1, v1, 1, t1, x1, BIG}};
    uint8_t *buf;
    size_t len, raw_len;

    assert_int_equal(rw_encode(s, 2, &buf, &len), 0);
    /* snappy's block format, as Prometheus decodes it */
    assert_int_equal(snappy_validate_compressed_buffer((const char *)buf, len), SNAPPY_OK);
    assert_int_equal(snappy_uncompressed_length((const char *)buf, len, &raw_len), SNAPPY_OK);
    assert_true(len < raw_len); /* 20000 similar samples compress */
    char *raw = malloc(raw_len);
    assert_int_equal(snappy_uncompress((const char *)buf, len, raw, &raw_len), SNAPPY_OK);
    Prometheus__WriteRequest *wr =
        prometheus__write_request__unpack(NULL, raw_len, (const uint8_t *)raw);
    assert_non_null(wr);
    assert_int_equal(wr->n_timeseries, 2);
    assert_int_equal(wr->timeseries[0]->n_labels, 2);
    assert_string_equal(wr->timeseries[0]->labels[1]->name, "job");
    assert_string_equal(wr->timeseries[0]->labels[1]->value, "x\"y");
    assert_int_equal(wr->timeseries[0]->n_samples, 2);
    assert_true(wr->timeseries[0]->samples[1]->value == 1e15);
    assert_int_equal(wr->timeseries[0]->samples[1]->timestamp, H + 60000);
    assert_int_equal(wr->timeseries[1]->n_samples, BIG);
    for (int i = 0; i < BIG; i++) {
        assert_int_equal(wr->timeseries[1]->samples[i]->timestamp, t1[i]);
        assert_true(wr->timeseries[1]->samples[i]->value == x1[i]);
    }
    prometheus__write_request__free_unpacked(wr, NULL);
    free(raw);
    free(buf);

    /* nothing listening: dropped and counted, after the retries, never an error */
    struct rw_opts o = {.url = "http://127.0.0.1:1/api/v1/write", .retries = 2, .backoff_ms = 1};
    struct rw_stats st = {0};
    assert_int_equal(rw_send(&o, s, 2, &st), 0);
    assert_int_equal(st.samples_dropped, 2 + BIG);
    assert_int_equal(st.samples_sent, 0);
    /* two requests (the big series alone in one); the receiver stayed
     * down through the first one's retries: the second is not tried */
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.retries, 2);
    assert_non_null(strstr(st.last_error, "127.0.0.1:1"));
    free(t1);
    free(x1);
}

/* ---- through compaction: each flush once ---------------------------------- */

static void put(struct store *st, const char *host, int64_t t, uint64_t eu, uint64_t us,
                char *skey_out)
{
    size_t len, mlen;
    struct seg_footer *f;
    uint8_t *mbuf, *buf = segment(host, t, eu, us, &len, &f);
    char skey[512], ekey[512];
    assert_true(seg_object_key(skey, sizeof(skey), "default", host, t, seg_hash64(buf, len)) > 0);
    assert_int_equal(store_put(st, skey, buf, len), 0);
    struct manifest *m = calloc(1, sizeof(*m));
    assert_int_equal(manifest_add(m, skey, f), 0);
    assert_int_equal(manifest_encode(m, &mbuf, &mlen), 0);
    assert_true(manifest_entry_key(ekey, sizeof(ekey), "default", host, t, seg_hash64(mbuf, mlen)) >
                0);
    assert_int_equal(store_put(st, ekey, mbuf, mlen), 0);
    if (skey_out)
        snprintf(skey_out, 512, "%s", skey);
    free(buf);
    free(mbuf);
    manifest_free(m);
    seg_footer_free(f);
}

static void test_compact(void **state)
{
    (void)state;
    char dir[] = "/tmp/stoke-rules-XXXXXX", err[256], cmd[128], gone[512];
    assert_non_null(mkdtemp(dir));
    struct store_opts so = {.url = dir};
    struct store *st = store_open(&so, err, sizeof(err));
    assert_non_null(st);
    struct rule *rules[] = {mk("profiles_recorded_region", NULL, "region", NULL, NULL)};
    struct compact_opts co = {.now_ms = H + 2 * 3600000};
    struct compact_stats cs;
    struct rec_series *s;
    size_t n;

    put(st, "h1", H, 5, 7, NULL);
    put(st, "h2", H, 1, 2, NULL);
    put(st, "h1", H + 60000, 3, 0, NULL);
    put(st, "h2", H + 60000, 4, 4, gone);
    assert_int_equal(store_del(st, gone), 0); /* its entry stays, unreadable */

    co.rules = rule_eval_new(rules, 1, 0);
    assert_int_equal(compact_run(st, &co, &cs), 0);
    assert_int_equal(cs.entries_merged, 3);
    assert_int_equal(cs.objects_kept, 1);
    assert_int_equal(rule_eval_series(co.rules, &s, &n), 0);
    assert_int_equal(n, 2);
    assert_true(value(s, n, "profiles_recorded_region", "region", "eu", H) == 6);
    assert_true(value(s, n, "profiles_recorded_region", "region", "us", H) == 9);
    /* the flush kept out of the block does not count */
    assert_true(value(s, n, "profiles_recorded_region", "region", "eu", H + 60000) == 3);
    assert_true(value(s, n, "profiles_recorded_region", "region", "us", H + 60000) == -1);
    rec_series_free(s, n);
    struct rule_eval_stats es;
    rule_eval_stats(co.rules, &es);
    assert_int_equal(es.flushes, 3);
    rule_eval_free(co.rules);

    /* the next pass has nothing new: no flush is evaluated twice */
    co.rules = rule_eval_new(rules, 1, 0);
    assert_int_equal(compact_run(st, &co, &cs), 0);
    rule_eval_stats(co.rules, &es);
    assert_int_equal(es.flushes, 0);
    assert_int_equal(rule_eval_mark(co.rules), 0);
    rule_eval_free(co.rules);
    rule_free(rules[0]);
    store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- /metrics: what a worker shows of the recorded object ---------------- */

/* A store whose object is @text, or whose reads fail with @fail. */
static struct {
    const char *text;
    int fail;
} fake;
static int fake_head(struct store *s, const char *key, uint64_t *size)
{
    (void)s;
    assert_string_equal(key, "t1/recorded/latest.prom");
    if (fake.fail)
        return fake.fail;
    *size = strlen(fake.text);
    return 0;
}
static int fake_get(struct store *s, const char *key, uint64_t off, uint64_t len,
                    struct store_buf *out)
{
    (void)s;
    (void)key;
    (void)off;
    (void)len;
    if (fake.fail)
        return fake.fail;
    out->data = (uint8_t *)strdup(fake.text);
    out->len = strlen(fake.text);
    return 0;
}

static void test_metrics(void **state)
{
    (void)state;
    static const struct store_ops ops = {.head = fake_head, .get = fake_get};
    struct store st = {.ops = &ops};
    struct wbuf b = {0};
    const int64_t T = 1000000;

    fake.text = "profiles_recorded_x 1 2";
    rules_api_metrics_at(&st, "t1", &b, T);
    assert_string_equal(b.s, "profiles_recorded_x 1 2\n");
    wb_free(&b);
    /* within the TTL: the cached text, the store not asked */
    fake.text = "profiles_recorded_x 3 4\n";
    rules_api_metrics_at(&st, "t1", &b, T + RULES_METRICS_TTL_S - 1);
    assert_string_equal(b.s, "profiles_recorded_x 1 2\n");
    wb_free(&b);
    rules_api_metrics_at(&st, "t1", &b, T + RULES_METRICS_TTL_S);
    assert_string_equal(b.s, "profiles_recorded_x 3 4\n");
    wb_free(&b);
    /* a store that fails keeps the last text; a missing object clears it */
    fake.fail = -EIO;
    rules_api_metrics_at(&st, "t1", &b, T + 2 * RULES_METRICS_TTL_S);
    assert_string_equal(b.s, "profiles_recorded_x 3 4\n");
    wb_free(&b);
    fake.fail = -ENOENT;
    rules_api_metrics_at(&st, "t1", &b, T + 3 * RULES_METRICS_TTL_S);
    assert_int_equal(b.len, 0);
    wb_free(&b);
    /* larger than allowed: not shown */
    fake.fail = 0;
    char *big = malloc(RULE_MAX_RECORDED + 2);
    memset(big, 'x', RULE_MAX_RECORDED + 1);
    big[RULE_MAX_RECORDED + 1] = 0;
    fake.text = big;
    rules_api_metrics_at(&st, "t1", &b, T + 4 * RULES_METRICS_TTL_S);
    assert_int_equal(b.len, 0);
    wb_free(&b);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation), cmocka_unit_test(test_decode),
        cmocka_unit_test(test_counter),    cmocka_unit_test(test_eval),
        cmocka_unit_test(test_intervals),  cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_encode),     cmocka_unit_test(test_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
