/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merge — the merge kernel: adds one decoded section's samples into a
 * merged profile. It maps the section's ids to the mprof's once per
 * section (functions and locations interned lazily, stacks through a dense
 * map) and then aggregates rows with one array add each; series and label
 * pairs are merged likewise (DESIGN.md §6: >= 500 M sample-rows/s/core).
 *
 * Samples are kept when their series matches the query's selector (one pass
 * over the section's series, not per sample) and their time is in
 * [from, until). The kernel checks the query's qcancel once per series.
 */
#ifndef STOKE_QUERY_MERGE_H
#define STOKE_QUERY_MERGE_H

#include "query/engine/mprof.h"
#include "query/engine/query.h"

struct seg_section;

/*
 * Adds the samples of @sec in [q->from, q->until) of the series @q's
 * selector matches into @mp. @host is the object's host (default
 * host_name). Returns 0, 1 when the section lacks the profile type,
 * -ENOMEM, or q->cancel's error.
 */
int engine_merge_section(struct mprof *mp, const struct seg_section *sec, const char *host,
                         const struct query *q);

/*
 * The function totals frame (codec/topsum.h) of the section whose
 * compressed bytes are @bytes (@len, described by @info): every
 * function's self and total in each of its sample types over all its
 * series and times, named as a query without deferred symbolization names
 * them, and the build-ids of its unnamed frames. A seg_topsum_fn (@ctx
 * unused); compaction derives the same frame from the section's call tree
 * (ctree.h engine_summaries_top) and calls this only for a section with
 * two types alike, which has no tree. *raw is NULL when the section has no
 * types. 0, -EBADMSG (bytes that do not decode), -ENOMEM.
 */
struct seg_section_info;
int engine_top_summary(void *ctx, const uint8_t *bytes, size_t len,
                       const struct seg_section_info *info, uint8_t **raw, size_t *rawlen);

/* Every series, time and sample type of @sec into @mp, a fresh profile of
 * sec->ntypes columns (column t: the section's type t when no two types
 * are alike): what a section summary is built from. 0 or -ENOMEM. */
int engine_merge_whole_section(struct mprof *mp, const struct seg_section *sec);

/* The build-ids of @sec's frames stored unnamed: those a worker's
 * deferred symbolization might name (dsym.h). With any of them known, a
 * query reads the section's rows rather than its summaries. Interned in
 * @bids (an empty intern string set, the caller's to free), listed in
 * *@ids (malloc'd, *@n of them, pointing into @bids). 0 or -ENOMEM. */
struct intern;
int engine_unnamed_build_ids(const struct seg_section *sec, struct intern *bids, const char ***ids,
                             uint32_t *n);

#endif
