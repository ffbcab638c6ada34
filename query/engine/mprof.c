/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/mprof.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/intern.h"
#include "query/engine/query.h"

/* ---- profile ----------------------------------------------------------- */

#define MPROF_STACKS_RESERVED 1024
#define MERGE_AHEAD           8 /* stacks mprof_merge maps ahead of adding */

struct mprof *mprof_new(uint32_t ntypes)
{
    struct mprof *p;

    if (ntypes == 0 || ntypes > MPROF_MAX_TYPES)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->ntypes = ntypes;
    for (uint32_t i = 0; i < MPROF_MAX_TYPES; i++)
        p->type_type[i] = p->type_unit[i] = MPROF_NONE;
    p->period_type = p->period_unit = MPROF_NONE;
    /* a merged profile holds thousands of stacks: skip the first doublings */
    if (intern_str(&p->str, "") != 0 || intern_reserve(&p->stk, MPROF_STACKS_RESERVED) != 0) {
        mprof_free(p);
        return NULL;
    }
    return p;
}

void mprof_free(struct mprof *p)
{
    if (!p)
        return;
    intern_free(&p->str);
    intern_free(&p->stk);
    free(p->vals);
    free(p->group_val);
    free(p->points);
    free(p->present);
    intern_free(&p->pairs);
    intern_free(&p->lsets);
    free(p->ind);
    free(p->ex);
    free(p->id_found);
    free(p->fself);
    free(p->ftotal);
    free(p->cpf);
    for (uint32_t i = 0; i < p->nwarnings; i++)
        free(p->warnings[i]);
    free(p);
}

size_t mprof_bytes(const struct mprof *p)
{
    if (!p)
        return 0;
    size_t cells = (size_t)p->groups_cap * p->nbuckets;
    return sizeof(*p) + intern_bytes(&p->str) + intern_bytes(&p->stk) + intern_bytes(&p->pairs) +
           intern_bytes(&p->lsets) + (size_t)p->vals_cap * p->ntypes * sizeof(*p->vals) +
           (size_t)p->groups_cap * sizeof(*p->group_val) +
           cells * (sizeof(*p->points) + sizeof(*p->present)) + p->ind_cap * sizeof(*p->ind) +
           (p->ex ? cells * sizeof(*p->ex) : 0) + p->nids +
           (size_t)p->fcap * p->ntypes * 2 * sizeof(*p->fself) +
           (p->cpf ? (size_t)p->vals_cap * sizeof(*p->cpf) : 0);
}

int mprof_top_add(struct mprof *p, uint32_t name, uint32_t col, int64_t self, int64_t total)
{
    if (name == MPROF_NONE || col >= p->ntypes)
        return -ENOMEM;
    if (name >= p->fcap) {
        uint32_t cap = p->fcap ? p->fcap : 1024;
        while (cap <= name)
            cap *= 2;
        size_t old = (size_t)p->fcap * p->ntypes, n = (size_t)cap * p->ntypes;
        int64_t *a = realloc(p->fself, n * sizeof(*a));
        if (!a)
            return -ENOMEM;
        p->fself = a;
        int64_t *b = realloc(p->ftotal, n * sizeof(*b));
        if (!b)
            return -ENOMEM;
        p->ftotal = b;
        memset(a + old, 0, (n - old) * sizeof(*a));
        memset(b + old, 0, (n - old) * sizeof(*b));
        p->fcap = cap;
    }
    p->top = true;
    MPROF_ADD(p->fself[(size_t)name * p->ntypes + col], self);
    MPROF_ADD(p->ftotal[(size_t)name * p->ntypes + col], total);
    return 0;
}

/* Grows vals to @cap stacks (> vals_cap), the new ones zeroed. */
static int vals_grow(struct mprof *p, uint32_t cap)
{
    int64_t *v = realloc(p->vals, (size_t)cap * p->ntypes * sizeof(*v));

    if (!v)
        return -ENOMEM;
    memset(v + (size_t)p->vals_cap * p->ntypes, 0,
           (size_t)(cap - p->vals_cap) * p->ntypes * sizeof(*v));
    p->vals = v;
    if (p->cpf) {
        struct mprof_cproof *c = realloc(p->cpf, (size_t)cap * sizeof(*c));
        if (!c)
            return -ENOMEM; /* vals_cap stays: the new values are spare */
        memset(c + p->vals_cap, 0, (size_t)(cap - p->vals_cap) * sizeof(*c));
        p->cpf = c;
    }
    p->vals_cap = cap;
    return 0;
}

