/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The receiver's gRPC side (ingest/grpc.c): any bytes as what a client
 * sends on a connection (HTTP/2 preface, frames, HPACK, the gRPC message
 * prefix, gzip), read in two pieces split where the first byte says, each
 * followed by draining what the server answers; and the same bytes as a
 * request body for grpc_unframe. Seeds: what grpcio sent for an Export
 * call, plain and gzip with metadata.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/grpc.h"

static void handler(void *ctx, const struct grpc_call *c, struct grpc_reply *out)
{
    /* every byte of the message is readable; an answer either way */
    unsigned sum = 0;
    for (size_t i = 0; i < c->len; i++)
        sum += c->msg[i];
    if (c->authorization)
        sum += (unsigned)strlen(c->authorization);
    if (sum & 1) {
        out->code = GRPC_INVALID_ARGUMENT;
        strcpy(out->message, "odd\n%");
        return;
    }
    out->code = GRPC_OK;
    out->len = c->len < 64 ? c->len : 64;
    out->body = malloc(out->len + 1);
    if (out->body)
        memcpy(out->body, c->msg, out->len);
    else
        out->len = 0;
}

static void drain(struct grpc_conn *g)
{
    const uint8_t *p;
    for (int i = 0; i < 1000 && grpc_conn_pending(g, &p) > 0; i++)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    atomic_size_t inflight = 0;
    struct grpc_limits l = {
        .max_msg = 4096, .max_decoded = 16384, .inflight = &inflight, .pending = 6000};

    const uint8_t *m;
    size_t len;
    bool z;
    char err[256];
    grpc_unframe(data, size, l.max_msg, &m, &len, &z, err, sizeof(err));

    struct grpc_conn *g = grpc_conn_new(&l, handler, NULL);
    if (!g)
        return 0;
    drain(g);
    size_t cut = size ? (size_t)data[size - 1] * size / 256 : 0;
    if (grpc_conn_recv(g, data, cut) == 0) {
        drain(g);
        if (grpc_conn_recv(g, data + cut, size - cut) == 0)
            drain(g);
    }
    drain(g);
    grpc_conn_free(g);
    if (atomic_load(&inflight) != 0)
        abort(); /* a byte held and never given back */
    return 0;
}
