/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for what is read back from the bucket about recording
 * rules (query/engine/rule.c): a rule object decodes and validates or is
 * refused with a message, and the counters of the recorded object parse or
 * read as 0. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "query/engine/rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Settings__V1__RecordingRule *m = NULL;
    struct rule *r = NULL;
    char err[512];

    if (rule_decode(data, size, &r, &m, err, sizeof(err)) == 0) {
        if (!r->profile_type || !r->metric_name || !r->sel || !m)
            abort();
        rule_free(r);
        settings__v1__recording_rule__free_unpacked(m, NULL);
    }
    (void)rule_recorded_counter((const char *)data, size, RULE_COUNTER_SENT);
    (void)rule_recorded_counter((const char *)data, size, "x");
    return 0;
}
