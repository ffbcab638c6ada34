/* SPDX-License-Identifier: Apache-2.0 */
#include "ingest/pyroscope_ingest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec/jfr.h"
#include "common/pbjson.h"
#include "common/gzip.h"
#include "pyroscope/push.pb-c.h"

/* Pyroscope's profile-type suffixes of an application name (the SDKs
 * send "app.cpu", "app.alloc_objects", ...). */
static const char *const type_suffixes[] = {
    "cpu",
    "itimer",
    "wall",
    "alloc_objects",
    "alloc_space",
    "inuse_objects",
    "inuse_space",
    "goroutines",
    "mutex_count",
    "mutex_duration",
    "block_count",
    "block_duration",
    "lock_count",
    "lock_duration",
    "alloc_in_new_tlab_objects",
    "alloc_in_new_tlab_bytes",
    "alloc_outside_tlab_objects",
    "alloc_outside_tlab_bytes",
};

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '.';
}

int pyro_parse_name(struct ingest_batch *b, const char *name, const char **service,
                    struct seg_label *labels, size_t *nlabels, char *err, size_t errlen)
{
    size_t len = strlen(name), app_len;
    const char *brace = memchr(name, '{', len);

    *nlabels = 0;
    if (len == 0) {
        snprintf(err, errlen, "name: required (app{label=value,...})");
        return -EINVAL;
    }
    if (len > PYRO_MAX_NAME) {
        snprintf(err, errlen, "name: %zu bytes, more than %d", len, PYRO_MAX_NAME);
        return -EINVAL;
    }
    app_len = brace ? (size_t)(brace - name) : len;
    for (size_t i = 0; i < app_len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c == 0x7f || c == '}' || c == ',' || c == '=' || c == '"') {
            snprintf(err, errlen, "name: application name has a '%c' (0x%02x) at byte %zu",
                     c > 0x20 && c < 0x7f ? c : '?', c, i);
            return -EINVAL;
        }
    }
    /* cut a profile-type suffix */
    size_t svc_len = app_len;
    const char *dot = memrchr(name, '.', app_len);
    if (dot) {
        size_t sl = app_len - (size_t)(dot - name) - 1;
        for (size_t i = 0; i < sizeof(type_suffixes) / sizeof(type_suffixes[0]); i++)
            if (strlen(type_suffixes[i]) == sl && !memcmp(dot + 1, type_suffixes[i], sl))
                svc_len = (size_t)(dot - name);
    }
    if (svc_len == 0) {
        snprintf(err, errlen, "name: no application name before '%s'", brace ? "{" : ".");
        return -EINVAL;
    }
    const char *svc = ingest_strndup(b, name, svc_len);
    if (!svc)
        return -ENOMEM;
    labels[(*nlabels)++] = (struct seg_label){"service_name", svc};
    *service = svc;
    if (!brace)
        return 0;
    if (name[len - 1] != '}') {
        snprintf(err, errlen, "name: labels must end with '}'");
        return -EINVAL;
    }
    const char *p = brace + 1, *end = name + len - 1;
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (comma && (!eq || comma < eq)) {
            if (comma == p) { /* an empty item, as "{a=b,}" */
                p = comma + 1;
                continue;
            }
            snprintf(err, errlen, "name: label '%.*s' without '='", (int)(comma - p), p);
            return -EINVAL;
        }
        if (!eq) {
            snprintf(err, errlen, "name: label '%.*s' without '='", (int)(end - p), p);
            return -EINVAL;
        }
        const char *vend = comma ? comma : end;
        size_t kl = (size_t)(eq - p), vl = (size_t)(vend - eq - 1);
        while (kl && p[0] == ' ') { /* "a=b, c=d" */
            p++;
            kl--;
        }
        bool ok = kl > 0 && kl <= 128 && name_start(p[0]);
        for (size_t i = 1; ok && i < kl; i++)
            ok = name_char(p[i]);
        if (!ok) {
            snprintf(err, errlen, "name: bad label name '%.*s' (want [A-Za-z_][A-Za-z0-9_.]*)",
                     (int)(kl > 64 ? 64 : kl), p);
            return -EINVAL;
        }
        for (size_t i = 0; i < vl; i++) {
            unsigned char c = (unsigned char)eq[1 + i];
            if (c < 0x20 || c == 0x7f || c == '{' || c == '}') {
                snprintf(err, errlen, "name: label %.*s: value has a control character or brace",
                         (int)kl, p);
                return -EINVAL;
            }
        }
        if (kl == 8 && !memcmp(p, "__name__", 8)) {
            snprintf(err, errlen, "name: label __name__ is reserved");
            return -EINVAL;
        }
        char *k = ingest_strndup(b, p, kl), *v = ingest_strndup(b, eq + 1, vl);
        if (!k || !v)
            return -ENOMEM;
        for (char *c = k; *c; c++)
            if (*c == '.')
                *c = '_';
        p = comma ? comma + 1 : end;
        if (vl == 0)
            continue; /* Pyroscope drops empty values */
        if (!strcmp(k, "service_name")) {
            labels[0].value = v;
            *service = v;
            continue;
        }
        for (size_t i = 0; i < *nlabels; i++)
            if (!strcmp(labels[i].name, k)) {
                snprintf(err, errlen, "name: label %s given twice", k);
                return -EINVAL;
            }
        if (*nlabels == PYRO_MAX_LABELS) {
            snprintf(err, errlen, "name: more than %d labels", PYRO_MAX_LABELS - 1);
            return -EINVAL;
        }
        labels[(*nlabels)++] = (struct seg_label){k, v};
    }
    return 0;
}

