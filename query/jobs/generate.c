/* SPDX-License-Identifier: Apache-2.0 */
/*
 * generate — see generate.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/manifest.h"
#include "codec/segment.h"
#include "common/file.h"
#include "common/gzip.h"
#include "query/engine/ctree.h"
#include "query/jobs/generate.h"
#include "query/jobs/import.h"

#define HOUR_MS 3600000LL

struct source {
    Perftools__Profiles__Profile *p;
    int64_t *orig;                            /* every sample's values, concatenated */
    Perftools__Profiles__Sample **all, **sel; /* the full list, and a subset */
};

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: tiny, seedable, good enough for benchmark variation */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int load_source(const char *path, struct source *src, char *err, size_t errlen)
{
    uint8_t *raw = NULL, *pb = NULL;
    size_t len = 0, pblen = 0;
    int ret;

    memset(src, 0, sizeof(*src));
    ret = read_file(path, IMPORT_MAX_BYTES, (char **)&raw, &len);
    if (ret) {
        snprintf(err, errlen, "%s: %s", path, strerror(-ret));
        return ret;
    }
    ret = gzip_decompress(raw, len, IMPORT_MAX_BYTES, &pb, &pblen);
    free(raw);
    if (ret) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-ret));
        free(pb);
        return ret;
    }
    src->p = perftools__profiles__profile__unpack(NULL, pblen, pb);
    free(pb);
    if (!src->p || !src->p->n_sample_type) {
        snprintf(err, errlen, "%s: not a pprof profile", path);
        return -EBADMSG;
    }
    /* a repaired source is used as the writer repairs it */
    char why[256];
    int chk = seg_pprof_check(src->p, why, sizeof(why));
    if (chk < 0) {
        snprintf(err, errlen, "%s: malformed pprof profile: %s", path,
                 why[0] ? why : strerror(-chk));
        return chk;
    }
    /* The generator names services and hosts itself: the source's own
     * service_name/host_name labels (the agent's files carry them) are
     * blanked (key 0 is skipped by the codec), everything else is kept. */
    for (size_t i = 0; i < src->p->n_sample; i++) {
        Perftools__Profiles__Sample *sm = src->p->sample[i];
        for (size_t j = 0; j < sm->n_label; j++) {
            int64_t k = sm->label[j]->key;
            if (k > 0 && (size_t)k < src->p->n_string_table &&
                (!strcmp(src->p->string_table[k], "service_name") ||
                 !strcmp(src->p->string_table[k], "host_name")))
                sm->label[j]->key = 0;
        }
    }
    size_t nv = 0;
    for (size_t i = 0; i < src->p->n_sample; i++)
        nv += src->p->sample[i]->n_value;
    /* all is protobuf-c's own sample array (free_source hands it back) */
    src->all = src->p->sample;
    src->orig = malloc((nv + 1) * sizeof(int64_t));
    src->sel = malloc((src->p->n_sample + 1) * sizeof(*src->sel));
    if (!src->orig || !src->sel)
        return -ENOMEM;
    nv = 0;
    for (size_t i = 0; i < src->p->n_sample; i++) {
        memcpy(&src->orig[nv], src->p->sample[i]->value,
               src->p->sample[i]->n_value * sizeof(int64_t));
        nv += src->p->sample[i]->n_value;
    }
    return 0;
}

static void free_source(struct source *s)
{
    if (s->p) {
        /* restore the sample list we swapped before protobuf-c frees it
         * (none was swapped when loading stopped before all was set) */
        if (s->all)
            s->p->sample = s->all;
        perftools__profiles__profile__free_unpacked(s->p, NULL);
    }
    free(s->orig);
    free(s->sel);
}

/* One varied copy of @s, in place: values scaled, ~10% of samples out. */
static void vary(struct source *s, uint64_t *rng, uint64_t *samples, uint64_t *rows)
{
    size_t k = 0, nv = 0;
    for (size_t i = 0; i < s->p->n_sample; i++) {
        Perftools__Profiles__Sample *sm = s->all[i];
        uint64_t r = rng_next(rng);
        double scale = 0.5 + (double)(r >> 11) / (double)(1ull << 53);
        for (size_t v = 0; v < sm->n_value; v++) {
            int64_t x = (int64_t)((double)s->orig[nv + v] * scale + 0.5);
            sm->value[v] = x > 0 ? x : 1;
        }
        nv += sm->n_value;
        if ((r & 15) >= 2 || s->p->n_sample < 4) { /* keep 14 of 16 */
            s->sel[k++] = sm;
            if (sm->n_value)
                *samples += (uint64_t)sm->value[0];
            (*rows)++;
        }
    }
    s->p->sample = s->sel;
    s->p->n_sample = k;
}

