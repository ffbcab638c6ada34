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

#include "unwind/elf_syms.h"
#include "unwind/python.h"

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

struct py_scan {
    struct py_runtime *out;
    uint64_t version_vaddr;
    bool have_eval, have_runtime;
};

static int py_take_sym(void *ctx, const char *name, const GElf_Sym *sym)
{
    struct py_scan *c = ctx;

    if (sym->st_value == 0 || (name[0] != '_' && name[0] != 'P'))
        return 0;
    if (strcmp(name, "_PyEval_EvalFrameDefault") == 0) {
        c->out->eval_vaddr = sym->st_value;
        c->out->eval_size = sym->st_size;
        c->have_eval = true;
    } else if (strcmp(name, "_PyRuntime") == 0) {
        c->out->runtime_vaddr = sym->st_value;
        c->have_runtime = true;
    } else if (strcmp(name, "Py_Version") == 0) {
        c->version_vaddr = sym->st_value;
    }
    return 0;
}

int py_detect(Elf *elf, const char *path, struct py_runtime *out, bool mapped)
{
    struct py_scan c = {.out = out};

    memset(out, 0, sizeof(*out));
    uw_elf_syms(elf, SHT_DYNSYM, mapped, py_take_sym, &c);
    if (!c.have_eval || !c.have_runtime)
        uw_elf_syms(elf, SHT_SYMTAB, mapped, py_take_sym, &c);
    if (!c.have_eval || !c.have_runtime || out->eval_size == 0)
        return -ENOENT;
    uint32_t hex;
    if (c.version_vaddr && uw_elf_read_vaddr(elf, c.version_vaddr, &hex, sizeof(hex)) &&
        (hex >> 24) == 3)
        out->minor = (hex >> 16) & 0xff;
    if (!out->minor)
        out->minor = minor_from_soname(elf);
    if (!out->minor)
        out->minor = minor_from_name(path ? strrchr(path, '/') : NULL);
    return py_version(out->minor) ? 0 : -ENOTSUP;
}
