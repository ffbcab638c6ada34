/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec/segment: wire primitives, pprof → segment → decoded round trips
 * (hand-built and every profile of the shared corpus), corruption at every
 * byte and length, determinism, keys, and the golden v1 object.
 *
 * STOKE_UPDATE_GOLDEN=1 build/tests/test_segment rewrites
 * tests/data/codec/golden-v1.{seg,man}.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "codec/footer.h"
#include "codec/manifest.h"
#include "codec/segment.h"
#include "codec/wire.h"

#define CORPUS     "/work/shared/corpus/pprof"
#define GOLDEN_SEG "tests/data/codec/golden-v1.seg"
#define GOLDEN_MAN "tests/data/codec/golden-v1.man"

/* ---- a tiny pprof builder (static storage, no frees) ------------------ */

#define PB_MAX 64
struct pb {
    Perftools__Profiles__Profile p;
    char *str[PB_MAX];
    Perftools__Profiles__ValueType vt[3], *vtp[2];
    Perftools__Profiles__Mapping map, *mapp[1];
    Perftools__Profiles__Function fn[PB_MAX], *fnp[PB_MAX];
    Perftools__Profiles__Line ln[PB_MAX], *lnp[PB_MAX];
    Perftools__Profiles__Location loc[PB_MAX], *locp[PB_MAX];
    Perftools__Profiles__Sample smp[PB_MAX], *smpp[PB_MAX];
    uint64_t ids[PB_MAX][8];
    int64_t vals[PB_MAX][2];
    Perftools__Profiles__Label lab[PB_MAX], *labp[PB_MAX];
};

static int64_t pb_str(struct pb *b, const char *s)
{
    for (size_t i = 0; i < b->p.n_string_table; i++)
        if (!strcmp(b->str[i], s))
            return (int64_t)i;
    assert_true(b->p.n_string_table < PB_MAX);
    b->str[b->p.n_string_table] = (char *)s;
    return (int64_t)b->p.n_string_table++;
}

/* CPU profile, 19 Hz: samples:count + cpu:nanoseconds. */
static void pb_init(struct pb *b, int64_t time_ns)
{
    memset(b, 0, sizeof(*b));
    perftools__profiles__profile__init(&b->p);
    b->p.string_table = b->str;
    pb_str(b, "");
    for (int i = 0; i < 3; i++)
        perftools__profiles__value_type__init(&b->vt[i]);
    b->vt[0].type = pb_str(b, "samples");
    b->vt[0].unit = pb_str(b, "count");
    b->vt[1].type = pb_str(b, "cpu");
    b->vt[1].unit = pb_str(b, "nanoseconds");
    b->vt[2] = b->vt[1];
    b->vtp[0] = &b->vt[0];
    b->vtp[1] = &b->vt[1];
    b->p.sample_type = b->vtp;
    b->p.n_sample_type = 2;
    b->p.period_type = &b->vt[2];
    b->p.period = 52631578;
    b->p.time_nanos = time_ns;
    perftools__profiles__mapping__init(&b->map);
    b->map.id = 1;
    b->map.filename = pb_str(b, "/usr/bin/app");
    b->map.build_id = pb_str(b, "b1d");
    b->mapp[0] = &b->map;
    b->p.mapping = b->mapp;
    b->p.n_mapping = 1;
    b->p.function = b->fnp;
    b->p.location = b->locp;
    b->p.sample = b->smpp;
}

/* Location id of function @name (one location, one line per function). */
static uint64_t pb_loc(struct pb *b, const char *name)
{
    int64_t n = pb_str(b, name);
    for (size_t i = 0; i < b->p.n_function; i++)
        if (b->fn[i].name == n)
            return b->loc[i].id;
    size_t i = b->p.n_function++;
    int64_t sum = 0; /* same name, same address and line in every profile */
    for (const char *c = name; *c; c++)
        sum += *c;
    b->p.n_location++;
    perftools__profiles__function__init(&b->fn[i]);
    b->fn[i].id = i + 1;
    b->fn[i].name = n;
    b->fn[i].filename = pb_str(b, "app.c");
    b->fnp[i] = &b->fn[i];
    perftools__profiles__line__init(&b->ln[i]);
    b->ln[i].function_id = i + 1;
    b->ln[i].line = sum;
    b->lnp[i] = &b->ln[i];
    perftools__profiles__location__init(&b->loc[i]);
    b->loc[i].id = i + 1;
    b->loc[i].mapping_id = 1;
    b->loc[i].address = 0x1000 + 0x10 * (uint64_t)sum;
    b->loc[i].line = &b->lnp[i];
    b->loc[i].n_line = 1;
    b->locp[i] = &b->loc[i];
    return i + 1;
}

/* @stack: function names, leaf first, NULL-terminated. */
static void pb_sample(struct pb *b, const char **stack, int64_t count, const char *lk,
                      const char *lv)
{
    size_t i = b->p.n_sample++, n = 0;
    Perftools__Profiles__Sample *s = &b->smp[i];
    perftools__profiles__sample__init(s);
    for (; stack[n]; n++)
        b->ids[i][n] = pb_loc(b, stack[n]);
    s->location_id = b->ids[i];
    s->n_location_id = n;
    b->vals[i][0] = count;
    b->vals[i][1] = count * b->p.period;
    s->value = b->vals[i];
    s->n_value = 2;
    if (lk) {
        perftools__profiles__label__init(&b->lab[i]);
        b->lab[i].key = pb_str(b, lk);
        b->lab[i].str = pb_str(b, lv);
        b->labp[i] = &b->lab[i];
        s->label = &b->labp[i];
        s->n_label = 1;
    }
    b->smpp[i] = s;
}

/* ---- generic comparison: (label set | leaf function) → type-0 value --- */

struct agg {
    char **key;
    int64_t *val;
    size_t n, cap;
    uint64_t total[16];
    uint32_t ntypes;
};

static void agg_add(struct agg *a, const char *key, int64_t v)
{
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->key[i], key)) {
            a->val[i] = (int64_t)((uint64_t)a->val[i] + (uint64_t)v);
            return;
        }
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->key = realloc(a->key, a->cap * sizeof(*a->key));
        a->val = realloc(a->val, a->cap * sizeof(*a->val));
        assert_non_null(a->key);
        assert_non_null(a->val);
    }
    a->key[a->n] = strdup(key);
    a->val[a->n++] = v;
}

