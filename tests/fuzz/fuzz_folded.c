/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Folded stacks (ingest/batch.c, /ingest?format=folded): any text. What
 * ingest_folded accepts is a pprof that seg_pprof_check passes and the
 * segment writer takes.
 */
#include <errno.h>
#include <stdlib.h>

#include "codec/segment.h"
#include "ingest/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_batch b = {0};
    struct folded_types t = {.type = "samples",
                             .unit = "count",
                             .type2 = "cpu",
                             .unit2 = "nanoseconds",
                             .ptype = "cpu",
                             .punit = "nanoseconds",
                             .period = 10000000};
    Perftools__Profiles__Profile *p = NULL;
    uint64_t rows = 0;
    char err[256];

    if (ingest_folded(&b, (const char *)data, size, &t, &p, &rows, err, sizeof(err)) == 0) {
        if (seg_pprof_check(p, err, sizeof(err)) < 0 || rows != p->n_sample)
            abort();
        struct seg_writer *w = seg_writer_new("t", "h");
        if (w && p->n_sample && seg_writer_add_pprof(w, "s", p, NULL, 0, 1) == -EINVAL)
            abort();
        seg_writer_free(w);
    }
    ingest_batch_free(&b);
    return 0;
}
