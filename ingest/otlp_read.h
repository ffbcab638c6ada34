/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otlp_read — the receiving side of OTLP profiles: an
 * ExportProfilesServiceRequest (opentelemetry-proto v1development, the
 * wire format exporter/otlp.c writes) turned into one pprof message per
 * Profile, ready for the segment writer.
 *
 * Mapping: the service is the resource's service.name ("unknown_service"
 * without one, as the OpenTelemetry SDKs name it); resource, scope-less
 * profile and sample attributes become labels, OpenTelemetry names turned
 * back into Stoke's (host.name -> host_name, exporter/otlp.c's table) and
 * other names with '.' and '-' as '_' (what a Prometheus-style selector
 * can name). The shared dictionary becomes every pprof's tables: location
 * index i is pprof location id i + 1, function index i > 0 is function
 * id i (a line naming function 0, the zero value, is left out), mapping
 * index i > 0 is mapping id i, the mapping attribute
 * process.executable.build_id.gnu (or .htlhash) its build_id. A sample's
 * value is values[0], or the number of timestamps when it has no values.
 *
 * The JSON encoding (otlp_read_json) is the protobuf JSON mapping with
 * OTLP's exceptions (common/pbjson.h): trace_id, span_id and profile_id
 * in hex; enums as numbers (names are taken too); 64-bit integers as
 * strings or numbers; lowerCamelCase names; unknown fields ignored. It
 * decodes into the same message the protobuf path unpacks, so both give
 * the same profiles.
 *
 * A Profile whose indexes point outside the dictionary is rejected alone
 * and counted (the spec's partial success); a body that is not the
 * message is refused whole.
 */
#ifndef STOKE_INGEST_OTLP_READ_H
#define STOKE_INGEST_OTLP_READ_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/batch.h"

/* Decodes @body into @b (profiles appended; b->rejected counts the left
 * out ones, b->why_rejected says why). @now_ms stands in for a profile
 * without a time. 0, -EBADMSG (not an ExportProfilesServiceRequest) or
 * -ENOMEM, with @err. */
int otlp_read(const uint8_t *body, size_t len, int64_t now_ms, struct ingest_batch *b, char *err,
              size_t errlen);

/* The same from OTLP/HTTP's JSON encoding: 0, -EBADMSG (not JSON, or a
 * field of the wrong type, named in @err), -EFBIG (more JSON values than
 * PBJSON_MAX_VALUES) or -ENOMEM. */
int otlp_read_json(const uint8_t *body, size_t len, int64_t now_ms, struct ingest_batch *b,
                   char *err, size_t errlen);

#endif
