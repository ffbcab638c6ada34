/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unwind/cfi + unwind/table: every row of real binaries' tables checked
 * against libdw's own CFI interpreter, the page-index lookup against a
 * linear search, and malformed input (every truncation of a real
 * .eh_frame, flipped bytes) parsed without a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dwarf.h>
#include <errno.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>
#include "bpf/profile.h"
#include "unwind/cfi.h"
#include "unwind/table.h"

/* What libdw says the walker should do at @pc, as a row. Returns false
 * when libdw has no frame there. */
static bool libdw_row(Dwarf_CFI *cfi, uint64_t pc, struct unwind_row *out)
{
    Dwarf_Frame *fr;
    Dwarf_Op ops_mem[3], *ops;
    size_t nops;
    bool signal = false;

    if (dwarf_cfi_addrframe(cfi, pc, &fr) != 0)
        return false;
    memset(out, 0, sizeof(*out));
    dwarf_frame_info(fr, NULL, NULL, &signal);
    if (signal) {
        out->kind = STOKE_UW_SIGNAL;
        free(fr);
        return true;
    }
    /* return address */
    if (dwarf_frame_register(fr, 16, ops_mem, &ops, &nops) != 0) {
        free(fr);
        return false;
    }
    if (nops == 0 && ops == ops_mem) {
        out->kind = STOKE_UW_END;
        free(fr);
        return true;
    }
    out->kind = STOKE_UW_UNSUPPORTED;
    bool ra_ok = nops == 2 && ops[0].atom == DW_OP_call_frame_cfa &&
                 ops[1].atom == DW_OP_plus_uconst && (int64_t)ops[1].number == -8;
    /* CFA */
    if (ra_ok && dwarf_frame_cfa(fr, &ops, &nops) == 0 && nops > 0) {
        int reg = -1;
        int64_t off = 0;
        if (nops == 1 && ops[0].atom == DW_OP_bregx) {
            reg = (int)ops[0].number;
            off = (int64_t)ops[0].number2;
        } else if (nops == 1 && ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
            reg = ops[0].atom - DW_OP_breg0;
            off = (int64_t)ops[0].number;
        }
        if (reg == 7 && off >= 0 && off <= 0xffff) {
            out->kind = STOKE_UW_CFA_RSP;
            out->off = (uint16_t)off;
        } else if (reg == 7 && off >= 0 && off % 8 == 0 && off / 8 <= 0xffff) {
            out->kind = STOKE_UW_CFA_RSP_X8;
            out->off = (uint16_t)(off / 8);
        } else if (reg == 6 && off >= 0 && off <= 0xffff) {
            out->kind = STOKE_UW_CFA_RBP;
            out->off = (uint16_t)off;
        } else if (nops == 9 && ops[0].atom == DW_OP_breg7 && ops[1].atom == DW_OP_breg16 &&
                   ops[4].atom >= DW_OP_lit0 && ops[4].atom <= DW_OP_lit15 &&
                   ops[5].atom == DW_OP_ge && ops[8].atom == DW_OP_plus) {
            out->kind = STOKE_UW_PLT;
            out->off = (uint16_t)ops[0].number;
            out->rbp = (int8_t)(ops[4].atom - DW_OP_lit0);
        } else if (nops == 2 && ops[0].atom == DW_OP_breg6 && ops[1].atom == DW_OP_deref &&
                   (int64_t)ops[0].number <= 0) {
            out->kind = STOKE_UW_DEREF_RBP;
            out->off = (uint16_t) - (int64_t)ops[0].number;
        }
    }
    if (out->kind != STOKE_UW_UNSUPPORTED && out->kind != STOKE_UW_PLT) {
        /* rbp */
        if (dwarf_frame_register(fr, 6, ops_mem, &ops, &nops) != 0) {
            out->rbp = STOKE_UW_RBP_LOST;
        } else if (nops == 0) {
            out->rbp = 0; /* undefined or same value: the walker keeps rbp */
        } else if (nops == 2 && ops[0].atom == DW_OP_call_frame_cfa &&
                   ops[1].atom == DW_OP_plus_uconst) {
            int64_t o = (int64_t)ops[1].number;
            out->rbp = (o % 8 == 0 && o != 0 && o / 8 >= -126 && o / 8 <= 127) ? (int8_t)(o / 8)
                                                                               : STOKE_UW_RBP_LOST;
        } else if (nops == 1 && ops[0].atom == DW_OP_call_frame_cfa) {
            out->rbp = STOKE_UW_RBP_LOST; /* saved at the CFA itself: not an x86-64 rule */
        } else if (nops == 1 && ops[0].atom == DW_OP_breg6 && ops[0].number == 0) {
            out->rbp = STOKE_UW_RBP_DEREF;
        } else {
            out->rbp = STOKE_UW_RBP_LOST;
        }
    }
    free(fr);
    return true;
}

