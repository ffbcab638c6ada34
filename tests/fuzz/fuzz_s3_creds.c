/* SPDX-License-Identifier: Apache-2.0 */
/* The AWS shared-credentials reader: a file on the host, as the user wrote
 * it. Checks what callers rely on: on success both keys are non-empty
 * strings without line breaks; on failure nothing is left allocated. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "store/backend.h"

static void one_line(const char *s)
{
    assert(s && *s && !strchr(s, '\n'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const profiles[] = {"default", "ci", "a b", ""};
    struct s3_creds c;

    if (size < 1)
        return 0;
    const char *profile = profiles[data[0] % 4];
    int rc = s3_creds_parse((const char *)data + 1, size - 1, profile, &c);
    if (rc == 0) {
        one_line(c.access_key);
        one_line(c.secret_key);
        if (c.session_token)
            one_line(c.session_token);
    } else {
        assert(rc == -ENOENT || rc == -ENOMEM);
        assert(!c.access_key && !c.secret_key && !c.session_token);
    }
    s3_creds_clear(&c);
    return 0;
}
