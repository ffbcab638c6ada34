/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the /proc/PID/cgroup parser and checks the shape of what it finds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/procinfo.h"

static void check_hex(const char *s, size_t want_len)
{
    if (strlen(s) != want_len)
        abort();
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || *s == '-'))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path, *cid, *pod, *unit;
    int rc = procinfo_parse_cgroup((const char *)data, size, &path, &cid, &pod, &unit);

    if (rc != 0 && (path || cid || pod || unit))
        abort();
    if (cid)
        check_hex(cid, 64);
    if (pod && strlen(pod) != 32)
        check_hex(pod, 36);
    if (unit && (strlen(unit) <= 8 || strcmp(unit + strlen(unit) - 8, ".service") != 0))
        abort();
    free(path);
    free(cid);
    free(pod);
    free(unit);
    return 0;
}
