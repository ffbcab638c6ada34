/* SPDX-License-Identifier: Apache-2.0 */
#include "symbolizer/offline.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer/build_id.h"
#include "symbolizer/debuginfo.h"
#include "symbolizer/demangle.h"
#include "symbolizer/elf_symtab.h"

#define OFFLINE_MAX_FRAMES 16 /* SYM_MAX_FRAMES: inlined frames + the function */

int sym_frames_at(struct sym_symtab *t, struct sym_dwarf *dw, uint64_t vaddr,
                  struct sym_raw_frame *raw, int max)
{
    int n = 0;

    if (max < 1)
        return 0;
    if (dw && dw->dw)
        n = sym_dwarf_lookup(dw, vaddr, raw, max);
    const struct sym_elf_sym *sym = sym_symtab_find(t, vaddr);
    if (sym) {
        /* The symbol table names the physical function fully qualified;
         * DWARF's DW_AT_name may be just "method". */
        if (n == 0) {
            raw[0].file = NULL;
            raw[0].line = 0;
            n = 1;
        }
        raw[n - 1].name = sym_symtab_name(t, sym);
    }
    int w = 0;
    for (int i = 0; i < n; i++)
        if (raw[i].name && raw[i].name[0])
            raw[w++] = raw[i];
    return w;
}

int sym_offline_check(const void *buf, size_t len, char hex[41])
{
    size_t shnum;
    int rc = -ENOEXEC;

    hex[0] = '\0';
    if (!buf || len < 64)
        return -ENOEXEC;
    elf_version(EV_CURRENT);
    Elf *elf = elf_memory((char *)buf, len);
    if (!elf)
        return -ENOEXEC;
    GElf_Ehdr eh;
    if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) || elf_getshdrnum(elf, &shnum) != 0 ||
        shnum < 2)
        goto out;
    /* a whole file: its section headers, and every section with bytes,
     * inside it (libelf reads a truncated one without complaint until a
     * section is asked for) */
    if (eh.e_shoff > len || (uint64_t)shnum * eh.e_shentsize > len - eh.e_shoff)
        goto out;
    for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            goto out;
        if (sh.sh_type != SHT_NOBITS && (sh.sh_offset > len || sh.sh_size > len - sh.sh_offset))
            goto out;
    }
    rc = sym_elf_build_id(elf, hex) > 0 ? 0 : -ENODATA;
out:
    elf_end(elf);
    return rc;
}

struct sym_offline {
    struct sym_symtab symtab;
    struct sym_dwarf dwarf;
    bool has_dwarf;
    struct sym_elf_seg *segs;
    int nsegs;
};

/* The PT_LOAD segments of @elf with the file offsets the binary had: a
 * debug file's segments hold no bytes and their offsets were rewritten,
 * so they are rebuilt from the addresses (see offline.h). */
static int load_segments(Elf *elf, struct sym_offline *o)
{
    size_t phnum;
    bool rebuild = false;
    int n = 0;

    if (elf_getphdrnum(elf, &phnum) != 0 || phnum == 0)
        return 0;
    if (phnum > 4096)
        phnum = 4096;
    o->segs = calloc(phnum, sizeof(*o->segs));
    uint64_t *memsz = calloc(phnum, sizeof(*memsz)), *align = calloc(phnum, sizeof(*align));
    if (!o->segs || !memsz || !align) {
        free(memsz);
        free(align);
        return -ENOMEM;
    }
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        if (ph.p_filesz == 0 && ph.p_memsz > 0 && (ph.p_flags & PF_X))
            rebuild = true;
        o->segs[n] = (struct sym_elf_seg){ph.p_offset, ph.p_vaddr, ph.p_filesz};
        memsz[n] = ph.p_memsz;
        align[n] = ph.p_align > 1 && (ph.p_align & (ph.p_align - 1)) == 0 ? ph.p_align : 1;
        n++;
    }
    if (rebuild) {
        uint64_t end = 0;
        for (int i = 0; i < n; i++) {
            uint64_t a = align[i], want = o->segs[i].vaddr & (a - 1);
            uint64_t off = (end & ~(a - 1)) | want;
            if (off < end)
                off += a;
            o->segs[i].offset = off;
            o->segs[i].filesz = memsz[i];
            end = off + memsz[i];
        }
    }
    free(memsz);
    free(align);
    o->nsegs = n;
    return n;
}

