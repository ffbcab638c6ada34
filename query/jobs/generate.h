/* SPDX-License-Identifier: Apache-2.0 */
/*
 * generate — the fleet generator for tests and benchmarks: turns real
 * profiles (the corpus pprofs, or the agent's own --output-dir files) into
 * N hosts × M services × T hours of stored data, written through the same
 * codec as the agent and compaction.
 *
 * Variation: service i takes its shape from source file i mod nfiles; every
 * (host, flush, window) gets its own copy with each sample's values scaled
 * by a factor in [0.5, 1.5) and ~10% of samples left out, from a seeded
 * generator (the same options give the same bytes).
 *
 * Two layouts: one segment per flush, exactly as agents write them, or
 * (compacted) one block + one hour manifest per hour, exactly as
 * `stoke-query compact` leaves them. With `entries`, each segment also gets
 * the manifest entry object agents wrote beside it before one object per
 * flush (docs/format.md §7): an old-layout store, for tests and benchmarks.
 */
#ifndef STOKE_QUERY_GENERATE_H
#define STOKE_QUERY_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct generate_opts {
    const char *tenant; /* "default" */
    unsigned hosts, services, hours;
    unsigned flush_s;         /* 60 */
    unsigned windows;         /* per flush (6) */
    int64_t start_ms;         /* first hour (aligned down); 0 = now - hours */
    const char *const *files; /* pprof sources */
    size_t nfiles;
    bool compacted;
    bool entries; /* per-flush segments also get an entry manifest (old layout) */
    uint64_t seed;
};

struct generate_stats {
    uint64_t objects, bytes; /* all objects written */
    uint64_t segment_bytes;  /* segments/blocks only */
    uint64_t samples;        /* sum of the first sample type's values /
                                the source's period: sample counts */
    uint64_t rows;           /* sample rows added */
};

int fleet_generate(struct store *st, const struct generate_opts *o, struct generate_stats *out,
                   char *err, size_t errlen);

#endif
