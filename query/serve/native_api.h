/* SPDX-License-Identifier: Apache-2.0 */
/*
 * native_api — stoke-query's own JSON API (docs/api.md): profile types,
 * label names and values, top, flame graph, series, diff and pprof under
 * /api/v1/, the individual profiles (list, heatmap, selection by id and
 * value on top, flamegraph and pprof), and the peers' POST
 * /internal/v1/select.
 *
 * Owns the validation of every parameter before any store access (bad
 * input is a 400 with {"error": "<parameter>: <problem>"}) and the JSON
 * answers; the engine does the work and views.c shapes its results. Each
 * endpoint builds its query in one place (common_query) from the
 * parameters every endpoint shares.
 */
#ifndef STOKE_QUERY_NATIVE_API_H
#define STOKE_QUERY_NATIVE_API_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "query/engine/engine.h"
#include "query/serve/request.h"

enum native_ep {
    NATIVE_TYPES,
    NATIVE_NAMES,
    NATIVE_VALUES,
    NATIVE_TOP,
    NATIVE_FLAME,
    NATIVE_SERIES,
    NATIVE_DIFF,
    NATIVE_PPROF,
    NATIVE_PROFILES, /* individual profiles */
    NATIVE_HEATMAP,
    NATIVE_SELECT, /* POST; the others GET */
    NATIVE_N
};

/* The path of each endpoint, and its name in metrics. */
extern const char *const native_paths[NATIVE_N];
extern const char *const native_names[NATIVE_N];

struct native_api {
    struct engine *engine;
    const char *tenant;                         /* default */
    unsigned query_timeout_ms;                  /* named in 504 answers */
    atomic_uint_fast64_t *timeouts, *cancelled; /* counted here; may be NULL */
};

/* The endpoint of @path, or NATIVE_N. */
enum native_ep native_find(const char *path);

/* Answers one request to endpoint @ep (its method already checked); @body
 * is select's. Fills @r (body malloc'd). */
void native_route(const struct native_api *a, enum native_ep ep, const struct http_params *p,
                  const uint8_t *body, size_t len, struct http_response *r);

#endif
