/* SPDX-License-Identifier: Apache-2.0 */
/* grpc_frame — see grpc_frame.h. */
#include "common/grpc_frame.h"

#include <errno.h>
#include <stdio.h>

#include "common/hex.h"

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
