/* SPDX-License-Identifier: Apache-2.0 */
#include "query/http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "query/connect.h"
#include "query/plan.h"
#include "query/pyroscope_api.h"
#include "query/views.h"

/* The page embedded at build time (build/web_index.c defines it), when
 * linked into the binary; weak so the library links without it. */
const char *stoke_web_index(size_t *len) __attribute__((weak));

enum ep {
    EP_TYPES,
    EP_NAMES,
    EP_VALUES,
    EP_TOP,
    EP_FLAME,
    EP_SERIES,
    EP_DIFF,
    EP_PPROF,
    EP_SELECT,
    EP_PYROSCOPE,
    EP_OTHER,
    EP_N
};
static const char *ep_names[EP_N] = {"profile_types", "label_names", "label_values", "top",
                                     "flamegraph",    "series",      "diff",         "pprof",
                                     "select",        "pyroscope",   "other"};

struct http_server {
    struct http_opts o;
    struct MHD_Daemon *d;
    unsigned port;
    atomic_uint_fast64_t requests[EP_N], errors[EP_N], latency_us[EP_N];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- responses --------------------------------------------------------- */

static void respond(struct http_response *r, int status, const char *ctype, struct sbuf *b)
{
    r->status = status;
    r->content_type = ctype;
    if (b->oom) {
        free(b->p);
        r->status = 500;
        r->content_type = "application/json";
        r->body = (uint8_t *)strdup("{\"error\":\"out of memory\"}");
        r->len = r->body ? strlen((char *)r->body) : 0;
        return;
    }
    r->body = (uint8_t *)b->p;
    r->len = b->len;
}

void http_error_json(struct http_response *r, int status, const char *fmt, ...)
{
    char msg[1024];
    struct sbuf b = {0};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sbuf_put(&b, "{\"error\":", 9);
    sbuf_json_str(&b, msg);
    sbuf_put(&b, "}\n", 2);
    respond(r, status, "application/json", &b);
}

/* Appends ,"stats":{...},"warnings":[...]} closing the object. */
static void finish_json(struct sbuf *b, const struct mprof *p)
{
    sbuf_printf(b,
                ",\"stats\":{\"objects\":%" PRIu64 ",\"sections\":%" PRIu64
                ",\"bytes_read\":%" PRIu64 ",\"cache_hits\":%" PRIu64 ",\"skipped\":%" PRIu64 "}",
                p->stats.objects, p->stats.sections, p->stats.bytes_read, p->stats.cache_hits,
                p->stats.skipped);
    if (p->nwarnings) {
        sbuf_put(b, ",\"warnings\":[", 13);
        for (uint32_t i = 0; i < p->nwarnings; i++) {
            if (i)
                sbuf_put(b, ",", 1);
            sbuf_json_str(b, p->warnings[i]);
        }
        if (p->warnings_dropped)
            sbuf_printf(b, ",\"... and %" PRIu64 " more\"", p->warnings_dropped);
        sbuf_put(b, "]", 1);
    }
    sbuf_put(b, "}\n", 2);
}

/* ---- parameters -------------------------------------------------------- */

struct params {
    http_param_fn get;
    void *ctx;
};

static const char *P(const struct params *p, const char *name)
{
    return p->get(p->ctx, name);
}

const char *http_parse_time(const char *s, int64_t now, int64_t *out)
{
    char *end;

    if (strncmp(s, "now", 3) == 0) {
        if (s[3] == '\0') {
            *out = now;
            return NULL;
        }
        if (s[3] != '-' || s[4] < '0' || s[4] > '9')
            return "expected now, now-<N><s|m|h|d> or Unix milliseconds";
        errno = 0;
        long long n = strtoll(s + 4, &end, 10);
        int64_t unit;
        switch (*end) {
        case 's':
            unit = 1000;
            break;
        case 'm':
            unit = 60000;
            break;
        case 'h':
            unit = 3600000;
            break;
        case 'd':
            unit = 86400000;
            break;
        default:
            return "expected a unit s, m, h or d after now-N";
        }
        if (end[1] != '\0' || errno || n > 100LL * 365 * 86400)
            return "expected now, now-<N><s|m|h|d> or Unix milliseconds";
        *out = now - n * unit;
        return NULL;
    }
    if (!*s || !((s[0] >= '0' && s[0] <= '9') || s[0] == '-'))
        return "not a number (Unix milliseconds, now or now-<N><s|m|h|d>)";
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno)
        return "not a number (Unix milliseconds, now or now-<N><s|m|h|d>)";
    *out = v;
    return NULL;
}

