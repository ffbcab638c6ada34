/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile.h — types shared by bpf/profile.bpf.c, the agent's sampler and
 * the unwind-table compiler (unwind/).
 *
 * Samples are counted in a hash map keyed by struct sample_key. A stack is
 * stored once per window in a hash map keyed by a 64-bit hash of its frames
 * (struct stack_trace), and a hit is checked frame by frame, so two stacks
 * never share an entry silently. There are two map sets (counts_0/stacks_0,
 * counts_1/stacks_1); the program writes to the set named by the global
 * `active_set`, and the agent flips it each window before draining the
 * other set, so the drain never races the writers.
 *
 * User stacks are walked in BPF from unwind tables compiled from .eh_frame
 * (one per binary, shared by every process mapping it) and the process's
 * executable mappings (struct unwind_proc), with frame pointers where a
 * mapping has no table. docs/architecture.md, "How a PC becomes a frame".
 */
#ifndef STOKE_BPF_PROFILE_H
#define STOKE_BPF_PROFILE_H

/* Frames per stack, kernel and user each: perf's default
 * (kernel.perf_event_max_stack). */
#define STOKE_MAX_STACK_DEPTH 127

struct sample_key {
    __u32 pid;  /* thread group id: the process */
    __u32 tid;  /* thread id, when per-thread labels are on, else 0 */
    __u32 cpu;  /* CPU, when per-CPU labels are on, else 0 */
    __u8 klost; /* enum stoke_lost: why the kernel stack is missing */
    __u8 ulost; /* the same for the user stack */
    __u16 pad;
    __u64 kstack; /* hash of the kernel stack in stacks_N; 0 = none */
    __u64 ustack; /* hash of the user stack in stacks_N; 0 = none */
};

/* Why a sample has no stack of a kind although it should have one. */
enum stoke_lost {
    STOKE_LOST_NONE = 0,
    STOKE_LOST_COLLISION, /* another stack has the same hash this window */
    STOKE_LOST_MAP_FULL,  /* the stacks map was full */
    STOKE_LOST_ERROR,     /* bpf_get_stack failed */
};

/* Why a user-stack walk ended (struct stack_trace.end). */
enum stoke_walk_end {
    STOKE_END_ENTRY = 0,   /* reached the outermost frame (_start, clone3, FP chain end) */
    STOKE_END_NOT_MAPPED,  /* a return address outside every executable mapping */
    STOKE_END_NO_TABLE,    /* no table covered a frame and frame pointers led nowhere */
    STOKE_END_UNSUPPORTED, /* an unwind rule the walker cannot run */
    STOKE_END_READ_FAULT,  /* user memory could not be read */
    STOKE_END_DEPTH,       /* STOKE_MAX_STACK_DEPTH frames */
    STOKE_END_NO_PROC,     /* the process's mappings were not loaded yet: leaf only */
    STOKE_END_BAD_FRAME,   /* the stack pointer did not move towards the caller */
    STOKE_END_FP,          /* walked by the kernel's frame-pointer unwinder (no tables) */
    STOKE_END_MAX,
};

/* A stack as stored in stacks_N: frames leaf first. */
struct stack_trace {
    __u32 len;
    __u16 end; /* enum stoke_walk_end; STOKE_END_ENTRY for kernel stacks */
    __u16 kind;
    __u64 ip[STOKE_MAX_STACK_DEPTH];
};

#define STOKE_STACK_KERNEL 1
#define STOKE_STACK_USER   2

#define STOKE_COMM_ENTRIES 8192 /* processes whose name is remembered (LRU) */

/* Value of the `comms` map: the process name, NUL-padded. */
struct proc_comm {
    char comm[16];
};

/* ---- unwind tables ---------------------------------------------------- */

/*
 * One row of a compiled table: from table pc `pc` (the ELF virtual address
 * minus the table's base) until the next row's pc, how to find the caller.
 * Kinds (x86-64; the return address is always at CFA - 8):
 */
enum stoke_uw_kind {
    STOKE_UW_NONE = 0,    /* no FDE covers the pc: use frame pointers */
    STOKE_UW_CFA_RSP,     /* CFA = rsp + off */
    STOKE_UW_CFA_RBP,     /* CFA = rbp + off */
    STOKE_UW_CFA_RSP_X8,  /* CFA = rsp + off * 8 (frames over 64 KiB) */
    STOKE_UW_PLT,         /* CFA = rsp + off + ((pc & 15) >= rbp ? 8 : 0): lazy PLT stubs */
    STOKE_UW_DEREF_RBP,   /* CFA = *(rbp - off): stack realignment (DRAP) */
    STOKE_UW_SIGNAL,      /* a signal trampoline: the registers are in the ucontext at rsp */
    STOKE_UW_END,         /* the return address is undefined: the outermost frame */
    STOKE_UW_UNSUPPORTED, /* a rule the walker cannot run */
};

