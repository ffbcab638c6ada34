/* SPDX-License-Identifier: Apache-2.0 */
/*
 * codec/jfr: the async-profiler recordings of the shared corpus
 * (/work/shared/corpus/jfr, or $STOKE_JFR_CORPUS) converted with their
 * labels part equal, per profile type and label set, Pyroscope's own
 * conversions in expected/: the same set of (type, label set) profiles and,
 * in each, the same self and total value per function name. The label set
 * is named as Pyroscope names its files: XXH64 of "name\xffvalue\xff" over
 * the sample's labels but profile_id (a span id the reference keeps on the
 * samples, not in the series) sorted by name; the reference's file of the empty
 * set holds the whole profile (every sample, labelled or not), the others
 * the samples of their set. Then corrupt input: every truncation
 * of a recording, flipped bytes, damaged gzip and labels each give an
 * error (or a result), never a crash; ASan/UBSan runs check the rest.
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
#include <unistd.h>

#include "codec/jfr.h"
#include "codec/segment.h"
#include "codec/wire.h"
#include "common/file.h"
#include "common/gzip.h"
#include "common/intern.h"

#define MAX_FILE (64u << 20)
/* XXH64 of no bytes: the hash of the empty label set */
#define EMPTY_SET 17241709254077376921ULL

static const char *corpus(void)
{
    const char *c = getenv("STOKE_JFR_CORPUS");
    return c && *c ? c : "/work/shared/corpus/jfr";
}

static bool corpus_present(void)
{
    DIR *d = opendir(corpus());
    if (d) {
        closedir(d);
        return true;
    }
    const char *ci = getenv("CI");
    if (ci && !strcmp(ci, "true"))
        fail_msg("CI=true and the JFR corpus %s is missing", corpus());
    return false;
}

/* ---- per-function values of one (profile type, label set) ---------------- */

struct fnvals {
    struct intern names;
    int64_t *self, *total;
    size_t cap;
};

static void fn_add(struct fnvals *f, const char *name, int64_t self, int64_t total)
{
    uint32_t id = intern_str(&f->names, name);
    assert_int_not_equal(id, INTERN_NONE);
    if (id >= f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        while (cap <= id)
            cap *= 2;
        f->self = realloc(f->self, cap * sizeof(int64_t));
        f->total = realloc(f->total, cap * sizeof(int64_t));
        assert_non_null(f->self);
        assert_non_null(f->total);
        memset(f->self + f->cap, 0, (cap - f->cap) * sizeof(int64_t));
        memset(f->total + f->cap, 0, (cap - f->cap) * sizeof(int64_t));
        f->cap = cap;
    }
    f->self[id] += self;
    f->total[id] += total;
}

static void fn_free(struct fnvals *f)
{
    intern_free(&f->names);
    free(f->self);
    free(f->total);
}

static const char *fn_name(const Perftools__Profiles__Profile *p, uint64_t loc_id)
{
    for (size_t i = 0; i < p->n_location; i++) {
        const Perftools__Profiles__Location *l = p->location[i];
        if (l->id != loc_id || !l->n_line)
            continue;
        for (size_t j = 0; j < p->n_function; j++)
            if (p->function[j]->id == l->line[0]->function_id)
                return p->string_table[p->function[j]->name];
    }
    fail_msg("location %llu has no function", (unsigned long long)loc_id);
    return "";
}

/* Adds sample @s's value @vi to @f: self to its leaf, total once to each
 * function on its stack. */
static void add_sample(struct fnvals *f, const Perftools__Profiles__Profile *p,
                       const Perftools__Profiles__Sample *s, size_t vi)
{
    int64_t v = s->value[vi];
    const char *seen[512];
    size_t nseen = 0;

    for (size_t i = 0; i < s->n_location_id; i++) {
        const char *n = fn_name(p, s->location_id[i]);
        bool dup = false;
        for (size_t j = 0; j < nseen && !dup; j++)
            dup = !strcmp(seen[j], n);
        if (!dup && nseen < 512)
            seen[nseen++] = n;
        fn_add(f, n, i == 0 ? v : 0, dup ? 0 : v);
    }
}

