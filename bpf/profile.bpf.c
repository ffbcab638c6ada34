// SPDX-License-Identifier: GPL-2.0
/*
 * profile.bpf.c — Stoke's CPU sampler.
 *
 * Attached to a software cpu-clock perf event on every online CPU. Each
 * sample takes the kernel stack (bpf_get_stack) and walks the user stack,
 * stores each stack once per window under a 64-bit hash of its frames
 * (checked frame by frame on a hit), and adds one to the count of
 * {pid, kernel stack, user stack} in the active map set.
 *
 * The user walk (do_sample) runs the process's unwind tables: the agent
 * keeps each sampled process's executable mappings in `unwind_procs` and
 * one compiled table per binary in `unwind_tables` (bpf/profile.h has the
 * layout). Each frame: find the mapping of the pc, the table row of the pc,
 * compute the CFA, read the return address and the caller's rbp, repeat —
 * in a bpf_loop, up to STOKE_MAX_STACK_DEPTH frames. A mapping without a
 * table (JIT code, a binary without CFI) is walked by frame pointers. A
 * return address outside every executable mapping ends the walk: no junk
 * frames. A process the agent has not loaded yet gets its leaf frame only,
 * and an event asks the agent to load it; so does a return address in no
 * known mapping (a library dlopen'ed since). Exec and exit drop a process's
 * mappings, so a reused pid or a new image is loaded afresh.
 *
 * do_sample_fp is the same program with the kernel's frame-pointer walker
 * (bpf_get_stack) for user stacks: for kernels without bpf_loop (< 5.17),
 * or when asked (--unwind fp).
 *
 * Two map sets, flipped by the agent each window: the program reads
 * `active_set` once per sample and only touches that set, so after a flip
 * and a grace period the other set is quiescent and can be drained.
 * Nothing is dropped silently: a lost stack is marked in the sample's key,
 * walks are counted by how they ended, and a full counts map is counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/profile.h"

#define EFAULT 14
#define EEXIST 17
#define EBUSY  16

const volatile bool include_idle = false;
const volatile bool per_thread = false;
const volatile bool per_cpu = false;
const volatile __u32 target_pid = 0; /* 0 = every process */

volatile __u32 active_set = 0;

/* Sizes are set by the agent before loading (sampler.c). */
struct counts_map {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct sample_key);
    __type(value, __u64);
};

struct stacks_map {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u64);
    __type(value, struct stack_trace);
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

/* ---- unwind state ------------------------------------------------------ */

struct unwind_table_map {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    /* each table has its own size; the agent fills it through mmap */
    __uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
    __uint(max_entries, 1);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(struct unwind_row));
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, STOKE_UW_MAX_TABLES);
    __type(key, __u32);
    __array(values, struct unwind_table_map);
} unwind_tables SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, struct unwind_proc);
} unwind_procs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __uint(map_flags, BPF_F_NO_PREALLOC); /* ~100 binaries in use, not 16384 */
    __type(key, struct unwind_file_key);
    __type(value, struct unwind_file);
} unwind_files SEC(".maps");

/* pid → where its CPython interpreter is (agent/unwinder.c). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, struct py_proc);
} py_procs SEC(".maps");

/* pid → where its JVM's code cache is and how to unwind it (agent/unwinder.c). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, struct jvm_proc);
} jvm_procs SEC(".maps");

/* pid → where its V8 keeps what the walker reads (agent/unwinder.c). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, struct v8_proc);
} v8_procs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* pid → when an event was last sent for it: at most five a second (the
 * agent backs off from a process whose maps do not change). An LRU map is
 * preallocated: sized for the processes sampled within a few seconds. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u64);
} event_sent SEC(".maps");

/* A stack being built: too large for the BPF stack. */
struct scratch {
    struct stack_trace st;
    __u64 hash;
    __u64 hash_prev; /* before the last frame's: V8 replaces its pc */
    __u64 pc, sp, bp;
    __u32 pid;
    bool is_return;            /* pc is a return address: look up pc - 1 */
    bool fp_step;              /* the last step used frame pointers for want of a row */
    bool unknown;              /* a frame's binary has no table yet: not loaded */
    bool vma_busy;             /* bpf_find_vma refused (one lookup per interrupt) */
    bool vma_valid;            /* vma holds this sample's VMA lookup */
    struct unwind_mapping vma; /* a mapping found through the kernel's VMA */
    /* CPython: the Python frames stand in for the native frames of the
     * evaluation loop that runs them */
    __u64 py_frame;  /* the next Python frame to record */
    __u64 py_tstate; /* thread-state search: the one to look at next */
    __u64 py_interp;
    __u64 py_fsbase;               /* the sampled thread's pthread_self() */
    __u64 py_eval_lo, py_eval_len; /* the process's evaluation loop; 0: no CPython */
    __u8 py_state;                 /* 0: not looked for, 1: found, 2: none */
    /* HotSpot: the process's code cache; 0: no JVM */
    __u64 jvm_lo, jvm_len;
    bool jvm_seen;   /* this walk met the code cache */
    __u64 jvm_frame; /* the frame a step records */
    struct {
        __u64 complete; /* where its prologue ends */
        __u32 fsize;    /* its frame size in bytes */
        __u8 kind;      /* JVM_BLOB_* */
    } jvm_blob;         /* the code blob of the pc */
    struct {
        __u64 pc, sp, bp;
    } jvm_next;                      /* ... and its caller */
    __u8 jvm_hdr[STOKE_JVM_HDR + 8]; /* a code blob's header */
    __u8 jvm_code[32];               /* instructions at the pc */
    struct {
        __u32 i;    /* the next instruction in jvm_code */
        __s32 left; /* what the epilogue has yet to pop */
        bool done;  /* a `ret` was reached */
    } jvm_dec;
    /* V8: JavaScript frames stand in for the native frames of JIT code and
     * builtins that run them */
    bool v8;            /* the process runs V8 (a v8_procs entry) */
    bool v8_seen;       /* a JavaScript frame was recorded in this walk */
    struct v8_proc v8p; /* its entry, copied once per walk */
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} scratch_map SEC(".maps");

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

