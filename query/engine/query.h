/* SPDX-License-Identifier: Apache-2.0 */
/*
 * query — what a query asks the engine: tenant, selector, time range,
 * profile type and mode (profile, series, label pairs), plus the shard a
 * peer reads. Every API builds one (serve/), peers send it to each other
 * (peer.h), the merge kernel and the planner read it.
 *
 * Also the checks of its parts that every way in applies before the
 * engine runs: profile type ids, label names and the series grid. The time
 * range's check is plan_range_check (plan.h).
 */
#ifndef STOKE_QUERY_QUERY_H
#define STOKE_QUERY_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "query/engine/cancel.h"
#include "query/engine/selector.h"

struct dsym;

#define DEFAULT_PROFILE_TYPE "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
#define SERIES_MAX_POINTS    11000
#define QUERY_MAX_GROUP_BY   16 /* labels in one group_by list */

enum qmode {
    Q_PROFILE,    /* stacks and values (top, flame graph, diff, pprof) */
    Q_SERIES,     /* per-step sums grouped by a label */
    Q_LABELS,     /* label pairs of matching series */
    Q_TOP,        /* function totals only (mprof.top): the top table; read from
                     a section's function totals frame where they answer
                     exactly (engine.h), else from its rows */
    Q_INDIVIDUAL, /* the individual profiles: id, time, value, labels (never
                     sent to peers: after the modes peer.c accepts) */
};

/*
 * An individual profile is one window of one series as its writer added
 * it: the rows of one (series, time) of a section. Its id is what
 * identifies it, never where it is stored: the window's start (Unix ms) and
 * a 64-bit hash of the tenant, the section's service and the series' stored
 * label pairs (query_series_hash), so it survives compaction, which moves
 * rows between objects but keeps series labels and times. Written as a
 * UUIDv7 (docs/format.md §10): the first 48 bits are the time, so a query
 * by id reads only the hour that holds it.
 */
struct prof_id {
    int64_t time_ms;
    uint64_t hash;
};
#define PROF_ID_LEN           36   /* characters of the text form */
#define QUERY_MAX_PROFILE_IDS 1024 /* ids in one selection */

struct query {
    const char *tenant;
    const struct selector *sel;
    const char *selector_text; /* forwarded to peers */
    int64_t from, until;
    const char *profile_type; /* NULL: default; for Q_LABELS any type */
    enum qmode mode;
    /* Q_PROFILE: every sample type (pprof export). Q_SERIES with
     * profile_type NULL: label sets only (Series): a group per (group_by
     * values, profile type id), its key the group_by values and the type id
     * (query_group_key_split with one more value), marked present, no sums;
     * no sample values are read. */
    bool all_types;
    int64_t step; /* Q_SERIES */
    /* Q_SERIES: NULL or "" = one series; "a" groups by label a (the group
     * value is a's value); "a,b,..." by several (the group value is the
     * group key of query_group_key_split). */
    const char *group_by;
    /* Q_LABELS, a hint for answering from the footers (query/engine/
     * footers.h): NULL = every pair is wanted; "" = only the label names
     * are read from the answer; "a" = only a's values. Not sent to peers. */
    const char *labels_of;
    /* Q_SERIES: each point also gets its exemplar, the largest individual
     * profile in its step (mprof.ex). */
    bool exemplars;
    /* Q_PROFILE for a flame graph only: a section wholly inside the range
     * whose every series matches may be read from its call tree frame, cut
     * to its largest nodes (ctree.h; mprof.cut says by how much). */
    bool flame;
    /* Q_PROFILE: only these individual profiles (nids > 0; sorted by
     * prof_id_cmp, no duplicates); mprof.id_found says which were seen. */
    const struct prof_id *ids;
    uint32_t nids;
    /* Q_PROFILE and Q_INDIVIDUAL: only individual profiles whose value (of
     * the profile type) is in [vmin, vmax) when has_vrange: a heatmap cell. */
    bool has_vrange;
    int64_t vmin, vmax;
    /* Peers only: read the sections with key_hash % nshards == shard and do
     * not fan out again. nshards 0 = everything, fanning out if configured. */
    uint32_t shard, nshards;
    struct qcancel *cancel; /* NULL = never cancelled */
    /* Q_PROFILE: names the frames stored unnamed (dsym.h); the engine sets
     * its own when NULL. Not sent to peers (they have theirs). */
    struct dsym *dsym;
};

/* The series grid of @q (Q_SERIES): its step (q->step, or about 100
 * points over the range, whole seconds) and number of buckets. 0, -EINVAL
 * for an empty range, -E2BIG past SERIES_MAX_POINTS. */
int query_series_grid(const struct query *q, int64_t *step, uint32_t *nbuckets);

/* The text form of @id into @buf (PROF_ID_LEN + 1 bytes). */
void prof_id_format(const struct prof_id *id, char *buf);
/* Parses a text id: 0, -EINVAL when @s is not a UUID, -ENOENT when it is a
 * UUID no Stoke worker writes (so it names no profile). */
int prof_id_parse(const char *s, struct prof_id *out);
/* Orders ids by time, then hash (qsort). */
int prof_id_cmp(const void *a, const void *b);
/* Sorts @ids[0..*n) and drops duplicates (the form struct query takes). */
void prof_ids_sort(struct prof_id *ids, uint32_t *n);
/* The hash part of the ids of the series whose stored label pairs are
 * @pairs[0..2n) (name, value, ...; sorted by name), of @service of
 * @tenant. Stable across versions: FNV-1a, then hash64. */
uint64_t query_series_hash(const char *tenant, const char *service, const char *const *pairs,
                           uint32_t n);

/* "name:type:unit:period_type:period_unit": five fields of safe characters;
 * the period fields may be empty (profiles without a period type). */
bool query_profile_type_valid(const char *s);
/* [a-zA-Z_][a-zA-Z0-9_]*, at most 128 characters. */
bool query_label_name_valid(const char *s);
/* A group_by list: 1 to QUERY_MAX_GROUP_BY valid label names joined by ','. */
bool query_group_by_valid(const char *s);
/* The number of names in a valid group_by list (0 for NULL or ""). */
uint32_t query_group_by_count(const char *s);

/*
 * Group keys of several labels: each value with 0x1e and 0x1f escaped by a
 * leading 0x1e, the values joined by 0x1f. So any value bytes round-trip.
 * Appends the key part of @val (the separator first unless @first).
 */
struct wbuf;
void query_group_key_append(struct wbuf *b, const char *val, bool first);
/* Splits @key into @n values (1 <= n <= QUERY_MAX_GROUP_BY + 1, the type
 * id of a label-set query being the last): *vals is one allocation holding
 * the @n pointers and the strings (free it). 0, -EINVAL when @key does not
 * hold @n values, -ENOMEM. */
int query_group_key_split(const char *key, uint32_t n, char ***vals);

#endif
