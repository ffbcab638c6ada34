/* SPDX-License-Identifier: Apache-2.0 */
#include "query/http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "query/connect.h"
#include "query/connguard.h"
#include "query/plan.h"
#include "query/pyroscope_api.h"
#include "query/views.h"
#include "query/workpool.h"

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
    struct http_limits lim;
    struct MHD_Daemon *d;
    unsigned port;
    atomic_bool stopping; /* every query checks it (query/cancel.h) */
    struct connguard *guard;
    struct workpool *queries, *shards; /* client queries; peers' shard reads */
    atomic_uint_fast64_t requests[EP_N], errors[EP_N], latency_us[EP_N];
    atomic_uint_fast64_t busy, timeouts, cancelled; /* 429s, 504s, cancelled queries */
    pthread_mutex_t log_lock;                       /* libmicrohttpd's messages */
    int64_t log_window_us;
    unsigned log_n, log_dropped;
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
void http_finish_json(struct sbuf *b, const struct mprof *p)
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
    struct qcancel *cancel;
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

/* Fills @r with the error of a query that failed with @rc. */
static void query_error(struct http_server *s, int rc, const char *err, struct http_response *r)
{
    switch (rc) {
    case -EINVAL:
        http_error_json(r, 400, "%s", err);
        break;
    case -ETIMEDOUT:
        s->timeouts++;
        http_error_json(r, 504, "query: did not finish within its deadline of %u ms (%s)",
                        s->lim.query_timeout_ms, err);
        break;
    case -ECANCELED:
        s->cancelled++;
        http_error_json(r, 503, "query: cancelled (client gone or server stopping)");
        break;
    default:
        http_error_json(r, rc == -ENOMEM ? 500 : 502, "query failed: %s",
                        err[0] ? err : strerror(-rc));
    }
}

/* Records that a query ran, for X-Stoke-Skipped. */
static void note_query(struct http_response *r, const struct mprof *mp)
{
    r->queried = true;
    r->skipped += mp->stats.skipped;
}

static int run(struct http_server *s, const struct params *p, const struct query *q,
               struct mprof **out, struct http_response *r)
{
    char err[512] = "";
    struct query qq = *q;

    qq.cancel = p->cancel;
    int rc = engine_query(s->o.engine, &qq, out, err, sizeof(err));
    if (rc)
        query_error(s, rc, err, r);
    else
        note_query(r, *out);
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
    int rc = engine_profile_types(s->o.engine, c.tenant, c.sel, c.from, c.until, p->cancel, &types,
                                  &n, &notes, err, sizeof(err));
    selector_free(c.sel);
    if (rc) {
        query_error(s, rc, err, r);
        return;
    }
    note_query(r, notes);
    sbuf_put(&b, "{\"profile_types\":[", 18);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_put(&b, ",", 1);
        sbuf_json_str(&b, types[i]);
        free(types[i]);
    }
    free(types);
    sbuf_put(&b, "]", 1);
    http_finish_json(&b, notes);
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
    int rc = run(s, p, &q, &mp, r);
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
    http_finish_json(&b, mp);
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
    int rc = run(s, p, &q, &mp, r);
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
    http_finish_json(&b, mp);
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
    int rc = run(s, p, &q, &mp, r);
    selector_free(c.sel);
    if (rc)
        return;
    if (view_flame_json(mp, 0, (uint32_t)max_nodes, &b)) {
        free(b.p);
        mprof_free(mp);
        http_error_json(r, 500, "out of memory");
        return;
    }
    http_finish_json(&b, mp);
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
    int rc = run(s, p, &q, &mp, r);
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
    http_finish_json(&b, mp);
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
    int rc = run(s, p, &ql, &lm, r);
    if (!rc)
        rc = run(s, p, &qr, &rm, r);
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
    http_finish_json(&b, lm);
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
    int rc = run(s, p, &q, &mp, r);
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

/* The integer member @name of @j, in [lo, hi], into *out (@dflt when
 * absent). A number that is not finite, not integral or out of range is
 * refused before it is converted: casting it would be undefined. NULL, or
 * what is wrong. */
static const char *json_int(const cJSON *j, const char *name, int64_t lo, int64_t hi, int64_t dflt,
                            int64_t *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItem(j, name);

    if (!v) {
        *out = dflt;
        return NULL;
    }
    if (!cJSON_IsNumber(v)) {
        snprintf(err, errlen, "%s: not a number", name);
        return err;
    }
    double x = v->valuedouble;
    if (!isfinite(x) || x != floor(x) || x < (double)lo || x > (double)hi) {
        snprintf(err, errlen, "%s: %.17g is not an integer in [%" PRId64 ", %" PRId64 "]", name, x,
                 lo, hi);
        return err;
    }
    *out = (int64_t)x;
    return NULL;
}

