/* SPDX-License-Identifier: Apache-2.0 */
#include "common/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------ */

void wb_free(struct wbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

bool wb_reserve(struct wbuf *b, size_t n)
{
    if (b->err)
        return false;
    if (n >= SIZE_MAX / 2 - b->len) {
        b->err = -ENOMEM;
        return false;
    }
    /* + 1: the NUL after the bytes */
    if (b->len + n < b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->err = -ENOMEM;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void wb_bytes(struct wbuf *b, const void *p, size_t n)
{
    if (!wb_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void wb_u8(struct wbuf *b, uint8_t v)
{
    wb_bytes(b, &v, 1);
}

void wb_u16(struct wbuf *b, uint16_t v)
{
    uint8_t t[2];
    wr_u16(t, v);
    wb_bytes(b, t, 2);
}

void wb_u32(struct wbuf *b, uint32_t v)
{
    uint8_t t[4];
    wr_u32(t, v);
    wb_bytes(b, t, 4);
}

void wb_u64(struct wbuf *b, uint64_t v)
{
    uint8_t t[8];
    wr_u64(t, v);
    wb_bytes(b, t, 8);
}

void wb_uv(struct wbuf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    if (n == 1 && b->len + 1 < b->cap && !b->err) {
        b->p[b->len++] = t[0]; /* the common case: one byte, no call */
        b->p[b->len] = '\0';
        return;
    }
    wb_bytes(b, t, n);
}

void wb_sv(struct wbuf *b, int64_t v)
{
    wb_uv(b, zigzag(v));
}

void wb_strn(struct wbuf *b, const char *s, size_t n)
{
    wb_uv(b, n);
    wb_bytes(b, s, n);
}

void wb_str(struct wbuf *b, const char *s)
{
    wb_strn(b, s ? s : "", s ? strlen(s) : 0);
}

/* ---- text -------------------------------------------------------------- */

void wb_puts(struct wbuf *b, const char *s)
{
    wb_bytes(b, s, strlen(s));
}

void wb_printf(struct wbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->err)
        return;
    /* straight into the buffer when it fits, else once more with room */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_start(ap, fmt);
    n = vsnprintf(room ? b->s + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= room) {
        if (!wb_reserve(b, (size_t)n))
            return;
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at @s, 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
            return 0;
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

void wb_json_str(struct wbuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    wb_u8(b, '"');
    while (*p) {
        size_t run = 0;
        while (p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run) {
            wb_bytes(b, (const char *)p, run);
            p += run;
            continue;
        }
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            wb_bytes(b, e, 2);
            p++;
        } else if (*p < 0x20) {
            wb_printf(b, "\\u%04x", *p);
            p++;
        } else {
            size_t n = utf8_len(p);
            if (n) {
                wb_bytes(b, (const char *)p, n);
                p += n;
            } else {
                wb_bytes(b, "\xef\xbf\xbd", 3);
                p++;
            }
        }
    }
    wb_u8(b, '"');
}

/* ---- reading ------------------------------------------------------------ */

int rb_bytes(struct rbuf *r, const uint8_t **p, size_t n)
{
    if (n > rb_left(r))
        return -EBADMSG;
    *p = r->p + r->off;
    r->off += n;
    return 0;
}

int rb_u8(struct rbuf *r, uint8_t *v)
{
    if (!rb_left(r))
        return -EBADMSG;
    *v = r->p[r->off++];
    return 0;
}

int rb_u32(struct rbuf *r, uint32_t *v)
{
    const uint8_t *p;
    int ret = rb_bytes(r, &p, 4);
    if (!ret)
        *v = rd_u32(p);
    return ret;
}

int rb_u64(struct rbuf *r, uint64_t *v)
{
    const uint8_t *p;
    int ret = rb_bytes(r, &p, 8);
    if (!ret)
        *v = rd_u64(p);
    return ret;
}

int rb_uv(struct rbuf *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->off >= r->len)
            return -EBADMSG;
        uint8_t c = r->p[r->off++];
        if (shift == 63 && c > 1)
            return -EBADMSG; /* would overflow 64 bits */
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -EBADMSG;
}

int rb_sv(struct rbuf *r, int64_t *v)
{
    uint64_t u;
    int ret = rb_uv(r, &u);
    if (!ret)
        *v = unzigzag(u);
    return ret;
}

int rb_uv_max(struct rbuf *r, uint64_t max, uint64_t *v)
{
    int ret = rb_uv(r, v);
    return ret ? ret : *v > max ? -EBADMSG : 0;
}

int rb_str(struct rbuf *r, char **out)
{
    uint64_t n;
    const uint8_t *p;
    if (rb_uv_max(r, rb_left(r), &n) || rb_bytes(r, &p, n) || memchr(p, 0, n))
        return -EBADMSG;
    char *s = malloc(n + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, p, n);
    s[n] = 0;
    *out = s;
    return 0;
}

/* ---- little-endian fixed width ------------------------------------------ */

uint16_t rd_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t rd_u64(const uint8_t *p)
{
    return (uint64_t)rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32;
}

void wr_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void wr_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void wr_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
