/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>

#include "symbolizer/proc_maps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sym_map_line ml;
    const char *line = (const char *)data;
    if (sym_maps_parse_line(line, size, &ml) == 0) {
        if (ml.end <= ml.start || ml.path < line || ml.path + ml.path_len > line + size)
            abort();
    }
    return 0;
}