static __always_inline __u64 mix(__u64 h, __u64 v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* ---- stack storage ------------------------------------------------------ */

static __always_inline bool same_stack(const struct stack_trace *a, const struct stack_trace *b)
{
    if (a->len != b->len || a->end != b->end || a->kind != b->kind)
        return false;
    for (int i = 0; i < STOKE_MAX_STACK_DEPTH; i++) {
        if (i >= a->len)
            break;
        if (a->ip[i] != b->ip[i])
            return false;
    }
    return true;
}

/* Stores s->st under its hash in @stacks; returns the hash, or 0 with
 * @lost saying why the stack could not be kept. */
static __always_inline __u64 store_stack(void *stacks, struct scratch *s, __u8 *lost)
{
    __u64 h = mix(mix(s->hash, s->st.len), ((__u64)s->st.kind << 16) | s->st.end);
    struct stack_trace *old;

    if (h == 0)
        h = 1;
    old = bpf_map_lookup_elem(stacks, &h);
    if (!old) {
        if (bpf_map_update_elem(stacks, &h, &s->st, BPF_NOEXIST) == 0)
            return h;
        /* another CPU stored it meanwhile, or the map is full */
        old = bpf_map_lookup_elem(stacks, &h);
        if (!old) {
            *lost = STOKE_LOST_MAP_FULL;
            return 0;
        }
    }
    if (same_stack(old, &s->st))
        return h;
    *lost = STOKE_LOST_COLLISION;
    return 0;
}

/* ---- events ------------------------------------------------------------- */

static __always_inline void send_event(__u32 pid, __u32 kind)
{
    __u64 now = bpf_ktime_get_ns(), *last = bpf_map_lookup_elem(&event_sent, &pid);
    struct stoke_event *e;

    if (last && now - *last < 200000000ull)
        return;
    bpf_map_update_elem(&event_sent, &pid, &now, BPF_ANY);
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count(STOKE_CNT_EVENTS_LOST);
        return;
    }
    e->pid = pid;
    e->kind = kind;
    bpf_ringbuf_submit(e, 0);
    count(STOKE_CNT_EVENTS);
}

/* ---- the table walker --------------------------------------------------- */

/*
 * The two binary searches run as bpf_loop callbacks: verified once each,
 * where an open-coded loop of loops makes the verifier walk every path of
 * every iteration (it gives up past a million instructions).
 */
struct map_search {
    const struct unwind_proc *proc;
    __u64 pc;
    __u32 lo, hi;
};

static long map_search_step(__u32 i, void *data)
{
    struct map_search *c = data;
    __u32 mid;

    if (c->lo >= c->hi)
        return 1;
    mid = (c->lo + c->hi) / 2;
    if (c->proc->maps[mid & (STOKE_UW_MAX_MAPPINGS - 1)].start <= c->pc)
        c->lo = mid + 1;
    else
        c->hi = mid;
    return 0;
}

static __always_inline const struct unwind_mapping *find_mapping(const struct unwind_proc *proc,
                                                                 __u64 pc)
{
    struct map_search c = {.proc = proc, .pc = pc, .lo = 0, .hi = proc->nmaps};
    const struct unwind_mapping *m;

    if (c.hi > STOKE_UW_MAX_MAPPINGS)
        c.hi = STOKE_UW_MAX_MAPPINGS;
    bpf_loop(9, map_search_step, &c, 0); /* 2^9 > STOKE_UW_MAX_MAPPINGS */
    if (c.lo == 0)
        return NULL;
    m = &proc->maps[(c.lo - 1) & (STOKE_UW_MAX_MAPPINGS - 1)];
    if (pc - m->start >= m->len)
        return NULL;
    return m;
}

struct row_search {
    void *t;
    __u64 rel;
    __u32 lo, hi, r0;
    bool fault;
};

static long row_search_step(__u32 i, void *data)
{
    struct row_search *c = data;
    const struct unwind_row *row;
    __u32 mid, e;

    if (c->lo >= c->hi)
        return 1;
    mid = c->lo + (c->hi - c->lo) / 2;
    e = c->r0 + mid;
    row = bpf_map_lookup_elem(c->t, &e);
    if (!row) {
        c->fault = true;
        return 1;
    }
    if (row->pc <= c->rel)
        c->lo = mid + 1;
    else
        c->hi = mid;
    return 0;
}

/* The row covering table pc @rel in @t, or NULL (see bpf/profile.h). */
static __always_inline const struct unwind_row *find_row(void *t, __u64 rel)
{
    struct row_search c = {.t = t, .rel = rel};
    __u32 zero = 0, e, npages, page;
    const __u32 *w;

    if (rel >> 32)
        return NULL;
    w = bpf_map_lookup_elem(t, &zero);
    if (!w)
        return NULL;
    npages = w[1];
    page = (__u32)(rel >> STOKE_UW_PAGE_SHIFT);
    if (page >= npages)
        return NULL;
    e = 1 + page / 2;
    w = bpf_map_lookup_elem(t, &e);
    if (!w)
        return NULL;
    c.lo = w[page & 1];
    e = 1 + (page + 1) / 2;
    w = bpf_map_lookup_elem(t, &e);
    if (!w)
        return NULL;
    c.hi = w[(page + 1) & 1];
    c.r0 = 1 + (npages + 2) / 2;
    bpf_loop(STOKE_UW_SEARCH_STEPS, row_search_step, &c, 0);
    if (c.fault || c.lo == 0)
        return NULL;
    e = c.r0 + c.lo - 1;
    return bpf_map_lookup_elem(t, &e);
}

/* The kernel's VMA of a pc: for a process the agent has not loaded yet, or
 * a library it mapped since. */
struct vma_ctx {
    __u64 start, end, pgoff, ino, size;
    bool exec, file;
};

static long vma_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
    struct vma_ctx *c = data;
    struct file *f = BPF_CORE_READ(vma, vm_file);

    c->start = BPF_CORE_READ(vma, vm_start);
    c->end = BPF_CORE_READ(vma, vm_end);
    c->pgoff = BPF_CORE_READ(vma, vm_pgoff);
    c->exec = BPF_CORE_READ(vma, vm_flags) & 0x4; /* VM_EXEC */
    c->file = f != NULL;
    if (f) {
        c->ino = BPF_CORE_READ(f, f_inode, i_ino);
        c->size = BPF_CORE_READ(f, f_inode, i_size);
    }
    return 0;
}

/*
 * Fills s->vma for @pc from the kernel's VMA and the table of its file.
 * NULL when @pc is in no executable mapping, or when the kernel would not
 * look (s->vma_busy): in interrupt context bpf_find_vma answers once per
 * sample, so a sample of a process not loaded yet is walked as far as its
 * leaf's mapping reaches.
 */
