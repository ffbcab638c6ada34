/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the /proc/PID/stat parser: comm between '(' and the last ')',
 * numeric fields up to 22. The input buffer is exactly @size bytes and not
 * NUL-terminated, so any overread trips ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/procinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char comm[17];
    uint64_t st, flags;

    if (procinfo_parse_stat_ex((const char *)data, size, comm, &st, &flags) == 0) {
        /* comm must be terminated within its 17 bytes */
        if (strnlen(comm, sizeof(comm)) >= sizeof(comm))
            abort();
    }
    return 0;
}
