/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf — the one growable byte buffer (struct wbuf) and the one bounded read
 * cursor (struct rbuf) of the tree, with what their users write and read:
 * raw bytes, little-endian fixed-width integers, LEB128 varints and zigzag
 * (the storage format, docs/format.md §1, and the peers' merged profiles),
 * text, printf and JSON string literals (the query API's answers).
 *
 * Writing: a failed allocation sets wbuf.err and turns every later write
 * into a no-op, so writers check once at the end. Once anything was
 * written the bytes are followed by a NUL that len does not count, so a
 * text writer hands b.s to C string functions. The owner frees b.p (or
 * wb_free) and may take it over: it is plain malloc'd memory.
 *
 * Reading: struct rbuf never moves past its end; every get returns
 * -EBADMSG instead of reading out of bounds.
 */
#ifndef STOKE_COMMON_BUF_H
#define STOKE_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wbuf {
    union {
        uint8_t *p; /* the bytes */
        char *s;    /* the same bytes as text, NUL-terminated */
    };
    size_t len, cap;
    int err; /* 0 or -ENOMEM, sticky */
};

void wb_free(struct wbuf *b);
/* Room for @n more bytes (and the NUL after them). False once err is set. */
bool wb_reserve(struct wbuf *b, size_t n);
void wb_bytes(struct wbuf *b, const void *p, size_t n);
void wb_u8(struct wbuf *b, uint8_t v);
void wb_u16(struct wbuf *b, uint16_t v); /* little-endian */
void wb_u32(struct wbuf *b, uint32_t v);
void wb_u64(struct wbuf *b, uint64_t v);
void wb_uv(struct wbuf *b, uint64_t v); /* LEB128 */
void wb_sv(struct wbuf *b, int64_t v);  /* zigzag LEB128 */
/* A varint length, then the bytes. NULL writes "". */
void wb_str(struct wbuf *b, const char *s);
void wb_strn(struct wbuf *b, const char *s, size_t n);
/* Text: the characters alone. */
void wb_puts(struct wbuf *b, const char *s);
void wb_printf(struct wbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* @s as a JSON string literal (quoted, escaped, invalid UTF-8 as U+FFFD). */
void wb_json_str(struct wbuf *b, const char *s);

struct rbuf {
    const uint8_t *p;
    size_t len, off;
};

static inline size_t rb_left(const struct rbuf *r)
{
    return r->len - r->off;
}
int rb_bytes(struct rbuf *r, const uint8_t **p, size_t n);
int rb_u8(struct rbuf *r, uint8_t *v);
int rb_u32(struct rbuf *r, uint32_t *v); /* little-endian */
int rb_u64(struct rbuf *r, uint64_t *v);
int rb_uv(struct rbuf *r, uint64_t *v);
int rb_sv(struct rbuf *r, int64_t *v);
/* uvarint that must be <= max */
int rb_uv_max(struct rbuf *r, uint64_t max, uint64_t *v);
/* str into a malloc'd NUL-terminated copy (embedded NULs rejected). */
int rb_str(struct rbuf *r, char **out);

uint16_t rd_u16(const uint8_t *p);
uint32_t rd_u32(const uint8_t *p);
uint64_t rd_u64(const uint8_t *p);
void wr_u16(uint8_t *p, uint16_t v);
void wr_u32(uint8_t *p, uint32_t v);
void wr_u64(uint8_t *p, uint64_t v);

static inline uint64_t zigzag(int64_t v)
{
    /* all ones for negative v, without shifting a signed value */
    return ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
}
static inline int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

#endif
