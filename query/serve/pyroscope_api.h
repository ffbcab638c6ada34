/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pyroscope_api — the subset of Pyroscope's query API that Grafana's
 * Pyroscope data source calls, answered from stoke-query's engine:
 * querier.v1.QuerierService over Connect (POST
 * /querier.v1.QuerierService/<Method>, JSON or protobuf; proto/pyroscope/)
 * GET /pyroscope/render (flamebearer JSON or DOT), /pyroscope/render-diff
 * and /pyroscope/label-values, as Grafana's Profiles Drilldown app calls
 * them. docs/api.md lists what is
 * implemented and what is not.
 *
 * Owns the translation both ways: a request becomes the engine's selection
 * (profile type id, selector, [start, end) in ms), and the merged profile
 * becomes Pyroscope's messages (FlameGraph levels, Series points, a pprof
 * Profile, a FlameGraphDiff). Profile type ids are the engine's own
 * ("process_cpu:cpu:nanoseconds:cpu:nanoseconds"); the pseudo label
 * __name__ is the id's first field and is matched here, never by the engine.
 * Every input is validated before the engine runs; errors are Connect
 * errors (query/serve/connect.h), render errors {"error": ...}. The answers
 * report skipped segments in the response's skipped count (sent as the
 * X-Stoke-Skipped header); render's JSON also carries "stats" and
 * "warnings" as the native API's does.
 */
#ifndef STOKE_QUERY_PYROSCOPE_API_H
#define STOKE_QUERY_PYROSCOPE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyroscope/querier.pb-c.h"
#include "query/engine/engine.h"
#include "query/engine/mprof.h"
#include "query/serve/request.h"

#define PYROSCOPE_SERVICE_PREFIX    "/querier.v1.QuerierService/"
#define PYROSCOPE_RENDER_PATH       "/pyroscope/render"
#define PYROSCOPE_RENDER_DIFF_PATH  "/pyroscope/render-diff"
#define PYROSCOPE_LABEL_VALUES_PATH "/pyroscope/label-values"
#define PYROSCOPE_DEFAULT_NODES     8192
#define PYROSCOPE_MAX_NODES         (1u << 20)

struct pyroscope_api {
    struct engine *engine;
    const char *tenant;     /* default; X-Scope-OrgID overrides */
    struct qcancel *cancel; /* the request's queries stop when it fires; may be NULL */
};

/* Is @path answered by pyroscope_route? */
bool pyroscope_path(const char *path);

/* Handles one request on a pyroscope_path. @header looks up request
 * headers (Content-Type, X-Scope-OrgID), @param query parameters; both take
 * @ctx. Fills @out (body malloc'd). */
void pyroscope_route(const struct pyroscope_api *a, const char *method, const char *path,
                     http_param_fn param, http_param_fn header, void *ctx, const uint8_t *body,
                     size_t len, struct http_response *out);

/* Exposed for tests: the FlameGraph of column @col of @p cut to @max_nodes
 * (the root "total" at level 0). Allocates *out
 * (protobuf_c_message_free_unpacked). 0 or -ENOMEM. */
int pyroscope_flamegraph(const struct mprof *p, uint32_t col, uint32_t max_nodes,
                         Querier__V1__FlameGraph **out);

/* The FlameGraphDiff of @left and @right (column 0 each) cut to the
 * @max_nodes nodes of largest left + right total. Only the part of the
 * joined call tree the cut can show is built (values < 0: all of it). */
int pyroscope_flamegraph_diff(const struct mprof *left, const struct mprof *right,
                              uint32_t max_nodes, Querier__V1__FlameGraphDiff **out);
/* The same, for tests: @prune false builds the whole joined tree stack by
 * stack before the cut (what the pruned build must answer byte for byte). */
int pyroscope_flamegraph_diff_build(const struct mprof *left, const struct mprof *right,
                                    uint32_t max_nodes, bool prune,
                                    Querier__V1__FlameGraphDiff **out);

#endif
