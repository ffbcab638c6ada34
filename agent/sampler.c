/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sampler — loads bpf/profile.bpf.c, attaches it to every online CPU and
 * drains its double-buffered maps. See sampler.h.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <linux/types.h>
#include "bpf/profile.h"
#include "profile.skel.h"

#include "agent/log.h"
#include "agent/sampler.h"

#define MAX_CPUS 1024

struct sampler {
    struct sampler_opts opts;
    struct profile_bpf *skel;
    int perf_fd[MAX_CPUS];
    struct bpf_link *link[MAX_CPUS];
    unsigned ncpus_possible;
    uint32_t active;         /* the set the BPF program writes to */
    struct sample_key *keys; /* batch buffers */
    uint64_t *vals;
    uint32_t *stack_ids; /* clear_stacks' buffer */
    uint64_t kips[STOKE_MAX_STACK_DEPTH];
    uint64_t uips[STOKE_MAX_STACK_DEPTH];
    struct sampler_stats st;
    uint64_t err_base[STOKE_CNT_MAX];
};

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    if (level == LIBBPF_WARN && log_level_enabled(LOG_DEBUG))
        return vfprintf(stderr, fmt, ap);
    return 0;
}

static int has_cap(const struct __user_cap_data_struct d[2], int cap)
{
    return (d[cap / 32].effective >> (cap % 32)) & 1;
}

int sampler_preflight(char *err, size_t errlen)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {0};

    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        snprintf(err, errlen,
                 "this kernel exposes no BTF (/sys/kernel/btf/vmlinux is missing): Stoke needs "
                 "a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.8 or newer; every major "
                 "distribution's kernel since 2021 has it)");
        return -ENOENT;
    }
    if (syscall(SYS_capget, &hdr, data) != 0) {
        snprintf(err, errlen, "capget failed: %s", strerror(errno));
        return -errno;
    }
    if (has_cap(data, CAP_SYS_ADMIN))
        return 0;
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
    if (!has_cap(data, CAP_BPF) || !has_cap(data, CAP_PERFMON)) {
        snprintf(err, errlen,
                 "missing capability %s: run stoke-agent as root, or grant CAP_BPF, CAP_PERFMON, "
                 "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (see systemd/stoke-agent.service)",
                 !has_cap(data, CAP_BPF) ? "CAP_BPF" : "CAP_PERFMON");
        return -EPERM;
    }
    if (!has_cap(data, CAP_SYS_PTRACE))
        log_warn("CAP_SYS_PTRACE is missing: other users' processes cannot be symbolized");
    return 0;
}

