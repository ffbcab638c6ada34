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

/* The row covering ELF vaddr @vaddr, found as the BPF walker finds it;
 * NULL when none does (before the first row or after the last page). */
const struct unwind_row *uw_table_lookup(const struct uw_table *t, uint64_t vaddr);

/* Bytes of the table as the BPF map holds it. */
static inline size_t uw_table_bytes(const struct uw_table *t)
{
    return (size_t)t->nelems * 8;
}

#endif