/* ---- multipart/form-data (RFC 7578) --------------------------------------- */

/* The value of parameter @key in a header value "x; key=value; ..."
 * (quoted or not) into the batch; NULL when absent. */
static const char *header_param(struct ingest_batch *b, const char *h, size_t hl, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 1 <= hl; i++) {
        if ((i == 0 || h[i - 1] == ';' || h[i - 1] == ' ' || h[i - 1] == '\t') &&
            !strncasecmp(h + i, key, kl) && h[i + kl] == '=') {
            const char *v = h + i + kl + 1, *e = h + hl;
            if (v < e && *v == '"') {
                const char *q = memchr(v + 1, '"', (size_t)(e - v - 1));
                return q ? ingest_strndup(b, v + 1, (size_t)(q - v - 1)) : NULL;
            }
            const char *s = v;
            while (s < e && *s != ';' && *s != ' ' && *s != '\t' && *s != '\r')
                s++;
            return ingest_strndup(b, v, (size_t)(s - v));
        }
    }
    return NULL;
}

int multipart_parse(struct ingest_batch *b, const char *content_type, const uint8_t *body,
                    size_t len, struct multipart_part *parts, size_t *nparts, char *err,
                    size_t errlen)
{
    char delim[80];
    const char *bd = header_param(b, content_type, strlen(content_type), "boundary");
    size_t bl = bd ? strlen(bd) : 0;

    *nparts = 0;
    if (!bd || bl == 0 || bl > 70) {
        snprintf(err, errlen, "multipart/form-data: no boundary (1 to 70 bytes) in Content-Type");
        return -EINVAL;
    }
    int dl = snprintf(delim, sizeof(delim), "--%s", bd);
    const uint8_t *end = body + len;
    const uint8_t *p = memmem(body, len, delim, (size_t)dl);
    if (!p) {
        snprintf(err, errlen, "multipart/form-data: no boundary delimiter in the body");
        return -EINVAL;
    }
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return *nparts ? 0 : (snprintf(err, errlen, "multipart/form-data: no parts"), -EINVAL);
        /* transport padding, then CRLF (or a bare LF) */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p < end && *p == '\r')
            p++;
        if (p >= end || *p != '\n')
            break;
        p++;
        /* headers */
        const char *cd = NULL;
        size_t cdl = 0;
        for (;;) {
            const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl)
                goto truncated;
            size_t l = (size_t)(nl - p);
            if (l && p[l - 1] == '\r')
                l--;
            if (l == 0) {
                p = nl + 1;
                break;
            }
            if (l > 20 && !strncasecmp((const char *)p, "Content-Disposition:", 20)) {
                cd = (const char *)p + 20;
                cdl = l - 20;
            }
            p = nl + 1;
        }
        /* the content runs to CRLF + delimiter */
        char close[84];
        int cl = snprintf(close, sizeof(close), "\r\n%s", delim);
        const uint8_t *q = memmem(p, (size_t)(end - p), close, (size_t)cl);
        const uint8_t *next = q ? q + 2 : NULL;
        if (!q) { /* bare LF line ends */
            q = memmem(p, (size_t)(end - p), close + 1, (size_t)cl - 1);
            next = q ? q + 1 : NULL;
        }
        if (!q)
            goto truncated;
        const char *name = cd ? header_param(b, cd, cdl, "name") : NULL;
        if (!name || !name[0]) {
            snprintf(err, errlen, "multipart/form-data: part %zu has no name", *nparts + 1);
            return -EINVAL;
        }
        if (*nparts == MULTIPART_MAX_PARTS) {
            snprintf(err, errlen, "multipart/form-data: more than %d parts", MULTIPART_MAX_PARTS);
            return -EINVAL;
        }
        parts[*nparts] = (struct multipart_part){.name = name,
                                                 .filename = header_param(b, cd, cdl, "filename"),
                                                 .data = p,
                                                 .len = (size_t)(q - p)};
        (*nparts)++;
        p = next;
    }
