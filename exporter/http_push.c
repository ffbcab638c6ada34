/* SPDX-License-Identifier: Apache-2.0 */
/* http_push — see http_push.h. */
#include "exporter/backoff.h"
#include "exporter/http_push.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"

#define BACKOFF_MIN_MS  1000u
#define BACKOFF_MAX_MS  30000u
#define RETRY_AFTER_MAX 60000u
#define RESPONSE_MAX    (64u * 1024)
#define LOG_INTERVAL_NS (10ull * 1000000000ull)

struct request {
    struct request *next;
    char *url;
    const char *content_type, *content_encoding;
    uint8_t *body;
    size_t len;
    uint64_t items;
};

struct http_push {
    struct http_push_opts o;
    char *name;
    struct curl_slist *headers; /* the fixed ones */
    char *user, *password;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct request *head, *tail;
    size_t nqueued, bytes_queued;
    bool stop;
    uint64_t stop_deadline_ns; /* CLOCK_MONOTONIC; valid when stop */
    struct http_push_stats st;
    uint64_t last_log_ns;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

enum push_verdict http_push_classify(long status)
{
    if (status >= 200 && status < 300)
        return PUSH_DONE;
    if (status == 0 || status == 408 || status == 429 || status >= 500)
        return PUSH_RETRY;
    return PUSH_DROP; /* 413 and every other client error: sending again cannot help */
}

unsigned http_retry_after_ms(const char *v, size_t len)
{
    unsigned long long s = 0;
    size_t i = 0;

    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    if (i == len || v[i] < '0' || v[i] > '9')
        return 0; /* an HTTP-date, or nothing: our own back-off applies */
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
        s = s * 10 + (unsigned)(v[i] - '0');
        if (s > RETRY_AFTER_MAX / 1000)
            return RETRY_AFTER_MAX;
    }
    return (unsigned)(s * 1000);
}

static void request_free(struct request *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->body);
    free(r);
}

/* Called with mu held. */
static void count_drop(struct http_push *h, const struct request *r, const char *why)
{
    uint64_t now = mono_ns();

    h->st.dropped++;
    h->st.items_dropped += r->items;
    if (!h->last_log_ns || now - h->last_log_ns >= LOG_INTERVAL_NS) {
        h->last_log_ns = now;
        log_warn("%s: dropped a request of %llu profiles (%s); %llu dropped so far", h->name,
                 (unsigned long long)r->items, why, (unsigned long long)h->st.dropped);
    }
}

struct response {
    uint8_t *buf;
    size_t len;
    unsigned retry_after_ms;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct response *r = ud;
    size_t n = size * nmemb, room = RESPONSE_MAX - r->len;

    if (n > room)
        n = room; /* the rest is ignored, not an error: the status decides */
    memcpy(r->buf + r->len, ptr, n);
    r->len += n;
    return size * nmemb;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    struct response *r = ud;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";

    if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0)
        r->retry_after_ms = http_retry_after_ms(buf + sizeof(name) - 1, n - (sizeof(name) - 1));
    return n;
}

/* One attempt. Returns the HTTP status, 0 on a transport error. */
static long attempt(struct http_push *h, CURL *c, const struct request *rq, struct response *resp)
{
    struct curl_slist *hdrs = NULL, *l;
    char line[128];
    long status = 0;
    CURLcode rc;

    for (l = h->headers; l; l = l->next)
        if (!(hdrs = curl_slist_append(hdrs, l->data)))
            goto oom;
    snprintf(line, sizeof(line), "Content-Type: %s", rq->content_type);
    if (!(hdrs = curl_slist_append(hdrs, line)))
        goto oom;
    if (rq->content_encoding) {
        snprintf(line, sizeof(line), "Content-Encoding: %s", rq->content_encoding);
        if (!(hdrs = curl_slist_append(hdrs, line)))
            goto oom;
    }
    if (!(hdrs = curl_slist_append(hdrs, "Expect:"))) /* no 100-continue round trip */
        goto oom;
    resp->len = 0;
    resp->retry_after_ms = 0;
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)rq->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        log_debug("%s: %s", h->name, curl_easy_strerror(rc));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
oom:
    curl_slist_free_all(hdrs);
    return status;
}

