/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_api — Pyroscope's settings.v1.RecordingRulesService over Connect
 * (POST /settings.v1.RecordingRulesService/<Method>, JSON or protobuf):
 * ListRecordingRules, GetRecordingRule, UpsertRecordingRule,
 * DeleteRecordingRule, on the rule objects of the bucket
 * (query/engine/rule.h). A rule that does not validate is refused with
 * invalid_argument (400) naming the field; an unknown id is not_found
 * (404); an upsert whose non-zero generation is not the stored one is
 * aborted (409). X-Scope-OrgID picks the tenant, as for the query API.
 *
 * Edits are read-modify-write on one object per rule: two editors of the
 * same rule at once may both succeed, the last put winning (the generation
 * check narrows it; the store has no conditional put).
 *
 * Also what /metrics adds for pull: the recorded series the compaction job
 * left in the bucket (rule_recorded_key), re-read at most every
 * RULES_METRICS_TTL_S seconds. The re-read runs where /metrics is answered,
 * on the HTTP thread: a slow store delays that scrape, and the connections
 * polled meanwhile, once per RULES_METRICS_TTL_S at most.
 */
#ifndef STOKE_QUERY_RULES_API_H
#define STOKE_QUERY_RULES_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "query/serve/request.h"
#include "store/store.h"

#define RULES_SERVICE_PREFIX "/settings.v1.RecordingRulesService/"
#define RULES_METRICS_TTL_S  10

struct rules_api {
    struct store *store;
    const char *tenant; /* default; X-Scope-OrgID overrides */
};

/* Is @path answered by rules_api_route? */
bool rules_api_path(const char *path);

/* Handles one request on a rules_api_path. Fills @out (body malloc'd). */
void rules_api_route(const struct rules_api *a, const char *method, const char *path,
                     http_param_fn header, void *ctx, const uint8_t *body, size_t len,
                     struct http_response *out);

/* Appends the recorded series of @tenant (what the last compaction pass
 * left) to @b; nothing when there are none. Thread-safe. */
void rules_api_metrics(struct store *st, const char *tenant, struct wbuf *b);
/* The same at @now (Unix seconds), for tests. */
void rules_api_metrics_at(struct store *st, const char *tenant, struct wbuf *b, int64_t now);

#endif
