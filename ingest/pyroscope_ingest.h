/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pyroscope_ingest — Pyroscope's push APIs: POST /ingest, as its SDKs use
 * it: the query string (name, format, from, until, sampleRate, spyName,
 * units) and the body (pprof raw or gzip, alone or as the Go SDK's
 * multipart/form-data with a `profile` part; folded stacks) turned into a
 * batch; and the Connect push.v1.PusherService/Push (ingest_pyroscope_push).
 *
 * name is `app[.type]{k=v,...}`: the application is the service (a
 * Pyroscope profile-type suffix such as .cpu or .alloc_objects is cut, as
 * Pyroscope does: the pprof says the type), the braces hold labels
 * (names [A-Za-z_][A-Za-z0-9_.]*, '.' stored as '_'; values without ',',
 * '}' and control characters). A `service_name` label overrides the
 * application; `__name__` is refused.
 *
 * Each format is one function from a body to profiles; format=jfr (the
 * recording alone, or multipart `jfr` + `labels` parts as Pyroscope's Java
 * agent sends them) is codec/jfr.c's conversion, one profile per kind of
 * event.
 */
#ifndef STOKE_INGEST_PYROSCOPE_H
#define STOKE_INGEST_PYROSCOPE_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/batch.h"

#define PYRO_MAX_LABELS 64
#define PYRO_MAX_NAME   4096

/* Parses @name into the service (malloc'd into the batch) and labels
 * (service_name first). 0 or -EINVAL with @err. */
int pyro_parse_name(struct ingest_batch *b, const char *name, const char **service,
                    struct seg_label *labels, size_t *nlabels, char *err, size_t errlen);

struct multipart_part {
    const char *name; /* into the batch */
    const char *filename;
    const uint8_t *data; /* into the body */
    size_t len;
};
#define MULTIPART_MAX_PARTS 16

/* Splits a multipart/form-data @body by the boundary of @content_type.
 * 0, or -EINVAL with @err (no boundary, a part without a name, no closing
 * delimiter). */
int multipart_parse(struct ingest_batch *b, const char *content_type, const uint8_t *body,
                    size_t len, struct multipart_part *parts, size_t *nparts, char *err,
                    size_t errlen);

/* A gzip or plain pprof body unpacked into the batch (kept there).
 * @max_decoded caps the decompressed size. 0, -EBADMSG / -EFBIG with @err. */
int pyro_pprof(struct ingest_batch *b, const uint8_t *body, size_t len, size_t max_decoded,
               Perftools__Profiles__Profile **out, char *err, size_t errlen);

/* The request's parameters by name (NULL = absent). */
typedef const char *(*pyro_param_fn)(void *ctx, const char *name);

/*
 * The whole /ingest request into @b. Returns 0; -EINVAL (400: a bad
 * parameter or body), -EPROTONOSUPPORT (415: a format not supported:
 * trie, tree, lines), -EFBIG (413: decoded past @max_decoded), or
 * -ENOMEM, always with @err.
 */
int ingest_pyroscope(struct ingest_batch *b, pyro_param_fn param, void *ctx,
                     const char *content_type, const uint8_t *body, size_t len, size_t max_decoded,
                     int64_t now_ms, char *err, size_t errlen);

/*
 * Pyroscope's Connect API, POST /push.v1.PusherService/Push: a PushRequest
 * (protobuf) of series, each a label set and raw pprof samples (gzip or
 * not). The service is the series' service_name label (required); __name__
 * and other labels starting with "__" are Pyroscope's own and dropped (the
 * pprof names its types); label names as in a name{...}. 0, -EINVAL (400),
 * -EFBIG (413) or -ENOMEM, with @err.
 */
#define PUSH_MAX_SAMPLES 1024
int ingest_pyroscope_push(struct ingest_batch *b, const uint8_t *body, size_t len,
                          size_t max_decoded, int64_t now_ms, char *err, size_t errlen);
/* The same PushRequest in Connect's JSON (application/json: the protobuf
 * JSON mapping, raw_profile as base64). -EFBIG past PBJSON_MAX_VALUES too. */
int ingest_pyroscope_push_json(struct ingest_batch *b, const uint8_t *body, size_t len,
                               size_t max_decoded, int64_t now_ms, char *err, size_t errlen);

#endif
