/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/peer.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "query/engine/plan.h"

/* ---- the request's fields ------------------------------------------------- */

enum pf_kind {
    PF_STR,  /* const char * */
    PF_BOOL, /* bool */
    PF_I64,  /* int64_t */
    PF_MODE, /* enum qmode */
    PF_U32,  /* uint32_t */
};

struct pfield {
    const char *name;
    enum pf_kind kind;
    size_t off;      /* in struct query */
    const char *str; /* PF_STR: written for NULL (NULL: the field is left out) */
    int64_t lo, hi;  /* numbers: the accepted range */
    int64_t dflt;    /* numbers: when absent (out of range: absent is refused) */
};

#define Q(f) offsetof(struct query, f)

/* In the order the parser checks them: its first complaint is the first
 * bad field here. */
static const struct pfield fields[] = {
    {"tenant", PF_STR, Q(tenant), NULL, 0, 0, 0},
    {"query", PF_STR, Q(selector_text), "{}", 0, 0, 0},
    {"from", PF_I64, Q(from), NULL, 0, QUERY_MAX_TIME_MS, -1},
    {"until", PF_I64, Q(until), NULL, 0, QUERY_MAX_TIME_MS, -1},
    {"profile_type", PF_STR, Q(profile_type), NULL, 0, 0, 0},
    {"mode", PF_MODE, Q(mode), NULL, Q_PROFILE, Q_TOP, -1},
    {"all_types", PF_BOOL, Q(all_types), NULL, 0, 0, 0},
    {"flame", PF_BOOL, Q(flame), NULL, 0, 0, 0},
    {"step", PF_I64, Q(step), NULL, 0, QUERY_MAX_RANGE_MS, 0},
    {"group_by", PF_STR, Q(group_by), "", 0, 0, 0},
    {"nshards", PF_U32, Q(nshards), NULL, 1, 1024, 0},
    {"shard", PF_U32, Q(shard), NULL, 0, 1023, -1},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static int64_t get_num(const struct query *q, const struct pfield *f)
{
    const char *p = (const char *)q + f->off;

    switch (f->kind) {
    case PF_I64:
        return *(const int64_t *)p;
    case PF_MODE:
        return *(const enum qmode *)p;
    case PF_U32:
        return *(const uint32_t *)p;
    default:
        return 0;
    }
}

static void set_num(struct query *q, const struct pfield *f, int64_t v)
{
    char *p = (char *)q + f->off;

    switch (f->kind) {
    case PF_I64:
        *(int64_t *)p = v;
        break;
    case PF_MODE:
        *(enum qmode *)p = (enum qmode)v;
        break;
    case PF_U32:
        *(uint32_t *)p = (uint32_t)v;
        break;
    default:
        break;
    }
}

char *peer_request_encode(const struct query *q, uint32_t shard, uint32_t nshards)
{
    struct query pq = *q;
    cJSON *o = cJSON_CreateObject();
    char *s;

    if (!o)
        return NULL;
    pq.shard = shard;
    pq.nshards = nshards;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct pfield *f = &fields[i];
        const char *p = (const char *)&pq + f->off;
        cJSON *v;
        if (f->kind == PF_STR) {
            const char *str = *(const char *const *)p ? *(const char *const *)p : f->str;
            if (!str)
                continue;
            v = cJSON_AddStringToObject(o, f->name, str);
        } else if (f->kind == PF_BOOL) {
            v = cJSON_AddBoolToObject(o, f->name, *(const bool *)p);
        } else {
            v = cJSON_AddNumberToObject(o, f->name, (double)get_num(&pq, f));
        }
        if (!v) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* The integer member @f of @j into @q, or its default when absent (a
 * default outside the range means the field is required: *@missing is set
 * and the field left alone). A number that is not finite, not integral or
 * out of range is refused before it is converted: casting it would be
 * undefined. 0 or -EINVAL with @err. */
static int parse_num(const cJSON *j, const struct pfield *f, struct query *q, bool *missing,
                     char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItem(j, f->name);

    if (!v) {
        bool required = f->dflt < f->lo || f->dflt > f->hi;
        *missing |= required;
        /* from and until keep theirs: plan_range_check names them */
        if (!required || f->kind == PF_I64)
            set_num(q, f, f->dflt);
        return 0;
    }
    if (!cJSON_IsNumber(v)) {
        snprintf(err, errlen, "body: %s: not a number", f->name);
        return -EINVAL;
    }
    double x = v->valuedouble;
    if (!isfinite(x) || x != floor(x) || x < (double)f->lo || x > (double)f->hi) {
        snprintf(err, errlen, "body: %s: %.17g is not an integer in [%" PRId64 ", %" PRId64 "]",
                 f->name, x, f->lo, f->hi);
        return -EINVAL;
    }
    set_num(q, f, (int64_t)x);
    return 0;
}

void peer_request_free(struct peer_request *r)
{
    selector_free(r->sel);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof(*r));
}

int peer_request_decode(const uint8_t *body, size_t len, struct peer_request *out, char *err,
                        size_t errlen)
{
    struct query *q = &out->q;
    char *text = strndup((const char *)body, len);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    bool missing = false;
    char sub[256];

    memset(out, 0, sizeof(*out));
    free(text);
    if (!j) {
        snprintf(err, errlen, "body: not JSON");
        return -EINVAL;
    }
    out->json = j;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct pfield *f = &fields[i];
        const cJSON *v = cJSON_GetObjectItem(j, f->name);
        char *p = (char *)q + f->off;
        if (f->kind == PF_STR)
            *(const char **)p = cJSON_IsString(v) ? v->valuestring : NULL;
        else if (f->kind == PF_BOOL)
            *(bool *)p = cJSON_IsTrue(v);
        else if (parse_num(j, f, q, &missing, err, errlen))
            goto bad;
    }
    if (plan_range_check(q->from, q->until, "from", "until", sub, sizeof(sub))) {
        snprintf(err, errlen, "body: %s", sub);
        goto bad;
    }
    if (!q->tenant || !plan_tenant_valid(q->tenant) || missing || q->shard >= q->nshards ||
        (q->profile_type && !query_profile_type_valid(q->profile_type)) ||
        (q->group_by && *q->group_by && !query_group_by_valid(q->group_by))) {
        snprintf(err, errlen, "body: invalid peer query");
        goto bad;
    }
    if (q->mode == Q_SERIES) {
        int64_t st;
        uint32_t nb;
        if (query_series_grid(q, &st, &nb)) {
            snprintf(err, errlen, "step: too many points");
            goto bad;
        }
    }
    if (selector_parse(q->selector_text, &out->sel, sub, sizeof(sub))) {
        snprintf(err, errlen, "query: %s", sub);
        goto bad;
    }
    q->sel = out->sel;
    return 0;
bad:
    peer_request_free(out);
    return -EINVAL;
}

