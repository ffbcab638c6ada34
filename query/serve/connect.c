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

#include "common/base64.h"
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

/* ---- field storage ------------------------------------------------------ */

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* The proto3 JSON name: underscores dropped, the letter after one upper-cased. */
static void json_name(const char *name, char *out, size_t outlen)
{
    size_t k = 0;
    bool up = false;

    for (; *name && k + 1 < outlen; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        out[k++] = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 32) : *name;
        up = false;
    }
    out[k] = '\0';
}

/* ---- base64 -------------------------------------------------------------- */

/* Standard or URL-safe alphabet, padding optional (as protojson takes). */
static int b64_decode(const char *s, ProtobufCBinaryData *out)
{
    size_t n = strlen(s), cap = n * 3 / 4 + 1;
    long k;

    out->data = malloc(cap);
    if (!out->data)
        return -ENOMEM;
    k = base64_decode_lenient(s, n, out->data, cap);
    if (k < 0) {
        free(out->data);
        out->data = NULL;
        return -EINVAL;
    }
    out->len = (size_t)k;
    return 0;
}

/* ---- JSON -> message ----------------------------------------------------- */

struct dec {
    char *err;
    size_t errlen;
};

static int bad(struct dec *d, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct dec *d, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(d->err, d->errlen, "%s: %s", field, msg);
    return -EINVAL;
}

static int dec_message(struct dec *d, const ProtobufCMessageDescriptor *md, const cJSON *j,
                       int depth, ProtobufCMessage **out);

/* Integers: a JSON number that is integral, or a decimal string. */
static int dec_int(struct dec *d, const char *fname, const cJSON *v, bool is_unsigned, int64_t lo,
                   int64_t hi, uint64_t uhi, int64_t *s_out, uint64_t *u_out)
{
    if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if (!isfinite(x) || x != floor(x))
            return bad(d, fname, "%g is not an integer", x);
        if (is_unsigned) {
            if (x < 0 || x >= 18446744073709551616.0 || (uhi != UINT64_MAX && x > (double)uhi))
                return bad(d, fname, "%g is out of range", x);
            *u_out = (uint64_t)x;
        } else {
            if (x < -9223372036854775808.0 || x >= 9223372036854775808.0 || x < (double)lo ||
                x > (double)hi)
                return bad(d, fname, "%g is out of range", x);
            *s_out = (int64_t)x;
        }
        return 0;
    }
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        char *end;
        if (!*s || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && !is_unsigned)))
            return bad(d, fname, "'%.32s' is not an integer", s);
        errno = 0;
        if (is_unsigned) {
            unsigned long long u = strtoull(s, &end, 10);
            if (*end || errno || u > uhi)
                return bad(d, fname, "'%.32s' is not an integer in range", s);
            *u_out = u;
        } else {
            long long x = strtoll(s, &end, 10);
            if (*end || errno || x < lo || x > hi)
                return bad(d, fname, "'%.32s' is not an integer in range", s);
            *s_out = x;
        }
        return 0;
    }
    return bad(d, fname, "expected an integer (number or string)");
}

/* dec_value's answer for a value that is dropped, not decoded. */
#define DEC_DISCARDED 1

/* Decodes one value of field @f into @slot: 0, DEC_DISCARDED (an unknown
 * enum name; @slot untouched), or a negative errno. */
