/* SPDX-License-Identifier: Apache-2.0 */
#include "common/pbjson.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/hex.h"

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
    const char *const *hex_fields;
    int max_depth;
};

static bool is_hex_field(const struct dec *d, const char *name)
{
    for (const char *const *h = d->hex_fields; h && *h; h++)
        if (strcmp(*h, name) == 0)
            return true;
    return false;
}

/* An even number of hex digits (either case), as OTLP writes its ids. */
static int hex_decode(const char *s, ProtobufCBinaryData *out)
{
    size_t n = strlen(s);

    if (n % 2)
        return -EINVAL;
    out->data = malloc(n / 2 + 1);
    if (!out->data)
        return -ENOMEM;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0) {
            free(out->data);
            out->data = NULL;
            return -EINVAL;
        }
        out->data[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    out->len = n / 2;
    return 0;
}

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
        if (is_hex_field(d, f->name)) {
            if (!cJSON_IsString(v))
                return bad(d, f->name, "expected a hex string");
            rc = hex_decode(v->valuestring, slot);
            if (rc == -EINVAL)
                return bad(d, f->name, "'%.40s' is not hex", v->valuestring);
            return rc;
        }
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

    if (depth > d->max_depth)
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

/* An upper bound on the number of values in @buf: one more than its
 * commas, brackets and braces outside strings. */
static size_t count_values(const uint8_t *buf, size_t len)
{
    size_t n = 1;
    bool in_str = false;

    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == ',' || c == '[' || c == '{') {
            n++;
        }
    }
    return n;
}

int pbjson_decode(const ProtobufCMessageDescriptor *md, const uint8_t *buf, size_t len,
                  const struct pbjson_opts *o, ProtobufCMessage **out, char *err, size_t errlen)
{
    struct dec d = {err, errlen, o ? o->hex_fields : NULL,
                    o && o->max_depth ? o->max_depth : PBJSON_MAX_DEPTH};
    size_t max_values = o && o->max_values ? o->max_values : PBJSON_MAX_VALUES;
    const char *end = NULL;
    cJSON *j;
    int rc;

    if (len == 0) {
        snprintf(err, errlen, "body: empty (a JSON request is at least {})");
        return -EINVAL;
    }
    if (count_values(buf, len) > max_values) {
        snprintf(err, errlen, "body: more than %zu JSON values", max_values);
        return -EFBIG;
    }
    j = cJSON_ParseWithLengthOpts((const char *)buf, len, &end, 0);
    if (!j) {
        size_t at = end && end >= (const char *)buf ? (size_t)(end - (const char *)buf) : 0;
        snprintf(err, errlen, "body: not valid JSON (at byte %zu of %zu)", at, len);
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
        if (sub && depth < PBJSON_MAX_DEPTH)
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

void pbjson_encode(const ProtobufCMessage *m, struct wbuf *out)
{
    enc_message(m, out, 0);
}
