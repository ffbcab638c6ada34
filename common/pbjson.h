/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pbjson — the protobuf JSON mapping (proto3 "JSON Mapping") for any
 * protobuf-c message, driven by its descriptors: what the query workers'
 * Connect API and the receiver's JSON bodies (OTLP/HTTP JSON, Connect
 * Push) both speak.
 *
 * Rules: field names in lowerCamelCase on output, original or
 * lowerCamelCase names on input; 64-bit integers as strings on output,
 * strings or numbers on input; enums as names on output, names or numbers
 * on input; bytes as base64 (standard or URL-safe, padding optional) —
 * or, for the fields the caller names, as hex (OTLP's exception for
 * trace_id, span_id and profile_id); default values left out; unknown
 * fields and unknown enum names ignored. Decoded messages are allocated
 * with malloc in the layout protobuf-c's own unpacker uses, so
 * protobuf_c_message_free_unpacked(m, NULL) frees either kind.
 *
 * The input is hostile: nesting is bounded (max_depth), and so is the
 * number of JSON values (max_values, counted before cJSON builds its tree,
 * which costs about 64 bytes a value).
 */
#ifndef STOKE_COMMON_PBJSON_H
#define STOKE_COMMON_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define PBJSON_MAX_DEPTH  32
#define PBJSON_MAX_VALUES (1u << 20)

struct pbjson_opts {
    const char *const *hex_fields; /* NULL-terminated proto field names; NULL: none */
    int max_depth;                 /* PBJSON_MAX_DEPTH when 0 */
    size_t max_values;             /* PBJSON_MAX_VALUES when 0 */
};

/* Decodes @buf (a JSON object) as message @md into *out. @o may be NULL.
 * 0; -EINVAL with the problem in @err (the byte offset of a syntax error,
 * or the field and what is wrong with it); -EFBIG past max_values; or
 * -ENOMEM. */
int pbjson_decode(const ProtobufCMessageDescriptor *md, const uint8_t *buf, size_t len,
                  const struct pbjson_opts *o, ProtobufCMessage **out, char *err, size_t errlen);

/* Appends the JSON form of @m to @out. */
void pbjson_encode(const ProtobufCMessage *m, struct wbuf *out);

#endif
