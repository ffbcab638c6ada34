/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The segment writer (docs/format.md §3-§5): pprof profiles and decoded
 * sections in, one segment object out. It keeps, per service,
 * content-addressed tables (common/intern.h) so ids are dense and
 * first-seen; rows are sorted by time and stack before encoding. The
 * reader is segment_read.c.
 */
#include "codec/segment.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/footer.h"
#include "codec/wire.h"
#include "common/intern.h"

#define ZSTD_LEVEL_DEFAULT 3
#define NONE               UINT32_MAX

/* ---- writer ------------------------------------------------------------ */

struct row_key {
    uint32_t series, stack;
    int64_t time;
};

struct wsec {
    char *service;
    struct intern str, map, fn, loc, stk, ser, row;
    uint32_t ntypes, types[2 * SEG_MAX_TYPES], ptype, punit;
    int64_t period;
    int64_t t_min, t_max;
    int64_t *vals; /* row * ntypes */
    size_t vals_rows;
};

struct seg_writer {
    char *tenant, *host;
    struct wsec **secs;
    size_t nsecs, cap;
    int level;
    seg_topsum_fn topsum, calltree;
    void *topsum_ctx, *calltree_ctx;
};

static void wsec_free(struct wsec *s)
{
    if (!s)
        return;
    free(s->service);
    intern_free(&s->str);
    intern_free(&s->map);
    intern_free(&s->fn);
    intern_free(&s->loc);
    intern_free(&s->stk);
    intern_free(&s->ser);
    intern_free(&s->row);
    free(s->vals);
    free(s);
}

struct seg_writer *seg_writer_new(const char *tenant, const char *host)
{
    struct seg_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->tenant = strdup(tenant ? tenant : "");
    w->host = strdup(host ? host : "");
    w->level = ZSTD_LEVEL_DEFAULT;
    if (!w->tenant || !w->host) {
        seg_writer_free(w);
        return NULL;
    }
    return w;
}

void seg_writer_free(struct seg_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nsecs; i++)
        wsec_free(w->secs[i]);
    free(w->secs);
    free(w->tenant);
    free(w->host);
    free(w);
}

int seg_writer_set_level(struct seg_writer *w, int level)
{
    if (level < 1 || level > 19)
        return -EINVAL;
    w->level = level;
    return 0;
}

void seg_writer_set_topsum(struct seg_writer *w, seg_topsum_fn fn, void *ctx)
{
    w->topsum = fn;
    w->topsum_ctx = ctx;
}

void seg_writer_set_calltree(struct seg_writer *w, seg_topsum_fn fn, void *ctx)
{
    w->calltree = fn;
    w->calltree_ctx = ctx;
}

/* The minor version of what @w writes: the newest frame kind it adds. */
static uint16_t writer_minor(const struct seg_writer *w)
{
    return w->calltree ? SEG_MINOR_CALLTREE : w->topsum ? SEG_MINOR_TOPSUM : SEG_MINOR;
}

/* Appends to @o, for each section of @f, the frame @fn builds from its
 * compressed bytes, and records where it lies in the fields @kind picks
 * (0: the function totals, 1: the call tree). 0 or @fn's or zstd's error. */
static int append_summaries(struct seg_writer *w, struct wbuf *o, struct seg_footer *f,
                            seg_topsum_fn fn, void *ctx, int kind)
{
    for (size_t i = 0; fn && i < f->nsections; i++) {
        struct seg_section_info *si = &f->sections[i];
        uint8_t *raw = NULL;
        size_t rawlen = 0;
        int ret;
        if ((ret = fn(ctx, o->p + si->offset, si->length, si, &raw, &rawlen)))
            return ret;
        if (!raw)
            continue;
        uint64_t off = o->len;
        ret = rawlen > SEG_MAX_RAW ? -EFBIG : zstd_append(o, raw, rawlen, w->level);
        free(raw);
        if (ret)
            return ret;
        uint64_t *pos[2][3] = {{&si->top_offset, &si->top_length, &si->top_raw},
                               {&si->tree_offset, &si->tree_length, &si->tree_raw}};
        *pos[kind][0] = off;
        *pos[kind][1] = o->len - off;
        *pos[kind][2] = rawlen;
        *(kind ? &si->tree_crc : &si->top_crc) = crc32c(o->p + off, o->len - off);
    }
    return 0;
}

bool seg_writer_empty(const struct seg_writer *w)
{
    return !w || w->nsecs == 0;
}

size_t seg_writer_bytes(const struct seg_writer *w)
{
    size_t n = 0;
    if (!w)
        return 0;
    for (size_t i = 0; i < w->nsecs; i++) {
        const struct wsec *s = w->secs[i];
        n += sizeof(*s) + intern_bytes(&s->str) + intern_bytes(&s->map) + intern_bytes(&s->fn) +
             intern_bytes(&s->loc) + intern_bytes(&s->stk) + intern_bytes(&s->ser) +
             intern_bytes(&s->row) + s->vals_rows * s->ntypes * sizeof(*s->vals);
    }
    return n + w->cap * sizeof(*w->secs);
}

static int str_id(struct wsec *s, const char *str, uint32_t *id)
{
    if (!str)
        str = "";
    int r = intern_add(&s->str, str, strlen(str), id);
    return r < 0 ? r : 0;
}

static struct wsec *wsec_get(struct seg_writer *w, const char *service)
{
    for (size_t i = 0; i < w->nsecs; i++)
        if (!strcmp(w->secs[i]->service, service))
            return w->secs[i];
    if (w->nsecs == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        struct wsec **n = realloc(w->secs, cap * sizeof(*n));
        if (!n)
            return NULL;
        w->secs = n;
        w->cap = cap;
    }
    struct wsec *s = calloc(1, sizeof(*s));
    uint32_t id;
    if (!s || !(s->service = strdup(service)) || str_id(s, "", &id)) {
        wsec_free(s);
        return NULL;
    }
    w->secs[w->nsecs++] = s;
    return s;
}

/* pprof ids → positions: direct when ids are 1..n in order (the usual
 * case), else a sorted table searched by bsearch. */
struct idpos {
    uint64_t id;
    uint32_t pos;
};

