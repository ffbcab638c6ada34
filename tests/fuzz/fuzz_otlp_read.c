/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OTLP profiles reader (ingest/otlp_read.c): any bytes as an
 * ExportProfilesServiceRequest. What it accepts must pass seg_pprof_check
 * (the reader checks every index it copies) and go into a segment.
 */
#include <errno.h>
#include <stdlib.h>

#include "codec/segment.h"
#include "ingest/batch.h"
#include "ingest/otlp_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_batch b = {0};
    char err[512];

    if (otlp_read(data, size, 1, &b, err, sizeof(err)) == 0 &&
        ingest_batch_check(&b, err, sizeof(err)) == 0) {
        struct seg_writer *w = seg_writer_new("t", "h");
        for (size_t i = 0; w && i < b.n; i++) {
            const struct ingest_profile *p = &b.v[i];
            if (seg_writer_accepts(w, p->service, p->p) &&
                seg_writer_add_pprof(w, p->service, p->p, p->labels, p->nlabels, p->time_ms) ==
                    -EINVAL)
                abort(); /* checked, yet refused */
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        if (w)
            seg_writer_finish(w, &buf, &len, NULL);
        free(buf);
        seg_writer_free(w);
    }
    ingest_batch_free(&b);
    return 0;
}
