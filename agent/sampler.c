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

#include "common/log.h"
#include "agent/sampler.h"

#define MAX_CPUS    1024
#define STASH_CHUNK 256 /* stacks per batch read */

_Static_assert(SAMPLER_WALK_ENDS == STOKE_END_MAX, "sampler.h's count of walk ends");

/* One window's stacks, read out of stacks_N before its rows: hash → frames
 * in an arena, so each row finds its stacks without a syscall. */
struct stash_ent {
    uint64_t hash; /* 0 = empty slot */
    uint32_t off;  /* into frames */
    uint32_t len;
    uint16_t end;
};

struct stash {
    struct stash_ent *slots;
    size_t cap, used;
    uint64_t *frames;
    size_t nframes, frames_cap;
};

struct sampler {
    struct sampler_opts opts;
    struct profile_bpf *skel;
    int perf_fd[MAX_CPUS];
    struct bpf_link *link[MAX_CPUS];
    struct bpf_link *exec_link, *exit_link;
    struct ring_buffer *events;
    sampler_event_cb event_cb;
    void *event_ctx;
    uint32_t max_rows;       /* counts map size */
    uint32_t max_stacks;     /* stacks map size */
    uint32_t active;         /* the set the BPF program writes to */
    struct sample_key *keys; /* batch buffers */
    uint64_t *vals;
    uint64_t *stack_keys;
    struct stack_trace *stack_vals;
    struct stash stash;
    struct sampler_stats st;
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
        struct bpf_link *l = bpf_program__attach_perf_event(
            s->st.tables ? s->skel->progs.do_sample : s->skel->progs.do_sample_fp, fd);
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

/* Map sizes from the sample rate: a window holds at most freq x window x
 * CPUs samples, each at most one row and two stacks. */
static void size_maps(struct sampler *s, bool prealloc)
{
    unsigned window = s->opts.window_s ? s->opts.window_s : 10;
    int ncpu = libbpf_num_possible_cpus();
    uint64_t n = (uint64_t)s->opts.frequency * window * (uint64_t)(ncpu > 0 ? ncpu : 1);
    uint64_t rows = n + n / 4, stacks = 2 * n + n / 4;
    /* Preallocated maps cost their full size up front: 1 KiB a stack. */
    uint64_t rows_cap = 1u << 18, stacks_cap = prealloc ? 1u << 14 : 1u << 18;

    rows = rows < 4096 ? 4096 : rows > rows_cap ? rows_cap : rows;
    stacks = stacks < 4096 ? 4096 : stacks > stacks_cap ? stacks_cap : stacks;
    s->max_rows = (uint32_t)rows;
    s->max_stacks = (uint32_t)stacks;
}

/* Opens and loads one variant of the program. @tables: the table walker
 * (needs bpf_loop, map-in-map with per-map sizes, tp_btf); @prealloc:
 * preallocated hash maps (kernels before 6.1 refuse others in perf_event
 * programs). */
static int load(struct sampler *s, bool tables, bool prealloc)
{
    struct profile_bpf *k = profile_bpf__open();
    struct bpf_map *hash_maps[] = {NULL, NULL, NULL};
    int ret;

    if (!k)
        return -errno;
    k->rodata->include_idle = s->opts.include_idle;
    k->rodata->per_thread = s->opts.per_thread;
    k->rodata->per_cpu = s->opts.per_cpu;
    k->rodata->target_pid = s->opts.pid;
    size_maps(s, prealloc);
    bpf_map__set_max_entries(k->maps.counts_0, s->max_rows);
    bpf_map__set_max_entries(k->maps.counts_1, s->max_rows);
    bpf_map__set_max_entries(k->maps.stacks_0, s->max_stacks);
    bpf_map__set_max_entries(k->maps.stacks_1, s->max_stacks);
    hash_maps[0] = k->maps.stacks_0;
    hash_maps[1] = k->maps.stacks_1;
    hash_maps[2] = k->maps.unwind_procs;
    if (prealloc) {
        for (size_t i = 0; i < 3; i++)
            bpf_map__set_map_flags(hash_maps[i], 0);
        bpf_map__set_map_flags(k->maps.py_procs, 0);
        bpf_map__set_max_entries(k->maps.py_procs, 256);
        bpf_map__set_map_flags(k->maps.jvm_procs, 0);
        bpf_map__set_max_entries(k->maps.jvm_procs, 256);
        bpf_map__set_map_flags(k->maps.v8_procs, 0);
        bpf_map__set_max_entries(k->maps.v8_procs, 256);
        bpf_map__set_map_flags(k->maps.unwind_files, 0);
        bpf_map__set_max_entries(k->maps.unwind_files, 1024);
        bpf_map__set_max_entries(k->maps.unwind_procs, 1024);
    }
    bpf_program__set_autoload(k->progs.do_sample, tables);
    bpf_program__set_autoload(k->progs.on_exec, tables);
    bpf_program__set_autoload(k->progs.on_exit, tables);
    bpf_program__set_autoload(k->progs.do_sample_fp, !tables);
    if (!tables) {
        bpf_map__set_autocreate(k->maps.unwind_tables, false);
        bpf_map__set_autocreate(k->maps.unwind_procs, false);
        bpf_map__set_autocreate(k->maps.unwind_files, false);
        bpf_map__set_autocreate(k->maps.py_procs, false);
        bpf_map__set_autocreate(k->maps.jvm_procs, false);
        bpf_map__set_autocreate(k->maps.v8_procs, false);
        bpf_map__set_autocreate(k->maps.events, false);
        bpf_map__set_autocreate(k->maps.event_sent, false);
    }
    /* --log-level debug: the verifier's cost of the sampling program */
    static char vlog[1 << 16];
    struct bpf_program *main_prog = tables ? k->progs.do_sample : k->progs.do_sample_fp;
    if (log_level_enabled(LOG_DEBUG)) {
        vlog[0] = '\0';
        bpf_program__set_log_buf(main_prog, vlog, sizeof(vlog));
        bpf_program__set_log_level(main_prog, 4); /* BPF_LOG_STATS */
    }
    ret = profile_bpf__load(k);
    if (ret) {
        size_t n = strlen(vlog);
        if (n) /* the verifier's last words: why it refused */
            log_debug("verifier: %s refused: %s", bpf_program__name(main_prog),
                      vlog + (n > 600 ? n - 600 : 0));
        profile_bpf__destroy(k);
        return ret;
    }
    if (vlog[0]) {
        const char *line = strstr(vlog, "processed ");
        log_debug("verifier: %s: %.*s", bpf_program__name(main_prog),
                  line ? (int)strcspn(line, "\n") : 0, line ? line : "");
    }
    s->skel = k;
    s->st.tables = tables;
    return 0;
}

static int on_event(void *ctx, void *data, size_t len)
{
    struct sampler *s = ctx;
    const struct stoke_event *e = data;

    if (len >= sizeof(*e) && s->event_cb)
        s->event_cb(e->pid, e->kind == STOKE_EV_UNMAPPED, s->event_ctx);
    return 0;
}

struct sampler *sampler_new(const struct sampler_opts *opts, char *err, size_t errlen)
{
    struct sampler *s = calloc(1, sizeof(*s));
    int ret = -ENOTSUP;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->opts = *opts;
    for (int i = 0; i < MAX_CPUS; i++)
        s->perf_fd[i] = -1;
    libbpf_set_print(libbpf_quiet);

