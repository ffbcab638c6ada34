/* SPDX-License-Identifier: Apache-2.0 */
/*
 * debuginfo — internal: finds a binary's separate debug file and answers
 * file:line and inline-chain questions from DWARF through libdw.
 *
 * Lookup order for a separate file: <root>/.build-id/xx/rest.debug under each
 * debug root, then .gnu_debuglink next to the binary, in its .debug/ subdir
 * and under <root>/<dir>/. A candidate whose build-id differs from the
 * binary's is rejected (a stale debug file would give wrong lines).
 *
 * libdw is only trusted this far: a file it refuses yields no DWARF and the
 * caller falls back to symbol-table names. Inline chains are capped at the
 * caller's frame count; names and files returned point into libdw's data and
 * live as long as the struct sym_dwarf.
 */
#ifndef STOKE_SYM_DEBUGINFO_H
#define STOKE_SYM_DEBUGINFO_H

#include <elfutils/libdw.h>
#include <libelf.h>
#include <stddef.h>
#include <stdint.h>

struct sym_dwarf {
    Elf *elf;
    Dwarf *dw;
    void *map; /* the file's bytes, owned */
    size_t map_len;
    size_t est_bytes; /* what libdw will allocate for it, roughly */
    /* Address ranges of every compile unit, sorted by start: clang (and
     * gcc with -gdwarf-5 in some setups) emits no .debug_aranges, and
     * without them dwarf_addrdie finds nothing. Built once at open. */
    struct sym_cu_range *cus;
    size_t ncus;
};

struct sym_cu_range {
    uint64_t lo, hi;  /* [lo, hi) */
    uint64_t die_off; /* offset of the CU DIE in .debug_info */
};

struct sym_raw_frame {
    const char *name; /* maybe mangled; NULL when DWARF knows no function */
    const char *file;
    uint32_t line;
};

/*
 * Opens the separate debug file for a binary. @root_prefix is prepended to
 * the binary's directory for debuglink candidates (the process's root, e.g.
 * "/proc/42/root"); @map_path is the binary's path as the process sees it.
 * Returns an fd or -ENOENT.
 */
int sym_debuginfo_find(const char *debug_dirs, const char *build_id, Elf *elf,
                       const char *root_prefix, const char *map_path);

/* Opens DWARF from @fd (always consumed/closed). Returns 0, -ENODATA when the
 * file has no .debug_info, -EBADMSG when libdw rejects it. */
int sym_dwarf_open(int fd, struct sym_dwarf *out);
void sym_dwarf_close(struct sym_dwarf *d);

/* Innermost-first frames at @vaddr; returns how many (0 = nothing known). */
int sym_dwarf_lookup(struct sym_dwarf *d, uint64_t vaddr, struct sym_raw_frame *frames, int max);

#endif
