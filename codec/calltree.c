/* SPDX-License-Identifier: Apache-2.0 */
#include "codec/calltree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/footer.h"
#include "codec/wire.h"

int seg_calltree_encode(struct wbuf *out, const struct seg_calltree *t)
{
    wb_uv(out, t->ntypes);
    for (uint32_t ty = 0; ty < t->ntypes; ty++) {
        wb_sv(out, t->sum[ty]);
        wb_sv(out, t->cut[ty]);
    }
    wb_uv(out, t->nnames);
    wb_names(out, t->names, t->nnames);
    wb_uv(out, t->nnodes);
    for (uint32_t i = 0; i < t->nnodes; i++)
        wb_uv(out, t->parent[i]);
    for (uint32_t i = 0; i < t->nnodes; i++)
        wb_uv(out, t->name[i]);
    for (uint32_t ty = 0; ty < t->ntypes; ty++) {
        for (uint32_t i = 0; i < t->nnodes; i++)
            wb_sv(out, t->total[(size_t)ty * t->nnodes + i]);
        for (uint32_t i = 0; i < t->nnodes; i++)
            wb_sv(out, t->self[(size_t)ty * t->nnodes + i]);
    }
    wb_str_list(out, t->build_ids, t->nbuild_ids);
    return out->err ? -ENOMEM : 0;
}

void seg_calltree_free(struct seg_calltree *t)
{
    if (!t)
        return;
    free(t->names);
    free(t->parent);
    free(t->name);
    free(t->total);
    free(t->self);
    free(t->depth);
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
            WIRE_BAD("call tree of %s: truncated or bad %s", info->service, what);                 \
    } while (0)

int seg_calltree_decode(const uint8_t *buf, size_t len, const struct seg_section_info *info,
                        struct seg_calltree *out, char *err, size_t errlen)
{
    struct seg_calltree t = {0};
    uint8_t *raw = NULL;
    uint64_t ntypes, nnames, nnodes;
    char *mem = NULL;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (!buf || !info || !info->service || !info->tree_length)
        return -EINVAL;
    if ((ret = wire_frame_open(buf, len, info->tree_length, info->tree_crc, info->tree_raw,
                               "call tree", info->service, &raw, err, errlen)))
        return ret;
    struct rbuf r = {.p = raw, .len = info->tree_raw};
    NEED(!rb_uv_max(&r, SEG_MAX_TYPES, &ntypes) && ntypes >= 1, "type count");
    t.ntypes = (uint32_t)ntypes;
    for (uint64_t ty = 0; ty < ntypes; ty++)
        NEED(!rb_sv(&r, &t.sum[ty]) && !rb_sv(&r, &t.cut[ty]), "sum or cut");
    NEED(!rb_uv_max(&r, rb_left(&r), &nnames), "name count");
    t.nnames = (uint32_t)nnames;
    ret = rb_names(&r, nnames, &t.names, &mem);
    t.mem_ = mem;
    if (ret == -ENOMEM)
        goto out;
    NEED(!ret, "names");
    /* each node needs at least its parent and name bytes and two values a
     * type */
    NEED(!rb_uv_max(&r, rb_left(&r) / (2 + 2 * ntypes), &nnodes), "node count");
    t.nnodes = (uint32_t)nnodes;
    t.parent = malloc((nnodes + 1) * sizeof(*t.parent));
    t.name = malloc((nnodes + 1) * sizeof(*t.name));
    t.depth = malloc((nnodes + 1) * sizeof(*t.depth));
    t.total = malloc((ntypes * nnodes + 1) * sizeof(*t.total));
    t.self = malloc((ntypes * nnodes + 1) * sizeof(*t.self));
    if (!t.parent || !t.name || !t.depth || !t.total || !t.self) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < nnodes; i++) {
        uint64_t p;
        NEED(!rb_uv_max(&r, i, &p), "parent");
        t.parent[i] = (uint32_t)p;
        t.depth[i] = p ? t.depth[p - 1] + 1 : 1;
        NEED(t.depth[i] <= SEG_CALLTREE_MAX_DEPTH, "depth");
        t.path_frames += t.depth[i];
    }
    for (uint64_t i = 0; i < nnodes; i++) {
        uint64_t n;
        NEED(nnames && !rb_uv_max(&r, nnames - 1, &n), "name index");
        t.name[i] = (uint32_t)n;
    }
    for (uint64_t ty = 0; ty < ntypes; ty++) {
        for (uint64_t i = 0; i < nnodes; i++)
            NEED(!rb_sv(&r, &t.total[ty * nnodes + i]), "total value");
        for (uint64_t i = 0; i < nnodes; i++)
            NEED(!rb_sv(&r, &t.self[ty * nnodes + i]), "self value");
    }
    ret = rb_str_list(&r, &t.build_ids, &t.nbuild_ids);
    if (ret == -ENOMEM)
        goto out;
    NEED(!ret, "build-id");
    /* bytes left: fields of a later minor */
out:
    free(raw);
    if (ret)
        seg_calltree_free(&t);
    else
        *out = t;
    return ret;
}
