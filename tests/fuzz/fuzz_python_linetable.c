/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CPython line tables from untrusted process memory: the first byte picks
 * the version (3.8-3.13), the next two the offset looked up, the rest is
 * the table. Must never read outside it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "symbolizer/python.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned minor = 8 + data[0] % 6;
    uint32_t off = (uint32_t)data[1] | (uint32_t)data[2] << 8;
    if (sym_py_line(minor, data + 3, size - 3, 1, off) < -1)
        abort(); /* -1 is "no line"; nothing lower exists */
    return 0;
}
