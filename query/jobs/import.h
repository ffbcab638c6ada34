/* SPDX-License-Identifier: Apache-2.0 */
/*
 * import — writes a pprof file into a store as one segment object, the
 * way the agent's exporter writes a flush: the path by which
 * existing profiles (and the integration tests' corpus) reach stoke-query.
 */
#ifndef STOKE_QUERY_IMPORT_H
#define STOKE_QUERY_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define IMPORT_MAX_BYTES (256u << 20) /* after gunzip */

struct import_opts {
    const char *tenant;  /* default "default" */
    const char *host;    /* default "import" */
    const char *service; /* required */
    int64_t time_ms;     /* 0 = the profile's time_nanos, else now */
};

/* Reads @path (pprof, gzip or not) and writes it. Returns 0 or a negative
 * errno with a message in @err; a malformed profile (seg_pprof_check) is
 * -EINVAL naming the problem. @key (may be NULL) receives the object key,
 * @warn (may be NULL) what was repaired to import it ("" when nothing). */
int query_import_file(struct store *st, const struct import_opts *o, const char *path, char *key,
                      size_t keylen, char *warn, size_t warnlen, char *err, size_t errlen);

#endif
