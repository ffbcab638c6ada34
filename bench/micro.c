/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stoke-bench-micro — micro-benchmarks of the hot paths (GitHub issue #6).
 *
 *   make bench-micro                 build, run, write build/bench/micro.json
 *   build/stoke-bench-micro [--json FILE] [--only a,b] [--scale F] [--reps N]
 *       [--quick] [--corpus DIR] [--drain-rows N] [--sym-addrs N]
 *       [--seg-windows W] [--merge-rows N] [--merge-hosts K] [--flame-stacks N]
 *
 * What each benchmark times (one "op"), through the public APIs only:
 *
 *   drain            agent/sampler.c: sampler_drain() of a counts map holding
 *                    --drain-rows synthetic keys (sampler_fill_for_bench) whose
 *                    stack ids point at real stacks the BPF program stored
 *                    while sampling a forked CPU-bound child at 999 Hz: flip,
 *                    grace, batch lookup-and-delete, two stack reads per row,
 *                    stack-map clear, CPU re-scan. Needs root and BPF, else
 *                    reported as skipped. Item: row.
 *   drain_empty      the same drain with no rows: the fixed cost per window.
 *   sym_cold         symbolizer_new + every address of a set spread over the
 *                    text of each ELF file this process maps (the bench
 *                    itself, libc, libdw, libzstd, ...) + symbolizer_free:
 *                    ELF and DWARF parsing included. Item: lookup.
 *   sym_cold_nodwarf the same with symbolizer_opts.no_dwarf: the difference
 *                    to sym_cold is the DWARF cost (opens counted in notes).
 *   sym_warm         the same addresses again on a primed symbolizer
 *                    (per-address cache hits). Item: lookup.
 *   sym_kernel       symbolizer_kernel on text addresses from kallsyms
 *                    (never cached). Item: lookup.
 *   seg_encode       one agent flush of one service: seg_writer_new, then
 *                    --seg-windows (6: 60 s of 10 s windows) windows shaped
 *                    like a real Go CPU profile with labels (corpus
 *                    pprof/go-cpu-labels.pprof; samples/count + cpu/ns, as
 *                    the agent writes), each varied as query/generate.c
 *                    does, added with seg_writer_add_pprof; seg_writer_finish.
 *                    Item: sample row; bytes: the section's raw bytes.
 *   seg_footer       seg_footer_parse of that object's tail.
 *   seg_decode       seg_section_decode of its section (CRC, zstd, ids).
 *   merge_sections   a query's merge: --merge-hosts copies of that decoded
 *                    section merged by engine_merge_section into a new mprof.
 *                    Item: sample row.
 *   merge_kernel     the merge kernel alone (DESIGN.md §6: >= 500 M
 *                    sample-rows/s/core): engine_merge_section of one
 *                    synthetic section of --merge-rows rows (20000 stacks of
 *                    depth 12, rows sorted by time then stack as the codec
 *                    stores them) into a warm mprof, and the same at a
 *                    quarter of the rows; merge_kernel_rows is the marginal
 *                    cost per row, t(R) - t(R/4) over 3R/4, which removes the
 *                    per-section stack mapping. (This is the measurement
 *                    tests/unit/test_query_engine.c prints; this one is the
 *                    canonical figure.)
 *   flame            view_flame_json (tree build, node selection to 1024
 *                    nodes, JSON) of an mprof of --flame-stacks distinct
 *                    stacks. Item: node of the full tree.
 *
 * Reading the figures: every benchmark runs one warm-up pass, then --reps
 * (5) repetitions of a fixed iteration count. "cpu ns/op" is process CPU
 * time (CLOCK_PROCESS_CPUTIME_ID) per op — the headline on a shared machine
 * — as the min over repetitions and the mean over all iterations; "wall"
 * is CLOCK_MONOTONIC (the drain's wall time includes its 5 ms grace sleep).
 * Per-item and throughput columns are computed from the cpu min. Timing
 * figures vary between runs; iteration counts and inputs do not.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "agent/sampler.h"
#include "codec/segment.h"
#include "query/engine/engine.h"
#include "common/gzip.h"
#include "common/file.h"
#include "query/engine/mprof.h"
#include "query/engine/views.h"
#include "symbolizer/symbolizer.h"

/* ---- harness ------------------------------------------------------------ */

struct timer {
    uint64_t cpu, wall, c0, w0;
};

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void t_start(struct timer *t)
{
    t->w0 = now_ns(CLOCK_MONOTONIC);
    t->c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static inline void t_stop(struct timer *t)
{
    t->cpu += now_ns(CLOCK_PROCESS_CPUTIME_ID) - t->c0;
    t->wall += now_ns(CLOCK_MONOTONIC) - t->w0;
}

/* Runs @iters ops, timing only what lies between t_start and t_stop.
 * Returns 0 or a negative errno (the benchmark is then reported failed). */
typedef int (*bench_fn)(void *ctx, uint64_t iters, struct timer *t);

#define MAX_EXTRA 8
struct result {
    const char *name, *op, *item;
    uint64_t iters;
    int reps, nextra;
    double cpu_min, cpu_mean, wall_min, wall_mean; /* ns per op */
    double items_per_op, bytes_per_op;
    char skipped[160];
    struct {
        const char *key;
        double v;
    } extra[MAX_EXTRA];
};

static struct result results[32];
static int nresults;
static int g_reps = 5;
static double g_scale = 1.0;

static struct result *new_result(const char *name, const char *op, const char *item)
{
    struct result *r = &results[nresults++];
    memset(r, 0, sizeof(*r));
    r->name = name;
    r->op = op;
    r->item = item;
    return r;
}

static void add_extra(struct result *r, const char *key, double v)
{
    if (r->nextra < MAX_EXTRA) {
        r->extra[r->nextra].key = key;
        r->extra[r->nextra].v = v;
        r->nextra++;
    }
}

static uint64_t scaled(uint64_t iters)
{
    double n = (double)iters * g_scale;
    return n < 1 ? 1 : (uint64_t)n;
}

static void skip(struct result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void skip(struct result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->skipped, sizeof(r->skipped), fmt, ap);
    va_end(ap);
}

/* One warm-up pass of about a fifth of the iterations, then g_reps timed
 * repetitions of @iters. */
static int run(struct result *r, bench_fn fn, void *ctx, uint64_t iters)
{
    struct timer t = {0};
    double cpu_sum = 0, wall_sum = 0;
    int rc;

    r->iters = iters;
    r->reps = g_reps;
    r->cpu_min = r->wall_min = 1e300;
    rc = fn(ctx, iters >= 5 ? iters / 5 : 1, &t);
    for (int rep = 0; rc == 0 && rep < g_reps; rep++) {
        memset(&t, 0, sizeof(t));
        rc = fn(ctx, iters, &t);
        double c = (double)t.cpu / (double)iters, w = (double)t.wall / (double)iters;
        if (c < r->cpu_min)
            r->cpu_min = c;
        if (w < r->wall_min)
            r->wall_min = w;
        cpu_sum += (double)t.cpu;
        wall_sum += (double)t.wall;
    }
    if (rc) {
        skip(r, "failed: %s", strerror(-rc));
        return rc;
    }
    r->cpu_mean = cpu_sum / ((double)iters * g_reps);
    r->wall_mean = wall_sum / ((double)iters * g_reps);
    return 0;
}

/* ---- inputs --------------------------------------------------------------- */

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static Perftools__Profiles__Profile *load_pprof(const char *path, size_t *pb_bytes)
{
    uint8_t *raw = NULL, *pb = NULL;
    size_t len = 0, pblen = 0;
    Perftools__Profiles__Profile *p;

    if (read_file(path, 64u << 20, (char **)&raw, &len))
        return NULL;
    int rc = gzip_decompress(raw, len, 256u << 20, &pb, &pblen);
    free(raw);
    if (rc)
        return NULL;
    p = perftools__profiles__profile__unpack(NULL, pblen, pb);
    free(pb);
    *pb_bytes = pblen;
    return p;
}

/* ---- 1. BPF map drain ----------------------------------------------------- */

/* The child the BPF program samples: recursion of varying depth gives the
 * stack maps a few dozen distinct real user stacks. */
static __attribute__((noinline)) uint64_t spin(unsigned depth, uint64_t x)
{
    if (depth == 0) {
        for (int i = 0; i < 2000; i++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        return x;
    }
    x = spin(depth - 1, x);
    __asm__ volatile("" : "+r"(x) : : "memory"); /* no tail call */
    return x + depth;
}

static void child_main(void)
{
    uint64_t x = 1;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;)
        x = spin((unsigned)(x >> 33) % 24, x);
}

struct drain_ctx {
    struct sampler *s;
    pid_t child;
    uint32_t nrows;
    uint64_t rows, with_stacks, drains;
};

static void drain_cb(const struct sample_row *row, void *ctx)
{
    struct drain_ctx *d = ctx;
    d->rows++;
    d->with_stacks += row->nu > 0;
}

static int bench_drain(void *ctx, uint64_t iters, struct timer *t)
{
    struct drain_ctx *d = ctx;

    for (uint64_t i = 0; i < iters; i++) {
        if (d->nrows) {
            /* Let the child run so the set about to be drained holds real
             * stacks, then stop it so it does not compete with the drain. */
            kill(d->child, SIGCONT);
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            kill(d->child, SIGSTOP);
            int n = sampler_fill_for_bench(d->s, d->nrows);
            if (n < 0)
                return n;
            if ((uint32_t)n < d->nrows)
                return -ENOSPC;
        }
        t_start(t);
        int rc = sampler_drain(d->s, drain_cb, d);
        t_stop(t);
        if (rc < 0)
            return rc;
        if ((uint32_t)rc < d->nrows)
            return -EIO;
        d->drains++;
    }
    return 0;
}

static void do_drain(uint32_t nrows)
{
    struct result *r = new_result("drain", "sampler_drain", "row");
    struct result *e = new_result("drain_empty", "sampler_drain (no rows)", "drain");
    struct sampler_opts so = {.frequency = 999};
    struct drain_ctx d = {.nrows = nrows};
    char err[512];

    if (geteuid() != 0 || sampler_preflight(err, sizeof(err)) != 0) {
        skip(r, "skipped: needs root/BPF");
        skip(e, "skipped: needs root/BPF");
        return;
    }
    d.child = fork();
    if (d.child < 0) {
        skip(r, "skipped: fork: %s", strerror(errno));
        skip(e, "%s", r->skipped);
        return;
    }
    if (d.child == 0)
        child_main();
    kill(d.child, SIGSTOP);
    so.pid = (uint32_t)d.child;
    d.s = sampler_new(&so, err, sizeof(err));
    if (!d.s) {
        skip(r, "skipped: needs root/BPF (%s)", err);
        skip(e, "%s", r->skipped);
        goto out;
    }
    if (run(r, bench_drain, &d, scaled(4)) == 0) {
        r->items_per_op = (double)d.rows / (double)d.drains;
        add_extra(r, "rows_with_user_stack_pct", 100.0 * (double)d.with_stacks / (double)d.rows);
    }
    d.nrows = 0;
    d.rows = d.with_stacks = d.drains = 0;
    if (run(e, bench_drain, &d, scaled(10)) == 0) {
        e->items_per_op = 1;
        add_extra(e, "rows_per_drain", (double)d.rows / (double)d.drains);
    }
    sampler_free(d.s);
out:
    kill(d.child, SIGKILL);
    waitpid(d.child, NULL, 0);
}

/* ---- 2. symbolization --------------------------------------------------- */

struct sym_ctx {
    uint64_t *addr;
    size_t n;
    uint64_t start_time;
    struct symbolizer_opts opts;
    struct symbolizer *warm;
    uint64_t resolved, lookups;
    struct sym_stats last;
    bool kernel;
};

/* @want addresses spread evenly over the executable file mappings of this
 * process, the same number in each file. */
static size_t self_addresses(uint64_t **out, size_t want)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    struct {
        uint64_t lo, hi;
    } maps[128];
    size_t nmaps = 0, n = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f) && nmaps < 128) {
        uint64_t lo, hi, off;
        char perms[8], path[4096] = "";
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %*s %4095s", &lo, &hi, perms,
                   &off, path) < 4)
            continue;
        if (perms[2] != 'x' || path[0] != '/')
            continue;
        maps[nmaps].lo = lo;
        maps[nmaps].hi = hi;
        nmaps++;
    }
    fclose(f);
    if (!nmaps)
        return 0;
    uint64_t *a = calloc(want, sizeof(*a));
    if (!a)
        return 0;
    size_t per = (want + nmaps - 1) / nmaps;
    for (size_t m = 0; m < nmaps && n < want; m++) {
        uint64_t span = maps[m].hi - maps[m].lo;
        for (size_t k = 0; k < per && n < want; k++)
            a[n++] = maps[m].lo + (span / per) * k + 16 + (k & 7);
    }
    *out = a;
    return n;
}

