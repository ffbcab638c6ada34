/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ingest — what the receiver's fuzz targets check of a batch a parser
 * accepted (ingest/batch.h): every profile has a service and a message,
 * and what ingest_batch_check passes goes into a segment (checked, yet
 * refused by the writer aborts).
 */
#ifndef STOKE_FUZZ_INGEST_H
#define STOKE_FUZZ_INGEST_H

#include <errno.h>
#include <stdlib.h>

#include "codec/segment.h"
#include "ingest/batch.h"

static inline void fuzz_ingest_accepted(struct ingest_batch *b)
{
    char err[512];

    for (size_t i = 0; i < b->n; i++)
        if (!b->v[i].service || !b->v[i].service[0] || !b->v[i].p)
            abort();
    if (ingest_batch_check(b, err, sizeof(err)))
        return;
    struct seg_writer *w = seg_writer_new("t", "h");
    for (size_t i = 0; w && i < b->n; i++) {
        const struct ingest_profile *p = &b->v[i];
        if (seg_writer_accepts(w, p->service, p->p) &&
            seg_writer_add_pprof(w, p->service, p->p, p->labels, p->nlabels, p->time_ms) == -EINVAL)
            abort(); /* checked, yet refused */
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (w)
        seg_writer_finish(w, &buf, &len, NULL);
    free(buf);
    seg_writer_free(w);
}

#endif