struct idmap {
    struct idpos *v;
    size_t n;
    bool direct;
};

static int idpos_cmp(const void *a, const void *b)
{
    const struct idpos *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

#define IDMAP_BUILD(m, arr, cnt)                                                                   \
    ({                                                                                             \
        int _r = 0;                                                                                \
        (m)->n = (cnt);                                                                            \
        (m)->direct = true;                                                                        \
        for (size_t _i = 0; _i < (cnt); _i++)                                                      \
            if (!(arr)[_i] || (arr)[_i]->id != _i + 1)                                             \
                (m)->direct = false;                                                               \
        if (!(m)->direct) {                                                                        \
            (m)->v = malloc(((cnt) + 1) * sizeof(struct idpos));                                   \
            if (!(m)->v)                                                                           \
                _r = -ENOMEM;                                                                      \
            else {                                                                                 \
                size_t _k = 0;                                                                     \
                for (size_t _i = 0; _i < (cnt); _i++)                                              \
                    if ((arr)[_i])                                                                 \
                        (m)->v[_k++] = (struct idpos){(arr)[_i]->id, (uint32_t)_i};                \
                (m)->n = _k;                                                                       \
                qsort((m)->v, _k, sizeof(struct idpos), idpos_cmp);                                \
            }                                                                                      \
        }                                                                                          \
        _r;                                                                                        \
    })

static uint32_t idmap_find(const struct idmap *m, uint64_t id)
{
    if (m->direct)
        return id >= 1 && id <= m->n ? (uint32_t)(id - 1) : NONE;
    struct idpos key = {.id = id}, *f;
    f = bsearch(&key, m->v, m->n, sizeof(*m->v), idpos_cmp);
    return f ? f->pos : NONE;
}

struct addctx {
    struct wsec *s;
    const Perftools__Profiles__Profile *p;
    uint32_t *smap, *mmap, *fmap, *lmap; /* pprof position → section id */
    struct idmap mid, fid, lid;
    uint32_t *scratch;
    size_t scratch_cap;
};

static int scratch_need(struct addctx *c, size_t n)
{
    if (n <= c->scratch_cap)
        return 0;
    size_t cap = c->scratch_cap ? c->scratch_cap : 64;
    while (cap < n)
        cap *= 2;
    uint32_t *p = realloc(c->scratch, cap * sizeof(*p));
    if (!p)
        return -ENOMEM;
    c->scratch = p;
    c->scratch_cap = cap;
    return 0;
}

/* pprof string index (validated) → section string id */
static int pstr(struct addctx *c, int64_t idx, uint32_t *out)
{
    if (c->smap[idx] == NONE) {
        int r = str_id(c->s, c->p->string_table[idx], &c->smap[idx]);
        if (r)
            return r;
    }
    *out = c->smap[idx];
    return 0;
}

static int map_mapping(struct addctx *c, uint64_t mapping_id, uint32_t *out)
{
    uint32_t pos = mapping_id ? idmap_find(&c->mid, mapping_id) : NONE, k[2];
    int r;
    if (pos == NONE) {
        *out = NONE;
        return 0;
    }
    if (c->mmap[pos] == NONE) {
        const Perftools__Profiles__Mapping *m = c->p->mapping[pos];
        if ((r = pstr(c, m->build_id, &k[0])) || (r = pstr(c, m->filename, &k[1])) ||
            (r = intern_add(&c->s->map, k, sizeof(k), &c->mmap[pos])) < 0)
            return r;
    }
    *out = c->mmap[pos];
    return 0;
}

static int map_function(struct addctx *c, uint64_t function_id, uint32_t *out)
{
    uint32_t pos = idmap_find(&c->fid, function_id), k[2] = {0, 0};
    int r;
    if (pos == NONE) /* validate() rejects such a line: never a nameless frame */
        return -EINVAL;
    if (c->fmap[pos] == NONE) {
        const Perftools__Profiles__Function *f = c->p->function[pos];
        if ((r = pstr(c, f->name, &k[0])) || (r = pstr(c, f->filename, &k[1])) ||
            (r = intern_add(&c->s->fn, k, sizeof(k), &c->fmap[pos])) < 0)
            return r;
    }
    *out = c->fmap[pos];
    return 0;
}

static int map_location(struct addctx *c, uint32_t pos, uint32_t *out)
{
    int r;
    if (c->lmap[pos] == NONE) {
        const Perftools__Profiles__Location *l = c->p->location[pos];
        uint32_t m, *k;
        if (l->n_line > (SIZE_MAX / 8) - 3 || scratch_need(c, 3 + 2 * l->n_line) != 0)
            return -ENOMEM;
        if ((r = map_mapping(c, l->mapping_id, &m)))
            return r;
        k = c->scratch;
        k[0] = m == NONE ? 0 : m + 1;
        k[1] = (uint32_t)l->address;
        k[2] = (uint32_t)(l->address >> 32);
        for (size_t i = 0; i < l->n_line; i++) {
            const Perftools__Profiles__Line *ln = l->line[i];
            int64_t line = ln ? ln->line : 0;
            if ((r = map_function(c, ln ? ln->function_id : 0, &k[3 + 2 * i])))
                return r;
            k = c->scratch; /* stable: no growth since scratch_need */
            k[4 + 2 * i] = line < 0 ? 0 : line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
        }
        if ((r = intern_add(&c->s->loc, c->scratch, (3 + 2 * l->n_line) * 4, &c->lmap[pos])) < 0)
            return r;
    }
    *out = c->lmap[pos];
    return 0;
}

struct lpair {
    uint32_t name, value, prio;
};

static int lpair_cmp(const void *a, const void *b, void *arg)
{
    const struct lpair *x = a, *y = b;
    const struct intern *str = arg;
    int c =
        x->name == y->name ? 0 : strcmp(intern_str_get(str, x->name), intern_str_get(str, y->name));
    return c ? c : (int)x->prio - (int)y->prio;
}

/* Sorts by name, keeps the lowest prio of each name, interns the set. */
static int intern_series(struct wsec *s, struct lpair *v, size_t n, uint32_t *id, struct addctx *c)
{
    size_t k = 0;
    qsort_r(v, n, sizeof(*v), lpair_cmp, &s->str);
    if (scratch_need(c, 2 * n + 1))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (k && c->scratch[2 * (k - 1)] == v[i].name)
            continue;
        c->scratch[2 * k] = v[i].name;
        c->scratch[2 * k + 1] = v[i].value;
        k++;
    }
    return intern_add(&s->ser, c->scratch, k * 8, id) < 0 ? -ENOMEM : 0;
}