/* Parses an integer parameter in [lo, hi]; @dflt when absent. */
static int int_param(const struct params *p, const char *name, long long lo, long long hi,
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

static int range_params(const struct params *p, const char *fn, const char *un, int64_t *from,
                        int64_t *until, struct http_response *r)
{
    const char *fs = P(p, fn), *us = P(p, un), *why;
    int64_t now = now_ms();

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
    if (*from >= *until) {
        http_error_json(r, 400, "%s: must be before %s (%lld >= %lld)", fn, un, (long long)*from,
                        (long long)*until);
        return -EINVAL;
    }
    if (*until - *from > QUERY_MAX_RANGE_MS) {
        http_error_json(r, 400, "%s: the range from %s is longer than 31 days", un, fn);
        return -EINVAL;
    }
    return 0;
}

bool http_profile_type_valid(const char *s)
{
    int fields = 1;
    size_t flen = 0;

    if (!*s || *s == ':')
        return false;
    for (; *s; s++) {
        if (*s == ':') {
            fields++;
            flen = 0;
            continue;
        }
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
        if (++flen > 64)
            return false;
    }
    return fields == 5;
}

bool http_label_name_valid(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (size_t i = 1; s[i]; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_') ||
            i > 128)
            return false;
    return true;
}

/* The parameters every query endpoint shares. */
struct common {
    struct selector *sel;
    const char *sel_text;
    const char *tenant;
    const char *profile_type;
    int64_t from, until;
};

static int common_params(struct http_server *s, const struct params *p, const char *qname,
                         const char *fname, const char *uname, bool need_type, struct common *c,
                         struct http_response *r)
{
    char err[256];
    int rc;

    c->sel = NULL;
    c->tenant = P(p, "tenant") ? P(p, "tenant") : s->o.tenant;
    if (!plan_tenant_valid(c->tenant)) {
        http_error_json(r, 400, "tenant: '%.64s' is not a valid tenant name ([A-Za-z0-9._-]{1,64})",
                        c->tenant);
        return -EINVAL;
    }
    c->profile_type = P(p, "profile_type");
    if (c->profile_type && !http_profile_type_valid(c->profile_type)) {
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

static int run(struct http_server *s, const struct query *q, struct mprof **out,
               struct http_response *r)
{
    char err[512] = "";
    int rc = engine_query(s->o.engine, q, out, err, sizeof(err));

    if (rc)
        http_error_json(r, rc == -ENOMEM ? 500 : 502, "query failed: %s",
                        err[0] ? err : strerror(-rc));
    return rc;
}

/* ---- endpoints --------------------------------------------------------- */

static void ep_profile_types(struct http_server *s, const struct params *p, struct http_response *r)
{
    struct common c;
    char **types = NULL, err[256] = "";
    size_t n = 0;
    struct mprof *notes = NULL;
    struct sbuf b = {0};

    if (common_params(s, p, "query", "from", "until", false, &c, r))
        return;
    int rc = engine_profile_types(s->o.engine, c.tenant, c.sel, c.from, c.until, &types, &n, &notes,
                                  err, sizeof(err));
    selector_free(c.sel);
    if (rc) {
        http_error_json(r, 502, "query failed: %s", err);
        return;
    }
    sbuf_put(&b, "{\"profile_types\":[", 18);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_put(&b, ",", 1);
        sbuf_json_str(&b, types[i]);
        free(types[i]);
    }
    free(types);
    sbuf_put(&b, "]", 1);
    finish_json(&b, notes);
    mprof_free(notes);
    respond(r, 200, "application/json", &b);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void ep_labels(struct http_server *s, const struct params *p, bool values,
                      struct http_response *r)
{
    struct common c;
    struct mprof *mp = NULL;
    const char *name = P(p, "name");
    struct sbuf b = {0};

    if (values && (!name || !http_label_name_valid(name))) {
        http_error_json(r, 400, "name: %s", name ? "not a valid label name" : "missing");
        return;
    }
    if (common_params(s, p, "query", "from", "until", false, &c, r))
        return;
    struct query q = {.tenant = c.tenant,
                      .sel = c.sel,
                      .selector_text = c.sel_text,
                      .from = c.from,
                      .until = c.until,
                      .profile_type = c.profile_type,
                      .mode = Q_LABELS};
    int rc = run(s, &q, &mp, r);
    selector_free(c.sel);
    if (rc)
        return;
    const char **v = calloc(mp->npairs + 1, sizeof(*v));
    size_t n = 0;
    uint32_t want = values ? mstr_find(&mp->str, name, strlen(name)) : MPROF_NONE;
    for (uint32_t i = 0; v && i < mp->npairs; i++) {
        uint32_t a = (uint32_t)(mp->pairs[i] >> 32), bb = (uint32_t)mp->pairs[i];
        if (values) {
            if (a == want)
                v[n++] = mstr_get(&mp->str, bb);
        } else {
            v[n++] = mstr_get(&mp->str, a);
        }
    }
    if (!v) {
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    qsort(v, n, sizeof(*v), cmp_cstr);
    sbuf_printf(&b, "{\"%s\":[", values ? "values" : "names");
    for (size_t i = 0, k = 0; i < n; i++) {
        if (i && strcmp(v[i], v[i - 1]) == 0)
            continue;
        if (k++)
            sbuf_put(&b, ",", 1);
        sbuf_json_str(&b, v[i]);
    }
    sbuf_put(&b, "]", 1);
    free(v);
    finish_json(&b, mp);
    mprof_free(mp);
    respond(r, 200, "application/json", &b);
}

static void ep_top(struct http_server *s, const struct params *p, struct http_response *r)
{
    struct common c;
    struct mprof *mp = NULL;
    struct top_row *rows = NULL;
    size_t n = 0;
    int64_t total = 0;
    long long limit;
    struct sbuf b = {0};

    if (int_param(p, "limit", 1, 100000, 100, &limit, r))
        return;
    if (common_params(s, p, "query", "from", "until", true, &c, r))
        return;
    struct query q = {.tenant = c.tenant,
                      .sel = c.sel,
                      .selector_text = c.sel_text,
                      .from = c.from,
                      .until = c.until,
                      .profile_type = c.profile_type,
                      .mode = Q_PROFILE};
    int rc = run(s, &q, &mp, r);
    selector_free(c.sel);
    if (rc)
        return;
    if (view_top(mp, 0, &rows, &n, &total)) {
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    sbuf_printf(&b, "{\"total\":%lld,\"functions\":[", (long long)total);
    for (size_t i = 0; i < n && i < (size_t)limit; i++) {
        sbuf_put(&b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
        sbuf_json_str(&b, mstr_get(&mp->str, rows[i].name));
        sbuf_printf(&b, ",\"self\":%lld,\"total\":%lld}", (long long)rows[i].self,
                    (long long)rows[i].total);
    }
    sbuf_put(&b, "]", 1);
    free(rows);
    finish_json(&b, mp);
    mprof_free(mp);
    respond(r, 200, "application/json", &b);
}

static void ep_flame(struct http_server *s, const struct params *p, struct http_response *r)
{
    struct common c;
    struct mprof *mp = NULL;
    long long max_nodes;
    struct sbuf b = {0};

    if (int_param(p, "max_nodes", 1, 100000, 1024, &max_nodes, r))
        return;
    if (common_params(s, p, "query", "from", "until", true, &c, r))
        return;
    struct query q = {.tenant = c.tenant,
                      .sel = c.sel,
                      .selector_text = c.sel_text,
                      .from = c.from,
                      .until = c.until,
                      .profile_type = c.profile_type,
                      .mode = Q_PROFILE};
    int rc = run(s, &q, &mp, r);
    selector_free(c.sel);
    if (rc)
        return;
    if (view_flame_json(mp, 0, (uint32_t)max_nodes, &b)) {
        free(b.p);
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    finish_json(&b, mp);
    mprof_free(mp);
    respond(r, 200, "application/json", &b);
}

static void ep_series(struct http_server *s, const struct params *p, struct http_response *r)
{
    struct common c;
    struct mprof *mp = NULL;
    long long step;
    const char *gb = P(p, "group_by");
    struct sbuf b = {0};

    if (int_param(p, "step", 1, QUERY_MAX_RANGE_MS, 0, &step, r))
        return;
    if (gb && *gb && !http_label_name_valid(gb)) {
        http_error_json(r, 400, "group_by: '%.64s' is not a valid label name", gb);
        return;
    }
    if (common_params(s, p, "query", "from", "until", true, &c, r))
        return;
    struct query q = {.tenant = c.tenant,
                      .sel = c.sel,
                      .selector_text = c.sel_text,
                      .from = c.from,
                      .until = c.until,
                      .profile_type = c.profile_type,
                      .mode = Q_SERIES,
                      .step = step,
                      .group_by = gb};
    int64_t st;
    uint32_t nb;
    if (engine_series_grid(&q, &st, &nb)) {
        selector_free(c.sel);
        http_error_json(r, 400, "step: %lld ms gives more than %d points over the range", step,
                        SERIES_MAX_POINTS);
        return;
    }
    int rc = run(s, &q, &mp, r);
    selector_free(c.sel);
    if (rc)
        return;
    /* Series sorted by label value, for stable output. */
    uint32_t *order = malloc(((size_t)mp->ngroups + 1) * sizeof(*order));
    if (!order) {
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    for (uint32_t g = 0; g < mp->ngroups; g++)
        order[g] = g;
    for (uint32_t i = 1; i < mp->ngroups; i++)
        for (uint32_t j = i; j > 0 && strcmp(mstr_get(&mp->str, mp->group_val[order[j - 1]]),
                                             mstr_get(&mp->str, mp->group_val[order[j]])) > 0;
             j--) {
            uint32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    sbuf_printf(&b, "{\"step\":%lld,\"series\":[", (long long)mp->step);
    for (uint32_t k = 0; k < mp->ngroups; k++) {
        uint32_t g = order[k];
        sbuf_put(&b, k ? ",{\"labels\":{" : "{\"labels\":{", k ? 12 : 11);
        if (gb && *gb) {
            sbuf_json_str(&b, gb);
            sbuf_put(&b, ":", 1);
            sbuf_json_str(&b, mstr_get(&mp->str, mp->group_val[g]));
        }
        sbuf_put(&b, "},\"points\":[", 12);
        bool first = true;
        for (uint32_t bk = 0; bk < mp->nbuckets; bk++) {
            size_t i = (size_t)g * mp->nbuckets + bk;
            if (!mp->present[i])
                continue;
            sbuf_printf(&b, "%s[%lld,%lld]", first ? "" : ",",
                        (long long)(mp->from + (int64_t)bk * mp->step), (long long)mp->points[i]);
            first = false;
        }
        sbuf_put(&b, "]}", 2);
    }
    sbuf_put(&b, "]", 1);
    free(order);
    finish_json(&b, mp);
    mprof_free(mp);
    respond(r, 200, "application/json", &b);
}

struct diff_row {
    const char *name;
    int64_t l, r;
    double d;
};

static int cmp_diff(const void *a, const void *b)
{
    const struct diff_row *x = a, *y = b;
    double ax = x->d < 0 ? -x->d : x->d, ay = y->d < 0 ? -y->d : y->d;
    if (ax != ay)
        return ax > ay ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void ep_diff(struct http_server *s, const struct params *p, struct http_response *r)
{
    struct common lc, rc2;
    struct mprof *lm = NULL, *rm = NULL;
    struct top_row *lrows = NULL, *rrows = NULL;
    size_t ln = 0, rn = 0;
    int64_t lt = 0, rt = 0;
    long long limit;
    struct sbuf b = {0};

    if (int_param(p, "limit", 1, 100000, 100, &limit, r))
        return;
    if (common_params(s, p, "left_query", "left_from", "left_until", true, &lc, r))
        return;
    if (common_params(s, p, "right_query", "right_from", "right_until", true, &rc2, r)) {
        selector_free(lc.sel);
        return;
    }
    struct query ql = {.tenant = lc.tenant,
                       .sel = lc.sel,
                       .selector_text = lc.sel_text,
                       .from = lc.from,
                       .until = lc.until,
                       .profile_type = lc.profile_type,
                       .mode = Q_PROFILE};
    struct query qr = ql;
    qr.sel = rc2.sel;
    qr.selector_text = rc2.sel_text;
    qr.from = rc2.from;
    qr.until = rc2.until;
    int rc = run(s, &ql, &lm, r);
    if (!rc)
        rc = run(s, &qr, &rm, r);
    selector_free(lc.sel);
    selector_free(rc2.sel);
    if (rc) {
        mprof_free(lm);
        return;
    }
    struct diff_row *rows = NULL;
    size_t n = 0;
    if (view_top(lm, 0, &lrows, &ln, &lt) || view_top(rm, 0, &rrows, &rn, &rt) ||
        !(rows = calloc(ln + rn + 1, sizeof(*rows)))) {
        http_error_json(r, 500, "out of memory");
        goto out;
    }
    /* Join by name through the right profile's string table. */
    {
        int64_t *rself = calloc(rm->str.n + 1, sizeof(*rself));
        uint8_t *taken = calloc(rm->str.n + 1, 1);
        if (!rself || !taken) {
            free(rself);
            free(taken);
            http_error_json(r, 500, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < rn; i++)
            rself[rrows[i].name] = rrows[i].self;
        for (size_t i = 0; i < ln; i++) {
            const char *nm = mstr_get(&lm->str, lrows[i].name);
            uint32_t rid = mstr_find(&rm->str, nm, strlen(nm));
            rows[n] = (struct diff_row){.name = nm, .l = lrows[i].self};
            if (rid != MPROF_NONE) {
                rows[n].r = rself[rid];
                taken[rid] = 1;
            }
            n++;
        }
        for (size_t i = 0; i < rn; i++)
            if (!taken[rrows[i].name])
                rows[n++] = (struct diff_row){.name = mstr_get(&rm->str, rrows[i].name),
                                              .r = rrows[i].self};
        free(rself);
        free(taken);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].l == 0 && rows[i].r == 0)
            continue;
        rows[i].d =
            (rt ? (double)rows[i].r / (double)rt : 0) - (lt ? (double)rows[i].l / (double)lt : 0);
        rows[k++] = rows[i];
    }
    n = k;
    qsort(rows, n, sizeof(*rows), cmp_diff);
    sbuf_printf(&b, "{\"left_total\":%lld,\"right_total\":%lld,\"functions\":[", (long long)lt,
                (long long)rt);
    for (size_t i = 0; i < n && i < (size_t)limit; i++) {
        sbuf_put(&b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
        sbuf_json_str(&b, rows[i].name);
        sbuf_printf(&b, ",\"left_self\":%lld,\"right_self\":%lld,\"diff\":%.9g}",
                    (long long)rows[i].l, (long long)rows[i].r, rows[i].d);
    }
    sbuf_put(&b, "]", 1);
    /* One stats object for the two selections. */
    if (mprof_merge(lm, rm))
        b.oom = true;
    finish_json(&b, lm);
    respond(r, 200, "application/json", &b);
out:
    free(rows);
    free(lrows);
    free(rrows);
    mprof_free(lm);
    mprof_free(rm);
}

static void ep_pprof(struct http_server *s, const struct params *p, struct http_response *r)
{
    struct common c;
    struct mprof *mp = NULL;
    uint8_t *gz = NULL;
    size_t len = 0;

    if (common_params(s, p, "query", "from", "until", true, &c, r))
        return;
    struct query q = {.tenant = c.tenant,
                      .sel = c.sel,
                      .selector_text = c.sel_text,
                      .from = c.from,
                      .until = c.until,
                      .profile_type = c.profile_type,
                      .mode = Q_PROFILE,
                      .all_types = true};
    int rc = run(s, &q, &mp, r);
    selector_free(c.sel);
    if (rc)
        return;
    rc = view_pprof(mp, c.from, c.until - c.from, &gz, &len);
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
static void ep_select(struct http_server *s, const uint8_t *body, size_t len,
                      struct http_response *r)
{
    cJSON *j = NULL;
    struct selector *sel = NULL;
    struct mprof *mp = NULL;
    char err[256], *text = NULL;
    uint8_t *buf = NULL;
    size_t blen = 0;

    if (!body || len == 0 || len > HTTP_MAX_BODY) {
        http_error_json(r, 400, "body: expected a JSON query of at most %d bytes", HTTP_MAX_BODY);
        return;
    }
    text = strndup((const char *)body, len);
    j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j) {
        http_error_json(r, 400, "body: not JSON");
        return;
    }
#define JS(name)                                                                                   \
    (cJSON_IsString(cJSON_GetObjectItem(j, name)) ? cJSON_GetObjectItem(j, name)->valuestring      \
                                                  : NULL)
#define JN(name)                                                                                   \
    (cJSON_IsNumber(cJSON_GetObjectItem(j, name)) ? cJSON_GetObjectItem(j, name)->valuedouble : -1)
    struct query q = {.tenant = JS("tenant"),
                      .selector_text = JS("query"),
                      .from = (int64_t)JN("from"),
                      .until = (int64_t)JN("until"),
                      .profile_type = JS("profile_type"),
                      .mode = (enum qmode)(int)JN("mode"),
                      .all_types = cJSON_IsTrue(cJSON_GetObjectItem(j, "all_types")),
                      .step = (int64_t)JN("step"),
                      .group_by = JS("group_by")};
    double shard = JN("shard"), nsh = JN("nshards");
    if (!q.tenant || !plan_tenant_valid(q.tenant) || q.from >= q.until ||
        q.until - q.from > QUERY_MAX_RANGE_MS || (int)q.mode < Q_PROFILE || q.mode > Q_LABELS ||
        nsh < 1 || nsh > 1024 || shard < 0 || shard >= nsh ||
        (q.profile_type && !http_profile_type_valid(q.profile_type)) ||
        (q.group_by && *q.group_by && !http_label_name_valid(q.group_by))) {
        cJSON_Delete(j);
        http_error_json(r, 400, "body: invalid peer query");
        return;
    }
    q.shard = (uint32_t)shard;
    q.nshards = (uint32_t)nsh;
    if (q.mode == Q_SERIES) {
        int64_t st;
        uint32_t nb;
        if (engine_series_grid(&q, &st, &nb)) {
            cJSON_Delete(j);
            http_error_json(r, 400, "step: too many points");
            return;
        }
    }
    if (selector_parse(q.selector_text, &sel, err, sizeof(err))) {
        cJSON_Delete(j);
        http_error_json(r, 400, "query: %s", err);
        return;
    }
    q.sel = sel;
    int rc = run(s, &q, &mp, r);
    selector_free(sel);
    cJSON_Delete(j);
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

static void ep_metrics(struct http_server *s, struct http_response *r)
{
    struct sbuf b = {0};
    struct engine_counters ec;

    engine_counters(s->o.engine, &ec);
    sbuf_printf(&b, "# TYPE stoke_query_requests_total counter\n");
    for (int i = 0; i < EP_N; i++)
        sbuf_printf(&b, "stoke_query_requests_total{endpoint=\"%s\"} %" PRIu64 "\n", ep_names[i],
                    (uint64_t)s->requests[i]);
    sbuf_printf(&b, "# TYPE stoke_query_errors_total counter\n");
    for (int i = 0; i < EP_N; i++)
        sbuf_printf(&b, "stoke_query_errors_total{endpoint=\"%s\"} %" PRIu64 "\n", ep_names[i],
                    (uint64_t)s->errors[i]);
    sbuf_printf(&b, "# TYPE stoke_query_latency_seconds_sum counter\n");
    for (int i = 0; i < EP_N; i++)
        sbuf_printf(&b, "stoke_query_latency_seconds_sum{endpoint=\"%s\"} %.6f\n", ep_names[i],
                    (double)s->latency_us[i] / 1e6);
    sbuf_printf(&b,
                "# TYPE stoke_query_sections_read_total counter\n"
                "stoke_query_sections_read_total %" PRIu64 "\n"
                "# TYPE stoke_query_bytes_read_total counter\n"
                "stoke_query_bytes_read_total %" PRIu64 "\n"
                "# TYPE stoke_query_skipped_segments_total counter\n"
                "stoke_query_skipped_segments_total %" PRIu64 "\n"
                "# TYPE stoke_query_peer_errors_total counter\n"
                "stoke_query_peer_errors_total %" PRIu64 "\n",
                ec.sections, ec.bytes_read, ec.skipped, ec.peer_errors);
    if (s->o.cache) {
        struct cache_stats cs;
        cache_stats(s->o.cache, &cs);
        sbuf_printf(&b,
                    "# TYPE stoke_query_cache_hits_total counter\n"
                    "stoke_query_cache_hits_total %" PRIu64 "\n"
                    "# TYPE stoke_query_cache_disk_hits_total counter\n"
                    "stoke_query_cache_disk_hits_total %" PRIu64 "\n"
                    "# TYPE stoke_query_cache_misses_total counter\n"
                    "stoke_query_cache_misses_total %" PRIu64 "\n"
                    "# TYPE stoke_query_cache_bytes gauge\n"
                    "stoke_query_cache_bytes %" PRIu64 "\n",
                    cs.hits, cs.disk_hits, cs.misses, cs.bytes);
    }
    respond(r, 200, "text/plain; version=0.0.4", &b);
}

static void ep_index(struct http_server *s, struct http_response *r)
{
    struct sbuf b = {0};

    if (s->o.web_dir) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/index.html", s->o.web_dir);
        FILE *f = fopen(path, "rb");
        if (!f) {
            http_error_json(r, 404, "web page %s: %s", path, strerror(errno));
            return;
        }
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < (64u << 20))
            sbuf_put(&b, chunk, n);
        fclose(f);
    } else if (stoke_web_index) {
        size_t n = 0;
        const char *page = stoke_web_index(&n);
        sbuf_put(&b, page, n);
    } else {
        /* Not embedded (a library-only build): the source tree's copy, so
         * a worker started from the repository root still serves it. */
        FILE *f = fopen("query/web/index.html", "rb");
        if (!f) {
            http_error_json(r, 404, "no web page embedded in this build; start with --web-dir DIR");
            return;
        }
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < (64u << 20))
            sbuf_put(&b, chunk, n);
        fclose(f);
    }
    if (!b.p)
        sbuf_put(&b, "", 0);
    respond(r, 200, "text/html; charset=utf-8", &b);
}

static const struct {
    const char *path;
    enum ep ep;
} routes[] = {
    {"/api/v1/profile_types", EP_TYPES}, {"/api/v1/label_names", EP_NAMES},
    {"/api/v1/label_values", EP_VALUES}, {"/api/v1/top", EP_TOP},
    {"/api/v1/flamegraph", EP_FLAME},    {"/api/v1/series", EP_SERIES},
    {"/api/v1/diff", EP_DIFF},           {"/api/v1/pprof", EP_PPROF},
    {"/internal/v1/select", EP_SELECT},
};

void http_route(struct http_server *s, const char *method, const char *path, http_param_fn param,
                void *ctx, const uint8_t *body, size_t body_len, struct http_response *out)
{
    http_route_headers(s, method, path, param, NULL, ctx, body, body_len, out);
}

static const char *no_header(void *ctx, const char *name)
{
    return NULL;
}

bool http_authorized(const struct http_server *s, const char *method, const char *path,
                     http_param_fn header, void *ctx)
{
    if (!s->o.auth)
        return true;
    /* Liveness and the static page (it holds no data and asks for the
     * token itself) stay open. */
    if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
        (strcmp(path, "/healthz") == 0 || strcmp(path, "/") == 0 ||
         strcmp(path, "/index.html") == 0))
        return true;
    return auth_check(s->o.auth, header ? header(ctx, "Authorization") : NULL);
}

void http_route_headers(struct http_server *s, const char *method, const char *path,
                        http_param_fn param, http_param_fn header, void *ctx, const uint8_t *body,
                        size_t body_len, struct http_response *out)
{
    struct params p = {param, ctx};
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    enum ep ep = EP_OTHER;
    int64_t t0 = mono_us();

    memset(out, 0, sizeof(*out));
    if (!http_authorized(s, method, path, header, ctx)) {
        if (strncmp(path, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) == 0)
            connect_error(out, 401, CONNECT_UNAUTHENTICATED,
                          "missing or invalid token (Authorization: Bearer <token>)");
        else
            http_error_json(out, 401,
                            "authorization: missing or invalid token (Authorization: Bearer "
                            "<token>)");
        goto done;
    }
    if (pyroscope_path(path)) {
        struct pyroscope_api a = {s->o.engine, s->o.tenant};
        ep = EP_PYROSCOPE;
        pyroscope_route(&a, method, path, param, header ? header : no_header, ctx, body, body_len,
                        out);
        goto done;
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(path, routes[i].path) == 0)
            ep = routes[i].ep;
    if (ep == EP_OTHER) {
        if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
            strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0) {
            if (!get) {
                http_error_json(out, 405, "%s: method %s not allowed (use GET)", path, method);
            } else if (strcmp(path, "/healthz") == 0) {
                struct sbuf b = {0};
                sbuf_put(&b, "ok\n", 3);
                respond(out, 200, "text/plain", &b);
            } else if (strcmp(path, "/metrics") == 0) {
                ep_metrics(s, out);
            } else {
                ep_index(s, out);
            }
        } else {
            http_error_json(out, 404, "%.200s: no such endpoint", path);
        }
        goto done;
    }
    if (ep == EP_SELECT ? strcmp(method, "POST") != 0 : !get) {
        http_error_json(out, 405, "%s: method %s not allowed (use %s)", path, method,
                        ep == EP_SELECT ? "POST" : "GET");
        goto done;
    }
    switch (ep) {
    case EP_TYPES:
        ep_profile_types(s, &p, out);
        break;
    case EP_NAMES:
        ep_labels(s, &p, false, out);
        break;
    case EP_VALUES:
        ep_labels(s, &p, true, out);
        break;
    case EP_TOP:
        ep_top(s, &p, out);
        break;
    case EP_FLAME:
        ep_flame(s, &p, out);
        break;
    case EP_SERIES:
        ep_series(s, &p, out);
        break;
    case EP_DIFF:
        ep_diff(s, &p, out);
        break;
    case EP_PPROF:
        ep_pprof(s, &p, out);
        break;
    case EP_SELECT:
        ep_select(s, body, body_len, out);
        break;
    default:
        break;
    }
done:
    s->requests[ep]++;
    if (out->status >= 400)
        s->errors[ep]++;
    s->latency_us[ep] += (uint64_t)(mono_us() - t0);
}

/* ---- libmicrohttpd glue ------------------------------------------------ */

struct conn {
    uint8_t *body;
    size_t len;
    bool too_big;
    bool denied; /* no valid token: the body is discarded, the answer is 401 */
};

static const char *mhd_param(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static const char *mhd_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *s = cls;
    struct conn *cn = *con_cls;
    struct http_response r;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (!cn) {
        cn = calloc(1, sizeof(*cn));
        if (!cn)
            return MHD_NO;
        *con_cls = cn;
        cn->denied = !http_authorized(s, method, url, mhd_header, c);
        return MHD_YES;
    }
    /* Connect requests may be larger than the JSON API's queries. */
    size_t cap = pyroscope_path(url) ? CONNECT_MAX_BODY : HTTP_MAX_BODY;
    if (*upload_size) {
        if (cn->denied) {
            /* Not buffered: an unauthenticated client costs no memory. */
        } else if (cn->len + *upload_size > cap) {
            cn->too_big = true;
        } else {
            uint8_t *nb = realloc(cn->body, cn->len + *upload_size + 1);
            if (!nb)
                return MHD_NO;
            cn->body = nb;
            memcpy(cn->body + cn->len, upload_data, *upload_size);
            cn->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cn->too_big && !cn->denied) {
        memset(&r, 0, sizeof(r));
        if (pyroscope_path(url))
            connect_error(&r, 0, CONNECT_RESOURCE_EXHAUSTED, "body: larger than %zu bytes", cap);
        else
            http_error_json(&r, 413, "body: larger than %d bytes", HTTP_MAX_BODY);
    } else {
        http_route_headers(s, method, url, mhd_param, mhd_header, c, cn->body, cn->len, &r);
    }
    resp = MHD_create_response_from_buffer(r.len, r.body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(r.body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r.content_type ? r.content_type : "text/plain");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r.status == 405)
        MHD_add_response_header(
            resp, "Allow",
            strcmp(url, "/internal/v1/select") == 0 ||
                    strncmp(url, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) == 0
                ? "POST"
                : "GET, HEAD");
    if (r.status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"stoke-query\"");
    if (r.status == 415)
        MHD_add_response_header(resp, "Accept-Post", "application/json, application/proto");
    ret = MHD_queue_response(c, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct conn *cn = *con_cls;
    if (cn) {
        free(cn->body);
        free(cn);
        *con_cls = NULL;
    }
}

struct http_server *http_new_unbound(const struct http_opts *o)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (s)
        s->o = *o;
    return s;
}

struct http_server *http_start(const struct http_opts *o, char *err, size_t errlen)
{
    struct http_server *s = http_new_unbound(o);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    char host[256];
    const char *colon;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    colon = strrchr(o->listen, ':');
    if (!colon || colon - o->listen >= (long)sizeof(host) || !colon[1]) {
        snprintf(err, errlen, "--listen %s: expected HOST:PORT", o->listen);
        free(s);
        return NULL;
    }
    memcpy(host, o->listen, (size_t)(colon - o->listen));
    host[colon - o->listen] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    int gr = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (gr) {
        snprintf(err, errlen, "--listen %s: %s", o->listen, gai_strerror(gr));
        free(s);
        return NULL;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
                            MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        snprintf(err, errlen, "--listen %s: cannot listen (address in use or not permitted)",
                 o->listen);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return s;
}

unsigned http_port(const struct http_server *s)
{
    return s->port;
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    free(s);
}
