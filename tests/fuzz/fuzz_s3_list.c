/* SPDX-License-Identifier: Apache-2.0 */
/* The ListObjectsV2 XML reader and the error-code reader: bodies straight
 * from the network. Checks the invariants callers rely on: every key is a
 * NUL-free string within the length bound, the token is freed on error. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_list l = {0};
    size_t cap = 0;
    int truncated = -1, rc;
    char *token = (char *)1, code[64];

    rc = s3_list_parse((const char *)data, size, &l, &cap, &truncated, &token);
    if (rc) {
        assert(token == NULL);
    } else {
        assert(truncated == 0 || truncated == 1);
        for (size_t i = 0; i < l.n; i++) {
            size_t n = strlen(l.keys[i]);
            assert(n > 0 && n <= STORE_KEY_MAX * 4);
        }
        free(token);
    }
    assert(l.n <= cap);
    store_list_free(&l);
    s3_error_code((const char *)data, size, code, sizeof(code));
    assert(strlen(code) < sizeof(code));
    return 0;
}
