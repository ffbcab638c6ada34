/* SPDX-License-Identifier: Apache-2.0 */
#include "query/mprof.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static uint64_t hash_bytes(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ (len * 0x9e3779b97f4a7c15ULL);
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* ---- strings ----------------------------------------------------------- */

static int mstr_rehash(struct mstr *t, uint32_t nslots)
{
    uint32_t *slots = malloc((size_t)nslots * sizeof(*slots));

    if (!slots)
        return -ENOMEM;
    memset(slots, 0xff, (size_t)nslots * sizeof(*slots));
    for (uint32_t id = 0; id < t->n; id++) {
        uint64_t h = hash_bytes(t->arena + t->off[id], t->len[id]);
        uint32_t i = (uint32_t)h & (nslots - 1);
        while (slots[i] != MPROF_NONE)
            i = (i + 1) & (nslots - 1);
        slots[i] = id;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

uint32_t mstr_find(const struct mstr *t, const char *s, size_t len)
{
    if (!t->nslots)
        return MPROF_NONE;
    uint32_t i = (uint32_t)hash_bytes(s, len) & (t->nslots - 1);
    for (;; i = (i + 1) & (t->nslots - 1)) {
        uint32_t id = t->slots[i];
        if (id == MPROF_NONE)
            return MPROF_NONE;
        if (t->len[id] == len && memcmp(t->arena + t->off[id], s, len) == 0)
            return id;
    }
}

uint32_t mstr_intern(struct mstr *t, const char *s, size_t len)
{
    uint32_t id = mstr_find(t, s, len);

    if (id != MPROF_NONE)
        return id;
    if (len > UINT32_MAX - 1 || t->n >= UINT32_MAX - 1)
        return MPROF_NONE;
    if ((uint64_t)(t->n + 1) * 2 > t->nslots && mstr_rehash(t, t->nslots ? t->nslots * 2 : 64))
        return MPROF_NONE;
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        uint64_t *off = realloc(t->off, cap * sizeof(*off));
        if (!off)
            return MPROF_NONE;
        t->off = off;
        uint32_t *ln = realloc(t->len, cap * sizeof(*ln));
        if (!ln)
            return MPROF_NONE;
        t->len = ln;
        t->cap = cap;
    }
    if (t->arena_len + len + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 4096;
        while (cap < t->arena_len + len + 1)
            cap *= 2;
        char *a = realloc(t->arena, cap);
        if (!a)
            return MPROF_NONE;
        t->arena = a;
        t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = '\0';
    id = t->n++;
    t->off[id] = t->arena_len;
    t->len[id] = (uint32_t)len;
    t->arena_len += len + 1;
    uint32_t i = (uint32_t)hash_bytes(s, len) & (t->nslots - 1);
    while (t->slots[i] != MPROF_NONE)
        i = (i + 1) & (t->nslots - 1);
    t->slots[i] = id;
    return id;
}

static void mstr_free(struct mstr *t)
{
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->slots);
}

/* ---- profile ----------------------------------------------------------- */

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
    p->stk_off = calloc(1, sizeof(*p->stk_off));
    /* Never NULL, so frame pointers of empty stacks stay valid. */
    p->frames_cap = 64;
    p->frames = malloc(p->frames_cap * sizeof(*p->frames));
    if (!p->stk_off || !p->frames || mstr_intern(&p->str, "", 0) != 0) {
        mprof_free(p);
        return NULL;
    }
    return p;
}

void mprof_free(struct mprof *p)
{
    if (!p)
        return;
    mstr_free(&p->str);
    free(p->frames);
    free(p->stk_off);
    free(p->stk_slots);
    free(p->vals);
    free(p->group_val);
    free(p->points);
    free(p->present);
    free(p->pairs);
    free(p->pair_slots);
    for (uint32_t i = 0; i < p->nwarnings; i++)
        free(p->warnings[i]);
    free(p);
}

static uint64_t stack_hash(const uint32_t *f, uint32_t n)
{
    return hash_bytes(f, (size_t)n * sizeof(*f));
}