static size_t kernel_addresses(uint64_t **out, size_t want)
{
    FILE *f = fopen("/proc/kallsyms", "r");
    char line[512];
    uint64_t *a = calloc(want, sizeof(*a));
    size_t n = 0, seen = 0;

    if (!f || !a) {
        if (f)
            fclose(f);
        free(a);
        return 0;
    }
    /* Every 16th text symbol, plus a few bytes: spread over the kernel and
     * the modules. Not the "__pfx_" paddings (half of a 6.x kernel's text
     * symbols): no sample lands in them. */
    while (n < want && fgets(line, sizeof(line), f)) {
        uint64_t v;
        char type, name[64];
        if (sscanf(line, "%" SCNx64 " %c %63s", &v, &type, name) != 3 ||
            (type != 't' && type != 'T') || !v || strncmp(name, "__pfx_", 6) == 0)
            continue;
        if (seen++ % 16 == 0)
            a[n++] = v + 4;
    }
    fclose(f);
    *out = a;
    return n;
}

static uint64_t self_start_time(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[2048];
    uint64_t st = 0;

    if (!f)
        return 0;
    if (fgets(buf, sizeof(buf), f)) {
        char *p = strrchr(buf, ')');
        /* field 22 is the 20th after the command name */
        for (int field = 2; p && field < 22; field++)
            p = strchr(p + 1, ' ');
        if (p)
            st = strtoull(p + 1, NULL, 10);
    }
    fclose(f);
    return st;
}