int mprof_cproof_init(struct mprof *p)
{
    if (!p->cpf && !(p->cpf = calloc(p->vals_cap ? p->vals_cap : 1, sizeof(*p->cpf))))
        return -ENOMEM;
    return 0;
}

int mprof_reserve(struct mprof *p, uint32_t extra)
{
    uint64_t want = (uint64_t)p->stk.n + extra;

    if (want <= p->stk.cap && want <= p->vals_cap)
        return 0;
    if (want < 2ull * p->stk.cap)
        want = 2ull * p->stk.cap;
    if (want > UINT32_MAX / 2)
        return 0; /* left to the growth one stack at a time */
    if (intern_reserve(&p->stk, (uint32_t)want))
        return -ENOMEM;
    return want > p->vals_cap ? vals_grow(p, (uint32_t)want) : 0;
}

uint32_t mprof_stack_hashed(struct mprof *p, const uint32_t *f, uint32_t n, uint32_t hash)
{
    uint32_t s;
    int added;

    if (p->stk.n >= UINT32_MAX - 2)
        return MPROF_NONE;
    /* vals grows first, so a new stack always has its (zeroed) values */
    if (p->stk.n == p->vals_cap && vals_grow(p, p->vals_cap ? p->vals_cap * 2 : 256))
        return MPROF_NONE;
    added = intern_add_hashed(&p->stk, f, (size_t)n * sizeof(*f), hash, &s);
    if (added < 0)
        return MPROF_NONE;
    p->nstacks = p->stk.n;
    p->nframes += added ? n : 0;
    return s;
}

uint32_t mprof_stack(struct mprof *p, const uint32_t *f, uint32_t n)
{
    return mprof_stack_hashed(p, f, n, intern_hash(f, (size_t)n * sizeof(*f)));
}

int mprof_series_init(struct mprof *p, int64_t from, int64_t step, uint32_t nbuckets)
{
    if (p->ngroups || step <= 0 || nbuckets == 0)
        return -EINVAL;
    p->from = from;
    p->step = step;
    p->nbuckets = nbuckets;
    return 0;
}

uint32_t mprof_group(struct mprof *p, uint32_t val)
{
    for (uint32_t g = 0; g < p->ngroups; g++)
        if (p->group_val[g] == val)
            return g;
    if (p->ngroups == p->groups_cap) {
        uint32_t cap = p->groups_cap ? p->groups_cap * 2 : 8;
        size_t nb = p->nbuckets;
        uint32_t *gv = realloc(p->group_val, cap * sizeof(*gv));
        if (!gv)
            return MPROF_NONE;
        p->group_val = gv;
        int64_t *pt = realloc(p->points, cap * nb * sizeof(*pt));
        if (!pt)
            return MPROF_NONE;
        p->points = pt;
        uint8_t *pr = realloc(p->present, cap * nb);
        if (!pr)
            return MPROF_NONE;
        p->present = pr;
        if (p->want_ex) {
            struct mprof_ind *ex = realloc(p->ex, cap * nb * sizeof(*ex));
            if (!ex)
                return MPROF_NONE;
            p->ex = ex;
            for (size_t i = p->groups_cap * nb; i < cap * nb; i++)
                ex[i] = (struct mprof_ind){.lset = MPROF_NONE};
        }
        memset(pt + p->groups_cap * nb, 0, (cap - p->groups_cap) * nb * sizeof(*pt));
        memset(pr + p->groups_cap * nb, 0, (cap - p->groups_cap) * nb);
        p->groups_cap = cap;
    }
    p->group_val[p->ngroups] = val;
    return p->ngroups++;
}

int mprof_pair(struct mprof *p, uint32_t name, uint32_t value)
{
    uint64_t key = (uint64_t)name << 32 | value;
    uint32_t id;

    return intern_add(&p->pairs, &key, sizeof(key), &id) < 0 ? -ENOMEM : 0;
}