static int perf_open_cpu(unsigned cpu, unsigned freq)
{
    struct perf_event_attr attr = {
        .type = PERF_TYPE_SOFTWARE,
        .size = sizeof(attr),
        .config = PERF_COUNT_SW_CPU_CLOCK,
        /* A fixed period, not frequency mode: every sample then stands for
         * exactly 1e9/freq ns of CPU, which is what the pprof values say. */
        .sample_period = 1000000000ull / freq,
    };
    return (int)syscall(SYS_perf_event_open, &attr, -1, (int)cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/* Parses a CPU list such as "0-3,5,7-8" into @online (size MAX_CPUS).
 * Returns 0 or -EINVAL. */
static int parse_cpu_list(const char *buf, bool *online)
{
    const char *p = buf;

    while (*p && *p != '\n') {
        char *end;
        unsigned long a = strtoul(p, &end, 10), b;
        if (end == p)
            return -EINVAL;
        b = a;
        p = end;
        if (*p == '-') {
            b = strtoul(p + 1, &end, 10);
            if (end == p + 1)
                return -EINVAL;
            p = end;
        }
        for (unsigned long c = a; c <= b && c < MAX_CPUS; c++)
            online[c] = true;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Attaches to every online CPU not attached yet. Returns how many CPUs are
 * attached in all. */
static int attach_online_cpus(struct sampler *s, char *err, size_t errlen)
{
    bool online[MAX_CPUS] = {0};
    char buf[4096];
    int n = 0;
    FILE *f = fopen("/sys/devices/system/cpu/online", "re");

    if (!f || !fgets(buf, sizeof(buf), f) || parse_cpu_list(buf, online) != 0) {
        snprintf(err, errlen, "cannot read /sys/devices/system/cpu/online");
        if (f)
            fclose(f);
        return -EIO;
    }
    fclose(f);
    for (int cpu = 0; cpu < MAX_CPUS; cpu++) {
        if (!online[cpu] || s->link[cpu])
            continue;
        int fd = perf_open_cpu((unsigned)cpu, s->opts.frequency);
        if (fd < 0) {
            if (errno == ENODEV) /* went offline meanwhile */
                continue;
            int e = -errno;
            snprintf(err, errlen, "perf_event_open(cpu-clock, cpu %d): %s", cpu, strerror(-e));
            return e;
        }
        struct bpf_link *l = bpf_program__attach_perf_event(s->skel->progs.do_sample, fd);
        if (!l) {
            int e = -errno;
            snprintf(err, errlen, "attaching the BPF program to cpu %d: %s", cpu, strerror(-e));
            close(fd);
            return e;
        }
        s->perf_fd[cpu] = fd;
        s->link[cpu] = l;
    }
    for (int cpu = 0; cpu < MAX_CPUS; cpu++)
        n += s->link[cpu] != NULL;
    return n;
}

struct sampler *sampler_new(const struct sampler_opts *opts, char *err, size_t errlen)
{
    struct sampler *s = calloc(1, sizeof(*s));
    int ret;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->opts = *opts;
    for (int i = 0; i < MAX_CPUS; i++)
        s->perf_fd[i] = -1;
    libbpf_set_print(libbpf_quiet);

    s->skel = profile_bpf__open();
    if (!s->skel) {
        snprintf(err, errlen, "opening the BPF object: %s", strerror(errno));
        goto fail;
    }
    s->skel->rodata->include_idle = opts->include_idle;
    s->skel->rodata->per_thread = opts->per_thread;
    s->skel->rodata->per_cpu = opts->per_cpu;
    s->skel->rodata->target_pid = opts->pid;
    ret = profile_bpf__load(s->skel);
    if (ret) {
        snprintf(err, errlen,
                 "loading the BPF program failed (%s): the kernel needs BPF, BTF and "
                 "perf_event support; run with --log-level debug for the verifier log",
                 strerror(-ret));
        goto fail;
    }
    s->keys = calloc(STOKE_MAX_ENTRIES, sizeof(*s->keys));
    s->vals = calloc(STOKE_MAX_ENTRIES, sizeof(*s->vals));
    s->stack_ids = calloc(STOKE_STACK_ENTRIES, sizeof(*s->stack_ids));
    if (!s->keys || !s->vals || !s->stack_ids) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    ret = attach_online_cpus(s, err, errlen);
    if (ret <= 0) {
        if (ret == 0)
            snprintf(err, errlen, "no online CPU could be sampled");
        goto fail;
    }
    s->st.cpus = (unsigned)ret;
    return s;
fail:
    sampler_free(s);
    return NULL;
}

void sampler_free(struct sampler *s)
{
    if (!s)
        return;
    for (int i = 0; i < MAX_CPUS; i++) {
        if (s->link[i])
            bpf_link__destroy(s->link[i]);
        if (s->perf_fd[i] >= 0)
            close(s->perf_fd[i]);
    }
    profile_bpf__destroy(s->skel);
    free(s->keys);
    free(s->vals);
    free(s->stack_ids);
    free(s);
}

/* Reads a stack by id into @ips; returns the depth, 0 when the id is an
 * error or the stack is gone. */
static uint32_t read_stack(struct sampler *s, int map_fd, int32_t id, uint64_t *ips, bool *trunc)
{
    uint32_t n = 0;

    *trunc = false;
    if (id < 0)
        return 0;
    memset(ips, 0, STOKE_MAX_STACK_DEPTH * sizeof(*ips));
    if (bpf_map_lookup_elem(map_fd, &id, ips) != 0) {
        s->st.lost_stacks++;
        return 0;
    }
    while (n < STOKE_MAX_STACK_DEPTH && ips[n])
        n++;
    *trunc = n == STOKE_MAX_STACK_DEPTH;
    return n;
}

/* Reads every row of the counts map, deleting as it goes. Batch lookup and
 * delete where the kernel has it (5.6+), one key at a time otherwise. */
static int read_counts(struct sampler *s, int fd, uint32_t *nrows)
{
    uint32_t count = STOKE_MAX_ENTRIES;
    struct sample_key batch_out;
    int ret;

    DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, bo);
    ret = bpf_map_lookup_and_delete_batch(fd, NULL, &batch_out, s->keys, s->vals, &count, &bo);
    if (ret == 0 || errno == ENOENT) {
        *nrows = count;
        return 0;
    }
    if (errno != EINVAL && errno != ENOTSUP && errno != EOPNOTSUPP)
        return -errno;
    /* Fallback: walk and delete. */
    uint32_t n = 0;
    struct sample_key key, next;
    void *prev = NULL;
    while (n < STOKE_MAX_ENTRIES && bpf_map_get_next_key(fd, prev, &next) == 0) {
        if (bpf_map_lookup_elem(fd, &next, &s->vals[n]) == 0)
            s->keys[n++] = next;
        key = next;
        prev = &key;
    }
    for (uint32_t i = 0; i < n; i++)
        bpf_map_delete_elem(fd, &s->keys[i]);
    *nrows = n;
    return 0;
}

/*
 * Empties a stack map: every id first, then the deletes. Deleting while
 * iterating would make each get_next_key restart its scan of the buckets
 * from the first one (the key it continues from is gone): quadratic, 7% of
 * the agent's CPU at 499 Hz. Ids no row referenced (a sample dropped on a
 * full counts map) are cleared too.
 */
static void clear_stacks(struct sampler *s, int fd)
{
    uint32_t key, next, n = 0;
    void *prev = NULL;

    while (n < STOKE_STACK_ENTRIES && bpf_map_get_next_key(fd, prev, &next) == 0) {
        s->stack_ids[n++] = next;
        key = next;
        prev = &key;
    }
    for (uint32_t i = 0; i < n; i++)
        bpf_map_delete_elem(fd, &s->stack_ids[i]);
}

static void read_error_counters(struct sampler *s)
{
    int fd = bpf_map__fd(s->skel->maps.errors);
    int ncpu = libbpf_num_possible_cpus();
    uint64_t *percpu;

    if (ncpu <= 0)
        return;
    percpu = calloc((size_t)ncpu, sizeof(*percpu));
    if (!percpu)
        return;
    uint64_t tot[STOKE_CNT_MAX] = {0};
    for (uint32_t i = 0; i < STOKE_CNT_MAX; i++) {
        if (bpf_map_lookup_elem(fd, &i, percpu) != 0)
            continue;
        for (int c = 0; c < ncpu; c++)
            tot[i] += percpu[c];
    }
    free(percpu);
    s->st.samples = tot[STOKE_CNT_SAMPLES];
    s->st.idle = tot[STOKE_CNT_IDLE];
    s->st.stack_collisions = tot[STOKE_CNT_KSTACK_COLL] + tot[STOKE_CNT_USTACK_COLL];
    s->st.stack_errors = tot[STOKE_CNT_KSTACK_ERR] + tot[STOKE_CNT_USTACK_ERR];
    s->st.map_full = tot[STOKE_CNT_MAP_FULL];

    struct bpf_prog_info info = {0};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(s->skel->progs.do_sample), &info, &len) == 0) {
        s->st.bpf_run_ns = info.run_time_ns;
        s->st.bpf_run_cnt = info.run_cnt;
    }
}

int sampler_drain(struct sampler *s, sampler_cb cb, void *ctx)
{
    uint32_t old = s->active, nrows = 0;
    int counts_fd, stacks_fd, ret;
    char err[256];

    s->active = !old;
    s->skel->bss->active_set = s->active;
    /* Programs run in interrupt context and finish within microseconds; a
     * short grace period guarantees none still holds the old set. */
    struct timespec grace = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};
    nanosleep(&grace, NULL);

    counts_fd = bpf_map__fd(old ? s->skel->maps.counts_1 : s->skel->maps.counts_0);
    stacks_fd = bpf_map__fd(old ? s->skel->maps.stacks_1 : s->skel->maps.stacks_0);
    ret = read_counts(s, counts_fd, &nrows);
    if (ret < 0) {
        log_error("draining the counts map: %s", strerror(-ret));
        return ret;
    }
    for (uint32_t i = 0; i < nrows; i++) {
        const struct sample_key *k = &s->keys[i];
        struct sample_row row = {
            .pid = k->pid,
            .tid = k->tid,
            .cpu = k->cpu,
            .count = s->vals[i],
        };
        row.nk = read_stack(s, stacks_fd, k->kstack, s->kips, &row.kstack_truncated);
        row.nu = read_stack(s, stacks_fd, k->ustack, s->uips, &row.ustack_truncated);
        row.kstack = row.nk ? s->kips : NULL;
        row.ustack = row.nu ? s->uips : NULL;
        s->st.truncated += row.kstack_truncated + row.ustack_truncated;
        s->st.drained += row.count;
        cb(&row, ctx);
    }
    s->st.rows += nrows;
    clear_stacks(s, stacks_fd);
    read_error_counters(s);

    ret = attach_online_cpus(s, err, sizeof(err));
    if (ret < 0)
        log_warn("CPU re-scan: %s", err);
    else
        s->st.cpus = (unsigned)ret;
    return (int)nrows;
}

