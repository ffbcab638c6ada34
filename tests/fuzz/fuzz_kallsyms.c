/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>

#include "symbolizer/kallsyms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sym_kallsyms k = {0};
    if (sym_kallsyms_parse(&k, (const char *)data, size) == 0) {
        for (size_t i = 0; i < k.n; i++) {
            const struct sym_ksym *s = sym_kallsyms_find(&k, k.syms[i].addr);
            if (!k.restricted && k.syms[i].addr && (!s || s->addr != k.syms[i].addr))
                abort();
            if (s && s->module != SYM_KSYM_NO_MODULE && s->module >= k.strs_len)
                abort();
        }
        sym_kallsyms_find(&k, UINT64_MAX);
    }
    sym_kallsyms_free(&k);
    return 0;
}