static void unvary(struct source *s, size_t n_all)
{
    s->p->sample = s->all;
    s->p->n_sample = n_all;
}

/* ---- the calibrated model --------------------------------------------- */

#define MODEL_WINDOW_MS 10000
#define MODEL_PERIOD    52631578 /* ns between samples at 19 Hz */
#define MODEL_MAX_DEPTH 128
#define MODEL_MODULES   97

/* Measured by bench/calibrate.sh on the development host, 2026-12-06
 * (docs/storage.md, "The calibrated fleet"); bench/calibrate.py prints
 * these lines. */
#define MODEL_ROWS              321
#define MODEL_SAMPLES_PER_ROW   1.177
#define MODEL_ZIPF              1.547
#define MODEL_CHURN             0.944
#define MODEL_CHURN_NEW         0.859
#define MODEL_FUNCTIONS         3895
#define MODEL_LABEL_SETS        1
#define MODEL_SERVICES_PER_HOST 103
#define MODEL_DEPTH_DECILES     7, 9, 10, 13, 16, 18, 20, 22, 26, 139

const struct generate_model generate_model_calibrated = {
    .rows = MODEL_ROWS,
    .samples_per_row = MODEL_SAMPLES_PER_ROW,
    .zipf = MODEL_ZIPF,
    .churn = MODEL_CHURN,
    .churn_new = MODEL_CHURN_NEW,
    .functions = MODEL_FUNCTIONS,
    .label_sets = MODEL_LABEL_SETS,
    .services_per_host = MODEL_SERVICES_PER_HOST,
    .depth_deciles = {MODEL_DEPTH_DECILES},
};

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t s = a ^ (b * 0x9E3779B97F4A7C15ull);
    s = rng_next(&s) ^ c;
    s = rng_next(&s) ^ d;
    return rng_next(&s);
}

/* One pprof profile rebuilt for every (host, service, window), with dense
 * ids: only the functions its samples use (so the codec's per-profile work
 * is proportional to the rows, not to the model's pool). */
struct model_gen {
    const struct generate_model *m;
    unsigned rows; /* per host and window, all services */
    size_t cap;    /* frames a window can hold */
    Perftools__Profiles__Profile p;
    Perftools__Profiles__ValueType types[2], *typep[2], period_type;
    char **pool;     /* function names, then module files, then label values */
    uint32_t *stamp; /* per pool string: the window that last used it */
    uint32_t *idx;   /* its string index in that window */
    uint32_t *fidx;  /* per function: its id in that window */
    uint32_t epoch;
    char **strings;
    Perftools__Profiles__Function *funcs, **funcp;
    Perftools__Profiles__Location *locs, **locp;
    Perftools__Profiles__Line *lines, **linep;
    Perftools__Profiles__Sample *samples, **samplep;
    Perftools__Profiles__Label *labels, **labelp;
    uint64_t *loc_ids;
    int64_t *values;
};

static const char *const model_fixed[] = {"",    "samples",     "count",
                                          "cpu", "nanoseconds", "process_executable_name"};
#define MODEL_NFIXED 6

static void model_free(struct model_gen *g)
{
    size_t npool = g->m ? g->m->functions + MODEL_MODULES + g->m->label_sets + 1 : 0;
    for (size_t i = 0; g->pool && i < npool; i++)
        free(g->pool[i]);
    free(g->pool);
    free(g->stamp);
    free(g->idx);
    free(g->fidx);
    free(g->strings);
    free(g->funcs);
    free(g->funcp);
    free(g->locs);
    free(g->locp);
    free(g->lines);
    free(g->linep);
    free(g->samples);
    free(g->samplep);
    free(g->labels);
    free(g->labelp);
    free(g->loc_ids);
    free(g->values);
}

