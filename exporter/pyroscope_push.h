/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pyroscope_push — each window's per-service pprof to Pyroscope's classic
 * ingest API: POST <url>/ingest?name=<app>{labels}&from=&until=&format=pprof
 * &spyName=stoke&sampleRate=<Hz>, the gzip pprof as the raw body (what
 * Pyroscope reads when the request is not a multipart form). The
 * application name is the service name (Pyroscope makes it service_name;
 * __name__ comes from the pprof's cpu sample type: process_cpu, profile type
 * process_cpu:cpu:nanoseconds:cpu:nanoseconds); the labels are those every
 * sample of the service shares. Tenant (X-Scope-OrgID) and basic or bearer
 * auth are set per exporter. Sending is http_push's.
 */
#ifndef STOKE_PYROSCOPE_PUSH_H
#define STOKE_PYROSCOPE_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "exporter/profile.h"

struct http_push_stats;
struct pyroscope_push;

struct pyroscope_push_opts {
    const char *url;    /* base URL of the server */
    const char *org_id; /* X-Scope-OrgID, or NULL */
    const char *user;   /* basic auth, or NULL */
    const char *password;
    const char *bearer; /* or NULL */
    unsigned timeout_ms;
    unsigned sample_rate; /* Hz */
};

struct pyroscope_push *pyroscope_push_new(const struct pyroscope_push_opts *o, char *err,
                                          size_t errlen);

/* Builds the /ingest URL for @p into @out. 0, or -ENAMETOOLONG. */
int pyroscope_ingest_url(const char *base, const struct profile *p, unsigned sample_rate, char *out,
                         size_t outlen);

/* Encodes and queues one profile. 0 or -errno. */
int pyroscope_push_add(struct pyroscope_push *pp, const struct profile *p);
void pyroscope_push_get_stats(struct pyroscope_push *pp, struct http_push_stats *out);
/* Sends what is queued (up to @timeout_ms) and stops: the stats are final
 * (http_push_drain). */
void pyroscope_push_drain(struct pyroscope_push *pp, unsigned timeout_ms);
void pyroscope_push_free(struct pyroscope_push *pp, unsigned timeout_ms);

#endif
