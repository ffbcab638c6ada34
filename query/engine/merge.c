/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/merge.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/segment.h"
#include "codec/topsum.h"
#include "common/buf.h"
#include "query/engine/dsym.h"

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
    /* Deferred symbolization (dsym.h): unnamed locations named as the
     * stack's user leaf (leaf_start/leaf_n, allocated on first use) or as
     * a caller (loc_start/loc_n); NULL dsym: never. */
    struct dsym *dsym;
    const char *tenant;
    uint32_t *leaf_start, *leaf_n;
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
        m->fmap[f] = intern_strn(&m->mp->str, s, strlen(s));
    }
    return m->fmap[f];
}

/* True when location @l of @sec may be named later: unnamed, in a mapping
 * with a build-id. */
static bool deferred(const struct secmap *m, const struct seg_location *loc)
{
    const struct seg_section *sec = m->sec;

    return m->dsym && loc->nlines == 0 && loc->mapping != UINT32_MAX &&
           loc->mapping < sec->nmappings && sec->strings[sec->mappings[loc->mapping].build_id][0];
}

/* A location of user code: the first one of a stack is its user leaf. The
 * agent puts kernel frames ("[kernel.kallsyms]", "[module]") and its own
 * markers ("[stoke]") leafward of them. */
static bool user_loc(const struct seg_section *sec, const struct seg_location *loc)
{
    if (loc->mapping == UINT32_MAX || loc->mapping >= sec->nmappings)
        return true;
    const char *fn = sec->strings[sec->mappings[loc->mapping].filename];
    return fn[0] != '[' || strcmp(fn, "[vdso]") == 0 || strcmp(fn, "[anon]") == 0 ||
           strcmp(fn, "[unknown]") == 0 || strcmp(fn, "[vsyscall]") == 0;
}

/* Names location @l: frames pushed onto m->lf, their start and count in
 * *@start and *@n. @is_return: not the stack's user leaf. */
static int loc_frames_into(struct secmap *m, uint32_t l, bool is_return, uint32_t *start,
                           uint32_t *count)
{
    const struct seg_section *sec = m->sec;
    const struct seg_location *loc = &sec->locations[l];

    *start = (uint32_t)m->nlf;
    if (deferred(m, loc)) {
        char nb[4096];
        const char *names[DSYM_NAMES_MAX];
        int n = dsym_names(m->dsym, m->tenant, sec->strings[sec->mappings[loc->mapping].build_id],
                           loc->address, is_return, nb, sizeof(nb), names, DSYM_NAMES_MAX);
        for (int j = 0; j < n; j++) {
            uint32_t id = intern_strn(&m->mp->str, names[j], strlen(names[j]));
            if (id == MPROF_NONE || lf_push(m, id))
                return -ENOMEM;
        }
        if (n > 0) {
            *count = (uint32_t)n;
            return 0;
        }
    }
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
            intern_strn(&m->mp->str, name, n < (int)sizeof(name) ? (size_t)n : sizeof(name) - 1);
        if (id == MPROF_NONE || lf_push(m, id))
            return -ENOMEM;
    }
    for (uint32_t j = 0; j < loc->nlines; j++) {
        uint32_t id = func_name(m, sec->lines[loc->line_off + j].function);
        if (id == MPROF_NONE || lf_push(m, id))
            return -ENOMEM;
    }
    *count = (uint32_t)(m->nlf - *start);
    return 0;
}

/* Names location @l once per section (twice for a deferred one: as a
 * user leaf and as a caller); *@start and *@n say where its frames are. */
static int loc_frames(struct secmap *m, uint32_t l, bool is_return, uint32_t *start, uint32_t *n)
{
    uint32_t *st = m->loc_start, *cn = m->loc_n;

    if (!is_return && deferred(m, &m->sec->locations[l])) {
        if (!m->leaf_start) {
            size_t nl = (size_t)m->sec->nlocations + 1;
            m->leaf_start = malloc(nl * sizeof(uint32_t));
            m->leaf_n = malloc(nl * sizeof(uint32_t));
            if (!m->leaf_start || !m->leaf_n)
                return -ENOMEM;
            memset(m->leaf_start, 0xff, nl * sizeof(uint32_t));
        }
        st = m->leaf_start;
        cn = m->leaf_n;
    }
    if (st[l] == MPROF_NONE) {
        int rc = loc_frames_into(m, l, is_return, &st[l], &cn[l]);
        if (rc)
            return rc;
    }
    *start = st[l];
    *n = cn[l];
    return 0;
}

