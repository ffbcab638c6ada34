/* SPDX-License-Identifier: Apache-2.0 */
/*
 * table — compiles a binary's call frame information into the BPF layout.
 * See table.h.
 */
#include <errno.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>
#include "bpf/profile.h"
#include "common/file.h"
#include "unwind/elf_syms.h"
#include "unwind/table.h"

_Static_assert(sizeof(struct unwind_row) == 8, "a row is one array element");

/* The section named @name with its data (decompressed if need be). */
static Elf_Scn *find_section(Elf *elf, const char *name, GElf_Shdr *sh, Elf_Data **data)
{
    size_t shstrndx;
    Elf_Scn *scn = NULL;

    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        const char *n;
        if (!gelf_getshdr(scn, sh) || sh->sh_type == SHT_NOBITS)
            continue;
        n = elf_strptr(elf, shstrndx, sh->sh_name);
        if (!n || strcmp(n, name) != 0)
            continue;
        if ((sh->sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
            return NULL;
        *data = elf_getdata(scn, NULL);
        return *data && (*data)->d_buf && (*data)->d_size ? scn : NULL;
    }
    return NULL;
}

/*
 * The FDE offsets in .eh_frame in .eh_frame_hdr's order (sorted by the
 * FDEs' first address): parsed in that order the rows need no sort. Only
 * the common table encoding (datarel sdata4) is read; NULL otherwise.
 */
static uint32_t *hdr_order(Elf *elf, uint64_t eh_vaddr, size_t eh_len, size_t *n)
{
    GElf_Shdr sh;
    Elf_Data *d = NULL;
    const uint8_t *p;
    uint32_t *order;
    uint64_t count;

    if (!find_section(elf, ".eh_frame_hdr", &sh, &d) || d->d_size < 12)
        return NULL;
    p = d->d_buf;
    /* version 1; eh_frame_ptr as pcrel sdata4; count as udata4; table datarel sdata4 */
    if (p[0] != 1 || p[1] != 0x1b || p[2] != 0x03 || p[3] != 0x3b)
        return NULL;
    count = (uint64_t)p[8] | (uint64_t)p[9] << 8 | (uint64_t)p[10] << 16 | (uint64_t)p[11] << 24;
    if (count == 0 || count > (d->d_size - 12) / 8)
        return NULL;
    order = malloc(count * sizeof(*order));
    if (!order)
        return NULL;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *e = p + 12 + 8 * i + 4; /* the FDE's address, after its pc */
        int32_t rel = (int32_t)((uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 |
                                (uint32_t)e[3] << 24);
        uint64_t fde = sh.sh_addr + (uint64_t)(int64_t)rel;
        if (fde < eh_vaddr || fde - eh_vaddr >= eh_len) {
            free(order);
            return NULL;
        }
        order[i] = (uint32_t)(fde - eh_vaddr);
    }
    *n = (size_t)count;
    return order;
}

/* The call frame information section of @elf and the FDE order to parse
 * it in (NULL: section order). -ENODATA when there is none. */
static int cfi_section(Elf *elf, GElf_Shdr *sh, Elf_Data **d, enum uw_section *kind,
                       const char **source, uint32_t **order, size_t *norder)
{
    *kind = UW_EH_FRAME;
    *source = ".eh_frame";
    *order = NULL;
    *norder = 0;
    if (!find_section(elf, ".eh_frame", sh, d)) {
        *kind = UW_DEBUG_FRAME;
        *source = ".debug_frame";
        if (!find_section(elf, ".debug_frame", sh, d))
            return -ENODATA;
    }
    if (*kind == UW_EH_FRAME && (*d)->d_size <= UINT32_MAX)
        *order = hdr_order(elf, sh->sh_addr, (*d)->d_size, norder);
    return 0;
}

int uw_rows_from_elf(Elf *elf, struct uw_rows *rows, struct uw_cfi_stats *st, const char **source)
{
    GElf_Shdr sh;
    Elf_Data *d = NULL;
    enum uw_section kind;
    uint32_t *order;
    size_t norder;
    int ret;

    memset(rows, 0, sizeof(*rows));
    memset(st, 0, sizeof(*st));
    ret = cfi_section(elf, &sh, &d, &kind, source, &order, &norder);
    if (ret)
        return ret;
    ret = uw_cfi_parse_ordered(d->d_buf, d->d_size, sh.sh_addr, kind, order, norder,
                               STOKE_UW_MAX_ELEMS, rows, st);
    free(order);
    if (ret == 0 && rows->n == 0)
        ret = -ENODATA;
    if (ret == 0)
        uw_rows_finish(rows);
    else
        uw_rows_free(rows);
    return ret;
}

int uw_table_from_elf(Elf *elf, struct uw_table *t)
{
    struct uw_rows rows;
    struct uw_cfi_stats st;
    const char *source;
    int ret;

    memset(t, 0, sizeof(*t));
    ret = uw_rows_from_elf(elf, &rows, &st, &source);
    if (ret == 0)
        ret = uw_table_compile(&rows, t);
    uw_rows_free(&rows);
    t->cfi = st;
    t->source = source;
    return ret;
}

/* Pages of text the rows span (4 KiB each), plus the one of the last row. */
static uint32_t table_pages(const struct uw_rows *rows)
{
    return ((rows->v[rows->n - 1].pc - rows->v[0].pc) >> STOKE_UW_PAGE_SHIFT) + 1;
}

int uw_table_size(const struct uw_rows *rows, uint32_t *nelems)
{
    uint64_t n;

    if (rows->n == 0)
        return -ENODATA;
    n = 1 + ((uint64_t)table_pages(rows) + 2) / 2 + rows->n;
    if (n > STOKE_UW_MAX_ELEMS)
        return -E2BIG;
    *nelems = (uint32_t)n;
    return 0;
}

/* The first row at or after text page @p of the table (rows->n if none). */
static uint32_t page_first_row(const struct uw_rows *rows, uint64_t p)
{
    uint64_t at = rows->v[0].pc + (p << STOKE_UW_PAGE_SHIFT);
    size_t lo = 0, hi = rows->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rows->v[mid].pc < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

uint64_t uw_table_write_part(const struct uw_rows *rows, uint64_t *win, uint64_t from,
                             uint64_t count)
{
    uint32_t npages = table_pages(rows), first = rows->v[0].pc;
    uint64_t r0 = 1 + ((uint64_t)npages + 2) / 2;

    for (uint64_t e = from; e < from + count; e++) {
        uint64_t *out = &win[e - from];
        if (e == 0) {
            uint32_t hdr[2] = {(uint32_t)rows->n, npages};
            memcpy(out, hdr, sizeof(hdr));
        } else if (e < r0) {
            /* two entries of the page index; the last element's second
             * half is 0 when npages + 1 is odd */
            uint32_t idx[2];
            for (int k = 0; k < 2; k++) {
                uint64_t p = 2 * (e - 1) + (uint64_t)k;
                idx[k] = p <= npages ? page_first_row(rows, p) : 0;
            }
            memcpy(out, idx, sizeof(idx));
        } else {
            struct unwind_row row = rows->v[e - r0];
            row.pc -= first;
            memcpy(out, &row, sizeof(row));
        }
    }
    return rows->base + first;
}

uint64_t uw_table_write(const struct uw_rows *rows, uint64_t *elems)
{
    uint32_t nelems;

    if (uw_table_size(rows, &nelems) != 0)
        return 0;
    return uw_table_write_part(rows, elems, 0, nelems);
}

int uw_table_compile(const struct uw_rows *rows, struct uw_table *t)
{
    const char *source = t->source;
    uint32_t nelems;
    int ret;

    memset(t, 0, sizeof(*t));
    t->source = source;
    ret = uw_table_size(rows, &nelems);
    if (ret)
        return ret;
    t->elems = calloc(nelems, sizeof(*t->elems));
    if (!t->elems)
        return -ENOMEM;
    t->nelems = nelems;
    t->nrows = (uint32_t)rows->n;
    t->npages = table_pages(rows);
    t->base = uw_table_write(rows, t->elems);
    return 0;
}

void uw_table_free(struct uw_table *t)
{
    free(t->elems);
    memset(t, 0, sizeof(*t));
}

const struct unwind_row *uw_table_lookup(const struct uw_table *t, uint64_t vaddr)
{
    const uint32_t *hdr, *idx;
    uint32_t nrows, npages, page, lo, hi, r0;
    uint64_t rel;
    const struct unwind_row *rows;

    if (!t->elems || vaddr < t->base || vaddr - t->base > UINT32_MAX)
        return NULL;
    rel = vaddr - t->base;
    hdr = (const uint32_t *)&t->elems[0];
    nrows = hdr[0];
    npages = hdr[1];
    page = (uint32_t)(rel >> STOKE_UW_PAGE_SHIFT);
    if (page >= npages)
        return NULL;
    idx = (const uint32_t *)&t->elems[1];
    r0 = 1 + (npages + 2) / 2;
    rows = (const struct unwind_row *)&t->elems[r0];
    lo = idx[page];
    hi = idx[page + 1];
    /* the last row with pc <= rel: rows before lo start before this page,
     * rows from hi on start after it */
    for (int step = 0; step < STOKE_UW_SEARCH_STEPS && lo < hi; step++) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (rows[mid].pc <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || lo > nrows)
        return NULL;
    return &rows[lo - 1];
}

/* ---- streamed ------------------------------------------------------------ */

/* Hands back the pages of the section when it is read from the file's
 * mapping: only its own, so that the many calls a pass makes cost little. */
static void drop_section(const struct uw_table_stream *ts)
{
    size_t size;
    const uint8_t *img = ts->mapped ? (const uint8_t *)elf_rawfile(ts->elf, &size) : NULL;
    uintptr_t lo, hi;

    if (!img || ts->data < img || ts->len > size || ts->data - img > (ptrdiff_t)(size - ts->len))
        return; /* decompressed into the heap: nothing to hand back */
    lo = (uintptr_t)ts->data & ~(uintptr_t)4095;
    hi = (uintptr_t)ts->data + ts->len;
    file_drop_pages((const void *)lo, hi - lo);
}

/* One pass of a stream: the parse's rows through the merge into @put. */
struct pass {
    struct uw_table_stream *ts;
    struct uw_merge m;
    /* the write pass */
    uint64_t *buf;
    size_t nbuf;
    uint64_t at; /* table element of buf[0] */
    uw_elems_fn fn;
    void *ctx;
    uint32_t nrows; /* rows written */
};

static int pass_rows(void *ctx, const struct unwind_row *rows, size_t n)
{
    struct pass *ps = ctx;
    int ret = 0;

    /* every UW_CFI_TICK entries, the file's pages go back: each pass reads
     * all of .eh_frame (libLLVM's is 5 MB) */
    if (n == 0)
        drop_section(ps->ts);
    for (size_t i = 0; i < n && ret == 0; i++)
        ret = uw_merge_push(&ps->m, &rows[i]);
    return ret;
}

/* The count pass's sink: the rows' number, first pc and page index. */
static int count_row(void *ctx, const struct unwind_row *r)
{
    struct pass *ps = ctx;
    struct uw_table_stream *ts = ps->ts;
    uint64_t page;

    if (ts->nrows == 0)
        ts->first = r->pc;
    page = (uint64_t)(r->pc - ts->first) >> STOKE_UW_PAGE_SHIFT;
    /* pages up to this row's that no row before reached start here */
    while (ts->nidx <= page) {
        if (ts->nidx == ts->idx_cap) {
            size_t ncap = ts->idx_cap ? ts->idx_cap * 2 : 1024;
            uint32_t *nv = realloc(ts->idx, ncap * sizeof(*nv));
            if (!nv)
                return -ENOMEM;
            ts->idx = nv;
            ts->idx_cap = ncap;
        }
        ts->idx[ts->nidx++] = ts->nrows;
    }
    ts->last = r->pc;
    ts->nrows++;
    return 0;
}

/* One pass over the section: rows to @row (count_row or write_row). */
static int run_pass(struct uw_table_stream *ts, struct pass *ps,
                    int (*row)(void *ctx, const struct unwind_row *r))
{
    struct uw_cfi_stats st = {0};
    uint64_t base = 0;
    int ret;

    ps->ts = ts;
    ps->m = (struct uw_merge){.fn = row, .ctx = ps};
    ret = uw_cfi_parse_each(ts->data, ts->len, ts->vaddr, ts->kind, ts->order, ts->norder,
                            STOKE_UW_MAX_ELEMS, pass_rows, ps, &base, &st);
    if (ret == 0)
        ret = uw_merge_end(&ps->m);
    drop_section(ts);
    ts->cfi = st;
    ts->rows_base = base;
    return ret;
}

int uw_table_stream_open(Elf *elf, bool mapped, struct uw_table_stream *ts)
{
    GElf_Shdr sh;
    Elf_Data *d = NULL;
    struct pass ps = {0};
    uint64_t n;
    int ret;

    memset(ts, 0, sizeof(*ts));
    ts->elf = elf;
    ts->mapped = mapped;
    ret = cfi_section(elf, &sh, &d, &ts->kind, &ts->source, &ts->order, &ts->norder);
    if (ret)
        return ret;
    if (mapped) /* .eh_frame_hdr, read whole for the order */
        uw_elf_drop_pages(elf);
    ts->data = d->d_buf;
    ts->len = d->d_size;
    ts->vaddr = sh.sh_addr;
    ret = run_pass(ts, &ps, count_row);
    if (ret == 0 && ts->nrows == 0)
        ret = -ENODATA;
    if (ret == 0) {
        ts->npages = ((ts->last - ts->first) >> STOKE_UW_PAGE_SHIFT) + 1;
        n = 1 + ((uint64_t)ts->npages + 2) / 2 + ts->nrows;
        if (n > STOKE_UW_MAX_ELEMS)
            ret = -E2BIG;
        ts->nelems = (uint32_t)n;
        ts->base = ts->rows_base + ts->first;
    }
    if (ret)
        uw_table_stream_close(ts);
    return ret;
}

static int flush(struct pass *ps)
{
    int ret = ps->nbuf ? ps->fn(ps->ctx, ps->at, ps->buf, ps->nbuf) : 0;

    ps->at += ps->nbuf;
    ps->nbuf = 0;
    return ret;
}

static int put(struct pass *ps, const void *elem)
{
    if (ps->at + ps->nbuf >= ps->ts->nelems)
        return -EIO; /* more than the count pass found: the file changed */
    memcpy(&ps->buf[ps->nbuf++], elem, 8);
    return ps->nbuf == UW_STREAM_CHUNK ? flush(ps) : 0;
}

static int write_row(void *ctx, const struct unwind_row *r)
{
    struct pass *ps = ctx;
    struct unwind_row row = *r;

    if (ps->nrows == 0 && row.pc != ps->ts->first)
        return -EIO;
    row.pc -= ps->ts->first;
    ps->nrows++;
    return put(ps, &row);
}

int uw_table_stream_write(struct uw_table_stream *ts, uw_elems_fn fn, void *ctx)
{
    struct pass ps = {.fn = fn, .ctx = ctx};
    uint32_t hdr[2] = {ts->nrows, ts->npages};
    int ret;

    ps.ts = ts;
    ps.buf = malloc(UW_STREAM_CHUNK * sizeof(*ps.buf));
    if (!ps.buf)
        return -ENOMEM;
    ret = put(&ps, hdr);
    /* the page index, two entries an element; idx[p] for p <= npages,
     * the pages past the last row's pointing past the rows */
    for (uint64_t p = 0; ret == 0 && p <= ts->npages; p += 2) {
        uint32_t e[2];
        for (int k = 0; k < 2; k++) {
            uint64_t q = p + (uint64_t)k;
            e[k] = q > ts->npages ? 0 : q < ts->nidx ? ts->idx[q] : ts->nrows;
        }
        ret = put(&ps, e);
    }
    if (ret == 0)
        ret = run_pass(ts, &ps, write_row);
    if (ret == 0 && (ps.nrows != ts->nrows || ps.at + ps.nbuf != ts->nelems))
        ret = -EIO;
    if (ret == 0)
        ret = flush(&ps);
    free(ps.buf);
    return ret;
}

void uw_table_stream_close(struct uw_table_stream *ts)
{
    free(ts->order);
    free(ts->idx);
    ts->order = NULL;
    ts->idx = NULL;
}