static bool pidx_ok(const Perftools__Profiles__Profile *p, int64_t i)
{
    return i >= 0 && (uint64_t)i < p->n_string_table;
}

/* Function ids → positions. Every function with id 0 is a known producer
 * bug (early versions of Pyroscope's .NET profiler wrote no ids; `go tool
 * pprof` rejects such a profile, Pyroscope's /ingest repairs it): then
 * function_id k names the k-th function, which *positional reports. */
static int fid_build(struct idmap *m, const Perftools__Profiles__Profile *p, bool *positional)
{
    bool all_zero = p->n_function > 0;
    for (size_t i = 0; i < p->n_function && all_zero; i++)
        all_zero = p->function[i] && p->function[i]->id == 0;
    *positional = all_zero;
    if (all_zero) {
        *m = (struct idmap){.n = p->n_function, .direct = true};
        return 0;
    }
    return IDMAP_BUILD(m, p->function, p->n_function);
}

#define BAD(...)                                                                                   \
    do {                                                                                           \
        if (msg && msglen)                                                                         \
            snprintf(msg, msglen, __VA_ARGS__);                                                    \
        return -EINVAL;                                                                            \
    } while (0)

/* Everything that can make a profile invalid, checked before anything is
 * added, so a rejected profile leaves the writer unchanged. @msg (may be
 * NULL) receives what is wrong. */
static int validate(const Perftools__Profiles__Profile *p, const struct idmap *lid,
                    const struct idmap *fid, bool positional, char *msg, size_t msglen)
{
    if (!p->n_string_table)
        BAD("no string table");
    if (!p->n_sample_type || p->n_sample_type > SEG_MAX_TYPES)
        BAD("%zu sample types (1 to %d)", p->n_sample_type, SEG_MAX_TYPES);
    for (size_t i = 0; i < p->n_sample_type; i++)
        if (!p->sample_type[i] || !pidx_ok(p, p->sample_type[i]->type) ||
            !pidx_ok(p, p->sample_type[i]->unit))
            BAD("sample type %zu: string index out of range", i);
    if (p->period_type && (!pidx_ok(p, p->period_type->type) || !pidx_ok(p, p->period_type->unit)))
        BAD("period type: string index out of range");
    for (size_t i = 0; i < p->n_mapping; i++)
        if (p->mapping[i] &&
            (!pidx_ok(p, p->mapping[i]->filename) || !pidx_ok(p, p->mapping[i]->build_id)))
            BAD("mapping %llu: string index out of range", (unsigned long long)p->mapping[i]->id);
    for (size_t i = 0; i < p->n_function; i++) {
        const Perftools__Profiles__Function *f = p->function[i];
        if (!f)
            BAD("function %zu is missing", i);
        if (!pidx_ok(p, f->name) || !pidx_ok(p, f->filename))
            BAD("function %llu: string index out of range", (unsigned long long)f->id);
        if (!positional && f->id == 0)
            BAD("function %zu has the reserved id 0", i);
    }
    /* duplicate ids: adjacent in the sorted table (direct means 1..n) */
    for (size_t i = 1; !fid->direct && i < fid->n; i++)
        if (fid->v[i].id == fid->v[i - 1].id)
            BAD("two functions have id %llu", (unsigned long long)fid->v[i].id);
    for (size_t i = 0; i < p->n_location; i++) {
        const Perftools__Profiles__Location *l = p->location[i];
        for (size_t j = 0; l && j < l->n_line; j++)
            if (!l->line[j] || idmap_find(fid, l->line[j]->function_id) == NONE)
                BAD("location %llu: line %zu names function %llu, which the profile does not "
                    "define",
                    (unsigned long long)l->id, j,
                    (unsigned long long)(l->line[j] ? l->line[j]->function_id : 0));
    }
    for (size_t i = 0; i < p->n_sample; i++) {
        const Perftools__Profiles__Sample *sm = p->sample[i];
        if (!sm)
            BAD("sample %zu is missing", i);
        for (size_t j = 0; j < sm->n_location_id; j++)
            if (idmap_find(lid, sm->location_id[j]) == NONE)
                BAD("sample %zu: location %llu is not defined", i,
                    (unsigned long long)sm->location_id[j]);
        for (size_t j = 0; j < sm->n_label; j++)
            if (!sm->label[j] || !pidx_ok(p, sm->label[j]->key) || !pidx_ok(p, sm->label[j]->str))
                BAD("sample %zu: label %zu: string index out of range", i, j);
    }
    return 0;
}
#undef BAD

int seg_pprof_check(const Perftools__Profiles__Profile *p, char *msg, size_t msglen)
{
    struct idmap lid = {0}, fid = {0};
    bool positional = false;
    int ret;

    if (msg && msglen)
        msg[0] = 0;
    if (!p)
        return -EINVAL;
    if ((ret = IDMAP_BUILD(&lid, p->location, p->n_location)) ||
        (ret = fid_build(&fid, p, &positional)))
        goto out;
    ret = validate(p, &lid, &fid, positional, msg, msglen);
    if (ret == 0 && positional) {
        if (msg && msglen)
            snprintf(msg, msglen,
                     "every function id is 0 (%zu functions): function_id k is taken as the "
                     "k-th function, as Pyroscope does",
                     p->n_function);
        ret = SEG_PPROF_REPAIRED;
    }
out:
    free(lid.v);
    free(fid.v);
    return ret;
}

/* Adds @n values (at most the section's types; the rest stay 0) to the row
 * (series, stack, t), created on first use. Sums wrap, never UB. */