static int model_init(struct model_gen *g, const struct generate_model *m, unsigned rows)
{
    size_t nf = m->functions, nl = m->label_sets ? m->label_sets : 1;
    size_t npool = nf + MODEL_MODULES + m->label_sets + 1;

    memset(g, 0, sizeof(*g));
    g->m = m;
    g->rows = rows;
    if (!nf || !rows || rows > (1u << 16) || nf > (1u << 24) || nl > 4096)
        return -EINVAL;
    g->cap = (size_t)rows * MODEL_MAX_DEPTH;
    g->pool = calloc(npool, sizeof(char *));
    g->stamp = calloc(npool, sizeof(uint32_t));
    g->idx = calloc(npool, sizeof(uint32_t));
    g->fidx = calloc(nf, sizeof(uint32_t));
    g->strings = calloc(MODEL_NFIXED + g->cap + MODEL_MODULES + rows, sizeof(char *));
    g->funcs = calloc(g->cap, sizeof(*g->funcs));
    g->funcp = calloc(g->cap, sizeof(*g->funcp));
    g->locs = calloc(g->cap, sizeof(*g->locs));
    g->locp = calloc(g->cap, sizeof(*g->locp));
    g->lines = calloc(g->cap, sizeof(*g->lines));
    g->linep = calloc(g->cap, sizeof(*g->linep));
    g->samples = calloc(rows, sizeof(*g->samples));
    g->samplep = calloc(rows, sizeof(*g->samplep));
    g->labels = calloc(rows, sizeof(*g->labels));
    g->labelp = calloc(rows, sizeof(*g->labelp));
    g->loc_ids = calloc(g->cap, sizeof(uint64_t));
    g->values = calloc((size_t)rows * 2, sizeof(int64_t));
    if (!g->pool || !g->stamp || !g->idx || !g->fidx || !g->strings || !g->funcs || !g->funcp ||
        !g->locs || !g->locp || !g->lines || !g->linep || !g->samples || !g->samplep ||
        !g->labels || !g->labelp || !g->loc_ids || !g->values)
        return -ENOMEM;
    for (size_t i = 0; i < npool; i++) {
        char b[64];
        if (i < nf)
            snprintf(b, sizeof(b), "module%03zu::handle_%06zu", i % MODEL_MODULES, i);
        else if (i < nf + MODEL_MODULES)
            snprintf(b, sizeof(b), "src/module%03zu/impl.c", i - nf);
        else
            snprintf(b, sizeof(b), "exe-%zu", i - nf - MODEL_MODULES);
        if (!(g->pool[i] = strdup(b)))
            return -ENOMEM;
    }
    perftools__profiles__profile__init(&g->p);
    g->p.string_table = g->strings;
    for (int i = 0; i < 2; i++) {
        perftools__profiles__value_type__init(&g->types[i]);
        g->types[i].type = i ? 3 : 1;
        g->types[i].unit = i ? 4 : 2;
        g->typep[i] = &g->types[i];
    }
    g->p.sample_type = g->typep;
    g->p.n_sample_type = 2;
    perftools__profiles__value_type__init(&g->period_type);
    g->period_type.type = 3;
    g->period_type.unit = 4;
    g->p.period_type = &g->period_type;
    g->p.period = MODEL_PERIOD;
    g->p.function = g->funcp;
    g->p.location = g->locp;
    for (size_t f = 0; f < g->cap; f++) {
        perftools__profiles__function__init(&g->funcs[f]);
        perftools__profiles__line__init(&g->lines[f]);
        perftools__profiles__location__init(&g->locs[f]);
        g->funcs[f].id = g->lines[f].function_id = g->locs[f].id = f + 1;
        g->funcp[f] = &g->funcs[f];
        g->linep[f] = &g->lines[f];
        g->locs[f].n_line = 1;
        g->locs[f].line = &g->linep[f];
        g->locp[f] = &g->locs[f];
    }
    for (unsigned r = 0; r < rows; r++) {
        perftools__profiles__sample__init(&g->samples[r]);
        perftools__profiles__label__init(&g->labels[r]);
        g->labels[r].key = 5;
        g->labelp[r] = &g->labels[r];
        g->samples[r].label = &g->labelp[r];
        g->samples[r].n_label = 1;
        g->samples[r].location_id = &g->loc_ids[(size_t)r * MODEL_MAX_DEPTH];
        g->samples[r].value = &g->values[(size_t)r * 2];
        g->samples[r].n_value = 2;
        g->samplep[r] = &g->samples[r];
    }
    g->p.sample = g->samplep;
    return 0;
}

/* The window's string index of pool string @i (added on first use).
 * Function f's name is pool string f: model_func() interns it, and the
 * stamp that says so also marks fidx[f] valid. */