/* The frames of section stack @s, as name ids leaf first, into m->buf;
 * their number in *@n. 0 or -ENOMEM. */
static int stack_frames(struct secmap *m, uint32_t s, uint32_t *count)
{
    const struct seg_section *sec = m->sec;
    size_t n = 0;
    bool user_seen = false;

    for (uint32_t k = sec->stack_off[s]; k < sec->stack_off[s + 1]; k++) {
        uint32_t l = sec->stack_locs[k], ls, ln;
        if (loc_frames(m, l, user_seen, &ls, &ln))
            return -ENOMEM;
        if (!user_seen && user_loc(sec, &sec->locations[l]))
            user_seen = true;
        if (n + ln + 1 > m->buf_cap) {
            size_t cap = m->buf_cap ? m->buf_cap : 256;
            while (cap < n + ln + 1)
                cap *= 2;
            uint32_t *b = realloc(m->buf, cap * sizeof(*b));
            if (!b)
                return -ENOMEM;
            m->buf = b;
            m->buf_cap = cap;
        }
        memcpy(m->buf + n, m->lf + ls, (size_t)ln * sizeof(uint32_t));
        n += ln;
    }
    if (n == 0) {
        if (m->unknown == MPROF_NONE)
            m->unknown = intern_strn(&m->mp->str, "[unknown]", 9);
        if (m->unknown == MPROF_NONE)
            return -ENOMEM;
        if (!m->buf && !(m->buf = malloc(256 * sizeof(uint32_t))))
            return -ENOMEM;
        if (!m->buf_cap)
            m->buf_cap = 256;
        m->buf[n++] = m->unknown;
    }
    *count = (uint32_t)n;
    return 0;
}

static uint32_t map_stack(struct secmap *m, uint32_t s)
{
    uint32_t n;

    if (stack_frames(m, s, &n))
        return MPROF_NONE;
    return mprof_stack(m->mp, m->buf, n);
}

/* Function totals (Q_TOP): adds each stack's value @acc[s] to its leaf's
 * self and, once per stack, to the total of every function in it (as
 * view_top counts a stack table), in column @col of m->mp. */
static int add_top(struct secmap *m, const int64_t *acc, uint32_t col)
{
    struct mprof *mp = m->mp;
    uint32_t *stamp = NULL, cap = 0, n;
    int rc = 0;

    for (uint32_t s = 0; s < m->sec->nstacks && !rc; s++) {
        if (!acc[s])
            continue;
        if (stack_frames(m, s, &n)) {
            rc = -ENOMEM;
            break;
        }
        if (!stamp || mp->str.n > cap) { /* names are interned as stacks are named */
            uint32_t nc = (mp->str.n + 1) * 2;
            uint32_t *ns = realloc(stamp, (size_t)nc * sizeof(*ns));
            if (!ns) {
                rc = -ENOMEM;
                break;
            }
            memset(ns + cap, 0, (size_t)(nc - cap) * sizeof(*ns));
            stamp = ns;
            cap = nc;
        }
        MPROF_ADD(mp->fsum[col], acc[s]);
        rc = mprof_top_add(mp, m->buf[0], col, acc[s], 0);
        for (uint32_t k = 0; k < n && !rc; k++)
            if (stamp[m->buf[k]] != s + 1) {
                stamp[m->buf[k]] = s + 1; /* recursion counted once per stack */
                rc = mprof_top_add(mp, m->buf[k], col, 0, acc[s]);
            }
    }
    free(stamp);
    return rc;
}

/* Section stacks a profile merge maps ahead of interning them. */
#define MAP_AHEAD 8

