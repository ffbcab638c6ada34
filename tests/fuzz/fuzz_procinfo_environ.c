/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the service-name rules over a NUL-separated environ block. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/procinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *source = NULL;
    char *name = procinfo_service_from_environ((const char *)data, size, &source);

    if (name) {
        size_t n = strlen(name);
        /* a label value: non-empty, bounded, printable ASCII or UTF-8 bytes */
        if (n == 0 || n > 255 || !source)
            abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
                abort();
        free(name);
    } else if (source) {
        abort();
    }
    return 0;
}
