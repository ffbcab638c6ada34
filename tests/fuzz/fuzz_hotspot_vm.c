/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HotSpot's introspection tables (gHotSpotVMStructs/Types) and code cache
 * as read from untrusted process memory: the input is the memory, mapped
 * at BASE and followed by zeros to BASE + SPAN (the reader reads whole
 * pages); the tables' symbols are its first eleven words' addresses. The
 * seed (tests/fuzz/corpus/fuzz_hotspot_vm, gen_seed.py) is a whole VM.
 * hs_read_vm and then hs_read_proc must answer (0 or an errno) without
 * reading outside it, crashing or looping.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unwind/hotspot.h"

#define BASE 0x10000ull
#define SPAN 0x10000ull

struct image {
    const uint8_t *p;
    size_t n;
};

static int rd(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct image *m = ctx;
    if (addr < BASE || addr - BASE > SPAN || len > SPAN - (addr - BASE))
        return -EFAULT;
    uint64_t off = addr - BASE;
    size_t have = off < m->n ? m->n - (size_t)off : 0;
    if (have > len)
        have = len;
    memcpy(buf, m->p + off, have);
    memset((uint8_t *)buf + have, 0, len - have);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct image m = {data, size};
    struct hs_syms sy = {
        BASE,      BASE + 8,  BASE + 16, BASE + 24, BASE + 32, BASE + 40,
        BASE + 48, BASE + 56, BASE + 64, BASE + 72, BASE + 80,
    };
    struct hs_vm *vm = malloc(sizeof(*vm));
    struct jvm_proc jp;
    int missing;

    if (!vm)
        return 0;
    int r = hs_read_vm(&sy, 0, rd, &m, vm, &missing);
    if (r > 0 || missing >= HS_NFIELDS + 1)
        abort();
    if (r == 0 && hs_read_proc(vm, 0, rd, &m, &jp) > 0)
        abort();
    free(vm);
    return 0;
}
