/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kallsyms — internal: the kernel's text symbols (core kernel and modules)
 * from /proc/kallsyms, sorted by address.
 *
 * Only text symbols (t/T) are kept; a symbol covers addresses up to the next
 * one. When kptr_restrict hides addresses every line reads 0: the table is
 * then marked restricted and every lookup misses, so kernel frames stay
 * unresolved but counted. Lines that do not parse are skipped and counted.
 *
 * Kernels built with function padding (6.2+, x86) list a "__pfx_NAME" for
 * every function NAME, over the padding just before it: half of the
 * 120,000 text symbols. Such a pair is kept as one entry that remembers the
 * padding's size, and a lookup in the padding still answers "__pfx_NAME":
 * the table is 2.5 MB smaller and says the same.
 */
#ifndef STOKE_SYM_KALLSYMS_H
#define STOKE_SYM_KALLSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYM_KSYM_NO_MODULE UINT32_MAX
#define SYM_KSYM_NAME_BITS 27 /* name offsets; the bits above hold the padding size */
#define SYM_KSYM_NAME_MAX  512

struct sym_ksym {
    uint64_t addr;
    uint32_t name;   /* offset into strs (low SYM_KSYM_NAME_BITS bits), and the size
                        of the "__pfx_" padding just before addr (the rest) */
    uint32_t module; /* offset of "[name]" in strs, or SYM_KSYM_NO_MODULE */
};

struct sym_kallsyms {
    struct sym_ksym *syms;
    size_t n;
    char *strs;
    size_t strs_len;
    bool restricted; /* addresses were all zero */
    uint64_t bad_lines;
    char pfx_name[6 + SYM_KSYM_NAME_MAX + 1]; /* the last "__pfx_" name looked up */
};

/* What a lookup found. */
struct sym_ksym_hit {
    uint64_t addr;      /* where the symbol starts */
    const char *name;   /* valid until the next lookup or sym_kallsyms_free() */
    const char *module; /* "[name]", NULL for the core kernel */
};

/* Parses @len bytes of kallsyms text into @k (which must be zeroed).
 * Returns 0 or -ENOMEM. */
int sym_kallsyms_parse(struct sym_kallsyms *k, const char *buf, size_t len);
/* Reads and parses @path. 0 or a negative errno. */
int sym_kallsyms_load(struct sym_kallsyms *k, const char *path);
/* The symbol covering @addr: 0, or -ENOENT. */
int sym_kallsyms_lookup(struct sym_kallsyms *k, uint64_t addr, struct sym_ksym_hit *out);
size_t sym_kallsyms_bytes(const struct sym_kallsyms *k);
void sym_kallsyms_free(struct sym_kallsyms *k);

#endif
