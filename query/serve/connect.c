/* SPDX-License-Identifier: Apache-2.0 */
#include "query/serve/connect.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/pbjson.h"
#include "query/engine/plan.h"

/* ---- codes ------------------------------------------------------------- */

static const struct {
    const char *name;
    int status;
} codes[] = {
    [CONNECT_CANCELED] = {"canceled", 499},
    [CONNECT_UNKNOWN] = {"unknown", 500},
    [CONNECT_INVALID_ARGUMENT] = {"invalid_argument", 400},
    [CONNECT_DEADLINE_EXCEEDED] = {"deadline_exceeded", 504},
    [CONNECT_NOT_FOUND] = {"not_found", 404},
    [CONNECT_ALREADY_EXISTS] = {"already_exists", 409},
    [CONNECT_PERMISSION_DENIED] = {"permission_denied", 403},
    [CONNECT_RESOURCE_EXHAUSTED] = {"resource_exhausted", 429},
    [CONNECT_FAILED_PRECONDITION] = {"failed_precondition", 400},
    [CONNECT_ABORTED] = {"aborted", 409},
    [CONNECT_OUT_OF_RANGE] = {"out_of_range", 400},
    [CONNECT_UNIMPLEMENTED] = {"unimplemented", 501},
    [CONNECT_INTERNAL] = {"internal", 500},
    [CONNECT_UNAVAILABLE] = {"unavailable", 503},
    [CONNECT_DATA_LOSS] = {"data_loss", 500},
    [CONNECT_UNAUTHENTICATED] = {"unauthenticated", 401},
};

const char *connect_code_name(enum connect_code c)
{
    if ((int)c < CONNECT_CANCELED || c > CONNECT_UNAUTHENTICATED)
        return "unknown";
    return codes[c].name;
}

int connect_code_status(enum connect_code c)
{
    if ((int)c < CONNECT_CANCELED || c > CONNECT_UNAUTHENTICATED)
        return 500;
    return codes[c].status;
}

void connect_error(struct http_response *r, int status, enum connect_code c, const char *fmt, ...)
{
    char msg[1024];
    struct wbuf b = {0};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    wb_printf(&b, "{\"code\":\"%s\",\"message\":", connect_code_name(c));
    wb_json_str(&b, msg);
    wb_bytes(&b, "}", 1);
    r->status = status ? status : connect_code_status(c);
    r->content_type = "application/json";
    if (b.err) {
        char *oom = strdup("{\"code\":\"resource_exhausted\",\"message\":\"out of memory\"}");
        wb_free(&b);
        r->body = (uint8_t *)oom;
        r->len = oom ? strlen(oom) : 0;
        return;
    }
    r->body = b.p;
    r->len = b.len;
}

int connect_codec_of(const char *ct, enum connect_codec *out)
{
    size_t n;

    if (!ct)
        return -EINVAL;
    while (*ct == ' ')
        ct++;
    n = strcspn(ct, "; ");
    if (n == 16 && strncasecmp(ct, "application/json", n) == 0)
        *out = CONNECT_JSON;
    else if (n == 17 && strncasecmp(ct, "application/proto", n) == 0)
        *out = CONNECT_PROTO;
    else
        return -EINVAL;
    return 0;
}

/* ---- JSON ---------------------------------------------------------------- */

int connect_json_decode(const ProtobufCMessageDescriptor *md, const uint8_t *buf, size_t len,
                        ProtobufCMessage **out, char *err, size_t errlen)
{
    return pbjson_decode(md, buf, len, NULL, out, err, errlen);
}

int connect_decode(enum connect_codec codec, const ProtobufCMessageDescriptor *d,
                   const uint8_t *buf, size_t len, ProtobufCMessage **out, char *err, size_t errlen)
{
    if (codec == CONNECT_JSON)
        return connect_json_decode(d, buf, len, out, err, errlen);
    *out = protobuf_c_message_unpack(d, NULL, len, len ? buf : (const uint8_t *)"");
    if (!*out) {
        snprintf(err, errlen, "body: not a valid %s protobuf message", d->name);
        return -EINVAL;
    }
    return 0;
}

void connect_json_encode(const ProtobufCMessage *m, struct wbuf *out)
{
    pbjson_encode(m, out);
}

/* ---- responses ----------------------------------------------------------- */

void connect_respond(struct http_response *r, enum connect_codec codec, const ProtobufCMessage *m)
{
    if (codec == CONNECT_JSON) {
        struct wbuf b = {0};
        connect_json_encode(m, &b);
        if (b.err) {
            free(b.p);
            connect_error(r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        r->status = 200;
        r->content_type = "application/json";
        r->body = b.p;
        r->len = b.len;
        return;
    }
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        connect_error(r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    protobuf_c_message_pack(m, buf);
    r->status = 200;
    r->content_type = "application/proto";
    r->body = buf;
    r->len = n;
}

void connect_respond_packed(struct http_response *r, enum connect_codec codec,
                            const ProtobufCMessageDescriptor *d, uint8_t *buf, size_t len)
{
    if (codec == CONNECT_PROTO) {
        r->status = 200;
        r->content_type = "application/proto";
        r->body = buf;
        r->len = len;
        return;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
    free(buf);
    if (!m) {
        connect_error(r, 0, CONNECT_INTERNAL, "re-encoding %s as JSON failed", d->name);
        return;
    }
    connect_respond(r, codec, m);
    protobuf_c_message_free_unpacked(m, NULL);
}

/* ---- unary calls --------------------------------------------------------- */

int connect_tenant(http_param_fn header, void *ctx, const char **tenant, struct http_response *out)
{
    const char *org = header(ctx, "X-Scope-OrgID");

    if (!org || !*org)
        return 0;
    if (!plan_tenant_valid(org)) {
        connect_error(out, 0, CONNECT_INVALID_ARGUMENT,
                      "X-Scope-OrgID: '%.64s' is not a valid tenant name ([A-Za-z0-9._-]{1,64})",
                      org);
        return -EINVAL;
    }
    *tenant = org;
    return 0;
}

int connect_unary(const char *method, const char *path, http_param_fn header, void *ctx,
                  const ProtobufCMessageDescriptor *d, const uint8_t *body, size_t len,
                  enum connect_codec *codec, ProtobufCMessage **req, struct http_response *out)
{
    const char *ct = header(ctx, "Content-Type"), *ce = header(ctx, "Content-Encoding");
    char err[512];
    int rc;

    if (strcmp(method, "POST") != 0) {
        connect_error(out, 405, CONNECT_UNIMPLEMENTED,
                      "%s: method %s not allowed (Connect unary calls are POST)", path, method);
        return -EINVAL;
    }
    if (connect_codec_of(ct, codec)) {
        connect_error(out, 415, CONNECT_UNIMPLEMENTED,
                      "Content-Type '%.64s' is not supported (use application/json or "
                      "application/proto)",
                      ct ? ct : "");
        return -EINVAL;
    }
    if (ce && *ce && strcmp(ce, "identity") != 0) {
        connect_error(out, 0, CONNECT_UNIMPLEMENTED,
                      "Content-Encoding '%.32s' is not supported (send identity)", ce);
        return -EINVAL;
    }
    rc = connect_decode(*codec, d, body, len, req, err, sizeof(err));
    if (rc)
        connect_error(out, 0, rc == -ENOMEM ? CONNECT_RESOURCE_EXHAUSTED : CONNECT_INVALID_ARGUMENT,
                      "%s", rc == -ENOMEM ? "out of memory" : err);
    return rc;
}
