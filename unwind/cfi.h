/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfi — reads DWARF call frame information (.eh_frame or .debug_frame)
 * into the rows the BPF walker runs (struct unwind_row kinds, bpf/profile.h).
 *
 * Owns: the CIE/FDE parser and the CFA program interpreter. For each FDE it
 * runs the CIE's initial instructions and the FDE's own, and emits one row
 * per address range with a distinct rule for the three registers the walker
 * tracks on x86-64: the CFA (rsp- or rbp-based; the lazy-PLT and
 * stack-realignment expressions are recognised), the caller's rbp and the
 * return address (always at CFA - 8, or undefined in the outermost frame).
 * Anything else becomes STOKE_UW_UNSUPPORTED (the walk stops there) or
 * STOKE_UW_RBP_LOST, and is counted. Signal trampolines (CIE augmentation
 * 'S') become STOKE_UW_SIGNAL. The end of each FDE adds a STOKE_UW_NONE row,
 * so code between FDEs falls back to frame pointers instead of borrowing a
 * neighbour's rule.
 *
 * The input is untrusted: every read is bounds-checked, lengths and counts
 * are capped, a malformed FDE is skipped and counted, a malformed entry
 * length ends the section. Never recurses.
 */
#ifndef STOKE_UNWIND_CFI_H
#define STOKE_UNWIND_CFI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>
#include "bpf/profile.h"

/* Rows as the walker runs them (struct unwind_row, 8 bytes), their pc the
 * ELF virtual address minus @base (the lowest address of any FDE). */
struct uw_rows {
    struct unwind_row *v;
    size_t n, cap;
    uint64_t base;
};

struct uw_cfi_stats {
    uint32_t cies, fdes;
    uint32_t bad_entries;      /* CIEs/FDEs skipped as malformed or unsupported */
    uint32_t rows;             /* rows emitted (before merging) */
    uint32_t unsupported_rows; /* STOKE_UW_UNSUPPORTED */
    uint32_t rbp_lost_rows;    /* STOKE_UW_RBP_LOST */
    uint32_t signal_fdes;
};

enum uw_section {
    UW_EH_FRAME,    /* .eh_frame: CIE id 0, CIE pointers relative, 'z' augmentations */
    UW_DEBUG_FRAME, /* .debug_frame: CIE id ~0, CIE pointers absolute */
};

/*
 * Parses the section @data (@len bytes) loaded at virtual address @vaddr
 * into @out (empty; unsorted): a first pass finds the FDEs' address range
 * and sets out->base, the second runs their programs. Stops with -E2BIG
 * once @out would hold more than @max_rows, or when the FDEs span over
 * 4 GiB. Returns 0 (malformed parts are skipped and counted in @st),
 * -E2BIG, or -ENOMEM.
 */
int uw_cfi_parse(const uint8_t *data, size_t len, uint64_t vaddr, enum uw_section kind,
                 size_t max_rows, struct uw_rows *out, struct uw_cfi_stats *st);

/* The same, parsing the FDEs at the section offsets @order in that order
 * (.eh_frame_hdr's, sorted by address: the rows come out sorted and need
 * no sort) — when @order lists every FDE of the section, else in section
 * order. */
int uw_cfi_parse_ordered(const uint8_t *data, size_t len, uint64_t vaddr, enum uw_section kind,
                         const uint32_t *order, size_t norder, size_t max_rows, struct uw_rows *out,
                         struct uw_cfi_stats *st);

/* Receives the rows of one FDE at a time (a malformed FDE's are never
 * handed over): 0 to go on, a negative errno to stop the parse with it.
 * Also called with no rows (@n 0) every UW_CFI_TICK entries read, in both
 * passes, so that the caller can hand a file mapping's pages back. */
#define UW_CFI_TICK 4096
typedef int (*uw_rows_fn)(void *ctx, const struct unwind_row *rows, size_t n);

/* uw_cfi_parse_ordered without holding the rows: each FDE's go to @fn as
 * soon as it is parsed, so memory stays that of one FDE. @max_rows counts
 * every row handed over. Sets *@base (the rows' pc 0, as out->base). */
int uw_cfi_parse_each(const uint8_t *data, size_t len, uint64_t vaddr, enum uw_section kind,
                      const uint32_t *order, size_t norder, size_t max_rows, uw_rows_fn fn,
                      void *ctx, uint64_t *base, struct uw_cfi_stats *st);

/*
 * The merge of uw_rows_finish, a row at a time, for rows that come sorted
 * by pc (a rule and the end marker of the FDE before it in either order):
 * one row per pc, consecutive rows with the same rule merged. Each final
 * row goes to @fn once no later row can change it; uw_merge_end hands over
 * the last. Zero-initialise, set fn and ctx.
 */
struct uw_merge {
    int (*fn)(void *ctx, const struct unwind_row *row);
    void *ctx;
    struct unwind_row last; /* the row not yet final, when pending */
    struct unwind_row out;  /* the last final row, when nout */
    bool pending;
    uint32_t in_pc;   /* the last row pushed */
    size_t nin, nout; /* rows pushed, rows handed to fn */
};

/* 0, -ERANGE when @r's pc is below the row before (the input is not
 * sorted: nothing more may be pushed), or @fn's error. */
int uw_merge_push(struct uw_merge *m, const struct unwind_row *r);
int uw_merge_end(struct uw_merge *m);

/* Sorts @rows by pc, keeps one row per pc (a rule over the end marker of
 * the FDE before it) and merges consecutive rows with the same rule. */
void uw_rows_finish(struct uw_rows *rows);

void uw_rows_free(struct uw_rows *rows);

#endif