    /* The table walker where the kernel runs it (6.1+ with maps allocated
     * on demand, 5.17+ preallocated), else the frame-pointer program. */
    if (opts->unwind != SAMPLER_UNWIND_FP) {
        ret = load(s, true, false);
        if (ret)
            ret = load(s, true, true);
        if (ret)
            log_warn("the unwind-table walker does not load on this kernel (%s; it needs 5.17+): "
                     "user stacks by frame pointers only",
                     strerror(-ret));
    }
    if (ret) {
        ret = load(s, false, false);
        if (ret)
            ret = load(s, false, true);
    }
    if (ret) {
        snprintf(err, errlen,
                 "loading the BPF program failed (%s): the kernel needs BPF, BTF and "
                 "perf_event support; run with --log-level debug for the verifier log",
                 strerror(-ret));
        goto fail;
    }
    if (s->st.tables) {
        s->exec_link = bpf_program__attach(s->skel->progs.on_exec);
        s->exit_link = bpf_program__attach(s->skel->progs.on_exit);
        s->events = ring_buffer__new(bpf_map__fd(s->skel->maps.events), on_event, s, NULL);
        if (!s->exec_link || !s->exit_link || !s->events) {
            snprintf(err, errlen, "attaching the exec/exit tracepoints: %s", strerror(errno));
            goto fail;
        }
    }
    s->keys = calloc(s->max_rows, sizeof(*s->keys));
    s->vals = calloc(s->max_rows, sizeof(*s->vals));
    s->stack_keys = calloc(STASH_CHUNK, sizeof(*s->stack_keys));
    s->stack_vals = calloc(STASH_CHUNK, sizeof(*s->stack_vals));
    if (!s->keys || !s->vals || !s->stack_keys || !s->stack_vals) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!opts->defer_attach && sampler_attach(s, err, errlen) != 0)
        goto fail;
    return s;
fail:
    sampler_free(s);
    return NULL;
}