static int cmp_label(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    return strcmp(x[0], y[0]);
}

/* Pyroscope's label-set hash of a sample's labels (the file name part). */
static uint64_t label_hash(const Perftools__Profiles__Profile *p,
                           const Perftools__Profiles__Sample *s)
{
    const char *kv[64][2];
    char buf[4096];
    size_t n = 0, len = 0;

    assert_true(s->n_label <= 64);
    for (size_t i = 0; i < s->n_label; i++) {
        kv[n][0] = p->string_table[s->label[i]->key];
        kv[n][1] = p->string_table[s->label[i]->str];
        /* profile_id names a span (exemplars), not a series */
        if (strcmp(kv[n][0], "profile_id"))
            n++;
    }
    qsort(kv, n, sizeof(kv[0]), cmp_label);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < 2; j++) {
            size_t l = strlen(kv[i][j]);
            assert_true(len + l + 1 <= sizeof(buf));
            memcpy(buf + len, kv[i][j], l);
            len += l;
            buf[len++] = (char)0xff;
        }
    return xxh64(buf, len);
}

struct group {
    char type[128]; /* the id with _ for : as in the file names */
    uint64_t hash;
    struct fnvals f;
    bool matched;
};

static struct group *group_get(struct group **g, size_t *n, const char *type, uint64_t hash)
{
    for (size_t i = 0; i < *n; i++)
        if ((*g)[i].hash == hash && !strcmp((*g)[i].type, type))
            return &(*g)[i];
    *g = realloc(*g, (*n + 1) * sizeof(**g));
    assert_non_null(*g);
    struct group *x = &(*g)[(*n)++];
    memset(x, 0, sizeof(*x));
    snprintf(x->type, sizeof(x->type), "%s", type);
    x->hash = hash;
    return x;
}

static uint8_t *load(const char *path, size_t *len)
{
    char *b = NULL;
    int r = read_file(path, MAX_FILE, &b, len);
    if (r)
        fail_msg("%s: %s", path, strerror(-r));
    return (uint8_t *)b;
}

static Perftools__Profiles__Profile *load_pprof(const char *path)
{
    size_t len, rawlen;
    uint8_t *b = load(path, &len), *raw = NULL;
    assert_int_equal(gzip_decompress(b, len, MAX_FILE, &raw, &rawlen), 0);
    free(b);
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, rawlen, raw);
    free(raw);
    assert_non_null(p);
    return p;
}

/* Equal function sets (non-zero values) and values; prints the first
 * difference. */
static bool same(const struct fnvals *a, const struct fnvals *b, const char *what)
{
    for (int pass = 0; pass < 2; pass++) {
        const struct fnvals *x = pass ? b : a, *y = pass ? a : b;
        for (uint32_t i = 0; i < x->names.n; i++) {
            const char *n = intern_str_get(&x->names, i);
            uint32_t j = intern_find(&y->names, n, strlen(n));
            int64_t ys = j == INTERN_NONE ? 0 : y->self[j], yt = j == INTERN_NONE ? 0 : y->total[j];
            if (x->self[i] != ys || x->total[i] != yt) {
                print_error("%s: %s: %s self %lld total %lld, %s self %lld total %lld\n", what, n,
                            pass ? "expected" : "converted", (long long)x->self[i],
                            (long long)x->total[i], pass ? "converted" : "expected", (long long)ys,
                            (long long)yt);
                return false;
            }
        }
    }
    return true;
}

