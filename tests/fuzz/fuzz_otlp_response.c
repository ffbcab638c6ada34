/* SPDX-License-Identifier: Apache-2.0 */
/* What the push exporters read from the network: the OTLP
 * ExportProfilesServiceResponse body, the Retry-After header, and the status
 * policy. Checks the invariants the sender relies on: rejected >= 0, the
 * message NUL-terminated within its buffer and free of control characters,
 * Retry-After capped at 60 s. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "exporter/http_push.h"
#include "exporter/otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t rejected = -1;
    char msg[64];

    if (otlp_response_parse(data, size, &rejected, msg, sizeof(msg)) == 0) {
        assert(rejected >= 0);
        assert(memchr(msg, '\0', sizeof(msg)) != NULL);
        for (size_t i = 0; msg[i]; i++)
            assert((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f);
    }
    assert(http_retry_after_ms((const char *)data, size) <= 60000);
    if (size >= 2) {
        long status = (long)(data[0] | data[1] << 8) % 1000;
        enum push_verdict v = http_push_classify(status);
        assert(v == PUSH_DONE || v == PUSH_RETRY || v == PUSH_DROP);
        assert((v == PUSH_DONE) == (status >= 200 && status < 300));
        if (status == 413)
            assert(v == PUSH_DROP);
    }
    return 0;
}
