/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sampler — the agent's side of bpf/profile.bpf.c.
 *
 * Owns: the BPF skeleton (the table-walking program where the kernel can
 * run it, the frame-pointer one otherwise), one cpu-clock perf event + BPF
 * link per online CPU (re-scanned each window, so CPUs brought online later
 * are sampled too), the ring buffer of the program's requests (a process
 * to load, a mapping it does not know), and the double-buffered drain:
 * flip `active_set`, wait a grace period so no program still writes to the
 * old set, then read and clear the old counts and stack maps.
 *
 * A drain hands every {pid, tid, cpu, kernel stack, user stack} → count row
 * to a callback; stacks are leaf first. Nothing is double-counted: a row is
 * deleted from the map as it is read. Nothing is lost silently: a row whose
 * stack could not be kept says why (klost/ulost), and a user walk that
 * stopped before the outermost frame says why (uend).
 */
#ifndef STOKE_SAMPLER_H
#define STOKE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sampler_unwind {
    SAMPLER_UNWIND_AUTO = 0, /* tables where the kernel runs them, else frame pointers */
    SAMPLER_UNWIND_FP,       /* the kernel's frame-pointer walker only */
};

struct sampler_opts {
    unsigned frequency; /* Hz per CPU, 1..1000 */
    unsigned window_s;  /* drain period, sizes the maps; 0 = 10 */
    bool include_idle;
    bool per_thread; /* keep the thread id in rows */
    bool per_cpu;    /* keep the CPU in rows */
    uint32_t pid;    /* 0 = every process */
    enum sampler_unwind unwind;
    bool defer_attach; /* sampling starts at sampler_attach(), not sampler_new() */
};

struct sample_row {
    uint32_t pid, tid, cpu;
    const uint64_t *kstack; /* leaf first; NULL when nk == 0 */
    const uint64_t *ustack;
    uint32_t nk, nu;
    uint8_t klost, ulost; /* enum stoke_lost: why a stack is missing */
    uint16_t uend;        /* enum stoke_walk_end of the user stack */
    uint64_t count;
};

#define SAMPLER_WALK_ENDS 9 /* STOKE_END_MAX, checked in sampler.c */

/* Cumulative counters since sampler_new. */
struct sampler_stats {
    uint64_t samples; /* seen by the BPF program, idle included */
    uint64_t idle;    /* idle samples skipped */
    uint64_t drained; /* samples handed to callbacks */
    uint64_t rows;    /* distinct keys drained */
    uint64_t stack_collisions;
    uint64_t stack_errors; /* stacks lost to a full stack map or bpf_get_stack errors */
    uint64_t map_full;     /* samples dropped: counts map full */
    uint64_t lost_stacks;  /* stacks gone from the map at drain time */
    uint64_t frames, frames_table, frames_fp; /* user frames walked, and how */
    uint64_t walk_end[SAMPLER_WALK_ENDS];     /* by enum stoke_walk_end */
    uint64_t events, events_lost;             /* requests to the agent */
    uint64_t py_samples, py_frames;           /* CPython: walks through the eval loop, frames */
    uint64_t py_no_thread, py_fault;          /* ... without its frames: no thread state, fault */
    uint64_t jvm_samples, jvm_frames;         /* HotSpot: walks through the code cache, frames */
    uint64_t jvm_no_blob, jvm_fault;          /* ... ended there: no code blob, bad frame */
    uint64_t v8_samples, v8_frames;           /* V8: walks with JavaScript frames, frames */
    uint64_t v8_markers, v8_not_js; /* V8 frames kept native: typed frames, no JSFunction */
    unsigned cpus;                  /* CPUs currently sampled */
    bool tables;                    /* the table walker is loaded */
    uint64_t bpf_run_ns;            /* time spent in the BPF program, when the kernel
                                       keeps it (sysctl kernel.bpf_stats_enabled=1) */
    uint64_t bpf_run_cnt;
};

typedef void (*sampler_cb)(const struct sample_row *row, void *ctx);
/* A request from the BPF program: load process @pid's mappings (again);
 * @unmapped: because a pc fell outside the known ones, not because the
 * process has none loaded. */
typedef void (*sampler_event_cb)(uint32_t pid, bool unmapped, void *ctx);

struct sampler;

/* Loads and attaches the BPF program. On failure returns NULL and writes a
 * message for the user into @err (what failed and what to do about it). */
struct sampler *sampler_new(const struct sampler_opts *opts, char *err, size_t errlen);
void sampler_free(struct sampler *s);

/* With opts.defer_attach: attaches to every online CPU, so sampling starts
 * once the caller has loaded what the first samples need. 0 or -errno
 * with a message in @err. */
int sampler_attach(struct sampler *s, char *err, size_t errlen);

/* Flips the map sets, drains the inactive one through @cb, attaches CPUs
 * that came online. Returns the number of rows drained or a negative errno. */
int sampler_drain(struct sampler *s, sampler_cb cb, void *ctx);

void sampler_get_stats(const struct sampler *s, struct sampler_stats *out);

/* Names of enum stoke_walk_end and enum stoke_lost values ("entry",
 * "not_mapped", ...; "collision", ...), for metrics and frames. */
const char *sampler_walk_end_name(unsigned end);
const char *sampler_lost_name(unsigned lost);

/* The maps agent/unwinder.h keeps current. */
struct sampler_unwind_maps {
    int tables, procs, files, py_procs;
    int jvm_procs, v8_procs;
};

/* The unwind maps: 0, or -ENOTSUP when the frame-pointer program is loaded. */
int sampler_unwind_maps(const struct sampler *s, struct sampler_unwind_maps *out);

/* Waits up to @timeout_ms for requests from the BPF program and hands each
 * to @cb. Returns the number handled or a negative errno. */
int sampler_poll(struct sampler *s, int timeout_ms, sampler_event_cb cb, void *ctx);

/* The name the BPF program remembered for @pid (its main thread's comm when
 * it was last sampled): what names a process that exited before the drain.
 * Returns 0 with @out NUL-terminated, or -ENOENT. */
int sampler_comm(const struct sampler *s, uint32_t pid, char out[17]);

/*
 * Benchmark and test hook; the agent never calls it. Adds up to @nrows
 * synthetic rows to the counts map of the set the next sampler_drain reads,
 * so a drain of a known size can be timed (bench/micro.c) or checked. Every
 * row has its own key (pid SAMPLER_FILL_PID0 + i, count 1); its kernel and
 * user stacks are taken round robin from the stacks the BPF program has
 * already stored in that set, or none when there are none. Returns the
 * number of rows added (fewer when the map fills up) or a negative errno.
 */
#define SAMPLER_FILL_PID0 0x40000000u
int sampler_fill_for_bench(struct sampler *s, uint32_t nrows);

/* Checks what the agent needs before loading anything: BTF, and either root
 * or CAP_BPF + CAP_PERFMON. Returns 0, or -EPERM / -ENOENT with a message. */
int sampler_preflight(char *err, size_t errlen);

#endif