static int stacks_rehash(struct mprof *p, uint32_t nslots)
{
    uint32_t *slots = malloc((size_t)nslots * sizeof(*slots));

    if (!slots)
        return -ENOMEM;
    memset(slots, 0xff, (size_t)nslots * sizeof(*slots));
    for (uint32_t s = 0; s < p->nstacks; s++) {
        uint32_t i =
            (uint32_t)stack_hash(mprof_stack_frames(p, s), mprof_stack_len(p, s)) & (nslots - 1);
        while (slots[i] != MPROF_NONE)
            i = (i + 1) & (nslots - 1);
        slots[i] = s;
    }
    free(p->stk_slots);
    p->stk_slots = slots;
    p->nstk_slots = nslots;
    return 0;
}

uint32_t mprof_stack(struct mprof *p, const uint32_t *f, uint32_t n)
{
    uint64_t h = stack_hash(f, n);
    uint32_t i;

    if (p->nstk_slots) {
        for (i = (uint32_t)h & (p->nstk_slots - 1);; i = (i + 1) & (p->nstk_slots - 1)) {
            uint32_t s = p->stk_slots[i];
            if (s == MPROF_NONE)
                break;
            if (mprof_stack_len(p, s) == n &&
                memcmp(mprof_stack_frames(p, s), f, (size_t)n * sizeof(*f)) == 0)
                return s;
        }
    }
    if (p->nstacks >= UINT32_MAX - 2)
        return MPROF_NONE;
    if ((uint64_t)(p->nstacks + 1) * 2 > p->nstk_slots &&
        stacks_rehash(p, p->nstk_slots ? p->nstk_slots * 2 : 1024))
        return MPROF_NONE;
    if (p->nstacks == p->stacks_cap) {
        uint32_t cap = p->stacks_cap ? p->stacks_cap * 2 : 256;
        uint64_t *off = realloc(p->stk_off, ((size_t)cap + 1) * sizeof(*off));
        if (!off)
            return MPROF_NONE;
        p->stk_off = off;
        int64_t *v = realloc(p->vals, (size_t)cap * p->ntypes * sizeof(*v));
        if (!v)
            return MPROF_NONE;
        memset(v + (size_t)p->stacks_cap * p->ntypes, 0,
               (size_t)(cap - p->stacks_cap) * p->ntypes * sizeof(*v));
        p->vals = v;
        p->stacks_cap = cap;
    }
    if (p->nframes + n > p->frames_cap) {
        uint64_t cap = p->frames_cap ? p->frames_cap : 4096;
        while (cap < p->nframes + n)
            cap *= 2;
        uint32_t *fr = realloc(p->frames, cap * sizeof(*fr));
        if (!fr)
            return MPROF_NONE;
        p->frames = fr;
        p->frames_cap = cap;
    }
    memcpy(p->frames + p->nframes, f, (size_t)n * sizeof(*f));
    p->nframes += n;
    uint32_t s = p->nstacks++;
    p->stk_off[s + 1] = p->nframes;
    for (i = (uint32_t)h & (p->nstk_slots - 1); p->stk_slots[i] != MPROF_NONE;
         i = (i + 1) & (p->nstk_slots - 1))
        ;
    p->stk_slots[i] = s;
    return s;
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
        memset(pt + p->groups_cap * nb, 0, (cap - p->groups_cap) * nb * sizeof(*pt));
        memset(pr + p->groups_cap * nb, 0, (cap - p->groups_cap) * nb);
        p->groups_cap = cap;
    }
    p->group_val[p->ngroups] = val;
    return p->ngroups++;
}