static void check_recording(const char *name)
{
    char path[2048], lpath[1024], err[256] = "";
    size_t len, llen = 0;
    struct jfr_result *r = NULL;
    struct jfr_opts o = {.sample_rate = 100};

    snprintf(path, sizeof(path), "%s/%s", corpus(), name);
    uint8_t *b = load(path, &len), *lb = NULL;
    snprintf(lpath, sizeof(lpath), "%s/%.*s.labels.pb.gz", corpus(),
             (int)(strlen(name) - strlen(".jfr.gz")), name);
    if (access(lpath, R_OK) == 0)
        lb = load(lpath, &llen);
    int rc = jfr_convert(b, len, lb, llen, &o, &r, err, sizeof(err));
    if (rc)
        fail_msg("%s: %d %s", name, rc, err);

    struct group *g = NULL;
    size_t ng = 0;
    for (size_t i = 0; i < r->n; i++) {
        const Perftools__Profiles__Profile *p = r->profiles[i].pprof;
        for (size_t t = 0; t < p->n_sample_type; t++) {
            char id[128];
            assert_int_equal(jfr_profile_type_id(&r->profiles[i], t, id, sizeof(id)), 0);
            for (char *c = id; *c; c++)
                if (*c == ':')
                    *c = '_';
            for (size_t s = 0; s < p->n_sample; s++) {
                /* the reference's files: the whole profile under the
                 * empty label set, and each labelled subset apart */
                add_sample(&group_get(&g, &ng, id, EMPTY_SET)->f, p, p->sample[s], t);
                uint64_t h = label_hash(p, p->sample[s]);
                if (h != EMPTY_SET)
                    add_sample(&group_get(&g, &ng, id, h)->f, p, p->sample[s], t);
            }
        }
    }

    /* every expected file is one of the groups, equal per function */
    DIR *d = opendir(corpus());
    char edir[1024];
    snprintf(edir, sizeof(edir), "%s/expected", corpus());
    closedir(d);
    d = opendir(edir);
    assert_non_null(d);
    struct dirent *de;
    size_t nexp = 0, nbad = 0;
    while ((de = readdir(d))) {
        size_t nl = strlen(name);
        if (strncmp(de->d_name, name, nl) || de->d_name[nl] != '.')
            continue;
        char type[128];
        unsigned long long hash;
        const char *rest = de->d_name + nl + 1, *dot = strchr(rest, '.');
        assert_non_null(dot);
        snprintf(type, sizeof(type), "%.*s", (int)(dot - rest), rest);
        assert_int_equal(sscanf(dot + 1, "%llu.pb.gz", &hash), 1);
        snprintf(path, sizeof(path), "%s/%s", edir, de->d_name);
        Perftools__Profiles__Profile *p = load_pprof(path);
        struct fnvals want = {0};
        assert_int_equal(p->n_sample_type, 1);
        for (size_t s = 0; s < p->n_sample; s++)
            add_sample(&want, p, p->sample[s], 0);
        struct group *have = group_get(&g, &ng, type, hash);
        have->matched = true;
        if (!same(&have->f, &want, de->d_name))
            nbad++;
        nexp++;
        fn_free(&want);
        perftools__profiles__profile__free_unpacked(p, NULL);
    }
    closedir(d);
    for (size_t i = 0; i < ng; i++) {
        if (!g[i].matched) {
            print_error("%s: converted %s label set %llu has no expected file\n", name, g[i].type,
                        (unsigned long long)g[i].hash);
            nbad++;
        }
        fn_free(&g[i].f);
    }
    print_message("%s: %zu expected profiles, %zu converted, %zu differ\n", name, nexp, ng, nbad);
    assert_true(nexp > 0);
    assert_int_equal(nbad, 0);
    free(g);
    free(b);
    free(lb);
    jfr_result_free(r);
}

static void test_corpus(void **state)
{
    if (!corpus_present())
        skip();
    DIR *d = opendir(corpus());
    struct dirent *de;
    size_t n = 0;
    assert_non_null(d);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 7 && !strcmp(de->d_name + l - 7, ".jfr.gz")) {
            check_recording(de->d_name);
            n++;
        }
    }
    closedir(d);
    assert_true(n >= 4);
}

