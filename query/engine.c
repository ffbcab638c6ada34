/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/segment.h"
#include "query/auth.h"
#include "query/plan.h"

struct engine {
    struct engine_opts o;
    pthread_mutex_t lock;
    struct engine_counters c;
};

struct engine *engine_new(const struct engine_opts *o)
{
    struct engine *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    e->o = *o;
    if (!e->o.threads)
        e->o.threads = 2;
    if (!e->o.peer_timeout_ms)
        e->o.peer_timeout_ms = 60000;
    pthread_mutex_init(&e->lock, NULL);
    return e;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    pthread_mutex_destroy(&e->lock);
    free(e);
}

void engine_counters(struct engine *e, struct engine_counters *out)
{
    pthread_mutex_lock(&e->lock);
    *out = e->c;
    pthread_mutex_unlock(&e->lock);
}

int engine_series_grid(const struct query *q, int64_t *step, uint32_t *nbuckets)
{
    int64_t span = q->until - q->from, s = q->step;

    if (span <= 0)
        return -EINVAL;
    if (s <= 0) {
        s = (span + 99) / 100;
        s = (s + 999) / 1000 * 1000;
        if (s < 1000)
            s = 1000;
    }
    int64_t nb = (span + s - 1) / s;
    if (nb > SERIES_MAX_POINTS)
        return -E2BIG;
    *step = s;
    *nbuckets = (uint32_t)nb;
    return 0;
}

/* ---- the merge kernel -------------------------------------------------- */

struct secmap {
    struct mprof *mp;
    const struct seg_section *sec;
    uint32_t *fmap;      /* section function -> name id */
    uint32_t *loc_start; /* section location -> offset in lf, NONE = not yet */
    uint32_t *loc_n;
    uint32_t *lf;
    size_t nlf, lf_cap;
    uint32_t *buf;
    size_t buf_cap;
    uint32_t unknown;
};

