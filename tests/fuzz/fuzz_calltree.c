/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seg_calltree_decode (codec/calltree.h) on the input as a raw call tree
 * frame (compressed here, so the fuzzer reaches every field), and on the
 * input as the compressed bytes themselves; a decoded tree is encoded again
 * and must decode to the same counts, and is added to a profile
 * (ctree_merge), whose stacks must hold every node's self value.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/calltree.h"
#include "codec/wire.h"
#include "query/engine/ctree.h"

static void check(const uint8_t *buf, size_t len, uint64_t raw)
{
    struct seg_section_info in = {.service = "svc",
                                  .tree_offset = 16,
                                  .tree_length = len,
                                  .tree_raw = raw,
                                  .tree_crc = crc32c(buf, len)};
    struct seg_calltree t, u;
    struct wbuf re = {0}, z = {0};
    char err[256];

    if (!len || seg_calltree_decode(buf, len, &in, &t, err, sizeof(err)) != 0)
        return;
    if (t.ntypes < 1 || t.ntypes > 16)
        abort();
    uint64_t frames = 0;
    for (uint32_t i = 0; i < t.nnodes; i++) {
        if (t.parent[i] > i || t.name[i] >= t.nnames || t.depth[i] < 1 ||
            t.depth[i] > SEG_CALLTREE_MAX_DEPTH ||
            t.depth[i] != (t.parent[i] ? t.depth[t.parent[i] - 1] + 1 : 1))
            abort();
        frames += t.depth[i];
    }
    if (frames != t.path_frames)
        abort();
    if (seg_calltree_encode(&re, &t) == 0 && zstd_append(&z, re.p, re.len, 1) == 0) {
        in.tree_length = z.len;
        in.tree_raw = re.len;
        in.tree_crc = crc32c(z.p, z.len);
        if (seg_calltree_decode(z.p, z.len, &in, &u, err, sizeof(err)) != 0 ||
            u.nnodes != t.nnodes || u.ntypes != t.ntypes || u.nnames != t.nnames ||
            u.nbuild_ids != t.nbuild_ids || u.path_frames != t.path_frames)
            abort();
        seg_calltree_free(&u);
    }
    /* bounded work: the paths of a small tree into a profile */
    struct mprof *mp = t.path_frames <= (1u << 16) ? mprof_new(1) : NULL;
    if (mp && ctree_merge(mp, &t, t.ntypes - 1, "cpu", "nanoseconds") == 0) {
        if (mp->ctrees != 1 || mp->cut[0] != t.cut[t.ntypes - 1])
            abort();
        for (uint32_t s = 0; s < mp->nstacks; s++)
            if (mprof_stack_len(mp, s) < 1)
                abort();
    }
    mprof_free(mp);
    wb_free(&re);
    wb_free(&z);
    seg_calltree_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wbuf z = {0};

    if (zstd_append(&z, data, size, 1) == 0)
        check(z.p, z.len, size);
    wb_free(&z);
    check(data, size, size * 4 + 64);
    return 0;
}