int sym_offline_open(int fd, const char *scratch_dir, size_t scratch_max, struct sym_offline **out)
{
    struct sym_offline *o = calloc(1, sizeof(*o));
    int rc = -ENOEXEC;

    *out = NULL;
    if (!o) {
        close(fd);
        return -ENOMEM;
    }
    o->dwarf.scratch_fd = -1;
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (!elf || elf_kind(elf) != ELF_K_ELF)
        goto fail;
    if ((rc = load_segments(elf, o)) < 0)
        goto fail;
    if (sym_symtab_add_mapped_elf(&o->symtab, elf, true) < 0) {
        rc = -ENOMEM;
        goto fail;
    }
    sym_symtab_finish(&o->symtab);
    bool dwarf = sym_elf_has_debug_info(elf);
    elf_end(elf);
    elf = NULL;
    if (dwarf) {
        struct sym_dwarf_scratch sc = {.dir = scratch_dir, .max_bytes = scratch_max};
        int dfd = dup(fd);
        if (dfd >= 0 && sym_dwarf_open(dfd, &sc, &o->dwarf) == 0)
            o->has_dwarf = true;
    }
    close(fd);
    *out = o;
    return 0;
fail:
    if (elf)
        elf_end(elf);
    close(fd);
    sym_offline_free(o);
    return rc;
}

void sym_offline_free(struct sym_offline *o)
{
    if (!o)
        return;
    sym_symtab_free(&o->symtab);
    if (o->has_dwarf)
        sym_dwarf_close(&o->dwarf);
    else if (o->dwarf.scratch_fd >= 0)
        close(o->dwarf.scratch_fd);
    free(o->segs);
    free(o);
}

int sym_offline_segments(const struct sym_offline *o, const struct sym_elf_seg **segs)
{
    *segs = o->segs;
    return o->nsegs;
}

size_t sym_offline_bytes(const struct sym_offline *o)
{
    return sizeof(*o) + sym_symtab_bytes(&o->symtab) + (o->has_dwarf ? o->dwarf.est_bytes : 0) +
           (size_t)o->nsegs * sizeof(*o->segs);
}

int sym_offline_names(struct sym_offline *o, uint64_t off, bool is_return, char *buf, size_t buflen,
                      const char **names, int max)
{
    struct sym_raw_frame raw[OFFLINE_MAX_FRAMES];
    uint64_t vaddr;
    size_t used = 0;

    if (is_return && off > 0)
        off--;
    if (sym_elf_off_to_vaddr(o->segs, o->nsegs, off, &vaddr))
        return 0;
    if (max > OFFLINE_MAX_FRAMES)
        max = OFFLINE_MAX_FRAMES;
    int n = sym_frames_at(&o->symtab, o->has_dwarf ? &o->dwarf : NULL, vaddr, raw, max);
    for (int i = 0; i < n; i++) {
        char *dem = sym_demangle(raw[i].name);
        const char *s = dem ? dem : raw[i].name;
        /* A symbol table's exported names carry their version
         * ("localeconv@@GLIBC_2.2.5"); on the host the stripped binary's
         * .dynsym names them without it, and wins the tie. */
        const char *at = dem ? NULL : strchr(s, '@');
        size_t l = (at && at > s ? (size_t)(at - s) : strlen(s)) + 1;
        if (used + l > buflen) {
            free(dem);
            return -ENOSPC;
        }
        memcpy(buf + used, s, l - 1);
        buf[used + l - 1] = '\0';
        names[i] = buf + used;
        used += l;
        free(dem);
    }
    return n;
}
