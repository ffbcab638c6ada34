/* SPDX-License-Identifier: Apache-2.0 */
/* log — see log.h. Lines are written with one fprintf so concurrent
 * threads never interleave within a line. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

static enum log_level current = LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    current = level;
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool log_level_enabled(enum log_level level)
{
    return level <= current;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (!log_level_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* Quotes inside the message would break the key=value format. */
    for (char *p = buf; *p; p++)
        if (*p == '"' || *p == '\n')
            *p = '\'';
    fprintf(stderr, "stoke-agent level=%s msg=\"%s\"\n", names[level], buf);
}