/* ---- the call ---------------------------------------------------------------- */

/* libcurl's write callback: the answer into a wbuf, at most
 * PEER_MAX_RESPONSE bytes (past that, err is -EFBIG). */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct wbuf *m = ud;
    size_t n = size * nmemb;

    if (m->len + n > PEER_MAX_RESPONSE) {
        m->err = -EFBIG;
        return 0;
    }
    wb_bytes(m, ptr, n);
    return m->err ? 0 : n;
}

/* libcurl's progress callback: a non-zero return aborts the transfer. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const struct query *q = ud;
    return qcancel_check(q->cancel) != 0;
}

int peer_select(const struct peer_target *t, const struct query *q, uint32_t shard,
                uint32_t nshards, struct mprof **out, char *err, size_t errlen)
{
    struct wbuf mb = {0}, ah = {0};
    char url[512];
    char *body = peer_request_encode(q, shard, nshards);
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL, *h2;
    long status = 0;
    CURLcode cc;
    int rc = -ENOMEM;

    *out = NULL;
    snprintf(err, errlen, "out of memory");
    if (!body || !c)
        goto out;
    snprintf(url, sizeof(url), "http://%s" PEER_SELECT_PATH, t->addr);
    if (!(h2 = curl_slist_append(hdr, "Content-Type: application/json")))
        goto out;
    hdr = h2;
    if (t->token) {
        /* Workers with --auth-token-file send their first token. */
        wb_printf(&ah, "Authorization: Bearer %s", t->token);
        h2 = ah.err ? NULL : curl_slist_append(hdr, ah.s);
        if (ah.p)
            memset(ah.p, 0, ah.len);
        if (!h2)
            goto out;
        hdr = h2;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &mb);
    /* Never longer than the query may still run. */
    int64_t left = qcancel_left_ms(q->cancel), tmo = t->timeout_ms;
    if (left >= 0 && left < tmo)
        tmo = left > 0 ? left : 1;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)tmo);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)q);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    cc = curl_easy_perform(c);
    rc = -EIO;
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s",
                 mb.err == -EFBIG ? "response too large" : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(err, errlen, "HTTP %ld", status);
        goto out;
    }
    rc = mprof_decode(mb.p, mb.len, out);
    if (rc)
        snprintf(err, errlen, "undecodable partial profile (%zu bytes)", mb.len);
    else
        err[0] = '\0';
out:
    curl_slist_free_all(hdr);
    if (c)
        curl_easy_cleanup(c);
    free(body);
    free(mb.p);
    free(ah.p);
    return rc;
}