static int convert(const uint8_t *b, size_t len, const uint8_t *lb, size_t llen, char *err,
                   size_t errlen);

/* ---- a hand-built recording (tests/data/jfr/gen_small.py) ---------------- */

static const struct jfr_profile *kind_of(const struct jfr_result *r, enum jfr_kind k)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->profiles[i].kind == k)
            return &r->profiles[i];
    return NULL;
}

static const char *label_of(const Perftools__Profiles__Profile *p,
                            const Perftools__Profiles__Sample *s, const char *key)
{
    for (size_t i = 0; i < s->n_label; i++)
        if (!strcmp(p->string_table[s->label[i]->key], key))
            return p->string_table[s->label[i]->str];
    return NULL;
}

/* Every kind's Pyroscope id is the id the store gives its sample types
 * back (seg_type_id, docs/format.md §5): a received recording reads back
 * under Pyroscope's names, mutex and block apart. */
static void test_type_ids_as_stored(void **state)
{
    size_t checked = 0;
    for (int k = 0; k < JFR_NKINDS; k++) {
        struct jfr_profile p = {.kind = (enum jfr_kind)k};
        char id[256], part[5][64], back[256];
        for (size_t i = 0; jfr_profile_type_id(&p, i, id, sizeof(id)) == 0; i++) {
            assert_int_equal(sscanf(id, "%63[^:]:%63[^:]:%63[^:]:%63[^:]:%63s", part[0], part[1],
                                    part[2], part[3], part[4]),
                             5);
            assert_int_equal(seg_type_id(back, sizeof(back), part[1], part[2], part[3], part[4]),
                             0);
            if (strcmp(back, id))
                fail_msg("kind %d type %zu: JFR names it %s, the store %s", k, i, id, back);
            checked++;
        }
    }
    assert_true(checked >= JFR_NKINDS);
}

