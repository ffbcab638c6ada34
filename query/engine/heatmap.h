/* SPDX-License-Identifier: Apache-2.0 */
/*
 * heatmap — what the individual profiles of a query (mprof.ind, collected
 * by a Q_INDIVIDUAL query) look like over time, as Pyroscope's SelectHeatmap
 * defines it: slots of @step on x, HEATMAP_BUCKETS linear buckets between
 * the smallest and the largest profile value on y, a count per cell and
 * one exemplar per cell, its largest profile (ties: the smallest id).
 * Series per group_by label values, like SelectSeries.
 *
 * Slot k covers [from + k*step, from + (k+1)*step) and is stamped with its
 * right edge, as Pyroscope stamps its slots. Bucket b covers [y_min[b],
 * y_min[b + 1]), the last one also its upper end; with every value equal,
 * the range is [v, v + 1) (Pyroscope's rule), so bucket 19 holds them all.
 *
 * Only non-empty cells are built: memory follows the profiles, not the grid.
 * Also the ordering of individual profile lists (/api/v1/profiles).
 */
#ifndef STOKE_QUERY_HEATMAP_H
#define STOKE_QUERY_HEATMAP_H

#include <stddef.h>
#include <stdint.h>

#include "query/engine/mprof.h"

#define HEATMAP_BUCKETS 20
/* Up to this many (group, slot, bucket) cells the heatmap counts into a
 * dense grid (12 bytes a cell); past it (many groups) it sorts the
 * profiles' cell keys instead. Both give the same cells. */
#define HEATMAP_DENSE_CELLS (1u << 20)
extern size_t heatmap_dense_cells; /* HEATMAP_DENSE_CELLS; tests lower it */

struct heatmap_cell {
    uint32_t group, slot, bucket;
    uint32_t count;
    size_t best; /* index into mprof.ind */
};

struct heatmap {
    int64_t from, step;
    uint32_t nslots;
    int64_t vmin, vmax;                 /* 0, 0 when there is no profile */
    int64_t y_min[HEATMAP_BUCKETS + 1]; /* bucket b: [y_min[b], y_min[b + 1]) */
    /* groups: ngroups (at least 1 when there are cells); group g's labels
     * are the group_by labels of profile group_rep[g] */
    size_t *group_rep;
    uint32_t ngroups;
    struct heatmap_cell *cells; /* sorted by group, slot, bucket */
    size_t ncells;
    uint64_t profiles; /* sum of the counts */
};

/*
 * Builds the heatmap of @p's individual profiles over [@from, @until) in
 * slots of @step ms (query_series_grid's checks: the caller rejects more
 * than SERIES_MAX_POINTS slots), grouped by the ','-separated label names
 * @group_by (NULL or "" = one series). 0, -EINVAL (bad grid), -ENOMEM.
 * Free with heatmap_free.
 */
int heatmap_build(const struct mprof *p, int64_t from, int64_t until, int64_t step,
                  const char *group_by, struct heatmap *out);
void heatmap_free(struct heatmap *h);

/* The bucket of value @v (y_min[0] <= v <= vmax). */
uint32_t heatmap_bucket(const struct heatmap *h, int64_t v);

/* Merges the entries of @p's individual profiles that share an id (the
 * parts of a profile found in two sections, summed), keeping their order:
 * O(n), no sort. Call before heatmap_build. 0 or -ENOMEM. */
int individual_dedup(struct mprof *p);

/* Value of label @name in label set @lset of @p, or NULL. */
const char *mprof_lset_value(const struct mprof *p, uint32_t lset, const char *name);

/* Sorts @p's individual profiles by time, then id (or, with @by_value, by
 * value descending, then time and id), one entry per id: the parts of a
 * profile found in two sections are summed. */
void individual_sort(struct mprof *p, bool by_value);

#endif
