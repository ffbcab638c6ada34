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
    wb_names(out, t->names, t->nfuncs);
    for (uint32_t ty = 0; ty < t->ntypes; ty++) {
        const int64_t *s = t->self + (size_t)ty * t->nfuncs,
                      *tot = t->total + (size_t)ty * t->nfuncs;
        wb_sv(out, t->sum[ty]);
        for (uint32_t i = 0; i < t->nfuncs; i++)
            wb_sv(out, s[i]);
        for (uint32_t i = 0; i < t->nfuncs; i++)
            wb_sv(out, tot[i]);
    }
    wb_str_list(out, t->build_ids, t->nbuild_ids);
    return out->err ? -ENOMEM : 0;
}

void seg_topsum_free(struct seg_topsum *t)
{
    if (!t)
        return;
    free(t->names);
    free(t->self);
    free(t->total);
    if (t->mem_) /* decoded: each build-id its own allocation */
        str_list_free(t->build_ids, t->nbuild_ids);
    else
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
    uint64_t ntypes, nfuncs;
    char *mem = NULL;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (!buf || !info || !info->service || !info->top_length)
        return -EINVAL;
    if ((ret = wire_frame_open(buf, len, info->top_length, info->top_crc, info->top_raw,
                               "function totals", info->service, &raw, err, errlen)))
        return ret;
    struct rbuf r = {.p = raw, .len = info->top_raw};
    NEED(!rb_uv_max(&r, SEG_MAX_TYPES, &ntypes) && ntypes >= 1, "type count");
    /* each function needs at least its length byte and two values a type */
    NEED(!rb_uv_max(&r, rb_left(&r) / (1 + 2 * ntypes), &nfuncs), "function count");
    t.ntypes = (uint32_t)ntypes;
    t.nfuncs = (uint32_t)nfuncs;
    ret = rb_names(&r, nfuncs, &t.names, &mem);
    t.mem_ = mem;
    if (ret == -ENOMEM)
        goto out;
    NEED(!ret, "names");
    t.self = malloc((ntypes * nfuncs + 1) * sizeof(*t.self));
    t.total = malloc((ntypes * nfuncs + 1) * sizeof(*t.total));
    if (!t.self || !t.total) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint64_t ty = 0; ty < ntypes; ty++) {
        NEED(!rb_sv(&r, &t.sum[ty]), "sum");
        for (uint64_t i = 0; i < nfuncs; i++)
            NEED(!rb_sv(&r, &t.self[ty * nfuncs + i]), "self value");
        for (uint64_t i = 0; i < nfuncs; i++)
            NEED(!rb_sv(&r, &t.total[ty * nfuncs + i]), "total value");
    }
    ret = rb_str_list(&r, &t.build_ids, &t.nbuild_ids);
    if (ret == -ENOMEM)
        goto out;
    NEED(!ret, "build-id");
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