struct checked {
    size_t rows, pcs, none;
};

/* Builds the table of @path and checks every row's first and last byte
 * against libdw. */
static void check_binary(const char *path, struct checked *c)
{
    int fd = open(path, O_RDONLY);
    Elf *elf;
    Dwarf_CFI *cfi;
    struct uw_table t;

    if (fd < 0) {
        print_message("skipping %s: not present\n", path);
        return;
    }
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    assert_non_null(elf);
    assert_int_equal(uw_table_from_elf(elf, &t), 0);
    assert_string_equal(t.source, ".eh_frame");
    assert_true(t.nrows > 100);
    cfi = dwarf_getcfi_elf(elf);
    assert_non_null(cfi);

    const struct unwind_row *rows =
        (const struct unwind_row *)&t.elems[1 + ((uint64_t)t.npages + 2) / 2];
    for (uint32_t i = 0; i + 1 < t.nrows; i++) {
        uint64_t first = t.base + rows[i].pc, last = t.base + rows[i + 1].pc - 1;
        uint64_t probes[2] = {first, last};
        for (int k = 0; k < 2; k++) {
            const struct unwind_row *got = uw_table_lookup(&t, probes[k]);
            struct unwind_row want;
            assert_ptr_equal(got, &rows[i]);
            if (!libdw_row(cfi, probes[k], &want)) {
                if (got->kind != STOKE_UW_NONE)
                    fail_msg("%s: pc 0x%llx: libdw has no frame, table kind %u", path,
                             (unsigned long long)probes[k], got->kind);
                c->none++;
            } else if (got->kind != want.kind || got->off != want.off || got->rbp != want.rbp) {
                fail_msg("%s: pc 0x%llx: table {kind %u off %u rbp %d}, libdw {kind %u off %u "
                         "rbp %d}",
                         path, (unsigned long long)probes[k], got->kind, got->off, got->rbp,
                         want.kind, want.off, want.rbp);
            }
            c->pcs++;
        }
    }
    c->rows += t.nrows;
    dwarf_cfi_end(cfi);
    uw_table_free(&t);
    elf_end(elf);
    close(fd);
}

static int libc_path_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (strstr(info->dlpi_name, "/libc.so")) {
        snprintf(data, 4096, "%s", info->dlpi_name);
        return 1;
    }
    return 0;
}