static int resolve_all(struct sym_ctx *c, struct symbolizer *s)
{
    struct sym_result res;
    uint32_t pid = (uint32_t)getpid();

    for (size_t i = 0; i < c->n; i++) {
        int rc = c->kernel ? symbolizer_kernel(s, c->addr[i], &res)
                           : symbolizer_user(s, pid, c->start_time, c->addr[i], i & 1, &res);
        c->lookups++;
        if (rc == 0 && res.nframes)
            c->resolved++;
    }
    return 0;
}

static int bench_sym_cold(void *ctx, uint64_t iters, struct timer *t)
{
    struct sym_ctx *c = ctx;
    for (uint64_t i = 0; i < iters; i++) {
        t_start(t);
        struct symbolizer *s = symbolizer_new(&c->opts);
        if (!s)
            return -ENOMEM;
        resolve_all(c, s);
        t_stop(t);
        symbolizer_get_stats(s, &c->last);
        symbolizer_free(s);
    }
    return 0;
}

static int bench_sym_warm(void *ctx, uint64_t iters, struct timer *t)
{
    struct sym_ctx *c = ctx;
    t_start(t);
    for (uint64_t i = 0; i < iters; i++)
        resolve_all(c, c->warm);
    t_stop(t);
    return 0;
}

static void sym_report(struct result *r, struct sym_ctx *c, bool per_binary)
{
    r->items_per_op = (double)c->n;
    add_extra(r, "resolved_pct", 100.0 * (double)c->resolved / (double)c->lookups);
    if (per_binary) {
        add_extra(r, "binaries_loaded", (double)c->last.binaries_loaded);
        add_extra(r, "dwarf_opens", (double)c->last.dwarf_opens);
        add_extra(r, "cache_bytes", (double)c->last.bytes_used);
    }
}

static void do_symbolize(size_t naddr)
{
    struct result *cold = new_result("sym_cold", "new symbolizer + N lookups", "lookup");
    struct result *nod = new_result("sym_cold_nodwarf", "same, no_dwarf", "lookup");
    struct result *warm = new_result("sym_warm", "N cached lookups", "lookup");
    struct result *kern = new_result("sym_kernel", "N kallsyms lookups", "lookup");
    struct sym_ctx c = {.start_time = self_start_time()};

    c.n = self_addresses(&c.addr, naddr);
    if (!c.n) {
        skip(cold, "skipped: no executable mappings in /proc/self/maps");
        skip(nod, "%s", cold->skipped);
        skip(warm, "%s", cold->skipped);
    } else {
        if (run(cold, bench_sym_cold, &c, scaled(4)) == 0)
            sym_report(cold, &c, true);
        c.resolved = c.lookups = 0;
        c.opts.no_dwarf = true;
        if (run(nod, bench_sym_cold, &c, scaled(4)) == 0) {
            sym_report(nod, &c, true);
            add_extra(cold, "dwarf_ns_per_lookup",
                      cold->cpu_min / (double)c.n - nod->cpu_min / (double)c.n);
        }
        c.resolved = c.lookups = 0;
        c.opts.no_dwarf = false;
        c.warm = symbolizer_new(&c.opts);
        if (!c.warm) {
            skip(warm, "failed: out of memory");
        } else {
            resolve_all(&c, c.warm);
            c.resolved = c.lookups = 0;
            if (run(warm, bench_sym_warm, &c, scaled(200)) == 0) {
                sym_report(warm, &c, false);
                struct sym_stats st;
                symbolizer_get_stats(c.warm, &st);
                add_extra(warm, "cache_hit_pct",
                          100.0 * (double)st.cache_hits / (double)st.lookups);
            }
            symbolizer_free(c.warm);
        }
        free(c.addr);
    }

    struct sym_ctx k = {.kernel = true};
    k.n = kernel_addresses(&k.addr, naddr / 4 ? naddr / 4 : 1);
    if (!k.n) {
        free(k.addr);
        skip(kern, "skipped: no kernel addresses (kptr_restrict; needs root)");
        return;
    }
    k.warm = symbolizer_new(&k.opts);
    if (!k.warm) {
        skip(kern, "failed: out of memory");
    } else {
        resolve_all(&k, k.warm);
        k.resolved = k.lookups = 0;
        if (run(kern, bench_sym_warm, &k, scaled(40)) == 0)
            sym_report(kern, &k, false);
        symbolizer_free(k.warm);
    }
    free(k.addr);
}

