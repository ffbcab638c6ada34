/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire — the byte-level primitives of Stoke's storage format
 * (docs/format.md §1) beyond common/buf.h's varints and little-endian
 * integers: CRC-32C, XXH64, zstd frames and the pieces of object keys,
 * shared by the segment and manifest codecs.
 */
#ifndef STOKE_WIRE_H
#define STOKE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/errmsg.h"

/* In a decoder with `int ret`, `char *err, size_t errlen` and an `out:`
 * label: says what is wrong (in @err) and fails with -EBADMSG. */
#define WIRE_BAD(...)                                                                              \
    do {                                                                                           \
        errmsg(err, errlen, __VA_ARGS__);                                                          \
        ret = -EBADMSG;                                                                            \
        goto out;                                                                                  \
    } while (0)

/* Hard cap on any decompressed footer, section or manifest body. */
#define SEG_MAX_RAW (1ull << 30)

/* CRC-32C (Castagnoli): the CPU's crc32 instruction where it has one
 * (x86-64 with SSE4.2), else software slicing-by-8. crc32c_update(0, ...)
 * starts. crc32c_update_sw is the software path alone (tests compare). */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_update_sw(uint32_t crc, const void *data, size_t len);
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

/* A section's summary frame (docs/format.md §3.5, §3.6) of @len
 * compressed bytes, checked against its footer record (@flen, @fcrc) and
 * decompressed to exactly @fraw bytes in *@raw. 0, or -EBADMSG / -ENOMEM
 * with "@what of @service: ..." in @err. */
int wire_frame_open(const uint8_t *buf, size_t len, uint64_t flen, uint32_t fcrc, uint64_t fraw,
                    const char *what, const char *service, uint8_t **raw, char *err, size_t errlen);
/* @n names from @r as the summary frames hold them: @n uvarint lengths,
 * then the names' bytes back to back. *@names (malloc'd) points into
 * *@mem (one allocation, each name NUL-terminated). 0, -EBADMSG (bytes
 * run out, or a name holds a NUL), -ENOMEM; free both either way. */
int rb_names(struct rbuf *r, uint64_t n, const char ***names, char **mem);
/* The writing side of rb_names: @n uvarint lengths, then the bytes. */
void wb_names(struct wbuf *w, const char *const *names, uint32_t n);
/* The writing side of rb_str_list: a uvarint count, then the strings. */
void wb_str_list(struct wbuf *w, const char *const *list, uint32_t n);
/* Frees what rb_str_list read: @n strings and the list. */
void str_list_free(const char **list, uint32_t n);
/* A uvarint count and that many strings from @r into *@list (calloc'd;
 * each string its own allocation); *@n says how many were read, also on
 * failure, so the caller frees them and the list. 0, -EBADMSG, -ENOMEM. */
int rb_str_list(struct rbuf *r, const char ***list, uint32_t *n);

/* "YYYY-MM-DD" and "HH" of a UTC ms timestamp; -EINVAL when negative or
 * past year 9999. */
int utc_date_hour(int64_t ms, char date[11], char hour[3]);
/* Non-empty, <= 128 bytes of [A-Za-z0-9._-], not "." or "..". */
bool safe_component(const char *s);

#endif