static void test_rows_match_libdw(void **state)
{
    char libc[4096] = "";
    struct checked c = {0};
    const char *others[] = {"/proc/self/exe", "/usr/bin/python3.11", "/usr/bin/perl",
                            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"};

    elf_version(EV_CURRENT);
    dl_iterate_phdr(libc_path_cb, libc);
    assert_true(libc[0] != '\0');
    check_binary(libc, &c);
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        check_binary(others[i], &c);
    print_message("%zu rows, %zu pcs checked against libdw (%zu without FDE)\n", c.rows, c.pcs,
                  c.none);
    assert_true(c.pcs > 10000);
}

/* The table of @rows written through windows of several sizes (1 element,
 * odd sizes straddling the header, the page index and the rows) is
 * element for element the table @t written whole. */
static void check_windows(const struct uw_rows *rows, const struct uw_table *t)
{
    const uint64_t wins[] = {1, 3, 7, 512, 1000, (uint64_t)t->nelems};
    uint64_t *buf = malloc((size_t)t->nelems * sizeof(*buf));

    assert_non_null(buf);
    for (size_t w = 0; w < sizeof(wins) / sizeof(wins[0]); w++) {
        memset(buf, 0xa5, (size_t)t->nelems * sizeof(*buf));
        for (uint64_t from = 0; from < t->nelems; from += wins[w]) {
            uint64_t n = t->nelems - from < wins[w] ? t->nelems - from : wins[w];
            assert_int_equal(uw_table_write_part(rows, buf + from, from, n), t->base);
        }
        assert_memory_equal(buf, t->elems, (size_t)t->nelems * sizeof(*buf));
    }
    free(buf);
}

/* The page index finds what a linear search finds, across page edges,
 * empty pages and pages with many rows. */
static void test_lookup_page_index(void **state)
{
    struct uw_rows rows = {0};
    struct uw_table t = {0};
    uint64_t pcs[] = {0x1000, 0x1001, 0x1fff, 0x2000, 0x2004, 0x9000, 0x9001, 0x20000};

    rows.v = calloc(8192, sizeof(*rows.v));
    assert_non_null(rows.v);
    rows.base = 0x800; /* rows are relative to it; the first row need not be at 0 */
    for (size_t i = 0; i < sizeof(pcs) / sizeof(pcs[0]); i++)
        rows.v[rows.n++] = (struct unwind_row){.pc = (uint32_t)(pcs[i] - rows.base),
                                               .kind = STOKE_UW_CFA_RSP,
                                               .off = (uint16_t)(8 + 8 * i)};
    /* one page with 4096 rows: one per byte */
    for (uint64_t pc = 0x30000; pc < 0x31000; pc++)
        rows.v[rows.n++] = (struct unwind_row){.pc = (uint32_t)(pc - rows.base),
                                               .kind = STOKE_UW_CFA_RSP,
                                               .off = (uint16_t)(pc & 0xfff)};
    rows.v[rows.n++] = (struct unwind_row){.pc = 0x31000 - 0x800, .kind = STOKE_UW_NONE};
    assert_int_equal(uw_table_compile(&rows, &t), 0);
    assert_int_equal(t.base, 0x1000);
    for (uint64_t pc = 0xff0; pc < 0x32010; pc++) {
        const struct unwind_row *want = NULL, *got = uw_table_lookup(&t, pc);
        const struct unwind_row *r0 =
            (const struct unwind_row *)&t.elems[1 + ((uint64_t)t.npages + 2) / 2];
        for (size_t i = 0; i < rows.n; i++)
            if (rows.base + rows.v[i].pc <= pc)
                want = &r0[i];
        if (pc - t.base >= (uint64_t)t.npages << STOKE_UW_PAGE_SHIFT)
            want = NULL; /* beyond the last page: no row, frame pointers */
        assert_ptr_equal(got, want);
    }
    check_windows(&rows, &t);
    uw_table_free(&t);
    uw_rows_free(&rows);
}

struct indexed_row {
    struct unwind_row r;
    size_t i;
};

static int cmp_indexed(const void *a, const void *b)
{
    const struct indexed_row *x = a, *y = b;
    if (x->r.pc != y->r.pc)
        return x->r.pc < y->r.pc ? -1 : 1;
    int nx = x->r.kind == STOKE_UW_NONE, ny = y->r.kind == STOKE_UW_NONE;
    if (nx != ny)
        return nx - ny;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Rows out of order, with many equal pcs of different rules: finishing
 * them sorts stably (by pc, end markers last, else in the order given) as
 * a sort by (pc, end marker, index) does, then merges alike. */
static void test_rows_sorted_stably(void **state)
{
    const size_t sizes[] = {2, 3, 17, 1000, 200003};
    unsigned seed = 12345;

    for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
        size_t n = sizes[z];
        struct uw_rows a = {0}, b = {0};
        struct indexed_row *ix = calloc(n, sizeof(*ix));
        a.v = calloc(n, sizeof(*a.v));
        b.v = calloc(n, sizeof(*b.v));
        assert_true(ix && a.v && b.v);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            uint32_t x = seed >> 8;
            a.v[i] =
                (struct unwind_row){.pc = x % (uint32_t)(n / 2 + 1),
                                    .kind = (x >> 12) % 4 == 0 ? STOKE_UW_NONE : STOKE_UW_CFA_RSP,
                                    .off = (uint16_t)(8 * ((x >> 16) % 3)),
                                    .rbp = (int8_t)((x >> 20) % 2)};
            ix[i] = (struct indexed_row){a.v[i], i};
        }
        a.n = a.cap = b.n = b.cap = n;
        qsort(ix, n, sizeof(*ix), cmp_indexed);
        for (size_t i = 0; i < n; i++)
            b.v[i] = ix[i].r;
        uw_rows_finish(&a);
        uw_rows_finish(&b); /* sorted already: merged only */
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.v, b.v, a.n * sizeof(*a.v));
        free(ix);
        uw_rows_free(&a);
        uw_rows_free(&b);
    }
}

