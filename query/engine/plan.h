/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan — which sections a query has to read, from manifests alone.
 *
 * For every day overlapping [from, until) the planner lists the tenant's
 * manifest objects and segment objects, reads the hour manifests of the
 * hours overlapping the range first, then the entry objects no hour
 * manifest replaces (stores written before one object per flush), then the
 * footer of every segment no manifest read names or replaces, by one
 * suffix range read each (a compacted hour shadows its entries and
 * segments), drops duplicate object keys, and keeps the sections whose time range
 * overlaps, that hold the profile type, and whose label summary can match
 * the selector. Owns the decoded manifests; plan items point into them.
 * Unreadable manifests are skipped and reported, never fatal.
 *
 * Also owns the one check of a query's time range (plan_range_check) that
 * every API applies before the engine runs: both ends in [0,
 * QUERY_MAX_TIME_MS], from < until, at most QUERY_MAX_RANGE_MS apart, with
 * no arithmetic that can overflow. plan_build applies it again, so its loop
 * over days runs at most PLAN_MAX_DAYS times whatever the caller passes.
 */
#ifndef STOKE_QUERY_PLAN_H
#define STOKE_QUERY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/manifest.h"
#include "query/engine/cache.h"
#include "query/engine/cancel.h"
#include "query/engine/mprof.h"
#include "query/engine/selector.h"
#include "store/store.h"

#define QUERY_MAX_RANGE_MS (31LL * 86400000LL)
/* 9999-12-31T23:59:59.999Z: the last instant with a four-digit year. */
#define QUERY_MAX_TIME_MS 253402300799999LL
/* Days a range of QUERY_MAX_RANGE_MS can touch. */
#define PLAN_MAX_DAYS (QUERY_MAX_RANGE_MS / 86400000LL + 1)

struct plan_item {
    const char *key;
    const char *host;
    const struct seg_section_info *info;
    const struct seg_footer *footer; /* the object's; its items are adjacent in a plan */
    uint64_t key_hash;               /* for sharding among peers */
};

struct plan {
    struct manifest **mans;
    size_t nmans, mans_cap;
    struct plan_item *items;
    size_t n, cap;
    uint64_t objects;    /* distinct object keys among items */
    uint64_t manifests;  /* manifest objects read */
    uint64_t footers;    /* segment footers read (suffix reads) */
    uint64_t skipped;    /* unreadable manifests */
    struct mprof *notes; /* warnings and stats only */
    /* The heap bytes of the decoded manifests and footers and the items,
     * charged to the request's memory budget as they are added (a refused
     * charge stops the planning: -E2BIG / -ENOBUFS) and given back by
     * plan_free. */
    uint64_t bytes;
    struct qcancel *charged_to;
};

struct plan_req {
    const char *tenant;
    const struct selector *sel;
    int64_t from, until;      /* ms, until exclusive */
    const char *profile_type; /* NULL = any */
    struct qcancel *cancel;   /* NULL = never */
    /* An hour manifest at least this large (as listed) is read through its
     * index when the hour holds nothing else (docs/format.md §13.1);
     * 0 = 64 KiB. Tests lower it. */
    uint64_t index_min_bytes;
};

/* Is @t (Unix ms) a time a query may name? 0, or -EINVAL with "@name: ..."
 * in @err. */
int plan_time_check(int64_t t, const char *name, char *err, size_t errlen);

/* Is [@from, @until) a range a query may ask for (see above)? 0, or
 * -EINVAL with the problem in @err, starting with the name of the
 * parameter at fault (@fname or @uname). */
int plan_range_check(int64_t from, int64_t until, const char *fname, const char *uname, char *err,
                     size_t errlen);

/* Allocates *out (plan_free). 0, or a negative errno with @err when the
 * range fails plan_range_check (-EINVAL), the store cannot even be listed,
 * or r->cancel fires (-ETIMEDOUT, -ECANCELED). */
int plan_build(struct store *st, struct cache *c, const struct plan_req *r, struct plan **out,
               char *err, size_t errlen);
void plan_free(struct plan *p);

/*
 * Hour manifests written before one object per flush name, in `replaces`,
 * the entry objects they merged but not those entries' segments; a
 * segment still listed after such a compaction (the compactor deletes it
 * after writing the manifest) is in a block already. Adds to @out the
 * flush prefix (manifest_entry_segment_prefix) of every entry key @m
 * replaces whose segment @m does not name itself. 0 or -ENOMEM.
 */
struct intern;
int plan_replaced_flushes(const struct manifest *m, struct intern *out);

/* The flush start in a segment key ".../<start ms, 13 digits>-<hash16>.seg",
 * or -1. */
int64_t plan_seg_key_start(const char *key);

struct plan_fetch_stats {
    uint64_t reads, second_reads, bytes, cache_hits;
};

/*
 * The footer of the segment @key, @object_len bytes long (from a listing;
 * 0 = ask the store), by seg_footer_read: one suffix range read of
 * SEG_FOOTER_TAIL bytes, a second only when the footer is larger, through
 * @c (may be NULL). Adds to @fs (may be NULL). 0, or a negative errno with
 * @err: the store's, or -EBADMSG/-EPROTO for a damaged or foreign tail.
 */
int plan_footer_fetch(struct store *st, struct cache *c, const char *key, uint64_t object_len,
                      struct seg_footer **out, struct plan_fetch_stats *fs, char *err,
                      size_t errlen);

/* True when every series of a section with this summary matches @sel
 * (NULL: all do), judged from the footer alone: false when a matcher's
 * label has values the summary left out (truncated). */
bool plan_section_must_match(const struct selector *sel, const struct seg_section_info *info,
                             const char *host);
/* True when a section with this summary may hold series matching @sel. */
bool plan_section_may_match(const struct selector *sel, const struct seg_section_info *info,
                            const char *host);

/* Stable hash of an object key (FNV-1a 64), shared by all workers. */
uint64_t plan_key_hash(const char *key);

/* Tenant names are single safe path components. */
bool plan_tenant_valid(const char *tenant);

#endif