static __always_inline const struct unwind_mapping *vma_mapping(struct scratch *s, __u64 pc)
{
    struct vma_ctx c = {};
    struct unwind_file_key k;
    const struct unwind_file *f;
    long r;

    if (s->vma_valid && pc - s->vma.start < s->vma.len)
        return &s->vma;
    s->unknown = false;
    r = bpf_find_vma(bpf_get_current_task_btf(), pc, vma_cb, &c, 0);
    if (r == -EBUSY)
        s->vma_busy = true;
    if (r != 0 || !c.exec)
        return NULL;
    s->vma_valid = true;
    s->vma.start = c.start;
    s->vma.len = c.end - c.start > 0xffffffffull ? 0xffffffffu : (__u32)(c.end - c.start);
    s->vma.table = STOKE_UW_NO_TABLE; /* anonymous: JIT code, frame pointers */
    s->vma.bias = 0;
    if (!c.file)
        return &s->vma;
    k.ino = c.ino;
    k.size = c.size;
    f = bpf_map_lookup_elem(&unwind_files, &k);
    if (!f) {
        s->unknown = true; /* the agent loads it on this process's request */
        return &s->vma;
    }
    __u64 off = pc - c.start + (c.pgoff << 12);
    for (int i = 0; i < STOKE_UW_FILE_SEGS; i++) {
        if (i >= f->nsegs)
            break;
        if (off >= f->segs[i].off_lo && off < f->segs[i].off_hi) {
            s->vma.table = f->table;
            /* constant over the VMA: address - (file offset + delta) */
            s->vma.bias = c.start - (c.pgoff << 12) - f->segs[i].delta;
            break;
        }
    }
    return &s->vma;
}

struct walk_ctx {
    struct scratch *s;
    const struct unwind_proc *proc;
    const struct py_proc *py;
};

/* ---- CPython ----------------------------------------------------------- */

static __always_inline long walk_end(struct scratch *s, __u16 reason)
{
    s->st.end = reason;
    return 1;
}

static __always_inline bool read_ptr(__u64 *dst, __u64 base, __u16 off)
{
    return bpf_probe_read_user(dst, sizeof(*dst), (const void *)(base + off)) == 0;
}

/* One thread state of the search for the sampled thread's (matched by
 * pthread_self(): the same in every pid namespace). */
static long py_thread_step(__u32 i, void *data)
{
    struct walk_ctx *c = data;
    struct scratch *s = c->s;
    const struct py_proc *py = c->py;

    if (!py)
        return 1;
    const struct py_offsets *o = &py->off;
    __u64 tid = 0, frame = 0;

    if (!s->py_tstate) { /* this interpreter's threads are done: the next one's */
        if (!s->py_interp || !read_ptr(&s->py_interp, s->py_interp, o->interp_next) ||
            !s->py_interp || !read_ptr(&s->py_tstate, s->py_interp, o->interp_tstate_head) ||
            !s->py_tstate)
            return 1;
    }
    if (!read_ptr(&tid, s->py_tstate, o->tstate_thread_id)) {
        count(STOKE_CNT_PY_FAULT);
        return 1;
    }
    if (tid == s->py_fsbase) {
        if (read_ptr(&frame, s->py_tstate, o->tstate_frame) && frame &&
            (o->cframe_current == STOKE_PY_NONE || read_ptr(&frame, frame, o->cframe_current))) {
            s->py_frame = frame;
            s->py_state = frame ? 1 : 2;
        }
        return 1;
    }
    if (!read_ptr(&s->py_tstate, s->py_tstate, o->tstate_next))
        s->py_tstate = 0;
    return 0;
}

/* Finds the sampled thread's current Python frame, once per sample. */
static __always_inline void py_find_frame(struct walk_ctx *c, const struct py_proc *py)
{
    struct scratch *s = c->s;
    const struct py_offsets *o = &py->off;
    struct task_struct *task = bpf_get_current_task_btf();

    s->py_state = 2;
    s->py_frame = 0;
    s->py_fsbase = BPF_CORE_READ(task, thread.fsbase);
    if (!read_ptr(&s->py_interp, py->runtime, o->runtime_interp_head) || !s->py_interp ||
        !read_ptr(&s->py_tstate, s->py_interp, o->interp_tstate_head)) {
        count(STOKE_CNT_PY_FAULT);
        return;
    }
    bpf_loop(STOKE_PY_MAX_THREADS, py_thread_step, c, 0);
    count(s->py_state == 1 ? STOKE_CNT_PY_SAMPLES : STOKE_CNT_PY_NO_THREAD);
}

/* Records the next Python frame of the current eval frame; 1 when that
 * eval frame's Python frames are done. A bpf_loop callback: the verifier
 * sees it once, not once per native step. */
static long py_frame_step(__u32 i, void *data)
{
    struct walk_ctx *c = data;
    struct scratch *s = c->s;
    const struct py_proc *py = c->py;
    __u64 frame = s->py_frame, code = 0, prev = 0, instr = 0;
    __u32 len = s->st.len, lasti = 0;
    __u8 flag = 0;

    if (!py || !frame)
        return 1;
    const struct py_offsets *o = &py->off;
    if (len >= STOKE_MAX_STACK_DEPTH) {
        s->st.end = STOKE_END_DEPTH;
        return 1;
    }
    if (!read_ptr(&code, frame, o->frame_code) || !read_ptr(&prev, frame, o->frame_back)) {
        count(STOKE_CNT_PY_FAULT);
        s->py_frame = 0;
        return 1;
    }
    if (o->frame_owner != STOKE_PY_NONE &&
        bpf_probe_read_user(&flag, 1, (const void *)(frame + o->frame_owner)) != 0)
        flag = 0;
    s->py_frame = prev;
    if (o->minor >= 12 && flag == STOKE_PY_OWNED_BY_CSTACK)
        return 1; /* the shim at the entry from C: this eval frame's end */
    if (o->minor >= 11) {
        if (read_ptr(&instr, frame, o->frame_instr) && instr >= code + o->code_adaptive)
            lasti = (__u32)((instr - code - o->code_adaptive) / 2);
    } else {
        __s32 l = 0;
        if (bpf_probe_read_user(&l, sizeof(l), (const void *)(frame + o->frame_instr)) == 0 &&
            l > 0)
            lasti = (__u32)l;
    }
    __u64 ip = STOKE_PY_FRAME(code, lasti);
    s->st.ip[len] = ip;
    s->st.len = len + 1;
    s->hash = mix(s->hash, ip);
    count(STOKE_CNT_PY_FRAMES);
    /* <= 3.10: one frame per eval frame; 3.11: up to the frame entered
     * from C; 3.12+: up to the shim (the next step) */
    return o->minor <= 10 || (o->minor == 11 && flag) || !prev;
}

