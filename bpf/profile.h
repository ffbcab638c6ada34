/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile.h — types shared by bpf/profile.bpf.c and the agent's sampler.
 *
 * The BPF program counts samples in a hash map keyed by struct sample_key.
 * There are two map sets (counts_0/stacks_0, counts_1/stacks_1); the program
 * writes to the set named by the global `active_set`, and the agent flips it
 * each window before draining the other set, so the drain never races the
 * writers.
 */
#ifndef STOKE_BPF_PROFILE_H
#define STOKE_BPF_PROFILE_H

#define STOKE_MAX_STACK_DEPTH 127
#define STOKE_MAX_ENTRIES     16384 /* distinct keys per window, per set */
#define STOKE_STACK_ENTRIES   16384 /* stack ids per set */

struct sample_key {
    __u32 pid;    /* thread group id: the process */
    __u32 tid;    /* thread id, when per-thread labels are on, else 0 */
    __s32 kstack; /* stack id in stacks_N, or negative errno */
    __s32 ustack; /* stack id in stacks_N, or negative errno */
    __u32 cpu;    /* CPU, when per-CPU labels are on, else 0 */
    __u32 pad;
};

#define STOKE_COMM_ENTRIES 8192 /* processes whose name is remembered (LRU) */

/* Value of the `comms` map: the process name, NUL-padded. */
struct proc_comm {
    char comm[16];
};

/* Indexes of the per-CPU error counters (map `errors`). */
enum stoke_counter {
    STOKE_CNT_SAMPLES = 0, /* every sample the program saw */
    STOKE_CNT_IDLE,        /* samples of the idle task, skipped */
    STOKE_CNT_KSTACK_COLL, /* kernel stack id lost to a hash collision */
    STOKE_CNT_USTACK_COLL, /* user stack id lost to a hash collision */
    STOKE_CNT_KSTACK_ERR,  /* other kernel stack errors (map full, ...) */
    STOKE_CNT_USTACK_ERR,  /* other user stack errors */
    STOKE_CNT_MAP_FULL,    /* counts map full: sample dropped */
    STOKE_CNT_FILTERED,    /* not the requested pid */
    STOKE_CNT_MAX,
};

#endif