static int lf_push(struct secmap *m, uint32_t id)
{
    if (m->nlf == m->lf_cap) {
        size_t cap = m->lf_cap ? m->lf_cap * 2 : 1024;
        uint32_t *n = realloc(m->lf, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        m->lf = n;
        m->lf_cap = cap;
    }
    m->lf[m->nlf++] = id;
    return 0;
}

static uint32_t func_name(struct secmap *m, uint32_t f)
{
    if (m->fmap[f] == MPROF_NONE) {
        const char *s = m->sec->strings[m->sec->functions[f].name];
        m->fmap[f] = mstr_intern(&m->mp->str, s, strlen(s));
    }
    return m->fmap[f];
}

static int loc_frames(struct secmap *m, uint32_t l)
{
    const struct seg_section *sec = m->sec;
    const struct seg_location *loc = &sec->locations[l];

    if (m->loc_start[l] != MPROF_NONE)
        return 0;
    m->loc_start[l] = (uint32_t)m->nlf;
    if (loc->nlines == 0) {
        /* No symbol: name it the way pprof tools do, "<file base>+0x<addr>". */
        char name[512];
        const char *base = "";
        if (loc->mapping != UINT32_MAX && loc->mapping < sec->nmappings) {
            const char *fn = sec->strings[sec->mappings[loc->mapping].filename];
            const char *sl = strrchr(fn, '/');
            base = sl ? sl + 1 : fn;
            if (!*fn)
                base = ".";
        }
        int n = snprintf(name, sizeof(name), "%s+0x%" PRIx64, base, loc->address);
        uint32_t id =
            mstr_intern(&m->mp->str, name, n < (int)sizeof(name) ? (size_t)n : sizeof(name) - 1);
        if (id == MPROF_NONE || lf_push(m, id))
            return -ENOMEM;
    }
    for (uint32_t j = 0; j < loc->nlines; j++) {
        uint32_t id = func_name(m, sec->lines[loc->line_off + j].function);
        if (id == MPROF_NONE || lf_push(m, id))
            return -ENOMEM;
    }
    m->loc_n[l] = (uint32_t)(m->nlf - m->loc_start[l]);
    return 0;
}

static uint32_t map_stack(struct secmap *m, uint32_t s)
{
    const struct seg_section *sec = m->sec;
    size_t n = 0;

    for (uint32_t k = sec->stack_off[s]; k < sec->stack_off[s + 1]; k++) {
        uint32_t l = sec->stack_locs[k];
        if (loc_frames(m, l))
            return MPROF_NONE;
        if (n + m->loc_n[l] + 1 > m->buf_cap) {
            size_t cap = m->buf_cap ? m->buf_cap : 256;
            while (cap < n + m->loc_n[l] + 1)
                cap *= 2;
            uint32_t *b = realloc(m->buf, cap * sizeof(*b));
            if (!b)
                return MPROF_NONE;
            m->buf = b;
            m->buf_cap = cap;
        }
        memcpy(m->buf + n, m->lf + m->loc_start[l], (size_t)m->loc_n[l] * sizeof(uint32_t));
        n += m->loc_n[l];
    }
    if (n == 0) {
        if (m->unknown == MPROF_NONE)
            m->unknown = mstr_intern(&m->mp->str, "[unknown]", 9);
        if (m->unknown == MPROF_NONE)
            return MPROF_NONE;
        if (!m->buf && !(m->buf = malloc(256 * sizeof(uint32_t))))
            return MPROF_NONE;
        if (!m->buf_cap)
            m->buf_cap = 256;
        m->buf[n++] = m->unknown;
    }
    return mprof_stack(m->mp, m->buf, (uint32_t)n);
}

/* First index in [lo, hi) with a[i] >= v (a sorted). */
static uint64_t lower_u32(const uint32_t *a, uint64_t lo, uint64_t hi, uint32_t v)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint64_t lower_i64(const int64_t *a, uint64_t lo, uint64_t hi, int64_t v)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint32_t type_column(struct mprof *mp, const struct seg_section *sec, uint32_t t)
{
    const char *ty = sec->strings[sec->types[t].type], *un = sec->strings[sec->types[t].unit];

    for (uint32_t c = 0; c < mp->ntypes; c++) {
        if (mp->type_type[c] == MPROF_NONE) {
            mp->type_type[c] = mstr_intern(&mp->str, ty, strlen(ty));
            mp->type_unit[c] = mstr_intern(&mp->str, un, strlen(un));
            return c;
        }
        if (strcmp(mstr_get(&mp->str, mp->type_type[c]), ty) == 0 &&
            strcmp(mstr_get(&mp->str, mp->type_unit[c]), un) == 0)
            return c;
    }
    return MPROF_NONE;
}

/* Label value string id of @name_id in series @i, or UINT32_MAX. */
static uint32_t series_value(const struct seg_section *sec, uint32_t i, uint32_t name_id)
{
    const uint32_t *lab = sec->series_labels + 2 * (size_t)sec->series_off[i];
    uint32_t nl = sec->series_off[i + 1] - sec->series_off[i];

    if (name_id == UINT32_MAX)
        return UINT32_MAX;
    for (uint32_t j = 0; j < nl; j++)
        if (lab[2 * j] == name_id)
            return lab[2 * j + 1];
    return UINT32_MAX;
}

static uint32_t find_string(const struct seg_section *sec, const char *s)
{
    for (uint32_t j = 1; j < sec->nstrings; j++)
        if (strcmp(sec->strings[j], s) == 0)
            return j;
    return UINT32_MAX;
}

static int merge_profile(struct mprof *mp, const struct seg_section *sec, const uint8_t *mask,
                         uint32_t col, const struct query *q)
{
    struct secmap m = {.mp = mp, .sec = sec, .unknown = MPROF_NONE};
    uint32_t cmap[MPROF_MAX_TYPES], *smap = NULL;
    int64_t *acc = NULL;
    bool any = false;
    uint32_t nt = sec->ntypes < MPROF_MAX_TYPES ? sec->ntypes : MPROF_MAX_TYPES;
    int rc = -ENOMEM;

    for (uint32_t t = 0; t < MPROF_MAX_TYPES; t++)
        cmap[t] = MPROF_NONE;
    if (q->all_types) {
        for (uint32_t t = 0; t < nt; t++)
            cmap[t] = type_column(mp, sec, t);
    } else {
        if (mp->type_type[0] == MPROF_NONE)
            type_column(mp, sec, col);
    }
    if (mp->period_type == MPROF_NONE) {
        const char *a = sec->strings[sec->period_type.type],
                   *b = sec->strings[sec->period_type.unit];
        mp->period_type = mstr_intern(&mp->str, a, strlen(a));
        mp->period_unit = mstr_intern(&mp->str, b, strlen(b));
        mp->period = sec->period;
    }
    m.fmap = malloc(((size_t)sec->nfunctions + 1) * sizeof(uint32_t));
    m.loc_start = malloc(((size_t)sec->nlocations + 1) * sizeof(uint32_t));
    m.loc_n = malloc(((size_t)sec->nlocations + 1) * sizeof(uint32_t));
    smap = malloc(((size_t)sec->nstacks + 1) * sizeof(uint32_t));
    if (!q->all_types)
        acc = calloc((size_t)sec->nstacks + 1, sizeof(*acc));
    if (!m.fmap || !m.loc_start || !m.loc_n || !smap || (!q->all_types && !acc))
        goto out;
    memset(m.fmap, 0xff, (size_t)sec->nfunctions * sizeof(uint32_t));
    memset(m.loc_start, 0xff, (size_t)sec->nlocations * sizeof(uint32_t));
    memset(smap, 0xff, (size_t)sec->nstacks * sizeof(uint32_t));

    const uint32_t *stk = sec->sample_stack;
    const int64_t *sv = sec->sample_values;
    const uint32_t stride = sec->ntypes;
    uint64_t lo = 0;
    for (uint32_t i = 0; i < sec->nseries; i++) {
        uint64_t a = lower_u32(sec->sample_series, lo, sec->nsamples, i);
        uint64_t b = lower_u32(sec->sample_series, a, sec->nsamples, i + 1);
        lo = b;
        if (!mask[i] || a == b)
            continue;
        if ((rc = qcancel_check(q->cancel)))
            goto out;
        rc = -ENOMEM;
        a = lower_i64(sec->sample_time_ms, a, b, q->from);
        b = lower_i64(sec->sample_time_ms, a, b, q->until);
        if (q->all_types) {
            for (uint64_t r = a; r < b; r++) {
                uint32_t g = smap[stk[r]];
                if (__builtin_expect(g == MPROF_NONE, 0)) {
                    g = smap[stk[r]] = map_stack(&m, stk[r]);
                    if (g == MPROF_NONE)
                        goto out;
                }
                for (uint32_t t = 0; t < nt; t++)
                    if (cmap[t] != MPROF_NONE)
                        MPROF_ADD(mp->vals[(size_t)g * mp->ntypes + cmap[t]], sv[r * stride + t]);
            }
            continue;
        }
        /* The hot loop: one array add per row, indexed by the section's own
         * dense stack id; mapping to global stacks happens once per stack
         * below, not once per row. */
        const int64_t *v = sv + col;
        if (a == b)
            continue;
        /* Rows are sorted by stack within each time step, so runs of one
         * stack are summed in a register: adding to acc[] every row would
         * chain each add through store-to-load forwarding. */
        uint32_t cur = stk[a];
        uint64_t sum = 0;
        for (uint64_t r = a; r < b; r++) {
            uint32_t st = stk[r];
            if (st != cur) {
                MPROF_ADD(acc[cur], sum);
                sum = 0;
                cur = st;
            }
            sum += (uint64_t)v[r * stride];
        }
        MPROF_ADD(acc[cur], sum);
        any = true;
    }
    if (any)
        for (uint32_t s = 0; s < sec->nstacks; s++) {
            if (!acc[s])
                continue;
            uint32_t g = map_stack(&m, s);
            if (g == MPROF_NONE)
                goto out;
            MPROF_ADD(mp->vals[g], acc[s]);
        }
    rc = 0;
out:
    free(m.fmap);
    free(m.loc_start);
    free(m.loc_n);
    free(m.lf);
    free(m.buf);
    free(smap);
    free(acc);
    return rc;
}

static int merge_series(struct mprof *mp, const struct seg_section *sec, const uint8_t *mask,
                        uint32_t col, const struct query *q, const char *host)
{
    const char *gb = q->group_by && *q->group_by ? q->group_by : NULL;
    uint32_t gname = gb ? find_string(sec, gb) : UINT32_MAX;
    uint64_t lo = 0;
    size_t nb = mp->nbuckets;

    for (uint32_t i = 0; i < sec->nseries; i++) {
        uint64_t a = lower_u32(sec->sample_series, lo, sec->nsamples, i);
        uint64_t b = lower_u32(sec->sample_series, a, sec->nsamples, i + 1);
        lo = b;
        if (!mask[i] || a == b)
            continue;
        int rc = qcancel_check(q->cancel);
        if (rc)
            return rc;
        a = lower_i64(sec->sample_time_ms, a, b, q->from);
        b = lower_i64(sec->sample_time_ms, a, b, q->until);
        if (a == b)
            continue;
        const char *val = "";
        uint32_t v = series_value(sec, i, gname);
        if (v != UINT32_MAX)
            val = sec->strings[v];
        else if (gb && strcmp(gb, "service_name") == 0)
            val = sec->service;
        else if (gb && strcmp(gb, "host_name") == 0)
            val = host;
        uint32_t sid = mstr_intern(&mp->str, val, strlen(val));
        uint32_t g = sid == MPROF_NONE ? MPROF_NONE : mprof_group(mp, sid);
        if (g == MPROF_NONE)
            return -ENOMEM;
        int64_t *pts = mp->points + (size_t)g * nb;
        uint8_t *pr = mp->present + (size_t)g * nb;
        for (uint64_t r = a; r < b; r++) {
            uint64_t bk = (uint64_t)(sec->sample_time_ms[r] - mp->from) / (uint64_t)mp->step;
            if (bk >= nb)
                continue;
            MPROF_ADD(pts[bk], sec->sample_values[r * sec->ntypes + col]);
            pr[bk] = 1;
        }
    }
    return 0;
}

static int merge_labels(struct mprof *mp, const struct seg_section *sec, const uint8_t *mask,
                        const struct query *q, const char *host)
{
    uint32_t sn = find_string(sec, "service_name"), hn = find_string(sec, "host_name");
    uint64_t lo = 0;

    for (uint32_t i = 0; i < sec->nseries; i++) {
        uint64_t a = lower_u32(sec->sample_series, lo, sec->nsamples, i);
        uint64_t b = lower_u32(sec->sample_series, a, sec->nsamples, i + 1);
        lo = b;
        if (!mask[i] || a == b)
            continue;
        int rc = qcancel_check(q->cancel);
        if (rc)
            return rc;
        a = lower_i64(sec->sample_time_ms, a, b, q->from);
        if (a == lower_i64(sec->sample_time_ms, a, b, q->until))
            continue;
        const uint32_t *lab = sec->series_labels + 2 * (size_t)sec->series_off[i];
        uint32_t nl = sec->series_off[i + 1] - sec->series_off[i];
        for (uint32_t j = 0; j < nl; j++) {
            const char *n = sec->strings[lab[2 * j]], *v = sec->strings[lab[2 * j + 1]];
            uint32_t a1 = mstr_intern(&mp->str, n, strlen(n));
            uint32_t b1 = mstr_intern(&mp->str, v, strlen(v));
            if (a1 == MPROF_NONE || b1 == MPROF_NONE || mprof_pair(mp, a1, b1))
                return -ENOMEM;
        }
        const char *dn[2] = {"service_name", "host_name"}, *dv[2] = {sec->service, host};
        uint32_t did[2] = {sn, hn};
        for (int k = 0; k < 2; k++) {
            if (series_value(sec, i, did[k]) != UINT32_MAX || !dv[k] || !*dv[k])
                continue;
            uint32_t a1 = mstr_intern(&mp->str, dn[k], strlen(dn[k]));
            uint32_t b1 = mstr_intern(&mp->str, dv[k], strlen(dv[k]));
            if (a1 == MPROF_NONE || b1 == MPROF_NONE || mprof_pair(mp, a1, b1))
                return -ENOMEM;
        }
    }
    return 0;
}

int engine_merge_section(struct mprof *mp, const struct seg_section *sec, const char *host,
                         const struct query *q)
{
    const char *want = q->profile_type ? q->profile_type : DEFAULT_PROFILE_TYPE;
    uint32_t col = UINT32_MAX;
    char id[256];
    uint8_t *mask;
    int rc;

    for (uint32_t t = 0; t < sec->ntypes; t++)
        if (seg_profile_type_id(sec, t, id, sizeof(id)) >= 0 && strcmp(id, want) == 0) {
            col = t;
            break;
        }
    if (col == UINT32_MAX && !(q->mode == Q_LABELS && !q->profile_type))
        return 1;
    mask = malloc(sec->nseries + 1);
    if (!mask)
        return -ENOMEM;
    if (q->sel) {
        long n = selector_match_section(q->sel, sec, sec->service, host, mask);
        if (n < 0) {
            free(mask);
            return -ENOMEM;
        }
    } else {
        memset(mask, 1, sec->nseries);
    }
    switch (q->mode) {
    case Q_PROFILE:
        rc = merge_profile(mp, sec, mask, col, q);
        break;
    case Q_SERIES:
        rc = merge_series(mp, sec, mask, col, q, host);
        break;
    default:
        rc = merge_labels(mp, sec, mask, q, host);
        break;
    }
    free(mask);
    return rc;
}

/* ---- running a query --------------------------------------------------- */

static struct mprof *new_result(const struct query *q)
{
    struct mprof *mp = mprof_new(q->mode == Q_PROFILE && q->all_types ? MPROF_MAX_TYPES : 1);

    if (mp && q->mode == Q_SERIES) {
        int64_t step;
        uint32_t nb;
        if (engine_series_grid(q, &step, &nb) || mprof_series_init(mp, q->from, step, nb)) {
            mprof_free(mp);
            return NULL;
        }
    }
    return mp;
}

struct work {
    struct engine *e;
    const struct query *q;
    const struct plan_item **items;
    size_t n;
    atomic_size_t next;
    atomic_int failed;
};

struct worker {
    struct work *w;
    struct mprof *mp;
    pthread_t tid;
};

static void process_item(struct engine *e, struct mprof *mp, const struct query *q,
                         const struct plan_item *it)
{
    const struct seg_section_info *info = it->info;
    struct store_buf b = {0};
    struct seg_section *sec = NULL;
    char err[256] = "";
    bool hit = false;
    int rc;

    rc = cache_fetch(e->o.cache, e->o.store, it->key, info->offset, info->length, &b, &hit);
    if (rc) {
        mp->stats.skipped++;
        mprof_warn(mp, "segment %s: %s", it->key, strerror(-rc));
        return;
    }
    if (hit)
        mp->stats.cache_hits++;
    else
        mp->stats.bytes_read += b.len;
    if (b.len != info->length) {
        mp->stats.skipped++;
        mprof_warn(mp, "segment %s: section %s truncated (%zu of %" PRIu64 " bytes)", it->key,
                   info->service, b.len, info->length);
        free(b.data);
        return;
    }
    rc = seg_section_decode(b.data, b.len, info, &sec, err, sizeof(err));
    free(b.data);
    if (rc) {
        mp->stats.skipped++;
        mprof_warn(mp, "segment %s: %s", it->key, err[0] ? err : strerror(-rc));
        return;
    }
    mp->stats.sections++;
    rc = engine_merge_section(mp, sec, it->host, q);
    seg_section_free(sec);
    if (rc == -ENOMEM)
        mprof_warn(mp, "segment %s: out of memory merging", it->key);
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct work *w = wk->w;

    for (;;) {
        size_t i = atomic_fetch_add(&w->next, 1);
        if (i >= w->n || qcancel_check(w->q->cancel))
            break;
        process_item(w->e, wk->mp, w->q, w->items[i]);
    }
    return NULL;
}

/* Reads @items on up to e->o.threads threads and merges into @out. */
static int run_local(struct engine *e, const struct query *q, const struct plan_item **items,
                     size_t n, struct mprof *out)
{
    unsigned nth = e->o.threads;
    struct worker wk[8];
    struct work w = {.e = e, .q = q, .items = items, .n = n};
    int rc = 0;

    if (nth > 8)
        nth = 8;
    if (nth > n)
        nth = (unsigned)n;
    if (nth == 0)
        return 0;
    for (unsigned t = 0; t < nth; t++) {
        wk[t].w = &w;
        wk[t].mp = new_result(q);
        if (!wk[t].mp) {
            for (unsigned k = 0; k < t; k++)
                mprof_free(wk[k].mp);
            return -ENOMEM;
        }
    }
    /* Thread 0 is this one, so one section needs no thread at all. */
    unsigned started = 1;
    for (unsigned t = 1; t < nth; t++) {
        if (pthread_create(&wk[t].tid, NULL, worker_main, &wk[t]))
            break;
        started++;
    }
    worker_main(&wk[0]);
    for (unsigned t = 1; t < started; t++)
        pthread_join(wk[t].tid, NULL);
    /* A cancelled query's partial result is never merged. */
    rc = qcancel_check(q->cancel);
    for (unsigned t = 0; t < nth; t++) {
        if (!rc)
            rc = mprof_merge(out, wk[t].mp);
        mprof_free(wk[t].mp);
    }
    return rc;
}

/* ---- peers ------------------------------------------------------------- */

struct peer_call {
    struct engine *e;
    const struct query *q;
    const char *peer;
    uint32_t shard, nshards;
    struct mprof *result;
    char err[256];
    pthread_t tid;
    bool started;
};

struct membuf {
    uint8_t *p;
    size_t len;
    bool too_big;
};

#define PEER_MAX_RESPONSE (1024u * 1024 * 1024)

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct membuf *m = ud;
    size_t n = size * nmemb;

    if (m->len + n > PEER_MAX_RESPONSE) {
        m->too_big = true;
        return 0;
    }
    uint8_t *np = realloc(m->p, m->len + n + 1);
    if (!np)
        return 0;
    m->p = np;
    memcpy(m->p + m->len, ptr, n);
    m->len += n;
    return n;
}