static int dec_value(struct dec *d, const ProtobufCFieldDescriptor *f, const cJSON *v, int depth,
                     void *slot)
{
    int64_t s = 0;
    uint64_t u = 0;
    int rc;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = dec_int(d, f->name, v, false, INT32_MIN, INT32_MAX, 0, &s, &u)))
            return rc;
        *(int32_t *)slot = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((rc = dec_int(d, f->name, v, true, 0, 0, UINT32_MAX, &s, &u)))
            return rc;
        *(uint32_t *)slot = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((rc = dec_int(d, f->name, v, false, INT64_MIN, INT64_MAX, 0, &s, &u)))
            return rc;
        *(int64_t *)slot = s;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((rc = dec_int(d, f->name, v, true, 0, 0, UINT64_MAX, &s, &u)))
            return rc;
        *(uint64_t *)slot = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double x;
        if (cJSON_IsNumber(v)) {
            x = v->valuedouble;
        } else if (cJSON_IsString(v)) {
            char *end;
            if (strcmp(v->valuestring, "NaN") == 0)
                x = NAN;
            else if (strcmp(v->valuestring, "Infinity") == 0)
                x = INFINITY;
            else if (strcmp(v->valuestring, "-Infinity") == 0)
                x = -INFINITY;
            else {
                x = strtod(v->valuestring, &end);
                if (!*v->valuestring || *end || !isfinite(x))
                    return bad(d, f->name, "'%.32s' is not a number", v->valuestring);
            }
        } else {
            return bad(d, f->name, "expected a number");
        }
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)slot = (float)x;
        else
            *(double *)slot = x;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (!cJSON_IsBool(v))
            return bad(d, f->name, "expected true or false");
        *(protobuf_c_boolean *)slot = cJSON_IsTrue(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (cJSON_IsString(v)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(ed, v->valuestring);
            /* Unknown names are dropped as protojson's DiscardUnknown
             * (what connect-go servers use) drops them: the field keeps
             * its default, so an older worker answers a newer client. */
            if (!ev)
                return DEC_DISCARDED;
            *(int32_t *)slot = ev->value;
            return 0;
        }
        /* proto3 enums are open: any int32 number is kept. */
        if ((rc = dec_int(d, f->name, v, false, INT32_MIN, INT32_MAX, 0, &s, &u)))
            return rc;
        *(int32_t *)slot = (int32_t)s;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING:
        if (!cJSON_IsString(v))
            return bad(d, f->name, "expected a string");
        if (!(*(char **)slot = strdup(v->valuestring)))
            return -ENOMEM;
        return 0;
    case PROTOBUF_C_TYPE_BYTES:
        if (!cJSON_IsString(v))
            return bad(d, f->name, "expected a base64 string");
        rc = b64_decode(v->valuestring, slot);
        if (rc == -EINVAL)
            return bad(d, f->name, "not base64");
        return rc;
    case PROTOBUF_C_TYPE_MESSAGE:
        if (!cJSON_IsObject(v))
            return bad(d, f->name, "expected an object");
        return dec_message(d, f->descriptor, v, depth + 1, slot);
    }
    return bad(d, f->name, "unsupported field type");
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *md,
                                                  const char *key)
{
    char jn[128];

    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        if (strcmp(f->name, key) == 0)
            return f;
        json_name(f->name, jn, sizeof(jn));
        if (strcmp(jn, key) == 0)
            return f;
    }
    return NULL;
}

static int dec_message(struct dec *d, const ProtobufCMessageDescriptor *md, const cJSON *j,
                       int depth, ProtobufCMessage **out)
{
    ProtobufCMessage *m;
    uint8_t *seen;
    int rc = 0;

    if (depth > CONNECT_MAX_DEPTH)
        return bad(d, md->name, "nested too deeply");
    m = calloc(1, md->sizeof_message);
    seen = calloc(md->n_fields + 1, 1);
    if (!m || !seen) {
        free(m);
        free(seen);
        return -ENOMEM;
    }
    protobuf_c_message_init(md, m);
    for (const cJSON *v = j->child; v && !rc; v = v->next) {
        const ProtobufCFieldDescriptor *f = find_field(md, v->string ? v->string : "");
        if (!f || cJSON_IsNull(v))
            continue; /* unknown fields are ignored; null is the default */
        unsigned idx = (unsigned)(f - md->fields);
        if (seen[idx]) {
            rc = bad(d, f->name, "given twice");
            break;
        }
        seen[idx] = 1;
        char *base = (char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!cJSON_IsArray(v)) {
                rc = bad(d, f->name, "expected an array");
                break;
            }
            size_t n = (size_t)cJSON_GetArraySize(v), es = elem_size(f->type);
            size_t *count = (size_t *)(base + f->quantifier_offset);
            void **arr = (void **)(base + f->offset);
            if (n == 0)
                continue;
            if (!(*arr = calloc(n, es))) {
                rc = -ENOMEM;
                break;
            }
            for (const cJSON *e = v->child; e && !rc; e = e->next) {
                if (cJSON_IsNull(e) && f->type != PROTOBUF_C_TYPE_MESSAGE) {
                    rc = bad(d, f->name, "null in an array");
                    break;
                }
                void *slot = (char *)*arr + *count * es;
                if (f->type == PROTOBUF_C_TYPE_MESSAGE && cJSON_IsNull(e))
                    rc = bad(d, f->name, "null in an array");
                else
                    rc = dec_value(d, f, e, depth, slot);
                /* Counted only once whole, so the free below sees only
                 * complete elements. */
                if (rc == DEC_DISCARDED)
                    rc = 0;
                else if (!rc)
                    (*count)++;
            }
            continue;
        }
        void *slot = base + f->offset;
        if (f->type == PROTOBUF_C_TYPE_STRING) /* replaces the shared default */
            *(char **)slot = NULL;
        rc = dec_value(d, f, v, depth, slot);
        if (f->type == PROTOBUF_C_TYPE_STRING && !*(char **)slot)
            *(char **)slot = (char *)f->default_value; /* failed: back to the default */
        if (rc == DEC_DISCARDED) {
            rc = 0;
            continue; /* not set: no presence, no oneof case */
        }
        if (rc)
            break;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *(uint32_t *)(base + f->quantifier_offset) = f->id;
        else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                 f->type != PROTOBUF_C_TYPE_MESSAGE)
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    free(seen);
    if (rc) {
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return 0;
}

