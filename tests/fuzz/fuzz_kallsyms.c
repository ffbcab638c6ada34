/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "symbolizer/kallsyms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sym_kallsyms k = {0};
    if (sym_kallsyms_parse(&k, (const char *)data, size) == 0) {
        for (size_t i = 0; i < k.n; i++) {
            struct sym_ksym_hit h;
            uint64_t a = k.syms[i].addr;
            int r = sym_kallsyms_lookup(&k, a, &h);
            if (!k.restricted && a && (r != 0 || h.addr != a))
                abort();
            if (r == 0 && (!h.name || strlen(h.name) > SYM_KSYM_NAME_MAX + 6))
                abort();
            /* the padding before a symbol, if any */
            if (a > 1)
                sym_kallsyms_lookup(&k, a - 1, &h);
        }
        struct sym_ksym_hit h;
        sym_kallsyms_lookup(&k, UINT64_MAX, &h);
    }
    sym_kallsyms_free(&k);
    return 0;
}