/*
 * The Python frames of one eval frame, from the sampled thread's current
 * Python frame on. A global function: the verifier checks it once, on its
 * own, instead of once for every path of the native step that calls it.
 */
__noinline int py_walk(struct scratch *s)
{
    struct walk_ctx c = {.s = s, .py = NULL};

    if (!s)
        return 0;
    c.py = bpf_map_lookup_elem(&py_procs, &s->pid);
    if (!c.py)
        return 0;
    if (s->py_state == 0)
        py_find_frame(&c, c.py);
    if (s->py_state == 1 && s->py_frame)
        bpf_loop(STOKE_MAX_STACK_DEPTH, py_frame_step, &c, 0);
    return 0;
}

static __always_inline bool read_u64(__u64 *dst, __u64 addr)
{
    return bpf_probe_read_user(dst, sizeof(*dst), (const void *)addr) == 0;
}

/* ---- HotSpot ------------------------------------------------------------ */

/*
 * x86-64 HotSpot frames, as frame_x86.hpp lays them out:
 *   interpreted: rbp-based; at rbp: the caller's rbp, rbp + 8 the return
 *     address, rbp - 8 the caller's sp, rbp - 24 the Method*, rbp - 64 the
 *     bytecode pointer (saved there at calls; r13 holds it while running).
 *   compiled (nmethod) and most stubs: frame_size words from the sp at the
 *     call to the caller's sp; the return address in the top word, the
 *     caller's rbp below it (without -XX:+PreserveFramePointer rbp is an
 *     ordinary register in compiled code, so the frame size is the only way).
 *   StubRoutines (frame size 0): rbp-based after their `enter`.
 */
#define JVM_INTERP_METHOD   (-3)
#define JVM_INTERP_BCP      (-8)
#define JVM_INTERP_SENDERSP (-1)
#define JVM_SEGMAP_HOPS     32      /* a block of 32 * 254 segments: 500 KiB of code */
#define JVM_MAX_FRAME       0x40000 /* 256 KiB: larger frame sizes are not believed */
#define JVM_RA_SLOTS        4       /* words above the frame searched for a return address */

/* The name of a code blob, by its first four characters. */
#define JVM_NAME_NMETHOD 0x74656d6e /* "nmethod" */
#define JVM_NAME_NATIVE  0x6974616e /* "native nmethod" */
#define JVM_NAME_VTABLE  0x62617476 /* "vtable chunks" */
#define JVM_NAME_ITABLE  0x62617469 /* "itable chunks" */
#define JVM_NAME_ADAPTER 0x2f433249 /* "I2C/C2I adapters": frameless */

static __always_inline bool jvm_in_code(const struct jvm_proc *j, __u64 pc)
{
    return pc - j->code_lo < j->code_hi - j->code_lo;
}

/* The code blob holding a pc: in its heap's segment map, hop back to the
 * segment where its block starts (0 there; 0xff: free). One hop per call
 * of a bpf_loop callback, verified once. */
struct jvm_hops {
    __u64 segmap, seg;
    bool found;
};

static long jvm_hop(__u32 i, void *data)
{
    struct jvm_hops *c = data;
    __u8 tag = 0xff;

    if (bpf_probe_read_user(&tag, 1, (const void *)(c->segmap + c->seg)) != 0 || tag == 0xff)
        return 1;
    if (tag == 0) {
        c->found = true;
        return 1;
    }
    if (tag > c->seg)
        return 1;
    c->seg -= tag;
    return 0;
}

static __always_inline __u64 jvm_find_blob(const struct jvm_proc *j, __u64 pc)
{
    struct jvm_hops c = {};
    __u64 lo = 0;
    __u8 shift = j->segment_shift & 31;

    for (int h = 0; h < STOKE_JVM_MAX_HEAPS; h++) {
        if (h < j->nheaps && pc - j->heaps[h].lo < j->heaps[h].hi - j->heaps[h].lo) {
            lo = j->heaps[h].lo;
            c.segmap = j->heaps[h].segmap;
            break;
        }
    }
    if (!c.segmap)
        return 0;
    c.seg = (pc - lo) >> shift;
    bpf_loop(JVM_SEGMAP_HOPS, jvm_hop, &c, 0);
    return c.found ? lo + (c.seg << shift) + j->heapblock_size : 0;
}

/* The word at @off of the blob header in s->jvm_hdr. */
static __always_inline __u64 jvm_hdr64(struct scratch *s, __u16 off)
{
    if (off > STOKE_JVM_HDR - 8)
        return 0;
    return *(__u64 *)(s->jvm_hdr + off);
}

static __always_inline __u32 jvm_hdr32(struct scratch *s, __u16 off)
{
    if (off > STOKE_JVM_HDR - 4)
        return 0;
    return *(__u32 *)(s->jvm_hdr + off);
}

/*
 * Is the leaf pc in a compiled method's epilogue? Decodes forward to the
 * `ret` through the only instructions HotSpot's epilogues hold (add rsp,
 * pop rbp, leave, the return poll of JDK 11-21, vzeroupper), one
 * instruction per callback. s->jvm_dec.left ends as what is left to pop:
 * 2 the whole frame, 1 rbp and the return address, 0 the return address,
 * 3 an rbp frame (leave ahead). The decoder's state lives in the scratch
 * map, where the verifier does not follow its values: on the stack, every
 * position and outcome would be a state of its own (millions).
 */
