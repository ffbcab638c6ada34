/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_write — see remote_write.h.
 */
#include "query/jobs/remote_write.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prometheus/remote.pb-c.h"

int rw_encode(const struct rec_series *s, size_t n, uint8_t **out, size_t *len)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries *ts = calloc(n + 1, sizeof(*ts));
    Prometheus__TimeSeries **tsp = calloc(n + 1, sizeof(*tsp));
    size_t nl = 0, nsamp = 0;
    int rc = -ENOMEM;

    for (size_t i = 0; i < n; i++) {
        nl += s[i].nlabels;
        nsamp += s[i].n;
    }
    Prometheus__Label *l = calloc(nl + 1, sizeof(*l));
    Prometheus__Label **lp = calloc(nl + 1, sizeof(*lp));
    Prometheus__Sample *sm = calloc(nsamp + 1, sizeof(*sm));
    Prometheus__Sample **smp = calloc(nsamp + 1, sizeof(*smp));
    uint8_t *raw = NULL, *z = NULL;
    if (!ts || !tsp || !l || !lp || !sm || !smp)
        goto out;
    size_t li = 0, si = 0;
    for (size_t i = 0; i < n; i++) {
        prometheus__time_series__init(&ts[i]);
        ts[i].labels = lp + li;
        ts[i].n_labels = s[i].nlabels;
        for (size_t k = 0; k < s[i].nlabels; k++, li++) {
            prometheus__label__init(&l[li]);
            l[li].name = s[i].names[k];
            l[li].value = s[i].values[k];
            lp[li] = &l[li];
        }
        ts[i].samples = smp + si;
        ts[i].n_samples = s[i].n;
        for (size_t k = 0; k < s[i].n; k++, si++) {
            prometheus__sample__init(&sm[si]);
            sm[si].value = s[i].v[k];
            sm[si].timestamp = s[i].t[k];
            smp[si] = &sm[si];
        }
        tsp[i] = &ts[i];
    }
    wr.timeseries = tsp;
    wr.n_timeseries = n;
    size_t rl = prometheus__write_request__get_packed_size(&wr);
    if (!(raw = malloc(rl ? rl : 1)))
        goto out;
    prometheus__write_request__pack(&wr, raw);
    size_t zl = snappy_max_compressed_length(rl);
    if (!(z = malloc(zl ? zl : 1)))
        goto out;
    if (snappy_compress((const char *)raw, rl, (char *)z, &zl) != SNAPPY_OK) {
        rc = -EINVAL;
        goto out;
    }
    *out = z;
    *len = zl;
    z = NULL;
    rc = 0;
out:
    free(z);
    free(raw);
    free(ts);
    free(tsp);
    free(l);
    free(lp);
    free(sm);
    free(smp);
    return rc;
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    char *body = arg;
    size_t have = strlen(body), k = size * n;
    if (have + 1 < 200) {
        size_t c = k < 199 - have ? k : 199 - have;
        memcpy(body + have, p, c);
        body[have + c] = '\0';
    }
    return k;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* One request with its retries: 0 when the receiver took it, 1 when it
 * refused it (its samples are dropped), 2 when it stayed unreachable or
 * failing through every retry (last_error says why). */
static int post(const struct rw_opts *o, const uint8_t *buf, size_t len, struct rw_stats *st)
{
    unsigned wait = o->backoff_ms ? o->backoff_ms : 200;
    char body[200];
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    int rc = 1;

    if (!c) {
        snprintf(st->last_error, sizeof(st->last_error), "curl_easy_init failed");
        return 1;
    }
    h = curl_slist_append(h, "Content-Type: application/x-protobuf");
    h = curl_slist_append(h, "Content-Encoding: snappy");
    h = curl_slist_append(h, "X-Prometheus-Remote-Write-Version: 0.1.0");
    h = curl_slist_append(h, "User-Agent: stoke-query");
    curl_easy_setopt(c, CURLOPT_URL, o->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, buf);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(o->timeout_ms ? o->timeout_ms : 10000));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)body);
    for (unsigned attempt = 0;; attempt++) {
        long code = 0;
        body[0] = '\0';
        st->requests++;
        CURLcode cr = curl_easy_perform(c);
        if (cr == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (cr == CURLE_OK && code >= 200 && code < 300) {
            rc = 0;
            break;
        }
        if (cr != CURLE_OK)
            snprintf(st->last_error, sizeof(st->last_error), "%s: %s", o->url,
                     curl_easy_strerror(cr));
        else
            snprintf(st->last_error, sizeof(st->last_error), "%s: HTTP %ld: %.150s", o->url, code,
                     body);
        st->last_error[strcspn(st->last_error, "\n")] = '\0';
        bool again = cr != CURLE_OK || code >= 500 || code == 429;
        if (!again)
            break;
        if (attempt >= o->retries) {
            rc = 2;
            break;
        }
        st->retries++;
        sleep_ms(wait);
        wait = wait * 2 > RW_MAX_BACKOFF_MS ? RW_MAX_BACKOFF_MS : wait * 2;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

int rw_send(const struct rw_opts *o, const struct rec_series *s, size_t n, struct rw_stats *st)
{
    bool down = false;

    for (size_t i = 0; i < n;) {
        size_t j = i, samples = 0;
        while (j < n && (j == i || samples + s[j].n <= RW_MAX_SAMPLES))
            samples += s[j++].n;
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc = rw_encode(s + i, j - i, &buf, &len);
        if (rc == -ENOMEM)
            return rc;
        /* A receiver that stayed down through one request's retries is
         * not waited for again: the rest are dropped at once, so a pass
         * costs at most one round of back-off. */
        int pr = rc || down ? 1 : post(o, buf, len, st);
        down |= pr == 2;
        if (pr)
            st->samples_dropped += samples;
        else
            st->samples_sent += samples;
        free(buf);
        i = j;
    }
    return 0;
}