static void agg_free(struct agg *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->key[i]);
    free(a->key);
    free(a->val);
    memset(a, 0, sizeof(*a));
}

/* Two aggregates must hold the same keys with the same values. */
static void agg_equal(struct agg *a, struct agg *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->ntypes, b->ntypes);
    for (uint32_t t = 0; t < a->ntypes; t++)
        assert_true(a->total[t] == b->total[t]);
    for (size_t i = 0; i < a->n; i++) {
        size_t j = 0;
        while (j < b->n && strcmp(a->key[i], b->key[j]))
            j++;
        if (j == b->n)
            fail_msg("key %s missing after the round trip", a->key[i]);
        if (a->val[i] != b->val[j])
            fail_msg("key %s: %lld before, %lld after", a->key[i], (long long)a->val[i],
                     (long long)b->val[j]);
    }
}

static const char *pp_str(const Perftools__Profiles__Profile *p, int64_t i)
{
    return i >= 0 && (size_t)i < p->n_string_table && p->string_table[i] ? p->string_table[i] : "";
}

/* What the writer promises: label set = caller labels + the sample's
 * non-empty string labels (sample wins), sorted; leaf = first line of the
 * first location. */
static void agg_pprof(struct agg *a, const Perftools__Profiles__Profile *p,
                      const struct seg_label *cl, size_t ncl)
{
    a->ntypes = (uint32_t)p->n_sample_type;
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *s = p->sample[i];
        const char *names[64], *vals[64];
        size_t n = 0;
        char key[8192];
        for (size_t j = 0; j < s->n_label && n < 64; j++) {
            const char *k = pp_str(p, s->label[j]->key), *v = pp_str(p, s->label[j]->str);
            if (!k[0] || !v[0] || s->label[j]->str <= 0)
                continue;
            size_t x = 0;
            while (x < n && strcmp(names[x], k))
                x++;
            if (x == n) {
                names[n] = k;
                vals[n++] = v;
            }
        }
        for (size_t j = 0; j < ncl; j++) {
            size_t x = 0;
            while (x < n && strcmp(names[x], cl[j].name))
                x++;
            if (x == n) {
                names[n] = cl[j].name;
                vals[n++] = cl[j].value;
            }
        }
        /* sort pairs by name */
        for (size_t x = 1; x < n; x++)
            for (size_t y = x; y > 0 && strcmp(names[y - 1], names[y]) > 0; y--) {
                const char *t = names[y];
                names[y] = names[y - 1];
                names[y - 1] = t;
                t = vals[y];
                vals[y] = vals[y - 1];
                vals[y - 1] = t;
            }
        size_t o = 0;
        key[0] = 0;
        for (size_t x = 0; x < n; x++)
            o += (size_t)snprintf(key + o, sizeof(key) - o > 1 ? sizeof(key) - o : 1, "%s=%s,",
                                  names[x], vals[x]);
        const char *leaf = "<none>";
        if (s->n_location_id) {
            for (size_t l = 0; l < p->n_location; l++)
                if (p->location[l]->id == s->location_id[0]) {
                    leaf = "<noline>";
                    if (p->location[l]->n_line) {
                        uint64_t fid = p->location[l]->line[0]->function_id;
                        leaf = NULL;
                        for (size_t f = 0; f < p->n_function; f++)
                            if (p->function[f]->id == fid) {
                                leaf = pp_str(p, p->function[f]->name);
                                break;
                            }
                        /* every function id 0: the writer takes them by
                         * position (docs/format.md §4) */
                        if (!leaf && fid >= 1 && fid <= p->n_function)
                            leaf = pp_str(p, p->function[fid - 1]->name);
                        assert_non_null(leaf);
                    }
                    break;
                }
        }
        if (o < sizeof(key))
            snprintf(key + o, sizeof(key) - o, "|%s", leaf);
        agg_add(a, key, s->n_value ? s->value[0] : 0);
        for (size_t t = 0; t < p->n_sample_type && t < 16; t++)
            a->total[t] += t < s->n_value ? (uint64_t)s->value[t] : 0;
    }
}

static void agg_section(struct agg *a, const struct seg_section *s)
{
    a->ntypes = s->ntypes;
    for (uint64_t r = 0; r < s->nsamples; r++) {
        char key[8192];
        size_t o = 0;
        uint32_t se = s->sample_series[r], st = s->sample_stack[r];
        key[0] = 0;
        for (uint32_t k = s->series_off[se]; k < s->series_off[se + 1]; k++)
            o += (size_t)snprintf(key + o, sizeof(key) - o > 1 ? sizeof(key) - o : 1, "%s=%s,",
                                  s->strings[s->series_labels[2 * k]],
                                  s->strings[s->series_labels[2 * k + 1]]);
        const char *leaf = "<none>";
        if (s->stack_off[st + 1] > s->stack_off[st]) {
            const struct seg_location *l = &s->locations[s->stack_locs[s->stack_off[st]]];
            leaf = l->nlines ? s->strings[s->functions[s->lines[l->line_off].function].name]
                             : "<noline>";
        }
        if (o < sizeof(key))
            snprintf(key + o, sizeof(key) - o, "|%s", leaf);
        agg_add(a, key, s->sample_values[r * s->ntypes]);
        for (uint32_t t = 0; t < s->ntypes && t < 16; t++)
            a->total[t] += (uint64_t)s->sample_values[r * s->ntypes + t];
    }
}

/* ---- object helpers ----------------------------------------------------- */

/* Parses the footer of a whole object and decodes every section. */
static int decode_all(const uint8_t *buf, size_t len, struct seg_footer **fo,
                      struct seg_section ***secs)
{
    char err[256];
    uint64_t need = 0;
    struct seg_footer *f = NULL;
    int ret = seg_footer_parse(buf, len, len, &f, &need, err, sizeof(err));
    if (ret) {
        assert_true(err[0]); /* every failure says why */
        return ret;
    }
    struct seg_section **v = calloc(f->nsections + 1, sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < f->nsections; i++) {
        const struct seg_section_info *si = &f->sections[i];
        ret = seg_section_decode(buf + si->offset, si->length, si, &v[i], err, sizeof(err));
        if (ret) {
            assert_true(err[0]);
            for (size_t j = 0; j < i; j++)
                seg_section_free(v[j]);
            free(v);
            seg_footer_free(f);
            return ret;
        }
    }
    *fo = f;
    *secs = v;
    return 0;
}