/* Adds @acc[s] (column 0) to the global stack of every section stack s
 * with a value. Each stack's frames are built and hashed MAP_AHEAD stacks
 * before it is interned, its index slot prefetched then and its entry
 * halfway, so the lookups' cache misses overlap (perf: interning whole
 * stacks, waiting on those loads, was the largest part of a merge). The
 * frames are built in m->buf, swapped with a ring buffer each time. */
static int add_acc(struct secmap *m, const int64_t *acc)
{
    struct ring {
        uint32_t *buf;
        size_t cap;
        uint32_t n, hash, s;
    } r[MAP_AHEAD] = {{0}};
    const struct seg_section *sec = m->sec;
    struct mprof *mp = m->mp;
    uint32_t head = 0, pend = 0, nval = 0;
    int rc = 0;

    /* Presized from the section's count while the table is smaller than
     * it (a thread's first sections): its index is not rebuilt at every
     * doubling on the way. Later sections mostly find their stacks. */
    for (uint32_t s = 0; s < sec->nstacks; s++)
        nval += acc[s] != 0;
    if (mp->stk.n < nval)
        (void)mprof_reserve(mp, nval); /* a hint: on ENOMEM the table grows as it goes */
    for (uint32_t s = 0; s <= sec->nstacks && !rc; s++) {
        bool more = s < sec->nstacks;
        if (more && !acc[s])
            continue;
        while (pend && (pend == MAP_AHEAD || !more)) {
            struct ring *o = &r[(head - pend) % MAP_AHEAD];
            uint32_t g = mprof_stack_hashed(mp, o->buf, o->n, o->hash);
            if (g == MPROF_NONE) {
                rc = -ENOMEM;
                break;
            }
            MPROF_ADD(mp->vals[(size_t)g * mp->ntypes], acc[o->s]);
            pend--;
        }
        if (!more || rc)
            break;
        struct ring *e = &r[head % MAP_AHEAD];
        if ((rc = stack_frames(m, s, &e->n)))
            break;
        uint32_t *b = e->buf; /* the frames stay; m->buf takes the old ring buffer */
        size_t c = e->cap;
        e->buf = m->buf;
        e->cap = m->buf_cap;
        m->buf = b;
        m->buf_cap = c;
        e->s = s;
        e->hash = intern_hash(e->buf, (size_t)e->n * sizeof(uint32_t));
        intern_prefetch(&mp->stk, e->hash);
        if (pend >= MAP_AHEAD / 2)
            intern_prefetch_entry(&mp->stk, r[(head - MAP_AHEAD / 2) % MAP_AHEAD].hash);
        head++;
        pend++;
    }
    for (int i = 0; i < MAP_AHEAD; i++)
        free(r[i].buf);
    return rc;
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
            mp->type_type[c] = intern_strn(&mp->str, ty, strlen(ty));
            mp->type_unit[c] = intern_strn(&mp->str, un, strlen(un));
            return c;
        }
        if (strcmp(intern_str_get(&mp->str, mp->type_type[c]), ty) == 0 &&
            strcmp(intern_str_get(&mp->str, mp->type_unit[c]), un) == 0)
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

/* ---- individual profiles ------------------------------------------------ */

/* The id hash of series @i (query_series_hash of its stored pairs), and,
 * when @lset is not NULL, its label set as the query shows it (the stored
 * pairs, with service_name and host_name defaulting to the section's and
 * the host's) interned in @mp. 0 or -ENOMEM. */