void sampler_get_stats(const struct sampler *s, struct sampler_stats *out)
{
    *out = s->st;
}

int sampler_comm(const struct sampler *s, uint32_t pid, char out[17])
{
    struct proc_comm c;

    if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.comms), &pid, &c) != 0 || !c.comm[0])
        return -ENOENT;
    memcpy(out, c.comm, sizeof(c.comm));
    out[16] = '\0';
    return 0;
}

int sampler_fill_for_bench(struct sampler *s, uint32_t nrows)
{
    /* The next drain flips away from the active set and reads it. */
    int counts_fd = bpf_map__fd(s->active ? s->skel->maps.counts_1 : s->skel->maps.counts_0);
    int stacks_fd = bpf_map__fd(s->active ? s->skel->maps.stacks_1 : s->skel->maps.stacks_0);
    int32_t ids[1024];
    uint32_t nids = 0, key, next, added = 0;
    void *prev = NULL;

    while (nids < sizeof(ids) / sizeof(ids[0]) &&
           bpf_map_get_next_key(stacks_fd, prev, &next) == 0) {
        ids[nids++] = (int32_t)next;
        key = next;
        prev = &key;
    }
    for (uint32_t i = 0; i < nrows; i++) {
        struct sample_key k = {
            .pid = SAMPLER_FILL_PID0 + i,
            .kstack = nids ? ids[i % nids] : -EFAULT,
            .ustack = nids ? ids[(i + 1) % nids] : -EFAULT,
        };
        uint64_t one = 1;
        if (bpf_map_update_elem(counts_fd, &k, &one, BPF_NOEXIST) != 0) {
            if (errno == E2BIG || errno == ENOMEM || errno == ENOSPC)
                break;
            return -errno;
        }
        added++;
    }
    return (int)added;
}
