/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topsum — the function totals frame of a section (docs/format.md §3.5):
 * for every function name of the section, its self and total value in
 * each sample type, over all of the section's series and times, and the
 * build-ids of the section's unnamed frames. Compaction writes one per
 * block section (codec/segment.h seg_writer_set_topsum); a query for top
 * functions whose range covers the section and whose selector keeps every
 * series reads this frame instead of the section (query/engine/engine.c).
 *
 * This module owns the frame's bytes only: encoding from arrays, and a
 * decoder that checks every count against the bytes left and the CRC and
 * sizes the footer record gives. What the numbers mean (how frames are
 * named, recursion counted once) is the query engine's (merge.h).
 */
#ifndef STOKE_TOPSUM_H
#define STOKE_TOPSUM_H

#include <stddef.h>
#include <stdint.h>

#include "codec/segment.h"
#include "common/buf.h"

struct seg_topsum {
    uint32_t ntypes; /* the section's sample types, 1..16 */
    uint32_t nfuncs;
    const char **names;  /* nfuncs, distinct, into one allocation */
    int64_t *self;       /* [type * nfuncs + function] */
    int64_t *total;      /* [type * nfuncs + function]; recursion counted once */
    int64_t sum[16];     /* each type's sum over all rows */
    uint32_t nbuild_ids; /* build-ids of frames stored unnamed (dsym.h) */
    const char **build_ids;
    void *mem_; /* what names and build_ids point into */
};

/* The raw frame of @t (names distinct). Appends to @out; 0 or -ENOMEM. */
int seg_topsum_encode(struct wbuf *out, const struct seg_topsum *t);

/*
 * Decodes the compressed frame @buf of @len bytes, described by @info's
 * top_* fields (length, raw size, CRC). 0, -EBADMSG with @err, -ENOMEM.
 * Free with seg_topsum_free.
 */
int seg_topsum_decode(const uint8_t *buf, size_t len, const struct seg_section_info *info,
                      struct seg_topsum *out, char *err, size_t errlen);
/* Frees what seg_topsum_decode allocated (not for a caller-built @t). */
void seg_topsum_free(struct seg_topsum *t);

#endif
