/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes procinfo_exe_name: the input is "LINK\0COMM\0CMDLINE..." — the
 * target of /proc/PID/exe, the task's comm (cut at 16 bytes, as stat
 * gives it) and the bytes of /proc/PID/cmdline, all untrusted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/procinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *end = in + size, *src = NULL;
    const char *nul = memchr(in, '\0', size);
    char link[4097], comm[17];
    size_t ll = nul ? (size_t)(nul - in) : size;

    if (ll >= sizeof(link))
        return 0;
    memcpy(link, in, ll);
    link[ll] = '\0';
    in = nul ? nul + 1 : end;
    nul = memchr(in, '\0', (size_t)(end - in));
    size_t cl = nul ? (size_t)(nul - in) : (size_t)(end - in);
    if (cl > 16)
        cl = 16;
    memcpy(comm, in, cl);
    comm[cl] = '\0';
    const char *cmd = nul ? nul + 1 : NULL;
    size_t cmd_len = cmd ? (size_t)(end - cmd) : 0;

    char *name = procinfo_exe_name(ll ? link : NULL, comm, cmd, cmd_len, &src);
    if (!name || !src)
        abort();
    /* a name comes from one of the three inputs and is bounded by it */
    if (strcmp(src, "executable") == 0) {
        if (link[0] != '/' || strlen(name) == 0 || strchr(name, '/') || !strstr(link, name))
            abort();
    } else if (strcmp(src, "cmdline") == 0) {
        if (strlen(name) == 0 || strlen(name) > 255 || strchr(name, '/'))
            abort();
        for (const char *p = name; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                abort();
    } else if (strcmp(src, "comm") != 0 || strcmp(name, comm) != 0) {
        abort();
    }
    free(name);
    return 0;
}