/* POST /internal/v1/select: a peer's shard of a query, as an mprof. */
static void ep_select(struct http_server *s, const struct params *p, const uint8_t *body,
                      size_t len, struct http_response *r)
{
    cJSON *j = NULL;
    struct selector *sel = NULL;
    struct mprof *mp = NULL;
    char err[256], *text = NULL;
    uint8_t *buf = NULL;
    size_t blen = 0;
    int64_t mode = -1, shard = -1, nsh = 0;
    const char *why;

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
    struct query q = {.tenant = JS("tenant"),
                      .selector_text = JS("query"),
                      .profile_type = JS("profile_type"),
                      .all_types = cJSON_IsTrue(cJSON_GetObjectItem(j, "all_types")),
                      .group_by = JS("group_by")};
#undef JS
    if ((why = json_int(j, "from", 0, QUERY_MAX_TIME_MS, -1, &q.from, err, sizeof(err))) ||
        (why = json_int(j, "until", 0, QUERY_MAX_TIME_MS, -1, &q.until, err, sizeof(err))) ||
        (why = json_int(j, "mode", Q_PROFILE, Q_LABELS, -1, &mode, err, sizeof(err))) ||
        (why = json_int(j, "step", 0, QUERY_MAX_RANGE_MS, 0, &q.step, err, sizeof(err))) ||
        (why = json_int(j, "nshards", 1, 1024, 0, &nsh, err, sizeof(err))) ||
        (why = json_int(j, "shard", 0, 1023, -1, &shard, err, sizeof(err))) ||
        (plan_range_check(q.from, q.until, "from", "until", err, sizeof(err)) && (why = err))) {
        cJSON_Delete(j);
        http_error_json(r, 400, "body: %s", why);
        return;
    }
    q.mode = (enum qmode)mode;
    if (!q.tenant || !plan_tenant_valid(q.tenant) || mode < 0 || nsh < 1 || shard < 0 ||
        shard >= nsh || (q.profile_type && !http_profile_type_valid(q.profile_type)) ||
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
    int rc = run(s, p, &q, &mp, r);
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
    sbuf_printf(&b,
                "# TYPE stoke_query_busy_total counter\n"
                "stoke_query_busy_total %" PRIu64 "\n"
                "# TYPE stoke_query_deadline_exceeded_total counter\n"
                "stoke_query_deadline_exceeded_total %" PRIu64 "\n"
                "# TYPE stoke_query_cancelled_total counter\n"
                "stoke_query_cancelled_total %" PRIu64 "\n",
                (uint64_t)s->busy, (uint64_t)s->timeouts, (uint64_t)s->cancelled);
    if (s->guard) {
        struct connguard_stats gs;
        connguard_stats(s->guard, &gs);
        sbuf_printf(&b,
                    "# TYPE stoke_query_connections gauge\n"
                    "stoke_query_connections %u\n"
                    "# TYPE stoke_query_connections_reading gauge\n"
                    "stoke_query_connections_reading %u\n"
                    "# TYPE stoke_query_connections_cut_total counter\n"
                    "stoke_query_connections_cut_total{reason=\"read_timeout\"} %" PRIu64 "\n"
                    "stoke_query_connections_cut_total{reason=\"write_timeout\"} %" PRIu64 "\n"
                    "stoke_query_connections_cut_total{reason=\"evicted\"} %" PRIu64 "\n",
                    gs.open, gs.reading, gs.cut_reading, gs.cut_sending, gs.evicted);
    }
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

/* Is @path answered on the query pool (it may run a query)? */
static bool query_path(const char *path)
{
    if (pyroscope_path(path))
        return true;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(path, routes[i].path) == 0)
            return true;
    return false;
}

void http_limits(const struct http_opts *o, uint64_t nofile, struct http_limits *l)
{
    uint64_t mc = o->max_connections ? o->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
    uint64_t room = nofile > HTTP_FD_RESERVE + 16 ? nofile - HTTP_FD_RESERVE : 16;

    l->query_timeout_ms = o->query_timeout_ms ? o->query_timeout_ms : HTTP_DEFAULT_QUERY_TIMEOUT_MS;
    l->read_timeout_ms = o->read_timeout_ms ? o->read_timeout_ms : HTTP_DEFAULT_READ_TIMEOUT_MS;
    l->write_timeout_ms = o->write_timeout_ms ? o->write_timeout_ms : HTTP_DEFAULT_WRITE_TIMEOUT_MS;
    l->max_queries = o->max_queries ? o->max_queries : HTTP_DEFAULT_MAX_QUERIES;
    l->max_waiting = 4 * l->max_queries;
    l->max_connections = (unsigned)(mc < room ? mc : room);
    /* Connections reading a request leave a quarter free for the ones
     * being answered, so a slow crowd cannot take the last slot. */
    l->max_reading = l->max_connections * 3 / 4 ? l->max_connections * 3 / 4 : 1;
    l->max_per_ip = o->max_per_ip;
}

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

uint64_t http_query_timeout_ms(const struct http_server *s, const char *path, http_param_fn header,
                               void *ctx)
{
    uint64_t t = s->lim.query_timeout_ms;
    const char *v;

    /* Connect's own deadline header: at most 10 digits of milliseconds. */
    if (header && strncmp(path, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) == 0 &&
        (v = header(ctx, "Connect-Timeout-Ms")) && *v && strlen(v) <= 10 &&
        strspn(v, "0123456789") == strlen(v)) {
        uint64_t c = strtoull(v, NULL, 10);
        if (c > 0 && c < t)
            t = c;
    }
    return t;
}

void http_cancel_all(struct http_server *s)
{
    atomic_store(&s->stopping, true);
}

void http_route_headers(struct http_server *s, const char *method, const char *path,
                        http_param_fn param, http_param_fn header, void *ctx, const uint8_t *body,
                        size_t body_len, struct http_response *out)
{
    struct qcancel qc;

    qcancel_init(&qc, http_query_timeout_ms(s, path, header, ctx), &s->stopping, NULL, NULL);
    struct http_request rq = {.method = method,
                              .path = path,
                              .param = param,
                              .header = header,
                              .ctx = ctx,
                              .body = body,
                              .body_len = body_len,
                              .cancel = &qc};
    http_handle(s, &rq, out);
}

void http_handle(struct http_server *s, const struct http_request *rq, struct http_response *out)
{
    const char *method = rq->method, *path = rq->path;
    struct params p = {rq->param, rq->ctx, rq->cancel};
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    enum ep ep = EP_OTHER;
    int64_t t0 = mono_us();

    memset(out, 0, sizeof(*out));
    if (!http_authorized(s, method, path, rq->header, rq->ctx)) {
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
        struct pyroscope_api a = {s->o.engine, s->o.tenant, rq->cancel};
        ep = EP_PYROSCOPE;
        pyroscope_route(&a, method, path, rq->param, rq->header ? rq->header : no_header, rq->ctx,
                        rq->body, rq->body_len, out);
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
        ep_select(s, &p, rq->body, rq->body_len, out);
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

/* One request on a connection (libmicrohttpd's con_cls), from its URI to
 * its answer. */
struct conn {
    struct http_server *s;
    struct MHD_Connection *c;
    struct connguard_conn *g; /* the connection's guard record */
    int fd;
    uint8_t *body;
    size_t len;
    bool started;  /* the access handler has seen the head */
    bool too_big;  /* the body went over its cap (discarded) */
    bool queued;   /* handed to a pool: r holds the answer once resumed */
    int refused;   /* 414 or 400: the URI was too long or had too many parameters */
    size_t urilen; /* of a refused URI */
    unsigned nparams;
    const char *method, *url;
    struct qcancel cancel;
    struct http_response r;
};

static const char *mhd_param(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static const char *mhd_header(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static bool conn_gone(void *ctx)
{
    const struct conn *cn = ctx;
    return cn->fd >= 0 && qcancel_socket_gone(cn->fd);
}

/* Called with the raw request URI before libmicrohttpd splits its
 * arguments; what it returns is the request's con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct conn *cn = calloc(1, sizeof(*cn));
    const char *q = strchr(uri, '?');
    size_t n = strlen(uri);
    unsigned np = 0;

    if (!cn)
        return NULL;
    cn->fd = -1;
    if (q) {
        np = 1;
        for (const char *t = q + 1; *t; t++)
            np += *t == '&';
    }
    if (n > HTTP_MAX_URI || np > HTTP_MAX_PARAMS) {
        cn->refused = n > HTTP_MAX_URI ? 414 : 400;
        cn->urilen = n;
        cn->nparams = np;
        /* libmicrohttpd (0.9.75) next parses every argument into the
         * connection's memory pool; thousands of them exhaust it and it
         * closes the connection without an answer (its 431 cannot be built
         * in the full pool). The string is the connection's own read
         * buffer: ending it at the '?' leaves no arguments to parse, and
         * the handler answers. */
        if (q)
            ((char *)q)[1] = '\0';
    }
    return cn;
}

/* Queues @cn's answer @r (taking its body). */
static enum MHD_Result answer(struct conn *cn, const char *url, struct http_response *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;
    char skipped[32];

    if (!resp) {
        free(r->body);
        r->body = NULL;
        return MHD_NO;
    }
    r->body = NULL;
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "text/plain");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->queried) {
        snprintf(skipped, sizeof(skipped), "%" PRIu64, r->skipped);
        MHD_add_response_header(resp, "X-Stoke-Skipped", skipped);
    }
    if (r->status == 405)
        MHD_add_response_header(
            resp, "Allow",
            strcmp(url, "/internal/v1/select") == 0 ||
                    strncmp(url, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) == 0
                ? "POST"
                : "GET, HEAD");
    if (r->status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"stoke-query\"");
    if (r->status == 415)
        MHD_add_response_header(resp, "Accept-Post", "application/json, application/proto");
    if (r->status == 429 || r->status == 503)
        MHD_add_response_header(resp, "Retry-After", "1");
    connguard_sending(cn->s->guard, cn->g);
    ret = MHD_queue_response(cn->c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* A pool's job: runs the request, then wakes its connection, whose
 * handler (called again) sends the answer. */
static void run_job(void *job)
{
    struct conn *cn = job;
    struct http_request rq = {.method = cn->method,
                              .path = cn->url,
                              .param = mhd_param,
                              .header = mhd_header,
                              .ctx = cn->c,
                              .body = cn->body,
                              .body_len = cn->len,
                              .cancel = &cn->cancel};

    if (qcancel_check(&cn->cancel) == -ETIMEDOUT) {
        /* Waited in the queue past its deadline. */
        cn->s->timeouts++;
        http_error_json(&cn->r, 504, "query: waited longer than its deadline of %u ms for a turn",
                        cn->s->lim.query_timeout_ms);
    } else {
        http_handle(cn->s, &rq, &cn->r);
    }
    MHD_resume_connection(cn->c);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *s = cls;
    struct conn *cn = *con_cls;
    const union MHD_ConnectionInfo *ci;
    struct http_response r;

    if (!cn)
        return MHD_NO; /* on_uri ran out of memory */
    if (!cn->started) {
        /* The head has arrived: refuse at once what needs no body. */
        cn->started = true;
        cn->s = s;
        cn->c = c;
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        cn->g = ci ? ci->socket_context : NULL;
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        cn->fd = ci ? ci->connect_fd : -1;
        memset(&r, 0, sizeof(r));
        if (cn->refused == 414) {
            http_error_json(&r, 414, "url: %zu bytes, more than %d", cn->urilen, HTTP_MAX_URI);
            return answer(cn, url, &r);
        }
        if (cn->refused) {
            http_error_json(&r, 400, "query string: %u parameters, more than %d", cn->nparams,
                            HTTP_MAX_PARAMS);
            return answer(cn, url, &r);
        }
        if (!http_authorized(s, method, url, mhd_header, c)) {
            /* 401 before the body: a refused client costs no reading. */
            http_route_headers(s, method, url, mhd_param, mhd_header, c, NULL, 0, &r);
            return answer(cn, url, &r);
        }
        return MHD_YES;
    }
    /* Connect requests may be larger than the JSON API's queries. */
    size_t cap = pyroscope_path(url) ? CONNECT_MAX_BODY : HTTP_MAX_BODY;
    if (*upload_size) {
        if (cn->len + *upload_size > cap) {
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
    if (cn->queued) /* resumed: the pool has answered */
        return answer(cn, url, &cn->r);
    connguard_working(s->guard, cn->g);
    memset(&r, 0, sizeof(r));
    if (cn->too_big) {
        if (pyroscope_path(url))
            connect_error(&r, 0, CONNECT_RESOURCE_EXHAUSTED, "body: larger than %zu bytes", cap);
        else
            http_error_json(&r, 413, "body: larger than %d bytes", HTTP_MAX_BODY);
        return answer(cn, url, &r);
    }
    if (!query_path(url)) {
        /* The page, /healthz, /metrics, 404: answered here, at once. */
        http_route_headers(s, method, url, mhd_param, mhd_header, c, cn->body, cn->len, &r);
        return answer(cn, url, &r);
    }
    /* A query: on a pool, its connection suspended meanwhile. */
    cn->method = method;
    cn->url = url;
    qcancel_init(&cn->cancel, http_query_timeout_ms(s, url, mhd_header, c), &s->stopping, conn_gone,
                 cn);
    cn->queued = true;
    MHD_suspend_connection(c);
    int rc = workpool_submit(strcmp(url, "/internal/v1/select") == 0 ? s->shards : s->queries, cn);
    if (rc) {
        memset(&cn->r, 0, sizeof(cn->r));
        if (rc == -EAGAIN)
            s->busy++;
        if (pyroscope_path(url))
            connect_error(&cn->r, rc == -EAGAIN ? 429 : 503,
                          rc == -EAGAIN ? CONNECT_RESOURCE_EXHAUSTED : CONNECT_UNAVAILABLE, "%s",
                          rc == -EAGAIN ? "too many queries at once; retry" : "stopping");
        else
            http_error_json(&cn->r, rc == -EAGAIN ? 429 : 503, "%s",
                            rc == -EAGAIN ? "too many queries at once (--max-queries); retry"
                                          : "stopping");
        MHD_resume_connection(c);
    }
    return MHD_YES;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct conn *cn = *con_cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    /* Kept alive, the connection now reads its next request. */
    if (ci)
        connguard_reading(s->guard, ci->socket_context);
    if (cn) {
        free(cn->r.body);
        free(cn->body);
        free(cn);
        *con_cls = NULL;
    }
}

/* libmicrohttpd's messages, at most HTTP_LOG_BURST per minute: a crowd
 * of slow clients being cut must not flood the log. */
#define HTTP_LOG_BURST 20
static void on_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *s = cls;
    int64_t now = mono_us();
    char msg[512];

    pthread_mutex_lock(&s->log_lock);
    if (now - s->log_window_us >= 60000000) {
        if (s->log_dropped)
            fprintf(stderr, "stoke-query: http: %u more messages in the last minute not shown\n",
                    s->log_dropped);
        s->log_window_us = now;
        s->log_n = s->log_dropped = 0;
    }
    bool show = s->log_n++ < HTTP_LOG_BURST;
    if (!show)
        s->log_dropped++;
    pthread_mutex_unlock(&s->log_lock);
    if (!show)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    fprintf(stderr, "stoke-query: http: %s\n", msg);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? connguard_open(s->guard, ci->connect_fd) : NULL;
    } else {
        /* Before libmicrohttpd closes the descriptor. */
        connguard_close(s->guard, *socket_context);
        *socket_context = NULL;
    }
}

struct http_server *http_new_unbound(const struct http_opts *o)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (s) {
        s->o = *o;
        http_limits(o, UINT64_MAX, &s->lim);
        pthread_mutex_init(&s->log_lock, NULL);
        s->log_window_us = mono_us();
    }
    return s;
}

const struct http_limits *http_server_limits(const struct http_server *s)
{
    return &s->lim;
}

struct http_server *http_start(const struct http_opts *o, char *err, size_t errlen)
{
    struct http_server *s = http_new_unbound(o);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    struct rlimit nofile = {0};
    char host[256];
    const char *colon;
    /* One thread polls every connection: an idle or slow client costs a
     * descriptor, not a thread; queries run on the pools. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0)
        http_limits(o, nofile.rlim_cur, &s->lim);
    colon = strrchr(o->listen, ':');
    if (!colon || colon - o->listen >= (long)sizeof(host) || !colon[1]) {
        snprintf(err, errlen, "--listen %s: expected HOST:PORT", o->listen);
        http_stop(s);
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
        http_stop(s);
        return NULL;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct connguard_opts go = {.read_timeout_ms = s->lim.read_timeout_ms,
                                .write_timeout_ms = s->lim.write_timeout_ms,
                                .max_reading = s->lim.max_reading};
    s->guard = connguard_new(&go);
    s->queries = workpool_new(s->lim.max_queries, s->lim.max_waiting, run_job);
    s->shards = workpool_new(s->lim.max_queries, s->lim.max_waiting, run_job);
    if (s->guard && s->queries && s->shards)
        s->d = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
            MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
            MHD_OPTION_NOTIFY_COMPLETED, on_done, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_CONNECTION_LIMIT,
            s->lim.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->lim.max_per_ip,
            MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        snprintf(err, errlen, "--listen %s: cannot listen (address in use or not permitted)",
                 o->listen);
        http_stop(s);
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
    /* Running queries stop at their next check; queued ones answer 503
     * without running; new ones are refused. Only then may the daemon stop:
     * it must not find a connection still suspended. */
    atomic_store(&s->stopping, true);
    if (s->queries)
        workpool_close(s->queries);
    if (s->shards)
        workpool_close(s->shards);
    if (s->d)
        MHD_stop_daemon(s->d);
    workpool_free(s->queries);
    workpool_free(s->shards);
    connguard_free(s->guard);
    pthread_mutex_destroy(&s->log_lock);
    free(s);
}
