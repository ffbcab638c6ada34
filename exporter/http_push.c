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

#include "common/grpc_frame.h"
#include "common/gzip.h"
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
    bool joined;               /* the sender thread is gone: the stats are final */
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

enum push_verdict grpc_push_classify(int code, bool retry_info)
{
    switch (code) {
    case GRPC_OK:
        return PUSH_DONE;
    case GRPC_RESOURCE_EXHAUSTED: /* busy (RetryInfo), or never to fit (none) */
        return retry_info ? PUSH_RETRY : PUSH_DROP;
    case -1: /* no answer: refused, reset, timed out */
    case GRPC_CANCELLED:
    case GRPC_DEADLINE_EXCEEDED:
    case GRPC_ABORTED:
    case GRPC_OUT_OF_RANGE:
    case GRPC_UNAVAILABLE:
    case GRPC_DATA_LOSS:
        return PUSH_RETRY;
    default:
        return PUSH_DROP; /* INVALID_ARGUMENT, UNAUTHENTICATED, UNIMPLEMENTED, ... */
    }
}

void grpc_answer_init(struct grpc_answer *a)
{
    a->code = -1;
    a->message[0] = '\0';
    a->gzip = false;
    a->retry_info = false;
    a->retry_ms = 0;
}

/* The value of header @name (lowercase, with the colon) in @line, trimmed;
 * NULL when @line is another header. */
static const char *header_value(const char *line, size_t n, const char *name, size_t *vlen)
{
    size_t k = strlen(name);

    if (n < k || strncasecmp(line, name, k) != 0)
        return NULL;
    line += k;
    n -= k;
    while (n && (*line == ' ' || *line == '\t'))
        line++, n--;
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
        n--;
    *vlen = n;
    return line;
}

void grpc_answer_header(struct grpc_answer *a, const char *line, size_t n)
{
    const char *v;
    size_t vn;

    if ((v = header_value(line, n, "grpc-status:", &vn))) {
        int code = 0;
        size_t i = 0;
        for (; i < vn && i < 3 && v[i] >= '0' && v[i] <= '9'; i++)
            code = code * 10 + (v[i] - '0');
        /* not a number: a broken answer, as gRPC's clients take it */
        a->code = i == vn && vn ? code : GRPC_UNKNOWN;
    } else if ((v = header_value(line, n, "grpc-message:", &vn))) {
        grpc_percent_decode(v, vn, a->message, sizeof(a->message));
    } else if ((v = header_value(line, n, "grpc-encoding:", &vn))) {
        a->gzip = vn == 4 && strncasecmp(v, "gzip", 4) == 0;
    } else if ((v = header_value(line, n, "grpc-status-details-bin:", &vn))) {
        unsigned ms;
        a->retry_info = grpc_status_retry_ms(v, vn, RETRY_AFTER_MAX, &ms) == 0;
        a->retry_ms = a->retry_info ? ms : 0;
    }
}

