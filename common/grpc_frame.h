/* SPDX-License-Identifier: Apache-2.0 */
/*
 * grpc_frame — what both ends of a unary gRPC call put around a message,
 * shared by the receiver's gRPC side (ingest/grpc.c) and the OTLP/gRPC
 * exporter (exporter/http_push.c): the 5-byte length prefix (a compressed
 * flag, then the length big-endian), grpc-message's percent-encoding, the
 * grpc-status codes, grpc-status-details-bin's google.rpc.Status with a
 * RetryInfo (what says a RESOURCE_EXHAUSTED is worth retrying, and when:
 * the OTLP specification's throttling), and the one method Stoke speaks
 * (OTLP profiles' Export). HTTP/2 itself is a library's (libnghttp2 on the receiver,
 * libcurl's nghttp2 in the exporter), never this module's.
 */
#ifndef STOKE_COMMON_GRPC_FRAME_H
#define STOKE_COMMON_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define GRPC_EXPORT_PATH                                                                           \
    "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"

/* grpc-status codes (grpc/doc/statuscodes.md) */
enum {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
};

/* The code's name ("UNAVAILABLE"), "UNKNOWN" past the table. */
const char *grpc_code_name(unsigned code);

/* The message length a 5-byte prefix @p announces. */
uint32_t grpc_frame_len(const uint8_t *p);

/* Writes the 5-byte prefix of a message of @len bytes into @out. */
void grpc_frame_prefix(uint8_t out[5], bool compressed, uint32_t len);

/* The one message of a unary request body @p/@n: 0 with the message in *@msg, *@len and
 * *@compressed; -EFBIG when its length is past @max (the prefix alone may
 * say so), -EBADMSG when the body is not exactly one message (@err says
 * why). */
int grpc_unframe(const uint8_t *p, size_t n, size_t max, const uint8_t **msg, size_t *len,
                 bool *compressed, char *err, size_t errlen);

/* grpc-message's percent-encoding of @s into @out (always terminated). */
void grpc_percent_encode(const char *s, char *out, size_t outlen);

/* The reverse, of @n bytes from the network, into @out (always
 * terminated, cut at @outlen): a malformed escape is kept as it is, and
 * control characters (decoded or not) become '?', so the result can go
 * to a log as it is. */
void grpc_percent_decode(const char *s, size_t n, char *out, size_t outlen);

/* google.rpc.RetryInfo's type_url in a Status' details */
#define GRPC_RETRY_INFO_TYPE "type.googleapis.com/google.rpc.RetryInfo"
/* the longest grpc-status-details-bin value read (base64) */
#define GRPC_DETAILS_MAX 8192

/* Appends to @out the grpc-status-details-bin value (base64 without
 * padding, as gRPC sends it) of a google.rpc.Status {@code, @message,
 * details: [RetryInfo {retry_delay: @retry_s seconds}]}. out->err says
 * when memory ran out. */
void grpc_status_details(struct wbuf *out, unsigned code, const char *message, unsigned retry_s);

/* The RetryInfo of a grpc-status-details-bin value @v/@n (any bytes from
 * the network; base64 padded or not): 0 with its retry_delay in *@ms (a
 * negative delay as 0, at most @max_ms), -ENOENT when the Status has no
 * RetryInfo, -EBADMSG when @v is not the base64 of a Status or is longer
 * than GRPC_DETAILS_MAX. */
int grpc_status_retry_ms(const char *v, size_t n, unsigned max_ms, unsigned *ms);

#endif
