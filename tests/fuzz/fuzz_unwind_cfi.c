/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The unwind-table builder on untrusted call frame information: the first
 * byte picks .eh_frame or .debug_frame, the rest is the section. Whatever
 * parses must compile into a table whose lookups land on its own rows,
 * and parsed a FDE at a time through the streaming merge (as the agent
 * builds a table without holding its rows) must give the same rows when
 * they come in order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>
#include "bpf/profile.h"
#include "unwind/cfi.h"
#include "unwind/table.h"

struct streamed {
    struct uw_merge m;
    struct unwind_row *v;
    size_t n, cap;
};

static int keep(void *ctx, const struct unwind_row *r)
{
    struct streamed *s = ctx;

    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        struct unwind_row *nv = realloc(s->v, ncap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = *r;
    return 0;
}

static int push(void *ctx, const struct unwind_row *rows, size_t n)
{
    struct streamed *s = ctx;
    int ret = 0;

    for (size_t i = 0; i < n && ret == 0; i++)
        ret = uw_merge_push(&s->m, &rows[i]);
    return ret;
}

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
    int whole = r;
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
    struct streamed s = {.m = {.fn = keep}};
    uint64_t base = 0;
    s.m.ctx = &s;
    r = uw_cfi_parse_each(data + 1, size - 1, vaddr, kind, NULL, 0, 1 << 16, push, &s, &base, &st);
    if (r == 0)
        r = uw_merge_end(&s.m);
    if (r != 0 && r != -E2BIG && r != -ERANGE)
        abort();
    if (r == 0 && whole == 0 &&
        (base != rows.base || s.n != rows.n ||
         (s.n && memcmp(s.v, rows.v, s.n * sizeof(*s.v)) != 0)))
        abort(); /* in order, the streamed merge is the whole-table merge */
    free(s.v);
    uw_rows_free(&rows);
    return 0;
}
