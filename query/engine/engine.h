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
 * Sections are merged by the merge kernel (merge.h); peers are called
 * through peer.h.
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

#include "query/engine/cache.h"
#include "query/engine/cancel.h"
#include "query/engine/merge.h" /* the merge kernel, for tests and benchmarks */
#include "query/engine/mprof.h"
#include "query/engine/peerset.h"
#include "query/engine/plan.h"
#include "query/engine/query.h"
#include "query/engine/selector.h"
#include "store/store.h"

struct engine_opts {
    struct store *store;
    struct cache *cache; /* may be NULL */
    char **peers;        /* "host:port" */
    size_t npeers;
    struct peerset *peerset;  /* when set, each query's peers (peerset.h) instead; not owned */
    unsigned threads;         /* decode threads per query; 0 = 2 */
    unsigned peer_timeout_ms; /* 0 = 60000 */
    const char *peer_token;   /* sent as "Authorization: Bearer" to peers; NULL = none */
    struct dsym *dsym;        /* names frames stored unnamed (dsym.h); NULL = none; not owned */
};

struct engine;

struct engine *engine_new(const struct engine_opts *o);
void engine_free(struct engine *e);
/* The store @e reads (o->store); NULL for a NULL engine. */
struct store *engine_store(const struct engine *e);
/* The deferred symbolizer @e names frames with (o->dsym); may be NULL. */
struct dsym *engine_dsym(const struct engine *e);

/*
 * Runs @q. On success *out is a new mprof (mprof_free) with the result,
 * its stats and warnings. Fails (negative errno, message in @err) only when
 * the range fails plan_range_check (-EINVAL), the store cannot be listed,
 * memory runs out, or q->cancel fires (-ETIMEDOUT, -ECANCELED); bad
 * sections are warnings.
 */
int engine_query(struct engine *e, const struct query *q, struct mprof **out, char *err,
                 size_t errlen);

/* The sorted, distinct profile type ids of the sections in [from, until)
 * whose label summaries can match @sel (NULL = all). Allocates *types (free
 * each and the array). 0 or a negative errno with @err; @cancel may be NULL. */
int engine_profile_types(struct engine *e, const char *tenant, const struct selector *sel,
                         int64_t from, int64_t until, struct qcancel *cancel, char ***types,
                         size_t *n, struct mprof **notes, char *err, size_t errlen);

/* Whether @tenant has any profile, and the first and last sample times
 * (Unix ms) of its oldest and newest days of manifests (Pyroscope's
 * GetProfileStats). Lists the tenant's manifest and segment keys once and plans those
 * two days. 0 or a negative errno with @err; @cancel may be NULL. */
struct profile_stats {
    bool ingested;
    int64_t oldest_ms, newest_ms;
    uint64_t skipped; /* unreadable manifests */
};
int engine_profile_stats(struct engine *e, const char *tenant, struct qcancel *cancel,
                         struct profile_stats *out, char *err, size_t errlen);

/* The plan of @r over the engine's store and cache: the sections a query
 * would read, from manifests and footers alone (plan_build). For answers
 * the footers hold, such as which services have which profile types. */
int engine_plan(struct engine *e, const struct plan_req *r, struct plan **out, char *err,
                size_t errlen);

/* Counters since start, for /metrics. */
struct engine_counters {
    uint64_t queries, sections, bytes_read, cache_hits, skipped, peer_errors;
    struct peerset_stats peers; /* all zero without a peerset */
};
void engine_counters(struct engine *e, struct engine_counters *out);

#endif
