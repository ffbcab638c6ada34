/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for query/engine/mprof.c's wire decoder (what peers send back
 * from /internal/v1/select): anything decodes or fails, and whatever
 * decodes re-encodes, decodes again and merges without harm, and its
 * flame graph is drawn and its call tree proof (views.h) checked. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "query/engine/mprof.h"
#include "query/engine/views.h"

static void enter(void *ctx, uint32_t depth, const char *name, int64_t self, int64_t total)
{
    (void)ctx, (void)depth, (void)name, (void)self, (void)total;
}
static void leave(void *ctx, uint32_t depth)
{
    (void)ctx, (void)depth;
}

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
        static const struct flame_visit v = {enter, leave};
        for (uint32_t mn = 1; mn <= 64; mn *= 4) {
            view_flame_proved(sum, 0, mn, "[other callees]");
            view_flame_walk(sum, 0, mn, &v, NULL);
        }
    }
    mprof_free(sum);
    mprof_free(q);
    mprof_free(p);
    return 0;
}
