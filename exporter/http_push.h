/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_push — one background sender of HTTP POST requests (libcurl), shared
 * by the push exporters (OTLP profiles, Pyroscope /ingest).
 *
 * Owns: a bounded queue of finished request bodies (items and bytes capped;
 * when full, the oldest request is dropped and counted) and one thread that
 * sends them in order. The window loop only queues: it never waits on the
 * network.
 *
 * Retry policy, per request: 2xx done; 413 dropped at once (the body will
 * never fit); 429 and 5xx and transport errors (refused, reset, timeout,
 * garbage) retried with exponential back-off and full jitter (1 s .. 30 s,
 * or the server's Retry-After in seconds, at most 60 s), up to max_attempts
 * attempts, then dropped; any other status dropped at once. Every drop is
 * counted. Credentials are passed to libcurl and never logged.
 *
 * gRPC (opts.grpc, OTLP/gRPC): the same queue, thread and policy over a
 * unary call: HTTP/2 (prior knowledge for http://, ALPN h2 for https://,
 * libcurl's nghttp2), the body framed with gRPC's 5-byte prefix
 * (compressed flag under grpc-encoding), TE: trailers and grpc-timeout;
 * the call's code is grpc-status from the headers or trailers (libcurl
 * hands both to the header callback), else gRPC's mapping of the HTTP
 * status. Codes OpenTelemetry's exporters retry (CANCELLED,
 * DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS) and
 * transport errors are retried with the same back-off; RESOURCE_EXHAUSTED
 * only when grpc-status-details-bin carries a google.rpc.RetryInfo (the
 * OTLP specification's "the server can recover": a receiver's busy
 * answer, not its message-too-large one); every other code drops the
 * request at once. A RetryInfo's retry_delay (at most 60 s) is waited
 * when longer than the back-off. OK hands the one response message,
 * unframed (and gunzipped), to on_success.
 */
#ifndef STOKE_HTTP_PUSH_H
#define STOKE_HTTP_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum push_verdict { PUSH_DONE, PUSH_RETRY, PUSH_DROP };

/* What to do after an attempt: @status is the HTTP status, 0 when the
 * transfer failed (no valid HTTP answer). */
enum push_verdict http_push_classify(long status);

/* What to do after a gRPC call ended with @code (grpc-status; -1 when
 * there was no answer at all); @retry_info: the answer carried a
 * RetryInfo. */
enum push_verdict grpc_push_classify(int code, bool retry_info);

/* gRPC's answer as it arrives: header lines and trailers, one at a time. */
struct grpc_answer {
    int code;          /* grpc-status; -1 until one is seen */
    char message[256]; /* grpc-message, percent-decoded, no control characters */
    bool gzip;         /* grpc-encoding: gzip (a compressed response message) */
    bool retry_info;   /* grpc-status-details-bin held a RetryInfo ... */
    unsigned retry_ms; /* ... of this delay (at most 60 s) */
};
void grpc_answer_init(struct grpc_answer *a);
/* Reads one "Name: value\r\n" line (any bytes from the network). */
void grpc_answer_header(struct grpc_answer *a, const char *line, size_t n);
/* The call's code: grpc-status when sent, else gRPC's mapping of the
 * HTTP @status (a 200 without one: INTERNAL), -1 for no answer at all
 * (@status 0). */
int grpc_answer_code(const struct grpc_answer *a, long status);
/* An OK call's one response message in @body/@n (any bytes): unframed, and
 * gunzipped when compressed under grpc-encoding gzip (at most 64 KiB),
 * into *@msg and *@len; *@plain is what to free (NULL when nothing was
 * allocated). 0, or -EBADMSG when the body is not one such message. */
int grpc_answer_message(const struct grpc_answer *a, const uint8_t *body, size_t n,
                        const uint8_t **msg, size_t *len, uint8_t **plain);

/* A Retry-After value (delta-seconds only) as milliseconds, capped at 60 s;
 * 0 when absent or not a number. */
unsigned http_retry_after_ms(const char *value, size_t len);

struct http_push_opts {
    const char *name;           /* for logs and errors: "otlp", "pyroscope" */
    bool grpc;                  /* unary gRPC calls instead of POSTs (see above) */
    unsigned timeout_ms;        /* per attempt (10000 when 0) */
    unsigned max_attempts;      /* (5 when 0) */
    size_t max_queue;           /* requests waiting (32 when 0) */
    size_t max_queue_bytes;     /* (32 MiB when 0) */
    const char *const *headers; /* "Name: value" lines, copied */
    size_t nheaders;
    const char *user, *password; /* basic auth, or NULL */
    const char *bearer;          /* Authorization: Bearer, or NULL */
    /* Called on the sender thread for a 2xx answer with its body. Returns
     * how many items the server rejected (>= 0), or a negative value when
     * the body is not what it should be (counted as a bad response). */
    int64_t (*on_success)(void *ctx, const uint8_t *body, size_t len);
    void *ctx;
};

struct http_push_stats {
    uint64_t sent, bytes_sent; /* requests accepted (2xx) */
    uint64_t failed_attempts;  /* attempts that did not succeed (retried or not) */
    uint64_t dropped;          /* requests given up: queue full, 413, 4xx, retries exhausted */
    uint64_t items_dropped;    /* what those requests held (profiles) */
    uint64_t rejected;         /* items refused in a 2xx (partial success) */
    uint64_t bad_responses;    /* 2xx whose body could not be read */
    uint64_t queued;           /* waiting now */
    long last_status;          /* HTTP status; with grpc, the last call's code */
};

struct http_push;

/* Starts the sender thread. NULL with a message in @err. */
struct http_push *http_push_new(const struct http_push_opts *o, char *err, size_t errlen);

/* Queues one POST of @body (taken over: freed by the sender) to @url
 * (copied). @content_type and @content_encoding (may be NULL) are static
 * strings; with grpc, @body is the message (framed here) and
 * @content_encoding its grpc-encoding. @items is what the body holds, for the drop counts. Never
 * blocks on the network. 0 or -ENOMEM (the body is freed then too). */
int http_push_submit(struct http_push *h, const char *url, const char *content_type,
                     const char *content_encoding, uint8_t *body, size_t len, uint64_t items);

void http_push_get_stats(struct http_push *h, struct http_push_stats *out);

/* Gives the queue up to @timeout_ms to empty, then stops the thread (what
 * is left is dropped and counted); the stats are final then, and still
 * readable until http_push_free. Once only; later calls do nothing. */
void http_push_drain(struct http_push *h, unsigned timeout_ms);

/* http_push_drain (when not done yet), then frees. */
void http_push_free(struct http_push *h, unsigned timeout_ms);

#endif