static int series_ident(struct mprof *mp, const struct seg_section *sec, uint32_t i,
                        const struct query *q, const char *host, uint64_t *hash, uint32_t *lset)
{
    const uint32_t *lab = sec->series_labels + 2 * (size_t)sec->series_off[i];
    uint32_t nl = sec->series_off[i + 1] - sec->series_off[i];
    const char *sbuf[2 * 32], **sp = sbuf;
    uint32_t ibuf[2 * 34], *ip = ibuf;
    int rc = -ENOMEM;

    if (nl > 32 && !(sp = malloc((size_t)nl * 2 * sizeof(*sp))))
        return -ENOMEM;
    if (nl > 32 && !(ip = malloc(((size_t)nl + 2) * 2 * sizeof(*ip))))
        goto out;
    for (uint32_t j = 0; j < 2 * nl; j++)
        sp[j] = sec->strings[lab[j]];
    *hash = query_series_hash(q->tenant ? q->tenant : "", sec->service, sp, nl);
    if (!lset) {
        rc = 0;
        goto out;
    }
    /* Stored pairs are sorted by name: the defaults go in their places. */
    const char *dn[2] = {"host_name", "service_name"}, *dv[2] = {host, sec->service};
    uint32_t n = 0, d = 0;
    for (uint32_t j = 0; j <= nl; j++) {
        const char *name = j < nl ? sp[2 * j] : NULL;
        for (; d < 2 && (!name || strcmp(dn[d], name) <= 0); d++) {
            if ((name && strcmp(dn[d], name) == 0) || !dv[d] || !*dv[d])
                continue;
            ip[2 * n] = intern_str(&mp->str, dn[d]);
            ip[2 * n + 1] = intern_str(&mp->str, dv[d]);
            n++;
        }
        if (!name)
            break;
        ip[2 * n] = intern_str(&mp->str, name);
        ip[2 * n + 1] = intern_str(&mp->str, sp[2 * j + 1]);
        n++;
    }
    for (uint32_t j = 0; j < 2 * n; j++)
        if (ip[j] == MPROF_NONE)
            goto out;
    if (intern_add(&mp->lsets, ip, (size_t)n * 2 * sizeof(*ip), lset) < 0)
        goto out;
    rc = 0;
out:
    if (sp != sbuf)
        free(sp);
    if (ip != ibuf)
        free(ip);
    return rc;
}

/* The end of the time run starting at row @r (rows [r, end) share a time)
 * and its value sum in column @col. */
static uint64_t time_run(const struct seg_section *sec, uint64_t r, uint64_t b, uint32_t col,
                         int64_t *sum)
{
    int64_t t = sec->sample_time_ms[r], s = 0;

    for (; r < b && sec->sample_time_ms[r] == t; r++)
        MPROF_ADD(s, sec->sample_values[r * sec->ntypes + col]);
    *sum = s;
    return r;
}

static bool in_vrange(const struct query *q, int64_t v)
{
    return !q->has_vrange || (v >= q->vmin && v < q->vmax);
}

static int merge_individual(struct mprof *mp, const struct seg_section *sec, const uint8_t *mask,
                            uint32_t col, const struct query *q, const char *host)
{
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
        b = lower_i64(sec->sample_time_ms, a, b, q->until);
        if (a == b)
            continue;
        struct mprof_ind v;
        if (series_ident(mp, sec, i, q, host, &v.hash, &v.lset))
            return -ENOMEM;
        for (uint64_t r = a; r < b;) {
            v.time = sec->sample_time_ms[r];
            r = time_run(sec, r, b, col, &v.value);
            if (!in_vrange(q, v.value))
                continue;
            if ((rc = mprof_ind_add(mp, &v)))
                return rc == -E2BIG ? 0 : rc;
        }
    }
    return 0;
}

/* ---- profiles ------------------------------------------------------------- */

struct pctx {
    struct mprof *mp;
    struct secmap *m;
    const struct seg_section *sec;
    uint32_t *smap, *cmap, nt, col;
    int64_t *acc;
    bool all_types, any;
};

