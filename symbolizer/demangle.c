/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libiberty/demangle.h>

#include "symbolizer/demangle.h"

/* libiberty's legacy Rust demangler already hides the hash unless
 * DMGL_VERBOSE; this catches names where it did not (e.g. C++-demangled). */
static void strip_rust_hash(char *s)
{
    size_t n = strlen(s);
    if (n < 19)
        return;
    char *h = s + n - 19;
    if (h[0] != ':' || h[1] != ':' || h[2] != 'h')
        return;
    for (int i = 3; i < 19; i++) {
        char c = h[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return;
    }
    *h = '\0';
}

char *sym_demangle(const char *name)
{
    char *d;

    /* Everything libiberty handles starts with _Z (C++, Rust legacy) or _R
     * (Rust v0); the check keeps plain C names off the slow path. */
    if (name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
        return NULL;
    d = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
    if (d)
        strip_rust_hash(d);
    return d;
}