/* ---- 3. segment encode / decode ----------------------------------------- */

#define MAX_WINDOWS 64

struct seg_ctx {
    Perftools__Profiles__Profile *src; /* one window's shape */
    Perftools__Profiles__Profile win[MAX_WINDOWS];
    Perftools__Profiles__Sample *samples; /* every window's, own values */
    int64_t *values;
    size_t nwin, pb_bytes;
    uint8_t *obj;
    size_t obj_len;
    struct seg_footer *footer;
    const struct seg_section_info *info;
    struct seg_section *sec; /* decoded once, for the merges */
};

/* The windows of one agent flush, varied as query/generate.c varies them:
 * each window a shallow copy of the source with its own samples, ~10% of
 * them left out and every value scaled by a factor in [0.5, 1.5), seeded. */
static int make_windows(struct seg_ctx *c, unsigned nwin)
{
    const Perftools__Profiles__Profile *p = c->src;
    size_t ns = p->n_sample, nv = p->n_sample_type;
    uint64_t x = 0x9E3779B97F4A7C15ull;

    if (nwin == 0 || nwin > MAX_WINDOWS)
        return -EINVAL;
    c->samples = calloc(nwin * ns, sizeof(*c->samples));
    c->values = calloc(nwin * ns * nv, sizeof(*c->values));
    Perftools__Profiles__Sample **ptrs = calloc(nwin * ns, sizeof(*ptrs));
    if (!c->samples || !c->values || !ptrs) {
        free(ptrs);
        return -ENOMEM;
    }
    for (unsigned w = 0; w < nwin; w++) {
        Perftools__Profiles__Profile *q = &c->win[w];
        *q = *p;
        q->sample = ptrs + w * ns;
        q->n_sample = 0;
        q->time_nanos = p->time_nanos + (int64_t)w * 10000000000ll;
        q->duration_nanos = 10000000000ll;
        for (size_t i = 0; i < ns; i++) {
            if (xorshift(&x) % 10 == 0)
                continue;
            Perftools__Profiles__Sample *sm = &c->samples[w * ns + i];
            *sm = *p->sample[i];
            sm->value = &c->values[(w * ns + i) * nv];
            sm->n_value = p->sample[i]->n_value < nv ? p->sample[i]->n_value : nv;
            double f = 0.5 + (double)(xorshift(&x) % 1000) / 1000.0;
            for (size_t k = 0; k < sm->n_value; k++)
                sm->value[k] = (int64_t)((double)p->sample[i]->value[k] * f) + 1;
            q->sample[q->n_sample++] = sm;
        }
    }
    c->nwin = nwin;
    return 0;
}

static void free_windows(struct seg_ctx *c)
{
    if (c->nwin)
        free(c->win[0].sample);
    free(c->samples);
    free(c->values);
    if (c->src)
        perftools__profiles__profile__free_unpacked(c->src, NULL);
}

static const struct seg_label seg_labels[] = {
    {"service_name", "checkout"},
    {"host_name", "bench-host"},
};

static int encode_once(struct seg_ctx *c, uint8_t **buf, size_t *len, struct seg_footer **footer)
{
    struct seg_writer *w = seg_writer_new("default", "bench-host");
    int rc = 0;

    if (!w)
        return -ENOMEM;
    for (size_t i = 0; i < c->nwin && !rc; i++)
        rc = seg_writer_add_pprof(w, "checkout", &c->win[i], seg_labels, 2, 0);
    if (!rc)
        rc = seg_writer_finish(w, buf, len, footer);
    seg_writer_free(w);
    return rc;
}

static int bench_encode(void *ctx, uint64_t iters, struct timer *t)
{
    struct seg_ctx *c = ctx;
    for (uint64_t i = 0; i < iters; i++) {
        uint8_t *buf;
        size_t len;
        t_start(t);
        int rc = encode_once(c, &buf, &len, NULL);
        t_stop(t);
        if (rc)
            return rc;
        free(buf);
    }
    return 0;
}

static int bench_footer(void *ctx, uint64_t iters, struct timer *t)
{
    struct seg_ctx *c = ctx;
    /* what a reader fetches: SEG_FOOTER_TAIL, or from the footer's start
     * when it is larger (seg_footer_read's second read) */
    size_t tail = c->obj_len < SEG_FOOTER_TAIL ? c->obj_len : SEG_FOOTER_TAIL;
    char err[256];
    struct seg_footer *f0 = NULL;
    uint64_t need0 = 0;
    if (seg_footer_parse(c->obj + c->obj_len - tail, tail, c->obj_len, &f0, &need0, err,
                         sizeof(err)) == -EAGAIN)
        tail = c->obj_len - need0;
    seg_footer_free(f0);

    t_start(t);
    for (uint64_t i = 0; i < iters; i++) {
        struct seg_footer *f;
        uint64_t need;
        int rc = seg_footer_parse(c->obj + c->obj_len - tail, tail, c->obj_len, &f, &need, err,
                                  sizeof(err));
        if (rc)
            return rc;
        seg_footer_free(f);
    }
    t_stop(t);
    return 0;
}

static int bench_decode(void *ctx, uint64_t iters, struct timer *t)
{
    struct seg_ctx *c = ctx;
    char err[256];

    t_start(t);
    for (uint64_t i = 0; i < iters; i++) {
        struct seg_section *s;
        int rc = seg_section_decode(c->obj + c->info->offset, c->info->length, c->info, &s, err,
                                    sizeof(err));
        if (rc)
            return rc;
        seg_section_free(s);
    }
    t_stop(t);
    return 0;
}

