/* SPDX-License-Identifier: Apache-2.0 */
#include "codec/wire.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

/* ---- CRC-32C ----------------------------------------------------------- */

static uint32_t crc_tab[8][256];
static bool crc_insn; /* the CPU has the crc32 instruction */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_insn = __builtin_cpu_supports("sse4.2");
#endif
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t crc32c_update_sw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    /* slicing-by-8: eight table lookups per 8 bytes instead of a serial
     * chain of eight, ~4x the byte-at-a-time speed */
    while (len >= 8) {
        uint64_t w = rd_u64(p) ^ crc;
        crc = crc_tab[7][w & 0xff] ^ crc_tab[6][(w >> 8) & 0xff] ^ crc_tab[5][(w >> 16) & 0xff] ^
              crc_tab[4][(w >> 24) & 0xff] ^ crc_tab[3][(w >> 32) & 0xff] ^
              crc_tab[2][(w >> 40) & 0xff] ^ crc_tab[1][(w >> 48) & 0xff] ^ crc_tab[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
/* The crc32 instruction (SSE4.2) computes CRC-32C: 8 bytes per
 * instruction, several times slicing-by-8 (perf: the sections' checksum
 * was ~2% of a query). */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = ~crc;

    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
    if (crc_insn)
        return crc_hw(crc, data, len);
#endif
    return crc32c_update_sw(crc, data, len);
}

/* ---- XXH64 ------------------------------------------------------------- */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t xround(uint64_t acc, uint64_t in)
{
    acc += in * P2;
    return rotl64(acc, 31) * P1;
}

static inline uint64_t xmerge(uint64_t acc, uint64_t v)
{
    acc ^= xround(0, v);
    return acc * P1 + P4;
}

uint64_t xxh64(const void *data, size_t len)
{
    const uint8_t *p = data, *end = p + len;
    uint64_t h;

    if (len >= 32) {
        uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1;
        do {
            v1 = xround(v1, rd_u64(p));
            v2 = xround(v2, rd_u64(p + 8));
            v3 = xround(v3, rd_u64(p + 16));
            v4 = xround(v4, rd_u64(p + 24));
            p += 32;
        } while (end - p >= 32);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xmerge(h, v1);
        h = xmerge(h, v2);
        h = xmerge(h, v3);
        h = xmerge(h, v4);
    } else {
        h = P5;
    }
    h += len;
    while (end - p >= 8) {
        h ^= xround(0, rd_u64(p));
        h = rotl64(h, 27) * P1 + P4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= (uint64_t)rd_u32(p) * P1;
        h = rotl64(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= *p++ * P5;
        h = rotl64(h, 11) * P1;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

/* ---- zstd -------------------------------------------------------------- */

int zstd_append(struct wbuf *out, const void *src, size_t len, int level)
{
    size_t bound = ZSTD_compressBound(len);
    if (!wb_reserve(out, bound))
        return out->err ? out->err : -ENOMEM;
    size_t n = ZSTD_compress(out->p + out->len, bound, src, len, level);
    if (ZSTD_isError(n))
        return -EIO;
    out->len += n;
    out->p[out->len] = '\0';
    return 0;
}

int zstd_decode(const uint8_t *src, size_t len, uint64_t raw_len, uint8_t **out)
{
    if (raw_len > SEG_MAX_RAW)
        return -EBADMSG;
    /* one frame, exactly @len bytes, declaring exactly @raw_len */
    size_t fsz = ZSTD_findFrameCompressedSize(src, len);
    if (ZSTD_isError(fsz) || fsz != len)
        return -EBADMSG;
    unsigned long long csz = ZSTD_getFrameContentSize(src, len);
    if (csz != raw_len)
        return -EBADMSG;
    uint8_t *p = malloc(raw_len + 1);
    if (!p)
        return -ENOMEM;
    size_t n = ZSTD_decompress(p, raw_len, src, len);
    if (ZSTD_isError(n) || n != raw_len) {
        free(p);
        return -EBADMSG;
    }
    p[raw_len] = 0;
    *out = p;
    return 0;
}

/* ---- keys -------------------------------------------------------------- */

int utc_date_hour(int64_t ms, char date[11], char hour[3])
{
    struct tm tm;
    if (ms < 0 || ms > 253402300799999ll) /* 9999-12-31T23:59:59.999Z */
        return -EINVAL;
    time_t t = (time_t)(ms / 1000);
    if (!gmtime_r(&t, &tm))
        return -EINVAL;
    /* ranges bounded above, so the fields have fixed widths */
    unsigned y = (unsigned)(tm.tm_year + 1900) % 10000u, mo = (unsigned)(tm.tm_mon + 1) % 100u,
             d = (unsigned)tm.tm_mday % 100u, h = (unsigned)tm.tm_hour % 100u;
    snprintf(date, 11, "%04u-%02u-%02u", y, mo, d);
    snprintf(hour, 3, "%02u", h);
    return 0;
}

bool safe_component(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (!n || n > 128 || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int wire_frame_open(const uint8_t *buf, size_t len, uint64_t flen, uint32_t fcrc, uint64_t fraw,
                    const char *what, const char *service, uint8_t **raw, char *err, size_t errlen)
{
    int rc;

    *raw = NULL;
    if (len != flen || crc32c(buf, len) != fcrc) {
        errmsg(err, errlen, "%s of %s: length or checksum mismatch", what, service);
        return -EBADMSG;
    }
    if ((rc = zstd_decode(buf, len, fraw, raw)))
        errmsg(err, errlen, "%s of %s: does not decompress", what, service);
    return rc;
}

int rb_names(struct rbuf *r, uint64_t n, const char ***names, char **mem)
{
    struct rbuf lens = *r;
    size_t bytes = 0;

    *names = NULL;
    *mem = NULL;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l;
        if (rb_uv_max(r, rb_left(r), &l))
            return -EBADMSG;
        bytes += l + 1;
    }
    if (bytes - n > rb_left(r))
        return -EBADMSG;
    *names = malloc((n + 1) * sizeof(**names));
    char *m = *mem = malloc(bytes + 1);
    if (!*names || !m)
        return -ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l;
        const uint8_t *p;
        rb_uv(&lens, &l);
        if (rb_bytes(r, &p, l) || memchr(p, 0, l))
            return -EBADMSG;
        memcpy(m, p, l);
        m[l] = '\0';
        (*names)[i] = m;
        m += l + 1;
    }
    return 0;
}

int rb_str_list(struct rbuf *r, const char ***list, uint32_t *n)
{
    uint64_t nb;

    *list = NULL;
    *n = 0;
    /* each string needs at least its length byte */
    if (rb_uv_max(r, rb_left(r), &nb))
        return -EBADMSG;
    if (!(*list = calloc(nb + 1, sizeof(**list))))
        return -ENOMEM;
    for (; *n < nb; (*n)++) {
        char *s;
        int rc = rb_str(r, &s);
        if (rc)
            return rc;
        (*list)[*n] = s;
    }
    return 0;
}

void wb_names(struct wbuf *w, const char *const *names, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        wb_uv(w, strlen(names[i]));
    for (uint32_t i = 0; i < n; i++)
        wb_bytes(w, names[i], strlen(names[i]));
}

void wb_str_list(struct wbuf *w, const char *const *list, uint32_t n)
{
    wb_uv(w, n);
    for (uint32_t i = 0; i < n; i++)
        wb_str(w, list[i]);
}

void str_list_free(const char **list, uint32_t n)
{
    for (uint32_t i = 0; list && i < n; i++)
        free((char *)list[i]);
    free(list);
}
