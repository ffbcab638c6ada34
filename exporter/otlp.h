/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otlp — a window's profiles as one OTLP profiles request
 * (ExportProfilesServiceRequest, opentelemetry-proto v1.10 wire format,
 * proto/otlp/), and the reading of the server's answer.
 *
 * Owns: the request's shared ProfilesDictionary, deduplicated across every
 * service of the window (strings, mappings keyed by file + build-id,
 * functions, locations, stacks, attributes), and one ResourceProfiles per
 * service: Resource attributes are the labels every sample of the service
 * shares, renamed to the OpenTelemetry semantic conventions (service.name,
 * host.name, container.id, k8s.pod.uid, process.executable.name,
 * process.pid, ...); labels that vary within the service become sample
 * attributes. One Profile per service: sample_type and period_type
 * cpu/nanoseconds, period = the sampling period, values in nanoseconds
 * (samples x period, as the pprof's cpu column), time_unix_nano and
 * duration_nano = the window, build-ids as the mapping attribute
 * process.executable.build_id.gnu. Every dictionary table holds its zero
 * value at index 0; string_table[0] is "".
 */
#ifndef STOKE_OTLP_H
#define STOKE_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "exporter/profile.h"

struct otlp_batch;

/* Allocates an empty request; free with otlp_batch_free. NULL on ENOMEM. */
struct otlp_batch *otlp_batch_new(void);
void otlp_batch_free(struct otlp_batch *b);

/* Adds @p as one ResourceProfiles (copies what it needs; @p may be freed
 * afterwards). Profiles without samples are skipped. 0 or -errno. */
int otlp_batch_add(struct otlp_batch *b, const struct profile *p);

size_t otlp_batch_nprofiles(const struct otlp_batch *b);

/* Encodes the request (uncompressed protobuf) into a malloc'd buffer.
 * 0 or -errno. */
int otlp_batch_encode(const struct otlp_batch *b, uint8_t **out, size_t *outlen);

/* The OpenTelemetry attribute name of a Stoke label (service_name ->
 * service.name, ...); the label name itself when there is none. *@is_int
 * says whether the value is sent as an integer (process.pid, thread.id). */
const char *otlp_attr_name(const char *label, int *is_int);

/* The reverse: the Stoke label of an OpenTelemetry attribute name
 * (service.name -> service_name), or NULL when there is none. */
const char *otlp_label_name(const char *attr);

/*
 * Reads an ExportProfilesServiceResponse body (from the network: any bytes).
 * An empty body is a full success. Returns 0 with *@rejected (>= 0) and
 * @msg (NUL-terminated, truncated, control characters replaced) filled,
 * or -EBADMSG when the body is not such a message.
 */
int otlp_response_parse(const uint8_t *body, size_t len, int64_t *rejected, char *msg,
                        size_t msglen);

#endif

/* ---- sending ---------------------------------------------------------------
 * One request per window (every service in it), gzip, through http_push:
 * OTLP/HTTP, a POST to <endpoint>/v1development/profiles; or OTLP/gRPC,
 * a ProfilesService/Export call on <endpoint> (grpc-encoding gzip). The
 * same encoder, queue and retry policy either way; partial successes are
 * counted (rejected) and their message logged at most once a minute. */

struct http_push_stats;
struct otlp_exporter;

struct otlp_exporter_opts {
    const char *endpoint;       /* base URL; the path is appended unless given */
    bool grpc;                  /* OTLP/gRPC rather than OTLP/HTTP */
    const char *const *headers; /* "Name: value" */
    size_t nheaders;
    unsigned timeout_ms;
};

struct otlp_exporter *otlp_exporter_new(const struct otlp_exporter_opts *o, char *err,
                                        size_t errlen);
/* Encodes, compresses and queues @b (not taken over). 0 or -errno. */
int otlp_exporter_send(struct otlp_exporter *e, const struct otlp_batch *b);
void otlp_exporter_get_stats(struct otlp_exporter *e, struct http_push_stats *out);
/* Sends what is queued (up to @timeout_ms) and stops: the stats are final
 * (http_push_drain). */
void otlp_exporter_drain(struct otlp_exporter *e, unsigned timeout_ms);
void otlp_exporter_free(struct otlp_exporter *e, unsigned timeout_ms);
