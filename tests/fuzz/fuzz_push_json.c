/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pyroscope's Connect Push in JSON (ingest/pyroscope_ingest.c,
 * ingest_pyroscope_push_json, over common/pbjson.c): any bytes as a JSON
 * push.v1.PushRequest. What it accepts has a service and passes
 * seg_pprof_check or is refused whole by ingest_batch_check
 * (fuzz_ingest.h).
 */
#include "fuzz_ingest.h"
#include "ingest/pyroscope_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_batch b = {0};
    char err[512];

    if (ingest_pyroscope_push_json(&b, data, size, 1 << 20, 1, err, sizeof(err)) == 0)
        fuzz_ingest_accepted(&b);
    ingest_batch_free(&b);
    return 0;
}
