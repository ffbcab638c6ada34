/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for query/engine/mprof.c's wire decoder (what peers send back
 * from /internal/v1/select): anything decodes or fails, and whatever
 * decodes re-encodes, decodes again and merges without harm. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "query/engine/mprof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mprof *p = NULL, *q = NULL, *sum;
    uint8_t *buf;
    size_t len;

    if (mprof_decode(data, size, &p))
        return 0;
    if (mprof_encode(p, &buf, &len) == 0) {
        if (mprof_decode(buf, len, &q) != 0)
            abort(); /* our own encoding must decode */
        free(buf);
    }
    sum = mprof_new(p->ntypes);
    if (sum) {
        mprof_merge(sum, p);
        if (q)
            mprof_merge(sum, q);
    }
    mprof_free(sum);
    mprof_free(q);
    mprof_free(p);
    return 0;
}
