/* SPDX-License-Identifier: Apache-2.0 */
/*
 * v8 — internal: names the JavaScript frames the BPF walker records
 * (STOKE_V8_FRAME: a SharedFunctionInfo's address).
 *
 * Owns: one cache per process of the functions it has named (name, script
 * name, line of the function's start) and of the scripts' line ends, read
 * from the process's memory through a reader (process_vm_readv in the
 * agent, a captured image in tests). The name is V8's debug name: the
 * function's own name, else the name V8 inferred for it ("obj.method"),
 * else "<anonymous>"; it is taken from the function's ScopeInfo (or its
 * name string before it is compiled). The line is the one of the function's
 * start position (the ScopeInfo's, or the UncompiledData's), counted in the
 * script's line_ends when V8 has computed them, else in its source (strings
 * up to 16 Mi characters; node's own modules, whose sources are external
 * strings, get no line).
 *
 * Nothing read is trusted: every object's type is checked by its map before
 * it is read as that type, lengths and string nesting are capped, a read
 * that fails or a value that does not fit leaves the frame unnamed. The
 * garbage collector moves objects: an entry is checked again (one read) the
 * first time it is used in each generation (the agent's drain window).
 */
#ifndef STOKE_SYM_V8_H
#define STOKE_SYM_V8_H

#include <stddef.h>
#include <stdint.h>

#include "unwind/v8.h"

/* Reads @len bytes at @addr of the process: 0, -ESRCH when it is gone,
 * -EFAULT when the memory is not there. */
struct sym_v8mem {
    int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
    void *ctx;
};

struct sym_v8cache;

struct sym_v8name {
    const char *function; /* owned by the cache */
    const char *file;     /* the script's name; NULL when unknown */
    int line;             /* of the function's start; 0 when unknown */
};

/*
 * Names the frame @frame (STOKE_V8_FRAME) through *@cache (created on
 * first use) in generation @gen. Returns 0, -ESRCH when the process is
 * gone, -EFAULT when its memory does not hold a SharedFunctionInfo there,
 * -ENOMEM. @bytes tracks what the cache holds (added to, or subtracted
 * from when it is reset).
 */
int sym_v8_name(struct sym_v8cache **cache, const struct v8_layout *l, const struct sym_v8mem *mem,
                uint64_t gen, uint64_t frame, struct sym_v8name *out, size_t *bytes);

void sym_v8cache_free(struct sym_v8cache *c);

/* The line (1-based) of source position @pos in a script whose line
 * terminators are at @ends (sorted); 0 when @pos is negative. */
int sym_v8_line(const uint32_t *ends, size_t n, int64_t pos);

#endif