static void free_all(struct seg_footer *f, struct seg_section **v)
{
    for (size_t i = 0; f && i < f->nsections; i++)
        seg_section_free(v[i]);
    free(v);
    seg_footer_free(f);
}

static const char *S_MAIN[] = {"compute", "work", "main", NULL};
static const char *S_HASH[] = {"hash", "compute", "work", "main", NULL};
static const char *S_IO[] = {"read", "main", NULL};

/* The fixed input of the golden object and of several tests: service "api"
 * gets two 10 s windows from two processes (the same functions), service
 * "db" one window with a sample label. */
static struct seg_writer *build_fixed(void)
{
    static struct pb b1, b2, b3;
    struct seg_label l1[] = {{"service_name", "api"}, {"pid", "100"}};
    struct seg_label l2[] = {{"service_name", "api"}, {"pid", "200"}};
    struct seg_label l3[] = {{"service_name", "db"}, {"span", "caller"}};
    struct seg_writer *w = seg_writer_new("acme", "host-1");
    assert_non_null(w);
    pb_init(&b1, 1700000000000000000ll);
    pb_sample(&b1, S_MAIN, 5, NULL, NULL);
    pb_sample(&b1, S_HASH, 3, NULL, NULL);
    pb_sample(&b1, S_MAIN, 2, NULL, NULL); /* same row: summed */
    pb_init(&b2, 1700000010000000000ll);
    pb_sample(&b2, S_HASH, 7, NULL, NULL);
    pb_sample(&b2, S_IO, 1, NULL, NULL);
    pb_init(&b3, 1700000000000000000ll);
    pb_sample(&b3, S_IO, 4, "span", "query");
    pb_sample(&b3, S_MAIN, 1, NULL, NULL);
    assert_int_equal(seg_writer_add_pprof(w, "api", &b1.p, l1, 2, 0), 0);
    assert_int_equal(seg_writer_add_pprof(w, "api", &b2.p, l1, 2, 0), 0);
    assert_int_equal(seg_writer_add_pprof(w, "api", &b1.p, l2, 2, 1700000010000), 0);
    assert_int_equal(seg_writer_add_pprof(w, "db", &b3.p, l3, 2, 0), 0);
    return w;
}

static uint32_t find_fn(const struct seg_section *s, const char *name, int *count)
{
    uint32_t id = UINT32_MAX;
    *count = 0;
    for (uint32_t i = 0; i < s->nfunctions; i++)
        if (!strcmp(s->strings[s->functions[i].name], name)) {
            id = i;
            ++*count;
        }
    return id;
}

/* Expected values of the fixed input, shared by the round trip and the
 * golden test so old objects are checked against the same truth. */
