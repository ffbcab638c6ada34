/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unwinder — keeps the BPF walker's view of processes and binaries current.
 *
 * Owns: one compiled unwind table (unwind/table.h) per binary on the host,
 * keyed by build-id (or file identity) and found again by device/inode, in
 * its own BPF array inside `unwind_tables`; and, for each process the BPF
 * program asked about (a sampled process with no entry, a return address in
 * no known mapping), its executable mappings in `unwind_procs`, each
 * pointing at its binary's table with the bias from address to table pc;
 * and each table's file identity in `unwind_files`, which lets the walker
 * find tables through the kernel's VMAs for a process not loaded yet.
 *
 * A table lives as long as a loaded process maps its binary; unreferenced
 * tables stay cached, least recently used first out, while the total stays
 * under the byte cap. A binary whose table cannot be built (no CFI, corrupt,
 * over the cap) is walked by frame pointers and counted. The BPF program
 * drops a process's entry on exec and exit; unwinder_sweep() drops what the
 * agent holds for processes that are gone.
 *
 * unwinder_start() serves the BPF program's requests on a thread of its
 * own, so a process is loaded within milliseconds of its first sample even
 * while the window loop symbolizes and writes; the calls below are then
 * safe from any thread.
 */
#ifndef STOKE_UNWINDER_H
#define STOKE_UNWINDER_H

#include <stddef.h>
#include <stdint.h>

struct unwinder_opts {
    int tables_fd;         /* the BPF outer map `unwind_tables` */
    int procs_fd;          /* the BPF map `unwind_procs` */
    int files_fd;          /* the BPF map `unwind_files`; -1 = none */
    int py_procs_fd;       /* the BPF map `py_procs`; -1 = none */
    int jvm_procs_fd;      /* the BPF map `jvm_procs`; -1 = none */
    int v8_procs_fd;       /* the BPF map `v8_procs`; -1 = none */
    size_t max_bytes;      /* cap on table bytes in BPF maps; 0 = 64 MiB */
    const char *proc_root; /* NULL = "/proc" */
};

struct unwinder_stats {
    uint64_t procs_loaded;    /* unwind_procs entries written */
    uint64_t procs_failed;    /* processes whose maps could not be read */
    uint64_t procs_tracked;   /* entries the agent holds now */
    uint64_t mappings_capped; /* mappings beyond STOKE_UW_MAX_MAPPINGS, left out */
    uint64_t tables_built;    /* tables compiled and loaded */
    uint64_t tables_failed;   /* binaries without a usable table (frame pointers) */
    uint64_t tables_sorted;   /* built from rows held and sorted (not in order as parsed) */
    uint64_t tables_evicted;
    uint64_t tables_live;      /* tables in BPF maps now */
    uint64_t table_bytes;      /* their size in BPF maps */
    uint64_t table_rows;       /* their rows */
    uint64_t build_ns;         /* CPU time spent building tables (thread clock) */
    uint64_t over_cap;         /* tables refused: the byte cap was reached */
    uint64_t unsupported_rows; /* rows the walker cannot run, in built tables */
    uint64_t py_procs;         /* processes running a CPython the walker knows */
    uint64_t py_unknown;       /* processes running a CPython of a version it does not */
    uint64_t jvm_procs;        /* processes running a HotSpot JVM the walker reads */
    uint64_t jvm_unsupported;  /* processes whose JVM it cannot read (version, tables) */
    uint64_t v8_procs;         /* processes running a V8 the walker reads */
    uint64_t v8_unknown;       /* processes running a V8 whose layout it cannot read */
};

struct unwinder;
struct sampler;

/* Allocates; free with unwinder_free(). NULL when out of memory. */
struct unwinder *unwinder_new(const struct unwinder_opts *opts);
/* Stops the thread, then frees every table map the unwinder created. */
void unwinder_free(struct unwinder *u);

/* (Re)loads @pid's executable mappings into unwind_procs, building the
 * tables of binaries new to the host. Returns 0, -ESRCH when the process is
 * gone, or a negative errno. */
int unwinder_load_pid(struct unwinder *u, uint32_t pid);

/* Loads every process with a thread running now (state R): at start, so
 * the busy processes' first samples are walked whole too; for at most a
 * second, the rest is loaded on request. Returns how many. */
int unwinder_load_running(struct unwinder *u);

/* Forgets processes that have exited and evicts tables over the cap. The
 * thread calls it every sweep period. */
void unwinder_sweep(struct unwinder *u);

/* Starts the thread that waits for @s's requests (sampler_poll), loads what
 * they ask for, and sweeps every @sweep_ms. 0 or a negative errno. */
int unwinder_start(struct unwinder *u, struct sampler *s, unsigned sweep_ms);

void unwinder_get_stats(struct unwinder *u, struct unwinder_stats *out);

#endif