/* libc's table written through windows is the table written whole. */
static void test_write_in_windows(void **state)
{
    char libc[4096] = "";
    struct uw_rows rows = {0};
    struct uw_cfi_stats st;
    struct uw_table t = {0};
    const char *source;

    elf_version(EV_CURRENT);
    dl_iterate_phdr(libc_path_cb, libc);
    int fd = open(libc, O_RDONLY);
    assert_true(fd >= 0);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    assert_int_equal(uw_rows_from_elf(elf, &rows, &st, &source), 0);
    assert_int_equal(uw_table_compile(&rows, &t), 0);
    assert_true(t.npages > 100);
    check_windows(&rows, &t);
    uw_table_free(&t);
    uw_rows_free(&rows);
    elf_end(elf);
    close(fd);
}

struct collected {
    uint64_t *elems;
    uint64_t n, calls, max_call;
};

static int collect(void *ctx, uint64_t from, const uint64_t *elems, size_t n)
{
    struct collected *c = ctx;

    assert_int_equal(from, c->n); /* in order, nothing skipped or repeated */
    memcpy(&c->elems[from], elems, n * 8);
    c->n += n;
    c->calls++;
    if (n > c->max_call)
        c->max_call = n;
    return 0;
}

static int refuse(void *ctx, uint64_t from, const uint64_t *elems, size_t n)
{
    return from >= *(uint64_t *)ctx ? -EPIPE : 0;
}

/* The table of @path streamed is the table laid out from rows held:
 * element for element, handed over in order and in chunks. */
static void check_streamed(const char *path, bool must)
{
    int fd = open(path, O_RDONLY);
    struct uw_table t;
    struct uw_table_stream ts;
    struct collected c = {0};

    if (fd < 0) {
        assert_false(must);
        print_message("skipping %s: not present\n", path);
        return;
    }
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    assert_int_equal(uw_table_from_elf(elf, &t), 0);
    for (int mapped = 0; mapped < 2; mapped++) {
        assert_int_equal(uw_table_stream_open(elf, mapped, &ts), 0);
        assert_int_equal(ts.nelems, t.nelems);
        assert_int_equal(ts.nrows, t.nrows);
        assert_int_equal(ts.npages, t.npages);
        assert_int_equal(ts.base, t.base);
        c = (struct collected){.elems = calloc(ts.nelems, 8)};
        assert_int_equal(uw_table_stream_write(&ts, collect, &c), 0);
        assert_int_equal(c.n, t.nelems);
        assert_memory_equal(c.elems, t.elems, (size_t)t.nelems * 8);
        assert_true(c.max_call <= UW_STREAM_CHUNK);
        uw_table_stream_close(&ts);
        free(c.elems);
    }
    /* the sink's error stops the write and is returned */
    uint64_t stop = t.nelems / 2;
    assert_int_equal(uw_table_stream_open(elf, true, &ts), 0);
    assert_int_equal(uw_table_stream_write(&ts, refuse, &stop),
                     t.nelems > UW_STREAM_CHUNK ? -EPIPE : 0);
    uw_table_stream_close(&ts);
    print_message("%s: %u elements streamed, as laid out from rows held\n", path, t.nelems);
    uw_table_free(&t);
    elf_end(elf);
    close(fd);
}

static void test_streamed_as_compiled(void **state)
{
    char libc[4096] = "";
    const char *others[] = {"/proc/self/exe", "/usr/bin/python3.11",
                            "/usr/bin/perl",  "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
                            "/usr/bin/node",  "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1"};

    elf_version(EV_CURRENT);
    dl_iterate_phdr(libc_path_cb, libc);
    check_streamed(libc, true);
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        check_streamed(others[i], i == 0);
}