struct merge_ctx {
    const struct seg_section *sec;
    unsigned hosts;
    struct mprof *mp; /* merge_kernel: warm, reused */
    struct query q;
    int64_t check;
};

static int bench_merge_sections(void *ctx, uint64_t iters, struct timer *t)
{
    struct merge_ctx *m = ctx;
    char host[32];

    for (uint64_t i = 0; i < iters; i++) {
        t_start(t);
        struct mprof *mp = mprof_new(1);
        if (!mp)
            return -ENOMEM;
        for (unsigned h = 0; h < m->hosts; h++) {
            snprintf(host, sizeof(host), "host-%u", h);
            int rc = engine_merge_section(mp, m->sec, host, &m->q);
            if (rc) {
                mprof_free(mp);
                return rc < 0 ? rc : -EINVAL;
            }
        }
        t_stop(t);
        int64_t sum = 0;
        for (uint32_t s = 0; s < mp->nstacks; s++)
            sum += mp->vals[s];
        m->check = sum;
        mprof_free(mp);
    }
    return 0;
}

static void do_segments(const char *corpus, unsigned windows, unsigned hosts)
{
    struct result *enc = new_result("seg_encode", "one flush: W windows -> object", "row");
    struct result *ftr = new_result("seg_footer", "seg_footer_parse", "footer");
    struct result *dec = new_result("seg_decode", "seg_section_decode", "row");
    struct result *mrg = new_result("merge_sections", "K sections -> new mprof", "row");
    struct seg_ctx c = {0};
    char path[4096], err[256];

    snprintf(path, sizeof(path), "%s/pprof/go-cpu-labels.pprof", corpus);
    c.src = load_pprof(path, &c.pb_bytes);
    if (!c.src || make_windows(&c, windows)) {
        skip(enc, "skipped: cannot read corpus %s (--corpus DIR)", path);
        skip(ftr, "%s", enc->skipped);
        skip(dec, "%s", enc->skipped);
        skip(mrg, "%s", enc->skipped);
        goto out;
    }
    int rc = encode_once(&c, &c.obj, &c.obj_len, &c.footer);
    if (rc || c.footer->nsections != 1) {
        skip(enc, "failed: encode: %s", strerror(rc ? -rc : EINVAL));
        skip(ftr, "%s", enc->skipped);
        skip(dec, "%s", enc->skipped);
        skip(mrg, "%s", enc->skipped);
        goto out;
    }
    c.info = &c.footer->sections[0];
    double rows = (double)c.info->nsamples;
    /* The Go CPU profile's first sample type is samples/count, as the
     * agent's. */
    double samples = (double)c.info->total[0];

    if (run(enc, bench_encode, &c, scaled(10)) == 0) {
        enc->items_per_op = rows;
        enc->bytes_per_op = (double)c.info->raw_length;
        add_extra(enc, "windows", (double)c.nwin);
        add_extra(enc, "pprof_bytes_in", (double)c.pb_bytes);
        add_extra(enc, "object_bytes", (double)c.obj_len);
        add_extra(enc, "samples", samples);
        add_extra(enc, "bytes_per_sample", (double)c.obj_len / samples);
        add_extra(enc, "bytes_per_row", (double)c.obj_len / rows);
    }
    if (run(ftr, bench_footer, &c, scaled(2000)) == 0) {
        ftr->items_per_op = 1;
        ftr->bytes_per_op = (double)(c.obj_len - c.info->length);
    }
    if (run(dec, bench_decode, &c, scaled(100)) == 0) {
        dec->items_per_op = rows;
        dec->bytes_per_op = (double)c.info->raw_length;
        add_extra(dec, "compressed_bytes", (double)c.info->length);
    }

    rc = seg_section_decode(c.obj + c.info->offset, c.info->length, c.info, &c.sec, err,
                            sizeof(err));
    if (rc) {
        skip(mrg, "failed: decode: %s", err);
        goto out;
    }
    struct merge_ctx m = {
        .sec = c.sec, .hosts = hosts, .q = {.tenant = "default", .from = 0, .until = INT64_MAX}};
    if (run(mrg, bench_merge_sections, &m, scaled(40)) == 0) {
        mrg->items_per_op = rows * hosts;
        add_extra(mrg, "sections", hosts);
        add_extra(mrg, "stacks_per_section", c.sec->nstacks);
    }
out:
    seg_section_free(c.sec);
    seg_footer_free(c.footer);
    free(c.obj);
    free_windows(&c);
}

/* ---- 4. merge kernel ------------------------------------------------------ */

#define T0 1700000000000LL

struct synth {
    struct seg_section sec;
    const char **strs;
    char (*names)[16];
    uint32_t soff[2], slab[2];
    struct seg_sample_type types[2];
};

/* The section of tests/unit/test_query_engine.c's test_bench_merge: @nstacks
 * stacks of depth @depth over @nfuncs functions, @nrows rows in 4 time steps,
 * each step ascending through the stack ids. */
