/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pyroscope's Connect Push (ingest/pyroscope_ingest.c, ingest_pyroscope_push): any
 * bytes as a push.v1.PushRequest. What it accepts has a service and
 * passes seg_pprof_check or is refused whole by ingest_batch_check.
 */
#include <stdlib.h>

#include "ingest/batch.h"
#include "ingest/pyroscope_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_batch b = {0};
    char err[512];

    if (ingest_pyroscope_push(&b, data, size, 1 << 20, 1, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < b.n; i++)
            if (!b.v[i].service || !b.v[i].service[0] || !b.v[i].p)
                abort();
        ingest_batch_check(&b, err, sizeof(err));
    }
    ingest_batch_free(&b);
    return 0;
}