static uint32_t model_str(struct model_gen *g, size_t i)
{
    if (g->stamp[i] != g->epoch) {
        g->stamp[i] = g->epoch;
        g->idx[i] = (uint32_t)g->p.n_string_table;
        g->strings[g->p.n_string_table++] = g->pool[i];
    }
    return g->idx[i];
}

/* The window's function (and location) id of pool function @f. */
static uint64_t model_func(struct model_gen *g, size_t f)
{
    if (g->stamp[f] != g->epoch) {
        size_t k = g->p.n_function++;
        g->funcs[k].name = g->funcs[k].system_name = model_str(g, f);
        g->funcs[k].filename = model_str(g, g->m->functions + f % MODEL_MODULES);
        g->lines[k].line = (int64_t)(1 + f * 2654435761u % 2000);
        g->fidx[f] = (uint32_t)(k + 1);
    }
    return g->fidx[f];
}

/* Rows of the service in slot @k (0 = the host's main one) of @nsvc. */
static unsigned model_rows_of(const struct model_gen *g, unsigned k, unsigned nsvc)
{
    double h = 0;
    for (unsigned i = 0; i < nsvc; i++)
        h += 1.0 / (i + 1);
    unsigned r = (unsigned)((double)g->rows / (k + 1) / h + 0.5);
    return r ? r : 1;
}

/* The frames of stack @id of service @svc, root first, in @out; the depth. */
static unsigned model_stack(const struct model_gen *g, uint64_t seed, unsigned svc, uint64_t id,
                            uint64_t *out)
{
    const unsigned *dec = g->m->depth_deciles;
    uint64_t u = mix(seed, id, 11, 0), x = mix(seed, id, 13, 0);
    /* a service's stacks are made of its own share of the functions */
    size_t sph = g->m->services_per_host ? g->m->services_per_host : 1;
    size_t pool = 2 * g->m->functions / sph, base = mix(seed, svc, 17, 0) % g->m->functions;
    if (pool < 64)
        pool = 64;
    unsigned b = (unsigned)(u % 10), lo = b ? dec[b - 1] : 1, hi = dec[b];
    if (lo < 1)
        lo = 1;
    if (hi < lo)
        hi = lo;
    unsigned d = lo + (unsigned)((u / 10) % (hi - lo + 1));
    if (d > MODEL_MAX_DEPTH)
        d = MODEL_MAX_DEPTH;
    /* level j's frame depends on x mod 3^j: stacks share their roots as a
     * ternary tree does, and fan out below */
    uint64_t pow3 = 1;
    for (unsigned j = 0; j < d; j++) {
        uint64_t grp = j < 40 ? x % pow3 : x;
        out[j] = (base + mix(seed, svc, j, grp) % pool) % g->m->functions;
        if (j < 40)
            pow3 *= 3;
    }
    return d;
}

/* Fills the profile with one window (index @t) of service @svc on @host,
 * which has @rows rows; adds the samples' count to @samples. */
