/* SPDX-License-Identifier: Apache-2.0 */
/*
 * views — what a merged profile looks like to users: top functions, the
 * flame graph tree (cut to max_nodes, with "other" nodes keeping totals
 * consistent), the diff of two profiles, the order of series, label names
 * and values, and the pprof export. Every API (native, Pyroscope) shapes
 * its answers from these, so they agree by construction.
 *
 * Trees are built and printed iteratively (explicit stacks), never by
 * recursion, so a hostile stack depth costs memory, not the C stack.
 */
#ifndef STOKE_QUERY_VIEWS_H
#define STOKE_QUERY_VIEWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "query/engine/mprof.h"

struct top_row {
    uint32_t name; /* string id in the mprof */
    int64_t self, total;
};

/* Self and total of every function in column @col, sorted by self, total,
 * then name. Allocates *rows. Returns 0 or -ENOMEM. */
int view_top(const struct mprof *p, uint32_t col, struct top_row **rows, size_t *n, int64_t *total);

/* One function of a diff: self in the left and right profiles, and the
 * change of its share (right share - left share). @name points into one
 * of the profiles' strings. */
struct diff_row {
    const char *name;
    int64_t l, r;
    double d;
};

/* The functions of @left and @right (column 0 each) joined by name, those
 * with self 0 on both sides left out, sorted by |d| descending, then name;
 * the totals in *ltotal, *rtotal. Allocates *rows. 0 or -ENOMEM. */
int view_diff(const struct mprof *left, const struct mprof *right, struct diff_row **rows,
              size_t *n, int64_t *ltotal, int64_t *rtotal);

/* The series (groups) of @p in the order they are shown: by label value.
 * With @limit (0 = all) below the number of groups, only the @limit
 * largest (sum of points; ties by value) are kept. Allocates *order; *n
 * groups in it. 0 or -ENOMEM. */
int view_series_order(const struct mprof *p, uint32_t limit, uint32_t **order, uint32_t *n);

/* The flame graph tree cut to @max_nodes, visited depth first: enter for a
 * node (the root is "total" at depth 0; children by total descending, then
 * name; an "other" child per parent holds what was cut), then its children,
 * then leave. Returns 0 or -ENOMEM. */
struct flame_visit {
    void (*enter)(void *ctx, uint32_t depth, const char *name, int64_t self, int64_t total);
    void (*leave)(void *ctx, uint32_t depth);
};
int view_flame_walk(const struct mprof *p, uint32_t col, uint32_t max_nodes,
                    const struct flame_visit *v, void *ctx);
/*
 * For @p built partly from call trees (mprof.ctrees; query.flame): 1 when
 * view_flame_walk's graph of column @col (0) cut to @max_nodes is the one
 * the sections' rows give, node for node, as mprof.cpf proves; 0 when that
 * cannot be shown (the caller reads the rows), and 1 for no trees.
 * @aggregate names the frame of the trees' left-out callees (ctree.h
 * CTREE_OTHER), never a node of an exact graph. -ENOMEM.
 */
int view_flame_proved(const struct mprof *p, uint32_t col, uint32_t max_nodes,
                      const char *aggregate);

/* The largest @k values added so far, as a min-heap (@v holds @k, the
 * caller allocates it): what bounds the call-tree builds. A tree cut to
 * max_nodes by total never shows a node below the max_nodes-th largest
 * total; with totals that only shrink towards the leaves, the (max_nodes +
 * 1)-th largest of the nodes built so far is below that, and nothing under
 * a node smaller than it needs building (view_flame_walk and the Pyroscope
 * diff tree build level by level with it). */
struct view_topk {
    int64_t *v;
    uint32_t n, k;
};
void view_topk_add(struct view_topk *h, int64_t x);
/* The smallest of the @k largest, or INT64_MIN while fewer were added. */
static inline int64_t view_topk_min(const struct view_topk *h)
{
    return h->n == h->k && h->k ? h->v[0] : INT64_MIN;
}

/* Writes the flame graph JSON object ({"total":..., "tree": {...}}, no
 * closing brace, so the caller can append stats) into @out. */
int view_flame_json(const struct mprof *p, uint32_t col, uint32_t max_nodes, struct wbuf *out);

/* The call graph of column @col in Graphviz DOT (as pprof's -dot draws
 * it): the @max_nodes functions of largest cumulative value as boxes
 * labelled with flat and cumulative values, caller -> callee edges between
 * them weighted by the value that flowed through. Flat and cumulative
 * values count each sample once per function, edges once per stack.
 * Appends to @out; 0 or -ENOMEM. */
int view_dot(const struct mprof *p, uint32_t col, uint32_t max_nodes, struct wbuf *out);

/* Adds to @set (an intern string set) the label names of the pairs @p
 * saw (@name NULL), or the values it saw of label @name. 0 or -ENOMEM. */
int view_label_strings(const struct mprof *p, const char *name, struct intern *set);
/* The strings of @set sorted by strcmp: *out (allocated, @set->n
 * pointers into @set, valid while @set is unchanged). 0 or -ENOMEM. */
int view_sorted_strings(const struct intern *set, const char ***out);

/* The pprof of @p (every named column) as a packed protobuf message, and
 * the same gzip-compressed (what pprof files and /api/v1/pprof hold).
 * Allocate *buf. 0 or -ENOMEM (-EIO when zlib fails). */
int view_pprof_pb(const struct mprof *p, int64_t time_ms, int64_t duration_ms, uint8_t **buf,
                  size_t *len);
int view_pprof(const struct mprof *p, int64_t time_ms, int64_t duration_ms, uint8_t **buf,
               size_t *len);

#endif