static int synth_section(struct synth *y, uint32_t nstacks, uint32_t depth, uint32_t nfuncs,
                         uint64_t nrows)
{
    struct seg_section *sec = &y->sec;
    uint64_t x = 88172645463325252ULL;

    memset(y, 0, sizeof(*y));
    y->strs = calloc(5 + nfuncs, sizeof(*y->strs));
    y->names = calloc(nfuncs, sizeof(*y->names));
    sec->functions = calloc(nfuncs, sizeof(*sec->functions));
    sec->lines = calloc(nfuncs, sizeof(*sec->lines));
    sec->locations = calloc(nfuncs, sizeof(*sec->locations));
    sec->stack_off = malloc((nstacks + 1) * sizeof(uint32_t));
    sec->stack_locs = malloc((size_t)nstacks * depth * sizeof(uint32_t));
    sec->sample_series = calloc(nrows, sizeof(uint32_t));
    sec->sample_stack = malloc(nrows * sizeof(uint32_t));
    sec->sample_time_ms = malloc(nrows * sizeof(int64_t));
    sec->sample_values = malloc(nrows * 2 * sizeof(int64_t));
    if (!y->strs || !y->names || !sec->functions || !sec->lines || !sec->locations ||
        !sec->stack_off || !sec->stack_locs || !sec->sample_series || !sec->sample_stack ||
        !sec->sample_time_ms || !sec->sample_values)
        return -ENOMEM;
    y->strs[0] = "";
    y->strs[1] = "cpu";
    y->strs[2] = "nanoseconds";
    y->strs[3] = "samples";
    y->strs[4] = "count";
    for (uint32_t i = 0; i < nfuncs; i++) {
        snprintf(y->names[i], sizeof(y->names[i]), "fn%u", i);
        y->strs[5 + i] = y->names[i];
        sec->functions[i].name = 5 + i;
        sec->lines[i].function = i;
        sec->locations[i] =
            (struct seg_location){.mapping = UINT32_MAX, .line_off = i, .nlines = 1};
    }
    sec->service = "bench";
    sec->strings = y->strs;
    sec->nstrings = 5 + nfuncs;
    y->types[0] = (struct seg_sample_type){3, 4};
    y->types[1] = (struct seg_sample_type){1, 2};
    sec->types = y->types;
    sec->ntypes = 2;
    sec->period_type = y->types[1];
    sec->period = 1000;
    sec->nfunctions = sec->nlines = sec->nlocations = nfuncs;
    for (uint32_t s = 0; s < nstacks; s++) {
        sec->stack_off[s] = s * depth;
        for (uint32_t d = 0; d < depth; d++)
            sec->stack_locs[s * depth + d] = d == depth - 1 ? 0 : (uint32_t)(xorshift(&x) % nfuncs);
    }
    sec->stack_off[nstacks] = nstacks * depth;
    sec->nstacks = nstacks;
    sec->series_off = y->soff;
    sec->series_labels = y->slab;
    sec->nseries = 1;
    sec->nsamples = nrows;
    uint64_t per = nrows / 4 ? nrows / 4 : 1;
    for (uint64_t i = 0; i < nrows; i++) {
        sec->sample_stack[i] = (uint32_t)((i % per) * nstacks / per);
        sec->sample_time_ms[i] = T0 + (int64_t)(i / per) * 10000;
        sec->sample_values[2 * i] = 1;
        sec->sample_values[2 * i + 1] = (int64_t)(xorshift(&x) & 0xff) + 1;
    }
    return 0;
}

static void synth_free(struct synth *y)
{
    struct seg_section *sec = &y->sec;
    free(y->strs);
    free(y->names);
    free(sec->functions);
    free(sec->lines);
    free(sec->locations);
    free(sec->stack_off);
    free(sec->stack_locs);
    free(sec->sample_series);
    free(sec->sample_stack);
    free(sec->sample_time_ms);
    free(sec->sample_values);
}

static int bench_merge_kernel(void *ctx, uint64_t iters, struct timer *t)
{
    struct merge_ctx *m = ctx;
    t_start(t);
    for (uint64_t i = 0; i < iters; i++) {
        int rc = engine_merge_section(m->mp, m->sec, "h", &m->q);
        if (rc)
            return rc < 0 ? rc : -EINVAL;
    }
    t_stop(t);
    return 0;
}

static void do_merge_kernel(uint64_t nrows)
{
    struct result *full = new_result("merge_kernel", "merge 1 section of R rows", "row");
    struct result *quarter = new_result("merge_kernel_q", "merge 1 section of R/4 rows", "row");
    struct result *marg = new_result("merge_kernel_rows", "marginal row: t(R)-t(R/4)", "row");
    struct synth y;
    const uint32_t nstacks = 20000, depth = 12;

    if (nrows < 16)
        nrows = 16;
    if (synth_section(&y, nstacks, depth, 2000, nrows)) {
        skip(full, "failed: out of memory");
        skip(quarter, "%s", full->skipped);
        skip(marg, "%s", full->skipped);
        synth_free(&y);
        return;
    }
    struct merge_ctx m = {.sec = &y.sec,
                          .q = {.tenant = "default", .from = T0, .until = T0 + 60000},
                          .mp = mprof_new(1)};
    if (!m.mp) {
        skip(full, "failed: out of memory");
        skip(quarter, "%s", full->skipped);
        skip(marg, "%s", full->skipped);
        synth_free(&y);
        return;
    }
    /* The repetition count is kept even at small scales: one op is long. */
    int rc = run(full, bench_merge_kernel, &m, scaled(6));
    full->items_per_op = (double)nrows;
    full->bytes_per_op = (double)nrows * (4 + 4 + 8 + 16); /* series, stack, time, 2 values */
    add_extra(full, "stacks", nstacks);
    add_extra(full, "depth", depth);
    /* The quarter run merges exactly the first nquarter rows. */
    const uint64_t nquarter = nrows / 4;
    y.sec.nsamples = nquarter;
    rc = rc ? rc : run(quarter, bench_merge_kernel, &m, scaled(24));
    quarter->items_per_op = (double)nquarter;
    quarter->bytes_per_op = (double)nquarter * 32;
    y.sec.nsamples = nrows;
    if (rc) {
        skip(marg, "failed");
    } else {
        double dr = (double)(nrows - nquarter);
        marg->iters = full->iters;
        marg->reps = full->reps;
        marg->cpu_min = (full->cpu_min - quarter->cpu_min) / dr;
        marg->cpu_mean = (full->cpu_mean - quarter->cpu_mean) / dr;
        marg->wall_min = (full->wall_min - quarter->wall_min) / dr;
        marg->wall_mean = (full->wall_mean - quarter->wall_mean) / dr;
        marg->items_per_op = 1;
        marg->bytes_per_op = 32;
        add_extra(marg, "target_rows_per_s", 500e6);
    }
    mprof_free(m.mp);
    synth_free(&y);
}

/* ---- 5. flame graph ------------------------------------------------------- */

struct flame_ctx {
    struct mprof *mp;
    uint32_t max_nodes;
    size_t out_bytes;
};

