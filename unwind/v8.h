/* SPDX-License-Identifier: Apache-2.0 */
/*
 * v8 — what the walker and the symbolizer need to know about V8 (Node.js).
 *
 * Owns: the detection of a binary that holds V8 (node, libnode.so) and its
 * layout, read from the binary's own post-mortem metadata: the v8dbg_*
 * data symbols V8's build emits for debuggers (llnode, mdb_v8), each an int
 * holding a frame offset, a field offset, an instance type or a tag. Field
 * offsets are found by class and field name whatever type suffix a version
 * gives them (`__Object`, `__Tagged_Object_`, ...), so Node 18 (V8 10.2),
 * 20 (11.3) and 22 (12.4) are read by the same code; the V8 version
 * (v8::internal::Version) only decides the ScopeInfo layout, which has no
 * metadata. Only the x86-64 layout without pointer compression (8-byte
 * tagged values, 32-bit Smis in the upper half: every Node.js release) is
 * supported; anything else is refused with -ENOTSUP.
 */
#ifndef STOKE_UNWIND_V8_H
#define STOKE_UNWIND_V8_H

#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>
#include "bpf/profile.h"

#define V8_VERSION(major, minor, build)                                                            \
    ((uint32_t)(major) << 24 | (uint32_t)(minor) << 16 | (build))

/* Where V8 keeps what the agent reads to name a SharedFunctionInfo: field
 * offsets from the object's start (the tagged pointer - 1). */
struct v8_layout {
    uint32_t version;   /* V8_VERSION(), 0 when the binary does not say */
    struct v8_proc bpf; /* what the walker reads */
    /* instance types */
    uint16_t type_sfi, type_scope_info, type_script, type_fixed_array, first_nonstring;
    uint16_t type_uncompiled_lo, type_uncompiled_hi; /* UncompiledData*; lo > hi: none */
    /* string instance type bits */
    uint16_t str_repr_mask, str_enc_mask, str_one_byte, str_seq, str_cons, str_thin, str_sliced;
    /* fields */
    uint16_t sfi_data, sfi_name, sfi_script; /* function_data, name_or_scope_info, script */
    uint16_t script_name, script_source, script_line_ends;
    uint16_t str_length, seq_one_chars, seq_two_chars;
    uint16_t cons_first, cons_second, thin_actual, sliced_parent, sliced_offset;
    uint16_t fixed_length, fixed_data;
    uint16_t uncompiled_name, uncompiled_start; /* inferred_name, start_position */
};

/*
 * Looks for V8's metadata in @elf (.dynsym, then .symtab). Returns 0 with
 * @out filled, -ENOENT when @elf holds no V8, -ENOTSUP when it does but
 * its metadata lacks what the walker needs or describes a layout it cannot
 * read (pointer compression). @mapped as for uw_elf_syms.
 */
int v8_detect(Elf *elf, struct v8_layout *out, bool mapped);

#endif