/* `rbp` of a row: where the caller's rbp was saved, in units of 8 bytes
 * from the CFA (e.g. -2: at CFA - 16); 0: rbp is unchanged;
 * STOKE_UW_RBP_DEREF: at the address rbp holds (stack realignment);
 * STOKE_UW_RBP_LOST: rbp's rule is one the walker cannot run. */
#define STOKE_UW_RBP_LOST  (-128)
#define STOKE_UW_RBP_DEREF (-127)

struct unwind_row {
    __u32 pc;
    __u16 off; /* CFA offset, see the kinds */
    __u8 kind; /* enum stoke_uw_kind */
    __s8 rbp;
};

/*
 * A compiled table is one BPF array of 8-byte elements:
 *   [0]                 struct unwind_row: .pc = number of rows, .off and
 *                       .kind/.rbp unused; element 0 is read as two __u32:
 *                       {nrows, npages}
 *   [1 .. 1+(npages+2)/2) the page index: __u32 idx[npages + 1], two per
 *                       element; idx[p] = rows whose pc < p << PAGE_SHIFT
 *   [rows0 ..)          the rows, sorted by pc, consecutive rows distinct
 * so a lookup reads the header, two index entries and binary-searches the
 * few rows of one page.
 */
#define STOKE_UW_PAGE_SHIFT   12
#define STOKE_UW_SEARCH_STEPS 14 /* 2^14 > rows in one page + 1 */
#define STOKE_UW_MAX_TABLES   4096
#define STOKE_UW_MAX_ELEMS    (1u << 24) /* 128 MiB: larger tables are refused */

/* One executable mapping of a process: table pc = address - bias. */
struct unwind_mapping {
    __u64 start;
    __u64 bias;
    __u32 len;   /* end - start, clamped to 4 GiB */
    __u32 table; /* index in unwind_tables, or STOKE_UW_NO_TABLE: frame pointers */
};
#define STOKE_UW_NO_TABLE 0xffffffffu

/* Value of the `unwind_procs` map (key: pid): executable mappings sorted by
 * start, adjacent ones of the same kind merged. */
#define STOKE_UW_MAX_MAPPINGS 256
struct unwind_proc {
    __u32 nmaps;
    __u32 pad;
    struct unwind_mapping maps[STOKE_UW_MAX_MAPPINGS];
};

/*
 * A binary with a table, by file identity (key of `unwind_files`): what the
 * walker uses for a process the agent has not loaded yet, finding the
 * mapping of a pc through the kernel's VMA (bpf_find_vma). The inode
 * number and size are what both the kernel's inode and fstat() report on
 * every filesystem (device numbers differ on btrfs and overlayfs).
 */
struct unwind_file_key {
    __u64 ino;
    __u64 size;
};

#define STOKE_UW_FILE_SEGS 4
struct unwind_file {
    __u32 table;
    __u32 nsegs;
    struct {
        __u64 off_lo, off_hi; /* file offsets of an executable PT_LOAD segment */
        __u64 delta;          /* table pc = file offset + delta (mod 2^64) */
    } segs[STOKE_UW_FILE_SEGS];
};

/* ---- interpreters ---------------------------------------------------- */

/*
 * A CPython frame in a user stack: instead of the native frame of
 * _PyEval_EvalFrameDefault, the Python frames it was running, each as
 * STOKE_PY_TAG | (code object >> 3) << 16 | instruction index. The agent
 * names the code object (qualified name, file, line) from the process's
 * memory. User addresses stay below 2^47, so no native pc has this tag.
 */
#define STOKE_PY_TAG        0xa000000000000000ull
#define STOKE_FRAME_TAGMASK 0xf000000000000000ull
#define STOKE_PY_FRAME(code, lasti)                                                                \
    (STOKE_PY_TAG | ((((__u64)(code) >> 3) & 0xfffffffffffull) << 16) | ((__u64)(lasti)&0xffff))
#define STOKE_PY_CODE(f)  ((((f) >> 16) & 0xfffffffffffull) << 3)
#define STOKE_PY_LASTI(f) ((__u32)((f)&0xffff))

#define STOKE_PY_NONE 0xffff /* an offset that does not apply to this version */