truncated:
    snprintf(err, errlen, "multipart/form-data: truncated (no closing delimiter)");
    return -EINVAL;
}

/* ---- formats --------------------------------------------------------------- */

int pyro_pprof(struct ingest_batch *b, const uint8_t *body, size_t len, size_t max_decoded,
               Perftools__Profiles__Profile **out, char *err, size_t errlen)
{
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    int rc;

    if (len >= 2 && body[0] == 0x1f && body[1] == 0x8b) {
        rc = gzip_decompress(body, len, max_decoded, &raw, &rawlen);
        if (rc) {
            snprintf(err, errlen,
                     rc == -EFBIG ? "pprof: larger than %zu bytes decompressed"
                                  : "pprof: bad gzip data",
                     max_decoded);
            return rc == -EFBIG ? -EFBIG : rc == -ENOMEM ? -ENOMEM : -EINVAL;
        }
        body = raw;
        len = rawlen;
    }
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, len, body);
    free(raw);
    if (!p) {
        snprintf(err, errlen, "pprof: not a profile.proto message");
        return -EINVAL;
    }
    if ((rc = ingest_keep(b, p))) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    *out = p;
    return 0;
}

/* A decimal integer parameter in [lo, hi]; *@v untouched when absent. */
static int int_param(pyro_param_fn param, void *ctx, const char *name, int64_t lo, int64_t hi,
                     int64_t *v, char *err, size_t errlen)
{
    const char *s = param(ctx, name);
    char *e;

    if (!s || !*s)
        return 0;
    errno = 0;
    long long x = strtoll(s, &e, 10);
    if (*e || errno || x < lo || x > hi) {
        snprintf(err, errlen, "%s: '%.32s' is not an integer in [%lld, %lld]", name, s,
                 (long long)lo, (long long)hi);
        return -EINVAL;
    }
    *v = x;
    return 0;
}

/* The last part called @name of a multipart body: true, with its bytes. */
static bool part_named(const struct multipart_part *parts, size_t np, const char *name,
                       const uint8_t **data, size_t *len)
{
    for (size_t i = np; i-- > 0;) {
        if (!strcmp(parts[i].name, name)) {
            *data = parts[i].data;
            *len = parts[i].len;
            return true;
        }
    }
    return false;
}

