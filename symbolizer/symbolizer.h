/* SPDX-License-Identifier: Apache-2.0 */
/*
 * symbolizer — turns sampled addresses into frames.
 *
 * Owns: per-process views of /proc/PID/maps, one cache entry per distinct
 * binary on the host (keyed by build-id, or by dev/inode/size/mtime when the
 * binary has none) holding a sorted symbol table and a DWARF handle, JIT perf
 * maps (/tmp/perf-PID.map), and kallsyms (+ modules) for kernel addresses.
 *
 * A binary used by a hundred processes is read once. Caches are bounded by
 * symbolizer_opts.max_bytes; entries are evicted least-recently-used, and a
 * binary's heavy parts (DWARF, inline cache) may be dropped and reloaded.
 * Per-process views last while the process is sampled, plus 3 windows.
 *
 * What cannot be resolved keeps its mapping path, build-id and file offset in
 * the result (nframes == 0) so it can be symbolized later, and is counted.
 *
 * Not thread-safe: one symbolizer per thread.
 */
#ifndef STOKE_SYMBOLIZER_H
#define STOKE_SYMBOLIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/frame.h"        /* struct sym_result, the answer */
#include "symbolizer/build_id.h" /* sym_read_build_id */

struct sym_dbgd;

struct symbolizer;

struct symbolizer_opts {
    size_t max_bytes;       /* memory cap for all caches; 0 = 64 MiB */
    const char *debug_dirs; /* colon-separated roots for separate debug files;
                               NULL = "/usr/lib/debug" */
    const char *proc_root;  /* NULL = "/proc" (tests point this elsewhere) */
    const char *kallsyms;   /* NULL = "/proc/kallsyms" */
    bool no_dwarf;          /* symbol tables only: no file:line, no inlines */
    /* Compressed debug sections (Debian's -dbg files) are inflated once into
     * unlinked files in this directory and mapped from there: page cache,
     * not heap. It must be on disk: a tmpfs or ramfs directory is refused
     * (the copy would be RAM all the same) and sections are inflated in
     * the heap, counted in max_bytes. NULL = the heap. */
    const char *scratch_dir;
    size_t scratch_max_bytes; /* disk cap of those copies; 0 = 1 GiB */
    /* Debug files the debug roots lack are asked of debuginfod servers
     * through this (symbolizer/debuginfod.h; NULL = never). A binary whose
     * file is being fetched is named from its own symbols meanwhile; once
     * the file arrives it is reloaded at the next window's start, so later
     * windows get its names, lines and inlined frames. Not owned. */
    struct sym_dbgd *dbgd;
};

struct sym_stats {
    uint64_t lookups;         /* addresses asked for */
    uint64_t kernel_lookups;  /* of which kernel addresses (kallsyms: never cached) */
    uint64_t cache_hits;      /* answered from the per-address cache */
    uint64_t resolved;        /* lookups with nframes > 0 */
    uint64_t unresolved;      /* lookups with nframes == 0 */
    uint64_t binaries_loaded; /* binaries opened and parsed (cold) */
    uint64_t binaries_evicted;
    uint64_t maps_reads;          /* /proc/PID/maps reads */
    uint64_t proc_gone;           /* lookups for processes that had exited */
    uint64_t bad_binaries;        /* ELF/DWARF files rejected as malformed */
    uint64_t bytes_used;          /* current cache footprint, estimated */
    uint64_t dwarf_opens;         /* DWARF handles opened (again after being closed) */
    uint64_t dwarf_reopens;       /* of which opens of a file closed earlier */
    uint64_t dwarf_open_ns;       /* CPU time spent opening DWARF (thread CPU clock) */
    uint64_t scratch_bytes;       /* disk held by inflated debug sections, now */
    uint64_t dwarf_heap_inflated; /* DWARF opens that inflated sections in the heap
                                     (no scratch directory, or it was full) */
    uint64_t py_named;            /* CPython frames named by their code object */
    uint64_t py_unnamed;          /* ... that could not be */
    uint64_t jvm_named;           /* HotSpot frames named by their method */
    uint64_t jvm_stale;           /* ... not: compiled code freed or replaced since the sample */
    uint64_t jvm_unnamed;         /* ... not: memory that does not hold a method, no tables */
    uint64_t v8_named;            /* V8 JavaScript frames named by their SharedFunctionInfo */
    uint64_t v8_unnamed;          /* ... that could not be */
    uint64_t dbgd_reloads;        /* binaries reloaded because debuginfod brought their file */
};

/* Allocates; free with symbolizer_free(). NULL on allocation failure. */
struct symbolizer *symbolizer_new(const struct symbolizer_opts *opts);
void symbolizer_free(struct symbolizer *s);

/*
 * Resolves a user-space address of process @pid. @start_time is the process
 * start time (field 22 of /proc/PID/stat) and guards against PID reuse: a
 * cached view of a different process with the same pid is dropped.
 * @is_return_address says @addr is a return address (every frame but the
 * leaf), so line and inline lookups use @addr - 1 as perf does.
 * Returns 0 with @out filled (possibly nframes == 0), or a negative errno:
 * -ESRCH when the process is gone and nothing was cached, -ENOENT when no
 * mapping covers @addr.
 */
int symbolizer_user(struct symbolizer *s, uint32_t pid, uint64_t start_time, uint64_t addr,
                    bool is_return_address, struct sym_result *out);

/* Resolves a kernel address through kallsyms (modules included). */
int symbolizer_kernel(struct symbolizer *s, uint64_t addr, struct sym_result *out);

/* Ends a drain window and starts the next: each process's maps may be
 * re-read at most once per window when an address falls outside every
 * cached mapping, DWARF handles that are large or idle are closed (the
 * per-address results stay cached), the pages DWARF lookups read are
 * handed back, and processes no lookup came for in 3 windows are dropped
 * (exited or not: they are read again if they come back). Call it after
 * each window's lookups. */
void symbolizer_new_window(struct symbolizer *s);

/* Drops what is cached for @pid (the process exited). */
void symbolizer_forget_pid(struct symbolizer *s, uint32_t pid);

void symbolizer_get_stats(const struct symbolizer *s, struct sym_stats *out);

#endif
