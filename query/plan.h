/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan — which sections a query has to read, from manifests alone.
 *
 * For every hour overlapping [from, until) the planner lists the tenant's
 * manifest objects, reads the hour manifests first and then the entry
 * objects no hour manifest replaces (a compacted hour shadows its entries),
 * drops duplicate object keys, and keeps the sections whose time range
 * overlaps, that hold the profile type, and whose label summary can match
 * the selector. Owns the decoded manifests; plan items point into them.
 * Unreadable manifests are skipped and reported, never fatal.
 */
#ifndef STOKE_QUERY_PLAN_H
#define STOKE_QUERY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/manifest.h"
#include "query/cache.h"
#include "query/mprof.h"
#include "query/selector.h"
#include "store/store.h"

struct plan_item {
    const char *key;
    const char *host;
    const struct seg_section_info *info;
    uint64_t key_hash; /* for sharding among peers */
};

struct plan {
    struct manifest **mans;
    size_t nmans, mans_cap;
    struct plan_item *items;
    size_t n, cap;
    uint64_t objects;    /* distinct object keys among items */
    uint64_t manifests;  /* manifest objects read */
    uint64_t skipped;    /* unreadable manifests */
    struct mprof *notes; /* warnings and stats only */
};

struct plan_req {
    const char *tenant;
    const struct selector *sel;
    int64_t from, until;      /* ms, until exclusive */
    const char *profile_type; /* NULL = any */
};

/* Allocates *out (plan_free). 0, or a negative errno with @err when the
 * store cannot even be listed. */
int plan_build(struct store *st, struct cache *c, const struct plan_req *r, struct plan **out,
               char *err, size_t errlen);
void plan_free(struct plan *p);

/* True when a section with this summary may hold series matching @sel. */
bool plan_section_may_match(const struct selector *sel, const struct seg_section_info *info,
                            const char *host);

/* Stable hash of an object key (FNV-1a 64), shared by all workers. */
uint64_t plan_key_hash(const char *key);

/* Tenant names are single safe path components. */
bool plan_tenant_valid(const char *tenant);

#endif
