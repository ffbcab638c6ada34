/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OTLP/HTTP JSON reader (ingest/otlp_read.c, otlp_read_json, over
 * common/pbjson.c): any bytes as a JSON ExportProfilesServiceRequest.
 * What it accepts must pass seg_pprof_check and go into a segment, as the
 * protobuf path's does (fuzz_ingest.h).
 */
#include "fuzz_ingest.h"
#include "ingest/otlp_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_batch b = {0};
    char err[512];

    if (otlp_read_json(data, size, 1, &b, err, sizeof(err)) == 0)
        fuzz_ingest_accepted(&b);
    ingest_batch_free(&b);
    return 0;
}