static int bench_flame(void *ctx, uint64_t iters, struct timer *t)
{
    struct flame_ctx *f = ctx;
    for (uint64_t i = 0; i < iters; i++) {
        struct wbuf b = {0};
        t_start(t);
        int rc = view_flame_json(f->mp, 0, f->max_nodes, &b);
        t_stop(t);
        f->out_bytes = b.len;
        free(b.p);
        if (rc)
            return rc;
        if (b.err)
            return -ENOMEM;
    }
    return 0;
}

/* Distinct (parent, name) pairs over every stack: the full tree's nodes. */
static uint64_t tree_nodes(const struct mprof *p)
{
    uint64_t cap = 1 << 16, n = 1;
    uint64_t *k;
    uint32_t *id;

    while (cap < 2 * (p->nframes + 1))
        cap *= 2;
    k = calloc(cap, sizeof(*k));
    id = calloc(cap, sizeof(*id));
    if (!k || !id) {
        free(k);
        free(id);
        return 0;
    }
    for (uint32_t s = 0; s < p->nstacks; s++) {
        const uint32_t *fr = mprof_stack_frames(p, s);
        uint32_t node = 0;
        for (uint32_t d = mprof_stack_len(p, s); d-- > 0;) {
            uint64_t key = ((uint64_t)node << 32 | fr[d]) + 1;
            uint64_t h = (key * 0x9E3779B97F4A7C15ull) & (cap - 1);
            while (k[h] && k[h] != key)
                h = (h + 1) & (cap - 1);
            if (!k[h]) {
                k[h] = key;
                id[h] = (uint32_t)n++;
            }
            node = id[h];
        }
    }
    free(k);
    free(id);
    return n;
}

static void do_flame(uint32_t nstacks)
{
    struct result *r = new_result("flame", "view_flame_json, 1024 nodes", "node");
    struct flame_ctx f = {.max_nodes = 1024, .mp = mprof_new(1)};
    const uint32_t nfuncs = 5000;
    uint64_t x = 0x2545F4914F6CDD1Dull;
    uint32_t ids[5000], fr[64], rev[64];

    if (!f.mp) {
        skip(r, "failed: out of memory");
        return;
    }
    for (uint32_t i = 0; i < nfuncs; i++) {
        char name[32];
        int n = snprintf(name, sizeof(name), "pkg%u.func%u", i % 97, i);
        ids[i] = intern_strn(&f.mp->str, name, (size_t)n);
    }
    /* Stacks walk a random call graph from 8 roots, taking one of 3 callees
     * at a quarter of the levels and the usual one elsewhere, so they share
     * prefixes as real ones do. */
    for (uint64_t tries = 0; f.mp->nstacks < nstacks && tries < 20ull * nstacks; tries++) {
        uint32_t depth = 8 + (uint32_t)(xorshift(&x) % 40), cur = (uint32_t)(xorshift(&x) % 8);
        for (uint32_t d = 0; d < depth; d++) {
            fr[d] = ids[cur];
            uint32_t br = xorshift(&x) % 4 == 0 ? (uint32_t)(xorshift(&x) % 3) : 0;
            cur = (uint32_t)((cur * 2654435761u + 1 + br + d) % nfuncs);
        }
        for (uint32_t d = 0; d < depth; d++)
            rev[d] = fr[depth - 1 - d]; /* leaf first */
        uint32_t g = mprof_stack(f.mp, rev, depth);
        if (g == MPROF_NONE) {
            skip(r, "failed: out of memory");
            mprof_free(f.mp);
            return;
        }
        MPROF_ADD(f.mp->vals[g], (int64_t)(xorshift(&x) % 1000) + 1);
    }
    uint64_t nodes = tree_nodes(f.mp);
    if (run(r, bench_flame, &f, scaled(10)) == 0) {
        r->items_per_op = (double)nodes;
        add_extra(r, "stacks", f.mp->nstacks);
        add_extra(r, "frames", (double)f.mp->nframes);
        add_extra(r, "json_bytes", (double)f.out_bytes);
    }
    mprof_free(f.mp);
}

/* ---- output --------------------------------------------------------------- */

static void fmt_si(char *buf, size_t len, double v)
{
    if (v >= 1e9)
        snprintf(buf, len, "%.2f G", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, len, "%.1f M", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, len, "%.1f k", v / 1e3);
    else
        snprintf(buf, len, "%.1f", v);
}

static void print_table(void)
{
    printf("%-18s %7s %13s %13s %13s %9s %13s %10s  %s\n", "benchmark", "iters", "cpu ns/op min",
           "cpu ns/op avg", "wall ns/op min", "items/op", "cpu ns/item", "items/s", "MB/s");
    for (int i = 0; i < nresults; i++) {
        struct result *r = &results[i];
        if (r->skipped[0]) {
            printf("%-18s %s\n", r->name, r->skipped);
            continue;
        }
        char ipo[16], ips[16], mbs[16] = "-";
        fmt_si(ipo, sizeof(ipo), r->items_per_op);
        fmt_si(ips, sizeof(ips), r->items_per_op / r->cpu_min * 1e9);
        if (r->bytes_per_op > 0)
            snprintf(mbs, sizeof(mbs), "%.0f", r->bytes_per_op / r->cpu_min * 1e3);
        int p = r->cpu_min < 100 ? 2 : 0; /* marginal per-row figures */
        printf("%-18s %4" PRIu64 "x%-2d %13.*f %13.*f %14.*f %9s %13.2f %8s/s  %s\n", r->name,
               r->iters, r->reps, p, r->cpu_min, p, r->cpu_mean, p, r->wall_min, ipo,
               r->cpu_min / r->items_per_op, ips, mbs);
        if (r->nextra) {
            printf("%-18s   (%s", "", r->op);
            for (int k = 0; k < r->nextra; k++)
                printf("; %s %.6g", r->extra[k].key, r->extra[k].v);
            printf(")\n");
        } else {
            printf("%-18s   (%s)\n", "", r->op);
        }
    }
}

