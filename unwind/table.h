/* SPDX-License-Identifier: Apache-2.0 */
/*
 * table — one binary's unwind table, compiled into the layout the BPF
 * walker searches (bpf/profile.h: header, page index, rows).
 *
 * Owns: finding the call frame information of an ELF file (.eh_frame, or
 * .debug_frame when the file has only that), parsing it (unwind/cfi.h) and
 * laying the rows out with a page index, so that a lookup in BPF reads the
 * header, two index entries and binary-searches the rows of one 4 KiB page
 * of text. uw_table_lookup() is the same search in C, for tests and tools.
 *
 * A table is built once per binary (the agent caches it by build-id) and
 * shared by every process that maps it. Table pcs are ELF virtual
 * addresses minus `base`, so they fit 32 bits; a binary whose unwind
 * information spans more than 4 GiB, or whose table would exceed
 * STOKE_UW_MAX_ELEMS, is refused (-E2BIG).
 */
#ifndef STOKE_UNWIND_TABLE_H
#define STOKE_UNWIND_TABLE_H

#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "unwind/cfi.h"

struct unwind_row;

struct uw_table {
    uint64_t *elems; /* the BPF array's contents, 8 bytes each */
    uint32_t nelems;
    uint32_t nrows;
    uint32_t npages;
    uint64_t base; /* ELF vaddr of table pc 0 */
    struct uw_cfi_stats cfi;
    const char *source; /* ".eh_frame" or ".debug_frame" */
};

/*
 * The finished rows (uw_rows_finish) of @elf's call frame information, and
 * which section they came from. Returns 0, -ENODATA when the file has none,
 * -E2BIG when it is too large, -ENOMEM. On error @rows holds nothing.
 */
int uw_rows_from_elf(Elf *elf, struct uw_rows *rows, struct uw_cfi_stats *st, const char **source);

/* The number of 8-byte elements the table of @rows takes: 0, -ENODATA
 * (no rows) or -E2BIG (over STOKE_UW_MAX_ELEMS). */
int uw_table_size(const struct uw_rows *rows, uint32_t *nelems);

/* Writes the table of @rows into @elems (uw_table_size elements, e.g. the
 * mmap of the BPF array itself: no copy in between). Returns the table's
 * base: the ELF vaddr of table pc 0. */
uint64_t uw_table_write(const struct uw_rows *rows, uint64_t *elems);

/* The same for elements [@from, @from + @count) of the table only, into
 * @win (its element 0 is table element @from): a large table is written
 * through a window of its BPF array at a time, so that the agent never has
 * the whole array mapped (resident) on top of the rows. @from + @count
 * must not pass uw_table_size. Returns the table's base. */
uint64_t uw_table_write_part(const struct uw_rows *rows, uint64_t *win, uint64_t from,
                             uint64_t count);

/* uw_rows_from_elf + uw_table_compile, for tests and tools. On error @t
 * holds nothing to free. */
int uw_table_from_elf(Elf *elf, struct uw_table *t);

/* Lays out finished rows in memory of its own. 0, -ENODATA, -E2BIG, -ENOMEM. */
int uw_table_compile(const struct uw_rows *rows, struct uw_table *t);

void uw_table_free(struct uw_table *t);

/*
 * A table built without holding its rows: the section is parsed twice,
 * once to count the merged rows and lay out the page index (the size of
 * the BPF array has to be known before it is written), once to hand the
 * elements over in order, UW_STREAM_CHUNK at a time. Memory stays the page
 * index (4 bytes per 4 KiB of text), one FDE's rows and one chunk, where
 * holding the rows took 8 bytes a row (libLLVM: 7.9 MB, rustc's driver
 * 16 MB); and @mapped (@elf reads a file mapping) hands the file's pages
 * back as the parse goes. The table is the one uw_table_compile lays out.
 * Needs the rows in pc order as parsed (.eh_frame_hdr's order; section
 * order when there is none): when they are not, the count pass returns
 * -ERANGE and the caller builds the table from sorted rows instead.
 */
#define UW_STREAM_CHUNK 8192 /* elements: 64 KiB */

struct uw_table_stream {
    Elf *elf;
    bool mapped;
    const uint8_t *data; /* the section */
    size_t len;
    uint64_t vaddr;
    enum uw_section kind;
    uint32_t *order; /* FDE offsets in .eh_frame_hdr's order, or NULL */
    size_t norder;
    uint32_t *idx; /* page index: idx[p] for p < nidx; the rest are nrows */
    size_t nidx, idx_cap;
    uint32_t first, last; /* first and last row's pc, from rows_base */
    uint64_t rows_base;
    /* for the caller, after uw_table_stream_open: */
    uint32_t nrows, npages, nelems;
    uint64_t base; /* ELF vaddr of table pc 0 */
    struct uw_cfi_stats cfi;
    const char *source;
};

/* The count pass. 0, -ENODATA, -E2BIG, -ENOMEM, -ERANGE (not in order).
 * On error @ts holds nothing to close. */
int uw_table_stream_open(Elf *elf, bool mapped, struct uw_table_stream *ts);

/* Receives table elements [@from, @from + @n), in order, @n at most
 * UW_STREAM_CHUNK: 0, or a negative errno that stops the write. */
typedef int (*uw_elems_fn)(void *ctx, uint64_t from, const uint64_t *elems, size_t n);

/* The write pass: all ts->nelems elements to @fn. 0, @fn's error, -ENOMEM,
 * or -EIO when the section no longer parses as it did (nothing is handed
 * past ts->nelems). */
int uw_table_stream_write(struct uw_table_stream *ts, uw_elems_fn fn, void *ctx);

void uw_table_stream_close(struct uw_table_stream *ts);

/* The row covering ELF vaddr @vaddr, found as the BPF walker finds it;
 * NULL when none does (before the first row or after the last page). */
const struct unwind_row *uw_table_lookup(const struct uw_table *t, uint64_t vaddr);

/* Bytes of the table as the BPF map holds it. */
static inline size_t uw_table_bytes(const struct uw_table *t)
{
    return (size_t)t->nelems * 8;
}

#endif