int grpc_answer_code(const struct grpc_answer *a, long status)
{
    if (a->code >= 0)
        return a->code;
    /* grpc/doc/http-grpc-status-mapping.md */
    switch (status) {
    case 0:
        return -1;
    case 200: /* an answer without grpc-status is broken */
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
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
    bool grpc;
    struct grpc_answer g;
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
    else if (r->grpc)
        grpc_answer_header(&r->g, buf, n); /* headers and trailers alike */
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
        snprintf(line, sizeof(line), "%s: %s", h->o.grpc ? "grpc-encoding" : "Content-Encoding",
                 rq->content_encoding);
        if (!(hdrs = curl_slist_append(hdrs, line)))
            goto oom;
    }
    if (h->o.grpc) {
        /* the server's deadline is ours; TE: trailers is gRPC's must */
        snprintf(line, sizeof(line), "grpc-timeout: %um", h->o.timeout_ms);
        if (!(hdrs = curl_slist_append(hdrs, line)) ||
            !(hdrs = curl_slist_append(hdrs, "TE: trailers")))
            goto oom;
    }
    if (!(hdrs = curl_slist_append(hdrs, "Expect:"))) /* no 100-continue round trip */
        goto oom;
    resp->len = 0;
    resp->retry_after_ms = 0;
    grpc_answer_init(&resp->g);
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

int grpc_answer_message(const struct grpc_answer *a, const uint8_t *body, size_t n,
                        const uint8_t **msg, size_t *len, uint8_t **plain)
{
    char err[128];
    bool z;

    *plain = NULL;
    if (grpc_unframe(body, n, RESPONSE_MAX, msg, len, &z, err, sizeof(err)) != 0) {
        log_debug("gRPC answer: %s", err);
        return -EBADMSG;
    }
    if (!z)
        return 0;
    if (!a->gzip || gzip_decompress(*msg, *len, RESPONSE_MAX, plain, len) != 0)
        return -EBADMSG; /* compressed without gzip, or damaged */
    *msg = *plain;
    return 0;
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
        /* h2c with prior knowledge for http://; ALPN h2 for https:// */
        if (h->o.grpc)
            curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        /* libcurl before 8.0 fails every request but the first on a
         * reused prior-knowledge connection ("Error in the HTTP2 framing
         * layer", curl#10634; Debian 12 has 7.88): a connection per call
         * there, one per window, a handshake every few seconds at most */
        if (h->o.grpc && curl_version_info(CURLVERSION_NOW)->version_num < 0x080000)
            curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
        resp.grpc = h->o.grpc;
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
            int code = h->o.grpc ? grpc_answer_code(&resp.g, status) : 0;
            enum push_verdict v = h->o.grpc ? grpc_push_classify(code, resp.g.retry_info)
                                            : http_push_classify(status);
            int64_t rejected = 0;
            const uint8_t *msg = resp.buf;
            size_t msglen = resp.len;
            uint8_t *plain = NULL;
            char why[320];

            tries++;
            if (v == PUSH_DONE && h->o.grpc &&
                grpc_answer_message(&resp.g, resp.buf, resp.len, &msg, &msglen, &plain) != 0)
                rejected = -1;
            else if (v == PUSH_DONE && h->o.on_success)
                rejected = h->o.on_success(h->o.ctx, msg, msglen);
            free(plain);
            if (h->o.grpc && code > 0)
                snprintf(why, sizeof(why), "grpc-status %d %s: %s", code, grpc_code_name(code),
                         resp.g.message[0] ? resp.g.message : "(no message)");
            else
                snprintf(why, sizeof(why), "%s",
                         status == 413 ? "413: too large" : "refused by the server");
            if (v == PUSH_RETRY && code > 0)
                log_debug("%s: %s; retrying", h->name, why);
            pthread_mutex_lock(&h->mu);
            h->st.last_status = h->o.grpc ? code : status;
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
                    count_drop(h, rq, why);
                else if (tries >= h->o.max_attempts)
                    count_drop(h, rq,
                               status || code > 0 ? "server errors, retries exhausted"
                                                  : "endpoint unreachable, retries exhausted");
            }
            pthread_mutex_unlock(&h->mu);
            if (v != PUSH_RETRY || tries >= h->o.max_attempts)
                break;
            /* the server's Retry-After (or RetryInfo) wins when it asks for longer */
            unsigned wait_ms = backoff_next(&backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
            if (resp.retry_after_ms > wait_ms)
                wait_ms = resp.retry_after_ms;
            if (h->o.grpc && resp.g.retry_ms > wait_ms)
                wait_ms = resp.g.retry_ms;
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

    if (h->o.grpc) { /* one message, length-prefixed */
        uint8_t *framed = len <= UINT32_MAX ? realloc(body, len + 5) : NULL;
        if (!framed) {
            free(r);
            free(body);
            return -ENOMEM;
        }
        memmove(framed + 5, framed, len);
        grpc_frame_prefix(framed, content_encoding != NULL, (uint32_t)len);
        body = framed;
        len += 5;
    }
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

void http_push_drain(struct http_push *h, unsigned timeout_ms)
{
    if (!h || h->joined)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    h->stop_deadline_ns = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    h->joined = true;
}

void http_push_free(struct http_push *h, unsigned timeout_ms)
{
    if (!h)
        return;
    http_push_drain(h, timeout_ms);
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