static long jvm_decode_step(__u32 k, void *data)
{
    struct scratch *s = *(struct scratch **)data;
    __u32 i = s->jvm_dec.i, n;

    if (i > 24)
        return 1;
    __u8 b0 = s->jvm_code[i & 31], b1 = s->jvm_code[(i + 1) & 31], b2 = s->jvm_code[(i + 2) & 31];
    if (b0 == 0xc3) { /* ret */
        s->jvm_dec.done = true;
        return 1;
    }
    if (b0 == 0x5d) { /* pop rbp */
        if (s->jvm_dec.left < 1)
            s->jvm_dec.left = 1;
        n = 1;
    } else if (b0 == 0xc9) { /* leave */
        s->jvm_dec.left = 3;
        n = 1;
    } else if (b0 == 0x48 && b1 == 0x83 && b2 == 0xc4) { /* add rsp, imm8 */
        s->jvm_dec.left = 2;
        n = 4;
    } else if (b0 == 0x48 && b1 == 0x81 && b2 == 0xc4) { /* add rsp, imm32 */
        s->jvm_dec.left = 2;
        n = 7;
    } else if ((b0 == 0x49 && b1 == 0x3b && b2 == 0x67) || /* cmp rsp, [r15 + d8] */
               (b0 == 0x4d && b1 == 0x8b && b2 == 0x57)) { /* mov r10, [r15 + d8] */
        n = 4;
    } else if ((b0 == 0x49 && b1 == 0x3b && b2 == 0xa7) || /* cmp rsp, [r15 + d32] */
               (b0 == 0x4d && b1 == 0x8b && b2 == 0x97)) { /* mov r10, [r15 + d32] */
        n = 7;
    } else if (b0 == 0x0f && b1 == 0x87) { /* ja rel32: to the poll stub */
        n = 6;
    } else if (b0 == 0x77) { /* ja rel8 */
        n = 2;
    } else if ((b0 == 0x41 && b1 == 0x85 && b2 == 0x02) || /* test [r10], eax */
               (b0 == 0xc5 && b1 == 0xf8 && b2 == 0x77)) { /* vzeroupper */
        n = 3;
    } else {
        return 1;
    }
    s->jvm_dec.i = i + n;
    return 0;
}

/* -1: not an epilogue; else s->jvm_dec.left, above. */
static __always_inline int jvm_epilogue(struct scratch *s, __u64 pc)
{
    if (bpf_probe_read_user(s->jvm_code, sizeof(s->jvm_code), (const void *)pc) != 0)
        return -1;
    s->jvm_dec.i = 0;
    s->jvm_dec.left = 0;
    s->jvm_dec.done = false;
    bpf_loop(8, jvm_decode_step, &s, 0);
    return s->jvm_dec.done ? s->jvm_dec.left : -1;
}

/* The caller of a frame whose return address is at @ra_at (the caller's sp
 * is right above it) and whose caller's rbp is at @ra_at - 8 when @has_bp:
 * into s->jvm_next. */
static __always_inline bool jvm_pop(struct scratch *s, __u64 ra_at, bool has_bp)
{
    __u64 w[2];

    if (bpf_probe_read_user(w, sizeof(w), (const void *)(ra_at - 8)) != 0)
        return false;
    s->jvm_next.pc = w[1];
    s->jvm_next.sp = ra_at + 8;
    s->jvm_next.bp = has_bp ? w[0] : s->bp;
    return true;
}

/* An interpreted frame: the Method* and bytecode index, and its caller.
 * A global function, as the two below: each is verified once. */
__noinline int jvm_interpreted(struct scratch *s, const struct jvm_proc *j)
{
    __u64 w[11], fp, bcp, cm = 0, method, bci = 0;

    if (!s || !j)
        return -1;
    fp = s->bp;
    /* rbp - 64 .. rbp + 16 */
    if (fp < s->sp || fp - s->sp > JVM_MAX_FRAME ||
        bpf_probe_read_user(w, sizeof(w), (const void *)(fp - 64)) != 0)
        return -1;
    method = w[8 + JVM_INTERP_METHOD];
    bcp = w[8 + JVM_INTERP_BCP];
    if (!s->is_return) {
        struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
        if (regs)
            bcp = BPF_CORE_READ(regs, r13);
    }
    if (method &&
        bpf_probe_read_user(&cm, sizeof(cm), (const void *)(method + j->method_const)) == 0 &&
        bcp >= cm + j->const_size)
        bci = bcp - cm - j->const_size;
    s->jvm_frame = STOKE_JVM_INTERP(method, bci > 0x7fff ? 0x7fff : bci);
    s->jvm_next.pc = w[9];
    s->jvm_next.bp = w[8];
    /* the caller's sp as it was at the call (compiled callers need it) */
    s->jvm_next.sp = w[8 + JVM_INTERP_SENDERSP];
    if (s->jvm_next.sp <= fp || s->jvm_next.sp - fp > JVM_MAX_FRAME)
        s->jvm_next.sp = fp + 16;
    return 0;
}

/* The code blob holding the pc, into s->jvm_blob: its kind, frame size
 * and prologue end, and the frame to record. */
#define JVM_BLOB_STUB      0
#define JVM_BLOB_NMETHOD   1
#define JVM_BLOB_FRAMELESS 2

__noinline int jvm_blob(struct scratch *s, const struct jvm_proc *j)
{
    __u64 pc, blob, code_begin, rec_pc;
    __u32 name = 0, fsize, cookie = 0;

    if (!s || !j)
        return -1;
    pc = rec_pc = s->pc;
    blob = jvm_find_blob(j, pc);
    if (!blob) {
        count(STOKE_CNT_JVM_NO_BLOB);
        return -1;
    }
    if (bpf_probe_read_user(s->jvm_hdr, STOKE_JVM_HDR, (const void *)blob) != 0 ||
        bpf_probe_read_user(&name, sizeof(name), (const void *)jvm_hdr64(s, j->blob_name)) != 0)
        return -1;
    fsize = jvm_hdr32(s, j->blob_frame_size) * 8;
    if (fsize > JVM_MAX_FRAME)
        return -1;
    code_begin = jvm_hdr64(s, j->blob_code_begin);
    s->jvm_blob.fsize = fsize;
    s->jvm_blob.complete = code_begin + jvm_hdr32(s, j->blob_frame_complete);
    s->jvm_blob.kind = JVM_BLOB_STUB;
    if (name == JVM_NAME_VTABLE || name == JVM_NAME_ITABLE || name == JVM_NAME_ADAPTER)
        s->jvm_blob.kind = JVM_BLOB_FRAMELESS;
    if (name == JVM_NAME_NMETHOD || name == JVM_NAME_NATIVE) {
        s->jvm_blob.kind = JVM_BLOB_NMETHOD;
        if (bpf_probe_read_user(&cookie, sizeof(cookie), (const void *)(blob + j->nm_compile_id)) !=
            0)
            return -1;
        /* a deoptimized frame returns to the deopt handler; the pc it had
         * is in the frame */
        if (s->is_return && pc == jvm_hdr64(s, j->nm_deopt_handler)) {
            __s32 off = 0;
            __u64 orig = 0;
            if (bpf_probe_read_user(&off, sizeof(off),
                                    (const void *)(blob + j->nm_orig_pc_offset)) == 0 &&
                bpf_probe_read_user(&orig, sizeof(orig), (const void *)(s->sp + off)) == 0 &&
                orig - code_begin < 0x1000000)
                rec_pc = orig;
        }
    }
    s->jvm_frame = STOKE_JVM_CODE(rec_pc, cookie);
    return 0;
}