int sampler_attach(struct sampler *s, char *err, size_t errlen)
{
    int ret = attach_online_cpus(s, err, errlen);

    if (ret <= 0) {
        if (ret == 0)
            snprintf(err, errlen, "no online CPU could be sampled");
        return ret < 0 ? ret : -ENODEV;
    }
    s->st.cpus = (unsigned)ret;
    return 0;
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
    bpf_link__destroy(s->exec_link);
    bpf_link__destroy(s->exit_link);
    ring_buffer__free(s->events);
    profile_bpf__destroy(s->skel);
    free(s->keys);
    free(s->vals);
    free(s->stack_keys);
    free(s->stack_vals);
    free(s->stash.slots);
    free(s->stash.frames);
    free(s);
}

/* ---- the stash of one window's stacks ----------------------------------- */

static size_t stash_slot(const struct stash *st, uint64_t hash)
{
    size_t i = (size_t)(hash * 0x9e3779b97f4a7c15ull) & (st->cap - 1);
    while (st->slots[i].hash && st->slots[i].hash != hash)
        i = (i + 1) & (st->cap - 1);
    return i;
}

static int stash_put(struct stash *st, uint64_t hash, const struct stack_trace *t)
{
    uint32_t len = t->len > STOKE_MAX_STACK_DEPTH ? STOKE_MAX_STACK_DEPTH : t->len;

    if ((st->used + 1) * 2 > st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 1024;
        struct stash_ent *ns = calloc(ncap, sizeof(*ns)), *old = st->slots;
        size_t ocap = st->cap;
        if (!ns)
            return -ENOMEM;
        st->slots = ns;
        st->cap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].hash)
                st->slots[stash_slot(st, old[i].hash)] = old[i];
        free(old);
    }
    if (st->nframes + len > st->frames_cap) {
        size_t ncap = st->frames_cap ? st->frames_cap * 2 : 8192;
        while (ncap < st->nframes + len)
            ncap *= 2;
        uint64_t *nf = realloc(st->frames, ncap * sizeof(*nf));
        if (!nf)
            return -ENOMEM;
        st->frames = nf;
        st->frames_cap = ncap;
    }
    size_t i = stash_slot(st, hash);
    if (st->slots[i].hash)
        return 0;
    memcpy(st->frames + st->nframes, t->ip, len * sizeof(uint64_t));
    st->slots[i] =
        (struct stash_ent){.hash = hash, .off = (uint32_t)st->nframes, .len = len, .end = t->end};
    st->nframes += len;
    st->used++;
    return 0;
}

static const struct stash_ent *stash_get(const struct stash *st, uint64_t hash)
{
    if (!st->cap || !hash)
        return NULL;
    const struct stash_ent *e = &st->slots[stash_slot(st, hash)];
    return e->hash ? e : NULL;
}

/* Empties the window's stash, and gives back memory a busy window grew. */
static void stash_reset(struct stash *st)
{
    if (st->cap > 1u << 16) {
        free(st->slots);
        st->slots = NULL;
        st->cap = 0;
    } else if (st->slots) {
        memset(st->slots, 0, st->cap * sizeof(*st->slots));
    }
    if (st->frames_cap > 1u << 18) {
        free(st->frames);
        st->frames = NULL;
        st->frames_cap = 0;
    }
    st->used = 0;
    st->nframes = 0;
}

/* Moves every stack of the quiescent set into the stash, emptying the map:
 * batches where the kernel has them (5.6+), one key at a time otherwise. */
