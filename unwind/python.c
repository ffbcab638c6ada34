/* SPDX-License-Identifier: Apache-2.0 */
/*
 * python — CPython's structure offsets and interpreter detection. See
 * python.h.
 */
#include <errno.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "unwind/python.h"

/* Hands back the pages of @elf's file mapping (see file_drop_pages). */
static void elf_drop_pages(Elf *elf)
{
    size_t len;
    const char *img = elf_rawfile(elf, &len);
    file_drop_pages(img, len);
}

#define N STOKE_PY_NONE

/* offsetof() against each version's headers: tests/data/python/offsets.c. */
static const struct py_version versions[] = {
    {.minor = 8,
     .bpf = {32, 8, 0, 8, N, 176, 24, N, 32, 24, 104, N, 0, 8, 0},
     .code_name = 112,
     .code_qualname = N,
     .code_filename = 104,
     .code_firstlineno = 40,
     .code_linetable = 120, /* co_lnotab */
     .unicode_state = 32,
     .unicode_length = 16,
     .unicode_ascii_data = 48,
     .unicode_compact_data = 72,
     .bytes_size = 16,
     .bytes_data = 32},
    {.minor = 9,
     .bpf = {32, 8, 0, 8, N, 176, 24, N, 32, 24, 104, N, 0, 9, 0},
     .code_name = 112,
     .code_qualname = N,
     .code_filename = 104,
     .code_firstlineno = 40,
     .code_linetable = 120, /* co_lnotab */
     .unicode_state = 32,
     .unicode_length = 16,
     .unicode_ascii_data = 48,
     .unicode_compact_data = 72,
     .bytes_size = 16,
     .bytes_data = 32},
    {.minor = 10,
     .bpf = {32, 8, 0, 8, N, 176, 24, N, 32, 24, 96, N, 0, 10, 0},
     .code_name = 112,
     .code_qualname = N,
     .code_filename = 104,
     .code_firstlineno = 40,
     .code_linetable = 120,
     .unicode_state = 32,
     .unicode_length = 16,
     .unicode_ascii_data = 48,
     .unicode_compact_data = 72,
     .bytes_size = 16,
     .bytes_data = 32},
    {.minor = 11,
     .bpf = {40, 16, 0, 8, 160, 152, 56, 8, 32, 48, 56, 68, 184, 11, 0},
     .code_name = 120,
     .code_qualname = 128,
     .code_filename = 112,
     .code_firstlineno = 72,
     .code_linetable = 136,
     .unicode_state = 32,
     .unicode_length = 16,
     .unicode_ascii_data = 48,
     .unicode_compact_data = 72,
     .bytes_size = 16,
     .bytes_data = 32},
    {.minor = 12,
     .bpf = {40, 72, 0, 8, 144, 136, 56, 0, 0, 8, 56, 70, 192, 12, 0},
     .code_name = 120,
     .code_qualname = 128,
     .code_filename = 112,
     .code_firstlineno = 68,
     .code_linetable = 136,
     .unicode_state = 32,
     .unicode_length = 16,
     .unicode_ascii_data = 40,
     .unicode_compact_data = 56,
     .bytes_size = 16,
     .bytes_data = 32},
    {.minor = 13,
     .bpf = {632, 7344, 7264, 8, 160, 152, 72, N, 0, 8, 56, 70, 200, 13, 0},
     .code_name = 120,
     .code_qualname = 128,
     .code_filename = 112,
     .code_firstlineno = 68,
     .code_linetable = 136,
     .unicode_state = 32,
     .unicode_length = 16,
     .unicode_ascii_data = 40,
     .unicode_compact_data = 56,
     .bytes_size = 16,
     .bytes_data = 32},
};

const struct py_version *py_version(unsigned minor)
{
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
        if (versions[i].minor == minor)
            return &versions[i];
    return NULL;
}

