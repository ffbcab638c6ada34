/* SPDX-License-Identifier: Apache-2.0 */
#include "common/errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static void verrmsg(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
}

void errmsg(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verrmsg(err, errlen, fmt, ap);
    va_end(ap);
}