static void model_window(struct model_gen *g, uint64_t seed, unsigned svc, unsigned host, int64_t t,
                         unsigned rows, uint64_t *samples)
{
    const struct generate_model *m = g->m;
    unsigned keep = (unsigned)((1.0 - m->churn) * rows + 0.5);
    double hz = 0, extra = (double)rows * (m->samples_per_row > 1 ? m->samples_per_row - 1 : 0);
    uint64_t tmp[MODEL_MAX_DEPTH];
    unsigned nl = m->label_sets ? m->label_sets : 1;

    if (keep > rows)
        keep = rows;
    if (++g->epoch == 0) { /* wrapped: forget every stamp */
        memset(g->stamp, 0, (m->functions + MODEL_MODULES + m->label_sets + 1) * sizeof(uint32_t));
        g->epoch = 1;
    }
    g->p.n_string_table = 0;
    for (size_t i = 0; i < MODEL_NFIXED; i++)
        g->strings[g->p.n_string_table++] = (char *)model_fixed[i];
    g->p.n_function = 0;
    for (unsigned i = 0; i < rows; i++)
        hz += pow(i + 1, -m->zipf);
    for (unsigned i = 0; i < rows; i++) {
        uint64_t id, u = mix(seed, ((uint64_t)svc << 32) | host, (uint64_t)t, i);
        if (i < keep) /* the service's steady stacks, the same on every host */
            id = mix(seed, svc, i, 0);
        else if ((double)(u % 1000) < 1000.0 * m->churn_new / (m->churn > 0 ? m->churn : 1))
            id = mix(seed, ((uint64_t)svc << 32) | host, (uint64_t)t, i + 1); /* never seen */
        else /* seen a few windows ago: back again */
            id = mix(seed, ((uint64_t)svc << 32) | host,
                     (uint64_t)(t - 2 - (int64_t)((u >> 10) % 30)),
                     keep + (u >> 20) % (rows - keep) + 1);
        Perftools__Profiles__Sample *sm = &g->samples[i];
        unsigned d = model_stack(g, seed, svc, id, tmp);
        for (unsigned j = 0; j < d; j++)
            sm->location_id[d - 1 - j] = model_func(g, tmp[j]); /* leaf first */
        sm->n_location_id = d;
        double w = 1 + extra * pow(i + 1, -m->zipf) / hz;
        int64_t c = (int64_t)w + ((double)((u >> 40) & 0xffff) / 65536.0 < w - (int64_t)w);
        sm->value[0] = c;
        sm->value[1] = c * MODEL_PERIOD;
        *samples += (uint64_t)c;
        g->labels[i].str = model_str(g, m->functions + MODEL_MODULES + id % nl);
    }
    g->p.n_sample = rows;
    g->p.n_location = g->p.n_function;
}

/* Writes @w's object: a block and its hour manifest (@block), or a segment,
 * with its entry manifest after it when @entry (the old layout). */
static int put_object(struct store *st, struct seg_writer *w, const char *tenant, const char *host,
                      int64_t t_ms, bool block, bool entry, unsigned gen,
                      struct generate_stats *out, char *err, size_t errlen)
{
    uint8_t *buf = NULL, *mbuf = NULL;
    size_t len = 0, mlen = 0;
    struct seg_footer *f = NULL;
    struct manifest *m = calloc(1, sizeof(*m));
    char key[1024], mkey[1024], date[11], hour[3];
    int ret = m ? seg_writer_finish(w, &buf, &len, &f) : -ENOMEM;

    if (ret)
        goto out;
    uint64_t h = seg_hash64(buf, len);
    if (block) {
        time_t tt = (time_t)(t_ms / 1000);
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(date, sizeof(date), "%Y-%m-%d", &tm);
        strftime(hour, sizeof(hour), "%H", &tm);
        snprintf(key, sizeof(key), "%s/blocks/%s/%s/%06u-%016llx.blk", tenant, date, hour, gen,
                 (unsigned long long)h);
    } else if ((ret = seg_object_key(key, sizeof(key), tenant, host, t_ms, h)) < 0) {
        goto out;
    }
    if ((ret = store_put(st, key, buf, len)))
        goto out;
    out->objects++;
    out->bytes += len;
    out->segment_bytes += len;
    if (!block && !entry)
        goto out;
    if ((ret = manifest_add(m, key, f)) || (ret = manifest_encode(m, &mbuf, &mlen)))
        goto out;
    ret = block
              ? manifest_hour_key(mkey, sizeof(mkey), tenant, t_ms, gen)
              : manifest_entry_key(mkey, sizeof(mkey), tenant, host, t_ms, seg_hash64(mbuf, mlen));
    if (ret < 0 || (ret = store_put(st, mkey, mbuf, mlen)))
        goto out;
    out->objects++;
    out->bytes += mlen;
out:
    if (ret)
        snprintf(err, errlen, "writing an object: %s", st->err[0] ? st->err : strerror(-ret));
    free(buf);
    free(mbuf);
    seg_footer_free(f);
    manifest_free(m);
    return ret < 0 ? ret : 0;
}