static void test_small(void **state)
{
    char err[256] = "";
    size_t len, llen;
    struct jfr_result *r = NULL;
    uint8_t *b = load("tests/data/jfr/small.jfr", &len);
    uint8_t *lb = load("tests/data/jfr/small.labels.pb", &llen);

    int rc = jfr_convert(b, len, lb, llen, NULL, &r, err, sizeof(err));
    if (rc)
        fail_msg("small.jfr: %s", err);
    assert_string_equal(r->event, "cpu");
    assert_int_equal(r->stats.chunks, 1);
    assert_int_equal(r->stats.events, 10);
    assert_int_equal(r->n, 3);

    /* CPU: 5 running samples (the sleeping one is not CPU) x 1e7 ns */
    const struct jfr_profile *cpu = kind_of(r, JFR_CPU);
    assert_non_null(cpu);
    assert_string_equal(cpu->name, "process_cpu");
    char id[128];
    assert_int_equal(jfr_profile_type_id(cpu, 0, id, sizeof(id)), 0);
    assert_string_equal(id, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
    struct fnvals f = {0};
    const Perftools__Profiles__Profile *p = cpu->pprof;
    assert_int_equal(p->n_sample, 2);
    for (size_t i = 0; i < p->n_sample; i++) {
        add_sample(&f, p, p->sample[i], 0);
        const Perftools__Profiles__Sample *s = p->sample[i];
        const char *leaf = fn_name(p, s->location_id[0]);
        if (!strcmp(leaf, "App.fib")) {
            assert_int_equal(s->value[0], 30000000);
            assert_string_equal(label_of(p, s, "thread_name"), "worker-1");
            assert_null(label_of(p, s, "profile_id"));
        } else {
            /* the lambda class merged as jfr-parser merges it */
            assert_string_equal(leaf, "App$$Lambda_.run");
            assert_int_equal(s->value[0], 20000000);
            assert_string_equal(label_of(p, s, "thread_name"), "worker-2");
            assert_string_equal(label_of(p, s, "profile_id"), "0000000000000abc");
            assert_string_equal(label_of(p, s, "span_name"), "GET /fib");
        }
    }
    uint32_t main_id = intern_find(&f.names, "App.main", 8);
    assert_int_not_equal(main_id, INTERN_NONE);
    assert_int_equal(f.total[main_id], 50000000);
    assert_int_equal(f.self[main_id], 0);
    fn_free(&f);

    /* allocations: 2 objects, 300 bytes */
    const struct jfr_profile *tlab = kind_of(r, JFR_ALLOC_IN_TLAB);
    assert_non_null(tlab);
    assert_int_equal(jfr_profile_type_id(tlab, 1, id, sizeof(id)), 0);
    assert_string_equal(id, "memory:alloc_in_new_tlab_bytes:bytes:space:bytes");
    assert_int_equal(tlab->pprof->n_sample, 1);
    assert_int_equal(tlab->pprof->sample[0]->value[0], 2);
    assert_int_equal(tlab->pprof->sample[0]->value[1], 300);

    /* the lock: 5000 ticks at 2e9 ticks/s are 2500 ns */
    const struct jfr_profile *mu = kind_of(r, JFR_LOCK);
    assert_non_null(mu);
    assert_string_equal(mu->name, "mutex");
    assert_int_equal(mu->pprof->sample[0]->value[0], 1);
    assert_int_equal(mu->pprof->sample[0]->value[1], 2500);
    assert_string_equal(fn_name(mu->pprof, mu->pprof->sample[0]->location_id[0]),
                        "java/lang/Object.wait");
    jfr_result_free(r);

    /* without the labels part: the same values, no labels */
    assert_int_equal(jfr_convert(b, len, NULL, 0, NULL, &r, err, sizeof(err)), 0);
    for (size_t i = 0; i < r->n; i++)
        for (size_t s = 0; s < r->profiles[i].pprof->n_sample; s++)
            assert_int_equal(r->profiles[i].pprof->sample[s]->n_label, 0);
    jfr_result_free(r);

    /* a map key given twice in the labels: the last entry wins (protobuf's
     * rule for maps), string 2 now "worker-x" */
    uint8_t *lb2 = malloc(llen + 16);
    const uint8_t again[] = {0x12, 0x0c, 0x08, 0x02, 0x12, 0x08, 'w',
                             'o',  'r',  'k',  'e',  'r',  '-',  'x'};
    memcpy(lb2, lb, llen);
    memcpy(lb2 + llen, again, sizeof(again));
    rc = jfr_convert(b, len, lb2, llen + sizeof(again), NULL, &r, err, sizeof(err));
    if (rc)
        fail_msg("labels with a repeated key: %s", err);
    p = kind_of(r, JFR_CPU)->pprof;
    size_t nx = 0;
    for (size_t i = 0; i < p->n_sample; i++) {
        const char *t = label_of(p, p->sample[i], "thread_name");
        nx += t && !strcmp(t, "worker-x");
    }
    assert_int_equal(nx, 1);
    jfr_result_free(r);
    free(lb2);

    /* a checkpoint whose delta leads forwards (to its own bytes) */
    uint64_t cpoff = 0;
    for (int i = 0; i < 8; i++)
        cpoff = cpoff << 8 | b[16 + i];
    assert_true(cpoff + 8 < len);
    assert_int_equal(b[cpoff + 4], 1); /* type: checkpoint */
    assert_int_equal(b[cpoff + 7], 0); /* delta 0: the only one */
    b[cpoff + 7] = 3;
    assert_int_equal(convert(b, len, NULL, 0, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "checkpoint delta"));
    b[cpoff + 7] = 0;

    /* every truncation, with the chunk size saying so, refused */
    for (size_t cut = 68; cut < len; cut++) {
        uint8_t *c = malloc(len);
        memcpy(c, b, cut);
        for (int i = 0; i < 8; i++)
            c[8 + i] = (uint8_t)((uint64_t)cut >> (56 - 8 * i));
        assert_int_equal(convert(c, cut, NULL, 0, err, sizeof(err)), -EBADMSG);
        free(c);
    }
    free(b);
    free(lb);
}

/* ---- bad input ---------------------------------------------------------- */

static int convert(const uint8_t *b, size_t len, const uint8_t *lb, size_t llen, char *err,
                   size_t errlen)
{
    struct jfr_result *r = NULL;
    int rc = jfr_convert(b, len, lb, llen, NULL, &r, err, errlen);
    if (rc)
        assert_null(r);
    else
        assert_non_null(r);
    jfr_result_free(r);
    return rc;
}

static uint8_t *raw_recording(const char *name, size_t *len)
{
    char path[1024];
    size_t glen;
    uint8_t *raw = NULL;
    snprintf(path, sizeof(path), "%s/%s", corpus(), name);
    uint8_t *g = load(path, &glen);
    assert_int_equal(gzip_decompress(g, glen, MAX_FILE, &raw, len), 0);
    free(g);
    return raw;
}

static void test_garbage(void **state)
{
    char err[256];
    const uint8_t junk[] = "not a flight recording at all, just text, long enough to hold a "
                           "chunk header";

    assert_int_equal(convert(junk, 0, NULL, 0, err, sizeof(err)), -EBADMSG);
    assert_int_equal(convert(junk, sizeof(junk), NULL, 0, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "FLR"));
    /* a header alone: its sizes point past the end */
    uint8_t h[68] = {'F', 'L', 'R', 0, 0, 2, 0, 0};
    h[15] = 200; /* size 200 */
    assert_int_equal(convert(h, sizeof(h), NULL, 0, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "truncated"));
    /* a gzip header and nothing else */
    const uint8_t gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1};
    assert_int_equal(convert(gz, sizeof(gz), NULL, 0, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "gzip"));
}