int mprof_ind_add(struct mprof *p, const struct mprof_ind *v)
{
    if (p->nind == p->ind_cap) {
        if (p->ind_cap >= MPROF_MAX_INDIVIDUAL) {
            p->ind_full = true;
            return -E2BIG;
        }
        size_t cap = p->ind_cap ? p->ind_cap * 2 : 1024;
        struct mprof_ind *n = realloc(p->ind, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        p->ind = n;
        p->ind_cap = cap;
    }
    p->ind[p->nind++] = *v;
    return 0;
}

void mprof_ex_offer(struct mprof *p, size_t i, const struct mprof_ind *v)
{
    struct mprof_ind *e = &p->ex[i];
    struct prof_id a = {v->time, v->hash}, b = {e->time, e->hash};

    if (e->lset == MPROF_NONE || v->value > e->value ||
        (v->value == e->value && prof_id_cmp(&a, &b) < 0))
        *e = *v;
}

/* Label set @l of @src as a label set of @dst (strings through @strmap). */
static uint32_t map_lset(struct mprof *dst, const struct mprof *src, const uint32_t *strmap,
                         uint32_t l)
{
    uint32_t n, buf[2 * 64], *v = buf, id = MPROF_NONE;
    const uint32_t *sv = mprof_lset(src, l, &n);

    if (n > 64 && !(v = malloc((size_t)n * 2 * sizeof(*v))))
        return MPROF_NONE;
    for (uint32_t k = 0; k < 2 * n; k++)
        v[k] = strmap[sv[k]];
    if (intern_add(&dst->lsets, v, (size_t)n * 2 * sizeof(*v), &id) < 0)
        id = MPROF_NONE;
    if (v != buf)
        free(v);
    return id;
}

static void warn_str(struct mprof *p, const char *s)
{
    for (uint32_t i = 0; i < p->nwarnings; i++)
        if (strcmp(p->warnings[i], s) == 0)
            return;
    if (p->nwarnings == MPROF_MAX_WARNINGS) {
        p->warnings_dropped++;
        return;
    }
    char *d = strdup(s);
    if (d)
        p->warnings[p->nwarnings++] = d;
}

void mprof_warn(struct mprof *p, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    warn_str(p, buf);
}

static uint32_t map_str(struct mprof *dst, const struct mprof *src, uint32_t id)
{
    uint32_t len;
    const char *s;

    if (id == MPROF_NONE)
        return MPROF_NONE;
    s = intern_get(&src->str, id, &len);
    return intern_strn(&dst->str, s, len);
}

int mprof_merge(struct mprof *dst, const struct mprof *src)
{
    uint32_t *fbuf = NULL, tmap[MPROF_MAX_TYPES];
    uint32_t maxd = 0;
    int rc = -ENOMEM;

    /* types: adopt src's names when dst has none yet */
    if (dst->period_type == MPROF_NONE && src->period_type != MPROF_NONE) {
        dst->period_type = map_str(dst, src, src->period_type);
        dst->period_unit = map_str(dst, src, src->period_unit);
        dst->period = src->period;
    }
    for (uint32_t t = 0; t < src->ntypes; t++) {
        tmap[t] = MPROF_NONE;
        if (src->type_type[t] == MPROF_NONE) {
            if (t < dst->ntypes)
                tmap[t] = t;
            continue;
        }
        for (uint32_t d = 0; d < dst->ntypes; d++)
            if (dst->type_type[d] != MPROF_NONE &&
                strcmp(intern_str_get(&dst->str, dst->type_type[d]),
                       intern_str_get(&src->str, src->type_type[t])) == 0 &&
                strcmp(intern_str_get(&dst->str, dst->type_unit[d]),
                       intern_str_get(&src->str, src->type_unit[t])) == 0) {
                tmap[t] = d;
                break;
            }
        /* A type dst has not seen yet takes a free column. */
        for (uint32_t d = 0; d < dst->ntypes && tmap[t] == MPROF_NONE; d++)
            if (dst->type_type[d] == MPROF_NONE) {
                dst->type_type[d] = map_str(dst, src, src->type_type[t]);
                dst->type_unit[d] = map_str(dst, src, src->type_unit[t]);
                tmap[t] = d;
            }
    }
    /* strings, mapped lazily through a dense table */
    uint32_t *strmap = malloc(((size_t)src->str.n + 1) * sizeof(*strmap));
    if (!strmap)
        return -ENOMEM;
    for (uint32_t i = 0; i < src->str.n; i++) {
        strmap[i] = map_str(dst, src, i);
        if (strmap[i] == MPROF_NONE)
            goto out;
    }
    dst->ctrees += src->ctrees;
    /* the proof is column 0's: it stays only where that column is dst's 0 */
    bool cpf = src->cpf && src->ntypes && tmap[0] == 0;
    if (cpf) {
        if (mprof_cproof_init(dst))
            goto out;
        dst->cpf_trees += src->cpf_trees;
        dst->root_cs += src->root_cs;
        MPROF_ADD(dst->root_unc, src->root_unc);
    }
    for (uint32_t t = 0; t < src->ntypes; t++)
        if (tmap[t] != MPROF_NONE)
            MPROF_ADD(dst->cut[tmap[t]], src->cut[t]);
    if (src->top) {
        dst->top = true;
        for (uint32_t t = 0; t < src->ntypes; t++)
            if (tmap[t] != MPROF_NONE)
                MPROF_ADD(dst->fsum[tmap[t]], src->fsum[t]);
        for (uint32_t i = 0; i < src->fcap && i < src->str.n; i++)
            for (uint32_t t = 0; t < src->ntypes; t++) {
                size_t k = (size_t)i * src->ntypes + t;
                if (tmap[t] != MPROF_NONE && (src->fself[k] || src->ftotal[k]) &&
                    mprof_top_add(dst, strmap[i], tmap[t], src->fself[k], src->ftotal[k]))
                    goto out;
            }
    }
    for (uint32_t s = 0; s < src->nstacks; s++)
        if (mprof_stack_len(src, s) > maxd)
            maxd = mprof_stack_len(src, s);
    /* Stacks go in MERGE_AHEAD behind their mapping: each is mapped and
     * hashed, its index slot prefetched, and added MERGE_AHEAD stacks
     * later, so the lookups' cache misses overlap (perf: the lookups were
     * most of the merge, waiting on the index and entry loads). */
    size_t stride = (size_t)maxd + 1;
    uint32_t hashes[MERGE_AHEAD];
    fbuf = malloc(stride * MERGE_AHEAD * sizeof(*fbuf));
    if (!fbuf || mprof_reserve(dst, src->nstacks))
        goto out;
    for (uint64_t i = 0; i < (uint64_t)src->nstacks + MERGE_AHEAD; i++) {
        /* stack i - MERGE_AHEAD is added before stack i takes its buffer */
        if (i >= MERGE_AHEAD) {
            uint32_t s = (uint32_t)(i - MERGE_AHEAD);
            uint32_t g = mprof_stack_hashed(dst, fbuf + (s % MERGE_AHEAD) * stride,
                                            mprof_stack_len(src, s), hashes[s % MERGE_AHEAD]);
            if (g == MPROF_NONE)
                goto out;
            for (uint32_t t = 0; t < src->ntypes; t++)
                if (tmap[t] != MPROF_NONE)
                    MPROF_ADD(dst->vals[(size_t)g * dst->ntypes + tmap[t]],
                              src->vals[(size_t)s * src->ntypes + t]);
            if (cpf) {
                dst->cpf[g].pc += src->cpf[s].pc;
                dst->cpf[g].cs += src->cpf[s].cs;
                MPROF_ADD(dst->cpf[g].unc, src->cpf[s].unc);
            }
        }
        if (i < src->nstacks) {
            const uint32_t *f = mprof_stack_frames(src, (uint32_t)i);
            uint32_t n = mprof_stack_len(src, (uint32_t)i), *b = fbuf + (i % MERGE_AHEAD) * stride;
            for (uint32_t k = 0; k < n; k++)
                b[k] = strmap[f[k]];
            hashes[i % MERGE_AHEAD] = intern_hash(b, (size_t)n * sizeof(*b));
            intern_prefetch(&dst->stk, hashes[i % MERGE_AHEAD]);
        }
        /* halfway: its slot is in the cache, its entry is fetched */
        if (i >= MERGE_AHEAD / 2 && i - MERGE_AHEAD / 2 < src->nstacks)
            intern_prefetch_entry(&dst->stk, hashes[(i - MERGE_AHEAD / 2) % MERGE_AHEAD]);
    }
    if (src->ngroups) {
        if (dst->nbuckets == 0 && dst->ngroups == 0)
            mprof_series_init(dst, src->from, src->step, src->nbuckets);
        if (dst->nbuckets != src->nbuckets || dst->step != src->step || dst->from != src->from) {
            rc = -EINVAL;
            goto out;
        }
        for (uint32_t g = 0; g < src->ngroups; g++) {
            uint32_t dg = mprof_group(dst, strmap[src->group_val[g]]);
            if (dg == MPROF_NONE)
                goto out;
            size_t nb = src->nbuckets;
            for (size_t b = 0; b < nb; b++) {
                MPROF_ADD(dst->points[dg * nb + b], src->points[g * nb + b]);
                dst->present[dg * nb + b] |= src->present[g * nb + b];
            }
        }
    }
    for (uint32_t i = 0; i < src->pairs.n; i++) {
        uint32_t name, value;
        mprof_pair_get(src, i, &name, &value);
        if (mprof_pair(dst, strmap[name], strmap[value]))
            goto out;
    }
    if (src->lsets.n) {
        /* Label sets once each, then the profiles and exemplars. */
        uint32_t *lmap = malloc((size_t)src->lsets.n * sizeof(*lmap));
        if (!lmap)
            goto out;
        for (uint32_t l = 0; l < src->lsets.n; l++)
            if ((lmap[l] = map_lset(dst, src, strmap, l)) == MPROF_NONE) {
                free(lmap);
                goto out;
            }
        for (size_t i = 0; i < src->nind; i++) {
            struct mprof_ind v = src->ind[i];
            v.lset = lmap[v.lset];
            int r = mprof_ind_add(dst, &v);
            if (r == -E2BIG)
                break;
            if (r) {
                free(lmap);
                goto out;
            }
        }
        if (src->ex && dst->ex && src->ngroups)
            for (uint32_t g = 0; g < src->ngroups; g++) {
                uint32_t dg = mprof_group(dst, strmap[src->group_val[g]]);
                if (dg == MPROF_NONE) {
                    free(lmap);
                    goto out;
                }
                for (size_t b = 0; b < src->nbuckets; b++) {
                    struct mprof_ind v = src->ex[(size_t)g * src->nbuckets + b];
                    if (v.lset == MPROF_NONE)
                        continue;
                    v.lset = lmap[v.lset];
                    mprof_ex_offer(dst, (size_t)dg * dst->nbuckets + b, &v);
                }
            }
        free(lmap);
    }
    dst->ind_full |= src->ind_full;
    for (uint32_t i = 0; src->id_found && dst->id_found && i < src->nids && i < dst->nids; i++)
        dst->id_found[i] |= src->id_found[i];
    dst->stats.objects += src->stats.objects;
    dst->stats.sections += src->stats.sections;
    dst->stats.bytes_read += src->stats.bytes_read;
    dst->stats.cache_hits += src->stats.cache_hits;
    dst->stats.skipped += src->stats.skipped;
    for (uint32_t i = 0; i < src->nwarnings; i++)
        warn_str(dst, src->warnings[i]);
    dst->warnings_dropped += src->warnings_dropped;
    rc = 0;
out:
    free(strmap);
    free(fbuf);
    return rc;
}

/* ---- wire encoding ----------------------------------------------------- */

/*
 * Little-endian, fixed width:
 *   "SQP1" u32 nstrings {u32 len, bytes}
 *   u32 ntypes {u32 type, u32 unit} u32 period_type u32 period_unit i64 period
 *   u32 nstacks {u32 n, u32 frame[n], i64 val[ntypes]}
 *   i64 from i64 step u32 nbuckets u32 ngroups {u32 val, u32 npoints {u32 b, i64 v}}
 *   u32 npairs {u32 name, u32 value}
 *   u64 objects sections bytes_read cache_hits skipped, u64 warnings_dropped
 *   u32 nwarnings {u32 len, bytes}
 *   "SQP2" and "SQP3" only (a profile with call tree summaries, ctree.h):
 *   u32 ctrees, i64 cut[ntypes]
 *   "SQP3" only (their proof, mprof.cpf): u32 cpf_trees u32 root_cs
 *   i64 root_unc u32 n {u32 stack, u32 pc, u32 cs, i64 unc}, the stack by
 *   its place in the list above
 *   with function totals (top): i64 fsum[ntypes] u32 n {u32 name, u32 type,
 *   i64 self, i64 total}
 */
int mprof_encode(const struct mprof *p, uint8_t **buf, size_t *len)
{
    struct wbuf w = {0};

    bool cpf = p->ctrees && p->cpf && p->cpf_trees;
    wb_bytes(&w, cpf ? "SQP3" : p->ctrees ? "SQP2" : "SQP1", 4);
    wb_u32(&w, p->str.n);
    for (uint32_t i = 0; i < p->str.n; i++) {
        uint32_t len;
        const void *str = intern_get(&p->str, i, &len);
        wb_u32(&w, len);
        wb_bytes(&w, str, len);
    }
    wb_u32(&w, p->ntypes);
    for (uint32_t t = 0; t < p->ntypes; t++) {
        wb_u32(&w, p->type_type[t]);
        wb_u32(&w, p->type_unit[t]);
    }
    wb_u32(&w, p->period_type);
    wb_u32(&w, p->period_unit);
    wb_u64(&w, (uint64_t)p->period);
    wb_u32(&w, p->nstacks);
    for (uint32_t s = 0; s < p->nstacks; s++) {
        wb_u32(&w, mprof_stack_len(p, s));
        wb_bytes(&w, mprof_stack_frames(p, s), (size_t)mprof_stack_len(p, s) * 4);
        wb_bytes(&w, p->vals + (size_t)s * p->ntypes, (size_t)p->ntypes * 8);
    }
    wb_u64(&w, (uint64_t)p->from);
    wb_u64(&w, (uint64_t)p->step);
    wb_u32(&w, p->nbuckets);
    wb_u32(&w, p->ngroups);
    for (uint32_t g = 0; g < p->ngroups; g++) {
        uint32_t n = 0;
        for (uint32_t b = 0; b < p->nbuckets; b++)
            n += p->present[(size_t)g * p->nbuckets + b];
        wb_u32(&w, p->group_val[g]);
        wb_u32(&w, n);
        for (uint32_t b = 0; b < p->nbuckets; b++)
            if (p->present[(size_t)g * p->nbuckets + b]) {
                wb_u32(&w, b);
                wb_u64(&w, (uint64_t)p->points[(size_t)g * p->nbuckets + b]);
            }
    }
    wb_u32(&w, p->pairs.n);
    for (uint32_t i = 0; i < p->pairs.n; i++) {
        uint32_t name, value;
        mprof_pair_get(p, i, &name, &value);
        wb_u32(&w, name);
        wb_u32(&w, value);
    }
    wb_u64(&w, p->stats.objects);
    wb_u64(&w, p->stats.sections);
    wb_u64(&w, p->stats.bytes_read);
    wb_u64(&w, p->stats.cache_hits);
    wb_u64(&w, p->stats.skipped);
    wb_u64(&w, p->warnings_dropped);
    wb_u32(&w, p->nwarnings);
    for (uint32_t i = 0; i < p->nwarnings; i++) {
        wb_u32(&w, (uint32_t)strlen(p->warnings[i]));
        wb_bytes(&w, p->warnings[i], strlen(p->warnings[i]));
    }
    if (p->ctrees) {
        wb_u32(&w, p->ctrees);
        for (uint32_t t = 0; t < p->ntypes; t++)
            wb_u64(&w, (uint64_t)p->cut[t]);
    }
    if (cpf) {
        uint32_t n = 0;
        for (uint32_t s = 0; s < p->nstacks; s++)
            n += p->cpf[s].pc || p->cpf[s].cs || p->cpf[s].unc;
        wb_u32(&w, p->cpf_trees);
        wb_u32(&w, p->root_cs);
        wb_u64(&w, (uint64_t)p->root_unc);
        wb_u32(&w, n);
        for (uint32_t s = 0; s < p->nstacks; s++)
            if (p->cpf[s].pc || p->cpf[s].cs || p->cpf[s].unc) {
                wb_u32(&w, s);
                wb_u32(&w, p->cpf[s].pc);
                wb_u32(&w, p->cpf[s].cs);
                wb_u64(&w, (uint64_t)p->cpf[s].unc);
            }
    }
    if (p->top) { /* function totals: only after everything else */
        uint32_t n = 0;
        for (uint32_t i = 0; i < p->fcap && i < p->str.n; i++)
            for (uint32_t t = 0; t < p->ntypes; t++)
                n += p->fself[(size_t)i * p->ntypes + t] || p->ftotal[(size_t)i * p->ntypes + t];
        for (uint32_t t = 0; t < p->ntypes; t++)
            wb_u64(&w, (uint64_t)p->fsum[t]);
        wb_u32(&w, n);
        for (uint32_t i = 0; i < p->fcap && i < p->str.n; i++)
            for (uint32_t t = 0; t < p->ntypes; t++) {
                size_t k = (size_t)i * p->ntypes + t;
                if (!p->fself[k] && !p->ftotal[k])
                    continue;
                wb_u32(&w, i);
                wb_u32(&w, t);
                wb_u64(&w, (uint64_t)p->fself[k]);
                wb_u64(&w, (uint64_t)p->ftotal[k]);
            }
    }
    if (w.err) {
        free(w.p);
        return w.err;
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}

/* The reader keeps going after a short read (every get then yields 0) and
 * is checked once per record: r.bad says a get ran past the end. */
struct reader {
    struct rbuf r;
    bool bad;
};

static const void *take(struct reader *rd, size_t n)
{
    const uint8_t *p = NULL;

    if (rd->bad || rb_bytes(&rd->r, &p, n)) {
        rd->bad = true;
        return NULL;
    }
    return p;
}
static uint32_t get32(struct reader *rd)
{
    uint32_t v = 0;

    if (rd->bad || rb_u32(&rd->r, &v))
        rd->bad = true;
    return rd->bad ? 0 : v;
}
static uint64_t get64(struct reader *rd)
{
    uint64_t v = 0;

    if (rd->bad || rb_u64(&rd->r, &v))
        rd->bad = true;
    return rd->bad ? 0 : v;
}

int mprof_decode(const uint8_t *buf, size_t len, struct mprof **out)
{
    struct reader r = {.r = {.p = buf, .len = len}};
    struct mprof *p = NULL;
    uint32_t *f = NULL, ns, nt;
    int rc = -EBADMSG;

    *out = NULL;
    const void *magic = take(&r, 4);
    if (!magic ||
        (memcmp(magic, "SQP1", 4) && memcmp(magic, "SQP2", 4) && memcmp(magic, "SQP3", 4)))
        return -EBADMSG;
    bool cpf = !memcmp(magic, "SQP3", 4), ctrees = cpf || !memcmp(magic, "SQP2", 4);
    uint32_t *smap = NULL; /* SQP3: each listed stack's id here */
    ns = get32(&r);
    /* strings live in a temporary table first: ids must map 1:1 */
    struct intern tmp = {0};
    for (uint32_t i = 0; i < ns && !r.bad; i++) {
        uint32_t l = get32(&r);
        const char *s = take(&r, l);
        if (!s)
            break;
        if (intern_strn(&tmp, s, l) != i) {
            /* duplicate strings or ENOMEM: reject, ids would not map 1:1 */
            r.bad = true;
            break;
        }
    }
    nt = get32(&r);
    if (r.bad || ns == 0 || nt == 0 || nt > MPROF_MAX_TYPES)
        goto out_tmp;
    p = mprof_new(nt);
    if (!p) {
        rc = -ENOMEM;
        goto out_tmp;
    }
    intern_free(&p->str);
    p->str = tmp;
    memset(&tmp, 0, sizeof(tmp));
#define ID_OK(id) ((id) == MPROF_NONE || (id) < ns)
    for (uint32_t t = 0; t < nt; t++) {
        p->type_type[t] = get32(&r);
        p->type_unit[t] = get32(&r);
        /* a type is named by both ids or by neither */
        if (!ID_OK(p->type_type[t]) || !ID_OK(p->type_unit[t]) ||
            (p->type_type[t] == MPROF_NONE) != (p->type_unit[t] == MPROF_NONE))
            goto out;
    }
    p->period_type = get32(&r);
    p->period_unit = get32(&r);
    p->period = (int64_t)get64(&r);
    if (!ID_OK(p->period_type) || !ID_OK(p->period_unit) ||
        (p->period_type == MPROF_NONE) != (p->period_unit == MPROF_NONE))
        goto out;
    uint32_t nstk = get32(&r);
    /* each stack takes at least 4 + 8 * nt bytes: a bound before allocating */
    if (cpf && (r.bad || nstk > rb_left(&r.r) / (4 + 8 * (size_t)nt) ||
                !(smap = malloc(((size_t)nstk + 1) * sizeof(*smap)))))
        goto out;
    for (uint32_t s = 0; s < nstk && !r.bad; s++) {
        uint32_t n = get32(&r);
        const uint8_t *fr = take(&r, (size_t)n * 4);
        const uint8_t *vv = take(&r, (size_t)nt * 8);
        if (!fr || !vv)
            goto out;
        uint32_t *nf = realloc(f, ((size_t)n + 1) * 4);
        if (!nf) {
            rc = -ENOMEM;
            goto out;
        }
        f = nf;
        memcpy(f, fr, (size_t)n * 4);
        for (uint32_t k = 0; k < n; k++)
            if (f[k] >= ns)
                goto out;
        uint32_t g = mprof_stack(p, f, n);
        if (g == MPROF_NONE) {
            rc = -ENOMEM;
            goto out;
        }
        if (smap)
            smap[s] = g;
        for (uint32_t t = 0; t < nt; t++) {
            int64_t v;
            memcpy(&v, vv + (size_t)t * 8, 8);
            MPROF_ADD(p->vals[(size_t)g * nt + t], v);
        }
    }
    int64_t from = (int64_t)get64(&r), step = (int64_t)get64(&r);
    uint32_t nb = get32(&r), ng = get32(&r);
    if (r.bad || nb > 1000000)
        goto out;
    if (ng) {
        if (mprof_series_init(p, from, step, nb))
            goto out;
        for (uint32_t g = 0; g < ng && !r.bad; g++) {
            uint32_t val = get32(&r), np = get32(&r);
            if (val >= ns || np > nb)
                goto out;
            uint32_t dg = mprof_group(p, val);
            if (dg == MPROF_NONE) {
                rc = -ENOMEM;
                goto out;
            }
            for (uint32_t k = 0; k < np && !r.bad; k++) {
                uint32_t b = get32(&r);
                int64_t v = (int64_t)get64(&r);
                if (b >= nb)
                    goto out;
                MPROF_ADD(p->points[(size_t)dg * nb + b], v);
                p->present[(size_t)dg * nb + b] = 1;
            }
        }
    }
    uint32_t npairs = get32(&r);
    for (uint32_t i = 0; i < npairs && !r.bad; i++) {
        uint32_t a = get32(&r), b = get32(&r);
        if (r.bad || a >= ns || b >= ns)
            goto out;
        if (mprof_pair(p, a, b)) {
            rc = -ENOMEM;
            goto out;
        }
    }
    p->stats.objects = get64(&r);
    p->stats.sections = get64(&r);
    p->stats.bytes_read = get64(&r);
    p->stats.cache_hits = get64(&r);
    p->stats.skipped = get64(&r);
    p->warnings_dropped = get64(&r);
    uint32_t nw = get32(&r);
    for (uint32_t i = 0; i < nw && !r.bad; i++) {
        uint32_t l = get32(&r);
        const char *s = take(&r, l);
        if (!s || l > 4096)
            goto out;
        char tmpw[4097];
        memcpy(tmpw, s, l);
        tmpw[l] = '\0';
        warn_str(p, tmpw);
    }
    if (ctrees) {
        p->ctrees = get32(&r);
        for (uint32_t t = 0; t < nt; t++)
            p->cut[t] = (int64_t)get64(&r);
    }
    if (cpf) {
        p->cpf_trees = get32(&r);
        p->root_cs = get32(&r);
        p->root_unc = (int64_t)get64(&r);
        uint32_t n = get32(&r);
        if (r.bad || p->cpf_trees > p->ctrees || mprof_cproof_init(p))
            goto out;
        for (uint32_t i = 0; i < n && !r.bad; i++) {
            uint32_t s = get32(&r), pc = get32(&r), cs = get32(&r);
            int64_t unc = (int64_t)get64(&r);
            if (r.bad || s >= nstk)
                goto out;
            struct mprof_cproof *c = &p->cpf[smap[s]];
            c->pc += pc;
            c->cs += cs;
            MPROF_ADD(c->unc, unc);
        }
    }
    if (!r.bad && rb_left(&r.r)) { /* function totals (mprof_encode) */
        p->top = true;
        for (uint32_t t = 0; t < nt; t++)
            p->fsum[t] = (int64_t)get64(&r);
        uint32_t n = get32(&r);
        for (uint32_t i = 0; i < n && !r.bad; i++) {
            uint32_t name = get32(&r), t = get32(&r);
            int64_t a = (int64_t)get64(&r), b = (int64_t)get64(&r);
            if (r.bad || name >= ns || t >= nt)
                goto out;
            if (mprof_top_add(p, name, t, a, b)) {
                rc = -ENOMEM;
                goto out;
            }
        }
    }
    if (r.bad || rb_left(&r.r))
        goto out;
    free(f);
    free(smap);
    *out = p;
    return 0;
out:
    free(f);
    free(smap);
    mprof_free(p);
    return rc;
out_tmp:
    intern_free(&tmp);
    return rc;
}

void mprof_keep_call_site(struct mprof *p, const char *const *names, size_t n)
{
    uint32_t ids[64];
    bool absent = false;

    if (n == 0)
        return;
    /* Names as string ids; one the profile never saw matches no stack.
     * Call sites deeper than ids[] compare by string. */
    for (size_t j = 0; j < n && j < 64; j++) {
        ids[j] = intern_find(&p->str, names[j], strlen(names[j]));
        absent |= ids[j] == INTERN_NONE;
    }
    for (uint32_t s = 0; s < p->nstacks; s++) {
        const uint32_t *f = mprof_stack_frames(p, s);
        uint32_t len = mprof_stack_len(p, s);
        bool keep = !absent && len >= n;
        for (size_t j = 0; keep && j < n; j++) {
            uint32_t id = f[len - 1 - j];
            keep = j < 64 ? id == ids[j] : strcmp(intern_str_get(&p->str, id), names[j]) == 0;
        }
        if (!keep)
            memset(p->vals + (size_t)s * p->ntypes, 0, p->ntypes * sizeof(*p->vals));
    }
}
