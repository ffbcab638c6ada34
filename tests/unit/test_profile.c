/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exporter/profile: builds profiles from hand-made symbolizer results,
 * encodes them, and decodes them again with protobuf-c's own unpacker to
 * check every field. With STOKE_TEST_OUT set, also leaves pprof + folded
 * pairs (mixed, bench) in $STOKE_TEST_OUT/profile/ for
 * tests/integration/check_pprof.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "exporter/profile.h"
#include "profile.pb-c.h"

#define PERIOD_NS 52631578ULL /* 19 Hz */
#define START_NS  1700000000000000000ULL
#define DUR_NS    10000000000ULL

typedef Perftools__Profiles__Profile Profile;

/* ---- helpers ------------------------------------------------------------ */

static uint8_t *gunzip(const uint8_t *in, size_t inlen, size_t *outlen)
{
    z_stream zs = {0};
    size_t cap = inlen * 4 + 1024;
    uint8_t *out = malloc(cap);
    int zr;

    assert_non_null(out);
    assert_int_equal(inflateInit2(&zs, 31), Z_OK);
    zs.next_in = (uint8_t *)in;
    zs.avail_in = (uInt)inlen;
    do {
        if (zs.total_out == cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        zs.next_out = out + zs.total_out;
        zs.avail_out = (uInt)(cap - zs.total_out);
        zr = inflate(&zs, Z_NO_FLUSH);
        assert_true(zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR);
    } while (zr != Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0); /* exactly one gzip member */
    *outlen = zs.total_out;
    inflateEnd(&zs);
    return out;
}

static Profile *decode(const struct profile *p)
{
    uint8_t *gz, *raw;
    size_t gzlen, rawlen;
    Profile *d;

    assert_int_equal(profile_encode_pprof_gz(p, &gz, &gzlen), 0);
    assert_true(gzlen > 18);
    assert_int_equal(gz[0], 0x1f); /* gzip magic */
    assert_int_equal(gz[1], 0x8b);
    raw = gunzip(gz, gzlen, &rawlen);
    d = perftools__profiles__profile__unpack(NULL, rawlen, raw);
    assert_non_null(d);
    free(raw);
    free(gz);
    return d;
}

static const char *S(const Profile *d, int64_t i)
{
    assert_true(i >= 0 && (size_t)i < d->n_string_table);
    return d->string_table[i];
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *b;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = calloc(1, (size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return b;
}

static char *folded_of(const struct profile *p)
{
    char path[] = "/tmp/stoke_test_folded_XXXXXX";
    int fd = mkstemp(path);
    char *s;

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(profile_write_folded(p, path), 0);
    s = slurp(path);
    unlink(path);
    return s;
}

/* Writes the pair for the integration check when asked to. */
static void maybe_write_pair(const struct profile *p, const char *stem)
{
    const char *dir = getenv("STOKE_TEST_OUT");
    char path[4096];

    if (!dir || !*dir)
        return;
    snprintf(path, sizeof(path), "%s/profile", dir);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/profile/%s.pb.gz", dir, stem);
    assert_int_equal(profile_write_pprof_gz(p, path), 0);
    snprintf(path, sizeof(path), "%s/profile/%s.folded", dir, stem);
    assert_int_equal(profile_write_folded(p, path), 0);
}

static struct sym_result user(const char *path, const char *bid, uint64_t off)
{
    struct sym_result r = {.kind = SYM_USER, .mapping = path, .build_id = bid, .file_offset = off};
    return r;
}

static void add_frame(struct sym_result *r, const char *fn, const char *file, uint32_t line)
{
    r->frames[r->nframes++] = (struct sym_frame){.function = fn, .file = file, .line = line};
}

/* ---- the hand-made profile ---------------------------------------------- */

struct fixture {
    struct profile *p;
    uint32_t l_inl, l_main, l_foo, l_sys, l_entry, l_weird;
};

static struct label L1v[] = {{(char *)"service_name", (char *)"svc"},
                             {(char *)"thread_name", (char *)"worker"}};
static struct label L1w[] = {{(char *)"service_name", (char *)"svc"},
                             {(char *)"thread_name", (char *)"worker"}};
static struct label L2v[] = {{(char *)"service_name", (char *)"svc"},
                             {(char *)"thread_name", (char *)"io"}};

static void build_fixture(struct fixture *f)
{
    struct sym_result r;
    /* separate arrays with equal content: merging must compare content */
    struct label_set l1 = {L1v, 2, 2}, l1b = {L1w, 2, 2}, l2 = {L2v, 2, 2};

    f->p = profile_new("svc", START_NS, DUR_NS, PERIOD_NS);
    assert_non_null(f->p);

    /* process 1 */
    r = user("/usr/bin/app", "aabbccdd", 0x1100);
    add_frame(&r, "inlined_helper", "helper.h", 10);
    add_frame(&r, "compute", "app.c", 42);
    f->l_inl = profile_location(f->p, &r);
    r = user("/usr/bin/app", "aabbccdd", 0x1200);
    add_frame(&r, "main", "app.c", 7);
    f->l_main = profile_location(f->p, &r);
    r = user("/usr/lib/libfoo.so.1", "", 0x5a0);
    f->l_foo = profile_location(f->p, &r);
    r = (struct sym_result){.kind = SYM_KERNEL,
                            .mapping = "[kernel.kallsyms]",
                            .build_id = "",
                            .file_offset = 0xffffffff81001234ULL};
    add_frame(&r, "do_syscall_64", NULL, 0);
    f->l_sys = profile_location(f->p, &r);
    r.file_offset = 0xffffffff82000010ULL;
    r.frames[0].function = "entry_SYSCALL_64";
    f->l_entry = profile_location(f->p, &r);

    /* process 2: same binary seen through another path (a container): the
     * same answer is the same location, and so is another address of the
     * same line with the same inline chain (locations are source positions
     * once resolved) */
    r = user("/proc/77/root/usr/bin/app", "aabbccdd", 0x1100);
    add_frame(&r, "inlined_helper", "helper.h", 10);
    add_frame(&r, "compute", "app.c", 42);
    assert_int_equal(profile_location(f->p, &r), f->l_inl);
    r.file_offset = 0x1108;
    assert_int_equal(profile_location(f->p, &r), f->l_inl);
    r = user("/proc/77/root/usr/bin/app", "aabbccdd", 0x1300);
    add_frame(&r, "weird;name\nx", "app.c", 99);
    f->l_weird = profile_location(f->p, &r);

    uint32_t s1[] = {f->l_sys, f->l_entry, f->l_foo, f->l_inl, f->l_main};
    uint32_t s2[] = {f->l_inl, f->l_main};
    uint32_t s3[] = {f->l_weird, f->l_main};
    assert_int_equal(profile_add(f->p, s1, 5, &l1, 3), 0);
    assert_int_equal(profile_add(f->p, s1, 5, &l1b, 2), 0); /* merges */
    assert_int_equal(profile_add(f->p, s1, 5, &l2, 1), 0);
    assert_int_equal(profile_add(f->p, s2, 2, &l1, 4), 0);
    assert_int_equal(profile_add(f->p, s3, 2, NULL, 1), 0);
    assert_int_equal(profile_add(f->p, s3, 2, NULL, 0), 0); /* no row */
}

static void test_location_dedup(void **state)
{
    struct fixture f;

    build_fixture(&f);
    /* ids are dense and first-seen ordered */
    assert_int_equal(f.l_inl, 1);
    assert_int_equal(f.l_main, 2);
    assert_int_equal(f.l_foo, 3);
    assert_int_equal(f.l_sys, 4);
    assert_int_equal(f.l_entry, 5);
    assert_int_equal(f.l_weird, 6);
    assert_int_equal(profile_total_samples(f.p), 11);
    assert_int_equal(profile_nsamples(f.p), 4);
    profile_free(f.p);
}

static void test_add_rejects_bad_location(void **state)
{
    struct fixture f;
    uint32_t bad0[] = {1, 0}, bad7[] = {7};

    build_fixture(&f);
    assert_int_equal(profile_add(f.p, bad0, 2, NULL, 1), -EINVAL);
    assert_int_equal(profile_add(f.p, bad7, 1, NULL, 1), -EINVAL);
    assert_int_equal(profile_total_samples(f.p), 11);
    assert_int_equal(profile_nsamples(f.p), 4);
    assert_int_equal(profile_location(f.p, NULL), 0);
    profile_free(f.p);
}

static void assert_vt(const Profile *d, const Perftools__Profiles__ValueType *vt, const char *type,
                      const char *unit)
{
    assert_non_null(vt);
    assert_string_equal(S(d, vt->type), type);
    assert_string_equal(S(d, vt->unit), unit);
}

static void assert_line(const Profile *d, const Perftools__Profiles__Line *ln, const char *fn,
                        const char *file, int64_t line)
{
    const Perftools__Profiles__Function *f;

    assert_true(ln->function_id >= 1 && ln->function_id <= d->n_function);
    f = d->function[ln->function_id - 1];
    assert_int_equal(f->id, ln->function_id);
    assert_string_equal(S(d, f->name), fn);
    assert_string_equal(S(d, f->system_name), fn);
    assert_string_equal(S(d, f->filename), file);
    assert_int_equal(ln->line, line);
}

static void assert_labels(const Profile *d, const Perftools__Profiles__Sample *s,
                          const char *thread)
{
    assert_int_equal(s->n_label, thread ? 2 : 0);
    if (!thread)
        return;
    assert_string_equal(S(d, s->label[0]->key), "service_name");
    assert_string_equal(S(d, s->label[0]->str), "svc");
    assert_string_equal(S(d, s->label[1]->key), "thread_name");
    assert_string_equal(S(d, s->label[1]->str), thread);
    assert_int_equal(s->label[0]->num, 0);
    assert_int_equal(s->label[1]->num_unit, 0);
}

static void assert_sample(const Profile *d, size_t i, const uint64_t *locs, size_t n, int64_t count,
                          const char *thread)
{
    const Perftools__Profiles__Sample *s = d->sample[i];

    assert_int_equal(s->n_location_id, n);
    for (size_t j = 0; j < n; j++)
        assert_int_equal(s->location_id[j], locs[j]);
    assert_int_equal(s->n_value, 2);
    assert_int_equal(s->value[0], count);
    assert_int_equal(s->value[1], count * (int64_t)PERIOD_NS);
    assert_labels(d, s, thread);
}

static void test_pprof_fields(void **state)
{
    struct fixture f;
    Profile *d;
    const Perftools__Profiles__Mapping *m;
    const Perftools__Profiles__Location *l;

    build_fixture(&f);
    d = decode(f.p);

    /* header */
    assert_true(d->n_string_table > 0);
    assert_string_equal(d->string_table[0], "");
    assert_int_equal(d->n_sample_type, 2);
    assert_vt(d, d->sample_type[0], "samples", "count");
    assert_vt(d, d->sample_type[1], "cpu", "nanoseconds");
    assert_string_equal(S(d, d->default_sample_type), "cpu");
    assert_vt(d, d->period_type, "cpu", "nanoseconds");
    assert_int_equal(d->period, PERIOD_NS);
    assert_int_equal(d->time_nanos, START_NS);
    assert_int_equal(d->duration_nanos, DUR_NS);
    assert_int_equal(d->n_comment, 1);
    assert_string_equal(S(d, d->comment[0]), "service_name=svc");
    /* strings are deduplicated */
    for (size_t i = 0; i < d->n_string_table; i++)
        for (size_t j = i + 1; j < d->n_string_table; j++)
            assert_string_not_equal(d->string_table[i], d->string_table[j]);

    /* mappings: app (one for both processes), libfoo, kernel */
    assert_int_equal(d->n_mapping, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(d->mapping[i]->id, i + 1);
        assert_int_equal(d->mapping[i]->memory_start, 0);
        assert_int_equal(d->mapping[i]->memory_limit, UINT64_MAX);
        assert_int_equal(d->mapping[i]->file_offset, 0);
    }
    m = d->mapping[0];
    assert_string_equal(S(d, m->filename), "/usr/bin/app");
    assert_string_equal(S(d, m->build_id), "aabbccdd");
    assert_true(m->has_functions && m->has_filenames && m->has_line_numbers &&
                m->has_inline_frames);
    m = d->mapping[1];
    assert_string_equal(S(d, m->filename), "/usr/lib/libfoo.so.1");
    assert_string_equal(S(d, m->build_id), "");
    assert_false(m->has_functions || m->has_filenames || m->has_line_numbers ||
                 m->has_inline_frames);
    m = d->mapping[2];
    assert_string_equal(S(d, m->filename), "[kernel.kallsyms]");
    assert_true(m->has_functions);
    assert_false(m->has_filenames || m->has_line_numbers || m->has_inline_frames);

    /* locations */
    assert_int_equal(d->n_location, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(d->location[i]->id, i + 1);
    /* resolved locations are source positions: no address; unresolved
     * ones keep their file offset for later symbolization */
    l = d->location[f.l_inl - 1];
    assert_int_equal(l->mapping_id, 1);
    assert_int_equal(l->address, 0);
    assert_int_equal(l->n_line, 2);
    assert_line(d, l->line[0], "inlined_helper", "helper.h", 10); /* innermost first */
    assert_line(d, l->line[1], "compute", "app.c", 42);
    l = d->location[f.l_main - 1];
    assert_int_equal(l->mapping_id, 1);
    assert_int_equal(l->address, 0);
    assert_int_equal(l->n_line, 1);
    assert_line(d, l->line[0], "main", "app.c", 7);
    l = d->location[f.l_foo - 1];
    assert_int_equal(l->mapping_id, 2);
    assert_int_equal(l->address, 0x5a0);
    assert_int_equal(l->n_line, 0);
    l = d->location[f.l_sys - 1];
    assert_int_equal(l->mapping_id, 3);
    assert_int_equal(l->address, 0);
    assert_line(d, l->line[0], "do_syscall_64", "", 0);
    l = d->location[f.l_entry - 1];
    assert_int_equal(l->address, 0);
    assert_line(d, l->line[0], "entry_SYSCALL_64", "", 0);
    l = d->location[f.l_weird - 1];
    assert_int_equal(l->mapping_id, 1); /* process 2's path folded into the build-id */
    assert_line(d, l->line[0], "weird;name\nx", "app.c", 99); /* pprof keeps names */

    /* functions: one per (name, file); "main" and "compute" share app.c */
    assert_int_equal(d->n_function, 6);
    for (size_t i = 0; i < d->n_function; i++)
        assert_int_equal(d->function[i]->id, i + 1);

    /* samples: identical stack + labels merged, different labels not */
    assert_int_equal(d->n_sample, 4);
    const uint64_t s1[] = {4, 5, 3, 1, 2}, s2[] = {1, 2}, s3[] = {6, 2};
    assert_sample(d, 0, s1, 5, 5, "worker");
    assert_sample(d, 1, s1, 5, 1, "io");
    assert_sample(d, 2, s2, 2, 4, "worker");
    assert_sample(d, 3, s3, 2, 1, NULL);

    perftools__profiles__profile__free_unpacked(d, NULL);
    maybe_write_pair(f.p, "mixed");
    profile_free(f.p);
}

static void test_folded_exact(void **state)
{
    struct fixture f;
    char *s;

    build_fixture(&f);
    s = folded_of(f.p);
    assert_string_equal(s, "main;compute;inlined_helper 4\n"
                           "main;compute;inlined_helper;libfoo.so.1+0x5a0;entry_SYSCALL_64;"
                           "do_syscall_64 6\n"
                           "main;weird_name_x 1\n");
    free(s);
    profile_free(f.p);
}

static void test_folded_merges_lookalike_stacks(void **state)
{
    struct profile *p = profile_new("svc", 0, 1, 1);
    struct sym_result a = user("/a/libx.so", "", 0x10), b = user("/b/libx.so", "", 0x10);
    uint32_t la, lb;
    char *s;

    la = profile_location(p, &a);
    lb = profile_location(p, &b);
    assert_int_not_equal(la, lb); /* different mappings: different locations */
    assert_int_equal(profile_add(p, &la, 1, NULL, 2), 0);
    assert_int_equal(profile_add(p, &lb, 1, NULL, 3), 0);
    assert_int_equal(profile_add(p, NULL, 0, NULL, 7), 0); /* both stacks lost */
    s = folded_of(p);
    /* both print as libx.so+0x10: one line, still summing to the total */
    assert_string_equal(s, "[unknown] 7\nlibx.so+0x10 5\n");
    assert_int_equal(profile_total_samples(p), 12);
    free(s);
    profile_free(p);
}

static void test_empty_profile(void **state)
{
    struct profile *p = profile_new(NULL, 5, 6, 7);
    Profile *d;
    char *s;

    assert_non_null(p);
    d = decode(p);
    assert_int_equal(d->n_sample, 0);
    assert_int_equal(d->n_location, 0);
    assert_int_equal(d->n_mapping, 0);
    assert_int_equal(d->period, 7);
    assert_string_equal(d->string_table[0], "");
    perftools__profiles__profile__free_unpacked(d, NULL);
    s = folded_of(p);
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(profile_total_samples(p), 0);
    profile_free(p);
    profile_free(NULL);
}

static void test_write_atomic_errors(void **state)
{
    struct profile *p = profile_new("svc", 0, 1, 1);

    assert_int_equal(profile_write_pprof_gz(p, "/nonexistent-dir/x.pb.gz"), -ENOENT);
    assert_int_equal(profile_write_folded(p, "/nonexistent-dir/x.folded"), -ENOENT);
    profile_free(p);
}

/* ---- size and speed ----------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

/* @nlocs locations over 40 binaries, a third of them with an inlined frame
 * and one in 20 unresolved, with C++-length names. */
static void make_locations(struct profile *p, uint32_t nlocs)
{
    char fn[128], inl[128], path[64], bid[48], file[64];

    for (uint32_t i = 0; i < nlocs; i++) {
        uint32_t bin = i % 40;
        struct sym_result r;

        snprintf(path, sizeof(path), "/usr/lib/x86_64-linux-gnu/lib%u.so", bin);
        snprintf(bid, sizeof(bid), "%08x%08x%08x%08x%08x", bin, bin * 7, 3u, 4u, 5u);
        snprintf(file, sizeof(file), "src/module_%u/file_%u.cc", bin, i % 97);
        snprintf(fn, sizeof(fn), "stoke::bench::Namespace%u::Class%u::method_%u(int, char const*)",
                 bin, i % 50, i);
        snprintf(inl, sizeof(inl), "std::vector<int, std::allocator<int> >::inlined_%u()", i % 300);
        r = user(path, bid, 0x1000 + (uint64_t)i * 16);
        if (i % 20 != 7) {
            if (i % 3 == 0)
                add_frame(&r, inl, "/usr/include/c++/12/bits/stl_vector.h", 100 + i % 50);
            add_frame(&r, fn, file, 1 + i % 1000);
        }
        assert_int_equal(profile_location(p, &r), i + 1);
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_large_roundtrip(void **state)
{
    const uint32_t NLOC = 3000, NSTACK = 100000;
    struct profile *p = profile_new("big", START_NS, DUR_NS, PERIOD_NS);
    struct label lv[2] = {{(char *)"service_name", (char *)"big"}, {(char *)"thread_name", NULL}};
    struct label_set ls = {lv, 2, 2};
    char tname[16];
    uint32_t stack[64];
    uint64_t want_total = 0;
    Profile *d;
    int64_t sum = 0;

    make_locations(p, NLOC);
    for (uint32_t i = 0; i < NSTACK; i++) {
        uint32_t depth = 2 + rnd() % 40;
        stack[0] = 1 + i % NLOC; /* stack[0..1] is unique per i */
        stack[1] = 1 + (i / NLOC) % NLOC;
        for (uint32_t j = 2; j < depth; j++)
            stack[j] = 1 + rnd() % NLOC;
        snprintf(tname, sizeof(tname), "t%u", i % 8);
        lv[1].value = tname;
        assert_int_equal(profile_add(p, stack, depth, &ls, 1 + i % 5), 0);
        want_total += 1 + i % 5;
    }
    assert_int_equal(profile_nsamples(p), NSTACK);
    assert_int_equal(profile_total_samples(p), want_total);

    d = decode(p);
    assert_int_equal(d->n_sample, NSTACK);
    assert_int_equal(d->n_location, NLOC);
    assert_int_equal(d->n_mapping, 40);
    for (size_t i = 0; i < d->n_sample; i++) {
        const Perftools__Profiles__Sample *s = d->sample[i];
        assert_int_equal(s->location_id[0], 1 + i % NLOC);
        assert_int_equal(s->value[0], 1 + i % 5);
        assert_int_equal(s->value[1], s->value[0] * (int64_t)PERIOD_NS);
        assert_int_equal(s->n_label, 2);
        snprintf(tname, sizeof(tname), "t%zu", i % 8);
        assert_string_equal(S(d, s->label[1]->str), tname);
        for (size_t j = 0; j < s->n_location_id; j++)
            assert_true(s->location_id[j] >= 1 && s->location_id[j] <= NLOC);
        sum += s->value[0];
    }
    assert_int_equal(sum, want_total);
    perftools__profiles__profile__free_unpacked(d, NULL);

    /* folded lines sum to the total too */
    char *s = folded_of(p), *line = s;
    uint64_t fsum = 0;
    size_t nlines = 0;
    while (*line) {
        char *nl = strchr(line, '\n'), *sp;
        assert_non_null(nl);
        *nl = '\0';
        sp = strrchr(line, ' ');
        assert_non_null(sp);
        fsum += strtoull(sp + 1, NULL, 10);
        nlines++;
        line = nl + 1;
    }
    assert_int_equal(fsum, want_total);
    assert_true(nlines <= NSTACK && nlines > NSTACK / 2);
    free(s);
    profile_free(p);
}

/* Realistic window: 5000 distinct stacks x depth 30 over 4000 locations. */
static void test_bench_encode(void **state)
{
    const int NSTACK = 5000, DEPTH = 30, RUNS = 5;
    struct profile *p = profile_new("bench", START_NS, DUR_NS, PERIOD_NS);
    struct label lv[1] = {{(char *)"service_name", (char *)"bench"}};
    struct label_set ls = {lv, 1, 1};
    uint32_t stack[30];
    double t0, t_add, t_enc = 1e18, t_fold;
    uint8_t *gz;
    size_t gzlen = 0;

    make_locations(p, 4000);
    t0 = now_ms();
    for (int i = 0; i < NSTACK; i++) {
        for (int j = 0; j < DEPTH; j++)
            stack[j] = 1 + rnd() % 4000;
        assert_int_equal(profile_add(p, stack, DEPTH, &ls, 1 + rnd() % 20), 0);
    }
    t_add = now_ms() - t0;
    for (int r = 0; r < RUNS; r++) {
        t0 = now_ms();
        assert_int_equal(profile_encode_pprof_gz(p, &gz, &gzlen), 0);
        t0 = now_ms() - t0;
        if (t0 < t_enc)
            t_enc = t0;
        free(gz);
    }
    t0 = now_ms();
    free(folded_of(p));
    t_fold = now_ms() - t0;
    print_message("bench: %d stacks x %d: add %.2f ms, encode+gzip %.2f ms (best of %d), "
                  "%zu bytes gz, folded %.2f ms\n",
                  NSTACK, DEPTH, t_add, t_enc, RUNS, gzlen, t_fold);
    assert_int_equal(profile_nsamples(p), NSTACK);
    maybe_write_pair(p, "bench");
    profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_location_dedup),
        cmocka_unit_test(test_add_rejects_bad_location),
        cmocka_unit_test(test_pprof_fields),
        cmocka_unit_test(test_folded_exact),
        cmocka_unit_test(test_folded_merges_lookalike_stacks),
        cmocka_unit_test(test_empty_profile),
        cmocka_unit_test(test_write_atomic_errors),
        cmocka_unit_test(test_large_roundtrip),
        cmocka_unit_test(test_bench_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
