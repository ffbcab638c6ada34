/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>

#include "symbolizer/perfmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sym_perfmap m = {0};
    if (sym_perfmap_parse(&m, (const char *)data, size) == 0) {
        for (size_t i = 0; i < m.n; i++) {
            uint64_t a = m.e[i].start + m.e[i].size / 2;
            const struct sym_perfmap_entry *e = sym_perfmap_find(&m, a);
            /* overlapping entries may shadow each other; any answer must
             * still cover the address */
            if (e && (a - e->start >= e->size || e->name >= m.strs_len))
                abort();
        }
        sym_perfmap_find(&m, 0);
        sym_perfmap_find(&m, UINT64_MAX);
    }
    sym_perfmap_free(&m);
    return 0;
}
