/* SPDX-License-Identifier: Apache-2.0 */
#include "query/serve/native_api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "query/engine/ctree.h"
#include "query/engine/heatmap.h"
#include "query/engine/peer.h"
#include "query/engine/plan.h"
#include "query/engine/views.h"
#include "query/serve/request.h"

const char *const native_paths[NATIVE_N] = {
    "/api/v1/profile_types", "/api/v1/label_names", "/api/v1/label_values", "/api/v1/top",
    "/api/v1/flamegraph",    "/api/v1/series",      "/api/v1/diff",         "/api/v1/pprof",
    "/api/v1/profiles",      "/api/v1/heatmap",     PEER_SELECT_PATH,
};
const char *const native_names[NATIVE_N] = {"profile_types", "label_names", "label_values", "top",
                                            "flamegraph",    "series",      "diff",         "pprof",
                                            "profiles",      "heatmap",     "select"};

/* ---- parameters -------------------------------------------------------- */

static const char *P(const struct http_params *p, const char *name)
{
    return p->get(p->ctx, name);
}

/* Parses an integer parameter in [lo, hi]; @dflt when absent. */
static int int_param(const struct http_params *p, const char *name, long long lo, long long hi,
                     long long dflt, long long *out, struct http_response *r)
{
    const char *s = P(p, name);
    char *end;

    if (!s) {
        *out = dflt;
        return 0;
    }
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        http_error_json(r, 400, "%s: '%.64s' is not an integer", name, s);
        return -EINVAL;
    }
    if (v < lo || v > hi) {
        http_error_json(r, 400, "%s: %lld is out of range [%lld, %lld]", name, v, lo, hi);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int range_params(const struct http_params *p, const char *fn, const char *un, int64_t *from,
                        int64_t *until, struct http_response *r)
{
    const char *fs = P(p, fn), *us = P(p, un), *why;
    int64_t now = http_now_ms();
    char err[256];

    if (!fs) {
        http_error_json(r, 400, "%s: missing (Unix milliseconds or now-1h)", fn);
        return -EINVAL;
    }
    if (!us) {
        http_error_json(r, 400, "%s: missing (Unix milliseconds or now)", un);
        return -EINVAL;
    }
    if ((why = http_parse_time(fs, now, from))) {
        http_error_json(r, 400, "%s: %s", fn, why);
        return -EINVAL;
    }
    if ((why = http_parse_time(us, now, until))) {
        http_error_json(r, 400, "%s: %s", un, why);
        return -EINVAL;
    }
    if (plan_range_check(*from, *until, fn, un, err, sizeof(err))) {
        http_error_json(r, 400, "%s", err);
        return -EINVAL;
    }
    return 0;
}

/* The parameters every query endpoint shares. */
struct common {
    struct selector *sel;
    const char *sel_text;
    const char *tenant;
    const char *profile_type;
    int64_t from, until;
};

static int common_params(const struct native_api *a, const struct http_params *p, const char *qname,
                         const char *fname, const char *uname, bool need_type, struct common *c,
                         struct http_response *r)
{
    char err[256];
    int rc;

    c->sel = NULL;
    c->tenant = P(p, "tenant") ? P(p, "tenant") : a->tenant;
    if (!plan_tenant_valid(c->tenant)) {
        http_error_json(r, 400, "tenant: '%.64s' is not a valid tenant name ([A-Za-z0-9._-]{1,64})",
                        c->tenant);
        return -EINVAL;
    }
    c->profile_type = P(p, "profile_type");
    if (c->profile_type && !query_profile_type_valid(c->profile_type)) {
        http_error_json(r, 400,
                        "profile_type: unknown profile type '%.128s' (expected "
                        "name:type:unit:period_type:period_unit, e.g. %s)",
                        c->profile_type, DEFAULT_PROFILE_TYPE);
        return -EINVAL;
    }
    if (need_type && !c->profile_type)
        c->profile_type = DEFAULT_PROFILE_TYPE;
    if (range_params(p, fname, uname, &c->from, &c->until, r))
        return -EINVAL;
    c->sel_text = P(p, qname);
    rc = selector_parse(c->sel_text, &c->sel, err, sizeof(err));
    if (rc == -ENOMEM) {
        http_error_json(r, 500, "out of memory");
        return rc;
    }
    if (rc) {
        http_error_json(r, 400, "%s: %s", qname, err);
        return rc;
    }
    return 0;
}

/* The query of the parameters @c, in @mode: the one place a native
 * endpoint builds one (the peers' is parsed in peer.c). */
static struct query common_query(const struct common *c, enum qmode mode)
{
    return (struct query){.tenant = c->tenant,
                          .sel = c->sel,
                          .selector_text = c->sel_text,
                          .from = c->from,
                          .until = c->until,
                          .profile_type = c->profile_type,
                          .mode = mode};
}

/* Fills @r with the error of a query that failed with @rc. */
static void query_error(const struct native_api *a, int rc, const char *err,
                        struct http_response *r)
{
    switch (rc) {
    case -EINVAL:
        http_error_json(r, 400, "%s", err);
        break;
    case -ETIMEDOUT:
        if (a->timeouts)
            atomic_fetch_add(a->timeouts, 1);
        http_error_json(r, 504, "query: did not finish within its deadline of %u ms (%s)",
                        a->query_timeout_ms, err);
        break;
    case -ECANCELED:
        if (a->cancelled)
            atomic_fetch_add(a->cancelled, 1);
        http_error_json(r, 503, "query: cancelled (client gone or server stopping)");
        break;
    case -E2BIG:
        /* The query cannot be answered within its budget, whenever it is
         * asked: 422, as Prometheus answers a query that would load too
         * many samples (and Mimir one over a per-query limit). */
        http_error_json(r, 422, "%s", err);
        break;
    case -ENOBUFS:
        /* The worker is full now: 429 with Retry-After, retry. */
        http_error_json(r, 429, "%s", err);
        break;
    default:
        http_error_json(r, rc == -ENOMEM ? 500 : 502, "query failed: %s",
                        err[0] ? err : strerror(-rc));
    }
}

static int run(const struct native_api *a, const struct http_params *p, const struct query *q,
               struct mprof **out, struct http_response *r)
{
    char err[512] = "";
    struct query qq = *q;

    qq.cancel = p->cancel;
    int rc = engine_query(a->engine, &qq, out, err, sizeof(err));
    if (rc)
        query_error(a, rc, err, r);
    else
        http_note_query(r, *out);
    return rc;
}

/* The endpoints' common path: the shared parameters (selector "query",
 * range "from"/"until"; the profile type defaulted when @need_type), the
 * query @q (its mode and mode fields set by the caller) completed from them,
 * checked and run. 0 with *@mp (and @q filled), else @r holds the error. */
static int select_run(const struct native_api *a, const struct http_params *p, bool need_type,
                      struct query *q, struct mprof **mp, struct http_response *r)
{
    struct common c;
    int64_t st;
    uint32_t nb;
    int rc;

    if (common_params(a, p, "query", "from", "until", need_type, &c, r))
        return -EINVAL;
    struct query base = common_query(&c, q->mode);
    base.all_types = q->all_types;
    base.flame = q->flame;
    base.step = q->step;
    base.group_by = q->group_by;
    base.labels_of = q->labels_of;
    base.exemplars = q->exemplars;
    base.ids = q->ids;
    base.nids = q->nids;
    base.has_vrange = q->has_vrange;
    base.vmin = q->vmin;
    base.vmax = q->vmax;
    *q = base;
    if (q->mode == Q_SERIES && query_series_grid(q, &st, &nb)) {
        selector_free(c.sel);
        http_error_json(r, 400, "step: %lld ms gives more than %d points over the range",
                        (long long)q->step, SERIES_MAX_POINTS);
        return -EINVAL;
    }
    rc = run(a, p, q, mp, r);
    selector_free(c.sel);
    q->sel = NULL;
    return rc;
}

/* ---- individual profiles ------------------------------------------------ */

/* profile_id (ids joined by ','), value_min and value_max: which individual
 * profiles a profile query keeps. With ids and without from/until, the
 * range is the ids' windows: the parameters are read through this. */
struct indsel {
    struct prof_id *ids;
    uint32_t n;
    bool has_vrange;
    int64_t vmin, vmax;
    char from[24], until[24];
    const struct http_params *inner;
    struct http_params p; /* what the endpoint reads */
};

static const char *indsel_get(void *ctx, const char *name)
{
    struct indsel *s = ctx;
    const char *v = P(s->inner, name);

    if (!v && s->n && strcmp(name, "from") == 0)
        return s->from;
    if (!v && s->n && strcmp(name, "until") == 0)
        return s->until;
    return v;
}

/* 0, or -EINVAL with the 400 (or, for an id no worker writes, the 404) in @r. */
static int indsel_parse(const struct http_params *p, struct indsel *s, struct http_response *r)
{
    const char *ids = P(p, "profile_id"), *lo = P(p, "value_min"), *hi = P(p, "value_max");
    long long v;

    memset(s, 0, sizeof(*s));
    s->inner = p;
    s->p = (struct http_params){.get = indsel_get, .ctx = s, .cancel = p->cancel};
    if (lo || hi) {
        s->has_vrange = true;
        if (int_param(p, "value_min", INT64_MIN, INT64_MAX, INT64_MIN, &v, r))
            return -EINVAL;
        s->vmin = v;
        if (int_param(p, "value_max", INT64_MIN, INT64_MAX, INT64_MAX, &v, r))
            return -EINVAL;
        s->vmax = v;
    }
    if (!ids)
        return 0;
    s->ids = calloc(QUERY_MAX_PROFILE_IDS, sizeof(*s->ids));
    if (!s->ids) {
        http_error_json(r, 500, "out of memory");
        return -ENOMEM;
    }
    for (const char *q = ids;; q++) {
        char one[PROF_ID_LEN + 2];
        size_t len = strcspn(q, ",");
        if (s->n == QUERY_MAX_PROFILE_IDS) {
            http_error_json(r, 400, "profile_id: more than %d ids", QUERY_MAX_PROFILE_IDS);
            return -EINVAL;
        }
        snprintf(one, sizeof(one), "%.*s", (int)(len < sizeof(one) - 1 ? len : sizeof(one) - 1), q);
        int rc = len > PROF_ID_LEN ? -EINVAL : prof_id_parse(one, &s->ids[s->n]);
        if (rc == -ENOENT) {
            http_error_json(r, 404, "profile_id: no profile %s", one);
            return -EINVAL;
        }
        if (rc) {
            http_error_json(r, 400, "profile_id: '%.*s' is not a profile id (a UUID)",
                            (int)(len > 64 ? 64 : len), q);
            return -EINVAL;
        }
        s->n++;
        q += len;
        if (!*q)
            break;
    }
    prof_ids_sort(s->ids, &s->n);
    snprintf(s->from, sizeof(s->from), "%lld", (long long)s->ids[0].time_ms);
    snprintf(s->until, sizeof(s->until), "%lld", (long long)s->ids[s->n - 1].time_ms + 1);
    return 0;
}

static void indsel_apply(const struct indsel *s, struct query *q)
{
    q->ids = s->ids;
    q->nids = s->n;
    q->has_vrange = s->has_vrange;
    q->vmin = s->vmin;
    q->vmax = s->vmax;
}

/* What a selection's answer feeds: a top table may come from function
 * totals (Q_TOP), a flame graph from call trees (query.flame). */
enum indsel_view { IV_PROFILE, IV_TOP, IV_FLAME };

/* Runs @q (a Q_PROFILE, or for IV_TOP with no ids a Q_TOP) with the
 * selection @s: 0 with *mp, or the error (an id that names no profile in
 * the range: 404) in @r. */
static int indsel_run(const struct native_api *a, struct indsel *s, bool all_types,
                      enum indsel_view view, struct mprof **mp, struct query *q,
                      struct http_response *r)
{
    *q = (struct query){.mode = view == IV_TOP && !s->n ? Q_TOP : Q_PROFILE,
                        .all_types = all_types,
                        .flame = view == IV_FLAME};
    indsel_apply(s, q);
    int rc = select_run(a, &s->p, true, q, mp, r);
    for (uint32_t k = 0; !rc && (*mp)->id_found && k < s->n; k++)
        if (!(*mp)->id_found[k]) {
            char id[PROF_ID_LEN + 1];
            prof_id_format(&s->ids[k], id);
            http_error_json(r, 404, "profile_id: no profile %s in [%lld, %lld) of this selection",
                            id, (long long)q->from, (long long)q->until);
            mprof_free(*mp);
            *mp = NULL;
            rc = -ENOENT;
        }
    free(s->ids);
    s->ids = NULL;
    return rc;
}

/* Writes label set @l of @p as a JSON object, leaving out the ','-separated
 * names @skip (NULL = none). */
static void lset_json(struct wbuf *b, const struct mprof *p, uint32_t l, const char *skip)
{
    uint32_t n;
    const uint32_t *v = l == MPROF_NONE ? NULL : mprof_lset(p, l, &n);
    bool first = true;

    wb_bytes(b, "{", 1);
    for (uint32_t k = 0; v && k < n; k++) {
        const char *name = intern_str_get(&p->str, v[2 * k]);
        size_t nl = strlen(name);
        bool skipped = false;
        for (const char *q = skip; q && *q; q += strcspn(q, ",") + (q[strcspn(q, ",")] != 0))
            skipped |= strcspn(q, ",") == nl && strncmp(q, name, nl) == 0;
        if (skipped)
            continue;
        if (!first)
            wb_bytes(b, ",", 1);
        first = false;
        wb_json_str(b, name);
        wb_bytes(b, ":", 1);
        wb_json_str(b, intern_str_get(&p->str, v[2 * k + 1]));
    }
    wb_bytes(b, "}", 1);
}

static void ind_json(struct wbuf *b, const struct mprof *p, const struct mprof_ind *v,
                     const char *skip)
{
    char id[PROF_ID_LEN + 1];
    struct prof_id pid = {v->time, v->hash};

    prof_id_format(&pid, id);
    wb_printf(b, "{\"id\":\"%s\",\"timestamp\":%lld,\"value\":%lld,\"labels\":", id,
              (long long)v->time, (long long)v->value);
    lset_json(b, p, v->lset, skip);
    wb_bytes(b, "}", 1);
}

/* A Q_INDIVIDUAL query's result, or the error in @r. */
static int individual_run(const struct native_api *a, const struct http_params *p, struct query *q,
                          struct mprof **mp, struct http_response *r)
{
    struct indsel s;

    if (indsel_parse(p, &s, r)) {
        free(s.ids);
        return -EINVAL;
    }
    if (s.n) {
        free(s.ids);
        http_error_json(r, 400, "profile_id: not a parameter of this endpoint");
        return -EINVAL;
    }
    q->has_vrange = s.has_vrange;
    q->vmin = s.vmin;
    q->vmax = s.vmax;
    if (select_run(a, p, true, q, mp, r))
        return -EINVAL;
    if ((*mp)->ind_full) {
        mprof_free(*mp);
        *mp = NULL;
        http_error_json(r, 400,
                        "query: more than %u individual profiles in the range; narrow the "
                        "selector or the range",
                        MPROF_MAX_INDIVIDUAL);
        return -E2BIG;
    }
    return 0;
}

/* GET /api/v1/profiles: the individual profiles of a selection, by time
 * (order=value: largest first), at most limit of them; count is how many
 * there are. */
static void ep_profiles(const struct native_api *a, const struct http_params *p,
                        struct http_response *r)
{
    struct query q = {.mode = Q_INDIVIDUAL};
    struct mprof *mp = NULL;
    const char *order = P(p, "order");
    long long limit;
    struct wbuf b = {0};

    if (int_param(p, "limit", 1, 10000, 100, &limit, r))
        return;
    if (order && strcmp(order, "time") && strcmp(order, "value")) {
        http_error_json(r, 400, "order: '%.32s' is neither time nor value", order);
        return;
    }
    if (individual_run(a, p, &q, &mp, r))
        return;
    individual_sort(mp, order && strcmp(order, "value") == 0);
    wb_printf(&b, "{\"count\":%zu,\"limit\":%lld,\"profiles\":[", mp->nind, limit);
    for (size_t i = 0; i < mp->nind && i < (size_t)limit; i++) {
        if (i)
            wb_bytes(&b, ",", 1);
        ind_json(&b, mp, &mp->ind[i], NULL);
    }
    wb_bytes(&b, "]", 1);
    http_finish_json(&b, mp);
    mprof_free(mp);
    http_respond(r, 200, "application/json", &b);
}

/* GET /api/v1/heatmap: heatmap.h's heatmap of a selection's individual
 * profiles; step in ms (default: about 100 slots). */
static void ep_heatmap(const struct native_api *a, const struct http_params *p,
                       struct http_response *r)
{
    struct mprof *mp = NULL;
    const char *gb = P(p, "group_by");
    struct heatmap h;
    long long step;
    struct wbuf b = {0};

    if (int_param(p, "step", 1, QUERY_MAX_RANGE_MS, 0, &step, r))
        return;
    if (gb && *gb && !query_group_by_valid(gb)) {
        http_error_json(r, 400, "group_by: '%.64s' is not a list of label names", gb);
        return;
    }
    struct query q = {.mode = Q_INDIVIDUAL, .step = step};
    /* The grid is checked before anything is read. */
    int64_t from, until, st;
    uint32_t nb;
    if (range_params(p, "from", "until", &from, &until, r))
        return;
    struct query grid = {.from = from, .until = until, .step = step};
    if (query_series_grid(&grid, &st, &nb)) {
        http_error_json(r, 400, "step: %lld ms gives more than %d slots over the range", step,
                        SERIES_MAX_POINTS);
        return;
    }
    if (individual_run(a, p, &q, &mp, r))
        return;
    if (individual_dedup(mp) || heatmap_build(mp, q.from, q.until, step, gb, &h)) {
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    wb_printf(&b,
              "{\"from\":%lld,\"step\":%lld,\"slots\":%u,\"min\":%lld,\"max\":%lld,"
              "\"count\":%llu,\"y_min\":[",
              (long long)h.from, (long long)h.step, h.nslots, (long long)h.vmin, (long long)h.vmax,
              (unsigned long long)h.profiles);
    for (int k = 0; k <= HEATMAP_BUCKETS; k++)
        wb_printf(&b, "%s%lld", k ? "," : "", (long long)h.y_min[k]);
    wb_bytes(&b, "],\"series\":[", 12);
    for (size_t c = 0; c < h.ncells;) {
        uint32_t g = h.cells[c].group;
        wb_bytes(&b, c ? ",{\"labels\":{" : "{\"labels\":{", c ? 12 : 11);
        const char *name = gb;
        for (uint32_t j = 0; j < query_group_by_count(gb); j++, name += strcspn(name, ",") + 1) {
            char nm[130];
            snprintf(nm, sizeof(nm), "%.*s", (int)strcspn(name, ","), name);
            const char *v = mprof_lset_value(mp, mp->ind[h.group_rep[g]].lset, nm);
            if (!v)
                continue;
            if (b.len && b.s[b.len - 1] != '{')
                wb_bytes(&b, ",", 1);
            wb_json_str(&b, nm);
            wb_bytes(&b, ":", 1);
            wb_json_str(&b, v);
        }
        wb_bytes(&b, "},\"cells\":[", 11);
        /* One cell per line: [slot start, bucket, count, exemplar]. */
        for (bool first = true; c < h.ncells && h.cells[c].group == g; c++, first = false) {
            const struct heatmap_cell *e = &h.cells[c];
            wb_printf(&b, "%s{\"t\":%lld,\"b\":%u,\"count\":%u,\"exemplar\":", first ? "" : ",",
                      (long long)(h.from + (int64_t)e->slot * h.step), e->bucket, e->count);
            ind_json(&b, mp, &mp->ind[e->best], gb);
            wb_bytes(&b, "}", 1);
        }
        wb_bytes(&b, "]}", 2);
    }
    wb_bytes(&b, "]", 1);
    heatmap_free(&h);
    http_finish_json(&b, mp);
    mprof_free(mp);
    http_respond(r, 200, "application/json", &b);
}

/* ---- endpoints --------------------------------------------------------- */

static void ep_profile_types(const struct native_api *a, const struct http_params *p,
                             struct http_response *r)
{
    struct common c;
    char **types = NULL, err[256] = "";
    size_t n = 0;
    struct mprof *notes = NULL;
    struct wbuf b = {0};

    if (common_params(a, p, "query", "from", "until", false, &c, r))
        return;
    int rc = engine_profile_types(a->engine, c.tenant, c.sel, c.from, c.until, p->cancel, &types,
                                  &n, &notes, err, sizeof(err));
    selector_free(c.sel);
    if (rc) {
        query_error(a, rc, err, r);
        return;
    }
    http_note_query(r, notes);
    wb_bytes(&b, "{\"profile_types\":[", 18);
    for (size_t i = 0; i < n; i++) {
        if (i)
            wb_bytes(&b, ",", 1);
        wb_json_str(&b, types[i]);
        free(types[i]);
    }
    free(types);
    wb_bytes(&b, "]", 1);
    http_finish_json(&b, notes);
    mprof_free(notes);
    http_respond(r, 200, "application/json", &b);
}

static void ep_labels(const struct native_api *a, const struct http_params *p, bool values,
                      struct http_response *r)
{
    struct query q = {.mode = Q_LABELS};
    struct mprof *mp = NULL;
    const char *name = P(p, "name");
    struct wbuf b = {0};

    if (values && (!name || !query_label_name_valid(name))) {
        http_error_json(r, 400, "name: %s", name ? "not a valid label name" : "missing");
        return;
    }
    q.labels_of = values ? name : "";
    if (select_run(a, p, false, &q, &mp, r))
        return;
    struct intern set = {0};
    const char **v = NULL;
    if (view_label_strings(mp, values ? name : NULL, &set) || view_sorted_strings(&set, &v)) {
        intern_free(&set);
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    wb_printf(&b, "{\"%s\":[", values ? "values" : "names");
    for (uint32_t i = 0; i < set.n; i++) {
        if (i)
            wb_bytes(&b, ",", 1);
        wb_json_str(&b, v[i]);
    }
    wb_bytes(&b, "]", 1);
    free(v);
    intern_free(&set);
    http_finish_json(&b, mp);
    mprof_free(mp);
    http_respond(r, 200, "application/json", &b);
}

static void ep_top(const struct native_api *a, const struct http_params *p, struct http_response *r)
{
    struct query q = {.mode = Q_PROFILE};
    struct mprof *mp = NULL;
    struct top_row *rows = NULL;
    size_t n = 0;
    int64_t total = 0;
    long long limit;
    struct wbuf b = {0};

    struct indsel is;
    if (int_param(p, "limit", 1, 100000, 100, &limit, r))
        return;
    if (indsel_parse(p, &is, r)) {
        free(is.ids);
        return;
    }
    if (indsel_run(a, &is, false, IV_TOP, &mp, &q, r))
        return;
    if (view_top(mp, 0, &rows, &n, &total)) {
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    wb_printf(&b, "{\"total\":%lld,\"functions\":[", (long long)total);
    for (size_t i = 0; i < n && i < (size_t)limit; i++) {
        wb_bytes(&b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
        wb_json_str(&b, intern_str_get(&mp->str, rows[i].name));
        wb_printf(&b, ",\"self\":%lld,\"total\":%lld}", (long long)rows[i].self,
                  (long long)rows[i].total);
    }
    wb_bytes(&b, "]", 1);
    free(rows);
    http_finish_json(&b, mp);
    mprof_free(mp);
    http_respond(r, 200, "application/json", &b);
}

static void ep_flame(const struct native_api *a, const struct http_params *p,
                     struct http_response *r)
{
    struct query q = {.mode = Q_PROFILE};
    struct mprof *mp = NULL;
    long long max_nodes;
    struct wbuf b = {0};

    struct indsel is;
    if (int_param(p, "max_nodes", 1, 100000, 1024, &max_nodes, r))
        return;
    if (indsel_parse(p, &is, r)) {
        free(is.ids);
        return;
    }
    /* Sections may come from their blocks' call trees (ctree.h) for up to
     * as many nodes as a tree keeps, unless trees=false. Their graph is the
     * answer when it is shown to be the rows' (view_flame_proved:
     * max_error 0), or, unless exact=true, when at most a quarter of a
     * tree's nodes are asked for (within max_error: the cuts rarely show);
     * else the rows are read. */
    static const char *const flags[2] = {"exact", "trees"};
    bool on[2] = {false, true};
    for (int k = 0; k < 2; k++) {
        const char *v = P(p, flags[k]);
        if (v && strcmp(v, "true") && strcmp(v, "false")) {
            free(is.ids);
            http_error_json(r, 400, "%s: true or false", flags[k]);
            return;
        }
        if (v)
            on[k] = !strcmp(v, "true");
    }
    bool approx = !on[0] && max_nodes <= CTREE_APPROX_MAX_NODES;
    bool flame = on[1] && !is.n && max_nodes <= CTREE_MAX_NODES;
    if (indsel_run(a, &is, false, flame ? IV_FLAME : IV_PROFILE, &mp, &q, r))
        return;
    int proved = view_flame_proved(mp, 0, (uint32_t)max_nodes, CTREE_OTHER);
    if (proved == 1)
        mp->cut[0] = 0;
    else if (proved < 0 || !approx) {
        r->skipped -= mp->stats.skipped; /* counted again below */
        mprof_free(mp);
        mp = NULL;
        if (proved < 0) {
            http_error_json(r, 500, "out of memory");
            return;
        }
        if (indsel_run(a, &is, false, IV_PROFILE, &mp, &q, r))
            return;
    }
    if (view_flame_json(mp, 0, (uint32_t)max_nodes, &b)) {
        free(b.p);
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    http_finish_json(&b, mp);
    mprof_free(mp);
    http_respond(r, 200, "application/json", &b);
}

static void ep_series(const struct native_api *a, const struct http_params *p,
                      struct http_response *r)
{
    struct mprof *mp = NULL;
    long long step;
    const char *gb = P(p, "group_by");
    struct wbuf b = {0};

    if (int_param(p, "step", 1, QUERY_MAX_RANGE_MS, 0, &step, r))
        return;
    if (gb && *gb && !query_label_name_valid(gb)) {
        http_error_json(r, 400, "group_by: '%.64s' is not a valid label name", gb);
        return;
    }
    struct query q = {.mode = Q_SERIES, .step = step, .group_by = gb};
    if (select_run(a, p, true, &q, &mp, r))
        return;
    /* Series sorted by label value, for stable output. */
    uint32_t *order = NULL, ng = 0;
    if (view_series_order(mp, 0, &order, &ng)) {
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    wb_printf(&b, "{\"step\":%lld,\"series\":[", (long long)mp->step);
    for (uint32_t k = 0; k < ng; k++) {
        uint32_t g = order[k];
        wb_bytes(&b, k ? ",{\"labels\":{" : "{\"labels\":{", k ? 12 : 11);
        if (gb && *gb) {
            wb_json_str(&b, gb);
            wb_bytes(&b, ":", 1);
            wb_json_str(&b, intern_str_get(&mp->str, mp->group_val[g]));
        }
        wb_bytes(&b, "},\"points\":[", 12);
        bool first = true;
        for (uint32_t bk = 0; bk < mp->nbuckets; bk++) {
            size_t i = (size_t)g * mp->nbuckets + bk;
            if (!mp->present[i])
                continue;
            wb_printf(&b, "%s[%lld,%lld]", first ? "" : ",",
                      (long long)(mp->from + (int64_t)bk * mp->step), (long long)mp->points[i]);
            first = false;
        }
        wb_bytes(&b, "]}", 2);
    }
    wb_bytes(&b, "]", 1);
    free(order);
    http_finish_json(&b, mp);
    mprof_free(mp);
    http_respond(r, 200, "application/json", &b);
}

static void ep_diff(const struct native_api *a, const struct http_params *p,
                    struct http_response *r)
{
    struct common lc, rc2;
    struct mprof *lm = NULL, *rm = NULL;
    struct diff_row *rows = NULL;
    size_t n = 0;
    int64_t lt = 0, rt = 0;
    long long limit;
    struct wbuf b = {0};

    if (int_param(p, "limit", 1, 100000, 100, &limit, r))
        return;
    if (common_params(a, p, "left_query", "left_from", "left_until", true, &lc, r))
        return;
    if (common_params(a, p, "right_query", "right_from", "right_until", true, &rc2, r)) {
        selector_free(lc.sel);
        return;
    }
    struct query ql = common_query(&lc, Q_PROFILE), qr = common_query(&rc2, Q_PROFILE);
    int rc = run(a, p, &ql, &lm, r);
    if (!rc)
        rc = run(a, p, &qr, &rm, r);
    selector_free(lc.sel);
    selector_free(rc2.sel);
    if (rc) {
        mprof_free(lm);
        return;
    }
    if (view_diff(lm, rm, &rows, &n, &lt, &rt)) {
        http_error_json(r, 500, "out of memory");
        goto out;
    }
    wb_printf(&b, "{\"left_total\":%lld,\"right_total\":%lld,\"functions\":[", (long long)lt,
              (long long)rt);
    for (size_t i = 0; i < n && i < (size_t)limit; i++) {
        wb_bytes(&b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
        wb_json_str(&b, rows[i].name);
        wb_printf(&b, ",\"left_self\":%lld,\"right_self\":%lld,\"diff\":%.9g}",
                  (long long)rows[i].l, (long long)rows[i].r, rows[i].d);
    }
    wb_bytes(&b, "]", 1);
    /* One stats object for the two selections. */
    if (mprof_merge(lm, rm))
        b.err = -ENOMEM;
    http_finish_json(&b, lm);
    http_respond(r, 200, "application/json", &b);
out:
    free(rows);
    mprof_free(lm);
    mprof_free(rm);
}

static void ep_pprof(const struct native_api *a, const struct http_params *p,
                     struct http_response *r)
{
    struct query q = {.mode = Q_PROFILE, .all_types = true};
    struct mprof *mp = NULL;
    uint8_t *gz = NULL;
    size_t len = 0;
    struct indsel is;

    if (indsel_parse(p, &is, r)) {
        free(is.ids);
        return;
    }
    if (indsel_run(a, &is, true, IV_PROFILE, &mp, &q, r))
        return;
    int rc = view_pprof(mp, q.from, q.until - q.from, &gz, &len);
    mprof_free(mp);
    if (rc) {
        http_error_json(r, 500, "pprof encoding failed: %s", strerror(-rc));
        return;
    }
    r->status = 200;
    r->content_type = "application/octet-stream";
    r->body = gz;
    r->len = len;
}

/* POST /internal/v1/select: a peer's shard of a query, as an mprof. */
static void ep_select(const struct native_api *a, const struct http_params *p, const uint8_t *body,
                      size_t len, struct http_response *r)
{
    struct peer_request pr;
    struct mprof *mp = NULL;
    char err[512];
    uint8_t *buf = NULL;
    size_t blen = 0;

    if (!body || len == 0 || len > HTTP_MAX_BODY) {
        http_error_json(r, 400, "body: expected a JSON query of at most %d bytes", HTTP_MAX_BODY);
        return;
    }
    int rc = peer_request_decode(body, len, &pr, err, sizeof(err));
    if (rc) {
        http_error_json(r, rc == -ENOMEM ? 500 : 400, "%s", rc == -ENOMEM ? "out of memory" : err);
        return;
    }
    rc = run(a, p, &pr.q, &mp, r);
    peer_request_free(&pr);
    if (rc)
        return;
    rc = mprof_encode(mp, &buf, &blen);
    mprof_free(mp);
    if (rc) {
        http_error_json(r, 500, "out of memory");
        return;
    }
    r->status = 200;
    r->content_type = "application/octet-stream";
    r->body = buf;
    r->len = blen;
}

enum native_ep native_find(const char *path)
{
    for (int i = 0; i < NATIVE_N; i++)
        if (strcmp(path, native_paths[i]) == 0)
            return (enum native_ep)i;
    return NATIVE_N;
}

void native_route(const struct native_api *a, enum native_ep ep, const struct http_params *p,
                  const uint8_t *body, size_t len, struct http_response *r)
{
    switch (ep) {
    case NATIVE_TYPES:
        ep_profile_types(a, p, r);
        break;
    case NATIVE_NAMES:
        ep_labels(a, p, false, r);
        break;
    case NATIVE_VALUES:
        ep_labels(a, p, true, r);
        break;
    case NATIVE_TOP:
        ep_top(a, p, r);
        break;
    case NATIVE_FLAME:
        ep_flame(a, p, r);
        break;
    case NATIVE_SERIES:
        ep_series(a, p, r);
        break;
    case NATIVE_DIFF:
        ep_diff(a, p, r);
        break;
    case NATIVE_PPROF:
        ep_pprof(a, p, r);
        break;
    case NATIVE_PROFILES:
        ep_profiles(a, p, r);
        break;
    case NATIVE_HEATMAP:
        ep_heatmap(a, p, r);
        break;
    case NATIVE_SELECT:
        ep_select(a, p, body, len, r);
        break;
    default:
        http_error_json(r, 404, "no such endpoint");
        break;
    }
}