int mprof_pair(struct mprof *p, uint32_t name, uint32_t value)
{
    uint64_t key = (uint64_t)name << 32 | value, h = hash_bytes(&key, sizeof(key));
    uint32_t i;

    if (p->npair_slots) {
        for (i = (uint32_t)h & (p->npair_slots - 1); p->pair_slots[i] != UINT64_MAX;
             i = (i + 1) & (p->npair_slots - 1))
            if (p->pair_slots[i] == key)
                return 0;
    }
    if ((uint64_t)(p->npairs + 1) * 2 > p->npair_slots) {
        uint32_t ns = p->npair_slots ? p->npair_slots * 2 : 256;
        uint64_t *sl = malloc((size_t)ns * sizeof(*sl));
        if (!sl)
            return -ENOMEM;
        memset(sl, 0xff, (size_t)ns * sizeof(*sl));
        for (uint32_t k = 0; k < p->npairs; k++) {
            uint32_t j = (uint32_t)hash_bytes(&p->pairs[k], 8) & (ns - 1);
            while (sl[j] != UINT64_MAX)
                j = (j + 1) & (ns - 1);
            sl[j] = p->pairs[k];
        }
        free(p->pair_slots);
        p->pair_slots = sl;
        p->npair_slots = ns;
    }
    if (p->npairs == p->pairs_cap) {
        uint32_t cap = p->pairs_cap ? p->pairs_cap * 2 : 64;
        uint64_t *pr = realloc(p->pairs, cap * sizeof(*pr));
        if (!pr)
            return -ENOMEM;
        p->pairs = pr;
        p->pairs_cap = cap;
    }
    p->pairs[p->npairs++] = key;
    for (i = (uint32_t)h & (p->npair_slots - 1); p->pair_slots[i] != UINT64_MAX;
         i = (i + 1) & (p->npair_slots - 1))
        ;
    p->pair_slots[i] = key;
    return 0;
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
    if (id == MPROF_NONE)
        return MPROF_NONE;
    return mstr_intern(&dst->str, mstr_get(&src->str, id), src->str.len[id]);
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
                strcmp(mstr_get(&dst->str, dst->type_type[d]),
                       mstr_get(&src->str, src->type_type[t])) == 0 &&
                strcmp(mstr_get(&dst->str, dst->type_unit[d]),
                       mstr_get(&src->str, src->type_unit[t])) == 0) {
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
    for (uint32_t s = 0; s < src->nstacks; s++)
        if (mprof_stack_len(src, s) > maxd)
            maxd = mprof_stack_len(src, s);
    fbuf = malloc(((size_t)maxd + 1) * sizeof(*fbuf));
    if (!fbuf)
        goto out;
    for (uint32_t s = 0; s < src->nstacks; s++) {
        const uint32_t *f = mprof_stack_frames(src, s);
        uint32_t n = mprof_stack_len(src, s);
        for (uint32_t k = 0; k < n; k++)
            fbuf[k] = strmap[f[k]];
        uint32_t g = mprof_stack(dst, fbuf, n);
        if (g == MPROF_NONE)
            goto out;
        for (uint32_t t = 0; t < src->ntypes; t++)
            if (tmap[t] != MPROF_NONE)
                MPROF_ADD(dst->vals[(size_t)g * dst->ntypes + tmap[t]],
                          src->vals[(size_t)s * src->ntypes + t]);
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
    for (uint32_t i = 0; i < src->npairs; i++)
        if (mprof_pair(dst, strmap[src->pairs[i] >> 32], strmap[(uint32_t)src->pairs[i]]))
            goto out;
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
 */
int mprof_encode(const struct mprof *p, uint8_t **buf, size_t *len)
{
    struct wbuf w = {0};

    wb_bytes(&w, "SQP1", 4);
    wb_u32(&w, p->str.n);
    for (uint32_t i = 0; i < p->str.n; i++) {
        wb_u32(&w, p->str.len[i]);
        wb_bytes(&w, mstr_get(&p->str, i), p->str.len[i]);
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
    wb_u32(&w, p->npairs);
    for (uint32_t i = 0; i < p->npairs; i++) {
        wb_u32(&w, (uint32_t)(p->pairs[i] >> 32));
        wb_u32(&w, (uint32_t)p->pairs[i]);
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
    if (!magic || memcmp(magic, "SQP1", 4))
        return -EBADMSG;
    ns = get32(&r);
    /* strings live in a temporary table first: ids must map 1:1 */
    struct mstr tmp = {0};
    for (uint32_t i = 0; i < ns && !r.bad; i++) {
        uint32_t l = get32(&r);
        const char *s = take(&r, l);
        if (!s)
            break;
        if (mstr_intern(&tmp, s, l) != i) {
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
    mstr_free(&p->str);
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
    if (r.bad || rb_left(&r.r))
        goto out;
    free(f);
    *out = p;
    return 0;
out:
    free(f);
    mprof_free(p);
    return rc;
out_tmp:
    mstr_free(&tmp);
    return rc;
}
