/* SPDX-License-Identifier: Apache-2.0 */
/* elf_syms — a binary's symbols and variables. See elf_syms.h. */
#include <string.h>

#include "common/file.h"
#include "unwind/elf_syms.h"

/* Every this many symbols of a mapped file, its pages are handed back
 * (libLLVM's .dynsym is 800 KB, node's tables 13 MB). */
#define DROP_EVERY_SYMS 4096

void uw_elf_drop_pages(Elf *elf)
{
    size_t len;
    const char *img = elf_rawfile(elf, &len);
    file_drop_pages(img, len);
}

int uw_elf_syms(Elf *elf, Elf64_Word type, bool mapped, uw_sym_fn fn, void *ctx)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    int r = 0;

    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t n = sh.sh_size / sh.sh_entsize;
        for (size_t i = 0; d && i < n; i++) {
            GElf_Sym sym;
            const char *name;
            if (mapped && i % DROP_EVERY_SYMS == DROP_EVERY_SYMS - 1)
                uw_elf_drop_pages(elf);
            if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
                !(name = elf_strptr(elf, sh.sh_link, sym.st_name)))
                continue;
            r = fn(ctx, name, &sym);
            if (r < 0)
                goto out;
        }
    }
    r = 0;
out:
    if (mapped)
        uw_elf_drop_pages(elf);
    return r;
}

bool uw_elf_read_vaddr(Elf *elf, uint64_t vaddr, void *out, size_t len)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;

    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) || vaddr < sh.sh_addr ||
            len > sh.sh_size || vaddr - sh.sh_addr > sh.sh_size - len)
            continue;
        if (sh.sh_type == SHT_NOBITS) {
            memset(out, 0, len);
            return true;
        }
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf || len > d->d_size || vaddr - sh.sh_addr > d->d_size - len)
            return false;
        memcpy(out, (const char *)d->d_buf + (vaddr - sh.sh_addr), len);
        return true;
    }
    return false;
}
