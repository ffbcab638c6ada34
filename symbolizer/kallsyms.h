/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kallsyms — internal: the kernel's text symbols (core kernel and modules)
 * from /proc/kallsyms, sorted by address.
 *
 * Only text symbols (t/T) are kept; a symbol covers addresses up to the next
 * one. When kptr_restrict hides addresses every line reads 0: the table is
 * then marked restricted and every lookup misses, so kernel frames stay
 * unresolved but counted. Lines that do not parse are skipped and counted.
 */
#ifndef STOKE_SYM_KALLSYMS_H
#define STOKE_SYM_KALLSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYM_KSYM_NO_MODULE UINT32_MAX

struct sym_ksym {
    uint64_t addr;
    uint32_t name;   /* offset into strs */
    uint32_t module; /* offset of "[name]" in strs, or SYM_KSYM_NO_MODULE */
};

struct sym_kallsyms {
    struct sym_ksym *syms;
    size_t n;
    char *strs;
    size_t strs_len;
    bool restricted; /* addresses were all zero */
    uint64_t bad_lines;
};

/* Parses @len bytes of kallsyms text into @k (which must be zeroed).
 * Returns 0 or -ENOMEM. */
int sym_kallsyms_parse(struct sym_kallsyms *k, const char *buf, size_t len);
/* Reads and parses @path. 0 or a negative errno. */
int sym_kallsyms_load(struct sym_kallsyms *k, const char *path);
const struct sym_ksym *sym_kallsyms_find(const struct sym_kallsyms *k, uint64_t addr);
size_t sym_kallsyms_bytes(const struct sym_kallsyms *k);
void sym_kallsyms_free(struct sym_kallsyms *k);

#endif