static void test_truncated(void **state)
{
    char err[256];
    size_t len;
    if (!corpus_present())
        skip();
    uint8_t *raw = raw_recording("kafka-cpu.jfr.gz", &len);
    assert_int_equal(convert(raw, len, NULL, 0, err, sizeof(err)), 0);
    /* every cut in the first 1 KiB and the last 8 KiB (the metadata and
     * pools), and every 97th byte between */
    size_t n = 0;
    for (size_t cut = 0; cut < len; cut += (cut < 1024 || len - cut < 8192) ? 1 : 97) {
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, raw, cut);
        err[0] = 0;
        assert_int_equal(convert(c, cut, NULL, 0, err, sizeof(err)), -EBADMSG);
        assert_true(strlen(err) > 0);
        /* the same cut with the chunk size saying so: the parser goes on
         * until the offsets, pools or events run out */
        if (cut >= 68) {
            for (int i = 0; i < 8; i++)
                c[8 + i] = (uint8_t)((uint64_t)cut >> (56 - 8 * i));
            int rc = convert(c, cut, NULL, 0, err, sizeof(err));
            assert_true(rc == 0 || rc == -EBADMSG);
        }
        free(c);
        n++;
    }
    print_message("%zu truncations of %zu bytes refused\n", n, len);
    free(raw);
}

static void test_flipped(void **state)
{
    char err[256];
    size_t len;
    if (!corpus_present())
        skip();
    uint8_t *raw = raw_recording("kafka-cpu.jfr.gz", &len);
    uint64_t x = 88172645463325252ULL; /* xorshift: the same bytes every run */
    size_t ok = 0, refused = 0;
    for (int i = 0; i < 1000; i++) {
        uint8_t *c = malloc(len);
        memcpy(c, raw, len);
        for (int k = 0; k < 4; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c[x % len] ^= (uint8_t)(1u << (x >> 61));
        }
        int rc = convert(c, len, NULL, 0, err, sizeof(err));
        assert_true(rc == 0 || rc == -EBADMSG);
        rc ? refused++ : ok++;
        free(c);
    }
    print_message("1000 corrupted copies: %zu converted, %zu refused\n", ok, refused);
    free(raw);
}