static void check_fixed(const struct seg_footer *f, struct seg_section **v)
{
    char id[256];
    int cnt;
    assert_int_equal(f->version, 1);
    assert_string_equal(f->tenant, "acme");
    assert_string_equal(f->host, "host-1");
    assert_int_equal(f->t_min_ms, 1700000000000ll);
    assert_int_equal(f->t_max_ms, 1700000010000ll);
    assert_int_equal(f->nsections, 2);
    const struct seg_section_info *ia = &f->sections[0], *id_ = &f->sections[1];
    assert_string_equal(ia->service, "api");
    assert_string_equal(id_->service, "db");
    /* api: rows (pid100,t0,main)=7 (pid100,t0,hash)=3 (pid100,t10,hash)=7
     * (pid100,t10,io)=1 (pid200,t10,main)=7 (pid200,t10,hash)=3 */
    assert_int_equal(ia->nsamples, 6);
    assert_int_equal(ia->total[0], 28);
    assert_true(ia->total[1] == 28ull * 52631578);
    assert_int_equal(ia->nprofile_types, 2);
    assert_string_equal(ia->profile_types[0], "process_cpu:samples:count:cpu:nanoseconds");
    assert_string_equal(ia->profile_types[1], "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    assert_int_equal(ia->nlabels, 2);
    assert_string_equal(ia->labels[0].name, "pid");
    assert_int_equal(ia->labels[0].nvalues, 2);
    assert_string_equal(ia->labels[0].values[0], "100");
    assert_string_equal(ia->labels[0].values[1], "200");
    assert_string_equal(ia->labels[1].name, "service_name");
    assert_int_equal(id_->nsamples, 2);
    assert_int_equal(id_->total[0], 5);

    const struct seg_section *a = v[0], *d = v[1];
    assert_string_equal(a->service, "api");
    assert_int_equal(a->ntypes, 2);
    assert_string_equal(a->strings[a->types[1].type], "cpu");
    assert_string_equal(a->strings[a->period_type.unit], "nanoseconds");
    assert_int_equal(a->period, 52631578);
    assert_int_equal(seg_profile_type_id(a, 1, id, sizeof(id)), 0);
    assert_string_equal(id, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    assert_int_equal(seg_profile_type_id(a, 2, id, sizeof(id)), -EINVAL);
    /* two processes, two windows: every function stored once */
    assert_int_equal(a->nfunctions, 5);
    uint32_t fh = find_fn(a, "hash", &cnt);
    assert_int_equal(cnt, 1);
    assert_int_equal(a->nlocations, 5);
    assert_int_equal(a->nmappings, 1);
    assert_string_equal(a->strings[a->mappings[0].build_id], "b1d");
    assert_int_equal(a->nstacks, 3);
    assert_int_equal(a->nseries, 2);
    assert_int_equal(a->nsamples, 6);
    for (uint64_t r = 1; r < a->nsamples; r++) { /* sorted (series, time, stack) */
        assert_true(a->sample_series[r - 1] <= a->sample_series[r]);
        if (a->sample_series[r - 1] == a->sample_series[r])
            assert_true(a->sample_time_ms[r - 1] <= a->sample_time_ms[r]);
    }
    int64_t hash_self = 0;
    for (uint64_t r = 0; r < a->nsamples; r++) {
        uint32_t st = a->sample_stack[r];
        const struct seg_location *l = &a->locations[a->stack_locs[a->stack_off[st]]];
        assert_int_equal(a->sample_values[2 * r + 1], a->sample_values[2 * r] * 52631578);
        if (a->lines[l->line_off].function == fh)
            hash_self += a->sample_values[2 * r];
    }
    assert_int_equal(hash_self, 13);
    /* the first row: pid 100, t0, main stack, 5 + 2 merged */
    assert_int_equal(a->sample_time_ms[0], 1700000000000ll);
    assert_int_equal(a->sample_values[0], 7);
    const uint32_t *lab = a->series_labels + 2 * a->series_off[a->sample_series[0]];
    assert_string_equal(a->strings[lab[0]], "pid");
    assert_string_equal(a->strings[lab[1]], "100");
    assert_string_equal(a->strings[lab[2]], "service_name");
    assert_string_equal(a->strings[lab[3]], "api");
    uint32_t st0 = a->sample_stack[0];
    assert_int_equal(a->stack_off[st0 + 1] - a->stack_off[st0], 3);
    const struct seg_location *leaf = &a->locations[a->stack_locs[a->stack_off[st0]]];
    assert_int_equal(leaf->nlines, 1);
    assert_string_equal(a->strings[a->functions[a->lines[leaf->line_off].function].name],
                        "compute");
    assert_string_equal(a->strings[a->functions[a->lines[leaf->line_off].function].filename],
                        "app.c");
    assert_int_equal(a->lines[leaf->line_off].line, 765); /* "compute" */
    assert_int_equal(leaf->address, 0x1000 + 0x10 * 765);
    assert_int_equal(leaf->mapping, 0);

    /* db: the sample's own label beats the caller's of the same name */
    assert_int_equal(d->nseries, 2);
    bool saw_query = false;
    for (uint32_t i = 0; i < d->nseries; i++)
        for (uint32_t k = d->series_off[i]; k < d->series_off[i + 1]; k++)
            if (!strcmp(d->strings[d->series_labels[2 * k]], "span")) {
                const char *val = d->strings[d->series_labels[2 * k + 1]];
                assert_true(!strcmp(val, "query") || !strcmp(val, "caller"));
                saw_query |= !strcmp(val, "query");
            }
    assert_true(saw_query);
}

/* ---- tests -------------------------------------------------------------- */

static void test_wire(void **state)
{
    static const uint64_t uv[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX};
    static const int64_t sv[] = {0, -1, 1, -64, 64, INT64_MIN, INT64_MAX};
    struct wbuf b = {0};
    for (size_t i = 0; i < sizeof(uv) / sizeof(uv[0]); i++)
        wb_uv(&b, uv[i]);
    for (size_t i = 0; i < sizeof(sv) / sizeof(sv[0]); i++)
        wb_sv(&b, sv[i]);
    assert_int_equal(b.err, 0);
    assert_int_equal(b.p[0], 0);
    assert_int_equal(b.p[3], 0x80); /* 128 = 80 01 */
    assert_int_equal(b.p[4], 0x01);
    struct rbuf r = {.p = b.p, .len = b.len};
    for (size_t i = 0; i < sizeof(uv) / sizeof(uv[0]); i++) {
        uint64_t v;
        assert_int_equal(rb_uv(&r, &v), 0);
        assert_true(v == uv[i]);
    }
    for (size_t i = 0; i < sizeof(sv) / sizeof(sv[0]); i++) {
        int64_t v;
        assert_int_equal(rb_sv(&r, &v), 0);
        assert_true(v == sv[i]);
    }
    uint64_t v;
    assert_int_equal(rb_uv(&r, &v), -EBADMSG); /* at the end */
    static const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    r = (struct rbuf){.p = over, .len = sizeof(over)};
    assert_int_equal(rb_uv(&r, &v), -EBADMSG); /* 65 bits */
    r = (struct rbuf){.p = over, .len = 3};
    assert_int_equal(rb_uv(&r, &v), -EBADMSG); /* truncated */
    wb_free(&b);

    assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c("", 0), 0);
    char big[100];
    memset(big, 'x', sizeof(big));
    /* reference values from xxhsum -H1 */
    assert_true(seg_hash64("", 0) == 0xef46db3751d8e999ull);
    assert_true(seg_hash64("abc", 3) == 0x44bc2cf5ad770999ull);
    assert_true(seg_hash64(big, sizeof(big)) == 0x92f0de5a88a3c094ull);
    /* slicing-by-8 agrees with byte-at-a-time */
    uint32_t c = 0;
    for (size_t i = 0; i < sizeof(big); i++)
        c = crc32c_update(c, big + i, 1);
    assert_int_equal(c, crc32c(big, sizeof(big)));
    /* the path in use (the crc32 instruction where there is one) agrees
     * with the software one: every length up to 3 words and every
     * alignment, chained and from 0 */
    uint8_t rnd[64 + 8];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(rnd); i++)
        rnd[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
    assert_int_equal(crc32c_update_sw(0, "123456789", 9), 0xE3069283u);
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len <= 64; len++) {
            assert_int_equal(crc32c_update(0, rnd + off, len), crc32c_update_sw(0, rnd + off, len));
            assert_int_equal(crc32c_update(0xdeadbeef, rnd + off, len),
                             crc32c_update_sw(0xdeadbeef, rnd + off, len));
        }
}

static void test_roundtrip_fixed(void **state)
{
    struct seg_writer *w = build_fixed();
    struct seg_footer *wf = NULL, *f;
    struct seg_section **v;
    uint8_t *buf;
    size_t len;
    assert_false(seg_writer_empty(w));
    assert_int_equal(seg_writer_finish(w, &buf, &len, &wf), 0);
    assert_int_equal(wf->object_length, len);
    assert_int_equal(decode_all(buf, len, &f, &v), 0);
    check_fixed(f, v);
    check_fixed(wf, v);
    free_all(f, v);
    seg_footer_free(wf);
    free(buf);
    seg_writer_free(w);
}

/* Rejected adds leave a writer as it was: it finishes to @b1 (@l1 bytes)
 * again. Frees @b1 and @w. */
