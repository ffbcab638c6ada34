/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proc_mem — reads another process's memory (process_vm_readv): what the
 * runtimes' frames are named from (CPython code objects, HotSpot methods, V8
 * functions). A read is whole or fails; nothing read is trusted by the
 * callers.
 */
#ifndef STOKE_SYM_PROC_MEM_H
#define STOKE_SYM_PROC_MEM_H

#include <stddef.h>
#include <stdint.h>

/* Reads @len bytes at @addr of process @pid: 0, -ESRCH when the process is
 * gone, -EFAULT when the memory is not there (or not readable). */
int sym_proc_read(uint32_t pid, uint64_t addr, void *buf, size_t len);

/* The same as a reader callback (unwind/hotspot.h's hs_read_fn,
 * symbolizer/v8.h's struct sym_v8mem): @ctx points at the pid, a uint32_t. */
int sym_proc_read_cb(void *ctx, uint64_t addr, void *buf, size_t len);

#endif
