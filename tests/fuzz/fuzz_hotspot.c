/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HotSpot's compressed streams from untrusted process memory: the first
 * byte picks the decoder and UNSIGNED5's excluded bytes (JDK <= 19 or
 * 20+), the next two a bci or scope offset, the rest is the stream (a line
 * number table or scope data), or a PcDesc table (the pc offset looked up
 * and the PcDesc layout from the same two bytes). Must never read outside
 * it nor loop.
 */
#include <stdint.h>
#include <stdlib.h>

#include "symbolizer/hotspot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned x = data[0] & 1;
    uint32_t arg = (uint32_t)data[1] | (uint32_t)data[2] << 8;
    const uint8_t *s = data + 3;
    size_t n = size - 3, used = 0, pos = 0;
    uint32_t midx[SYM_JVM_MAX_INLINE], v;
    int32_t bcis[SYM_JVM_MAX_INLINE];

    switch ((data[0] >> 1) % 4) {
    case 0:
        if (sym_jvm_line(s, n, x, arg, &used) < -1 || used > n)
            abort();
        break;
    case 1: {
        int k = sym_jvm_scopes(s, n, x, arg, midx, bcis, SYM_JVM_MAX_INLINE);
        if (k < -1 || k > SYM_JVM_MAX_INLINE)
            abort();
        break;
    }
    case 2: {
        /* PcDescs of 4 to 35 bytes, their fields anywhere in them */
        size_t sz = 4 + (arg & 31), opc = (arg >> 5) & 31, osc = (arg >> 10) & 31;
        int64_t sc = sym_jvm_pc_scope(s, n / sz, sz, opc, osc, (int64_t)(arg & 0x3ff) - 1, x);
        if (sc < -1 || sc > INT32_MAX)
            abort();
        break;
    }
    default:
        while (pos < n && sym_jvm_u5(s, n, &pos, x, &v) == 0)
            if (pos > n)
                abort();
    }
    return 0;
}