struct kept {
    struct unwind_row v[8];
    size_t n;
};

static int keep_row(void *ctx, const struct unwind_row *r)
{
    struct kept *k = ctx;

    assert_true(k->n < 8);
    k->v[k->n++] = *r;
    return 0;
}

/* Rows that do not come in address order are refused by the stream's merge
 * (the caller sorts them instead); in order, they merge as uw_rows_finish
 * merges them: one row per rule, a rule winning over the end marker of
 * the FDE before at the same pc, in either order. */
static void test_merge_in_order(void **state)
{
    const struct unwind_row in[] = {
        {.pc = 0, .kind = STOKE_UW_CFA_RSP, .off = 8},
        {.pc = 4, .kind = STOKE_UW_CFA_RSP, .off = 8},  /* same rule: merged */
        {.pc = 8, .kind = STOKE_UW_NONE},               /* an FDE's end ... */
        {.pc = 8, .kind = STOKE_UW_CFA_RSP, .off = 16}, /* ... where the next starts */
        {.pc = 12, .kind = STOKE_UW_CFA_RSP, .off = 24},
        {.pc = 12, .kind = STOKE_UW_NONE}, /* after the rule: dropped */
        {.pc = 20, .kind = STOKE_UW_NONE},
    };
    const size_t n = sizeof(in) / sizeof(in[0]);
    struct kept k = {0};
    struct uw_merge m = {.fn = keep_row, .ctx = &k};
    struct uw_rows rows = {.v = malloc(sizeof(in)), .n = n, .cap = n};

    for (size_t i = 0; i < n; i++)
        assert_int_equal(uw_merge_push(&m, &in[i]), 0);
    assert_int_equal(uw_merge_end(&m), 0);
    assert_int_equal(k.n, 4);
    assert_int_equal(k.v[0].pc, 0);
    assert_int_equal(k.v[1].pc, 8);
    assert_int_equal(k.v[1].off, 16);
    assert_int_equal(k.v[2].pc, 12);
    assert_int_equal(k.v[3].pc, 20);
    assert_int_equal(k.v[3].kind, STOKE_UW_NONE);
    /* the same as the whole-table merge */
    memcpy(rows.v, in, sizeof(in));
    uw_rows_finish(&rows);
    assert_int_equal(rows.n, k.n);
    assert_memory_equal(rows.v, k.v, k.n * sizeof(*k.v));
    uw_rows_free(&rows);

    const struct unwind_row back = {.pc = 16, .kind = STOKE_UW_CFA_RBP, .off = 16};
    assert_int_equal(uw_merge_push(&m, &back), -ERANGE);
}

/* Hand-written CFI: CIE + FDEs exercising PLT, realignment, remember/
 * restore state, undefined RA, signal frames and an unknown opcode. */
static void put(uint8_t **p, const void *b, size_t n)
{
    if (n)
        memcpy(*p, b, n);
    *p += n;
}

static size_t build_eh_frame(uint8_t *buf)
{
    uint8_t *p = buf;
    /* CIE at 0: "zR", code 1, data -8, ra 16, R = pcrel|sdata4;
     * def_cfa rsp+8; offset r16 at cfa-8 */
    const uint8_t cie[] = {0x14, 0,    0,  0, 0,    0,    0, 0, 1,    'z', 'R', 0,
                           1,    0x78, 16, 1, 0x1b, 0x0c, 7, 8, 0x90, 1,   0,   0};
    put(&p, cie, sizeof(cie));
    /* CIE at 24: "zRS" (signal) */
    const uint8_t scie[] = {0x14, 0, 0,    0,  0, 0,    0,    0, 1, 'z',  'R', 'S',
                            0,    1, 0x78, 16, 1, 0x1b, 0x0c, 7, 8, 0x90, 1,   0};
    put(&p, scie, sizeof(scie));
    return (size_t)(p - buf);
}

