/* SPDX-License-Identifier: Apache-2.0 */
#include "codec/topsum.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/footer.h"
#include "codec/wire.h"

int seg_topsum_encode(struct wbuf *out, const struct seg_topsum *t)
{
    wb_uv(out, t->ntypes);
    wb_uv(out, t->nfuncs);
    for (uint32_t i = 0; i < t->nfuncs; i++)
        wb_uv(out, strlen(t->names[i]));
    for (uint32_t i = 0; i < t->nfuncs; i++)
        wb_bytes(out, t->names[i], strlen(t->names[i]));
    for (uint32_t ty = 0; ty < t->ntypes; ty++) {
        const int64_t *s = t->self + (size_t)ty * t->nfuncs,
                      *tot = t->total + (size_t)ty * t->nfuncs;
        wb_sv(out, t->sum[ty]);
        for (uint32_t i = 0; i < t->nfuncs; i++)
            wb_sv(out, s[i]);
        for (uint32_t i = 0; i < t->nfuncs; i++)
            wb_sv(out, tot[i]);
    }
    wb_uv(out, t->nbuild_ids);
    for (uint32_t i = 0; i < t->nbuild_ids; i++)
        wb_str(out, t->build_ids[i]);
    return out->err ? -ENOMEM : 0;
}

void seg_topsum_free(struct seg_topsum *t)
{
    if (!t)
        return;
    free(t->names);
    free(t->self);
    free(t->total);
    for (uint32_t i = 0; t->mem_ && i < t->nbuild_ids; i++)
        free((char *)t->build_ids[i]); /* decoded: each its own allocation */
    free(t->build_ids);
    free(t->mem_);
    memset(t, 0, sizeof(*t));
}

#define NEED(cond, what)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            WIRE_BAD("function totals of %s: truncated or bad %s", info->service, what);           \
    } while (0)

int seg_topsum_decode(const uint8_t *buf, size_t len, const struct seg_section_info *info,
                      struct seg_topsum *out, char *err, size_t errlen)
{
    struct seg_topsum t = {0};
    uint8_t *raw = NULL;
    uint64_t ntypes, nfuncs, nb;
    size_t strbytes = 0;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (!buf || !info || !info->service || !info->top_length)
        return -EINVAL;
    if (len != info->top_length || crc32c(buf, len) != info->top_crc) {
        errmsg(err, errlen, "function totals of %s: length or checksum mismatch", info->service);
        return -EBADMSG;
    }
    if ((ret = zstd_decode(buf, len, info->top_raw, &raw))) {
        errmsg(err, errlen, "function totals of %s: do not decompress", info->service);
        return ret;
    }
    struct rbuf r = {.p = raw, .len = info->top_raw};
    NEED(!rb_uv_max(&r, SEG_MAX_TYPES, &ntypes) && ntypes >= 1, "type count");
    /* each function needs at least its length byte and two values a type */
    NEED(!rb_uv_max(&r, rb_left(&r) / (1 + 2 * ntypes), &nfuncs), "function count");
    t.ntypes = (uint32_t)ntypes;
    t.nfuncs = (uint32_t)nfuncs;
    struct rbuf lens = r;
    for (uint64_t i = 0; i < nfuncs; i++) {
        uint64_t l;
        NEED(!rb_uv_max(&r, rb_left(&r), &l), "name length");
        strbytes += l + 1;
    }
    NEED(strbytes - nfuncs <= rb_left(&r), "names");
    t.names = malloc((nfuncs + 1) * sizeof(*t.names));
    t.self = malloc((ntypes * nfuncs + 1) * sizeof(*t.self));
    t.total = malloc((ntypes * nfuncs + 1) * sizeof(*t.total));
    char *mem = t.mem_ = malloc(strbytes + 1);
    if (!t.names || !t.self || !t.total || !mem) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < nfuncs; i++) {
        uint64_t l;
        const uint8_t *p;
        rb_uv(&lens, &l);
        NEED(!rb_bytes(&r, &p, l) && !memchr(p, 0, l), "name");
        memcpy(mem, p, l);
        mem[l] = '\0';
        t.names[i] = mem;
        mem += l + 1;
    }
    for (uint64_t ty = 0; ty < ntypes; ty++) {
        NEED(!rb_sv(&r, &t.sum[ty]), "sum");
        for (uint64_t i = 0; i < nfuncs; i++)
            NEED(!rb_sv(&r, &t.self[ty * nfuncs + i]), "self value");
        for (uint64_t i = 0; i < nfuncs; i++)
            NEED(!rb_sv(&r, &t.total[ty * nfuncs + i]), "total value");
    }
    NEED(!rb_uv_max(&r, rb_left(&r), &nb), "build-id count");
    if (!(t.build_ids = calloc(nb + 1, sizeof(*t.build_ids)))) {
        ret = -ENOMEM;
        goto out;
    }
    for (; t.nbuild_ids < nb; t.nbuild_ids++) {
        char *s;
        NEED(!rb_str(&r, &s), "build-id");
        /* rb_str allocates: keep it in the list, freed with it */
        t.build_ids[t.nbuild_ids] = s;
    }
    /* bytes left: fields of a later minor */
out:
    free(raw);
    if (ret)
        seg_topsum_free(&t);
    else {
        *out = t;
    }
    return ret;
}
