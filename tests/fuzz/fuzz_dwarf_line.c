/* SPDX-License-Identifier: Apache-2.0 */
/* Feeds arbitrary bytes to the line reader (as a .debug_line section whose
 * last quarter doubles as .debug_line_str and .debug_str), and to the
 * inflating copy of compressed debug sections (as an ELF image). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolizer/debuginfo.h"
#include "symbolizer/dwarf_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode & 1) {
        /* an ELF image: at most 16 MB out, into a memfd */
        int fd = memfd_create("fuzz", MFD_CLOEXEC);
        if (fd >= 0) {
            sym_dwarf_inflate_copy(data, size, fd, 16u << 20, false);
            close(fd);
        }
        return 0;
    }
    uint8_t *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct sym_line_secs s = {
        .line = buf,
        .line_len = size,
        .line_str = buf + size - size / 4,
        .line_str_len = size / 4,
        .str = buf + size / 2,
        .str_len = size - size / 2,
    };
    unsigned asz = (mode & 2) ? 4 : 8;
    const char *comp_dir = (mode & 4) ? "/build" : NULL;
    uint64_t off = (mode >> 3) < size ? (mode >> 3) : 0;
    struct sym_line_unit u;
    if (sym_line_unit_parse(&u, &s, off, comp_dir, asz) == 0) {
        uint64_t file;
        int line;
        for (uint64_t a = 0; a < 0x2000; a += 0x111)
            if (sym_line_find(&u, a, &file, &line) > 0 && !sym_line_path(&u, file) &&
                file < u.nfiles && u.files[file].dir != SYM_LINE_NO_DIR &&
                u.files[file].dir >= u.ndirs)
                abort(); /* a file's directory is always in range */
        for (uint64_t k = 0; k < 8; k++)
            sym_line_path(&u, k);
        sym_line_unit_free(&u);
    }
    free(buf);
    return 0;
}