static void assert_unchanged(struct seg_writer *w, uint8_t *b1, size_t l1)
{
    uint8_t *b2;
    size_t l2;
    assert_int_equal(seg_writer_finish(w, &b2, &l2, NULL), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    seg_writer_free(w);
}

static void test_rejects(void **state)
{
    static struct pb b;
    uint8_t *b1;
    size_t l1;
    struct seg_writer *w = seg_writer_new("t", "h");
    assert_true(seg_writer_empty(w));
    pb_init(&b, 1000000000);
    pb_sample(&b, S_MAIN, 1, NULL, NULL);
    assert_int_equal(seg_writer_add_pprof(w, "svc", &b.p, NULL, 0, 0), 0);
    assert_int_equal(seg_writer_finish(w, &b1, &l1, NULL), 0);
    /* other sample types: rejected, writer unchanged */
    b.p.n_sample_type = 1;
    assert_false(seg_writer_accepts(w, "svc", &b.p));
    assert_int_equal(seg_writer_add_pprof(w, "svc", &b.p, NULL, 0, 0), -EINVAL);
    b.p.n_sample_type = 2;
    /* the same sample types of another period type (JFR's lock and park
     * profiles): not this section's either */
    assert_true(seg_writer_accepts(w, "svc", &b.p));
    b.vt[2].type = pb_str(&b, "block");
    assert_false(seg_writer_accepts(w, "svc", &b.p));
    assert_int_equal(seg_writer_add_pprof(w, "svc", &b.p, NULL, 0, 0), -EINVAL);
    b.p.period_type = NULL;
    assert_false(seg_writer_accepts(w, "svc", &b.p));
    assert_int_equal(seg_writer_add_pprof(w, "svc", &b.p, NULL, 0, 0), -EINVAL);
    b.p.period_type = &b.vt[2];
    b.vt[2] = b.vt[1];
    assert_true(seg_writer_accepts(w, "svc", &b.p));
    /* undefined location id */
    b.ids[0][1] = 99;
    assert_int_equal(seg_writer_add_pprof(w, "svc", &b.p, NULL, 0, 0), -EINVAL);
    b.ids[0][1] = 2;
    /* string index out of range */
    perftools__profiles__label__init(&b.lab[0]);
    b.lab[0].key = 1000;
    b.labp[0] = &b.lab[0];
    b.smp[0].label = &b.labp[0];
    b.smp[0].n_label = 1;
    assert_int_equal(seg_writer_add_pprof(w, "svc", &b.p, NULL, 0, 0), -EINVAL);
    b.smp[0].n_label = 0;
    assert_int_equal(seg_writer_add_pprof(w, "", &b.p, NULL, 0, 0), -EINVAL);
    assert_unchanged(w, b1, l1);
}

/* Function ids: a profile whose every function has id 0 (early versions of
 * Pyroscope's .NET profiler wrote none) is repaired by position and says
 * so; any other bad id is rejected with a message naming it and adds
 * nothing: a frame is never stored without its name. */
static void test_function_ids(void **state)
{
    static struct pb b;
    static const char *stk[] = {"leaf", "mid", "root", NULL};
    char msg[256];
    uint8_t *b1;
    size_t l1;
    struct seg_footer *f;
    struct seg_section **v;

    pb_init(&b, 1000000000);
    pb_sample(&b, stk, 3, NULL, NULL);
    assert_int_equal(b.p.n_function, 3);
    assert_int_equal(seg_pprof_check(&b.p, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "");

    /* Every id 0, and the lines name functions by position: the leaf's
     * line names function 3 ("root"), the root's names function 1. */
    for (size_t i = 0; i < 3; i++)
        b.fn[i].id = 0;
    b.ln[0].function_id = 3;
    b.ln[2].function_id = 1;
    assert_int_equal(seg_pprof_check(&b.p, msg, sizeof(msg)), SEG_PPROF_REPAIRED);
    assert_non_null(strstr(msg, "every function id is 0"));
    struct seg_writer *w = seg_writer_new("t", "h");
    assert_int_equal(seg_writer_add_pprof(w, "svc", &b.p, NULL, 0, 0), 0);
    assert_int_equal(seg_writer_finish(w, &b1, &l1, NULL), 0);
    assert_int_equal(decode_all(b1, l1, &f, &v), 0);
    assert_int_equal(v[0]->nstacks, 1);
    const char *want[] = {"root", "mid", "leaf"};
    for (uint32_t i = 0; i < 3; i++) {
        const struct seg_location *loc = &v[0]->locations[v[0]->stack_locs[i]];
        assert_int_equal(loc->nlines, 1);
        assert_string_equal(
            v[0]->strings[v[0]->functions[v[0]->lines[loc->line_off].function].name], want[i]);
    }
    free_all(f, v);

    /* Everything else that is wrong with an id is an error. */
    struct {
        uint64_t fid[3], line0;
        const char *says;
    } bad[] = {
        {{0, 2, 3}, 3, "function 0 has the reserved id 0"},
        {{1, 1, 3}, 3, "two functions have id 1"},
        {{1, 2, 3}, 7, "location 1: line 0 names function 7, which the profile does not define"},
        {{1, 2, 3}, 0, "location 1: line 0 names function 0"},
        {{0, 0, 0}, 4, "location 1: line 0 names function 4"},
    };
    for (size_t t = 0; t < sizeof(bad) / sizeof(bad[0]); t++) {
        for (size_t i = 0; i < 3; i++)
            b.fn[i].id = bad[t].fid[i];
        b.ln[0].function_id = bad[t].line0;
        assert_int_equal(seg_pprof_check(&b.p, msg, sizeof(msg)), -EINVAL);
        if (!strstr(msg, bad[t].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", t, msg, bad[t].says);
        assert_int_equal(seg_writer_add_pprof(w, "svc", &b.p, NULL, 0, 0), -EINVAL);
    }
    assert_unchanged(w, b1, l1);
}

static void test_deterministic(void **state)
{
    struct seg_writer *w1 = build_fixed(), *w2 = build_fixed();
    uint8_t *b1, *b2, *b3;
    size_t l1, l2, l3;
    char k1[256], k2[256];
    assert_int_equal(seg_writer_finish(w1, &b1, &l1, NULL), 0);
    assert_int_equal(seg_writer_finish(w1, &b3, &l3, NULL), 0); /* finish twice */
    assert_int_equal(seg_writer_finish(w2, &b2, &l2, NULL), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    assert_int_equal(l1, l3);
    assert_memory_equal(b1, b3, l1);
    assert_true(
        seg_object_key(k1, sizeof(k1), "acme", "host-1", 1700000000000ll, seg_hash64(b1, l1)) > 0);
    assert_true(
        seg_object_key(k2, sizeof(k2), "acme", "host-1", 1700000000000ll, seg_hash64(b2, l2)) > 0);
    assert_string_equal(k1, k2);
    free(b1);
    free(b2);
    free(b3);
    seg_writer_free(w1);
    seg_writer_free(w2);
}

static void test_keys(void **state)
{
    char k[256];
    assert_int_equal(
        seg_object_key(k, sizeof(k), "acme", "node-1.a_b", 1700000123456ll, 0x0123456789abcdefull),
        (int)strlen("acme/segments/2023-11-14/22/node-1.a_b/"
                    "1700000123456-0123456789abcdef.seg"));
    assert_string_equal(k, "acme/segments/2023-11-14/22/node-1.a_b/"
                           "1700000123456-0123456789abcdef.seg");
    assert_int_equal(
        seg_object_key(k, sizeof(k), "acme", "h", 0, 1),
        (int)strlen("acme/segments/1970-01-01/00/h/0000000000000-0000000000000001.seg"));
    assert_int_equal(seg_object_key(k, 20, "acme", "h", 0, 1), -ENAMETOOLONG);
    assert_int_equal(seg_object_key(k, sizeof(k), "ac/me", "h", 0, 1), -EINVAL);
    assert_int_equal(seg_object_key(k, sizeof(k), "acme", "..", 0, 1), -EINVAL);
    assert_int_equal(seg_object_key(k, sizeof(k), "acme", "", 0, 1), -EINVAL);
    assert_int_equal(seg_object_key(k, sizeof(k), "acme", "h", -1, 1), -EINVAL);
}

/* Every single-byte change and every truncation is an error, not a crash. */
static void test_corruption(void **state)
{
    struct pb b;
    uint8_t *buf, *cp;
    size_t len;
    struct seg_footer *f;
    struct seg_section **v;
    struct seg_writer *w = seg_writer_new("t", "h");
    pb_init(&b, 5000000000);
    pb_sample(&b, S_MAIN, 2, "k", "v");
    pb_sample(&b, S_IO, 1, NULL, NULL);
    assert_int_equal(seg_writer_add_pprof(w, "s", &b.p, NULL, 0, 0), 0);
    assert_int_equal(seg_writer_finish(w, &buf, &len, NULL), 0);
    cp = malloc(len);
    for (size_t i = 0; i < len; i++)
        for (int x = 0; x < 2; x++) {
            memcpy(cp, buf, len);
            cp[i] ^= x ? 0xff : 0x01;
            int r = decode_all(cp, len, &f, &v);
            if (r == 0)
                fail_msg("flipping byte %zu of %zu went unnoticed", i, len);
            assert_true(r == -EBADMSG || r == -EPROTO);
        }
    for (size_t n = 0; n < len; n++) {
        uint8_t *t = malloc(n + 1); /* exact size: ASan sees any overread */
        memcpy(t, buf, n);
        assert_int_not_equal(decode_all(t, n, &f, &v), 0);
        free(t);
    }
    /* a tail shorter than the footer asks for more */
    uint64_t need = 0;
    char err[128];
    assert_int_equal(seg_footer_parse(buf + len - 40, 40, len, &f, &need, err, sizeof(err)),
                     -EAGAIN);
    assert_true(need > 0 && need < len - 40);
    assert_int_equal(seg_footer_parse(buf + need, len - need, len, &f, NULL, err, sizeof(err)), 0);
    assert_int_equal(f->nsections, 1);
    seg_footer_free(f);
    /* a future major version is refused with a clear message */
    memcpy(cp, buf, len);
    wr_u16(cp + len - 12, 2);
    wr_u32(cp + len - 8, crc32c(cp + len - 32, 24));
    assert_int_equal(seg_footer_parse(cp, len, len, &f, NULL, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "version 2"));
    free(cp);
    free(buf);
    seg_writer_free(w);
}

/* ---- the footer by suffix reads (seg_footer_read) ------------------------- */

/* An object in memory as a store would serve it: reads are counted, and
 * each is copied into a buffer of exactly its size (ASan sees overreads). */
struct mem_obj {
    const uint8_t *p;
    size_t len;    /* bytes that exist */
    uint64_t virt; /* > len: the object is that long, zeros then p at the end */
    unsigned reads;
    uint64_t asked; /* the largest length asked for */
    int fail;       /* errno to return from every read */
};

static int mem_read(void *ctx, uint64_t off, uint64_t len, uint8_t **out, size_t *outlen)
{
    struct mem_obj *m = ctx;
    uint64_t size = m->virt > m->len ? m->virt : m->len, base = size - m->len;

    m->reads++;
    if (len > m->asked)
        m->asked = len;
    if (m->fail)
        return m->fail;
    if (len > (64u << 20))
        fail_msg("read of %llu bytes", (unsigned long long)len);
    if (off > size)
        off = size;
    if (len > size - off)
        len = size - off; /* clipped, as the stores clip */
    uint8_t *b = calloc(1, len ? len : 1);
    assert_non_null(b);
    for (uint64_t i = 0; i < len; i++)
        if (off + i >= base)
            b[i] = m->p[off + i - base];
    *out = b;
    *outlen = (size_t)len;
    return 0;
}

/* One segment with @nsvc services of distinct random-looking names and
 * label values: 400 make a footer larger than SEG_FOOTER_TAIL. */
static void many_services(int nsvc, uint8_t **buf, size_t *len, struct seg_footer **f)
{
    struct seg_writer *w = seg_writer_new("t", "h");
    struct pb b;
    char svc[64], val[64];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < nsvc; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(svc, sizeof(svc), "svc-%03d-%016llx", i, (unsigned long long)x);
        snprintf(val, sizeof(val), "%016llx", (unsigned long long)(x * 31));
        pb_init(&b, 5000000000);
        pb_sample(&b, S_MAIN, 2, "span", val);
        assert_int_equal(seg_writer_add_pprof(w, svc, &b.p, NULL, 0, 0), 0);
    }
    assert_int_equal(seg_writer_finish(w, buf, len, f), 0);
    seg_writer_free(w);
}

static void test_footer_read(void **state)
{
    struct seg_footer *want = NULL, *f = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    unsigned nreads = 9;
    char err[256];

    /* a small object: one read of the whole of it */
    many_services(3, &buf, &len, &want);
    assert_true(len < SEG_FOOTER_TAIL);
    struct mem_obj m = {.p = buf, .len = len};
    assert_int_equal(seg_footer_read(mem_read, &m, len, &f, &nreads, err, sizeof(err)), 0);
    assert_int_equal(nreads, 1);
    assert_int_equal(m.asked, len);
    assert_int_equal(f->nsections, 3);
    assert_string_equal(f->sections[2].service, want->sections[2].service);
    assert_int_equal(f->sections[2].offset, want->sections[2].offset);
    assert_int_equal(f->object_length, len);
    seg_footer_free(f);
    seg_footer_free(want);
    free(buf);

    /* a footer larger than the tail: a second read of exactly what lies
     * between the footer's start and the tail */
    many_services(400, &buf, &len, &want);
    uint64_t foff = rd_u64(buf + len - 32);
    assert_true(len - foff > SEG_FOOTER_TAIL);
    m = (struct mem_obj){.p = buf, .len = len};
    assert_int_equal(seg_footer_read(mem_read, &m, len, &f, &nreads, err, sizeof(err)), 0);
    assert_int_equal(nreads, 2);
    assert_int_equal(m.reads, 2);
    assert_int_equal(m.asked, len - foff - SEG_FOOTER_TAIL > SEG_FOOTER_TAIL
                                  ? len - foff - SEG_FOOTER_TAIL
                                  : SEG_FOOTER_TAIL);
    assert_int_equal(f->nsections, 400);
    assert_string_equal(f->sections[399].service, want->sections[399].service);
    seg_footer_free(f);

    /* the store's errors are returned as they are */
    m = (struct mem_obj){.p = buf, .len = len, .fail = -EIO};
    assert_int_equal(seg_footer_read(mem_read, &m, len, &f, NULL, err, sizeof(err)), -EIO);
    assert_null(f);

    /* a listing that says the object is longer than it is (or a store that
     * returns less): a short read, a clear error */
    m = (struct mem_obj){.p = buf, .len = len};
    struct mem_obj *mp = &m;
    uint8_t *shorter = malloc(len - 100);
    memcpy(shorter, buf + 100, len - 100);
    mp->p = shorter;
    mp->len = len - 100;
    assert_int_equal(seg_footer_read(mem_read, mp, len - 100, &f, NULL, err, sizeof(err)),
                     -EBADMSG);
    assert_null(f);
    free(shorter);

    /* every truncation of the object, as a whole object of that length:
     * an error, never a crash or a read outside it */
    for (size_t n = 0; n < len; n += n < 64 || len - n < 5000 ? 1 : 97) {
        uint8_t *t = malloc(n ? n : 1);
        memcpy(t, buf, n);
        m = (struct mem_obj){.p = t, .len = n};
        int r = seg_footer_read(mem_read, &m, n, &f, NULL, err, sizeof(err));
        if (r == 0)
            fail_msg("a %zu-byte prefix of %zu parsed", n, len);
        assert_true(r == -EBADMSG || r == -EPROTO);
        assert_true(err[0] != 0);
        assert_true(m.asked <= SEG_FOOTER_TAIL || m.asked <= n);
        free(t);
    }

    /* every byte flipped in the footer and trailer is noticed */
    uint8_t *cp = malloc(len);
    for (size_t i = foff; i < len; i += (i < len - 64 ? 7 : 1)) {
        memcpy(cp, buf, len);
        cp[i] ^= 0x20;
        m = (struct mem_obj){.p = cp, .len = len};
        int r = seg_footer_read(mem_read, &m, len, &f, NULL, err, sizeof(err));
        if (r == 0)
            fail_msg("flipping byte %zu of %zu went unnoticed", i, len);
        assert_true(r == -EBADMSG || r == -EPROTO);
    }

    /* a trailer (checksum right) that puts the footer at byte 16 of a
     * 1 GiB object: refused before the second read, nothing allocated */
    uint8_t tr[SEG_TRAILER_LEN] = {0};
    uint64_t big = 1ull << 30;
    wr_u64(tr, 16);
    wr_u32(tr + 8, (uint32_t)(big - 16 - 32));
    wr_u32(tr + 12, 100);
    wr_u16(tr + 20, SEG_MAJOR);
    wr_u32(tr + 24, crc32c(tr, 24));
    memcpy(tr + 28, "STKE", 4);
    m = (struct mem_obj){.p = tr, .len = sizeof(tr), .virt = big};
    assert_int_equal(seg_footer_read(mem_read, &m, big, &f, &nreads, err, sizeof(err)), -EBADMSG);
    assert_int_equal(nreads, 1);
    assert_int_equal(m.asked, SEG_FOOTER_TAIL);
    assert_non_null(strstr(err, "larger than a reader fetches"));
    /* a length too short for any segment: no read at all */
    m = (struct mem_obj){.p = tr, .len = sizeof(tr)};
    assert_int_equal(seg_footer_read(mem_read, &m, 40, &f, NULL, err, sizeof(err)), -EBADMSG);
    assert_int_equal(m.reads, 0);

    free(cp);
    seg_footer_free(want);
    free(buf);
}

/* ---- the shared corpus --------------------------------------------------- */

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *p = malloc(cap);
    for (size_t r; (r = fread(p + n, 1, cap - n, fp)) > 0;) {
        n += r;
        if (n == cap)
            p = realloc(p, cap *= 2);
    }
    fclose(fp);
    *len = n;
    return p;
}

/* gunzip when gzipped; NULL when the stream is broken */
static uint8_t *maybe_gunzip(uint8_t *in, size_t len, size_t *out_len)
{
    if (len < 2 || in[0] != 0x1f || in[1] != 0x8b) {
        *out_len = len;
        return in;
    }
    z_stream z = {0};
    size_t cap = len * 8 + 1024, n = 0;
    uint8_t *out = malloc(cap);
    inflateInit2(&z, 16 + MAX_WBITS);
    z.next_in = in;
    z.avail_in = (uInt)len;
    int r;
    do {
        if (n == cap)
            out = realloc(out, cap *= 2);
        z.next_out = out + n;
        z.avail_out = (uInt)(cap - n);
        r = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
    } while (r == Z_OK);
    inflateEnd(&z);
    free(in);
    if (r != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    *out_len = n;
    return out;
}

static Perftools__Profiles__Profile *load_pprof(const char *path)
{
    size_t len;
    uint8_t *raw = slurp(path, &len);
    if (!raw)
        return NULL;
    raw = maybe_gunzip(raw, len, &len);
    if (!raw)
        return NULL;
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, len, raw);
    free(raw);
    return p;
}

static bool corpus_present(void)
{
    DIR *d = opendir(CORPUS);
    if (d) {
        closedir(d);
        return true;
    }
    const char *ci = getenv("CI");
    if (ci && !strcmp(ci, "true"))
        fail_msg("CI=true and the pprof corpus %s is missing", CORPUS);
    return false;
}

/* One writer, one or more profiles of one service → same aggregates. */
static int corpus_roundtrip(Perftools__Profiles__Profile **ps, size_t n, const char *name)
{
    struct seg_label cl[] = {{"service_name", "corpus"}, {"host_name", "h"}};
    struct seg_writer *w = seg_writer_new("t", "h");
    struct agg before = {0}, after = {0};
    struct seg_footer *f;
    struct seg_section **v;
    uint8_t *buf;
    size_t len;
    for (size_t i = 0; i < n; i++) {
        int r = seg_writer_add_pprof(w, "corpus", ps[i], cl, 2, 1000 + (int64_t)i * 10000);
        if (r) {
            seg_writer_free(w);
            return r;
        }
        agg_pprof(&before, ps[i], cl, 2);
    }
    assert_int_equal(seg_writer_finish(w, &buf, &len, NULL), 0);
    assert_int_equal(decode_all(buf, len, &f, &v), 0);
    assert_int_equal(f->nsections, 1);
    assert_int_equal(v[0]->ntypes, ps[0]->n_sample_type);
    for (uint32_t t = 0; t < v[0]->ntypes; t++) {
        assert_string_equal(v[0]->strings[v[0]->types[t].type],
                            pp_str(ps[0], ps[0]->sample_type[t]->type));
        assert_string_equal(v[0]->strings[v[0]->types[t].unit],
                            pp_str(ps[0], ps[0]->sample_type[t]->unit));
    }
    for (uint64_t r = 0; r < v[0]->nsamples; r++)
        assert_true(v[0]->sample_time_ms[r] >= 1000 &&
                    v[0]->sample_time_ms[r] < 1000 + (int64_t)n * 10000 &&
                    v[0]->sample_time_ms[r] % 10000 == 1000);
    agg_section(&after, v[0]);
    agg_equal(&before, &after);
    printf("  %-28s %6zu profiles %7llu rows %8zu bytes (%.2f B/row)\n", name, n,
           (unsigned long long)v[0]->nsamples, len,
           v[0]->nsamples ? (double)len / (double)v[0]->nsamples : 0.0);
    agg_free(&before);
    agg_free(&after);
    free_all(f, v);
    free(buf);
    seg_writer_free(w);
    return 0;
}

static void test_corpus(void **state)
{
    if (!corpus_present())
        skip();
    DIR *d = opendir(CORPUS);
    struct dirent *de;
    int checked = 0;
    while ((de = readdir(d))) {
        char path[512];
        if (de->d_name[0] == '.' || strstr(de->d_name, "README"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", CORPUS, de->d_name);
        if (!strcmp(de->d_name, "go-cpu-series"))
            continue;
        Perftools__Profiles__Profile *p = load_pprof(path);
        if (!p) {
            /* only the deliberately broken inputs may fail to parse */
            assert_non_null(strstr(de->d_name, "invalid") ? de->d_name : NULL);
            continue;
        }
        int r = corpus_roundtrip(&p, 1, de->d_name);
        if (r)
            fail_msg("%s: add_pprof returned %d", de->d_name, r);
        checked++;
        perftools__profiles__profile__free_unpacked(p, NULL);
    }
    closedir(d);
    assert_true(checked >= 15);

    /* ten consecutive windows of one process into one section */
    Perftools__Profiles__Profile *ps[16];
    size_t n = 0;
    d = opendir(CORPUS "/go-cpu-series");
    assert_non_null(d);
    char names[16][256];
    while ((de = readdir(d)) && n < 16)
        if (de->d_name[0] != '.')
            snprintf(names[n++], sizeof(names[0]), "%s", de->d_name);
    closedir(d);
    qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
    for (size_t i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/go-cpu-series/%s", CORPUS, names[i]);
        assert_non_null(ps[i] = load_pprof(path));
    }
    assert_int_equal(n, 10);
    assert_int_equal(corpus_roundtrip(ps, n, "go-cpu-series (10 windows)"), 0);
    for (size_t i = 0; i < n; i++)
        perftools__profiles__profile__free_unpacked(ps[i], NULL);
}

/* ---- golden ---------------------------------------------------------- */

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void test_golden(void **state)
{
    const char *upd = getenv("STOKE_UPDATE_GOLDEN");
    if (upd && !strcmp(upd, "1")) {
        struct seg_writer *w = build_fixed();
        struct seg_footer *wf;
        struct manifest m = {0};
        char key[256], *repl[] = {"acme/manifest/2023-11-14/22/entries/x.man"};
        uint8_t *buf, *mb;
        size_t len, ml;
        assert_int_equal(seg_writer_finish(w, &buf, &len, &wf), 0);
        assert_true(seg_object_key(key, sizeof(key), "acme", "host-1", wf->t_min_ms,
                                   seg_hash64(buf, len)) > 0);
        assert_int_equal(manifest_add(&m, key, wf), 0);
        m.replaces = repl;
        m.nreplaces = 1;
        assert_int_equal(manifest_encode(&m, &mb, &ml), 0);
        write_file(GOLDEN_SEG, buf, len);
        write_file(GOLDEN_MAN, mb, ml);
        printf("  wrote %s (%zu bytes), %s (%zu bytes)\n", GOLDEN_SEG, len, GOLDEN_MAN, ml);
        m.replaces = NULL;
        m.nreplaces = 0;
        free(m.entries[0].key);
        seg_footer_free(m.entries[0].footer);
        free(m.entries);
        seg_footer_free(wf);
        free(buf);
        free(mb);
        seg_writer_free(w);
    }
    size_t len;
    uint8_t *buf = slurp(GOLDEN_SEG, &len);
    if (!buf)
        fail_msg("%s missing: run from the repo root", GOLDEN_SEG);
    struct seg_footer *f;
    struct seg_section **v;
    assert_int_equal(decode_all(buf, len, &f, &v), 0);
    check_fixed(f, v);
    free_all(f, v);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire),          cmocka_unit_test(test_roundtrip_fixed),
        cmocka_unit_test(test_rejects),       cmocka_unit_test(test_function_ids),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_keys),
        cmocka_unit_test(test_corruption),    cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_golden),        cmocka_unit_test(test_footer_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
