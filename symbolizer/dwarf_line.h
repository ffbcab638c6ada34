/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dwarf_line — internal: answers "which file and line is this address" from
 * one unit of .debug_line (DWARF 2 to 5) without keeping its line table.
 *
 * libdw expands a unit's whole line program into a sorted table the first
 * time any address of the unit is asked for, and keeps it until dwarf_end:
 * about 58 bytes per row, 17 MB for all of libc's. The symbolizer caches
 * its own answer per address, so it needs a row only once: this module
 * runs the line program again for each question and keeps nothing but the
 * unit's header (directory and file tables).
 *
 * It gives exactly what libdw 0.188 gives (dwarf_getsrc_die, dwarf_linesrc,
 * dwarf_lineno, dwarf_getsrcfiles + dwarf_filesrc), including its rules for
 * rows at the same address, the last row of a unit, and how a file name is
 * joined to its directory; tests/unit/test_dwarf_line.c compares the two
 * on every address of real binaries. Input is untrusted: every read is
 * bounds-checked, and a unit libdw would reject is rejected (-EBADMSG).
 * What this module does not read (path forms other than string, strp and
 * line_strp) gives -ENOTSUP, and the caller asks libdw instead.
 */
#ifndef STOKE_SYM_DWARF_LINE_H
#define STOKE_SYM_DWARF_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Section bytes; any may be NULL/0 when the file has no such section. */
struct sym_line_secs {
    const uint8_t *line, *line_str, *str;
    size_t line_len, line_str_len, str_len;
};

#define SYM_LINE_NO_DIR UINT64_MAX

struct sym_line_file {
    const char *name; /* NUL-terminated inside a section */
    uint64_t dir;     /* index into dirs; SYM_LINE_NO_DIR: the name as is */
    char *path;       /* joined to its directory on first use, owned */
};

struct sym_line_dir {
    const char *dir; /* NULL: DWARF < 5 without DW_AT_comp_dir */
    size_t len;
};

/* One parsed unit header. */
struct sym_line_unit {
    uint64_t off; /* of the unit in .debug_line */
    unsigned version, offset_size, address_size;
    const uint8_t *prog, *end; /* the line program */
    const uint8_t *std_lens;   /* standard_opcode_lengths, indexed by opcode */
    uint8_t min_inst_len, max_ops, default_is_stmt, line_range, opcode_base;
    int8_t line_base;
    struct sym_line_dir *dirs;
    size_t ndirs;
    struct sym_line_file *files; /* [0] is "???" below DWARF 5 */
    size_t nfiles, capfiles;
    bool program_read; /* the program ran to its end once: DW_LNE_define_file
                          entries are appended */
    int err;           /* the program is invalid: no rows, no files */
    size_t bytes;      /* heap held by this unit */
};

/*
 * Parses the header of the unit at @off. @comp_dir is the CU's
 * DW_AT_comp_dir (directory 0 below DWARF 5; may be NULL), @address_size
 * the CU's. Returns 0, -EBADMSG (libdw would reject it), -ENOTSUP (a form
 * this module does not read) or -ENOMEM. Free with sym_line_unit_free().
 */
int sym_line_unit_parse(struct sym_line_unit *u, const struct sym_line_secs *s, uint64_t off,
                        const char *comp_dir, unsigned address_size);
void sym_line_unit_free(struct sym_line_unit *u);

/*
 * Runs the line program for @addr. Returns 1 with *@file (an index for
 * sym_line_path) and *@line set, 0 when no row covers @addr, or a negative
 * errno (-EBADMSG: libdw would reject the unit; then no address of it has
 * a line).
 */
int sym_line_find(struct sym_line_unit *u, uint64_t addr, uint64_t *file, int *line);

/* The name of file @index as libdw composes it ("dir/name", or the name
 * when it is absolute), or NULL when out of range, out of memory, or the
 * unit's program is invalid (libdw then has no file table either). Runs
 * the program once if sym_line_find() has not (DWARF < 5's
 * DW_LNE_define_file adds files). Valid until sym_line_unit_free(). */
const char *sym_line_path(struct sym_line_unit *u, uint64_t index);

#endif