static int write_json(const char *path)
{
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    struct utsname u;
    char *txt;
    FILE *f;

    if (!root || !arr)
        return -ENOMEM;
    cJSON_AddNumberToObject(root, "version", 1);
    if (uname(&u) == 0) {
        cJSON_AddStringToObject(root, "host", u.nodename);
        cJSON_AddStringToObject(root, "kernel", u.release);
    }
    cJSON_AddNumberToObject(root, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(root, "reps", g_reps);
    cJSON_AddNumberToObject(root, "scale", g_scale);
    cJSON_AddStringToObject(root, "clock",
                            "cpu = CLOCK_PROCESS_CPUTIME_ID, wall = CLOCK_MONOTONIC");
    cJSON_AddItemToObject(root, "benchmarks", arr);
    for (int i = 0; i < nresults; i++) {
        struct result *r = &results[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddStringToObject(o, "op", r->op);
        cJSON_AddStringToObject(o, "item", r->item);
        if (r->skipped[0]) {
            cJSON_AddStringToObject(o, "skipped", r->skipped);
            continue;
        }
        cJSON_AddNumberToObject(o, "iters", (double)r->iters);
        cJSON_AddNumberToObject(o, "reps", r->reps);
        cJSON_AddNumberToObject(o, "cpu_ns_per_op_min", r->cpu_min);
        cJSON_AddNumberToObject(o, "cpu_ns_per_op_mean", r->cpu_mean);
        cJSON_AddNumberToObject(o, "wall_ns_per_op_min", r->wall_min);
        cJSON_AddNumberToObject(o, "wall_ns_per_op_mean", r->wall_mean);
        cJSON_AddNumberToObject(o, "items_per_op", r->items_per_op);
        cJSON_AddNumberToObject(o, "cpu_ns_per_item_min", r->cpu_min / r->items_per_op);
        cJSON_AddNumberToObject(o, "items_per_s", r->items_per_op / r->cpu_min * 1e9);
        if (r->bytes_per_op > 0) {
            cJSON_AddNumberToObject(o, "bytes_per_op", r->bytes_per_op);
            cJSON_AddNumberToObject(o, "mb_per_s", r->bytes_per_op / r->cpu_min * 1e3);
        }
        for (int k = 0; k < r->nextra; k++)
            cJSON_AddNumberToObject(o, r->extra[k].key, r->extra[k].v);
    }
    txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt)
        return -ENOMEM;
    f = fopen(path, "w");
    if (!f) {
        int e = errno;
        free(txt);
        return -e;
    }
    fputs(txt, f);
    fputc('\n', f);
    free(txt);
    return fclose(f) ? -errno : 0;
}

/* ---- main ----------------------------------------------------------------- */

static bool selected(const char *only, const char *name)
{
    if (!only)
        return true;
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
            return true;
    return false;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: stoke-bench-micro [--json FILE] [--only drain,sym,seg,merge,flame]\n"
               "       [--scale F] [--reps N] [--quick] [--corpus DIR] [--drain-rows N]\n"
               "       [--sym-addrs N] [--seg-windows W] [--merge-rows N] [--merge-hosts K]\n"
               "       [--flame-stacks N]\n"
               "See the comment at the top of bench/micro.c for what each figure means.\n");
}

int main(int argc, char **argv)
{
    const char *json = NULL, *only = NULL, *corpus = getenv("STOKE_CORPUS");
    uint64_t drain_rows = 10000, sym_addrs = 4000, merge_rows = 4u << 20, flame_stacks = 50000;
    unsigned merge_hosts = 16, seg_windows = 6;

    if (!corpus)
        corpus = "/work/shared/corpus";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (ARG("--json"))
            json = v;
        else if (ARG("--only"))
            only = v;
        else if (ARG("--scale"))
            g_scale = strtod(v, NULL);
        else if (ARG("--reps"))
            g_reps = atoi(v);
        else if (ARG("--corpus"))
            corpus = v;
        else if (ARG("--drain-rows"))
            drain_rows = strtoull(v, NULL, 10);
        else if (ARG("--sym-addrs"))
            sym_addrs = strtoull(v, NULL, 10);
        else if (ARG("--merge-rows"))
            merge_rows = strtoull(v, NULL, 10);
        else if (ARG("--seg-windows"))
            seg_windows = (unsigned)strtoul(v, NULL, 10);
        else if (ARG("--merge-hosts"))
            merge_hosts = (unsigned)strtoul(v, NULL, 10);
        else if (ARG("--flame-stacks"))
            flame_stacks = strtoull(v, NULL, 10);
        else if (strcmp(a, "--quick") == 0) {
            g_scale = 0.05;
            g_reps = 2;
            drain_rows = 500;
            sym_addrs = 200;
            merge_rows = 1u << 16;
            merge_hosts = 2;
            flame_stacks = 2000;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
#undef ARG
    }
    if (g_reps < 1 || g_scale <= 0 || !sym_addrs || !merge_hosts || !flame_stacks ||
        drain_rows > 16000 || !seg_windows || seg_windows > MAX_WINDOWS) {
        fprintf(stderr, "stoke-bench-micro: bad option value (reps >= 1, scale > 0, sizes > 0, "
                        "drain rows <= 16000, windows <= 64)\n");
        return 2;
    }

    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    if (selected(only, "drain"))
        do_drain((uint32_t)drain_rows);
    if (selected(only, "sym"))
        do_symbolize(sym_addrs);
    if (selected(only, "seg") || selected(only, "merge"))
        do_segments(corpus, seg_windows, merge_hosts);
    if (selected(only, "merge"))
        do_merge_kernel(merge_rows);
    if (selected(only, "flame"))
        do_flame((uint32_t)flame_stacks);

    print_table();
    printf("total %.1f s wall\n", (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
    if (json) {
        int rc = write_json(json);
        if (rc) {
            fprintf(stderr, "stoke-bench-micro: %s: %s\n", json, strerror(-rc));
            return 1;
        }
    }
    int failed = 0;
    for (int i = 0; i < nresults; i++)
        failed += strncmp(results[i].skipped, "failed", 6) == 0;
    return failed ? 1 : 0;
}