/* Adds rows [a, b) of one series: the hot loop. */
static int add_rows(struct pctx *c, uint64_t a, uint64_t b)
{
    const struct seg_section *sec = c->sec;
    const uint32_t *stk = sec->sample_stack;
    const int64_t *sv = sec->sample_values;
    const uint32_t stride = sec->ntypes;
    struct mprof *mp = c->mp;

    if (a == b)
        return 0;
    if (c->all_types) {
        for (uint64_t r = a; r < b; r++) {
            uint32_t g = c->smap[stk[r]];
            if (__builtin_expect(g == MPROF_NONE, 0)) {
                g = c->smap[stk[r]] = map_stack(c->m, stk[r]);
                if (g == MPROF_NONE)
                    return -ENOMEM;
            }
            for (uint32_t t = 0; t < c->nt; t++)
                if (c->cmap[t] != MPROF_NONE)
                    MPROF_ADD(mp->vals[(size_t)g * mp->ntypes + c->cmap[t]], sv[r * stride + t]);
        }
        return 0;
    }
    /* One array add per row, indexed by the section's own dense stack id;
     * mapping to global stacks happens once per stack, not once per row.
     * Rows are sorted by stack within each time step, so runs of one
     * stack are summed in a register: adding to acc[] every row would
     * chain each add through store-to-load forwarding. */
    const int64_t *v = sv + c->col;
    int64_t *acc = c->acc;
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
    c->any = true;
    return 0;
}

/* Rows [a, b) of series @i restricted to the query's individual profiles:
 * the ids asked for, and the value range. */
static int add_selected(struct pctx *c, uint32_t i, uint64_t a, uint64_t b, const struct query *q,
                        const char *host)
{
    const struct seg_section *sec = c->sec;
    int64_t sum;
    int rc = 0;

    if (!q->nids) {
        for (uint64_t r = a; r < b && !rc;) {
            uint64_t e = time_run(sec, r, b, c->col, &sum);
            if (in_vrange(q, sum))
                rc = add_rows(c, r, e);
            r = e;
        }
        return rc;
    }
    uint64_t h;
    if (series_ident(c->mp, sec, i, q, host, &h, NULL))
        return -ENOMEM;
    for (uint32_t k = 0; k < q->nids && !rc; k++) {
        if (q->ids[k].hash != h)
            continue;
        uint64_t a2 = lower_i64(sec->sample_time_ms, a, b, q->ids[k].time_ms);
        uint64_t b2 = a2 < b && sec->sample_time_ms[a2] == q->ids[k].time_ms
                          ? time_run(sec, a2, b, c->col, &sum)
                          : a2;
        if (a2 == b2 || !in_vrange(q, sum))
            continue;
        if (c->mp->id_found && k < c->mp->nids)
            c->mp->id_found[k] = 1;
        rc = add_rows(c, a2, b2);
    }
    return rc;
}

/* Q_PROFILE: stacks and values into @mp's stack table; Q_TOP: function
 * totals into column @dstcol of @mp. */
static int merge_profile(struct mprof *mp, const struct seg_section *sec, const uint8_t *mask,
                         uint32_t col, uint32_t dstcol, const struct query *q, const char *host)
{
    struct secmap m = {
        .mp = mp, .sec = sec, .unknown = MPROF_NONE, .dsym = q->dsym, .tenant = q->tenant};
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
        mp->period_type = intern_strn(&mp->str, a, strlen(a));
        mp->period_unit = intern_strn(&mp->str, b, strlen(b));
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

    struct pctx c = {.mp = mp,
                     .m = &m,
                     .sec = sec,
                     .smap = smap,
                     .cmap = cmap,
                     .nt = nt,
                     .col = col,
                     .acc = acc,
                     .all_types = q->all_types};
    uint64_t lo = 0;
    for (uint32_t i = 0; i < sec->nseries; i++) {
        uint64_t a = lower_u32(sec->sample_series, lo, sec->nsamples, i);
        uint64_t b = lower_u32(sec->sample_series, a, sec->nsamples, i + 1);
        lo = b;
        if (!mask[i] || a == b)
            continue;
        if ((rc = qcancel_check(q->cancel)))
            goto out;
        a = lower_i64(sec->sample_time_ms, a, b, q->from);
        b = lower_i64(sec->sample_time_ms, a, b, q->until);
        rc = q->nids || q->has_vrange ? add_selected(&c, i, a, b, q, host) : add_rows(&c, a, b);
        if (rc)
            goto out;
        rc = -ENOMEM;
    }
    any = c.any;
    if (any && q->mode == Q_TOP) {
        rc = add_top(&m, acc, dstcol);
        goto out;
    }
    if (any && add_acc(&m, acc))
        goto out;
    rc = 0;
out:
    free(m.fmap);
    free(m.loc_start);
    free(m.loc_n);
    free(m.leaf_start);
    free(m.leaf_n);
    free(m.lf);
    free(m.buf);
    free(smap);
    free(acc);
    return rc;
}