/* A compiled method's caller is in the code cache: when the frame size did
 * not lead there (words pushed for a moment), a little higher. */
struct jvm_ra_search {
    struct scratch *s;
    const struct jvm_proc *j;
    __u64 at;
    bool found;
};

static long jvm_ra_step(__u32 i, void *data)
{
    struct jvm_ra_search *c = data;

    c->at += 8;
    if (jvm_pop(c->s, c->at, true) && jvm_in_code(c->j, c->s->jvm_next.pc)) {
        c->found = true;
        return 1;
    }
    return 0;
}

/* The caller of a compiled method, stub or adapter. */
__noinline int jvm_compiled(struct scratch *s, const struct jvm_proc *j)
{
    __u64 pc, sp;
    __u32 fsize;
    int ep;

    if (!s || !j || jvm_blob(s, j) != 0)
        return -1;
    pc = s->pc;
    sp = s->sp;
    fsize = s->jvm_blob.fsize;
    if (s->jvm_blob.kind == JVM_BLOB_FRAMELESS)
        return jvm_pop(s, sp, false) ? 0 : -1;
    if (!s->is_return && pc < s->jvm_blob.complete) {
        /* the prologue: the return address pushed, then rbp, then the rest */
        __u64 at = pc + 4 >= s->jvm_blob.complete ? sp + 8 : sp;
        if (!jvm_pop(s, at, at != sp))
            return -1;
        if (!jvm_in_code(j, s->jvm_next.pc) && !jvm_pop(s, at == sp ? sp + 8 : sp, at == sp))
            return -1;
        return 0;
    }
    if (fsize == 0) { /* StubRoutines: rbp frames */
        if (s->bp < sp || s->bp - sp > JVM_MAX_FRAME)
            return jvm_pop(s, sp, false) ? 0 : -1;
        return jvm_pop(s, s->bp + 8, true) ? 0 : -1;
    }
    if (!s->is_return && s->jvm_blob.kind == JVM_BLOB_NMETHOD) {
        ep = jvm_epilogue(s, pc);
        if (ep == 3)
            return jvm_pop(s, s->bp + 8, true) ? 0 : -1;
        if (ep == 0 || ep == 1)
            return jvm_pop(s, ep == 1 ? sp + 8 : sp, ep == 1) ? 0 : -1;
    }
    if (!jvm_pop(s, sp + fsize - 8, true))
        return -1;
    if (s->jvm_blob.kind != JVM_BLOB_NMETHOD || jvm_in_code(j, s->jvm_next.pc))
        return 0;
    struct jvm_ra_search c = {.s = s, .j = j, .at = sp + fsize - 8};
    bpf_loop(JVM_RA_SLOTS, jvm_ra_step, &c, 0);
    return c.found ? 0 : -1;
}

/*
 * One HotSpot frame: records it and moves s->pc/sp/bp to its caller.
 * Returns 0 to go on, 1 when the walk ends.
 */
__noinline int jvm_walk(struct scratch *s)
{
    const struct jvm_proc *j;
    __u32 len;
    int r;

    if (!s)
        return 1;
    j = bpf_map_lookup_elem(&jvm_procs, &s->pid);
    if (!j) {
        s->st.end = STOKE_END_UNSUPPORTED;
        return 1;
    }
    if (!s->jvm_seen) {
        s->jvm_seen = true;
        count(STOKE_CNT_JVM_SAMPLES);
    }
    len = s->st.len;
    if (len >= STOKE_MAX_STACK_DEPTH) {
        s->st.end = STOKE_END_DEPTH;
        return 1;
    }
    if (s->pc - j->interp_lo < j->interp_hi - j->interp_lo)
        r = jvm_interpreted(s, j);
    else
        r = jvm_compiled(s, j);
    if (r != 0) {
        /* nothing recorded: a frame that cannot be placed is not kept */
        count(STOKE_CNT_JVM_FAULT);
        if (len == 0) {
            s->st.ip[0] = s->pc;
            s->st.len = 1;
            s->hash = mix(s->hash, s->pc);
        }
        s->st.end = STOKE_END_BAD_FRAME;
        return 1;
    }
    s->st.ip[len] = s->jvm_frame;
    s->st.len = len + 1;
    s->hash = mix(s->hash, s->jvm_frame);
    count(STOKE_CNT_JVM_FRAMES);
    if (s->jvm_next.sp <= s->sp || s->jvm_next.pc == 0) {
        s->st.end = s->jvm_next.pc == 0 ? STOKE_END_ENTRY : STOKE_END_BAD_FRAME;
        return 1;
    }
    s->pc = s->jvm_next.pc;
    s->sp = s->jvm_next.sp;
    s->bp = s->jvm_next.bp;
    s->is_return = true;
    s->fp_step = false;
    return 0;
}

/* ---- V8 ---------------------------------------------------------------- */

/*
 * The frame just recorded was walked by frame pointers in a V8 process (JIT
 * code, or builtins embedded in the binary without CFI): when it is a
 * JavaScript frame, its JSFunction sits at fp + off_fp_function, and the
 * frame is recorded as the function's SharedFunctionInfo instead of its
 * pc. A frame whose context slot holds a Smi (a frame-type marker: entry,
 * exit, stub, builtin frames) keeps its native pc, and so does one whose
 * function slot is not a JSFunction (checked by its map's instance type).
 * A global function: the verifier checks it once, on its own.
 */
__noinline int v8_walk(struct scratch *s)
{
    const struct v8_proc *v;
    __u64 fp, ctx = 0, fn = 0, map = 0, sfi = 0;
    __u16 type = 0;
    __u32 len;

    if (!s || !s->v8)
        return 0;
    v = &s->v8p;
    len = s->st.len;
    fp = s->bp;
    if (len == 0 || len > STOKE_MAX_STACK_DEPTH || fp == 0)
        return 0;
    if (!read_u64(&ctx, fp + v->fp_context)) {
        count(STOKE_CNT_V8_NOT_JS);
        return 0;
    }
    if ((ctx & 1) == 0) { /* a Smi: a typed frame's marker */
        count(STOKE_CNT_V8_MARKERS);
        return 0;
    }
    if (!read_u64(&fn, fp + v->fp_function) || (fn & 3) != 1 ||
        !read_u64(&map, fn - 1 + v->obj_map) || (map & 3) != 1 ||
        bpf_probe_read_user(&type, sizeof(type), (const void *)(map - 1 + v->map_type)) != 0 ||
        type < v->type_func_lo || type > v->type_func_hi ||
        !read_u64(&sfi, fn - 1 + v->func_shared) || (sfi & 3) != 1) {
        count(STOKE_CNT_V8_NOT_JS);
        return 0;
    }
    s->st.ip[len - 1] = STOKE_V8_FRAME(sfi - 1, 0);
    s->hash = mix(s->hash_prev, s->st.ip[len - 1]); /* instead of the pc's */
    count(STOKE_CNT_V8_FRAMES);
    if (!s->v8_seen) {
        s->v8_seen = true;
        count(STOKE_CNT_V8_SAMPLES);
    }
    return 1;
}