static int add_row(struct wsec *s, uint32_t series, uint32_t stack, int64_t t, const int64_t *vals,
                   size_t n)
{
    struct row_key k = {.series = series, .stack = stack, .time = t};
    uint32_t id;
    int r = intern_add(&s->row, &k, sizeof(k), &id);
    if (r < 0)
        return r;
    if (r == 1) {
        if (id >= s->vals_rows) {
            size_t nr = s->vals_rows ? s->vals_rows * 2 : 256;
            while (nr <= id)
                nr *= 2;
            int64_t *v = realloc(s->vals, nr * s->ntypes * sizeof(*v));
            if (!v)
                return -ENOMEM;
            s->vals = v;
            s->vals_rows = nr;
        }
        memset(&s->vals[(size_t)id * s->ntypes], 0, s->ntypes * sizeof(int64_t));
    }
    int64_t *v = &s->vals[(size_t)id * s->ntypes];
    if (n > s->ntypes)
        n = s->ntypes;
    for (size_t i = 0; i < n; i++)
        v[i] = (int64_t)((uint64_t)v[i] + (uint64_t)vals[i]);
    return 0;
}

/* @p has the sample and period types of @s, which has its first profile.
 * Looked up without adding a string: a refused profile changes nothing. */
static bool wsec_accepts(const struct wsec *s, const Perftools__Profiles__Profile *p)
{
    if (!p || s->ntypes != p->n_sample_type)
        return false;
    /* the sample types, then the period type (JFR's lock and park
     * profiles have the same sample types and differ only there) */
    for (size_t i = 0; i <= p->n_sample_type; i++) {
        const Perftools__Profiles__ValueType *vt =
            i < p->n_sample_type ? p->sample_type[i] : p->period_type;
        for (int k = 0; k < 2; k++) {
            int64_t x = !vt ? 0 : k ? vt->unit : vt->type;
            const char *str = x > 0 && (size_t)x < p->n_string_table ? p->string_table[x] : "";
            uint32_t want = i < p->n_sample_type ? s->types[2 * i + (size_t)k]
                            : k                  ? s->punit
                                                 : s->ptype;
            if (intern_find(&s->str, str, strlen(str)) != want)
                return false;
        }
    }
    return true;
}

bool seg_writer_accepts(const struct seg_writer *w, const char *service,
                        const Perftools__Profiles__Profile *p)
{
    const struct wsec *s = NULL;

    for (size_t i = 0; w && service && i < w->nsecs && !s; i++)
        if (!strcmp(w->secs[i]->service, service))
            s = w->secs[i];
    return !s || !s->ntypes || wsec_accepts(s, p);
}

int seg_writer_add_pprof(struct seg_writer *w, const char *service,
                         const Perftools__Profiles__Profile *p, const struct seg_label *labels,
                         size_t nlabels, int64_t time_ms)
{
    struct addctx c = {.p = p};
    struct lpair *lp = NULL;
    uint32_t base_series = NONE, t[2 * SEG_MAX_TYPES], pt[2] = {0, 0};
    size_t nbase = 0, lp_cap = 0;
    bool positional = false;
    int ret;

    if (!w || !service || !service[0] || !p || (nlabels && !labels))
        return -EINVAL;
    if ((ret = IDMAP_BUILD(&c.lid, p->location, p->n_location)) ||
        (ret = fid_build(&c.fid, p, &positional)) ||
        (ret = IDMAP_BUILD(&c.mid, p->mapping, p->n_mapping)))
        goto out;
    if ((ret = validate(p, &c.lid, &c.fid, positional, NULL, 0)))
        goto out;
    if (!time_ms)
        time_ms = p->time_nanos / 1000000;

    struct wsec *s = wsec_get(w, service);
    if (!s) {
        ret = -ENOMEM;
        goto out;
    }
    c.s = s;
    c.smap = malloc(p->n_string_table * sizeof(uint32_t));
    c.mmap = malloc((p->n_mapping + 1) * sizeof(uint32_t));
    c.fmap = malloc((p->n_function + 1) * sizeof(uint32_t));
    c.lmap = malloc((p->n_location + 1) * sizeof(uint32_t));
    if (!c.smap || !c.mmap || !c.fmap || !c.lmap) {
        ret = -ENOMEM;
        goto out;
    }
    memset(c.smap, 0xff, p->n_string_table * sizeof(uint32_t));
    memset(c.mmap, 0xff, (p->n_mapping + 1) * sizeof(uint32_t));
    memset(c.fmap, 0xff, (p->n_function + 1) * sizeof(uint32_t));
    memset(c.lmap, 0xff, (p->n_location + 1) * sizeof(uint32_t));

    /* sample types: fixed by the section's first profile */
    if (s->ntypes && !wsec_accepts(s, p)) {
        ret = -EINVAL;
        goto out;
    }
    for (size_t i = 0; i < p->n_sample_type; i++)
        if ((ret = pstr(&c, p->sample_type[i]->type, &t[2 * i])) ||
            (ret = pstr(&c, p->sample_type[i]->unit, &t[2 * i + 1])))
            goto out;
    if (p->period_type && ((ret = pstr(&c, p->period_type->type, &pt[0])) ||
                           (ret = pstr(&c, p->period_type->unit, &pt[1]))))
        goto out;
    if (!s->ntypes) {
        s->ntypes = (uint32_t)p->n_sample_type;
        memcpy(s->types, t, 2 * s->ntypes * sizeof(uint32_t));
        s->ptype = pt[0];
        s->punit = pt[1];
        s->period = p->period;
        s->t_min = s->t_max = time_ms;
    } else if (s->ntypes != p->n_sample_type || memcmp(s->types, t, 2 * s->ntypes * 4)) {
        ret = -EINVAL;
        goto out;
    }
    if (time_ms < s->t_min)
        s->t_min = time_ms;
    if (time_ms > s->t_max)
        s->t_max = time_ms;

    /* the caller's labels, interned once per profile */
    lp_cap = nlabels + 16;
    if (!(lp = malloc(lp_cap * sizeof(*lp)))) {
        ret = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nlabels; i++) {
        if (!labels[i].name || !labels[i].name[0] || !labels[i].value || !labels[i].value[0])
            continue;
        if ((ret = str_id(s, labels[i].name, &lp[nbase].name)) ||
            (ret = str_id(s, labels[i].value, &lp[nbase].value)))
            goto out;
        lp[nbase++].prio = 1;
    }
    struct lpair *base = malloc((nbase + 1) * sizeof(*base));
    if (!base) {
        ret = -ENOMEM;
        goto out;
    }
    memcpy(base, lp, nbase * sizeof(*base));

    for (size_t i = 0; i < p->n_sample && !ret; i++) {
        const Perftools__Profiles__Sample *sm = p->sample[i];
        uint32_t series, stack, *st;
        size_t nl = 0;

        for (size_t j = 0; j < sm->n_label; j++)
            if (sm->label[j]->str > 0 && sm->label[j]->key > 0)
                nl++;
        if (!nl) {
            if (base_series == NONE) {
                memcpy(lp, base, nbase * sizeof(*lp));
                if ((ret = intern_series(s, lp, nbase, &base_series, &c)))
                    break;
            }
            series = base_series;
        } else {
            if (nl + nbase > lp_cap) {
                lp_cap = nl + nbase;
                struct lpair *n = realloc(lp, lp_cap * sizeof(*lp));
                if (!n) {
                    ret = -ENOMEM;
                    break;
                }
                lp = n;
            }
            memcpy(lp, base, nbase * sizeof(*lp));
            nl = nbase;
            for (size_t j = 0; j < sm->n_label && !ret; j++) {
                const Perftools__Profiles__Label *l = sm->label[j];
                if (l->str <= 0 || l->key <= 0 || !p->string_table[l->str] ||
                    !p->string_table[l->str][0] || !p->string_table[l->key] ||
                    !p->string_table[l->key][0])
                    continue;
                if (!(ret = pstr(&c, l->key, &lp[nl].name)) &&
                    !(ret = pstr(&c, l->str, &lp[nl].value)))
                    lp[nl++].prio = 0;
            }
            if (ret || (ret = intern_series(s, lp, nl, &series, &c)))
                break;
        }
        if ((ret = scratch_need(&c, sm->n_location_id + 1)))
            break;
        /* locations map into the scratch, then into a private copy since
         * map_location reuses the scratch */
        st = malloc((sm->n_location_id + 1) * sizeof(*st));
        if (!st) {
            ret = -ENOMEM;
            break;
        }
        for (size_t j = 0; j < sm->n_location_id && !ret; j++)
            ret = map_location(&c, idmap_find(&c.lid, sm->location_id[j]), &st[j]);
        if (!ret && (ret = intern_add(&s->stk, st, sm->n_location_id * 4, &stack)) > 0)
            ret = 0;
        free(st);
        if (!ret)
            ret = add_row(s, series, stack, time_ms, sm->value, sm->n_value);
    }
    free(base);
out:
    free(lp);
    free(c.scratch);
    free(c.smap);
    free(c.mmap);
    free(c.fmap);
    free(c.lmap);
    free(c.lid.v);
    free(c.fid.v);
    free(c.mid.v);
    return ret;
}

