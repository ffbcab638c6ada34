/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the group keys of query/engine/query.c: any bytes
 * split into 1..4 values or fail with -EINVAL, and values re-joined split
 * back to themselves; the first input byte picks the count. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "query/engine/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char **v = NULL, **w = NULL, *key;
    uint32_t n;
    int rc;

    if (size < 1 || size > 4096)
        return 0;
    n = data[0] % 5; /* 0 is rejected */
    key = malloc(size);
    if (!key)
        return 0;
    memcpy(key, data + 1, size - 1);
    key[size - 1] = '\0';
    rc = query_group_key_split(key, n, &v);
    if (rc == 0) {
        struct wbuf b = {0};
        for (uint32_t k = 0; k < n; k++)
            query_group_key_append(&b, v[k], k == 0);
        wb_bytes(&b, "", 1);
        if (b.err || query_group_key_split(b.s, n, &w))
            abort(); /* a key made of values splits back */
        for (uint32_t k = 0; k < n; k++)
            if (strcmp(v[k], w[k]))
                abort();
        free(w);
        free(v);
        free(b.p);
    } else if (rc != -EINVAL && rc != -ENOMEM) {
        abort();
    }
    free(key);
    return 0;
}