static size_t add_fde(uint8_t *buf, size_t off, size_t cie_off, uint64_t vaddr, uint32_t pc,
                      uint32_t len, const uint8_t *insns, size_t ninsns)
{
    uint8_t *p = buf + off;
    uint32_t total = (uint32_t)(4 + 4 + 4 + 1 + ninsns);
    uint32_t pad = (4 - (total + 4) % 4) % 4, cieptr = (uint32_t)(off + 4 - cie_off);
    total += pad;
    put(&p, &total, 4);
    put(&p, &cieptr, 4);
    int32_t rel = (int32_t)((int64_t)pc - (int64_t)(vaddr + (uint64_t)(p - buf)));
    put(&p, &rel, 4);
    put(&p, &len, 4);
    *p++ = 0; /* augmentation data length */
    put(&p, insns, ninsns);
    memset(p, 0, pad); /* DW_CFA_nop */
    p += pad;
    return (size_t)(p - buf);
}

static void test_handwritten_cfi(void **state)
{
    uint8_t buf[1024];
    uint64_t vaddr = 0x400000;
    size_t n = build_eh_frame(buf);
    /* f1 at 0x1000..0x1100: push rbp; mov rsp,rbp; remember; leave; restore */
    const uint8_t f1[] = {0x41, 0x0e, 16,   0x86, 2, 0x43, 0x0d, 6,
                          0x0a, 0x50, 0x0c, 7,    8, 0x42, 0x0b};
    /* f2 at 0x2000..0x2020: a lazy PLT stub from 0x2010 */
    const uint8_t f2[] = {0x46, 0x0e, 16,   0x4a, 0x0f, 11,   0x77, 8,   0x80,
                          0,    0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22};
    /* f3 at 0x3000..0x3040: DRAP realignment */
    const uint8_t f3[] = {0x45, 0x0c, 10,   0,    0x5b, 0x10, 6,    2,
                          0x76, 0,    0x42, 0x0f, 3,    0x76, 0x78, 0x06};
    /* f4 at 0x4000..0x4010: _start, RA undefined */
    const uint8_t f4[] = {0x07, 16};
    /* f6 at 0x6000..0x6010: an opcode no DWARF version defines */
    const uint8_t f6[] = {0x44, 0x3f};
    n = add_fde(buf, n, 0, vaddr, 0x401000, 0x100, f1, sizeof(f1));
    n = add_fde(buf, n, 0, vaddr, 0x402000, 0x20, f2, sizeof(f2));
    n = add_fde(buf, n, 0, vaddr, 0x403000, 0x40, f3, sizeof(f3));
    n = add_fde(buf, n, 0, vaddr, 0x404000, 0x10, f4, sizeof(f4));
    n = add_fde(buf, n, 24, vaddr, 0x405000, 0x10, NULL, 0);
    n = add_fde(buf, n, 0, vaddr, 0x406000, 0x10, f6, sizeof(f6));
    memset(buf + n, 0, 4);
    n += 4;

    struct uw_rows rows = {0};
    struct uw_cfi_stats st = {0};
    struct uw_table t = {0};
    assert_int_equal(uw_cfi_parse(buf, n, vaddr, UW_EH_FRAME, 1000, &rows, &st), 0);
    assert_int_equal(st.cies, 2);
    assert_int_equal(st.fdes, 6);
    assert_int_equal(st.bad_entries, 1); /* f6 */
    uw_rows_finish(&rows);
    assert_int_equal(uw_table_compile(&rows, &t), 0);

    struct {
        uint64_t pc;
        uint8_t kind;
        uint16_t off;
        int8_t rbp;
    } want[] = {
        {0x401000, STOKE_UW_CFA_RSP, 8, 0},      {0x401001, STOKE_UW_CFA_RSP, 16, -2},
        {0x401004, STOKE_UW_CFA_RBP, 16, -2},    {0x401014, STOKE_UW_CFA_RSP, 8, -2},
        {0x401016, STOKE_UW_CFA_RBP, 16, -2},    {0x4010ff, STOKE_UW_CFA_RBP, 16, -2},
        {0x401100, STOKE_UW_NONE, 0, 0},         {0x402000, STOKE_UW_CFA_RSP, 8, 0},
        {0x402006, STOKE_UW_CFA_RSP, 16, 0},     {0x40201f, STOKE_UW_PLT, 8, 11},
        {0x402020, STOKE_UW_NONE, 0, 0},         {0x403000, STOKE_UW_CFA_RSP, 8, 0},
        {0x403005, STOKE_UW_UNSUPPORTED, 0, 0},  {0x403020, STOKE_UW_UNSUPPORTED, 0, 0},
        {0x403022, STOKE_UW_DEREF_RBP, 8, -127}, {0x404000, STOKE_UW_END, 0, 0},
        {0x405008, STOKE_UW_SIGNAL, 0, 0},       {0x406004, STOKE_UW_UNSUPPORTED, 0, 0},
        {0x406010, STOKE_UW_NONE, 0, 0},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct unwind_row *r = uw_table_lookup(&t, want[i].pc);
        assert_non_null(r);
        if (r->kind != want[i].kind || r->off != want[i].off || r->rbp != want[i].rbp)
            fail_msg("pc 0x%llx: {kind %u off %u rbp %d}, want {%u %u %d}",
                     (unsigned long long)want[i].pc, r->kind, r->off, r->rbp, want[i].kind,
                     want[i].off, want[i].rbp);
    }
    uw_table_free(&t);
    uw_rows_free(&rows);
}