/* ---- merging decoded sections (compaction) ------------------------------ */

int seg_writer_add_section(struct seg_writer *w, const struct seg_section *sec)
{
    uint32_t *smap = NULL, *mmap = NULL, *fmap = NULL, *lmap = NULL, *stmap = NULL, *sermap = NULL;
    uint32_t *k = NULL, t[2 * SEG_MAX_TYPES];
    size_t kcap = 0;
    int ret = 0;

    if (!w || !sec || !sec->service || !sec->service[0] || !sec->ntypes ||
        sec->ntypes > SEG_MAX_TYPES)
        return -EINVAL;
    struct wsec *s = wsec_get(w, sec->service);
    if (!s)
        return -ENOMEM;

    /* Every id of a decoded section is already bounds-checked by the
     * decoder; here they are only translated into this writer's tables. */
    smap = malloc((sec->nstrings + 1) * sizeof(*smap));
    mmap = malloc((sec->nmappings + 1) * sizeof(*mmap));
    fmap = malloc((sec->nfunctions + 1) * sizeof(*fmap));
    lmap = malloc((sec->nlocations + 1) * sizeof(*lmap));
    stmap = malloc((sec->nstacks + 1) * sizeof(*stmap));
    sermap = malloc((sec->nseries + 1) * sizeof(*sermap));
    if (!smap || !mmap || !fmap || !lmap || !stmap || !sermap) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < sec->nstrings && !ret; i++)
        ret = str_id(s, sec->strings[i], &smap[i]);
    if (ret)
        goto out;
    for (uint32_t i = 0; i < sec->ntypes; i++) {
        t[2 * i] = smap[sec->types[i].type];
        t[2 * i + 1] = smap[sec->types[i].unit];
    }
    if (!s->ntypes) {
        s->ntypes = sec->ntypes;
        memcpy(s->types, t, 2 * s->ntypes * sizeof(uint32_t));
        s->ptype = smap[sec->period_type.type];
        s->punit = smap[sec->period_type.unit];
        s->period = sec->period;
        s->t_min = INT64_MAX;
        s->t_max = INT64_MIN;
    } else if (s->ntypes != sec->ntypes || memcmp(s->types, t, 2 * s->ntypes * 4)) {
        ret = -EINVAL;
        goto out;
    }
    for (uint32_t i = 0; i < sec->nmappings && ret >= 0; i++) {
        uint32_t key[2] = {smap[sec->mappings[i].build_id], smap[sec->mappings[i].filename]};
        ret = intern_add(&s->map, key, sizeof(key), &mmap[i]);
    }
    for (uint32_t i = 0; i < sec->nfunctions && ret >= 0; i++) {
        uint32_t key[2] = {smap[sec->functions[i].name], smap[sec->functions[i].filename]};
        ret = intern_add(&s->fn, key, sizeof(key), &fmap[i]);
    }
    for (uint32_t i = 0; i < sec->nlocations && ret >= 0; i++) {
        const struct seg_location *l = &sec->locations[i];
        size_t need = 3 + 2 * (size_t)l->nlines;
        if (!k || need > kcap) {
            uint32_t *nk = realloc(k, need * sizeof(*nk));
            if (!nk) {
                ret = -ENOMEM;
                break;
            }
            k = nk;
            kcap = need;
        }
        k[0] = l->mapping == NONE ? 0 : mmap[l->mapping] + 1;
        k[1] = (uint32_t)l->address;
        k[2] = (uint32_t)(l->address >> 32);
        for (uint32_t j = 0; j < l->nlines; j++) {
            const struct seg_line *ln = &sec->lines[l->line_off + j];
            k[3 + 2 * j] = fmap[ln->function];
            k[4 + 2 * j] = ln->line;
        }
        ret = intern_add(&s->loc, k, need * 4, &lmap[i]);
    }
    for (uint32_t i = 0; i < sec->nstacks && ret >= 0; i++) {
        uint32_t depth = sec->stack_off[i + 1] - sec->stack_off[i];
        if (!k || depth + 1 > kcap) {
            uint32_t *nk = realloc(k, (depth + 1) * sizeof(*nk));
            if (!nk) {
                ret = -ENOMEM;
                break;
            }
            k = nk;
            kcap = depth + 1;
        }
        for (uint32_t j = 0; j < depth; j++)
            k[j] = lmap[sec->stack_locs[sec->stack_off[i] + j]];
        ret = intern_add(&s->stk, k, depth * 4, &stmap[i]);
    }
    for (uint32_t i = 0; i < sec->nseries && ret >= 0; i++) {
        uint32_t npairs = sec->series_off[i + 1] - sec->series_off[i];
        if (!k || 2 * (size_t)npairs + 1 > kcap) {
            uint32_t *nk = realloc(k, (2 * (size_t)npairs + 1) * sizeof(*nk));
            if (!nk) {
                ret = -ENOMEM;
                break;
            }
            k = nk;
            kcap = 2 * (size_t)npairs + 1;
        }
        /* Pairs are sorted by name bytes in the source and strings keep
         * their bytes: the order holds in this writer too. */
        for (uint32_t j = 0; j < 2 * npairs; j++)
            k[j] = smap[sec->series_labels[2 * (size_t)sec->series_off[i] + j]];
        ret = intern_add(&s->ser, k, (size_t)npairs * 8, &sermap[i]);
    }
    if (ret < 0)
        goto out;
    ret = 0;
    for (uint64_t i = 0; i < sec->nsamples && !ret; i++) {
        int64_t tm = sec->sample_time_ms[i];
        if (tm < s->t_min)
            s->t_min = tm;
        if (tm > s->t_max)
            s->t_max = tm;
        ret = add_row(s, sermap[sec->sample_series[i]], stmap[sec->sample_stack[i]], tm,
                      &sec->sample_values[i * sec->ntypes], s->ntypes);
    }
