/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire — the byte-level primitives of Stoke's storage format
 * (docs/format.md §1): LEB128 varints, zigzag, little-endian fixed ints,
 * CRC-32C, XXH64 and zstd frames, shared by segment.c and manifest.c.
 *
 * Writing goes into a growable struct wbuf; a failed allocation sets
 * wbuf.err and turns every later write into a no-op, so encoders check once
 * at the end. Reading goes through struct rbuf, a cursor that never moves
 * past its end: every get returns -EBADMSG instead of reading out of bounds.
 */
#ifndef STOKE_WIRE_H
#define STOKE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard cap on any decompressed footer, section or manifest body. */
#define SEG_MAX_RAW (1ull << 30)

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int err; /* 0 or -ENOMEM, sticky */
};

void wb_free(struct wbuf *b);
void wb_bytes(struct wbuf *b, const void *p, size_t n);
void wb_u8(struct wbuf *b, uint8_t v);
void wb_u16(struct wbuf *b, uint16_t v);
void wb_u32(struct wbuf *b, uint32_t v);
void wb_u64(struct wbuf *b, uint64_t v);
void wb_uv(struct wbuf *b, uint64_t v);
void wb_sv(struct wbuf *b, int64_t v);
void wb_str(struct wbuf *b, const char *s); /* NULL writes "" */
void wb_strn(struct wbuf *b, const char *s, size_t n);

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

/* CRC-32C (Castagnoli), software, slicing-by-8. crc32c_update(0, ...) starts. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
static inline uint32_t crc32c(const void *data, size_t len)
{
    return crc32c_update(0, data, len);
}

/* XXH64 with seed 0. */
uint64_t xxh64(const void *data, size_t len);

/* Appends one zstd frame of @src to @out. 0 or -ENOMEM / -EIO. */
int zstd_append(struct wbuf *out, const void *src, size_t len, int level);
/* Decompresses exactly one frame of @len bytes whose content is exactly
 * @raw_len bytes (<= SEG_MAX_RAW) into a malloc'd buffer (+1 NUL byte).
 * -EBADMSG on any mismatch. */
int zstd_decode(const uint8_t *src, size_t len, uint64_t raw_len, uint8_t **out);

/* "YYYY-MM-DD" and "HH" of a UTC ms timestamp; -EINVAL when negative or
 * past year 9999. */
int utc_date_hour(int64_t ms, char date[11], char hour[3]);
/* Non-empty, <= 128 bytes of [A-Za-z0-9._-], not "." or "..". */
bool safe_component(const char *s);

#endif
