/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sampler — the agent's side of bpf/profile.bpf.c.
 *
 * Owns: the BPF skeleton, one cpu-clock perf event + BPF link per online CPU
 * (re-scanned each window, so CPUs brought online later are sampled too), and
 * the double-buffered drain: flip `active_set`, wait a grace period so no
 * program still writes to the old set, then read and clear the old counts
 * and stack maps.
 *
 * A drain hands every {pid, tid, cpu, kernel stack, user stack} → count row
 * to a callback; stacks are leaf first. Nothing is double-counted: a row is
 * deleted from the map as it is read.
 */
#ifndef STOKE_SAMPLER_H
#define STOKE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sampler_opts {
    unsigned frequency; /* Hz per CPU, 1..1000 */
    bool include_idle;
    bool per_thread; /* keep the thread id in rows */
    bool per_cpu;    /* keep the CPU in rows */
    uint32_t pid;    /* 0 = every process */
};

struct sample_row {
    uint32_t pid, tid, cpu;
    const uint64_t *kstack; /* leaf first; NULL when nk == 0 */
    const uint64_t *ustack;
    uint32_t nk, nu;
    bool kstack_truncated, ustack_truncated; /* hit the 127-frame limit */
    uint64_t count;
};

/* Cumulative counters since sampler_new. */
struct sampler_stats {
    uint64_t samples; /* seen by the BPF program, idle included */
    uint64_t idle;    /* idle samples skipped */
    uint64_t drained; /* samples handed to callbacks */
    uint64_t rows;    /* distinct keys drained */
    uint64_t stack_collisions;
    uint64_t stack_errors;
    uint64_t map_full;    /* samples dropped: counts map full */
    uint64_t truncated;   /* stacks cut at 127 frames */
    uint64_t lost_stacks; /* stack id valid but gone from the map */
    unsigned cpus;        /* CPUs currently sampled */
    uint64_t bpf_run_ns;  /* time spent in the BPF program, when the kernel
                             keeps it (sysctl kernel.bpf_stats_enabled=1) */
    uint64_t bpf_run_cnt;
};

typedef void (*sampler_cb)(const struct sample_row *row, void *ctx);

struct sampler;

/* Loads and attaches the BPF program. On failure returns NULL and writes a
 * message for the user into @err (what failed and what to do about it). */
struct sampler *sampler_new(const struct sampler_opts *opts, char *err, size_t errlen);
void sampler_free(struct sampler *s);

/* Flips the map sets, drains the inactive one through @cb, attaches CPUs
 * that came online. Returns the number of rows drained or a negative errno. */
int sampler_drain(struct sampler *s, sampler_cb cb, void *ctx);

void sampler_get_stats(const struct sampler *s, struct sampler_stats *out);

/* The name the BPF program remembered for @pid (its main thread's comm when
 * it was last sampled): what names a process that exited before the drain.
 * Returns 0 with @out NUL-terminated, or -ENOENT. */
int sampler_comm(const struct sampler *s, uint32_t pid, char out[17]);

/*
 * Benchmark and test hook; the agent never calls it. Adds up to @nrows
 * synthetic rows to the counts map of the set the next sampler_drain reads,
 * so a drain of a known size can be timed (bench/micro.c) or checked. Every
 * row has its own key (pid SAMPLER_FILL_PID0 + i, count 1); its kernel and
 * user stack ids are taken round robin from the stacks the BPF program has
 * already stored in that set (a stack map cannot be written from user
 * space), or are -EFAULT ("no stack") when there are none. Returns the
 * number of rows added (fewer when the map fills up) or a negative errno.
 */
#define SAMPLER_FILL_PID0 0x40000000u
int sampler_fill_for_bench(struct sampler *s, uint32_t nrows);

/* Checks what the agent needs before loading anything: BTF, and either root
 * or CAP_BPF + CAP_PERFMON. Returns 0, or -EPERM / -ENOENT with a message. */
int sampler_preflight(char *err, size_t errlen);

#endif