out:
    free(k);
    free(smap);
    free(mmap);
    free(fmap);
    free(lmap);
    free(stmap);
    free(sermap);
    return ret < 0 ? ret : 0;
}

int seg_writer_check_section(const struct seg_writer *w, const struct seg_section *sec)
{
    if (!w || !sec || !sec->service || !sec->service[0] || !sec->ntypes ||
        sec->ntypes > SEG_MAX_TYPES)
        return -EINVAL;
    for (size_t i = 0; i < w->nsecs; i++) {
        const struct wsec *s = w->secs[i];
        if (strcmp(s->service, sec->service))
            continue;
        if (!s->ntypes)
            return 0;
        if (s->ntypes != sec->ntypes)
            return -EINVAL;
        /* the same comparison as seg_writer_add_section's, by string */
        for (uint32_t t = 0; t < s->ntypes; t++)
            if (strcmp(intern_str_get(&s->str, s->types[2 * t]),
                       sec->strings[sec->types[t].type]) ||
                strcmp(intern_str_get(&s->str, s->types[2 * t + 1]),
                       sec->strings[sec->types[t].unit]))
                return -EINVAL;
        return 0;
    }
    return 0;
}

/* ---- encoding ---------------------------------------------------------- */

static int row_cmp(const void *a, const void *b, void *arg)
{
    const struct intern *rows = arg;
    const struct row_key *x = intern_get(rows, *(const uint32_t *)a, NULL);
    const struct row_key *y = intern_get(rows, *(const uint32_t *)b, NULL);
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->stack < y->stack ? -1 : x->stack > y->stack;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int strp_cmp(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    int c = strcmp(x[0], y[0]);
    return c ? c : strcmp(x[1], y[1]);
}

/* The footer's label summary: every name, up to 64 sorted values each. */
static int label_summary(const struct wsec *s, struct seg_section_info *info)
{
    const uint8_t *pool;
    size_t np = 0, k = 0;
    for (uint32_t i = 0; i < s->ser.n; i++)
        np += s->ser.e[i].len / 8;
    const char **v = malloc((2 * np + 2) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->ser.n; i++) {
        uint32_t len;
        pool = intern_get(&s->ser, i, &len);
        const uint32_t *pr = (const uint32_t *)pool;
        for (uint32_t j = 0; j < len / 4; j++)
            v[k++] = intern_str_get(&s->str, pr[j]);
    }
    qsort(v, np, 2 * sizeof(*v), strp_cmp);
    info->labels = calloc(np + 1, sizeof(*info->labels));
    if (!info->labels)
        goto nomem;
    struct seg_label_summary *l = NULL; /* the name being summarized */
    for (size_t i = 0; i < np; i++) {
        const char *n = v[2 * i], *val = v[2 * i + 1];
        if (!l || strcmp(l->name, n)) {
            l = &info->labels[info->nlabels++];
            if (!(l->name = strdup(n)) ||
                !(l->values = calloc(SEG_MAX_SUMMARY_VALUES, sizeof(char *))))
                goto nomem;
        } else if (l->nvalues && !strcmp(l->values[l->nvalues - 1], val)) {
            continue;
        }
        if (l->nvalues == SEG_MAX_SUMMARY_VALUES) {
            l->values_truncated = true;
            continue;
        }
        if (!(l->values[l->nvalues] = strdup(val)))
            goto nomem;
        l->nvalues++;
    }
    free(v);
    return 0;
nomem:
    free(v);
    return -ENOMEM;
}

static int encode_section(const struct seg_writer *w, const struct wsec *s, struct wbuf *out,
                          struct seg_section_info *info)
{
    struct wbuf b = {0}, h = {0};
    uint32_t *order = NULL, nrows = s->row.n, len;
    uint64_t gcd[SEG_MAX_TYPES];
    size_t nloclines = 0, nstk = 0, npairs = 0;
    int ret = 0;

    order = malloc(((size_t)nrows + 1) * sizeof(*order));
    if (!order)
        return -ENOMEM;
    for (uint32_t i = 0; i < nrows; i++)
        order[i] = i;
    qsort_r(order, nrows, sizeof(*order), row_cmp, (void *)&s->row);
    for (uint32_t t = 0; t < s->ntypes; t++) {
        gcd[t] = 0;
        for (uint32_t i = 0; i < nrows; i++) {
            int64_t v = s->vals[(size_t)i * s->ntypes + t];
            gcd[t] = gcd64(gcd[t], v < 0 ? -(uint64_t)v : (uint64_t)v);
        }
        if (!gcd[t])
            gcd[t] = 1;
        if (t < 4)
            for (uint32_t i = 0; i < nrows; i++)
                info->total[t] += (uint64_t)s->vals[(size_t)i * s->ntypes + t];
    }
    for (uint32_t i = 0; i < s->loc.n; i++)
        nloclines += (s->loc.e[i].len / 4 - 3) / 2;
    for (uint32_t i = 0; i < s->stk.n; i++)
        nstk += s->stk.e[i].len / 4;
    for (uint32_t i = 0; i < s->ser.n; i++)
        npairs += s->ser.e[i].len / 8;

    /* header */
    wb_str(&h, s->service);
    wb_uv(&h, s->ntypes);
    for (uint32_t t = 0; t < 2 * s->ntypes; t++)
        wb_uv(&h, s->types[t]);
    wb_uv(&h, s->ptype);
    wb_uv(&h, s->punit);
    wb_sv(&h, s->period);
    wb_uv(&h, s->str.n);
    wb_uv(&h, s->map.n);
    wb_uv(&h, s->fn.n);
    wb_uv(&h, s->loc.n);
    wb_uv(&h, nloclines);
    wb_uv(&h, s->stk.n);
    wb_uv(&h, nstk);
    wb_uv(&h, s->ser.n);
    wb_uv(&h, npairs);
    wb_uv(&h, nrows);
    wb_sv(&h, s->t_min);
    for (uint32_t t = 0; t < s->ntypes; t++)
        wb_uv(&h, gcd[t]);
    wb_uv(&b, h.len);
    wb_bytes(&b, h.p, h.len);

    /* strings: lengths, then bytes */
    for (uint32_t i = 1; i < s->str.n; i++)
        wb_uv(&b, s->str.e[i].len);
    for (uint32_t i = 1; i < s->str.n; i++)
        wb_bytes(&b, intern_get(&s->str, i, &len), s->str.e[i].len);
    /* mappings, functions: one column per field */
    for (int f = 0; f < 2; f++)
        for (uint32_t i = 0; i < s->map.n; i++)
            wb_uv(&b, ((const uint32_t *)intern_get(&s->map, i, NULL))[f]);
    for (int f = 0; f < 2; f++)
        for (uint32_t i = 0; i < s->fn.n; i++)
            wb_uv(&b, ((const uint32_t *)intern_get(&s->fn, i, NULL))[f]);
    /* locations */
    uint64_t prev = 0;
    for (uint32_t i = 0; i < s->loc.n; i++)
        wb_uv(&b, ((const uint32_t *)intern_get(&s->loc, i, NULL))[0]);
    for (uint32_t i = 0; i < s->loc.n; i++) {
        const uint32_t *k = intern_get(&s->loc, i, NULL);
        uint64_t a = (uint64_t)k[1] | (uint64_t)k[2] << 32;
        wb_sv(&b, (int64_t)(a - prev));
        prev = a;
    }
    for (uint32_t i = 0; i < s->loc.n; i++)
        wb_uv(&b, (s->loc.e[i].len / 4 - 3) / 2);
    for (int f = 0; f < 2; f++)
        for (uint32_t i = 0; i < s->loc.n; i++) {
            const uint32_t *k = intern_get(&s->loc, i, &len);
            for (uint32_t j = 0; j < (len / 4 - 3) / 2; j++)
                wb_uv(&b, k[3 + 2 * j + f]);
        }
    /* stacks */
    for (uint32_t i = 0; i < s->stk.n; i++)
        wb_uv(&b, s->stk.e[i].len / 4);
    for (uint32_t i = 0; i < s->stk.n; i++) {
        const uint32_t *k = intern_get(&s->stk, i, &len);
        for (uint32_t j = 0; j < len / 4; j++)
            wb_uv(&b, k[j]);
    }
    /* series */
    for (uint32_t i = 0; i < s->ser.n; i++)
        wb_uv(&b, s->ser.e[i].len / 8);
    for (uint32_t i = 0; i < s->ser.n; i++) {
        const uint32_t *k = intern_get(&s->ser, i, &len);
        for (uint32_t j = 0; j < len / 4; j++)
            wb_uv(&b, k[j]);
    }
    /* samples: four kinds of columns, see docs/format.md §3.4 */
    const struct row_key *pk = NULL;
    for (uint32_t i = 0; i < nrows; i++) {
        const struct row_key *k = intern_get(&s->row, order[i], NULL);
        wb_uv(&b, k->series - (pk ? pk->series : 0));
        pk = k;
    }
    pk = NULL;
    for (uint32_t i = 0; i < nrows; i++) {
        const struct row_key *k = intern_get(&s->row, order[i], NULL);
        bool same = pk && pk->series == k->series;
        wb_uv(&b, (uint64_t)k->time - (uint64_t)(same ? pk->time : s->t_min));
        pk = k;
    }
    pk = NULL;
    for (uint32_t i = 0; i < nrows; i++) {
        const struct row_key *k = intern_get(&s->row, order[i], NULL);
        bool same = pk && pk->series == k->series && pk->time == k->time;
        wb_uv(&b, same ? k->stack - pk->stack - 1 : k->stack);
        pk = k;
    }
    for (uint32_t t = 0; t < s->ntypes; t++)
        for (uint32_t i = 0; i < nrows; i++)
            wb_sv(&b, s->vals[(size_t)order[i] * s->ntypes + t] / (int64_t)gcd[t]);
    if (b.err || h.err) {
        ret = -ENOMEM;
        goto out;
    }
    if (b.len > SEG_MAX_RAW) {
        ret = -EFBIG;
        goto out;
    }

    info->offset = out->len;
    info->raw_length = b.len;
    if ((ret = zstd_append(out, b.p, b.len, w->level)))
        goto out;
    info->length = out->len - info->offset;
    info->crc32c = crc32c(out->p + info->offset, info->length);
    info->t_min_ms = s->t_min;
    info->t_max_ms = s->t_max;
    info->nsamples = nrows;
    if (!(info->profile_types = calloc(s->ntypes, sizeof(char *)))) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint32_t t = 0; t < s->ntypes; t++) {
        char id[1024];
        if (seg_type_id(id, sizeof(id), intern_str_get(&s->str, s->types[2 * t]),
                        intern_str_get(&s->str, s->types[2 * t + 1]),
                        intern_str_get(&s->str, s->ptype), intern_str_get(&s->str, s->punit)) ||
            !(info->profile_types[t] = strdup(id))) {
            ret = -ENOMEM;
            goto out;
        }
        info->nprofile_types++;
    }
    ret = label_summary(s, info);
out:
    free(order);
    wb_free(&b);
    wb_free(&h);
    return ret;
}

