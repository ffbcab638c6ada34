/* SPDX-License-Identifier: Apache-2.0 */
/* pyroscope_push — see pyroscope_push.h. */
#include "exporter/pyroscope_push.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "exporter/http_push.h"

struct pyroscope_push {
    struct http_push *push;
    char *base;
    unsigned sample_rate;
};

struct out {
    char *b;
    size_t len, cap;
    bool full;
};

static void put(struct out *o, const char *s)
{
    size_t n = strlen(s);
    if (o->full || o->len + n + 1 > o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->b + o->len, s, n + 1);
    o->len += n;
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static void put_escaped(struct out *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char t[4];

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            t[0] = (char)*p;
            t[1] = '\0';
        } else {
            t[0] = '%';
            t[1] = hex[*p >> 4];
            t[2] = hex[*p & 15];
            t[3] = '\0';
        }
        put(o, t);
    }
}

/* The name's own syntax ({ } , =) cannot appear inside a name or value. */
static void clean(const char *in, char *out, size_t outlen)
{
    size_t i;
    for (i = 0; in[i] && i + 1 < outlen; i++)
        out[i] = strchr("{},=", in[i]) || (unsigned char)in[i] < 0x20 ? '_' : in[i];
    out[i] = '\0';
}

int pyroscope_ingest_url(const char *base, const struct profile *p, unsigned sample_rate, char *buf,
                         size_t buflen)
{
    struct out o = {.b = buf, .cap = buflen};
    struct label_set ls = {0};
    uint64_t start, dur, period;
    char name[4096], tmp[512], num[64];
    size_t n, i;
    bool first = true;
    int err = profile_common_labels(p, &ls);

    if (err)
        return err;
    profile_times(p, &start, &dur, &period);
    const char *svc = label_set_get(&ls, "service_name");
    clean(svc ? svc : "unknown", name, sizeof(name));
    n = strlen(name);
    n += (size_t)snprintf(name + n, sizeof(name) - n, "{");
    for (i = 0; i < ls.n && n < sizeof(name); i++) {
        if (strcmp(ls.v[i].name, "service_name") == 0)
            continue; /* it is the application name */
        char k[128];
        clean(ls.v[i].name, k, sizeof(k));
        clean(ls.v[i].value, tmp, sizeof(tmp));
        n += (size_t)snprintf(name + n, sizeof(name) - n, "%s%s=%s", first ? "" : ",", k, tmp);
        first = false;
    }
    if (n < sizeof(name))
        snprintf(name + n, sizeof(name) - n, "}");
    label_set_clear(&ls);
    if (n >= sizeof(name))
        return -ENAMETOOLONG;

    buf[0] = '\0';
    put(&o, base);
    while (o.len && o.b[o.len - 1] == '/')
        o.b[--o.len] = '\0';
    put(&o, "/ingest?name=");
    put_escaped(&o, name);
    /* whole seconds that cover the window */
    snprintf(num, sizeof(num), "&from=%llu&until=%llu", (unsigned long long)(start / 1000000000ull),
             (unsigned long long)((start + dur + 999999999ull) / 1000000000ull));
    put(&o, num);
    put(&o, "&format=pprof&spyName=stoke");
    snprintf(num, sizeof(num), "&sampleRate=%u", sample_rate);
    put(&o, num);
    return o.full ? -ENAMETOOLONG : 0;
}

struct pyroscope_push *pyroscope_push_new(const struct pyroscope_push_opts *o, char *err,
                                          size_t errlen)
{
    struct pyroscope_push *pp = calloc(1, sizeof(*pp));
    char org[512];
    const char *hdrs[1];
    size_t nh = 0;

    if (!pp || !(pp->base = strdup(o->url))) {
        free(pp);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
        snprintf(err, errlen, "pyroscope url %s: not an http:// or https:// URL", o->url);
        free(pp->base);
        free(pp);
        return NULL;
    }
    if (o->org_id && *o->org_id) {
        snprintf(org, sizeof(org), "X-Scope-OrgID: %s", o->org_id);
        hdrs[nh++] = org;
    }
    struct http_push_opts po = {
        .name = "pyroscope",
        .timeout_ms = o->timeout_ms,
        .headers = hdrs,
        .nheaders = nh,
        .user = o->user,
        .password = o->password,
        .bearer = o->bearer,
    };
    pp->sample_rate = o->sample_rate;
    pp->push = http_push_new(&po, err, errlen);
    if (!pp->push) {
        free(pp->base);
        free(pp);
        return NULL;
    }
    return pp;
}

int pyroscope_push_add(struct pyroscope_push *pp, const struct profile *p)
{
    char url[8192];
    uint8_t *gz;
    size_t len;
    int err;

    if (profile_total_samples(p) == 0)
        return 0;
    err = pyroscope_ingest_url(pp->base, p, pp->sample_rate, url, sizeof(url));
    if (err)
        return err;
    err = profile_encode_pprof_gz(p, &gz, &len);
    if (err)
        return err;
    return http_push_submit(pp->push, url, "application/octet-stream", NULL, gz, len, 1);
}

void pyroscope_push_get_stats(struct pyroscope_push *pp, struct http_push_stats *out)
{
    http_push_get_stats(pp->push, out);
}

void pyroscope_push_drain(struct pyroscope_push *pp, unsigned timeout_ms)
{
    if (pp)
        http_push_drain(pp->push, timeout_ms);
}

void pyroscope_push_free(struct pyroscope_push *pp, unsigned timeout_ms)
{
    if (!pp)
        return;
    http_push_free(pp->push, timeout_ms);
    free(pp->base);
    free(pp);
}
