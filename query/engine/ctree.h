/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctree — call tree summaries of sections (codec/calltree.h, docs/format.md
 * §3.6): compaction's builder, which merges a section's stacks into a tree
 * of function names and cuts it to its largest nodes, and the query side,
 * which adds such a tree to a merged profile as the stacks of its nodes.
 *
 * A profile built partly from trees holds, per cut node, one more stack:
 * the node's path ending in CTREE_OTHER, whose value is what the section
 * left out below the node. mprof.cut sums the frames' cuts: no node of the
 * flame graph drawn from the profile is off by more than it, and mprof.cpf
 * shows when none is off at all (views.h view_flame_proved). Only flame
 * graphs read trees (query.h, query.flame); any other view reads rows.
 */
#ifndef STOKE_QUERY_CTREE_H
#define STOKE_QUERY_CTREE_H

#include <stddef.h>
#include <stdint.h>

#include "codec/calltree.h"
#include "query/engine/mprof.h"

/* The frame name that holds the callees a section's tree left out. */
#define CTREE_OTHER "[other callees]"

/* Nodes a section's tree keeps at most; a tree of more is cut (older
 * blocks were cut at 16384; readers take a tree of any size). A
 * graph of N nodes is proved from the trees (views.h view_flame_proved)
 * only while the trees keep what the graph shows: at calibrated diversity
 * 16384 proved up to 4096 nodes, 32768 proves Drilldown's 16384 and needs
 * 37 MB to merge a day of one service (65536: 75 MB, past the default
 * 64 MiB query; BENCHMARKS.md). */
#define CTREE_MAX_NODES 32768

/* The most nodes an unproved graph from trees is kept for, within its
 * max_error (the native API without exact=true). */
#define CTREE_APPROX_MAX_NODES 4096

struct seg_section_info;

/*
 * The call tree frame (codec/calltree.h) of the section whose compressed
 * bytes are @bytes (@len, described by @info): its stacks over all its
 * series and times, named as a query without deferred symbolization names
 * them, merged root first and cut to CTREE_MAX_NODES nodes (or the number
 * @ctx points to, a uint32_t, when not NULL), and the build-ids of its
 * unnamed frames. A seg_topsum_fn; compaction uses the pair below, which
 * falls back to this for a section the totals hook did not see. *raw is
 * NULL when the section has no types or two alike (a query by type could
 * not tell them apart in a tree). 0, -EBADMSG, -ENOMEM.
 */
int engine_calltree_summary(void *ctx, const uint8_t *bytes, size_t len,
                            const struct seg_section_info *info, uint8_t **raw, size_t *rawlen);

/*
 * Both summaries of each section from one merge (compaction's writers):
 * engine_summaries_top is the writer's totals hook (seg_writer_set_topsum)
 * and builds the section's tree too, deriving the function totals from it
 * (engine_top_summary's answer, without merging the rows once per type);
 * it keeps the tree in @ctx, a ctree_cache, for engine_summaries_tree, the
 * call tree hook (seg_writer_set_calltree), which the writer calls after
 * every totals hook. A section the first did not see is built anew. Free
 * the cache after seg_writer_finish.
 */
struct ctree_cache;
struct ctree_cache *ctree_cache_new(void);
void ctree_cache_free(struct ctree_cache *c);
int engine_summaries_top(void *ctx, const uint8_t *bytes, size_t len,
                         const struct seg_section_info *info, uint8_t **raw, size_t *rawlen);
int engine_summaries_tree(void *ctx, const uint8_t *bytes, size_t len,
                          const struct seg_section_info *info, uint8_t **raw, size_t *rawlen);

/*
 * Adds type @col of the decoded tree @t to column 0 of @mp: each node with
 * a self value as its path's stack, and what a cut node's callees left out
 * as its path with CTREE_OTHER as leaf; the tree's cut to mp->cut[0], and
 * what proves a graph exact to mp->cpf (a node under a parent with cut
 * callees, or with cut callees itself, gets its path's stack for it, of
 * value 0 when it has no self).
 * @type and @unit name the column when @mp has no type yet. 0 or -ENOMEM.
 */
int ctree_merge(struct mprof *mp, const struct seg_calltree *t, uint32_t col, const char *type,
                const char *unit);

#endif
