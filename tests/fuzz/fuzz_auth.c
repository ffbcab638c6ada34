/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for query/serve/auth.c: any input, as a token file and as an
 * Authorization header value, is parsed or refused without harm; base64
 * decoding stays within its buffer and agrees with the header check. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct auth *fixed;
    struct auth *a = NULL;
    char err[256];
    uint8_t out[64];
    char *text;

    if (size > 8192)
        return 0;
    if (!fixed && auth_parse("tok\n tok2\r\n", 11, &fixed, err, sizeof(err)))
        abort();
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    auth_check(fixed, text);
    long n = base64_decode(text, size, out, sizeof(out));
    if (n > (long)sizeof(out) || (n >= 0 && (size_t)n > size))
        abort();
    if (auth_parse(text, size, &a, err, sizeof(err)) == 0) {
        if (!auth_count(a) || !auth_first(a))
            abort();
        auth_check(a, text);
        auth_free(a);
    } else if (a || err[0] == '\0') {
        abort(); /* every rejection names its problem */
    }
    free(text);
    return 0;
}
