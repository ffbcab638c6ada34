/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine — runs a query: plans it from manifests, fetches exactly the
 * planned sections' byte ranges (through the cache), decodes them on a small
 * thread pool, keeps the series the selector matches and the samples inside
 * [from, until), and merges them into one mprof. With peers, the sections
 * are split by plan_key_hash(key) % (npeers + 1): this worker reads shard 0,
 * peer i answers shard i + 1 over POST /internal/v1/select, and the partial
 * profiles are merged, so the result equals a single worker's.
 *
 * The merge kernel maps each section's ids to the mprof's once per section
 * (functions and locations interned lazily, stacks through a dense map) and
 * then aggregates rows with one array add each.
 *
 * A corrupt or unreadable section is skipped, counted and reported as a
 * warning in the result; it never fails the query.
 *
 * A query stops early when its qcancel fires (deadline, client gone,
 * worker stopping): the planner, the decode threads, the merge kernel and
 * the peer calls check it, and engine_query then fails with -ETIMEDOUT or
 * -ECANCELED.
 */
#ifndef STOKE_QUERY_ENGINE_H
#define STOKE_QUERY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/cache.h"
#include "query/cancel.h"
#include "query/mprof.h"
#include "query/plan.h"
#include "query/selector.h"
#include "store/store.h"

struct seg_section;

#define DEFAULT_PROFILE_TYPE "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
#define SERIES_MAX_POINTS    11000

enum qmode {
    Q_PROFILE, /* stacks and values (top, flame graph, diff, pprof) */
    Q_SERIES,  /* per-step sums grouped by a label */
    Q_LABELS,  /* label pairs of matching series */
};

struct query {
    const char *tenant;
    const struct selector *sel;
    const char *selector_text; /* forwarded to peers */
    int64_t from, until;
    const char *profile_type; /* NULL: default; for Q_LABELS any type */
    enum qmode mode;
    bool all_types;       /* Q_PROFILE: every sample type (pprof export) */
    int64_t step;         /* Q_SERIES */
    const char *group_by; /* Q_SERIES; NULL or "" = one series */
    /* Peers only: read the sections with key_hash % nshards == shard and do
     * not fan out again. nshards 0 = everything, fanning out if configured. */
    uint32_t shard, nshards;
    struct qcancel *cancel; /* NULL = never cancelled */
};

struct engine_opts {
    struct store *store;
    struct cache *cache; /* may be NULL */
    char **peers;        /* "host:port" */
    size_t npeers;
    unsigned threads;         /* decode threads per query; 0 = 2 */
    unsigned peer_timeout_ms; /* 0 = 60000 */
    const char *peer_token;   /* sent as "Authorization: Bearer" to peers; NULL = none */
};

struct engine;

struct engine *engine_new(const struct engine_opts *o);
void engine_free(struct engine *e);

/*
 * Runs @q. On success *out is a new mprof (mprof_free) with the result,
 * its stats and warnings. Fails (negative errno, message in @err) only when
 * the range fails plan_range_check (-EINVAL), the store cannot be listed,
 * memory runs out, or q->cancel fires (-ETIMEDOUT, -ECANCELED); bad
 * sections are warnings.
 */
int engine_query(struct engine *e, const struct query *q, struct mprof **out, char *err,
                 size_t errlen);

/* The JSON body of a peer request for shard @shard of @nshards (malloc'd). */
char *engine_query_json(const struct query *q, uint32_t shard, uint32_t nshards);

/* The sorted, distinct profile type ids of the sections in [from, until)
 * whose label summaries can match @sel (NULL = all). Allocates *types (free
 * each and the array). 0 or a negative errno with @err; @cancel may be NULL. */
int engine_profile_types(struct engine *e, const char *tenant, const struct selector *sel,
                         int64_t from, int64_t until, struct qcancel *cancel, char ***types,
                         size_t *n, struct mprof **notes, char *err, size_t errlen);

/* Counters since start, for /metrics. */
struct engine_counters {
    uint64_t queries, sections, bytes_read, cache_hits, skipped, peer_errors;
};
void engine_counters(struct engine *e, struct engine_counters *out);

/*
 * The merge kernel, exposed for tests and benchmarks: adds the samples of
 * @sec in [q->from, q->until) of the series @q's selector matches into @mp.
 * @host is the object's host (default host_name). Returns 0, 1 when the
 * section lacks the profile type, -ENOMEM, or q->cancel's error.
 */
int engine_merge_section(struct mprof *mp, const struct seg_section *sec, const char *host,
                         const struct query *q);

/* Sets up @mp's series grid for @q (Q_SERIES). */
int engine_series_grid(const struct query *q, int64_t *step, uint32_t *nbuckets);

#endif