/* One frame: records pc, then finds the caller's pc, sp and bp. Returns 1
 * to stop the loop. */
static long unwind_step(__u32 i, void *data)
{
    struct walk_ctx *c = data;
    struct scratch *s = c->s;
    const struct unwind_proc *proc = c->proc;
    const struct unwind_mapping *m;
    const struct unwind_row *row = NULL;
    __u64 pc = s->pc, cfa, ra, bp = s->bp;
    __u32 len;
    __u8 kind;

    /* CPython's evaluation loop: first the Python frames it runs, then the
     * loop's own native frame (where the interpreter was entered) */
    if (pc - s->py_eval_lo < s->py_eval_len)
        py_walk(s);
    len = s->st.len; /* on both paths: one state for the verifier */
    /* HotSpot's code cache: unwound from the VM's metadata */
    if (pc - s->jvm_lo < s->jvm_len)
        return jvm_walk(s) ? 1 : 0;
    if (len >= STOKE_MAX_STACK_DEPTH)
        return walk_end(s, STOKE_END_DEPTH);
    m = proc ? find_mapping(proc, pc) : NULL;
    if (!m) {
        /* not loaded, or a library mapped since: ask the kernel */
        if (proc)
            send_event(s->pid, STOKE_EV_UNMAPPED);
        m = vma_mapping(s, pc);
    }
    if (!m && len > 0) {
        /* a return address in no executable mapping: a guess, not kept */
        if (s->vma_busy)
            return walk_end(s, STOKE_END_NO_PROC);
        return walk_end(s, s->fp_step ? STOKE_END_NO_TABLE : STOKE_END_NOT_MAPPED);
    }
    s->st.ip[len] = pc;
    s->st.len = len + 1;
    s->hash_prev = s->hash;
    s->hash = mix(s->hash, pc);
    count(STOKE_CNT_FRAMES);
    if (!m) /* the leaf's pc is real: kept */
        return walk_end(s, s->vma_busy ? STOKE_END_NO_PROC : STOKE_END_NOT_MAPPED);
    if (m->table != STOKE_UW_NO_TABLE) {
        __u32 id = m->table;
        void *t = bpf_map_lookup_elem(&unwind_tables, &id);
        if (t)
            row = find_row(t, pc - (__u64)s->is_return - m->bias);
    }
    if (!row && m == &s->vma && s->unknown)
        return walk_end(s, STOKE_END_NO_PROC); /* no table yet for this binary */
    kind = row ? row->kind : STOKE_UW_NONE;
    s->fp_step = kind == STOKE_UW_NONE;

    switch (kind) {
    case STOKE_UW_END:
        return walk_end(s, STOKE_END_ENTRY);
    case STOKE_UW_SIGNAL: {
        /* rsp points at the ucontext: uc_mcontext at 40, and in it rbp,
         * rsp and rip at 10, 15 and 16 words */
        __u64 sp = s->sp;
        if (!read_u64(&s->pc, sp + 40 + 16 * 8) || !read_u64(&s->sp, sp + 40 + 15 * 8) ||
            !read_u64(&s->bp, sp + 40 + 10 * 8))
            return walk_end(s, STOKE_END_READ_FAULT);
        s->is_return = false;
        count(STOKE_CNT_FRAMES_TABLE);
        return s->pc ? 0 : walk_end(s, STOKE_END_ENTRY);
    }
    case STOKE_UW_NONE:
        /* V8: a frame-pointer frame may be a JavaScript one (recorded by
         * its function instead of its pc) */
        v8_walk(s);
        if (bp == 0)
            return walk_end(s,
                            m->table == STOKE_UW_NO_TABLE ? STOKE_END_ENTRY : STOKE_END_NO_TABLE);
        cfa = bp + 16;
        if (!read_u64(&bp, cfa - 16))
            return walk_end(s, STOKE_END_NO_TABLE);
        count(STOKE_CNT_FRAMES_FP);
        break;
    case STOKE_UW_CFA_RSP:
        cfa = s->sp + row->off;
        break;
    case STOKE_UW_CFA_RSP_X8:
        cfa = s->sp + ((__u64)row->off << 3);
        break;
    case STOKE_UW_CFA_RBP:
        if (bp == 0)
            return walk_end(s, STOKE_END_UNSUPPORTED);
        cfa = bp + row->off;
        break;
    case STOKE_UW_PLT:
        cfa = s->sp + row->off + ((pc & 15) >= (__u64)(__u8)row->rbp ? 8 : 0);
        break;
    case STOKE_UW_DEREF_RBP:
        if (bp == 0 || !read_u64(&cfa, bp - row->off))
            return walk_end(s, STOKE_END_READ_FAULT);
        break;
    default:
        return walk_end(s, STOKE_END_UNSUPPORTED);
    }
    if (kind != STOKE_UW_NONE) {
        count(STOKE_CNT_FRAMES_TABLE);
        if (kind != STOKE_UW_PLT && row->rbp) {
            if (row->rbp == STOKE_UW_RBP_LOST) {
                bp = 0;
            } else {
                __u64 at = row->rbp == STOKE_UW_RBP_DEREF ? bp : cfa + (__s64)row->rbp * 8;
                if (!read_u64(&bp, at))
                    return walk_end(s, STOKE_END_READ_FAULT);
            }
        }
    }
    if (cfa <= s->sp)
        return walk_end(s, STOKE_END_BAD_FRAME);
    if (!read_u64(&ra, cfa - 8))
        return walk_end(s, s->fp_step ? STOKE_END_NO_TABLE : STOKE_END_READ_FAULT);
    if (ra == 0)
        return walk_end(s, STOKE_END_ENTRY);
    s->pc = ra;
    s->sp = cfa;
    s->bp = bp;
    s->is_return = true;
    return 0;
}

/* The registers of the interrupted user code: saved at the top of the
 * task's kernel stack on every entry from user mode, the timer interrupt
 * of this very sample included (perf_callchain_user reads the same). */
