// SPDX-License-Identifier: GPL-2.0
/*
 * profile.bpf.c — Stoke's CPU sampler.
 *
 * Attached to a software cpu-clock perf event on every online CPU. Each
 * sample walks the kernel and user stacks (frame pointers, up to 127
 * frames each) with bpf_get_stackid and adds one to the count of
 * {pid, kernel stack id, user stack id} in the active map set.
 *
 * Two map sets, flipped by the agent each window: the program reads
 * `active_set` once per sample and only touches that set, so after a flip
 * and a grace period the other set is quiescent and can be drained.
 *
 * Nothing is dropped silently: collisions (-EEXIST from bpf_get_stackid
 * without BPF_F_REUSE_STACKID), other stack errors and a full counts map
 * are counted in the per-CPU `errors` array.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/profile.h"

#define EFAULT 14
#define EEXIST 17

const volatile bool include_idle = false;
const volatile bool per_thread = false;
const volatile bool per_cpu = false;
const volatile __u32 target_pid = 0; /* 0 = every process */

volatile __u32 active_set = 0;

struct counts_map {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, STOKE_MAX_ENTRIES);
    __type(key, struct sample_key);
    __type(value, __u64);
};

struct stacks_map {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, STOKE_STACK_ENTRIES);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, STOKE_MAX_STACK_DEPTH * sizeof(__u64));
};

struct counts_map counts_0 SEC(".maps");
struct counts_map counts_1 SEC(".maps");
struct stacks_map stacks_0 SEC(".maps");
struct stacks_map stacks_1 SEC(".maps");

/* pid → the process's name (its main thread's comm), written when a sample
 * opens a new key: a process that exits before the next drain has no /proc
 * entry left, and this is what names it then. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, STOKE_COMM_ENTRIES);
    __type(key, __u32);
    __type(value, struct proc_comm);
} comms SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, STOKE_CNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} errors SEC(".maps");

static __always_inline void count(__u32 which)
{
    __u64 *v = bpf_map_lookup_elem(&errors, &which);

    if (v)
        *v += 1;
}

/* New keys only (not every sample): a process's first sample in a window
 * always opens a key, so every process that was sampled has its name here. */
static __always_inline void remember_comm(__u32 pid)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct task_struct *leader = BPF_CORE_READ(task, group_leader);
    struct proc_comm c = {};

    if (!leader || bpf_core_read(&c.comm, sizeof(c.comm), &leader->comm) != 0)
        return;
    bpf_map_update_elem(&comms, &pid, &c, BPF_ANY);
}

/* -EFAULT means "no stack of that kind" (a user-mode sample has no kernel
 * stack, a kernel thread no user stack): not an error. */
static __always_inline void account_stack_error(long id, __u32 collision, __u32 other)
{
    if (id == -EEXIST)
        count(collision);
    else if (id < 0 && id != -EFAULT)
        count(other);
}

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32, tid = (__u32)id;
    struct sample_key key = {};
    void *counts, *stacks;
    __u64 one = 1, *val;
    __u32 set;

    count(STOKE_CNT_SAMPLES);
    if (tid == 0 && !include_idle) {
        count(STOKE_CNT_IDLE);
        return 0;
    }
    if (target_pid && pid != target_pid) {
        count(STOKE_CNT_FILTERED);
        return 0;
    }

    set = active_set;
    if (set) {
        counts = &counts_1;
        stacks = &stacks_1;
    } else {
        counts = &counts_0;
        stacks = &stacks_0;
    }

    key.pid = pid;
    key.tid = per_thread ? tid : 0;
    key.cpu = per_cpu ? bpf_get_smp_processor_id() : 0;
    key.kstack = bpf_get_stackid(ctx, stacks, 0);
    account_stack_error(key.kstack, STOKE_CNT_KSTACK_COLL, STOKE_CNT_KSTACK_ERR);
    key.ustack = bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK);
    account_stack_error(key.ustack, STOKE_CNT_USTACK_COLL, STOKE_CNT_USTACK_ERR);

    val = bpf_map_lookup_elem(counts, &key);
    if (val) {
        __sync_fetch_and_add(val, 1);
        return 0;
    }
    remember_comm(pid);
    if (bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST) != 0) {
        /* Another CPU may have inserted the key meanwhile. */
        val = bpf_map_lookup_elem(counts, &key);
        if (val)
            __sync_fetch_and_add(val, 1);
        else
            count(STOKE_CNT_MAP_FULL);
    }
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
