/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peer — the protocol between query workers: a worker with --peers sends
 * each peer its shard of a query as POST /internal/v1/select (a JSON
 * object), and the peer answers the merged profile of that shard
 * (mprof_encode). This module writes the request, parses it on the peer's
 * side, and makes the call.
 *
 * One table lists the request's fields (name, kind, where in struct query,
 * accepted range): the writer and the parser both walk it, so a field added
 * on one side cannot be silently dropped by the other. The parser checks
 * every field before the engine sees the query, and the answer is bounded
 * (PEER_MAX_RESPONSE).
 */
#ifndef STOKE_QUERY_PEER_H
#define STOKE_QUERY_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "query/engine/mprof.h"
#include "query/engine/query.h"

#define PEER_SELECT_PATH  "/internal/v1/select"
#define PEER_MAX_RESPONSE (1024u * 1024 * 1024)

/* The JSON body of a peer request for shard @shard of @nshards of @q
 * (malloc'd; NULL when out of memory). */
char *peer_request_encode(const struct query *q, uint32_t shard, uint32_t nshards);

/* A parsed peer request: the query (its strings point into json) and its
 * parsed selector. */
struct peer_request {
    struct query q;
    struct selector *sel;
    void *json; /* the parsed body (cJSON), owning the strings */
};

/* Parses and checks @body: 0, or -EINVAL with what is wrong in @err
 * ("body: ...", "step: ..." or "query: ..."), or -ENOMEM. On success free
 * @out with peer_request_free. */
int peer_request_decode(const uint8_t *body, size_t len, struct peer_request *out, char *err,
                        size_t errlen);
void peer_request_free(struct peer_request *r);

/* Where and how to call a peer. */
struct peer_target {
    const char *addr;    /* "host:port" */
    const char *token;   /* sent as "Authorization: Bearer"; NULL = none */
    unsigned timeout_ms; /* at most; less when @q's deadline is nearer */
};

/* Asks @t for shard @shard of @nshards of @q. 0 with *out (mprof_free), or
 * a negative errno with what went wrong in @err. Stops when q->cancel
 * fires. */
int peer_select(const struct peer_target *t, const struct query *q, uint32_t shard,
                uint32_t nshards, struct mprof **out, char *err, size_t errlen);

#endif