/* The value of label @name (string id @nid in @sec) of series @i, with
 * service_name and host_name defaulting to the section's and the host's. */
static const char *label_value(const struct seg_section *sec, uint32_t i, const char *name,
                               uint32_t nid, const char *host)
{
    uint32_t v = series_value(sec, i, nid);

    if (v != UINT32_MAX)
        return sec->strings[v];
    if (name && strcmp(name, "service_name") == 0)
        return sec->service;
    if (name && strcmp(name, "host_name") == 0)
        return host ? host : "";
    return "";
}

static int merge_series(struct mprof *mp, const struct seg_section *sec, const uint8_t *mask,
                        uint32_t col, const struct query *q, const char *host)
{
    const char *gb = q->group_by && *q->group_by ? q->group_by : NULL;
    uint32_t ng = gb ? query_group_by_count(gb) : 0, gname[QUERY_MAX_GROUP_BY];
    char names[QUERY_MAX_GROUP_BY][130];
    struct wbuf key = {0};
    uint64_t lo = 0;
    size_t nb = mp->nbuckets;
    int rc = 0;

    if (ng > QUERY_MAX_GROUP_BY)
        return -EINVAL;
    for (uint32_t k = 0; k < ng; k++, gb += strcspn(gb, ",") + 1) {
        size_t len = strcspn(gb, ",");
        if (len >= sizeof(names[k]))
            return -EINVAL;
        memcpy(names[k], gb, len);
        names[k][len] = '\0';
        gname[k] = find_string(sec, names[k]);
    }
    /* Label sets only (all_types): the section's type ids, one per column. */
    char(*tid)[256] = NULL;
    if (q->all_types) {
        if (!(tid = calloc(sec->ntypes + 1, sizeof(*tid))))
            return -ENOMEM;
        for (uint32_t t = 0; t < sec->ntypes; t++)
            if (seg_profile_type_id(sec, t, tid[t], sizeof(tid[t])) < 0)
                tid[t][0] = '\0';
    }
    for (uint32_t i = 0; i < sec->nseries && !rc; i++) {
        uint64_t a = lower_u32(sec->sample_series, lo, sec->nsamples, i);
        uint64_t b = lower_u32(sec->sample_series, a, sec->nsamples, i + 1);
        lo = b;
        if (!mask[i] || a == b)
            continue;
        if ((rc = qcancel_check(q->cancel)))
            break;
        a = lower_i64(sec->sample_time_ms, a, b, q->from);
        b = lower_i64(sec->sample_time_ms, a, b, q->until);
        if (a == b)
            continue;
        if (tid) {
            /* A group per (label values, type): its key ends with the
             * type id; present, no sums. No sample is read. */
            for (uint32_t t = 0; t < sec->ntypes && !rc; t++) {
                if (!tid[t][0])
                    continue;
                key.len = 0;
                for (uint32_t k = 0; k < ng; k++)
                    query_group_key_append(&key, label_value(sec, i, names[k], gname[k], host),
                                           k == 0);
                query_group_key_append(&key, tid[t], ng == 0);
                wb_bytes(&key, "", 1);
                uint32_t sid = key.err ? MPROF_NONE : intern_strn(&mp->str, key.s, strlen(key.s));
                uint32_t g = sid == MPROF_NONE ? MPROF_NONE : mprof_group(mp, sid);
                if (g == MPROF_NONE)
                    rc = -ENOMEM;
                else if (nb)
                    mp->present[(size_t)g * nb] = 1;
            }
            continue;
        }
        /* One label: the group value is its value; several: a group key. */
        const char *val = ng ? label_value(sec, i, names[0], gname[0], host) : "";
        if (ng > 1) {
            key.len = 0;
            for (uint32_t k = 0; k < ng; k++)
                query_group_key_append(&key, label_value(sec, i, names[k], gname[k], host), k == 0);
            wb_bytes(&key, "", 1);
            if (key.err) {
                rc = -ENOMEM;
                break;
            }
            val = key.s;
        }
        uint32_t sid = intern_strn(&mp->str, val, strlen(val));
        uint32_t g = sid == MPROF_NONE ? MPROF_NONE : mprof_group(mp, sid);
        if (g == MPROF_NONE) {
            rc = -ENOMEM;
            break;
        }
        int64_t *pts = mp->points + (size_t)g * nb;
        uint8_t *pr = mp->present + (size_t)g * nb;
        /* Each time run is one individual profile: one step lookup (a
         * division) per run, not per row; with exemplars it also offers
         * itself as its point's exemplar. */
        struct mprof_ind v;
        bool ex = q->exemplars && mp->want_ex;
        if (ex && series_ident(mp, sec, i, q, host, &v.hash, &v.lset)) {
            rc = -ENOMEM;
            break;
        }
        for (uint64_t r = a; r < b;) {
            v.time = sec->sample_time_ms[r];
            r = time_run(sec, r, b, col, &v.value);
            uint64_t bk = (uint64_t)(v.time - mp->from) / (uint64_t)mp->step;
            if (bk >= nb)
                continue;
            MPROF_ADD(pts[bk], v.value);
            pr[bk] = 1;
            if (ex)
                mprof_ex_offer(mp, (size_t)g * nb + bk, &v);
        }
    }
    free(key.p);
    free(tid);
    return rc;
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
            uint32_t a1 = intern_strn(&mp->str, n, strlen(n));
            uint32_t b1 = intern_strn(&mp->str, v, strlen(v));
            if (a1 == MPROF_NONE || b1 == MPROF_NONE || mprof_pair(mp, a1, b1))
                return -ENOMEM;
        }
        const char *dn[2] = {"service_name", "host_name"}, *dv[2] = {sec->service, host};
        uint32_t did[2] = {sn, hn};
        for (int k = 0; k < 2; k++) {
            if (series_value(sec, i, did[k]) != UINT32_MAX || !dv[k] || !*dv[k])
                continue;
            uint32_t a1 = intern_strn(&mp->str, dn[k], strlen(dn[k]));
            uint32_t b1 = intern_strn(&mp->str, dv[k], strlen(dv[k]));
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
    /* Label queries and label sets (Q_SERIES with all_types) take any type. */
    if (col == UINT32_MAX &&
        !((q->mode == Q_LABELS || (q->mode == Q_SERIES && q->all_types)) && !q->profile_type))
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
    case Q_TOP:
        rc = merge_profile(mp, sec, mask, col, 0, q, host);
        break;
    case Q_SERIES:
        rc = merge_series(mp, sec, mask, col, q, host);
        break;
    case Q_INDIVIDUAL:
        rc = merge_individual(mp, sec, mask, col, q, host);
        break;
    default:
        rc = merge_labels(mp, sec, mask, q, host);
        break;
    }
    free(mask);
    return rc;
}

