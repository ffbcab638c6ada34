/* SPDX-License-Identifier: Apache-2.0 */
/*
 * python — what the walker and the symbolizer need to know about CPython.
 *
 * Owns: the structure offsets of CPython 3.8 to 3.13 (one table per minor
 * version: what the BPF walker reads to find the sampled thread's frames,
 * and what the agent reads to name a code object), and the detection of a
 * binary that holds the interpreter (an executable like Debian's python3,
 * or libpython3.X.so): its version, _PyRuntime and _PyEval_EvalFrameDefault.
 *
 * The offsets were computed with offsetof() against each version's own
 * headers, internal ones included (tests/data/python/offsets.c: pyenv's 3.8.18,
 * 3.9.18, 3.10.13, 3.11.7, 3.12.1, 3.13.0 and Debian 12's 3.11.2). They hold
 * for every patch release of a minor version on x86-64 (CPython keeps these
 * structures' layout within one).
 */
#ifndef STOKE_UNWIND_PYTHON_H
#define STOKE_UNWIND_PYTHON_H

#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/types.h>
#include "bpf/profile.h"

struct py_version {
    unsigned minor;
    struct py_offsets bpf; /* what the walker reads */
    /* what the agent reads to name a code object */
    uint16_t code_name, code_qualname, code_filename, code_firstlineno, code_linetable;
    uint16_t unicode_state, unicode_length, unicode_ascii_data, unicode_compact_data;
    uint16_t bytes_size, bytes_data;
};

/* The table of CPython 3.@minor, or NULL when not known. */
const struct py_version *py_version(unsigned minor);

/* A binary that holds CPython's evaluation loop. Addresses are ELF
 * virtual addresses; minor is 0 when the version could not be told. */
struct py_runtime {
    unsigned minor;
    uint64_t runtime_vaddr;         /* _PyRuntime */
    uint64_t eval_vaddr, eval_size; /* _PyEval_EvalFrameDefault */
};

/*
 * Looks for the interpreter in @elf (.dynsym, then .symtab). The version
 * comes from Py_Version (3.11+), else from the DT_SONAME (libpython3.X) or
 * the file name @path (python3.X). Returns 0, -ENOENT when @elf holds no
 * interpreter, -ENOTSUP when it does but its version is not 3.8 - 3.13.
 * When @mapped (@elf is elf_begin(ELF_C_READ_MMAP) of a file), the file's
 * pages are handed back every 4096 symbols and at the end: an unstripped
 * binary's symbol and string tables (13 MB of node's) would otherwise all
 * be resident in the agent while they are scanned.
 */
int py_detect(Elf *elf, const char *path, struct py_runtime *out, bool mapped);

#endif