/* Where CPython keeps what the walker reads, for one minor version. */
struct py_offsets {
    __u16 runtime_interp_head; /* _PyRuntimeState.interpreters.head */
    __u16 interp_tstate_head;  /* PyInterpreterState.tstate_head / threads.head */
    __u16 interp_next;
    __u16 tstate_next;
    __u16 tstate_native_tid; /* PyThreadState.native_thread_id (3.11+), else NONE */
    __u16 tstate_thread_id;  /* PyThreadState.thread_id: pthread_self(), the fs base */
    __u16 tstate_frame;      /* frame (<= 3.10), cframe (3.11, 3.12), current_frame (3.13) */
    __u16 cframe_current;    /* _PyCFrame.current_frame (3.11, 3.12), else NONE */
    __u16 frame_code;        /* f_code, f_executable (3.13) */
    __u16 frame_back;        /* f_back, previous */
    __u16 frame_instr;       /* f_lasti (int, <= 3.10), prev_instr / instr_ptr (3.11+) */
    __u16 frame_owner;       /* is_entry (3.11), owner (3.12+), else NONE */
    __u16 code_adaptive;     /* co_code_adaptive: the bytecode (3.11+) */
    __u8 minor;              /* 8 .. 13 */
    __u8 pad;
};

/* Value of `py_procs` (key: pid): a process running CPython. */
struct py_proc {
    __u64 runtime;           /* address of _PyRuntime */
    __u64 eval_lo, eval_len; /* _PyEval_EvalFrameDefault's code */
    struct py_offsets off;
};

#define STOKE_PY_OWNED_BY_CSTACK 3  /* 3.12+: the shim frame at a C -> Python entry */
#define STOKE_PY_MAX_THREADS     64 /* thread states searched for the sampled thread */

/*
 * A HotSpot frame in a user stack: the JVM's code cache (JIT-compiled
 * methods, the template interpreter, stubs) has no unwind tables and, without
 * -XX:+PreserveFramePointer, no frame pointers; the walker unwinds it from
 * the VM's own metadata (struct jvm_proc) and records each frame as
 *   interpreted: STOKE_JVM_TAG | (Method* >> 3) << 15 | bytecode index
 *   code:        STOKE_JVM_TAG | STOKE_JVM_CODE_BIT | cookie << 47 | pc
 * where code is a compiled method (nmethod) or a stub, and the cookie the
 * low 12 bits of the nmethod's compile id (0 for stubs), so the agent can
 * tell a method recompiled at the same address since. The agent names both
 * from the process's memory (method, inlined methods, line).
 */
#define STOKE_JVM_TAG      0xc000000000000000ull
#define STOKE_JVM_CODE_BIT (1ull << 59)
#define STOKE_JVM_INTERP(method, bci)                                                              \
    (STOKE_JVM_TAG | ((((__u64)(method) >> 3) & 0xfffffffffffull) << 15) | ((__u64)(bci)&0x7fff))
#define STOKE_JVM_CODE(pc, cookie)                                                                 \
    (STOKE_JVM_TAG | STOKE_JVM_CODE_BIT | (((__u64)(cookie)&0xfff) << 47) |                        \
     ((__u64)(pc)&0x7fffffffffffull))
#define STOKE_JVM_IS_CODE(f) (((f)&STOKE_JVM_CODE_BIT) != 0)
#define STOKE_JVM_METHOD(f)  ((((f) >> 15) & 0xfffffffffffull) << 3)
#define STOKE_JVM_BCI(f)     ((__u32)((f)&0x7fff))
#define STOKE_JVM_PC(f)      ((f)&0x7fffffffffffull)
#define STOKE_JVM_COOKIE(f)  ((__u32)(((f) >> 47) & 0xfff))

#define STOKE_JVM_MAX_HEAPS 4   /* code heaps: 3 with the segmented code cache, else 1 */
#define STOKE_JVM_HDR       192 /* bytes of a code blob's header the walker reads */

/* One code heap: its reserved range and its segment map, one byte per
 * segment saying how far back the block holding it starts. */
struct jvm_heap {
    __u64 lo, hi;
    __u64 segmap;
};

/* Value of `jvm_procs` (key: pid): a process running HotSpot. Offsets come
 * from the VM's own gHotSpotVMStructs tables (unwind/hotspot.c). */
struct jvm_proc {
    __u64 code_lo, code_hi;     /* CodeCache::_low_bound, _high_bound */
    __u64 interp_lo, interp_hi; /* the template interpreter's code */
    struct jvm_heap heaps[STOKE_JVM_MAX_HEAPS];
    __u8 nheaps;
    __u8 segment_shift;  /* log2 of the code heaps' segment size */
    __u8 heapblock_size; /* sizeof(HeapBlock): a block's header before its code blob */
    __u8 pad;
    /* offsets into a code blob, all < STOKE_JVM_HDR - 8 */
    __u16 blob_name, blob_frame_complete, blob_frame_size, blob_code_begin;
    __u16 nm_deopt_handler; /* CompiledMethod::_deopt_handler_begin */
    /* offsets into an nmethod, anywhere */
    __u16 nm_compile_id, nm_orig_pc_offset;
    __u16 method_const; /* Method::_constMethod */
    __u16 const_size;   /* sizeof(ConstMethod): the bytecodes follow it */
    __u16 pad2;
};