/* Every prefix of libc's .eh_frame, and copies with bytes flipped, parse
 * without a crash (ASan in make test-san) and never claim more FDEs than
 * the whole. */
static void test_truncated_and_corrupt(void **state)
{
    char libc[4096] = "";
    int fd;
    Elf *elf;
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    size_t shstrndx;
    Elf_Data *d = NULL;
    uint64_t vaddr = 0;

    elf_version(EV_CURRENT);
    dl_iterate_phdr(libc_path_cb, libc);
    fd = open(libc, O_RDONLY);
    assert_true(fd >= 0);
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    assert_int_equal(elf_getshdrstrndx(elf, &shstrndx), 0);
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        gelf_getshdr(scn, &sh);
        if (strcmp(elf_strptr(elf, shstrndx, sh.sh_name), ".eh_frame") == 0) {
            d = elf_getdata(scn, NULL);
            vaddr = sh.sh_addr;
            break;
        }
    }
    assert_non_null(d);
    size_t len = d->d_size > 4096 ? 4096 : d->d_size;
    uint8_t *copy = malloc(len);
    for (size_t cut = 0; cut <= len; cut++) {
        struct uw_rows rows = {0};
        struct uw_cfi_stats st = {0};
        memcpy(copy, d->d_buf, cut);
        /* an exact-size buffer: ASan catches any read past it */
        uint8_t *exact = malloc(cut ? cut : 1);
        memcpy(exact, copy, cut);
        assert_int_equal(uw_cfi_parse(exact, cut, vaddr, UW_EH_FRAME, 1 << 20, &rows, &st), 0);
        uw_rows_finish(&rows);
        free(exact);
        uw_rows_free(&rows);
    }
    srand(7);
    for (int round = 0; round < 2000; round++) {
        struct uw_rows rows = {0};
        struct uw_cfi_stats st = {0};
        memcpy(copy, d->d_buf, len);
        for (int k = 0; k < 4; k++)
            copy[(size_t)rand() % len] ^= (uint8_t)(1u << (rand() % 8));
        int r = uw_cfi_parse(copy, len, vaddr, UW_EH_FRAME, 1 << 20, &rows, &st);
        assert_true(r == 0 || r == -E2BIG);
        uw_rows_free(&rows);
    }
    /* the row cap is enforced */
    struct uw_rows rows = {0};
    struct uw_cfi_stats st = {0};
    assert_int_equal(uw_cfi_parse(d->d_buf, d->d_size, vaddr, UW_EH_FRAME, 10, &rows, &st), -E2BIG);
    assert_true(rows.n <= 10);
    uw_rows_free(&rows);
    free(copy);
    elf_end(elf);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_match_libdw),     cmocka_unit_test(test_lookup_page_index),
        cmocka_unit_test(test_write_in_windows),     cmocka_unit_test(test_rows_sorted_stably),
        cmocka_unit_test(test_handwritten_cfi),      cmocka_unit_test(test_truncated_and_corrupt),
        cmocka_unit_test(test_streamed_as_compiled), cmocka_unit_test(test_merge_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