/* format=jfr: the recording (a multipart `jfr` part, with the Java agent's
 * `labels` part, or the whole body) converted by codec/jfr.c, one profile
 * per kind of event, all of the request's service and labels. */
static int pyro_jfr(struct ingest_batch *b, const char *content_type, const uint8_t *body,
                    size_t len, size_t max_decoded, int64_t rate, const char *service,
                    struct seg_label *labels, size_t nlabels, int64_t time_ms, char *err,
                    size_t errlen)
{
    const uint8_t *jfr = body, *lab = NULL;
    size_t jlen = len, llen = 0;
    int rc;

    if (content_type && !strncasecmp(content_type, "multipart/form-data", 19)) {
        struct multipart_part parts[MULTIPART_MAX_PARTS];
        size_t np = 0;
        if ((rc = multipart_parse(b, content_type, body, len, parts, &np, err, errlen)))
            return rc;
        part_named(parts, np, "labels", &lab, &llen);
        if (!part_named(parts, np, "jfr", &jfr, &jlen)) {
            snprintf(err, errlen, "multipart/form-data: no 'jfr' part");
            return -EINVAL;
        }
    }
    struct jfr_opts o = {.sample_rate = rate, .max_bytes = max_decoded};
    struct jfr_result *r = NULL;
    char why[256] = "";
    rc = jfr_convert(jfr, jlen, lab, llen, &o, &r, why, sizeof(why));
    if (rc) {
        snprintf(err, errlen, "%s", why[0] ? why : strerror(-rc));
        return rc == -EFBIG ? -EFBIG : rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    for (size_t i = 0; i < r->n && !rc; i++) {
        Perftools__Profiles__Profile *p = r->profiles[i].pprof;
        if (!p || !p->n_sample)
            continue;
        r->profiles[i].pprof = NULL; /* the batch's now, also when keeping fails */
        if (ingest_keep(b, p) || ingest_push(b, &(struct ingest_profile){.service = service,
                                                                         .labels = labels,
                                                                         .nlabels = nlabels,
                                                                         .p = p,
                                                                         .nrows = p->n_sample,
                                                                         .time_ms = time_ms})) {
            snprintf(err, errlen, "out of memory");
            rc = -ENOMEM;
            break;
        }
    }
    jfr_result_free(r);
    return rc;
}

int ingest_pyroscope(struct ingest_batch *b, pyro_param_fn param, void *ctx,
                     const char *content_type, const uint8_t *body, size_t len, size_t max_decoded,
                     int64_t now_ms, char *err, size_t errlen)
{
    struct seg_label *labels = ingest_alloc(b, PYRO_MAX_LABELS + 1, sizeof(*labels));
    const char *name = param(ctx, "name"), *format = param(ctx, "format");
    const char *spy = param(ctx, "spyName"), *units = param(ctx, "units");
    const char *service = NULL;
    bool multipart = content_type && !strncasecmp(content_type, "multipart/form-data", 19);
    int64_t from = 0, until = 0, rate = 100;
    size_t nlabels = 0;
    int rc;

    if (!labels)
        return -ENOMEM;
    if (!format || !*format)
        format = multipart ? "pprof" : "folded";
    if (strcmp(format, "pprof") && strcmp(format, "folded") && strcmp(format, "collapsed") &&
        strcmp(format, "jfr")) {
        snprintf(err, errlen,
                 "format=%.32s: not supported (supported: pprof, jfr, folded, collapsed)", format);
        return -EPROTONOSUPPORT;
    }
    if ((rc = pyro_parse_name(b, name ? name : "", &service, labels, &nlabels, err, errlen)))
        return rc;
    /* from/until: Unix seconds (up to the year 5000) */
    if ((rc = int_param(param, ctx, "from", 0, 95617584000, &from, err, errlen)) ||
        (rc = int_param(param, ctx, "until", 0, 95617584000, &until, err, errlen)) ||
        (rc = int_param(param, ctx, "sampleRate", 1, 1000000, &rate, err, errlen)))
        return rc;
    if (from && until && until < from) {
        snprintf(err, errlen, "until (%lld) is before from (%lld)", (long long)until,
                 (long long)from);
        return -EINVAL;
    }
    if (spy && *spy) {
        size_t sl = strlen(spy);
        bool ok = sl <= 64;
        for (size_t i = 0; ok && i < sl; i++)
            ok = name_char(spy[i]) || spy[i] == '-' || (spy[i] >= '0' && spy[i] <= '9');
        if (!ok) {
            snprintf(err, errlen, "spyName: want up to 64 of [A-Za-z0-9_.-]");
            return -EINVAL;
        }
        labels[nlabels++] = (struct seg_label){"pyroscope_spy", spy};
    }

    Perftools__Profiles__Profile *p = NULL;
    uint64_t nrows = 0;
    if (!strcmp(format, "jfr"))
        return pyro_jfr(b, content_type, body, len, max_decoded, rate, service, labels, nlabels,
                        from ? from * 1000 : now_ms, err, errlen);
    if (!strcmp(format, "pprof")) {
        const uint8_t *data = body;
        size_t dlen = len;
        if (multipart) {
            struct multipart_part parts[MULTIPART_MAX_PARTS];
            size_t np = 0;
            if ((rc = multipart_parse(b, content_type, body, len, parts, &np, err, errlen)))
                return rc;
            /* prev_profile (a delta base) and sample_type_config (which
             * types the old Pyroscope 0.x server kept, their units,
             * aggregation and cumulative flags) are not read: the pprof
             * carries its own types, the SDKs send deltas, and Pyroscope
             * 1.x's own /ingest (RawProfile.ParseToPprof) loads the
             * config and stores the pprof unchanged too. */
            if (!part_named(parts, np, "profile", &data, &dlen)) {
                snprintf(err, errlen, "multipart/form-data: no 'profile' part");
                return -EINVAL;
            }
        }
        if ((rc = pyro_pprof(b, data, dlen, max_decoded, &p, err, errlen)))
            return rc;
        nrows = p->n_sample;
    } else {
        struct folded_types t = {.type = "samples",
                                 .unit = "count",
                                 .type2 = "cpu",
                                 .unit2 = "nanoseconds",
                                 .ptype = "cpu",
                                 .punit = "nanoseconds",
                                 .period = 1000000000 / rate};
        if (units && *units && !strcmp(units, "objects")) {
            t = (struct folded_types){.type = "alloc_objects",
                                      .unit = "count",
                                      .ptype = "space",
                                      .punit = "bytes",
                                      .period = 1};
        } else if (units && *units && !strcmp(units, "bytes")) {
            t = (struct folded_types){.type = "alloc_space",
                                      .unit = "bytes",
                                      .ptype = "space",
                                      .punit = "bytes",
                                      .period = 1};
        } else if (units && *units && strcmp(units, "samples")) {
            snprintf(err, errlen, "units=%.32s: folded takes samples, objects or bytes", units);
            return -EINVAL;
        }
        if ((rc = ingest_folded(b, (const char *)body, len, &t, &p, &nrows, err, errlen)))
            return rc;
        if (from)
            p->time_nanos = from * 1000000000;
        if (from && until)
            p->duration_nanos = (until - from) * 1000000000;
    }
    if (p->n_sample == 0)
        return 0;
    return ingest_push(b, &(struct ingest_profile){.service = service,
                                                   .labels = labels,
                                                   .nlabels = nlabels,
                                                   .p = p,
                                                   .nrows = nrows,
                                                   .time_ms = from ? from * 1000
                                                              : p->time_nanos > 0
                                                                  ? p->time_nanos / 1000000
                                                                  : now_ms});
}

/* ---- push.v1.PusherService/Push -------------------------------------------- */

/* The decoded @req (the batch's) into profiles. */
static int push_request(struct ingest_batch *b, const Push__V1__PushRequest *req,
                        size_t max_decoded, int64_t now_ms, char *err, size_t errlen)
{
    size_t nsamples = 0;
    int rc;

    for (size_t i = 0; i < req->n_series; i++) {
        const Push__V1__RawProfileSeries *se = req->series[i];
        struct seg_label *labels = ingest_alloc(b, se->n_labels + 1, sizeof(*labels));
        const char *service = NULL;
        size_t nl = 0;
        if (!labels)
            return -ENOMEM;
        for (size_t k = 0; k < se->n_labels; k++) {
            const char *n = se->labels[k]->name, *v = se->labels[k]->value;
            size_t l = strlen(n);
            bool ok = l > 0 && l <= 128 && name_start(n[0]);
            for (size_t c = 1; ok && c < l; c++)
                ok = name_char(n[c]);
            if (!ok) {
                snprintf(err, errlen, "series %zu: bad label name '%.64s'", i, n);
                return -EINVAL;
            }
            if (!strncmp(n, "__", 2) || !v[0])
                continue;
            char *k2 = ingest_strdup(b, n);
            if (!k2)
                return -ENOMEM;
            for (char *c = k2; *c; c++)
                if (*c == '.')
                    *c = '_';
            if (!strcmp(k2, "service_name"))
                service = v;
            labels[nl++] = (struct seg_label){k2, v};
        }
        if (!service) {
            snprintf(err, errlen, "series %zu: no service_name label", i);
            return -EINVAL;
        }
        for (size_t k = 0; k < se->n_samples; k++) {
            Perftools__Profiles__Profile *p = NULL;
            const ProtobufCBinaryData *raw = &se->samples[k]->raw_profile;
            char why[256];
            if (++nsamples > PUSH_MAX_SAMPLES) {
                snprintf(err, errlen, "more than %d profiles in one request", PUSH_MAX_SAMPLES);
                return -EINVAL;
            }
            if ((rc = pyro_pprof(b, raw->data, raw->len, max_decoded, &p, why, sizeof(why)))) {
                snprintf(err, errlen, "series %zu, sample %zu: %s", i, k, why);
                return rc;
            }
            if (p->n_sample == 0)
                continue;
            if (ingest_push(b, &(struct ingest_profile){.service = service,
                                                        .labels = labels,
                                                        .nlabels = nl,
                                                        .p = p,
                                                        .nrows = p->n_sample,
                                                        .time_ms = p->time_nanos > 0
                                                                       ? p->time_nanos / 1000000
                                                                       : now_ms}))
                return -ENOMEM;
        }
    }
    return 0;
}

int ingest_pyroscope_push(struct ingest_batch *b, const uint8_t *body, size_t len,
                          size_t max_decoded, int64_t now_ms, char *err, size_t errlen)
{
    Push__V1__PushRequest *req = push__v1__push_request__unpack(NULL, len, body);
    int rc;

    if (!req) {
        snprintf(err, errlen, "body: not a push.v1.PushRequest (protobuf)");
        return -EINVAL;
    }
    if ((rc = ingest_keep(b, req))) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    return push_request(b, req, max_decoded, now_ms, err, errlen);
}

int ingest_pyroscope_push_json(struct ingest_batch *b, const uint8_t *body, size_t len,
                               size_t max_decoded, int64_t now_ms, char *err, size_t errlen)
{
    ProtobufCMessage *m = NULL;
    char why[400];
    int rc =
        pbjson_decode(&push__v1__push_request__descriptor, body, len, NULL, &m, why, sizeof(why));

    if (rc) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        else
            snprintf(err, errlen, "push.v1.PushRequest (JSON): %s", why);
        return rc == -ENOMEM || rc == -EFBIG ? rc : -EINVAL;
    }
    if ((rc = ingest_keep(b, m))) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    return push_request(b, (const Push__V1__PushRequest *)m, max_decoded, now_ms, err, errlen);
}
