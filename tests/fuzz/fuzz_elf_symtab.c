/* SPDX-License-Identifier: Apache-2.0 */
/* Feeds arbitrary bytes to the ELF symbol-table, PT_LOAD, build-id and DWARF
 * loaders, as if they were a mapped binary. */
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolizer/build_id.h"
#include "symbolizer/debuginfo.h"
#include "symbolizer/elf_symtab.h"

/* elfutils 0.188 dwarf_getscopes leaks 32 bytes on some malformed DIE
 * trees; that is libdw's, not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libdw.so\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char hex[41];
    if (elf_version(EV_CURRENT) == EV_NONE || size == 0)
        return 0;
    char *img = malloc(size);
    if (!img)
        return 0;
    memcpy(img, data, size);
    Elf *elf = elf_memory(img, size);
    if (elf && elf_kind(elf) == ELF_K_ELF) {
        struct sym_symtab t = {0};
        struct sym_elf_seg *segs;
        sym_symtab_add_elf(&t, elf);
        sym_symtab_finish(&t);
        for (size_t i = 0; i < t.n; i++) {
            const struct sym_elf_sym *s = sym_symtab_find(&t, t.syms[i].addr + i);
            const char *nm = s ? sym_symtab_name(&t, s) : "";
            if (!nm || strnlen(nm, 5000) > 4096)
                abort(); /* names are cut at 4096 bytes */
        }
        int n = sym_elf_segments(elf, &segs);
        uint64_t v;
        for (uint64_t off = 0; n > 0 && off < 0x4000; off += 0x333)
            sym_elf_off_to_vaddr(segs, n, off, &v);
        free(segs);
        sym_elf_build_id(elf, hex);
        sym_symtab_free(&t);
    }
    if (elf)
        elf_end(elf);
    free(img);

    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd >= 0 && write(fd, data, size) == (ssize_t)size) {
        struct sym_dwarf d;
        if (sym_dwarf_open(fd, NULL, &d) == 0) {
            struct sym_raw_frame f[16];
            for (uint64_t a = 0; a < 0x3000; a += 0x101)
                sym_dwarf_lookup(&d, a, f, 16);
            sym_dwarf_close(&d);
        }
    } else if (fd >= 0) {
        close(fd);
    }
    return 0;
}