static int read_stacks(struct sampler *s, int fd)
{
    uint64_t batch = 0;
    void *in = NULL;
    int ret = 0;

    DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, bo);
    for (;;) {
        uint32_t n = STASH_CHUNK;
        int r =
            bpf_map_lookup_and_delete_batch(fd, in, &batch, s->stack_keys, s->stack_vals, &n, &bo);
        int e = r ? errno : 0;
        for (uint32_t i = 0; i < n && ret == 0; i++)
            ret = stash_put(&s->stash, s->stack_keys[i], &s->stack_vals[i]);
        if (ret)
            return ret;
        if (r == 0) {
            in = &batch;
            continue;
        }
        if (e == ENOENT)
            return 0;
        if (e != EINVAL && e != ENOTSUP && e != EOPNOTSUPP)
            return -e;
        break;
    }
    /* Fallback: every key first, then read and delete each. */
    uint64_t key, next;
    void *prev = NULL;
    size_t nk = 0, cap = 0;
    uint64_t *ids = NULL;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        if (nk == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            uint64_t *ni = realloc(ids, ncap * sizeof(*ni));
            if (!ni)
                break;
            ids = ni;
            cap = ncap;
        }
        ids[nk++] = next;
        key = next;
        prev = &key;
    }
    for (size_t i = 0; i < nk && ret == 0; i++) {
        if (bpf_map_lookup_elem(fd, &ids[i], &s->stack_vals[0]) == 0)
            ret = stash_put(&s->stash, ids[i], &s->stack_vals[0]);
        bpf_map_delete_elem(fd, &ids[i]);
    }
    free(ids);
    return ret;
}

/* Reads every row of the counts map, deleting as it goes. Batch lookup and
 * delete where the kernel has it (5.6+), one key at a time otherwise. */
static int read_counts(struct sampler *s, int fd, uint32_t *nrows)
{
    uint32_t count = s->max_rows;
    uint64_t batch_out;
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
    while (n < s->max_rows && bpf_map_get_next_key(fd, prev, &next) == 0) {
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
    /* the _ERR counters count every loss, collisions included */
    s->st.stack_errors =
        tot[STOKE_CNT_KSTACK_ERR] + tot[STOKE_CNT_USTACK_ERR] - s->st.stack_collisions;
    s->st.map_full = tot[STOKE_CNT_MAP_FULL];
    s->st.frames = tot[STOKE_CNT_FRAMES];
    s->st.frames_table = tot[STOKE_CNT_FRAMES_TABLE];
    s->st.frames_fp = tot[STOKE_CNT_FRAMES_FP];
    s->st.events = tot[STOKE_CNT_EVENTS];
    s->st.events_lost = tot[STOKE_CNT_EVENTS_LOST];
    s->st.py_samples = tot[STOKE_CNT_PY_SAMPLES];
    s->st.py_frames = tot[STOKE_CNT_PY_FRAMES];
    s->st.py_no_thread = tot[STOKE_CNT_PY_NO_THREAD];
    s->st.py_fault = tot[STOKE_CNT_PY_FAULT];
    s->st.jvm_samples = tot[STOKE_CNT_JVM_SAMPLES];
    s->st.jvm_frames = tot[STOKE_CNT_JVM_FRAMES];
    s->st.jvm_no_blob = tot[STOKE_CNT_JVM_NO_BLOB];
    s->st.jvm_fault = tot[STOKE_CNT_JVM_FAULT];
    s->st.v8_samples = tot[STOKE_CNT_V8_SAMPLES];
    s->st.v8_frames = tot[STOKE_CNT_V8_FRAMES];
    s->st.v8_markers = tot[STOKE_CNT_V8_MARKERS];
    s->st.v8_not_js = tot[STOKE_CNT_V8_NOT_JS];
    for (uint32_t i = 0; i < STOKE_END_MAX; i++)
        s->st.walk_end[i] = tot[STOKE_CNT_WALK_END + i];

    struct bpf_prog_info info = {0};
    __u32 len = sizeof(info);
    struct bpf_program *prog =
        s->st.tables ? s->skel->progs.do_sample : s->skel->progs.do_sample_fp;
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
        s->st.bpf_run_ns = info.run_time_ns;
        s->st.bpf_run_cnt = info.run_cnt;
    }
}

