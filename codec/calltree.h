/* SPDX-License-Identifier: Apache-2.0 */
/*
 * calltree — the call tree frame of a section (docs/format.md §3.6): the
 * section's stacks, over all its series and times, merged into one tree of
 * function names (root first), each node with its total and self value in
 * every sample type. A tree too large for the frame keeps its largest
 * nodes (a node is kept only with its parent), and says per type how large
 * the largest left-out node was: no node of a tree merged from such frames
 * is off by more than the sum of their cuts. Compaction writes one per
 * block section (codec/segment.h seg_writer_set_calltree); a flame graph
 * whose range covers the section and whose selector keeps every series
 * reads it instead of the rows (query/engine/engine.c).
 *
 * This module owns the frame's bytes only: encoding from arrays, and a
 * decoder that checks every count and reference against the bytes left,
 * the CRC and sizes the footer record gives, and bounds the tree's depth.
 * How frames are named and the tree is cut is the query engine's
 * (merge.h engine_calltree_summary).
 */
#ifndef STOKE_CALLTREE_H
#define STOKE_CALLTREE_H

#include <stddef.h>
#include <stdint.h>

#include "codec/segment.h"
#include "common/buf.h"

/* The deepest node a frame may hold (the root's children are depth 1). */
#define SEG_CALLTREE_MAX_DEPTH 4096

struct seg_calltree {
    uint32_t ntypes; /* the section's sample types, 1..16 */
    int64_t sum[16]; /* each type's sum over all rows (the root's total) */
    int64_t cut[16]; /* each type's largest total of a node left out; 0: none */
    uint32_t nnames;
    const char **names; /* nnames, into one allocation */
    uint32_t nnodes;
    /* parent[i]: 0 for a child of the root, k for a child of node k - 1
     * (k <= i: parents come first) */
    uint32_t *parent;
    uint32_t *name;       /* nnodes indexes into names */
    int64_t *total;       /* [type * nnodes + node]: the node's subtree */
    int64_t *self;        /* [type * nnodes + node]: stacks ending at the node */
    uint32_t *depth;      /* decoded only: 1 for the root's children */
    uint64_t path_frames; /* decoded only: the sum of every node's depth */
    uint32_t nbuild_ids;  /* build-ids of frames stored unnamed (dsym.h) */
    const char **build_ids;
    void *mem_; /* what names and build_ids point into */
};

/* The raw frame of @t (parents before children). Appends to @out; 0 or
 * -ENOMEM. */
int seg_calltree_encode(struct wbuf *out, const struct seg_calltree *t);

/*
 * Decodes the compressed frame @buf of @len bytes, described by @info's
 * tree_* fields (length, raw size, CRC). 0, -EBADMSG with @err, -ENOMEM.
 * Free with seg_calltree_free.
 */
int seg_calltree_decode(const uint8_t *buf, size_t len, const struct seg_section_info *info,
                        struct seg_calltree *out, char *err, size_t errlen);
/* Frees what seg_calltree_decode allocated (not for a caller-built @t). */
void seg_calltree_free(struct seg_calltree *t);

#endif
