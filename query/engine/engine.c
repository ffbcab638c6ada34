/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/engine.h"
#include "query/engine/footers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/calltree.h"
#include "codec/segment.h"
#include "codec/topsum.h"
#include "common/intern.h"
#include "query/engine/ctree.h"
#include "query/engine/dsym.h"
#include "query/engine/peer.h"
#include "query/engine/plan.h"

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

struct store *engine_store(const struct engine *e)
{
    return e ? e->o.store : NULL;
}

struct dsym *engine_dsym(const struct engine *e)
{
    return e ? e->o.dsym : NULL;
}

void engine_counters(struct engine *e, struct engine_counters *out)
{
    pthread_mutex_lock(&e->lock);
    *out = e->c;
    pthread_mutex_unlock(&e->lock);
    if (e->o.peerset)
        peerset_stats(e->o.peerset, &out->peers);
}

/* ---- running a query --------------------------------------------------- */

static struct mprof *new_result(const struct query *q)
{
    struct mprof *mp = mprof_new(q->mode == Q_PROFILE && q->all_types ? MPROF_MAX_TYPES : 1);

    if (mp && q->mode == Q_PROFILE && q->nids) {
        mp->id_found = calloc(q->nids, 1);
        mp->nids = q->nids;
        if (!mp->id_found) {
            mprof_free(mp);
            return NULL;
        }
    }
    if (mp && q->mode == Q_SERIES) {
        mp->want_ex = q->exemplars;
        int64_t step;
        uint32_t nb;
        if (query_series_grid(q, &step, &nb) || mprof_series_init(mp, q->from, step, nb)) {
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

/* A decode thread's last read of function totals frames: one range over
 * those of adjacent plan items of one object (a block holds them back to
 * back, docs/format.md §3.5), so a top query over a block of 100 services
 * makes one GET, not 100. */
struct totals_read {
    const char *key;
    uint64_t off, len, charged;
    struct store_buf b;
};

struct worker {
    struct work *w;
    struct mprof *mp;
    struct totals_read tr;
    uint64_t charged; /* mprof_bytes(mp) charged to the query's budget */
    pthread_t tid;
};

/* The heap bytes a decoded section holds (seg_section_decode's arrays and
 * its decompressed body, which the strings point into), and what merging
 * it takes on top. */
static uint64_t section_bytes(const struct seg_section_info *info, const struct seg_section *s)
{
    return sizeof(*s) + info->raw_length + (uint64_t)s->nstrings * sizeof(*s->strings) +
           (uint64_t)s->ntypes * sizeof(*s->types) + (uint64_t)s->nmappings * sizeof(*s->mappings) +
           (uint64_t)s->nfunctions * sizeof(*s->functions) +
           (uint64_t)s->nlocations * sizeof(*s->locations) +
           (uint64_t)s->nlines * sizeof(*s->lines) +
           ((uint64_t)s->nstacks + 1) * sizeof(*s->stack_off) +
           (s->nstacks ? (uint64_t)s->stack_off[s->nstacks] * sizeof(*s->stack_locs) : 0) +
           ((uint64_t)s->nseries + 1) * sizeof(*s->series_off) +
           (s->nseries ? 2ull * s->series_off[s->nseries] * sizeof(*s->series_labels) : 0) +
           s->nsamples * (sizeof(*s->sample_series) + sizeof(*s->sample_stack) +
                          sizeof(*s->sample_time_ms) + s->ntypes * sizeof(*s->sample_values)) +
           /* the merge kernel's scratch for it (merge.c): function and
            * location maps, a stack map and a value per stack */
           ((uint64_t)s->nfunctions + 2ull * s->nlocations + 3ull * s->nstacks + 4) *
               sizeof(uint32_t) * 2;
}

/* Where a summary frame of @si lies: the function totals (@tree false,
 * docs/format.md §3.5) or the call tree (§3.6); *len 0 = none. */
static void frame_pos(const struct seg_section_info *si, bool tree, uint64_t *off, uint64_t *len)
{
    *off = tree ? si->tree_offset : si->top_offset;
    *len = tree ? si->tree_length : si->top_length;
}

/* The range of the summary frames of one kind of the plan items around
 * items[i] of the same object (adjacent in plan order): a block holds
 * each kind's frames back to back. */
static void totals_range(const struct plan_item *const *items, size_t n, size_t i, bool tree,
                         uint64_t *off, uint64_t *end)
{
    const struct plan_item *it = items[i];
    size_t a = i, b = i + 1;
    uint64_t o, l;

    while (a > 0 && items[a - 1]->footer == it->footer && !strcmp(items[a - 1]->key, it->key))
        a--;
    while (b < n && items[b]->footer == it->footer && !strcmp(items[b]->key, it->key))
        b++;
    frame_pos(it->info, tree, &o, &l);
    *off = o;
    *end = o + l;
    for (size_t k = a; k < b; k++) {
        frame_pos(items[k]->info, tree, &o, &l);
        if (!l)
            continue;
        if (o < *off)
            *off = o;
        if (o + l > *end)
            *end = o + l;
    }
}

/* The compressed summary frame of items[i] (@tree: its call tree, else
 * its function totals) into *@buf, from @tr's range or a new read of the
 * range around it. 0 or the store's error. */
static int totals_bytes(struct engine *e, struct mprof *mp, const struct query *q,
                        struct totals_read *tr, const struct plan_item *const *items, size_t n,
                        size_t i, bool tree, const uint8_t **buf)
{
    uint64_t off, end, foff, flen;
    bool hit = false;
    int rc;

    frame_pos(items[i]->info, tree, &foff, &flen);
    if (tr->key && !strcmp(tr->key, items[i]->key) && foff >= tr->off &&
        foff + flen <= tr->off + tr->b.len) {
        *buf = tr->b.data + (foff - tr->off);
        return 0;
    }
    free(tr->b.data);
    tr->b = (struct store_buf){0};
    tr->key = NULL;
    qcancel_release(q->cancel, tr->charged);
    tr->charged = 0;
    totals_range(items, n, i, tree, &off, &end);
    if (qcancel_charge(q->cancel, end - off))
        return qcancel_check(q->cancel) ? qcancel_check(q->cancel) : -ENOBUFS;
    tr->charged = end - off;
    rc = cache_fetch(e->o.cache, e->o.store, items[i]->key, off, end - off, &tr->b, &hit);
    if (rc)
        return rc;
    if (hit)
        mp->stats.cache_hits++;
    else
        mp->stats.bytes_read += tr->b.len;
    if (tr->b.len != end - off)
        return -EIO;
    tr->key = items[i]->key;
    tr->off = off;
    *buf = tr->b.data + (foff - off);
    return 0;
}

/* Whether @it's section may be answered from a summary: it lies inside
 * the range and every one of its series matches; its column of the
 * query's profile type in *col. */
static bool summary_applies(const struct query *q, const struct plan_item *it, uint32_t *col)
{
    const struct seg_section_info *info = it->info;
    const char *want = q->profile_type ? q->profile_type : DEFAULT_PROFILE_TYPE;

    if (q->nids || q->has_vrange || info->t_min_ms < q->from || info->t_max_ms >= q->until ||
        !plan_section_must_match(q->sel, info, it->host))
        return false;
    for (uint32_t k = 0; k < info->nprofile_types; k++)
        if (strcmp(info->profile_types[k], want) == 0) {
            *col = k;
            return true;
        }
    return false;
}

/* Whether the worker's deferred symbolization holds a debug file for any
 * of @ids (it would name frames a summary holds unnamed). */
static bool any_named(const struct query *q, const char *const *ids, uint32_t n)
{
    for (uint32_t k = 0; k < n && q->dsym; k++)
        if (dsym_has_file(q->dsym, q->tenant, ids[k]))
            return true;
    return false;
}

/* Q_TOP from the function totals frame of @it's section (codec/topsum.h)
 * when that answers exactly: summary_applies, and deferred symbolization
 * has no debug file for its unnamed frames. 1 when done (read or counted
 * as skipped), 0 when the section's rows must be read. */
static int top_from_totals(struct engine *e, struct mprof *mp, const struct query *q,
                           struct totals_read *tr, const struct plan_item *const *items, size_t n,
                           size_t i)
{
    const struct plan_item *it = items[i];
    const struct seg_section_info *info = it->info;
    struct seg_topsum t;
    uint32_t col = UINT32_MAX;
    char err[256] = "";
    int rc;

    if (q->mode != Q_TOP || !info->top_length || !summary_applies(q, it, &col))
        return 0;
    const uint8_t *fb = NULL;
    if (totals_bytes(e, mp, q, tr, items, n, i, false, &fb))
        return 0; /* the rows may still be readable */
    if (qcancel_charge(q->cancel, 2 * info->top_raw))
        return 1;
    rc = seg_topsum_decode(fb, info->top_length, info, &t, err, sizeof(err));
    if (rc) {
        /* the rows may still be good: read them */
        qcancel_release(q->cancel, 2 * info->top_raw);
        return 0;
    }
    bool named = any_named(q, t.build_ids, t.nbuild_ids);
    if (!named && col < t.ntypes) {
        mp->stats.sections++;
        MPROF_ADD(mp->fsum[0], t.sum[col]);
        mp->top = true;
        for (uint32_t f = 0; f < t.nfuncs && !rc; f++) {
            int64_t s = t.self[(size_t)col * t.nfuncs + f], v = t.total[(size_t)col * t.nfuncs + f];
            if (s || v)
                rc = mprof_top_add(mp, intern_str(&mp->str, t.names[f]), 0, s, v);
        }
        if (rc)
            mprof_warn(mp, "segment %s: out of memory merging", it->key);
    }
    seg_topsum_free(&t);
    qcancel_release(q->cancel, 2 * info->top_raw);
    return named ? 0 : 1;
}

/* The sample type and unit of profile type id @id (name:type:unit:
 * period type:period unit; the query checked that no field holds a ':').
 * 0, or -1 when they do not fit @cap bytes each. */
static int type_parts(const char *id, char *type, char *unit, size_t cap)
{
    const char *a = strchr(id, ':'), *b = a ? strchr(a + 1, ':') : NULL,
               *c = b ? strchr(b + 1, ':') : NULL;

    if (!c || (size_t)(b - a - 1) >= cap || (size_t)(c - b - 1) >= cap)
        return -1;
    memcpy(type, a + 1, (size_t)(b - a - 1));
    type[b - a - 1] = '\0';
    memcpy(unit, b + 1, (size_t)(c - b - 1));
    unit[c - b - 1] = '\0';
    return 0;
}

/* A flame graph's (query.flame) section from its call tree frame
 * (codec/calltree.h), as top_from_totals does for Q_TOP: 1 when done, 0
 * when the rows must be read. */
static int tree_from_calltree(struct engine *e, struct mprof *mp, const struct query *q,
                              struct totals_read *tr, const struct plan_item *const *items,
                              size_t n, size_t i)
{
    const struct plan_item *it = items[i];
    const struct seg_section_info *info = it->info;
    struct seg_calltree t;
    uint32_t col = UINT32_MAX;
    char err[256] = "", type[128], unit[128];
    int rc;

    if (q->mode != Q_PROFILE || !q->flame || q->all_types || !info->tree_length ||
        !summary_applies(q, it, &col) ||
        type_parts(info->profile_types[col], type, unit, sizeof(type)))
        return 0;
    const uint8_t *fb = NULL;
    if (totals_bytes(e, mp, q, tr, items, n, i, true, &fb))
        return 0;
    if (qcancel_charge(q->cancel, 2 * info->tree_raw))
        return 1;
    rc = seg_calltree_decode(fb, info->tree_length, info, &t, err, sizeof(err));
    if (rc) {
        qcancel_release(q->cancel, 2 * info->tree_raw);
        return 0;
    }
    bool done = col < t.ntypes && !any_named(q, t.build_ids, t.nbuild_ids);
    /* the paths it adds, at most one stack of 4-byte names per node and
     * one more per cut node, before they are made: a hostile tree of deep
     * chains is refused by the budget, not found out after */
    uint64_t paths = 8 * t.path_frames + 4 * (uint64_t)t.nnodes;
    if (done && qcancel_charge(q->cancel, paths)) {
        seg_calltree_free(&t);
        qcancel_release(q->cancel, 2 * info->tree_raw);
        return 1;
    }
    if (done) {
        mp->stats.sections++;
        if (ctree_merge(mp, &t, col, type, unit))
            mprof_warn(mp, "segment %s: out of memory merging", it->key);
        qcancel_release(q->cancel, paths); /* now in mp, charged with it */
    }
    seg_calltree_free(&t);
    qcancel_release(q->cancel, 2 * info->tree_raw);
    return done;
}

/* Reads, decodes and merges one section into @mp. Its fetched bytes and
 * its decoded form are charged to the query's memory budget while held;
 * a refused charge stops the query (qcancel) and the section is not read. */
static void process_item(struct engine *e, struct mprof *mp, const struct query *q,
                         struct totals_read *tr, const struct plan_item *const *items, size_t n,
                         size_t i)
{
    const struct plan_item *it = items[i];
    const struct seg_section_info *info = it->info;
    struct store_buf b = {0};
    struct seg_section *sec = NULL;
    char err[256] = "";
    bool hit = false;
    /* Charged before anything is allocated, so decode threads cannot all
     * be inside seg_section_decode with their memory unaccounted: the
     * compressed bytes, the body they decompress to and the sample arrays
     * (from the footer's counts; heaptrack: these are most of a query's
     * peak); corrected to section_bytes() once decoded. */
    uint64_t types = info->nprofile_types ? info->nprofile_types : 1;
    uint64_t held =
        info->length + info->raw_length +
        (info->nsamples < (UINT64_MAX >> 8) / (16 + 8 * types) ? info->nsamples * (16 + 8 * types)
                                                               : UINT64_MAX >> 8);
    int rc;

    if (top_from_totals(e, mp, q, tr, items, n, i) || tree_from_calltree(e, mp, q, tr, items, n, i))
        return;
    if (qcancel_charge(q->cancel, held))
        return;
    rc = cache_fetch(e->o.cache, e->o.store, it->key, info->offset, info->length, &b, &hit);
    if (rc) {
        mp->stats.skipped++;
        mprof_warn(mp, "segment %s: %s", it->key, strerror(-rc));
        goto out;
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
        goto out;
    }
    rc = seg_section_decode(b.data, b.len, info, &sec, err, sizeof(err));
    free(b.data);
    if (rc) {
        mp->stats.skipped++;
        mprof_warn(mp, "segment %s: %s", it->key, err[0] ? err : strerror(-rc));
        goto out;
    }
    if (qcancel_recharge(q->cancel, &held, section_bytes(info, sec))) {
        seg_section_free(sec);
        goto out;
    }
    mp->stats.sections++;
    rc = engine_merge_section(mp, sec, it->host, q);
    seg_section_free(sec);
    if (rc == -ENOMEM)
        mprof_warn(mp, "segment %s: out of memory merging", it->key);
out:
    qcancel_release(q->cancel, held);
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct work *w = wk->w;

    for (;;) {
        size_t i = atomic_fetch_add(&w->next, 1);
        if (i >= w->n || qcancel_check(w->q->cancel)) {
            free(wk->tr.b.data);
            qcancel_release(w->q->cancel, wk->tr.charged);
            wk->tr = (struct totals_read){0};
            break;
        }
        process_item(w->e, wk->mp, w->q, &wk->tr, w->items, w->n, i);
        /* The merge tables grew: charge them (a refusal stops the query). */
        qcancel_recharge(w->q->cancel, &wk->charged, mprof_bytes(wk->mp));
    }
    return NULL;
}

/* Reads @items on up to e->o.threads threads and merges into @out, whose
 * mprof_bytes are charged in *@out_charged. */
static int run_local(struct engine *e, const struct query *q, const struct plan_item **items,
                     size_t n, struct mprof *out, uint64_t *out_charged)
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
        wk[t].charged = 0;
        wk[t].tr = (struct totals_read){0};
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
    /* The largest thread's result takes @out's place when @out holds no
     * profile yet (only the plan's notes: warnings and stats, merged back
     * in): merging it into the empty @out would intern all of its stacks
     * again, as much work as building them was (a calibrated fleet's day:
     * millions of stacks, most of the merge's time). */
    if (!rc && out->nstacks == 0 && out->str.n <= 1 && out->ngroups == 0 && out->pairs.n == 0 &&
        out->lsets.n == 0 && out->nind == 0) {
        unsigned big = 0;
        for (unsigned t = 1; t < nth; t++)
            if (wk[t].mp->nstacks > wk[big].mp->nstacks)
                big = t;
        struct mprof tmp = *out;
        *out = *wk[big].mp;
        *wk[big].mp = tmp;          /* the notes: merged below like any result */
        uint64_t ch = *out_charged; /* and the charges follow the tables */
        *out_charged = wk[big].charged;
        wk[big].charged = ch;
    }
    for (unsigned t = 0; t < nth; t++) {
        if (!rc)
            rc = mprof_merge(out, wk[t].mp);
        if (!rc)
            rc = qcancel_recharge(q->cancel, out_charged, mprof_bytes(out));
        mprof_free(wk[t].mp);
        qcancel_release(q->cancel, wk[t].charged);
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

static void *peer_main(void *arg)
{
    struct peer_call *pc = arg;
    struct peer_target t = {
        .addr = pc->peer, .token = pc->e->o.peer_token, .timeout_ms = pc->e->o.peer_timeout_ms};

    peer_select(&t, pc->q, pc->shard, pc->nshards, &pc->result, pc->err, sizeof(pc->err));
    return NULL;
}

/* ---- entry point ------------------------------------------------------- */

int engine_query(struct engine *e, const struct query *q0, struct mprof **out, char *err,
                 size_t errlen)
{
    struct query qd = *q0, *q = &qd;
    if (!qd.dsym)
        qd.dsym = e->o.dsym;
    struct plan_req pr = {.tenant = q->tenant,
                          .sel = q->sel,
                          .from = q->from,
                          .until = q->until,
                          .profile_type =
                              (q->mode == Q_LABELS || (q->mode == Q_SERIES && q->all_types)) &&
                                      !q->profile_type
                                  ? NULL
                                  : (q->profile_type ? q->profile_type : DEFAULT_PROFILE_TYPE),
                          .cancel = q->cancel};
    struct plan *plan = NULL;
    struct mprof *res = NULL;
    const struct plan_item **mine = NULL;
    struct peer_call *calls = NULL;
    uint32_t nsh, myshard;
    size_t nmine = 0, ncalls = 0, npeers = e->o.npeers;
    char **peers = e->o.peers, **snap = NULL;
    uint64_t res_charged = 0;
    int rc;

    *out = NULL;
    /* This query's peers: the list as it is now, kept to its end. */
    if (e->o.peerset) {
        if ((rc = peerset_snapshot(e->o.peerset, &snap, &npeers)))
            return rc;
        peers = snap;
    }
    /* Individual profiles are not in the peers' wire format (mprof.h):
     * such queries read every shard here. */
    if (q->mode == Q_INDIVIDUAL || q->exemplars || q->nids)
        npeers = 0;
    /* A selection by ids reads only the windows the ids name. */
    if (q->nids && q->mode == Q_PROFILE) {
        int64_t lo = q->ids[0].time_ms, hi = q->ids[q->nids - 1].time_ms + 1;
        if (lo > pr.from)
            pr.from = lo;
        if (hi < pr.until)
            pr.until = hi;
        if (pr.from >= pr.until) {
            /* None of them is in the range: nothing to read. */
            free(snap);
            res = new_result(q);
            if (!res)
                return -ENOMEM;
            *out = res;
            return 0;
        }
    }
    rc = plan_build(e->o.store, e->o.cache, &pr, &plan, err, errlen);
    if (rc) {
        free(snap);
        return rc;
    }
    res = new_result(q);
    if (!res) {
        rc = -ENOMEM;
        goto out;
    }
    if (q->nshards) {
        nsh = q->nshards;
        myshard = q->shard;
    } else {
        nsh = (uint32_t)npeers + 1;
        myshard = 0;
        /* Only the coordinator reports what planning cost and skipped:
         * peers plan the same manifests again. */
        res->stats.skipped += plan->skipped;
        if ((rc = mprof_merge(res, plan->notes)))
            goto out;
        /* Label names and values: from the footers when they answer
         * exactly (query/engine/footers.h), no section read. */
        if ((rc = footers_labels(plan, q, res)) != -EAGAIN)
            goto out; /* else rc is set by run_local below */
    }
    mine = malloc((plan->n + 1) * sizeof(*mine));
    if (!mine) {
        rc = -ENOMEM;
        goto out;
    }
    {
        /* Objects are counted by the shard that reads them, so the sum over
         * peers is the number of distinct objects. */
        struct intern keys = {0};
        for (size_t i = 0; i < plan->n; i++)
            if (plan->items[i].key_hash % nsh == myshard) {
                mine[nmine++] = &plan->items[i];
                intern_strn(&keys, plan->items[i].key, strlen(plan->items[i].key));
            }
        res->stats.objects += keys.n;
        intern_free(&keys);
    }
    if (!q->nshards && npeers) {
        calls = calloc(npeers, sizeof(*calls));
        if (!calls) {
            rc = -ENOMEM;
            goto out;
        }
        ncalls = npeers;
        for (size_t i = 0; i < ncalls; i++) {
            calls[i] = (struct peer_call){
                .e = e, .q = q, .peer = peers[i], .shard = (uint32_t)i + 1, .nshards = nsh};
            calls[i].started = pthread_create(&calls[i].tid, NULL, peer_main, &calls[i]) == 0;
            if (!calls[i].started)
                snprintf(calls[i].err, sizeof(calls[i].err), "cannot start a thread");
        }
    }
    rc = run_local(e, q, mine, nmine, res, &res_charged);
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
            if (!rc)
                rc = qcancel_recharge(q->cancel, &res_charged, mprof_bytes(res));
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
            struct intern keys = {0};
            for (size_t j = 0; j < k; j++)
                intern_strn(&keys, mine[j]->key, strlen(mine[j]->key));
            res->stats.objects += keys.n;
            intern_free(&keys);
            rc = run_local(e, q, mine, k, res, &res_charged);
        }
    }
    if (rc && err && errlen) {
        if (rc == -E2BIG || rc == -ENOBUFS)
            qmem_error(q->cancel ? q->cancel->mem : NULL, rc, err, (unsigned)errlen);
        else
            snprintf(err, errlen, "%s",
                     rc == -ENOMEM      ? "out of memory"
                     : rc == -ETIMEDOUT ? "deadline passed"
                     : rc == -ECANCELED ? "cancelled"
                                        : strerror(-rc));
    }
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
    free(snap);
    free(mine);
    plan_free(plan);
    /* The result stays charged while its caller turns it into an answer:
     * the query's qmem_end gives it back. */
    if (rc) {
        mprof_free(res);
        qcancel_release(q->cancel, res_charged);
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
    struct intern seen = {0};
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
            if (intern_strn(&seen, s, strlen(s)) == MPROF_NONE)
                rc = -ENOMEM;
        }
    if (!rc && !(v = calloc(seen.n + 1, sizeof(*v))))
        rc = -ENOMEM;
    for (uint32_t i = 0; !rc && i < seen.n; i++)
        if (!(v[i] = strdup(intern_str_get(&seen, i))))
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
    intern_free(&seen);
    plan_free(plan);
    return rc;
}

/* The day (since the epoch) of a manifest or segment key
 * "<prefix>YYYY-MM-DD/...", or -1. */
static int64_t manifest_key_day(const char *rest)
{
    struct tm tm = {0};
    const char *end = strptime(rest, "%Y-%m-%d", &tm);

    if (!end || *end != '/')
        return -1;
    return (int64_t)timegm(&tm) / 86400;
}

int engine_plan(struct engine *e, const struct plan_req *r, struct plan **out, char *err,
                size_t errlen)
{
    return plan_build(e->o.store, e->o.cache, r, out, err, errlen);
}

int engine_profile_stats(struct engine *e, const char *tenant, struct qcancel *cancel,
                         struct profile_stats *out, char *err, size_t errlen)
{
    char prefix[256];
    struct store_list l = {0};
    int64_t first = INT64_MAX, last = -1;
    int rc;

    memset(out, 0, sizeof(*out));
    out->oldest_ms = INT64_MAX;
    /* Manifests index compacted hours (and, in stores written before one
     * object per flush, every flush); segments not compacted yet are only
     * under segments/. */
    for (int k = 0; k < 2; k++) {
        snprintf(prefix, sizeof(prefix), "%s/%s/", tenant, k ? "segments" : "manifest");
        rc = store_list(e->o.store, prefix, &l);
        if (rc == -ENOENT)
            continue;
        if (rc) {
            snprintf(err, errlen, "listing %s: %s", prefix, strerror(-rc));
            return rc;
        }
        for (size_t i = 0; i < l.n; i++) {
            int64_t d = strncmp(l.keys[i], prefix, strlen(prefix))
                            ? -1
                            : manifest_key_day(l.keys[i] + strlen(prefix));
            if (d < 0 || d * 86400000LL > QUERY_MAX_TIME_MS - 86400000LL)
                continue;
            first = d < first ? d : first;
            last = d > last ? d : last;
        }
        store_list_free(&l);
    }
    rc = 0;
    /* The oldest and the newest day: their sections' sample time ranges. */
    for (int k = 0; k < 2 && last >= 0 && !rc; k++) {
        int64_t day = k ? last : first;
        struct plan_req pr = {.tenant = tenant,
                              .from = day * 86400000LL,
                              .until = (day + 1) * 86400000LL,
                              .cancel = cancel};
        struct plan *plan = NULL;
        if (k && last == first)
            break;
        if ((rc = plan_build(e->o.store, e->o.cache, &pr, &plan, err, errlen)))
            break;
        for (size_t i = 0; i < plan->n; i++) {
            const struct seg_section_info *si = plan->items[i].info;
            if (si->nsamples == 0)
                continue;
            out->ingested = true;
            if (si->t_min_ms < out->oldest_ms)
                out->oldest_ms = si->t_min_ms;
            if (si->t_max_ms > out->newest_ms)
                out->newest_ms = si->t_max_ms;
        }
        out->skipped += plan->skipped;
        plan_free(plan);
    }
    if (!out->ingested)
        out->oldest_ms = out->newest_ms = 0;
    return rc;
}