/* ---- function totals of a whole section (compaction) ------------------- */

int engine_unnamed_build_ids(const struct seg_section *sec, struct intern *bids, const char ***ids,
                             uint32_t *n)
{
    for (uint32_t l = 0; l < sec->nlocations; l++) {
        const struct seg_location *loc = &sec->locations[l];
        if (loc->nlines || loc->mapping == UINT32_MAX || loc->mapping >= sec->nmappings)
            continue;
        const char *b = sec->strings[sec->mappings[loc->mapping].build_id];
        if (*b && intern_strn(bids, b, strlen(b)) == INTERN_NONE)
            return -ENOMEM;
    }
    if (!(*ids = malloc(((size_t)bids->n + 1) * sizeof(**ids))))
        return -ENOMEM;
    for (uint32_t i = 0; i < bids->n; i++)
        (*ids)[i] = intern_str_get(bids, i);
    *n = bids->n;
    return 0;
}

int engine_merge_whole_section(struct mprof *mp, const struct seg_section *sec)
{
    struct query q = {.mode = Q_PROFILE, .all_types = true, .from = INT64_MIN, .until = INT64_MAX};
    uint8_t *mask = malloc(sec->nseries + 1);
    int rc;

    if (!mask)
        return -ENOMEM;
    memset(mask, 1, sec->nseries);
    rc = merge_profile(mp, sec, mask, 0, 0, &q, NULL);
    free(mask);
    return rc;
}