/*
 * A V8 (Node.js) JavaScript frame in a user stack: instead of the native pc
 * of JIT code or of an embedded builtin, the function's SharedFunctionInfo
 * (the JSFunction's, which moves less), as STOKE_V8_TAG | (sfi >> 3) << 16.
 * The low 16 bits are reserved (0). The agent names it (function, script,
 * line) from the process's memory. Frames whose context slot holds a
 * marker (entry, exit, stub and builtin frames) keep their native pc.
 */
#define STOKE_V8_TAG 0xb000000000000000ull
#define STOKE_V8_FRAME(sfi, extra)                                                                 \
    (STOKE_V8_TAG | ((((__u64)(sfi) >> 3) & 0xfffffffffffull) << 16) | ((__u64)(extra)&0xffff))
#define STOKE_V8_SFI(f) ((((f) >> 16) & 0xfffffffffffull) << 3) /* untagged */

/* Value of `v8_procs` (key: pid): where a process's V8 keeps what the
 * walker reads, from the binary's v8dbg_* metadata (unwind/v8.c). */
struct v8_proc {
    __s16 fp_context;                 /* off_fp_context: a Context, or a Smi frame-type marker */
    __s16 fp_function;                /* off_fp_function: the JSFunction of a JavaScript frame */
    __u16 obj_map;                    /* HeapObject::map */
    __u16 map_type;                   /* Map::instance_type (16 bits) */
    __u16 func_shared;                /* JSFunction::shared */
    __u16 type_func_lo, type_func_hi; /* instance types of JSFunction and its subclasses */
    __u16 pad;
};

/* Events the program sends the agent (ring buffer `events`). */
enum stoke_event_kind {
    STOKE_EV_NEW_PROC = 1, /* a sampled process has no unwind_procs entry */
    STOKE_EV_UNMAPPED = 2, /* a return address outside the known mappings (dlopen?) */
};
struct stoke_event {
    __u32 pid;
    __u32 kind;
};

/* Indexes of the per-CPU counters (map `errors`). */
enum stoke_counter {
    STOKE_CNT_SAMPLES = 0,  /* every sample the program saw */
    STOKE_CNT_IDLE,         /* samples of the idle task, skipped */
    STOKE_CNT_KSTACK_COLL,  /* kernel stack lost to a hash collision */
    STOKE_CNT_USTACK_COLL,  /* user stack lost to a hash collision */
    STOKE_CNT_KSTACK_ERR,   /* other kernel stack losses (map full, ...) */
    STOKE_CNT_USTACK_ERR,   /* other user stack losses */
    STOKE_CNT_MAP_FULL,     /* counts map full: sample dropped */
    STOKE_CNT_FILTERED,     /* not the requested pid */
    STOKE_CNT_FRAMES,       /* user frames walked */
    STOKE_CNT_FRAMES_TABLE, /* of which unwound by a table row */
    STOKE_CNT_FRAMES_FP,    /* of which unwound by frame pointers */
    STOKE_CNT_EVENTS,       /* events sent */
    STOKE_CNT_EVENTS_LOST,  /* events the ring buffer had no room for */
    STOKE_CNT_PY_SAMPLES,   /* user walks that met CPython's evaluation loop */
    STOKE_CNT_PY_FRAMES,    /* Python frames recorded */
    STOKE_CNT_PY_NO_THREAD, /* no thread state for the sampled thread: native frames kept */
    STOKE_CNT_PY_FAULT,     /* interpreter memory unreadable mid-walk: native frames kept */
    STOKE_CNT_JVM_SAMPLES,  /* user walks that met HotSpot's code cache */
    STOKE_CNT_JVM_FRAMES,   /* HotSpot frames recorded */
    STOKE_CNT_JVM_NO_BLOB,  /* a pc in the code cache in no code blob: the walk ends */
    STOKE_CNT_JVM_FAULT,  /* VM memory unreadable or a frame that does not add up: the walk ends */
    STOKE_CNT_V8_SAMPLES, /* user walks that recorded a JavaScript frame */
    STOKE_CNT_V8_FRAMES,  /* JavaScript frames recorded */
    STOKE_CNT_V8_MARKERS, /* V8 frames with a type marker (entry, exit, stub): native pc kept */
    STOKE_CNT_V8_NOT_JS,  /* frame-pointer frames of a V8 process with no JSFunction: kept */
    STOKE_CNT_WALK_END,   /* + enum stoke_walk_end: walks ended by reason */
    STOKE_CNT_MAX = STOKE_CNT_WALK_END + STOKE_END_MAX,
};

#endif
