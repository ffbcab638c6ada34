/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The unwind-table builder on untrusted call frame information: the first
 * byte picks .eh_frame or .debug_frame, the rest is the section. Whatever
 * parses must compile into a table whose lookups land on its own rows.
 */
#include <errno.h>
#include <stdlib.h>

#include <linux/types.h>
#include "bpf/profile.h"
#include "unwind/cfi.h"
#include "unwind/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct uw_rows rows = {0};
    struct uw_cfi_stats st = {0};
    struct uw_table t = {0};
    const uint64_t vaddr = 0x400000;

    if (size < 1)
        return 0;
    enum uw_section kind = data[0] & 1 ? UW_DEBUG_FRAME : UW_EH_FRAME;
    int r = uw_cfi_parse(data + 1, size - 1, vaddr, kind, 1 << 16, &rows, &st);
    if (r != 0 && r != -E2BIG)
        abort();
    uw_rows_finish(&rows);
    for (size_t i = 1; i < rows.n; i++)
        if (rows.v[i].pc <= rows.v[i - 1].pc)
            abort(); /* sorted, one row per pc */
    if (uw_table_compile(&rows, &t) == 0) {
        const struct unwind_row *first =
            (const struct unwind_row *)&t.elems[1 + ((uint64_t)t.npages + 2) / 2];
        for (size_t i = 0; i < rows.n; i++) {
            const struct unwind_row *got = uw_table_lookup(&t, rows.base + rows.v[i].pc);
            if (got != &first[i])
                abort();
        }
        uw_table_free(&t);
    }
    uw_rows_free(&rows);
    return 0;
}
