/* SPDX-License-Identifier: Apache-2.0 */
/* A compactor lease's body (query/jobs/lease.c): any object under leases/
 * of the store, written by anyone. Checks what lease_acquire relies on: on
 * success the owner is a non-empty string without spaces that fits. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "query/jobs/lease.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char owner[LEASE_OWNER_MAX];
    int64_t expires;
    int rc = lease_parse(data, size, owner, sizeof(owner), &expires);

    assert(rc == 0 || rc == -EBADMSG);
    if (rc == 0) {
        size_t n = strlen(owner);
        assert(n > 0 && n < sizeof(owner) && !strchr(owner, ' ') && !strchr(owner, '\n'));
    }
    return 0;
}
