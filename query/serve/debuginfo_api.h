/* SPDX-License-Identifier: Apache-2.0 */
/*
 * debuginfo_api — POST /api/v1/debuginfo/<build-id>: a debug file into the
 * object store (<tenant>/debuginfo/<build-id>, query/engine/dsym.h), so
 * the frames agents stored unnamed under that build-id are named at the
 * next query. The body is the file. Refused: a malformed build-id (400),
 * a body that is not an ELF file libelf reads or has no build-id (400),
 * one whose build-id is not the URL's (409), one over the worker's limit
 * (413, answered before the body is read whole: the connection stops
 * taking it past the limit). An existing build-id is not written again
 * (200, "exists"). ?tenant= picks the tenant, as for the query API; the
 * token is required when auth is on, as for every API.
 */
#ifndef STOKE_QUERY_DEBUGINFO_API_H
#define STOKE_QUERY_DEBUGINFO_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/engine/dsym.h"
#include "query/serve/request.h"

#define DEBUGINFO_PATH "/api/v1/debuginfo/"

struct debuginfo_api {
    struct store *store;
    struct dsym *dsym; /* told of uploads; may be NULL */
    const char *tenant;
    uint64_t max_bytes;
};

/* Is @path answered by debuginfo_route? */
bool debuginfo_path(const char *path);

void debuginfo_route(const struct debuginfo_api *a, const char *method, const char *path,
                     const struct http_params *p, const uint8_t *body, size_t len,
                     struct http_response *out);

#endif