char *engine_query_json(const struct query *q, uint32_t shard, uint32_t nshards)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "tenant", q->tenant);
    cJSON_AddStringToObject(o, "query", q->selector_text ? q->selector_text : "{}");
    cJSON_AddNumberToObject(o, "from", (double)q->from);
    cJSON_AddNumberToObject(o, "until", (double)q->until);
    if (q->profile_type)
        cJSON_AddStringToObject(o, "profile_type", q->profile_type);
    cJSON_AddNumberToObject(o, "mode", q->mode);
    cJSON_AddBoolToObject(o, "all_types", q->all_types);
    cJSON_AddNumberToObject(o, "step", (double)q->step);
    cJSON_AddStringToObject(o, "group_by", q->group_by ? q->group_by : "");
    cJSON_AddNumberToObject(o, "shard", shard);
    cJSON_AddNumberToObject(o, "nshards", nshards);
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* libcurl's progress callback: a non-zero return aborts the transfer. */
static int peer_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
    const struct peer_call *pc = ud;
    return qcancel_check(pc->q->cancel) != 0;
}

static void *peer_main(void *arg)
{
    struct peer_call *pc = arg;
    struct membuf mb = {0};
    char url[512];
    char *body = engine_query_json(pc->q, pc->shard, pc->nshards);
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL;
    long status = 0;
    CURLcode cc;

    if (!body || !c) {
        snprintf(pc->err, sizeof(pc->err), "out of memory");
        goto out;
    }
    snprintf(url, sizeof(url), "http://%s/internal/v1/select", pc->peer);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    if (pc->e->o.peer_token) {
        /* Workers with --auth-token-file send their first token. */
        char ah[64 + AUTH_MAX_TOKEN];
        snprintf(ah, sizeof(ah), "Authorization: Bearer %s", pc->e->o.peer_token);
        struct curl_slist *h2 = curl_slist_append(hdr, ah);
        memset(ah, 0, sizeof(ah));
        if (!h2) {
            snprintf(pc->err, sizeof(pc->err), "out of memory");
            goto out;
        }
        hdr = h2;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &mb);
    /* Never longer than the query may still run. */
    int64_t left = qcancel_left_ms(pc->q->cancel), tmo = pc->e->o.peer_timeout_ms;
    if (left >= 0 && left < tmo)
        tmo = left > 0 ? left : 1;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)tmo);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, peer_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, pc);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(pc->err, sizeof(pc->err), "%s",
                 mb.too_big ? "response too large" : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(pc->err, sizeof(pc->err), "HTTP %ld", status);
        goto out;
    }
    if (mprof_decode(mb.p, mb.len, &pc->result))
        snprintf(pc->err, sizeof(pc->err), "undecodable partial profile (%zu bytes)", mb.len);