int connect_json_decode(const ProtobufCMessageDescriptor *md, const uint8_t *buf, size_t len,
                        ProtobufCMessage **out, char *err, size_t errlen)
{
    struct dec d = {err, errlen};
    cJSON *j;
    int rc;

    if (len == 0) {
        snprintf(err, errlen, "body: empty (a JSON request is at least {})");
        return -EINVAL;
    }
    j = cJSON_ParseWithLength((const char *)buf, len);
    if (!j) {
        snprintf(err, errlen, "body: not valid JSON");
        return -EINVAL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(err, errlen, "body: expected a JSON object for %s", md->name);
        return -EINVAL;
    }
    rc = dec_message(&d, md, j, 0, out);
    cJSON_Delete(j);
    return rc;
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

/* ---- message -> JSON ----------------------------------------------------- */

static void enc_message(const ProtobufCMessage *m, struct wbuf *o, int depth);

static void enc_value(const ProtobufCFieldDescriptor *f, const void *slot, struct wbuf *o,
                      int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        wb_printf(o, "%d", *(const int32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        wb_printf(o, "%u", *(const uint32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        wb_printf(o, "\"%lld\"", (long long)*(const int64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        wb_printf(o, "\"%llu\"", (unsigned long long)*(const uint64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double x = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)slot : *(const double *)slot;
        if (isnan(x))
            wb_bytes(o, "\"NaN\"", 5);
        else if (isinf(x))
            wb_printf(o, "\"%sInfinity\"", x < 0 ? "-" : "");
        else
            wb_printf(o, "%.17g", x);
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        wb_printf(o, "%s", *(const protobuf_c_boolean *)slot ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *)slot;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev)
            wb_printf(o, "\"%s\"", ev->name);
        else
            wb_printf(o, "%d", v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        wb_json_str(o, s ? s : "");
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = slot;
        wb_bytes(o, "\"", 1);
        base64_encode(o, b->data, b->len);
        wb_bytes(o, "\"", 1);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        if (sub && depth < CONNECT_MAX_DEPTH)
            enc_message(sub, o, depth + 1);
        else
            wb_bytes(o, "{}", 2);
        break;
    }
    }
}

/* proto3: a field without presence is left out when it has its default. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)slot)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)slot == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)slot == 0 && !signbit(*(const float *)slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)slot == 0 && !signbit(*(const double *)slot);
    default: {
        static const uint8_t zero[8];
        return memcmp(slot, zero, elem_size(f->type)) == 0;
    }
    }
}

static void enc_message(const ProtobufCMessage *m, struct wbuf *o, int depth)
{
    const ProtobufCMessageDescriptor *md = m->descriptor;
    const char *base = (const char *)m;
    bool first = true;
    char jn[128];

    wb_bytes(o, "{", 1);
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        const void *slot = base + f->offset;
        size_t n = 0;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0)
                continue;
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE) {
            if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
                continue;
        } else if (is_default(f, slot)) {
            continue;
        }
        json_name(f->name, jn, sizeof(jn));
        wb_printf(o, "%s\"%s\":", first ? "" : ",", jn);
        first = false;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            const char *arr = *(char *const *)slot;
            size_t es = elem_size(f->type);
            wb_bytes(o, "[", 1);
            for (size_t k = 0; k < n; k++) {
                if (k)
                    wb_bytes(o, ",", 1);
                enc_value(f, arr + k * es, o, depth);
            }
            wb_bytes(o, "]", 1);
        } else {
            enc_value(f, slot, o, depth);
        }
    }
    wb_bytes(o, "}", 1);
}

void connect_json_encode(const ProtobufCMessage *m, struct wbuf *out)
{
    enc_message(m, out, 0);
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
