/* SPDX-License-Identifier: Apache-2.0 */
/* grpc_frame — see grpc_frame.h. */
#include "common/grpc_frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/hex.h"
#include "grpc/status.pb-c.h"

static const char *const names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *grpc_code_name(unsigned code)
{
    return code < sizeof(names) / sizeof(names[0]) ? names[code] : "UNKNOWN";
}

uint32_t grpc_frame_len(const uint8_t *p)
{
    return (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
}

void grpc_frame_prefix(uint8_t out[5], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

int grpc_unframe(const uint8_t *p, size_t n, size_t max, const uint8_t **msg, size_t *len,
                 bool *compressed, char *err, size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "no message (a unary call carries one)");
        return -EBADMSG;
    }
    if (p[0] > 1) {
        snprintf(err, errlen, "message prefix: compressed flag %u, not 0 or 1", p[0]);
        return -EBADMSG;
    }
    if (n < 5) {
        snprintf(err, errlen, "message prefix cut short (%zu of 5 bytes)", n);
        return -EBADMSG;
    }
    uint32_t l = grpc_frame_len(p);
    if (l > max) {
        snprintf(err, errlen, "message of %u bytes: larger than %zu", l, max);
        return -EFBIG;
    }
    if (n - 5 < l) {
        snprintf(err, errlen, "message cut short: %zu of %u bytes", n - 5, l);
        return -EBADMSG;
    }
    if (n - 5 > l) {
        snprintf(err, errlen, "more than one message (a unary call carries one)");
        return -EBADMSG;
    }
    *msg = p + 5;
    *len = l;
    *compressed = p[0] == 1;
    return 0;
}

void grpc_percent_encode(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (!outlen)
        return;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            if (o + 1 >= outlen)
                break;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outlen)
                break;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
}

void grpc_percent_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;

    if (!outlen)
        return;
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        int hi, lo;
        if (c == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[o] = 0;
}

void grpc_status_details(struct wbuf *out, unsigned code, const char *message, unsigned retry_s)
{
    Google__Rpc__Duration d = GOOGLE__RPC__DURATION__INIT;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    Google__Rpc__Any any = GOOGLE__RPC__ANY__INIT;
    Google__Rpc__Any *details[] = {&any};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    uint8_t ribuf[32], *p;

    d.seconds = retry_s;
    ri.retry_delay = &d;
    any.type_url = GRPC_RETRY_INFO_TYPE;
    any.value.len = google__rpc__retry_info__pack(&ri, ribuf); /* at most 2 + 2 + 10 bytes */
    any.value.data = ribuf;
    st.code = (int32_t)code;
    st.message = (char *)message;
    st.n_details = 1;
    st.details = details;
    size_t n = google__rpc__status__get_packed_size(&st);
    if (!(p = malloc(n))) {
        out->err = -ENOMEM;
        return;
    }
    google__rpc__status__pack(&st, p);
    base64_encode(out, p, n);
    free(p);
    while (!out->err && out->len && out->s[out->len - 1] == '=')
        out->s[--out->len] = '\0'; /* gRPC's binary headers go unpadded */
}

int grpc_status_retry_ms(const char *v, size_t n, unsigned max_ms, unsigned *ms)
{
    static const char name[] = "/google.rpc.RetryInfo";
    uint8_t buf[GRPC_DETAILS_MAX / 4 * 3 + 3];
    int rc = -ENOENT;

    *ms = 0;
    long len = n <= GRPC_DETAILS_MAX ? base64_decode_lenient(v, n, buf, sizeof(buf)) : -1;
    if (len < 0)
        return -EBADMSG;
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, (size_t)len, buf);
    if (!st)
        return -EBADMSG;
    for (size_t i = 0; i < st->n_details && rc == -ENOENT; i++) {
        const Google__Rpc__Any *a = st->details[i];
        size_t tl = a->type_url ? strlen(a->type_url) : 0;
        /* the type's full name after the last '/' (any host before it) */
        if (tl < sizeof(name) - 1 || strcmp(a->type_url + tl - (sizeof(name) - 1), name))
            continue;
        Google__Rpc__RetryInfo *ri =
            google__rpc__retry_info__unpack(NULL, a->value.len, a->value.data);
        if (!ri)
            continue; /* a damaged detail is no signal to retry */
        const Google__Rpc__Duration *d = ri->retry_delay;
        int64_t s = d ? d->seconds : 0, ns = d ? d->nanos : 0;
        if (s < 0 || (s == 0 && ns < 0))
            *ms = 0;
        else if (s >= (int64_t)(max_ms / 1000) + 1)
            *ms = max_ms;
        else {
            int64_t t = s * 1000 + ns / 1000000;
            *ms = t < 0 ? 0 : t > (int64_t)max_ms ? max_ms : (unsigned)t;
        }
        google__rpc__retry_info__free_unpacked(ri, NULL);
        rc = 0;
    }
    google__rpc__status__free_unpacked(st, NULL);
    return rc;
}
