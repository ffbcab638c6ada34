/* SPDX-License-Identifier: Apache-2.0 */
/*
 * debuginfo — internal: finds a binary's separate debug file and answers
 * file:line and inline-chain questions from DWARF through libdw.
 *
 * Lookup order for a separate file: <root>/.build-id/xx/rest.debug under each
 * debug root, then under each debug root inside the process's root (a
 * container image's own debug files), then .gnu_debuglink next to the binary, in its .debug/ subdir
 * and under <root>/<dir>/. A candidate whose build-id differs from the
 * binary's is rejected (a stale debug file would give wrong lines).
 *
 * libdw is only trusted this far: a file it refuses yields no DWARF and the
 * caller falls back to symbol-table names. Inline chains are capped at the
 * caller's frame count; names and files returned point into libdw's data or
 * the open unit's file table, and stay valid until the next lookup or
 * sym_dwarf_close().
 *
 * Memory, which is most of the agent's when DWARF is in use (libc6-dbg's is
 * 10 MB of zlib-compressed sections):
 *  - Compressed debug sections are inflated once, as a stream, into an
 *    unlinked file under a scratch directory on disk, and that copy is
 *    mapped read-only: page cache the kernel can drop, not heap. Without a
 *    scratch directory (or on tmpfs, or when the copy fails) libelf
 *    inflates them into the heap as before, and est_bytes says so.
 *  - Pages of read-only mappings are handed back (MADV_DONTNEED) while the
 *    CU table is built, every SYM_DWARF_DROP_EVERY lookups (every one for
 *    files of SYM_DWARF_LARGE or more) and on
 *    sym_dwarf_trim(): what stays resident is one window's working set.
 *  - Lines come from dwarf_line.c, which keeps one unit's file table, not
 *    libdw's line tables (17 MB for all of libc's units).
 * What libdw still allocates is about 1 KB per compile unit (its CU and
 * abbreviation tables), counted in est_bytes.
 */
#ifndef STOKE_SYM_DEBUGINFO_H
#define STOKE_SYM_DEBUGINFO_H

#include <elfutils/libdw.h>
#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "symbolizer/dwarf_line.h"

#define SYM_DWARF_DROP_EVERY 4
#define SYM_DWARF_LARGE      (8u << 20) /* files this large: dropped before every lookup */

struct sym_dwarf {
    Elf *elf;
    Dwarf *dw;
    void *map; /* the file's bytes (or the inflated copy's), owned */
    size_t map_len;
    bool droppable;       /* map is read-only and unmodified: MADV_DONTNEED is safe */
    unsigned since_drop;  /* lookups since the pages were last dropped */
    size_t est_bytes;     /* heap libdw and we hold for it, estimated */
    size_t heap_sections; /* of which debug sections inflated in the heap */
    /* The inflated copy: an unlinked file of scratch_bytes (0: none was
     * made) the caller may take to reopen from, setting scratch_fd to -1;
     * otherwise sym_dwarf_close() closes it. */
    int scratch_fd;
    size_t scratch_bytes;
    /* .debug_line and its strings, and the unit of the last lookup */
    struct sym_line_secs lsecs;
    struct sym_line_unit unit;
    bool unit_ok;
    /* Address ranges of every compile unit, sorted by start: clang (and
     * gcc with -gdwarf-5 in some setups) emits no .debug_aranges, and
     * without them dwarf_addrdie finds nothing. Built once at open. */
    struct sym_cu_range *cus;
    size_t ncus;
};

struct sym_cu_range {
    uint64_t lo, hi;  /* [lo, hi) */
    uint64_t die_off; /* offset of the CU DIE in .debug_info */
    bool used;        /* a lookup went into this unit */
};

struct sym_raw_frame {
    const char *name; /* maybe mangled; NULL when DWARF knows no function */
    const char *file;
    uint32_t line;
};

/*
 * Opens the separate debug file for a binary. @root_prefix (the process's
 * root, e.g. "/proc/42/root"; NULL or "": none) is prepended to the debug
 * roots for build-id candidates after the agent's own, and to the binary's
 * directory for debuglink candidates; @map_path is the binary's path as the process sees it.
 * Returns an fd or -ENOENT.
 */
int sym_debuginfo_find(const char *debug_dirs, const char *build_id, Elf *elf,
                       const char *root_prefix, const char *map_path);

/* Where inflated copies of compressed debug sections go. */
struct sym_dwarf_scratch {
    const char *dir;  /* a directory on disk; NULL = inflate in the heap */
    size_t max_bytes; /* what one copy may take; 0 = no copy */
};

/* Opens DWARF from @fd (always consumed/closed). When the file's debug
 * sections are compressed and @scratch allows, they are inflated into an
 * unlinked file there, and out->scratch_fd is that file (owned by @out
 * until the caller takes it: the caller closes it). Returns 0, -ENODATA
 * when the file has no .debug_info, -EBADMSG when libdw rejects it. */
int sym_dwarf_open(int fd, const struct sym_dwarf_scratch *scratch, struct sym_dwarf *out);
void sym_dwarf_close(struct sym_dwarf *d);
/* Hands back the resident pages of a read-only mapping (a no-op for a
 * heap-inflated one). */
void sym_dwarf_trim(struct sym_dwarf *d);

/*
 * Writes an ELF file to @out_fd with the same sections as @img (native
 * class and byte order only), compressed ones (SHF_COMPRESSED zlib or
 * zstd, and GNU .zdebug) inflated, as a stream through a small buffer.
 * At most @max_bytes are written. @drop: @img is a read-only mapping of a
 * file (page-aligned), whose pages are handed back (MADV_DONTNEED) as they
 * are read. Returns the size written, -ENOTSUP for what it does not
 * convert, -EFBIG over @max_bytes, -EBADMSG on bad input, or another
 * negative errno from writing.
 */
ssize_t sym_dwarf_inflate_copy(const void *img, size_t len, int out_fd, size_t max_bytes,
                               bool drop);

/* Innermost-first frames at @vaddr; returns how many (0 = nothing known). */
int sym_dwarf_lookup(struct sym_dwarf *d, uint64_t vaddr, struct sym_raw_frame *frames, int max);

#endif