int engine_top_summary(void *ctx, const uint8_t *bytes, size_t len,
                       const struct seg_section_info *info, uint8_t **raw, size_t *rawlen)
{
    struct seg_section *sec = NULL;
    struct mprof *mp = NULL;
    struct intern bids = {0};
    struct seg_topsum t = {0};
    struct wbuf out = {0};
    uint8_t *mask = NULL;
    char err[256];
    int rc;

    (void)ctx;
    *raw = NULL;
    *rawlen = 0;
    if ((rc = seg_section_decode(bytes, len, info, &sec, err, sizeof(err))))
        return rc;
    rc = -ENOMEM;
    if (sec->ntypes == 0 || sec->ntypes > MPROF_MAX_TYPES) {
        rc = 0; /* nothing a query could ask of it: no totals */
        goto out;
    }
    mp = mprof_new(sec->ntypes);
    mask = malloc(sec->nseries + 1);
    if (!mp || !mask)
        goto out;
    memset(mask, 1, sec->nseries);
    struct query q = {.mode = Q_TOP, .from = INT64_MIN, .until = INT64_MAX};
    for (uint32_t ty = 0; ty < sec->ntypes; ty++)
        if ((rc = merge_profile(mp, sec, mask, ty, ty, &q, NULL)))
            goto out;
    rc = -ENOMEM;
    /* The functions with a value in any type, in string id order. */
    uint32_t nn = mp->fcap < mp->str.n ? mp->fcap : mp->str.n, k = 0, nt = sec->ntypes;
    uint32_t *keep = malloc(((size_t)nn + 1) * sizeof(*keep));
    t.ntypes = nt;
    t.names = malloc(((size_t)nn + 1) * sizeof(*t.names));
    t.self = malloc(((size_t)nn * nt + 1) * sizeof(*t.self));
    t.total = malloc(((size_t)nn * nt + 1) * sizeof(*t.total));
    if (!keep || !t.names || !t.self || !t.total) {
        free(keep);
        goto out;
    }
    for (uint32_t i = 0; i < nn; i++) {
        bool any = false;
        for (uint32_t ty = 0; ty < nt; ty++)
            any |= mp->fself[(size_t)i * nt + ty] || mp->ftotal[(size_t)i * nt + ty];
        if (any) {
            t.names[k] = intern_str_get(&mp->str, i);
            keep[k++] = i;
        }
    }
    t.nfuncs = k;
    for (uint32_t ty = 0; ty < nt; ty++) {
        t.sum[ty] = mp->fsum[ty];
        for (uint32_t j = 0; j < k; j++) {
            t.self[(size_t)ty * k + j] = mp->fself[(size_t)keep[j] * nt + ty];
            t.total[(size_t)ty * k + j] = mp->ftotal[(size_t)keep[j] * nt + ty];
        }
    }
    free(keep);
    if (engine_unnamed_build_ids(sec, &bids, &t.build_ids, &t.nbuild_ids))
        goto out;
    if ((rc = seg_topsum_encode(&out, &t)))
        goto out;
    *raw = out.p;
    *rawlen = out.len;
    out.p = NULL;
    rc = 0;
out:
    free(t.names);
    free(t.self);
    free(t.total);
    free(t.build_ids);
    wb_free(&out);
    intern_free(&bids);
    free(mask);
    mprof_free(mp);
    seg_section_free(sec);
    return rc;
}
