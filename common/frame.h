/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frame — what one sampled address resolves to: the symbolizer's answer
 * (symbolizer/symbolizer.h) and what the exporters build profiles from
 * (exporter/profile.h). Only the types live here, so the exporters need
 * nothing of the symbolizer.
 */
#ifndef STOKE_COMMON_FRAME_H
#define STOKE_COMMON_FRAME_H

#include <stdint.h>

#define SYM_MAX_FRAMES 16 /* inlined frames + the physical function */

/* One source-level frame. Strings are owned by the symbolizer and stay valid
 * until the next call into the same symbolizer: callers copy or intern them. */
struct sym_frame {
    const char *function; /* demangled name; never NULL when nframes > 0 */
    const char *file;     /* source file, NULL when unknown */
    uint32_t line;        /* 0 when unknown */
};

enum sym_kind {
    SYM_USER = 0,
    SYM_KERNEL = 1,
    SYM_JIT = 2, /* resolved from a perf map */
};

/*
 * The answer for one address. frames[0] is the innermost frame (a function
 * inlined at the address, if any); frames[nframes - 1] is the function the
 * machine code belongs to — the same order as pprof Location.line.
 */
struct sym_result {
    enum sym_kind kind;
    const char *mapping;  /* path of the mapped file as the process sees it,
                             "[vdso]", "[anon]", "[kernel.kallsyms]" or
                             "[module_name]"; never NULL */
    const char *build_id; /* lowercase hex; "" when unknown */
    uint64_t file_offset; /* user: the address as an offset into the mapped
                             file; kernel: the address itself */
    uint32_t nframes;     /* 0 = unresolved */
    struct sym_frame frames[SYM_MAX_FRAMES];
};

#endif