/* Sleeps @ms or until the stop deadline; false when the deadline passed. */
static bool backoff_wait(struct http_push *h, unsigned ms)
{
    uint64_t until = mono_ns() + (uint64_t)ms * 1000000ull;
    bool ok = true;

    pthread_mutex_lock(&h->mu);
    for (;;) {
        uint64_t now = mono_ns(), end = until;
        if (h->stop && h->stop_deadline_ns < end)
            end = h->stop_deadline_ns;
        if (now >= end) {
            ok = !(h->stop && now >= h->stop_deadline_ns);
            break;
        }
        struct timespec ts = {.tv_sec = (time_t)(end / 1000000000ull),
                              .tv_nsec = (long)(end % 1000000000ull)};
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static void *sender(void *arg)
{
    struct http_push *h = arg;
    struct response resp = {0};
    CURL *c = curl_easy_init();

    resp.buf = malloc(RESPONSE_MAX);
    if (c) {
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->o.timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->o.timeout_ms);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "stoke-agent");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp);
        if (h->user) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERNAME, h->user);
            curl_easy_setopt(c, CURLOPT_PASSWORD, h->password ? h->password : "");
        }
    }
    for (;;) {
        struct request *rq;

        pthread_mutex_lock(&h->mu);
        while (!h->head && !h->stop)
            pthread_cond_wait(&h->cv, &h->mu);
        rq = h->head;
        if (!rq || (h->stop && mono_ns() >= h->stop_deadline_ns) || !c || !resp.buf) {
            pthread_mutex_unlock(&h->mu);
            break;
        }
        h->head = rq->next;
        if (!h->head)
            h->tail = NULL;
        h->nqueued--;
        h->bytes_queued -= rq->len;
        h->st.queued = h->nqueued;
        pthread_mutex_unlock(&h->mu);

        unsigned backoff = 0, tries = 0;
        for (;;) {
            long status = attempt(h, c, rq, &resp);
            enum push_verdict v = http_push_classify(status);
            int64_t rejected = 0;

            tries++;
            if (v == PUSH_DONE && h->o.on_success)
                rejected = h->o.on_success(h->o.ctx, resp.buf, resp.len);
            pthread_mutex_lock(&h->mu);
            h->st.last_status = status;
            if (v == PUSH_DONE) {
                h->st.sent++;
                h->st.bytes_sent += rq->len;
                if (rejected < 0)
                    h->st.bad_responses++;
                else
                    h->st.rejected += (uint64_t)rejected;
            } else {
                h->st.failed_attempts++;
                if (v == PUSH_DROP)
                    count_drop(h, rq, status == 413 ? "413: too large" : "refused by the server");
                else if (tries >= h->o.max_attempts)
                    count_drop(h, rq,
                               status ? "server errors, retries exhausted"
                                      : "endpoint unreachable, retries exhausted");
            }
            pthread_mutex_unlock(&h->mu);
            if (v != PUSH_RETRY || tries >= h->o.max_attempts)
                break;
            /* the server's Retry-After wins when it asks for longer */
            unsigned wait_ms = backoff_next(&backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
            if (resp.retry_after_ms > wait_ms)
                wait_ms = resp.retry_after_ms;
            if (!backoff_wait(h, wait_ms)) {
                pthread_mutex_lock(&h->mu);
                count_drop(h, rq, "shutting down");
                pthread_mutex_unlock(&h->mu);
                break;
            }
        }
        request_free(rq);
    }
    /* stopping: what is still queued is dropped, and counted */
    pthread_mutex_lock(&h->mu);
    while (h->head) {
        struct request *rq = h->head;
        h->head = rq->next;
        count_drop(h, rq, "shutting down");
        request_free(rq);
    }
    h->tail = NULL;
    h->nqueued = h->bytes_queued = 0;
    h->st.queued = 0;
    pthread_mutex_unlock(&h->mu);
    free(resp.buf);
    if (c)
        curl_easy_cleanup(c);
    return NULL;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_rc;

static void curl_init(void)
{
    curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_push *http_push_new(const struct http_push_opts *o, char *err, size_t errlen)
{
    struct http_push *h = calloc(1, sizeof(*h));
    pthread_condattr_t ca;
    char line[4096];

    pthread_once(&curl_once, curl_init);
    if (curl_rc != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init failed");
        free(h);
        return NULL;
    }
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->o = *o;
    h->o.headers = NULL;
    h->o.user = h->o.password = h->o.bearer = NULL;
    if (!h->o.timeout_ms)
        h->o.timeout_ms = 10000;
    if (!h->o.max_attempts)
        h->o.max_attempts = 5;
    if (!h->o.max_queue)
        h->o.max_queue = 32;
    if (!h->o.max_queue_bytes)
        h->o.max_queue_bytes = 32u << 20;
    h->name = strdup(o->name ? o->name : "push");
    h->user = o->user ? strdup(o->user) : NULL;
    h->password = o->password ? strdup(o->password) : NULL;
    bool ok = h->name && (!o->user || h->user) && (!o->password || h->password);
    for (size_t i = 0; ok && i < o->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(h->headers, o->headers[i]);
        ok = n != NULL;
        if (n)
            h->headers = n;
    }
    if (ok && o->bearer) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", o->bearer);
        struct curl_slist *n = curl_slist_append(h->headers, line);
        ok = n != NULL;
        if (n)
            h->headers = n;
        explicit_bzero(line, sizeof(line));
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!ok || pthread_create(&h->thread, NULL, sender, h) != 0) {
        snprintf(err, errlen, "%s: cannot start the sender", h->name ? h->name : "push");
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        curl_slist_free_all(h->headers);
        free(h->name);
        free(h->user);
        free(h->password);
        free(h);
        return NULL;
    }
    return h;
}

int http_push_submit(struct http_push *h, const char *url, const char *content_type,
                     const char *content_encoding, uint8_t *body, size_t len, uint64_t items)
{
    struct request *r = calloc(1, sizeof(*r));

    if (!r || !(r->url = strdup(url))) {
        free(r);
        free(body);
        return -ENOMEM;
    }
    r->content_type = content_type;
    r->content_encoding = content_encoding;
    r->body = body;
    r->len = len;
    r->items = items;
    pthread_mutex_lock(&h->mu);
    if (h->tail)
        h->tail->next = r;
    else
        h->head = r;
    h->tail = r;
    h->nqueued++;
    h->bytes_queued += len;
    /* bounded: the oldest waiting requests make room (the newest data is
     * what a user looks at first) */
    while (h->head != r &&
           (h->nqueued > h->o.max_queue || h->bytes_queued > h->o.max_queue_bytes)) {
        struct request *old = h->head;
        h->head = old->next;
        h->nqueued--;
        h->bytes_queued -= old->len;
        count_drop(h, old, "queue full");
        request_free(old);
    }
    h->st.queued = h->nqueued;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

void http_push_get_stats(struct http_push *h, struct http_push_stats *out)
{
    pthread_mutex_lock(&h->mu);
    *out = h->st;
    pthread_mutex_unlock(&h->mu);
}

void http_push_free(struct http_push *h, unsigned timeout_ms)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    h->stop_deadline_ns = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    curl_slist_free_all(h->headers);
    free(h->name);
    free(h->user);
    if (h->password)
        explicit_bzero(h->password, strlen(h->password));
    free(h->password);
    free(h);
}
