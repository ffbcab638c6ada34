/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stoke-bench-open-hour — what one query costs the object store: the
 * requests (GETs, LISTs) and bytes one engine_query makes against a store
 * with no cache, and the answer's total, so two store layouts of the same
 * fleet can be compared query by query (GitHub issue #18; bench/open_hour.sh
 * runs it).
 *
 *   build/stoke-bench-open-hour --store URL [--tenant T] --from MS --until MS
 *       [--selector SEL] [--reps N] [--mode profile|top] [--dump FILE]
 *
 * Prints one line of JSON: gets, lists, bytes (got from the store), objects
 * and sections (the plan's), total (the sum of the default profile type's
 * values), functions and top_hash (the top table's rows and an XXH64 of
 * them: names, self, total, in view_top's order, so a profile and a top
 * query of the same data can be compared), ms (wall time of the fastest of
 * --reps runs, default 1). --mode profile (the default) merges stacks, as
 * a flame graph does; top asks for function totals only (Q_TOP), which
 * compacted blocks answer from their totals frames. runs: each run's wall
 * time, in order (the first one pays the process's page faults). digest:
 * an order-independent hash of the answer's stacks (their names) and
 * values, to compare two builds where the answer is too large to dump.
 * --dump writes the answer, one "frame;frame;... value" line per stack
 * (root first, in the profile's order), so two builds' answers can be
 * compared after a sort.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/wire.h"
#include "common/hash.h"
#include "query/engine/engine.h"
#include "query/engine/views.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *tenant = "default", *seltext = "{}", *dump = NULL;
    int64_t from = -1, until = -1;
    unsigned reps = 1;
    enum qmode mode = Q_PROFILE;
    char err[512];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--store"))
            url = argv[i + 1];
        else if (!strcmp(argv[i], "--tenant"))
            tenant = argv[i + 1];
        else if (!strcmp(argv[i], "--from"))
            from = strtoll(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--until"))
            until = strtoll(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--selector"))
            seltext = argv[i + 1];
        else if (!strcmp(argv[i], "--dump"))
            dump = argv[i + 1];
        else if (!strcmp(argv[i], "--mode"))
            mode = !strcmp(argv[i + 1], "top") ? Q_TOP : Q_PROFILE;
        else if (!strcmp(argv[i], "--reps"))
            reps = (unsigned)strtoul(argv[i + 1], NULL, 10);
    }
    if (!url || from < 0 || until < 0 || !reps) {
        fprintf(stderr, "usage: stoke-bench-open-hour --store URL [--tenant T] --from MS "
                        "--until MS [--selector SEL] [--reps N]\n");
        return 2;
    }
    struct store_opts so = {.url = url, .path_style = -1}; /* auto: path-style off AWS */
    struct store *st = store_open(&so, err, sizeof(err));
    struct selector *sel = NULL;
    if (!st || selector_parse(seltext, &sel, err, sizeof(err))) {
        fprintf(stderr, "stoke-bench-open-hour: %s\n", err);
        return 1;
    }
    struct engine_opts eo = {.store = st, .threads = 2};
    struct engine *e = engine_new(&eo);
    struct query q = {.tenant = tenant, .sel = sel, .from = from, .until = until, .mode = mode};
    double best = 0, *runs = calloc(reps, sizeof(*runs));
    struct store_stats s0 = {0}, s1 = {0};
    struct mprof *res = NULL;
    for (unsigned r = 0; r < reps; r++) {
        mprof_free(res);
        res = NULL;
        s0 = st->stats;
        double t0 = now_ms();
        if (engine_query(e, &q, &res, err, sizeof(err))) {
            fprintf(stderr, "stoke-bench-open-hour: %s\n", err);
            free(runs);
            return 1;
        }
        double t = now_ms() - t0;
        if (runs)
            runs[r] = t;
        s1 = st->stats;
        if (!r || t < best)
            best = t;
    }
    int64_t total = 0;
    struct top_row *rows = NULL;
    size_t nrows = 0;
    struct wbuf tb = {0};
    if (view_top(res, 0, &rows, &nrows, &total)) {
        fprintf(stderr, "stoke-bench-open-hour: out of memory\n");
        free(runs);
        return 1;
    }
    for (size_t i = 0; i < nrows; i++) {
        wb_str(&tb, intern_str_get(&res->str, rows[i].name));
        wb_sv(&tb, rows[i].self);
        wb_sv(&tb, rows[i].total);
    }
    uint64_t digest = 0;
    for (uint32_t s = 0; s < res->nstacks; s++) {
        int64_t v = res->vals[(size_t)s * res->ntypes];
        const uint32_t *fr = mprof_stack_frames(res, s);
        uint64_t h = FNV64_OFFSET;
        for (uint32_t k = 0; k < mprof_stack_len(res, s); k++) {
            const char *name = intern_str_get(&res->str, fr[k]);
            h = hash_fnv1a(h, name, strlen(name) + 1);
        }
        digest += hash64(hash_fnv1a(h, &v, sizeof(v)));
    }
    printf("{\"gets\":%" PRIu64 ",\"lists\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"objects\":%" PRIu64
           ",\"sections\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"total\":%" PRId64
           ",\"functions\":%zu,\"top_hash\":\"%016" PRIx64 "\",\"digest\":\"%016" PRIx64
           "\",\"ms\":%.1f",
           s1.gets - s0.gets, s1.lists - s0.lists, s1.bytes_got - s0.bytes_got, res->stats.objects,
           res->stats.sections, res->stats.skipped, total, nrows, xxh64(tb.p, tb.len), digest,
           best);
    for (unsigned r = 0; runs && r < reps; r++)
        printf("%s%.1f", r ? "," : ",\"runs\":[", runs[r]);
    printf("%s}\n", runs ? "]" : "");
    free(runs);
    free(rows);
    wb_free(&tb);
    FILE *f = dump ? fopen(dump, "w") : NULL;
    if (dump && !f) {
        perror(dump);
        return 1;
    }
    for (uint32_t s = 0; f && s < res->nstacks; s++) {
        const uint32_t *fr = mprof_stack_frames(res, s);
        for (uint32_t k = mprof_stack_len(res, s); k-- > 0;)
            fprintf(f, "%s%c", intern_str_get(&res->str, fr[k]), k ? ';' : ' ');
        fprintf(f, "%" PRId64 "\n", res->vals[(size_t)s * res->ntypes]);
    }
    if (f && fclose(f)) {
        perror(dump);
        return 1;
    }
    mprof_free(res);
    engine_free(e);
    selector_free(sel);
    store_close(st);
    return 0;
}
