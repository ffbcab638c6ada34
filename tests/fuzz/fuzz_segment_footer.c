/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seg_footer_parse on the input as a whole object, as a short tail, and —
 * so the fuzzer reaches the footer's fields past the checksums — on an
 * object built around the input as the raw footer body; seg_footer_read
 * (the suffix reads of a reader that knows only the object's length) on
 * the same objects; and manifest_entry_segment_prefix on the input as a
 * key.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/footer.h"
#include "codec/manifest.h"
#include "codec/segment.h"
#include "codec/wire.h"

static void parse(const uint8_t *buf, size_t len, size_t tail)
{
    struct seg_footer *f = NULL;
    uint64_t need = 0;
    char err[256];
    if (tail > len)
        tail = len;
    int r = seg_footer_parse(buf + len - tail, tail, len, &f, &need, err, sizeof(err));
    if (r == 0) {
        for (size_t i = 0; i < f->nsections; i++)
            if (f->sections[i].offset + f->sections[i].length > len)
                abort(); /* a parsed footer never points outside the object */
        struct seg_footer *c = seg_footer_copy(f);
        seg_footer_free(c);
        seg_footer_free(f);
    } else if (r == -EAGAIN && need >= len) {
        abort();
    }
}

struct obj {
    const uint8_t *p;
    size_t len;
};

/* A store's ranged get over @ctx: clipped to the object, each read in a
 * buffer of exactly its size. */
static int obj_read(void *ctx, uint64_t off, uint64_t len, uint8_t **out, size_t *outlen)
{
    const struct obj *o = ctx;
    if (len > SEG_FOOTER_TAIL && len > SEG_MAX_FOOTER)
        abort(); /* never more than the reader's caps */
    if (off > o->len)
        off = o->len;
    if (len > o->len - off)
        len = o->len - off;
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return -ENOMEM;
    memcpy(b, o->p + off, len);
    *out = b;
    *outlen = len;
    return 0;
}

static void read_footer(const uint8_t *buf, size_t len)
{
    struct obj o = {buf, len};
    struct seg_footer *f = NULL;
    unsigned n = 0;
    char err[256];
    /* the listing's length, and one that is wrong (longer than the object) */
    for (uint64_t claim = len; claim <= (uint64_t)len + 7; claim += 7) {
        int r = seg_footer_read(obj_read, &o, claim, &f, &n, err, sizeof(err));
        if (r == 0) {
            if (claim != len || n < 1 || n > 2)
                abort();
            seg_footer_free(f);
        } else if (f || r == -EAGAIN) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(data, size, size);
    parse(data, size, 64);
    read_footer(data, size);
    {
        char key[1024], pre[1024];
        size_t n = size < sizeof(key) - 1 ? size : sizeof(key) - 1;
        memcpy(key, data, n);
        key[n] = 0;
        int r = manifest_entry_segment_prefix(key, pre, sizeof(pre));
        if (r > 0 && (size_t)r != strlen(pre))
            abort();
    }

    struct wbuf o = {0};
    uint8_t hdr[SEG_HEADER_LEN] = "STKS", tr[SEG_TRAILER_LEN];
    wr_u16(hdr + 4, SEG_MAJOR);
    wr_u32(hdr + 12, crc32c(hdr, 12));
    wb_bytes(&o, hdr, sizeof(hdr));
    wb_bytes(&o, data, size < 256 ? size : 256); /* stand-in section bytes */
    uint64_t foff = o.len;
    if (zstd_append(&o, data, size, 1) == 0 && !o.err) {
        wr_u64(tr, foff);
        wr_u32(tr + 8, (uint32_t)(o.len - foff));
        wr_u32(tr + 12, (uint32_t)size);
        wr_u32(tr + 16, crc32c(o.p + foff, o.len - foff));
        wr_u16(tr + 20, SEG_MAJOR);
        wr_u16(tr + 22, 0);
        wr_u32(tr + 24, crc32c(tr, 24));
        memcpy(tr + 28, "STKE", 4);
        wb_bytes(&o, tr, sizeof(tr));
        if (!o.err) {
            parse(o.p, o.len, o.len);
            read_footer(o.p, o.len);
        }
    }
    wb_free(&o);
    return 0;
}
