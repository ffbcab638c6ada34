/* SPDX-License-Identifier: Apache-2.0 */
/* Feeds arbitrary bytes to what an uploaded debug file goes through in a
 * query worker: the upload gate (sym_offline_check), then, as the worker
 * does for an object that passed, sym_offline_open (segments rebuilt,
 * symbol table, DWARF) and names of offsets, leaf and return address. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolizer/offline.h"

/* elfutils 0.188 dwarf_getscopes leaks 32 bytes on some malformed DIE
 * trees; that is libdw's, not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libdw.so\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char hex[41], buf[4096];
    const char *names[16];

    if (sym_offline_check(data, size, hex) != 0)
        return 0;
    if (strlen(hex) < 2 || strlen(hex) > 40)
        abort();
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    struct sym_offline *o;
    if (sym_offline_open(fd, NULL, 0, &o) != 0)
        return 0;
    for (uint64_t off = 0; off < 0x8000; off += 0x101)
        for (int ret = 0; ret < 2; ret++) {
            int n = sym_offline_names(o, off, ret, buf, sizeof(buf), names, 16);
            if (n > 16)
                abort();
            for (int i = 0; i < n; i++)
                if (names[i] < buf || names[i] >= buf + sizeof(buf))
                    abort();
        }
    sym_offline_free(o);
    return 0;
}