int fleet_generate(struct store *st, const struct generate_opts *o, struct generate_stats *out,
                   char *err, size_t errlen)
{
    const char *tenant = o->tenant ? o->tenant : "default";
    unsigned flush_s = o->flush_s ? o->flush_s : 60, windows = o->windows ? o->windows : 6;
    uint64_t rng = o->seed ? o->seed : 42, seed = rng;
    struct source *src = NULL;
    struct model_gen mg = {0};
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if ((!o->nfiles && !o->model) || !o->hosts || !o->services || !o->hours) {
        snprintf(err, errlen,
                 "hosts, services, hours and at least one source file (or a model) are needed");
        return -EINVAL;
    }
    if (o->model) {
        ret = model_init(&mg, o->model, o->model_rows ? o->model_rows : o->model->rows);
        if (ret)
            snprintf(err, errlen, "the model: %s", strerror(-ret));
        /* the model's windows are the agent's: 10 s, `windows` per flush */
        windows = flush_s * 1000 >= MODEL_WINDOW_MS ? flush_s * 1000 / MODEL_WINDOW_MS : 1;
    } else if (!(src = calloc(o->nfiles, sizeof(*src)))) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < o->nfiles && src && !ret; i++)
        ret = load_source(o->files[i], &src[i], err, errlen);
    int64_t start = o->start_ms;
    if (!start) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        start = (int64_t)ts.tv_sec * 1000 - (int64_t)o->hours * HOUR_MS;
    }
    start = start / HOUR_MS * HOUR_MS;
    unsigned flushes = (unsigned)(HOUR_MS / 1000 / flush_s);
    unsigned nsvc = o->services;
    unsigned sph = o->model_services ? o->model_services
                   : o->model        ? o->model->services_per_host
                                     : 0;
    if (sph && sph < nsvc)
        nsvc = sph;

    for (unsigned hr = 0; hr < o->hours && !ret; hr++) {
        int64_t hour_ms = start + (int64_t)hr * HOUR_MS;
        struct seg_writer *block = o->compacted ? seg_writer_new(tenant, "compacted") : NULL;
        struct ctree_cache *cache = block ? ctree_cache_new() : NULL;
        if (block && !cache)
            ret = -ENOMEM;
        if (block && cache) { /* the summaries compaction writes (compact.c) */
            seg_writer_set_topsum(block, engine_summaries_top, cache);
            seg_writer_set_calltree(block, engine_summaries_tree, cache);
        }
        for (unsigned h = 0; h < o->hosts && !ret; h++) {
            unsigned hid = o->first_host + h;
            char host[64];
            snprintf(host, sizeof(host), "host-%03u", hid);
            for (unsigned fl = 0; fl < flushes && !ret; fl++) {
                int64_t t0 = hour_ms + (int64_t)fl * flush_s * 1000;
                struct seg_writer *w = block ? block : seg_writer_new(tenant, host);
                if (!w) {
                    ret = -ENOMEM;
                    break;
                }
                for (unsigned s = 0; s < nsvc && !ret; s++) {
                    /* a modelled host runs services hid, hid+1, ... */
                    unsigned si = o->model ? (hid + s) % o->services : s;
                    unsigned mrows = o->model ? model_rows_of(&mg, s, nsvc) : 0;
                    struct source *sc = src ? &src[s % o->nfiles] : NULL;
                    char svc[64];
                    snprintf(svc, sizeof(svc), "svc-%02u", si);
                    struct seg_label labels[] = {{"service_name", svc}, {"host_name", host}};
                    size_t n_all = sc ? sc->p->n_sample : 0;
                    for (unsigned wi = 0; wi < windows && !ret; wi++) {
                        int64_t t = t0 + (int64_t)wi * flush_s * 1000 / windows;
                        if (sc) {
                            vary(sc, &rng, &out->samples, &out->rows);
                            ret = seg_writer_add_pprof(w, svc, sc->p, labels, 2, t);
                            unvary(sc, n_all);
                        } else {
                            model_window(&mg, seed, si, hid, t / MODEL_WINDOW_MS, mrows,
                                         &out->samples);
                            out->rows += mrows;
                            ret = seg_writer_add_pprof(w, svc, &mg.p, labels, 2, t);
                        }
                        if (ret)
                            snprintf(err, errlen, "%s: the codec refused it: %s",
                                     sc ? o->files[s % o->nfiles] : "the model", strerror(-ret));
                    }
                }
                if (!block) {
                    if (!ret)
                        ret = put_object(st, w, tenant, host, t0, false, o->entries, 0, out, err,
                                         errlen);
                    seg_writer_free(w);
                }
            }
        }
        if (block) {
            if (!ret)
                ret = put_object(st, block, tenant, "compacted", hour_ms, true, false, 1, out, err,
                                 errlen);
            seg_writer_free(block);
        }
        ctree_cache_free(cache);
    }
    for (size_t i = 0; src && i < o->nfiles; i++)
        free_source(&src[i]);
    free(src);
    if (o->model)
        model_free(&mg);
    return ret;
}
