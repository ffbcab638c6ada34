/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for query/engine/selector.c: any input parses or fails with a
 * message, and a parsed selector matches a small label set without harm. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/engine/selector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[] = {"service_name", "host_name", "a", ""};
    static const char *values[] = {"api", "h1", "xyz", ""};
    struct selector *s = NULL;
    char err[256];
    char *text;

    if (size > SELECTOR_MAX_LEN + 16)
        return 0;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (selector_parse(text, &s, err, sizeof(err)) == 0) {
        selector_match_labels(s, names, values, 4);
        for (size_t i = 0; i < s->n; i++)
            sel_matcher_match(&s->m[i], values[i % 4]);
        selector_free(s);
    } else if (err[0] == '\0') {
        abort(); /* every rejection names its problem */
    }
    free(text);
    return 0;
}
