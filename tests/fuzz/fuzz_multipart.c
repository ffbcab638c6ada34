/* SPDX-License-Identifier: Apache-2.0 */
/*
 * multipart/form-data (ingest/pyroscope_ingest.c): the input's first line
 * is the Content-Type, the rest the body. Every part must lie inside the
 * body.
 */
#include <stdlib.h>
#include <string.h>

#include "ingest/pyroscope_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    struct ingest_batch b = {0};
    struct multipart_part parts[MULTIPART_MAX_PARTS];
    size_t np = 0;
    char err[256];

    if (!nl || (size_t)(nl - data) > 256)
        return 0;
    char ct[260];
    memcpy(ct, data, (size_t)(nl - data));
    ct[nl - data] = '\0';
    const uint8_t *body = nl + 1;
    size_t len = size - (size_t)(body - data);
    if (multipart_parse(&b, ct, body, len, parts, &np, err, sizeof(err)) == 0) {
        if (np == 0 || np > MULTIPART_MAX_PARTS)
            abort();
        for (size_t i = 0; i < np; i++)
            if (parts[i].data < body || parts[i].data + parts[i].len > body + len ||
                !parts[i].name[0])
                abort();
    }
    ingest_batch_free(&b);
    return 0;
}
