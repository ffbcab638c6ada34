/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hotspot — internal: names the HotSpot frames the BPF walker records
 * (STOKE_JVM_INTERP: a Method* and bytecode index; STOKE_JVM_CODE: a pc in
 * the code cache and a compile-id cookie).
 *
 * Owns: one cache per process of the methods it has named (class and
 * method name, source file, line number table), of the compiled methods
 * (nmethods) it has read (their PcDescs, scopes and metadata: which
 * methods were inlined where), and of the answers per frame, all read from
 * the process's memory through the offsets of unwind/hotspot.h; and the
 * decoders of HotSpot's compressed streams (UNSIGNED5, the line number
 * table, the scope descriptors). Nothing read is trusted: lengths and
 * counts are capped, a chain of scopes must move backwards, a read that
 * fails or a string that is not one leaves the frame unnamed.
 */
#ifndef STOKE_SYM_HOTSPOT_H
#define STOKE_SYM_HOTSPOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "unwind/hotspot.h"

/* ---- decoders (exposed for tests and fuzzing) ---------------------------- */

/* One UNSIGNED5 number at *@pos of @buf (@x excluded bytes: 0 before JDK
 * 20, 1 from it); advances *@pos. -1 when the stream ends or is corrupt. */
int sym_jvm_u5(const uint8_t *buf, size_t n, size_t *pos, unsigned x, uint32_t *out);

/* The line of bytecode index @bci in a compressed line number table: the
 * entry with the largest bci at or before it. -1 when the table has none.
 * *@used (when not NULL) is how many bytes the table took, terminator
 * included, or 0 when @n bytes did not hold all of it. */
int sym_jvm_line(const uint8_t *tab, size_t n, unsigned x, uint32_t bci, size_t *used);

/* The chain of scopes at @off of a scopes_data stream, innermost first:
 * method indexes (into the nmethod's metadata, 1-based; 0 none) and
 * bytecode indexes (-1: the method's entry). Returns how many were
 * decoded (at most @max), or -1 when the stream is corrupt. */
int sym_jvm_scopes(const uint8_t *data, size_t n, unsigned x, uint32_t off, uint32_t *methods,
                   int32_t *bcis, int max);

/*
 * The scope decode offset for a pc at @off in a compiled method whose
 * @npcs PcDescs (@sz bytes each, pc and scope offsets at @opc and @osc,
 * sorted by pc) are at @pcs; -1 without one. A return address (@leaf
 * false) has its own PcDesc, at or after it. A leaf pc lies between two
 * safepoints and the VM records where neither is: HotSpot's own lookup
 * takes the next, right for code ahead of a safepoint (C2 ends a loop with
 * its poll); the code just past one (at most SYM_JVM_LEAF_AFTER bytes:
 * the tail of a C1 loop after its back-edge poll, the code after a call)
 * belongs with it, so that one is taken.
 */
#define SYM_JVM_LEAF_AFTER 32
int64_t sym_jvm_pc_scope(const uint8_t *pcs, size_t npcs, size_t sz, size_t opc, size_t osc,
                         int64_t off, bool leaf);

/* ---- naming -------------------------------------------------------------- */

#define SYM_JVM_MAX_INLINE 16 /* frames of one compiled pc: inlined methods + the method */

struct sym_jvm;

struct sym_jvm_frame {
    const char *function; /* "pkg.Class.method"; owned by the cache */
    const char *file;     /* "Class.java", or NULL */
    uint32_t line;        /* 0 when unknown */
};

/*
 * Names the frame @frame of process @pid whose libjvm, loaded at @bias,
 * @vm describes, through *@cache (created on first use): up to @max
 * frames, innermost first (a compiled method and the methods inlined into
 * it at that pc). @is_return: the pc is a return address (every frame but
 * the leaf). Returns the number of frames, or -ESRCH when the process is
 * gone, -EFAULT when its memory does not hold what the frame says,
 * -ESTALE for a compiled method recompiled since, -ENOMEM.
 * @bytes is incremented (or decremented) by what the cache grew.
 */
int sym_jvm_name(struct sym_jvm **cache, uint32_t pid, const struct hs_vm *vm, uint64_t bias,
                 uint64_t frame, bool is_return, struct sym_jvm_frame *out, int max, long *bytes);

void sym_jvm_free(struct sym_jvm *c);

#endif
