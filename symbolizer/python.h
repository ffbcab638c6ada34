/* SPDX-License-Identifier: Apache-2.0 */
/*
 * python — internal: names the CPython frames the BPF walker records
 * (STOKE_PY_FRAME: a code object's address and an instruction index).
 *
 * Owns: one cache per process of the code objects it has named (qualified
 * name, file, first line, line table), read from the process's memory
 * (process_vm_readv), and the decoders of the line tables of every version
 * (co_lnotab before 3.10, the PEP 626 table of 3.10, the location table of
 * 3.11+). Nothing read is trusted: lengths are capped, a read that fails or
 * a string that is not one leaves the frame unnamed.
 */
#ifndef STOKE_SYM_PYTHON_H
#define STOKE_SYM_PYTHON_H

#include <stddef.h>
#include <stdint.h>

#include "unwind/python.h"

struct sym_pycache;

/* The line of byte offset @off of a code object whose line table (for
 * CPython 3.@minor) is @tab and first line @firstlineno; -1 when the
 * table says the instruction has none. */
int sym_py_line(unsigned minor, const uint8_t *tab, size_t n, int firstlineno, uint32_t off);

/* The byte offset of the instruction index the walker records. */
uint32_t sym_py_offset(unsigned minor, uint32_t lasti);

struct sym_pyname {
    const char *function; /* owned by the cache */
    const char *file;
    int line; /* 0 when unknown */
};

/*
 * Names the frame @frame of process @pid running CPython @v, through
 * *@cache (created on first use). Returns 0, or -ESRCH when the process is
 * gone, -EFAULT when its memory does not hold a code object there.
 * @bytes is incremented by what the cache grew.
 */
int sym_py_name(struct sym_pycache **cache, uint32_t pid, const struct py_version *v,
                uint64_t frame, struct sym_pyname *out, size_t *bytes);

void sym_pycache_free(struct sym_pycache *c);

#endif