/* A stack of the stash, or nothing (and counted) when it is gone. */
static const uint64_t *row_stack(struct sampler *s, uint64_t hash, uint32_t *n, uint16_t *end,
                                 uint8_t *lost)
{
    const struct stash_ent *e;

    *n = 0;
    if (!hash)
        return NULL;
    e = stash_get(&s->stash, hash);
    if (!e) {
        /* only when the stash could not grow: say so in the profile */
        s->st.lost_stacks++;
        *lost = STOKE_LOST_ERROR;
        return NULL;
    }
    *n = e->len;
    if (end)
        *end = e->end;
    return e->len ? s->stash.frames + e->off : NULL;
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
    stash_reset(&s->stash);
    ret = read_stacks(s, stacks_fd);
    if (ret < 0)
        log_error("draining the stacks map: %s (those samples keep a lost-stack frame)",
                  strerror(-ret));
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
            .klost = k->klost,
            .ulost = k->ulost,
            .uend = STOKE_END_ENTRY,
            .count = s->vals[i],
        };
        row.kstack = row_stack(s, k->kstack, &row.nk, NULL, &row.klost);
        row.ustack = row_stack(s, k->ustack, &row.nu, &row.uend, &row.ulost);
        s->st.drained += row.count;
        cb(&row, ctx);
    }
    s->st.rows += nrows;
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

const char *sampler_walk_end_name(unsigned end)
{
    static const char *const names[STOKE_END_MAX] = {
        [STOKE_END_ENTRY] = "entry",           [STOKE_END_NOT_MAPPED] = "not_mapped",
        [STOKE_END_NO_TABLE] = "no_table",     [STOKE_END_UNSUPPORTED] = "unsupported",
        [STOKE_END_READ_FAULT] = "read_fault", [STOKE_END_DEPTH] = "depth_limit",
        [STOKE_END_NO_PROC] = "not_loaded",    [STOKE_END_BAD_FRAME] = "bad_frame",
        [STOKE_END_FP] = "frame_pointers",
    };
    return end < STOKE_END_MAX ? names[end] : "unknown";
}

const char *sampler_lost_name(unsigned lost)
{
    switch (lost) {
    case STOKE_LOST_COLLISION:
        return "collision";
    case STOKE_LOST_MAP_FULL:
        return "map full";
    case STOKE_LOST_ERROR:
        return "error";
    default:
        return "none";
    }
}

int sampler_unwind_maps(const struct sampler *s, struct sampler_unwind_maps *out)
{
    if (!s->st.tables)
        return -ENOTSUP;
    out->tables = bpf_map__fd(s->skel->maps.unwind_tables);
    out->procs = bpf_map__fd(s->skel->maps.unwind_procs);
    out->files = bpf_map__fd(s->skel->maps.unwind_files);
    out->py_procs = bpf_map__fd(s->skel->maps.py_procs);
    out->jvm_procs = bpf_map__fd(s->skel->maps.jvm_procs);
    out->v8_procs = bpf_map__fd(s->skel->maps.v8_procs);
    return 0;
}

int sampler_poll(struct sampler *s, int timeout_ms, sampler_event_cb cb, void *ctx)
{
    int n;

    if (!s->events) {
        if (timeout_ms > 0) {
            struct timespec ts = {.tv_sec = timeout_ms / 1000,
                                  .tv_nsec = (long)(timeout_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
        return 0;
    }
    s->event_cb = cb;
    s->event_ctx = ctx;
    n = ring_buffer__poll(s->events, timeout_ms);
    s->event_cb = NULL;
    return n < 0 && n != -EINTR ? n : (n < 0 ? 0 : n);
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
    uint64_t ids[1024], key, next;
    uint32_t nids = 0, added = 0;
    void *prev = NULL;

    while (nids < sizeof(ids) / sizeof(ids[0]) &&
           bpf_map_get_next_key(stacks_fd, prev, &next) == 0) {
        ids[nids++] = next;
        key = next;
        prev = &key;
    }
    for (uint32_t i = 0; i < nrows; i++) {
        struct sample_key k = {
            .pid = SAMPLER_FILL_PID0 + i,
            .kstack = nids ? ids[i % nids] : 0,
            .ustack = nids ? ids[(i + 1) % nids] : 0,
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
