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
 *
 * The calibrated model (model != NULL) needs no source files: every host's
 * stacks, their weights, depths, functions, label sets and churn between
 * windows are drawn from distributions measured on a busy host by
 * bench/calibrate.sh (docs/storage.md, "The calibrated fleet"). Each host
 * runs model->services_per_host of the fleet's services (host h runs
 * services h, h+1, ... mod services; the first takes the most rows). The
 * draw is a pure function of (seed, service, host, window): no state, the
 * same options give the same bytes, and hosts can be written by several
 * processes (first_host).
 */
#ifndef STOKE_QUERY_GENERATE_H
#define STOKE_QUERY_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* What one busy host's profiles look like (bench/calibrate.py prints it). */
struct generate_model {
    unsigned rows;              /* rows (stack x label set) per host per 10 s window */
    double samples_per_row;     /* mean sample count of a row */
    double zipf;                /* row weight ~ 1 + extra * rank^-zipf */
    double churn;               /* share of a window's rows absent from the window before */
    double churn_new;           /* share of a window's rows never seen before */
    unsigned functions;         /* distinct functions a host's stacks are made of */
    unsigned label_sets;        /* label sets per service */
    unsigned services_per_host; /* services a host runs */
    unsigned depth_deciles[10]; /* frames per row: 10th..100th percentiles */
};

/* The figures measured on the development host (docs/storage.md). */
extern const struct generate_model generate_model_calibrated;

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
    const struct generate_model *model; /* instead of files */
    unsigned first_host;                /* hosts are named host-<first_host + i> */
    unsigned model_rows;                /* > 0: overrides model->rows */
    unsigned model_services;            /* > 0: overrides model->services_per_host */
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