out:
    curl_slist_free_all(hdr);
    if (c)
        curl_easy_cleanup(c);
    free(body);
    free(mb.p);
    return NULL;
}

/* ---- entry point ------------------------------------------------------- */

int engine_query(struct engine *e, const struct query *q, struct mprof **out, char *err,
                 size_t errlen)
{
    struct plan_req pr = {.tenant = q->tenant,
                          .sel = q->sel,
                          .from = q->from,
                          .until = q->until,
                          .profile_type =
                              q->mode == Q_LABELS && !q->profile_type
                                  ? NULL
                                  : (q->profile_type ? q->profile_type : DEFAULT_PROFILE_TYPE),
                          .cancel = q->cancel};
    struct plan *plan = NULL;
    struct mprof *res = NULL;
    const struct plan_item **mine = NULL;
    struct peer_call *calls = NULL;
    uint32_t nsh, myshard;
    size_t nmine = 0, ncalls = 0;
    int rc;

    *out = NULL;
    rc = plan_build(e->o.store, e->o.cache, &pr, &plan, err, errlen);
    if (rc)
        return rc;
    res = new_result(q);
    if (!res) {
        rc = -ENOMEM;
        goto out;
    }
    if (q->nshards) {
        nsh = q->nshards;
        myshard = q->shard;
    } else {
        nsh = (uint32_t)e->o.npeers + 1;
        myshard = 0;
        /* Only the coordinator reports what planning cost and skipped:
         * peers plan the same manifests again. */
        res->stats.skipped += plan->skipped;
        if ((rc = mprof_merge(res, plan->notes)))
            goto out;
    }
    mine = malloc((plan->n + 1) * sizeof(*mine));
    if (!mine) {
        rc = -ENOMEM;
        goto out;
    }
    {
        /* Objects are counted by the shard that reads them, so the sum over
         * peers is the number of distinct objects. */
        struct mstr keys = {0};
        for (size_t i = 0; i < plan->n; i++)
            if (plan->items[i].key_hash % nsh == myshard) {
                mine[nmine++] = &plan->items[i];
                mstr_intern(&keys, plan->items[i].key, strlen(plan->items[i].key));
            }
        res->stats.objects += keys.n;
        free(keys.arena);
        free(keys.off);
        free(keys.len);
        free(keys.slots);
    }
    if (!q->nshards && e->o.npeers) {
        calls = calloc(e->o.npeers, sizeof(*calls));
        if (!calls) {
            rc = -ENOMEM;
            goto out;
        }
        ncalls = e->o.npeers;
        for (size_t i = 0; i < ncalls; i++) {
            calls[i] = (struct peer_call){
                .e = e, .q = q, .peer = e->o.peers[i], .shard = (uint32_t)i + 1, .nshards = nsh};
            calls[i].started = pthread_create(&calls[i].tid, NULL, peer_main, &calls[i]) == 0;
            if (!calls[i].started)
                snprintf(calls[i].err, sizeof(calls[i].err), "cannot start a thread");
        }
    }
    rc = run_local(e, q, mine, nmine, res);
    for (size_t i = 0; i < ncalls; i++) {
        if (calls[i].started)
            pthread_join(calls[i].tid, NULL);
        if (!rc)
            rc = qcancel_check(q->cancel);
        if (rc) {
            /* Cancelled or failed: no fallback read of the peer's shard. */
            mprof_free(calls[i].result);
            continue;
        }
        if (calls[i].result) {
            if (!rc)
                rc = mprof_merge(res, calls[i].result);
            mprof_free(calls[i].result);
            continue;
        }
        /* A peer that fails costs speed, not results: read its shard here. */
        pthread_mutex_lock(&e->lock);
        e->c.peer_errors++;
        pthread_mutex_unlock(&e->lock);
        mprof_warn(res, "peer %s: %s; its shard was read locally", calls[i].peer, calls[i].err);
        size_t k = 0;
        for (size_t j = 0; j < plan->n; j++)
            if (plan->items[j].key_hash % nsh == calls[i].shard)
                mine[k++] = &plan->items[j];
        if (!rc) {
            struct mstr keys = {0};
            for (size_t j = 0; j < k; j++)
                mstr_intern(&keys, mine[j]->key, strlen(mine[j]->key));
            res->stats.objects += keys.n;
            free(keys.arena);
            free(keys.off);
            free(keys.len);
            free(keys.slots);
            rc = run_local(e, q, mine, k, res);
        }
    }
    if (rc && err && errlen)
        snprintf(err, errlen, "%s",
                 rc == -ENOMEM      ? "out of memory"
                 : rc == -ETIMEDOUT ? "deadline passed"
                 : rc == -ECANCELED ? "cancelled"
                                    : strerror(-rc));
out:
    pthread_mutex_lock(&e->lock);
    e->c.queries++;
    if (res) {
        e->c.sections += res->stats.sections;
        e->c.bytes_read += res->stats.bytes_read;
        e->c.cache_hits += res->stats.cache_hits;
        e->c.skipped += res->stats.skipped;
    }
    pthread_mutex_unlock(&e->lock);
    free(calls);
    free(mine);
    plan_free(plan);
    if (rc) {
        mprof_free(res);
        return rc;
    }
    *out = res;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int engine_profile_types(struct engine *e, const char *tenant, const struct selector *sel,
                         int64_t from, int64_t until, struct qcancel *cancel, char ***types,
                         size_t *n, struct mprof **notes, char *err, size_t errlen)
{
    struct plan_req pr = {
        .tenant = tenant, .sel = sel, .from = from, .until = until, .cancel = cancel};
    struct plan *plan = NULL;
    struct mstr seen = {0};
    char **v = NULL;
    int rc;

    *types = NULL;
    *n = 0;
    *notes = NULL;
    rc = plan_build(e->o.store, e->o.cache, &pr, &plan, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < plan->n; i++)
        for (size_t t = 0; t < plan->items[i].info->nprofile_types; t++) {
            const char *s = plan->items[i].info->profile_types[t];
            if (mstr_intern(&seen, s, strlen(s)) == MPROF_NONE)
                rc = -ENOMEM;
        }
    if (!rc && !(v = calloc(seen.n + 1, sizeof(*v))))
        rc = -ENOMEM;
    for (uint32_t i = 0; !rc && i < seen.n; i++)
        if (!(v[i] = strdup(mstr_get(&seen, i))))
            rc = -ENOMEM;
    if (!rc) {
        qsort(v, seen.n, sizeof(*v), cmp_str);
        *types = v;
        *n = seen.n;
        plan->notes->stats.objects = plan->objects;
        plan->notes->stats.skipped = plan->skipped;
        *notes = plan->notes;
        plan->notes = NULL;
    } else {
        for (uint32_t i = 0; v && i < seen.n; i++)
            free(v[i]);
        free(v);
        snprintf(err, errlen, "out of memory");
    }
    free(seen.arena);
    free(seen.off);
    free(seen.len);
    free(seen.slots);
    plan_free(plan);
    return rc;
}
