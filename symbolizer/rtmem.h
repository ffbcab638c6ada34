/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rtmem — internal: what the namers of interpreted and JIT code
 * (symbolizer/python.c, symbolizer/v8.c) share: reading another process's
 * memory, and writing the UTF-8 of the strings they decode from it.
 *
 * Owns nothing: two stateless functions.
 */
#ifndef STOKE_SYM_RTMEM_H
#define STOKE_SYM_RTMEM_H

#include <stddef.h>
#include <stdint.h>

/* Reads @len bytes at @addr of process @pid (process_vm_readv): 0, -ESRCH
 * when the process is gone, -EFAULT when the memory is not all there. */
int sym_proc_read(uint32_t pid, uint64_t addr, void *buf, size_t len);

/* Writes code point @c as UTF-8 at @o (room for 4 bytes) and returns the
 * bytes written; a code point above U+10FFFF is written as U+FFFD. */
size_t sym_put_utf8(char *o, uint32_t c);

#endif