/* Reads @len bytes at ELF vaddr @vaddr from the section holding them. */
static bool read_vaddr(Elf *elf, uint64_t vaddr, void *out, size_t len)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;

    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        Elf_Data *d;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS || !(sh.sh_flags & SHF_ALLOC) ||
            vaddr < sh.sh_addr || vaddr - sh.sh_addr + len > sh.sh_size)
            continue;
        d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf || vaddr - sh.sh_addr + len > d->d_size)
            return false;
        memcpy(out, (const char *)d->d_buf + (vaddr - sh.sh_addr), len);
        return true;
    }
    return false;
}

/* "3.X" at @s (after a "python" prefix): X, or 0. */
static unsigned minor_after(const char *s)
{
    if (s[0] != '3' || s[1] != '.' || s[2] < '0' || s[2] > '9')
        return 0;
    unsigned m = (unsigned)(s[2] - '0');
    if (s[3] >= '0' && s[3] <= '9')
        m = m * 10 + (unsigned)(s[3] - '0');
    return m;
}

static unsigned minor_from_name(const char *name)
{
    const char *p = name ? strstr(name, "python") : NULL;
    return p ? minor_after(p + 6) : 0;
}

static unsigned minor_from_soname(Elf *elf)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;

    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
        for (size_t i = 0; d && i < n; i++) {
            GElf_Dyn dyn;
            if (!gelf_getdyn(d, (int)i, &dyn) || dyn.d_tag != DT_SONAME)
                continue;
            const char *so = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
            return minor_from_name(so);
        }
    }
    return 0;
}

#define PY_DROP_EVERY_SYMS 4096

int py_detect(Elf *elf, const char *path, struct py_runtime *out, bool mapped)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    uint64_t version_vaddr = 0;
    bool have_eval = false, have_runtime = false;

    memset(out, 0, sizeof(*out));
    for (int pass = 0; pass < 2 && !(have_eval && have_runtime); pass++) {
        Elf64_Word want = pass == 0 ? SHT_DYNSYM : SHT_SYMTAB;
        scn = NULL;
        while ((scn = elf_nextscn(elf, scn)) != NULL) {
            if (!gelf_getshdr(scn, &sh) || sh.sh_type != want || !sh.sh_entsize)
                continue;
            Elf_Data *d = elf_getdata(scn, NULL);
            size_t n = sh.sh_size / sh.sh_entsize;
            for (size_t i = 0; d && i < n; i++) {
                GElf_Sym sym;
                const char *name;
                if (mapped && i % PY_DROP_EVERY_SYMS == PY_DROP_EVERY_SYMS - 1)
                    elf_drop_pages(elf);
                if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
                    sym.st_value == 0 || !(name = elf_strptr(elf, sh.sh_link, sym.st_name)) ||
                    (name[0] != '_' && name[0] != 'P'))
                    continue;
                if (strcmp(name, "_PyEval_EvalFrameDefault") == 0) {
                    out->eval_vaddr = sym.st_value;
                    out->eval_size = sym.st_size;
                    have_eval = true;
                } else if (strcmp(name, "_PyRuntime") == 0) {
                    out->runtime_vaddr = sym.st_value;
                    have_runtime = true;
                } else if (strcmp(name, "Py_Version") == 0) {
                    version_vaddr = sym.st_value;
                }
            }
        }
    }
    if (mapped)
        elf_drop_pages(elf);
    if (!have_eval || !have_runtime || out->eval_size == 0)
        return -ENOENT;
    uint32_t hex;
    if (version_vaddr && read_vaddr(elf, version_vaddr, &hex, sizeof(hex)) && (hex >> 24) == 3)
        out->minor = (hex >> 16) & 0xff;
    if (!out->minor)
        out->minor = minor_from_soname(elf);
    if (!out->minor)
        out->minor = minor_from_name(path ? strrchr(path, '/') : NULL);
    return py_version(out->minor) ? 0 : -ENOTSUP;
}
