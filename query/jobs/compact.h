/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compact — the job that keeps the store small and fast to read: per
 * tenant and closed hour, it merges the hour's per-flush manifest entries
 * into one hour manifest and the hour's sections (every host, every flush)
 * into one block object with one section per service, deduplicating the
 * dictionary across hosts. It also enforces retention.
 *
 * Order of writes, so a reader never loses data: (1) the block object,
 * (2) the hour manifest of the next generation, whose `replaces` lists the
 * entry objects (and the previous generation's manifest) it covers, and
 * only then (3) deletes of what it replaced. A reader that sees both the
 * new hour manifest and old entries ignores the replaced entries; a reader
 * that planned before (2) still finds every object until (3).
 *
 * Compaction never changes what a query answers. An object goes into the
 * block whole or stays as it is: every section of an entry's objects is
 * read, decoded and checked against the block before any is added, so a
 * segment readable only in part stays an entry (queries read its good
 * sections and skip the rest, as before), and a previous block readable
 * only in part is listed again as it is instead of merged. The hour
 * manifest in force is the newest that decodes, as for the query planner;
 * newer ones that do not decode are counted, replaced by the next
 * generation and deleted, and the hour is rebuilt from what readers still
 * see (the entries, and the readable manifest's blocks). Blocks that only
 * such a manifest listed stay, counted (blocks_orphaned): their data may be
 * nowhere else. One hour's unreadable objects never stop the others.
 * Blocks of the generation in force that it does not list (a pass that
 * crashed or lost its commit wrote them) are deleted (orphans_deleted).
 *
 * Several compactors on one hour at once: the hour manifest is committed
 * with a create-only put (store_put_new), so of two passes on one
 * generation exactly one wins and the other deletes its blocks
 * (commits_lost); a pass that finds objects of its listing deleted under
 * it leaves the hour to the compactor that moved it on. Replicas take a
 * lease per hour first (query/jobs/lease.h), which saves the double work;
 * only for hours with work, as one listing per day of segments/, manifest/
 * and blocks/ shows it (docs/format.md §13.3): a caught-up pass makes no
 * PUT.
 *
 * Continuous mode adds level 1 for hours still open: one block per span
 * whose flushes are all in (docs/format.md §13), appended to the hour
 * manifest; the hourly pass (level 2) merges them into one.
 *
 * Keys: blocks go to <tenant>/blocks/<date>/<HH>/<generation>-<hash>.blk
 * (level 1: <generation>-l1-<span>-<hash>.blk).
 * Retention deletes every object of an hour that ended before now - age,
 * in segments/, blocks/ and manifest/, on every run: data that arrives late
 * for an expired hour is deleted again, never served.
 */
#ifndef STOKE_COMPACT_H
#define STOKE_COMPACT_H

#include <stdint.h>

#include "store/store.h"

struct rule_eval;

struct compact_opts {
    const char *tenant;   /* "default" when NULL */
    int64_t now_ms;       /* 0 = the clock */
    unsigned delay_s;     /* an hour is closed delay_s after it ends (600) */
    unsigned retention_h; /* delete hours older than this; 0 = keep forever */
    unsigned max_hours;   /* look back this many hours for work (48) */
    int open_hours;       /* also compact the current, still open hour (tests,
                             and on demand): later entries of it go into the
                             next generation */
    /* Continuous, tiered compaction (docs/format.md §13): hours not closed
     * yet get level 1, which merges the flushes of each span (span_s
     * seconds, a divisor of 3600 from 60; default 300) once the span ended
     * grace_s ago (90) into one block per span, appended to the hour
     * manifest; closed hours get level 2, one block for the hour. */
    int continuous;
    unsigned span_s, grace_s;
    /* Replicas: with an owner id, each hour is worked on under a lease
     * (query/jobs/lease.h) of lease_ttl_s seconds (120), renewed before a
     * read or write once half of it has passed; an hour another replica
     * holds is left to it (hours_busy), also one it took over mid-pass
     * (leases_lost). NULL = no leases. */
    const char *owner;
    unsigned lease_ttl_s;
    /* Tests: called after each step that leaves the store in a new state
     * ("block": a block written; "manifest": the hour manifest committed;
     * "delete": the first replaced object deleted). May be NULL. */
    void (*fault)(const char *step, void *arg);
    void *fault_arg;
    /* Called with every error as it is counted ("WHAT KEY: WHY"); may be
     * NULL. compact_stats keeps only the count and the last one. */
    void (*on_error)(const char *msg, void *arg);
    void *on_error_arg;
    /* Recording rules evaluated over every flush merged (query/jobs/rules.h);
     * NULL = none. Only hours whose manifest was written keep results. */
    struct rule_eval *rules;
};

struct compact_stats {
    uint64_t hours_compacted;
    uint64_t entries_merged, segments_read, sections_merged;
    uint64_t blocks_written, bytes_in, bytes_out;
    uint64_t objects_deleted, hours_expired;
    uint64_t indexes_written; /* hour manifest indexes (docs/format.md §13.1) */
    uint64_t errors;          /* unreadable objects skipped */
    uint64_t objects_kept;    /* segments and blocks that could not be read
                                 whole: left as they are, still read (and
                                 skipped in part) by queries */
    uint64_t blocks_orphaned; /* blocks of an hour whose unreadable manifest
                                 was replaced, listed by no manifest now */
    uint64_t orphans_deleted; /* blocks of the generation in force that it
                                 does not list (a pass that crashed or lost
                                 its commit wrote them), deleted */
    uint64_t spans_compacted; /* level-1 blocks written */
    uint64_t commits_lost;    /* passes whose manifest another compactor's
                                 of the same generation beat: nothing kept */
    uint64_t hours_busy;      /* hours left to the replica holding the lease */
    uint64_t leases_renewed;  /* renewals of an hour's lease in a long pass */
    uint64_t leases_lost;     /* hours abandoned uncommitted: another replica
                                 took the lease over during the pass */
    uint64_t hours_quiet;     /* hours of the window the day listings showed
                                 nothing to do in: not leased, not listed */
    char last_error[256];
};

/* Runs one pass. 0, or a negative errno when the store failed in a way
 * that stopped the pass (what was done stays consistent). */
int compact_run(struct store *st, const struct compact_opts *o, struct compact_stats *out);

/* The span and grace compact_run uses for @o (defaults applied; a span
 * that is not a divisor of 3600 from 60 up is the default). */
unsigned compact_span_s(const struct compact_opts *o);
unsigned compact_grace_s(const struct compact_opts *o);

#endif
