/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for prof_id_parse (query/engine/query.c), which reads the
 * profile ids of /api/v1 profile_id and Connect's profile_id_selector: any
 * input parses or is refused, and what parses formats back to the same id. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/engine/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct prof_id id, back;
    char buf[PROF_ID_LEN + 1];
    char *text;

    if (size > 4 * PROF_ID_LEN)
        return 0;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int rc = prof_id_parse(text, &id);
    if (rc == 0) {
        prof_id_format(&id, buf);
        if (prof_id_parse(buf, &back) != 0 || back.time_ms != id.time_ms || back.hash != id.hash ||
            strcasecmp(buf, text) != 0)
            abort(); /* a parsed id round-trips */
    } else if (rc != -EINVAL && rc != -ENOENT) {
        abort();
    }
    free(text);
    return 0;
}