static int64_t cpu_total(const struct jfr_result *r)
{
    int64_t t = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->profiles[i].kind == JFR_CPU)
            for (size_t s = 0; s < r->profiles[i].pprof->n_sample; s++)
                t += r->profiles[i].pprof->sample[s]->value[0];
    return t;
}

/* Chunks follow each other (a long recording, or files concatenated): each
 * is read with its own metadata and pools, their samples add up. */
static void test_chunks(void **state)
{
    char err[256];
    size_t la, lb;
    struct jfr_result *r;
    if (!corpus_present())
        skip();
    uint8_t *a = raw_recording("kafka-cpu.jfr.gz", &la);
    uint8_t *b = raw_recording("dump1.jfr.gz", &lb);
    uint8_t *ab = malloc(la + lb);
    memcpy(ab, a, la);
    memcpy(ab + la, b, lb);
    int64_t ta, tb;
    assert_int_equal(jfr_convert(a, la, NULL, 0, NULL, &r, err, sizeof(err)), 0);
    ta = cpu_total(r);
    assert_int_equal(r->stats.chunks, 1);
    jfr_result_free(r);
    assert_int_equal(jfr_convert(b, lb, NULL, 0, NULL, &r, err, sizeof(err)), 0);
    tb = cpu_total(r);
    jfr_result_free(r);
    assert_int_equal(jfr_convert(ab, la + lb, NULL, 0, NULL, &r, err, sizeof(err)), 0);
    assert_int_equal(r->stats.chunks, 2);
    assert_true(ta > 0 && tb > 0);
    assert_int_equal(cpu_total(r), ta + tb);
    jfr_result_free(r);
    /* a second chunk cut short is an error, not the first chunk alone */
    assert_int_equal(convert(ab, la + 100, NULL, 0, err, sizeof(err)), -EBADMSG);
    free(a);
    free(b);
    free(ab);
}

static void test_bad_labels(void **state)
{
    char err[256], path[1024];
    size_t len, llen;
    if (!corpus_present())
        skip();
    snprintf(path, sizeof(path), "%s/dump1.jfr.gz", corpus());
    uint8_t *b = load(path, &len);
    snprintf(path, sizeof(path), "%s/dump1.labels.pb.gz", corpus());
    uint8_t *lb = load(path, &llen);
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(convert(b, len, junk, sizeof(junk), err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "labels"));
    assert_int_equal(convert(b, len, lb, llen - 5, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "labels"));
    assert_int_equal(convert(b, len, lb, llen, err, sizeof(err)), 0);
    free(b);
    free(lb);
}

static void test_options(void **state)
{
    char err[256], path[1024];
    size_t len;
    struct jfr_result *r;
    if (!corpus_present())
        skip();
    snprintf(path, sizeof(path), "%s/kafka-cpu.jfr.gz", corpus());
    uint8_t *b = load(path, &len);
    /* sample_rate sets each CPU sample's nanoseconds */
    int64_t tot[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        struct jfr_opts o = {.sample_rate = i ? 20 : 100};
        assert_int_equal(jfr_convert(b, len, NULL, 0, &o, &r, err, sizeof(err)), 0);
        assert_int_equal(r->profiles[0].kind, JFR_CPU);
        for (size_t s = 0; s < r->profiles[0].pprof->n_sample; s++)
            tot[i] += r->profiles[0].pprof->sample[s]->value[0];
        jfr_result_free(r);
    }
    assert_true(tot[0] > 0);
    assert_int_equal(tot[1], tot[0] * 5);
    /* max_bytes caps the decompressed size */
    struct jfr_opts small = {.max_bytes = 4096};
    assert_int_equal(jfr_convert(b, len, NULL, 0, &small, &r, err, sizeof(err)), -EFBIG);
    assert_null(r);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_flipped),
        cmocka_unit_test(test_bad_labels),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_type_ids_as_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
