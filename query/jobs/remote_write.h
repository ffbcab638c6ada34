/* SPDX-License-Identifier: Apache-2.0 */
/*
 * remote_write — sends recorded series (query/jobs/rules.h) to a Prometheus
 * remote-write receiver (protocol 1.0): a prometheus.WriteRequest
 * (proto/prometheus/remote.proto) packed by protobuf-c and compressed with
 * snappy's block format, POSTed with Content-Encoding: snappy.
 *
 * Reliability (DESIGN.md §7): a request that fails to connect, times out
 * or gets a 5xx or 429 is retried with exponential back-off (base doubling,
 * capped at RW_MAX_BACKOFF_MS) up to `retries` times; then, or at once on
 * any other 4xx (the receiver refuses the data itself, e.g. out-of-order
 * samples), its samples are dropped and counted. After one request went
 * through all its retries unanswered, the following ones are dropped
 * without being tried: a pass waits through one round of back-off at
 * most. Sending never fails its caller: compaction goes on whatever the
 * receiver does.
 */
#ifndef STOKE_QUERY_REMOTE_WRITE_H
#define STOKE_QUERY_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "query/jobs/rules.h"

#define RW_MAX_SAMPLES    5000 /* per request (a series alone may exceed it) */
#define RW_MAX_BACKOFF_MS 5000

/* Encodes @s[0..n) as one snappy-compressed WriteRequest into a malloc'd
 * *out. 0 or -ENOMEM. */
int rw_encode(const struct rec_series *s, size_t n, uint8_t **out, size_t *len);

struct rw_opts {
    const char *url;
    unsigned retries;    /* after the first attempt */
    unsigned backoff_ms; /* first wait; 0 = 200 */
    unsigned timeout_ms; /* per request; 0 = 10000 */
};

struct rw_stats {
    uint64_t requests, retries;
    uint64_t samples_sent, samples_dropped;
    char last_error[256];
};

/* Sends every series of @s in requests of at most RW_MAX_SAMPLES samples.
 * Adds to @st. Returns 0 even when samples were dropped (counted), or
 * -ENOMEM. */
int rw_send(const struct rw_opts *o, const struct rec_series *s, size_t n, struct rw_stats *st);

#endif
