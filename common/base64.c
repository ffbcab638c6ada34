/* SPDX-License-Identifier: Apache-2.0 */
#include "common/base64.h"

#include <stdbool.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int value(unsigned char c, bool url_safe)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || (url_safe && c == '-'))
        return 62;
    if (c == '/' || (url_safe && c == '_'))
        return 63;
    return -1;
}

/* Six bits a character; a byte out whenever eight have gathered. Bits
 * left over at the end (fewer than eight) are dropped, as decoders do. */
static long decode(const char *in, size_t len, uint8_t *out, size_t cap, bool lenient)
{
    uint32_t acc = 0;
    size_t k = 0;
    int bits = 0;

    if (lenient) {
        while (len && in[len - 1] == '=')
            len--;
    } else {
        if (len % 4)
            return -1;
        for (int pad = 0; pad < 2 && len && in[len - 1] == '='; pad++)
            len--;
    }
    for (size_t i = 0; i < len; i++) {
        int v = value((unsigned char)in[i], lenient);
        if (v < 0)
            return -1; /* not base64, or data after '=' */
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (k >= cap)
                return -1;
            out[k++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)k;
}

long base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    return decode(in, len, out, cap, false);
}

long base64_decode_lenient(const char *in, size_t len, uint8_t *out, size_t cap)
{
    return decode(in, len, out, cap, true);
}

void base64_encode(struct wbuf *o, const uint8_t *p, size_t n)
{
    char q[4];

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        q[0] = alphabet[v >> 18];
        q[1] = alphabet[(v >> 12) & 63];
        q[2] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? alphabet[v & 63] : '=';
        wb_bytes(o, q, 4);
    }
}
