/* SPDX-License-Identifier: Apache-2.0 */
/*
 * connect — the Connect protocol's unary request/response framing for
 * stoke-query (https://connectrpc.com/docs/protocol): content types
 * (application/json, application/proto), error codes and their HTTP
 * statuses, the error body {"code": "...", "message": "..."}, and the
 * protobuf JSON mapping for any protobuf-c message.
 *
 * The JSON codec is common/pbjson.c's protobuf JSON mapping, driven by
 * protobuf-c's descriptors, so every message of proto/pyroscope/ (and
 * pprof's Profile) gets the same rules (pbjson.h lists them); decoded
 * messages free with protobuf_c_message_free_unpacked(m, NULL).
 */
#ifndef STOKE_QUERY_CONNECT_H
#define STOKE_QUERY_CONNECT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "query/serve/request.h"

#define CONNECT_MAX_BODY (4u << 20)

enum connect_code {
    CONNECT_CANCELED = 1,
    CONNECT_UNKNOWN,
    CONNECT_INVALID_ARGUMENT,
    CONNECT_DEADLINE_EXCEEDED,
    CONNECT_NOT_FOUND,
    CONNECT_ALREADY_EXISTS,
    CONNECT_PERMISSION_DENIED,
    CONNECT_RESOURCE_EXHAUSTED,
    CONNECT_FAILED_PRECONDITION,
    CONNECT_ABORTED,
    CONNECT_OUT_OF_RANGE,
    CONNECT_UNIMPLEMENTED,
    CONNECT_INTERNAL,
    CONNECT_UNAVAILABLE,
    CONNECT_DATA_LOSS,
    CONNECT_UNAUTHENTICATED,
};

enum connect_codec { CONNECT_JSON, CONNECT_PROTO };

/* "invalid_argument" etc. */
const char *connect_code_name(enum connect_code c);
/* The HTTP status the Connect spec gives the code. */
int connect_code_status(enum connect_code c);

/* Fills @r with a Connect error: the code's status (or @status when not 0)
 * and the JSON body. */
void connect_error(struct http_response *r, int status, enum connect_code c, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The codec of a Content-Type header value ("application/json;
 * charset=utf-8" is JSON). 0, or -EINVAL when it is neither. */
int connect_codec_of(const char *content_type, enum connect_codec *out);

/* Decodes @buf as message @d in @codec. Allocates *out. 0, or -EINVAL with
 * the problem in @err, or -ENOMEM. */
int connect_decode(enum connect_codec codec, const ProtobufCMessageDescriptor *d,
                   const uint8_t *buf, size_t len, ProtobufCMessage **out, char *err,
                   size_t errlen);

/* The JSON mapping alone (connect_decode uses it). */
int connect_json_decode(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                        ProtobufCMessage **out, char *err, size_t errlen);
/* Appends the JSON form of @m to @out. */
void connect_json_encode(const ProtobufCMessage *m, struct wbuf *out);

/* Fills @r with 200 and @m encoded in @codec. */
void connect_respond(struct http_response *r, enum connect_codec codec, const ProtobufCMessage *m);

/* Fills @r with 200 and the already-encoded protobuf message @buf of type
 * @d (JSON requests get it re-encoded as JSON). Takes @buf (malloc'd). */
void connect_respond_packed(struct http_response *r, enum connect_codec codec,
                            const ProtobufCMessageDescriptor *d, uint8_t *buf, size_t len);

/* The tenant of a call: X-Scope-OrgID when the request sets it, else
 * *@tenant as it is. 0, or -EINVAL with the Connect error in @out when the
 * header names no valid tenant. */
int connect_tenant(http_param_fn header, void *ctx, const char **tenant, struct http_response *out);

/* The checks every Connect unary call starts with: POST, a Content-Type of
 * JSON or protobuf (its codec in *codec), no Content-Encoding but identity,
 * then the body decoded as @d into *req (protobuf_c_message_free_unpacked).
 * 0, or -EINVAL with the Connect error (405, 415, 400...) already in @out,
 * or -ENOMEM likewise. @header looks up request headers through @ctx. */
int connect_unary(const char *method, const char *path, http_param_fn header, void *ctx,
                  const ProtobufCMessageDescriptor *d, const uint8_t *body, size_t len,
                  enum connect_codec *codec, ProtobufCMessage **req, struct http_response *out);

#endif