static __always_inline bool user_regs(struct scratch *s)
{
    struct task_struct *task = bpf_get_current_task_btf();
    struct pt_regs *regs;

    if (!task->mm)
        return false; /* a kernel thread */
    regs = (struct pt_regs *)bpf_task_pt_regs(task);
    if (!regs)
        return false;
    s->pc = BPF_CORE_READ(regs, ip);
    s->sp = BPF_CORE_READ(regs, sp);
    s->bp = BPF_CORE_READ(regs, bp);
    return s->pc != 0;
}

/* Walks the user stack into s->st. */
static __always_inline void walk_user(struct scratch *s, __u32 pid)
{
    const struct unwind_proc *proc;

    s->st.len = 0;
    s->st.end = STOKE_END_ENTRY;
    s->st.kind = STOKE_STACK_USER;
    s->hash = 0;
    s->pid = pid;
    s->is_return = false;
    s->fp_step = false;
    s->vma_busy = false;
    s->vma_valid = false;
    if (!user_regs(s))
        return;
    proc = bpf_map_lookup_elem(&unwind_procs, &pid);
    if (!proc)
        send_event(pid, STOKE_EV_NEW_PROC); /* walked through the kernel's VMAs meanwhile */
    const struct py_proc *py = bpf_map_lookup_elem(&py_procs, &pid);
    s->py_state = 0;
    s->py_eval_lo = py ? py->eval_lo : 0;
    s->py_eval_len = py ? py->eval_len : 0;
    const struct jvm_proc *jvm = bpf_map_lookup_elem(&jvm_procs, &pid);
    s->jvm_seen = false;
    s->jvm_lo = jvm ? jvm->code_lo : 0;
    s->jvm_len = jvm ? jvm->code_hi - jvm->code_lo : 0;
    const struct v8_proc *v8 = bpf_map_lookup_elem(&v8_procs, &pid);
    s->v8 = v8 != NULL;
    if (v8)
        s->v8p = *v8;
    s->v8_seen = false;
    struct walk_ctx c = {.s = s, .proc = proc};
    bpf_loop(STOKE_MAX_STACK_DEPTH + 1, unwind_step, &c, 0);
    count(STOKE_CNT_WALK_END + (s->st.end < STOKE_END_MAX ? s->st.end : 0));
}

/* bpf_get_stack into s->st: the kernel stack, or the user stack walked by
 * the kernel's frame-pointer unwinder. Returns false on an error other than
 * "no stack of that kind". */
static __always_inline bool get_stack(struct bpf_perf_event_data *ctx, struct scratch *s,
                                      __u64 flags, __u16 kind)
{
    long n = bpf_get_stack(ctx, s->st.ip, sizeof(s->st.ip), flags);

    s->st.len = 0;
    s->st.end = kind == STOKE_STACK_USER ? STOKE_END_FP : STOKE_END_ENTRY;
    s->st.kind = kind;
    s->hash = 0;
    if (n < 0)
        return n == -EFAULT;
    s->st.len = (__u32)(n / 8);
    for (int i = 0; i < STOKE_MAX_STACK_DEPTH; i++) {
        if (i >= s->st.len)
            break;
        s->hash = mix(s->hash, s->st.ip[i]);
    }
    return true;
}

/* Stores the stack in s->st (if any) and returns its hash. */
static __always_inline __u64 keep(void *stacks, struct scratch *s, bool ok, __u8 *lost,
                                  __u32 lost_cnt)
{
    __u64 h = 0;

    if (!ok)
        *lost = STOKE_LOST_ERROR;
    else if (s->st.len)
        h = store_stack(stacks, s, lost);
    if (*lost)
        count(lost_cnt);
    return h;
}

static __always_inline int sample(struct bpf_perf_event_data *ctx, bool tables)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32, tid = (__u32)id, zero = 0;
    struct sample_key key = {};
    struct scratch *s;
    void *counts, *stacks;
    __u64 one = 1, *val;
    bool ok;

    count(STOKE_CNT_SAMPLES);
    if (tid == 0 && !include_idle) {
        count(STOKE_CNT_IDLE);
        return 0;
    }
    if (target_pid && pid != target_pid) {
        count(STOKE_CNT_FILTERED);
        return 0;
    }
    s = bpf_map_lookup_elem(&scratch_map, &zero);
    if (!s)
        return 0;

    if (active_set) {
        counts = &counts_1;
        stacks = &stacks_1;
    } else {
        counts = &counts_0;
        stacks = &stacks_0;
    }
    key.pid = pid;
    key.tid = per_thread ? tid : 0;
    key.cpu = per_cpu ? bpf_get_smp_processor_id() : 0;

    ok = get_stack(ctx, s, 0, STOKE_STACK_KERNEL);
    key.kstack = keep(stacks, s, ok, &key.klost, STOKE_CNT_KSTACK_ERR);
    if (pid) {
        if (tables) {
            walk_user(s, pid);
            ok = true;
        } else {
            ok = get_stack(ctx, s, BPF_F_USER_STACK, STOKE_STACK_USER);
        }
        key.ustack = keep(stacks, s, ok, &key.ulost, STOKE_CNT_USTACK_ERR);
    }
    if (key.klost == STOKE_LOST_COLLISION)
        count(STOKE_CNT_KSTACK_COLL);
    if (key.ulost == STOKE_LOST_COLLISION)
        count(STOKE_CNT_USTACK_COLL);

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

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
    return sample(ctx, true);
}

SEC("perf_event")
int do_sample_fp(struct bpf_perf_event_data *ctx)
{
    return sample(ctx, false);
}

/* A new image: its mappings are loaded again on its next sample. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;

    bpf_map_delete_elem(&unwind_procs, &pid);
    bpf_map_delete_elem(&py_procs, &pid);
    bpf_map_delete_elem(&jvm_procs, &pid);
    bpf_map_delete_elem(&v8_procs, &pid);
    bpf_map_delete_elem(&event_sent, &pid);
    return 0;
}

/* The process is gone (its main thread exits): a later process with the
 * same pid must not inherit its mappings. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32;

    if (pid != (__u32)id)
        return 0;
    bpf_map_delete_elem(&unwind_procs, &pid);
    bpf_map_delete_elem(&py_procs, &pid);
    bpf_map_delete_elem(&jvm_procs, &pid);
    bpf_map_delete_elem(&v8_procs, &pid);
    bpf_map_delete_elem(&event_sent, &pid);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