static int wsec_cmp(const void *a, const void *b)
{
    return strcmp((*(struct wsec *const *)a)->service, (*(struct wsec *const *)b)->service);
}

int seg_writer_finish(struct seg_writer *w, uint8_t **buf, size_t *len, struct seg_footer **footer)
{
    struct wbuf o = {0}, fb = {0};
    struct seg_footer *f;
    uint8_t hdr[SEG_HEADER_LEN], tr[SEG_TRAILER_LEN];
    int ret = 0;

    if (!w || !buf || !len)
        return -EINVAL;
    if (!(f = calloc(1, sizeof(*f))))
        return -ENOMEM;
    f->version = SEG_MAJOR;
    f->tenant = strdup(w->tenant);
    f->host = strdup(w->host);
    f->sections = calloc(w->nsecs + 1, sizeof(*f->sections));
    if (!f->tenant || !f->host || !f->sections) {
        ret = -ENOMEM;
        goto out;
    }
    /* sorted services: deterministic bytes, and a footer readers can
     * binary-search */
    if (w->nsecs) /* qsort may not take NULL, even for 0 items */
        qsort(w->secs, w->nsecs, sizeof(*w->secs), wsec_cmp);

    memcpy(hdr, "STKS", 4); /* NOLINT(bugprone-not-null-terminated-result): a magic */
    wr_u16(hdr + 4, SEG_MAJOR);
    wr_u16(hdr + 6, writer_minor(w));
    wr_u32(hdr + 8, 0);
    wr_u32(hdr + 12, crc32c(hdr, 12));
    wb_bytes(&o, hdr, sizeof(hdr));
    for (size_t i = 0; i < w->nsecs; i++) {
        struct seg_section_info *si = &f->sections[f->nsections++];
        if (!(si->service = strdup(w->secs[i]->service))) {
            ret = -ENOMEM;
            goto out;
        }
        if ((ret = encode_section(w, w->secs[i], &o, si)))
            goto out;
        if (i == 0 || si->t_min_ms < f->t_min_ms)
            f->t_min_ms = si->t_min_ms;
        if (i == 0 || si->t_max_ms > f->t_max_ms)
            f->t_max_ms = si->t_max_ms;
    }
    /* Function totals after all sections, so a section is one range and
     * the totals of every section another (docs/format.md §3.5); the call
     * trees after them, a third (§3.6). */
    if ((ret = append_summaries(w, &o, f, w->topsum, w->topsum_ctx, 0)) ||
        (ret = append_summaries(w, &o, f, w->calltree, w->calltree_ctx, 1)))
        goto out;
    footer_encode_body(&fb, f);
    if (fb.err || o.err) {
        ret = -ENOMEM;
        goto out;
    }
    uint64_t foff = o.len;
    if ((ret = zstd_append(&o, fb.p, fb.len, w->level)))
        goto out;
    if (o.len - foff > UINT32_MAX || fb.len > SEG_MAX_RAW) {
        ret = -EFBIG;
        goto out;
    }
    wr_u64(tr, foff);
    wr_u32(tr + 8, (uint32_t)(o.len - foff));
    wr_u32(tr + 12, (uint32_t)fb.len);
    wr_u32(tr + 16, crc32c(o.p + foff, o.len - foff));
    wr_u16(tr + 20, SEG_MAJOR);
    wr_u16(tr + 22, writer_minor(w));
    wr_u32(tr + 24, crc32c(tr, 24));
    memcpy(tr + 28, "STKE", 4); /* NOLINT(bugprone-not-null-terminated-result): a magic */
    wb_bytes(&o, tr, sizeof(tr));
    if (o.err) {
        ret = -ENOMEM;
        goto out;
    }
    f->object_length = o.len;
    *buf = o.p;
    *len = o.len;
    o.p = NULL;
    if (footer) {
        *footer = f;
        f = NULL;
    }
out:
    seg_footer_free(f);
    wb_free(&o);
    wb_free(&fb);
    return ret;
}

/* ---- keys -------------------------------------------------------------- */

uint64_t seg_hash64(const void *data, size_t len)
{
    return xxh64(data, len);
}

int seg_object_key(char *buf, size_t len, const char *tenant, const char *host, int64_t start_ms,
                   uint64_t hash)
{
    char date[11], hour[3];
    if (!safe_component(tenant) || !safe_component(host) || utc_date_hour(start_ms, date, hour))
        return -EINVAL;
    int n = snprintf(buf, len, "%s/segments/%s/%s/%s/%013lld-%016llx.seg", tenant, date, hour, host,
                     (long long)start_ms, (unsigned long long)hash);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}
