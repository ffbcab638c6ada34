/* SPDX-License-Identifier: Apache-2.0 */
/*
 * elf_symtab — internal: a binary's function symbols as one sorted array,
 * and the mapping from file offsets to ELF virtual addresses.
 *
 * Sources merged: .symtab, .dynsym and the MiniDebugInfo symtab
 * (.gnu_debugdata, an xz-compressed ELF as shipped by Fedora), plus those of
 * a separate debug file when one is added. Only defined STT_FUNC /
 * STT_GNU_IFUNC symbols are kept. After sym_symtab_finish() the array is
 * sorted by address with one entry per address, so a lookup is one binary
 * search. Names live in one string arena while symbols are added (offsets,
 * not pointers, so the arena may grow); finishing compresses them, when
 * they take 256 KB or more, with zstd, 64 names to a block in address order
 * (2-3x smaller: names are most of a large C++ library's table), and
 * sym_symtab_name() inflates one block on demand, keeping the last. All lengths come from libelf, which checks them
 * against the section data; nothing here reads the image directly.
 */
#ifndef STOKE_SYM_ELF_SYMTAB_H
#define STOKE_SYM_ELF_SYMTAB_H

#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sym_elf_sym {
    uint64_t addr;
    uint32_t size; /* clamped; 0 = unknown, bounded by the next symbol */
    uint32_t name; /* offset into strs; after finishing, the symbol's index
                      (read it with sym_symtab_name) */
};

struct sym_symtab {
    struct sym_elf_sym *syms;
    size_t n, cap;
    char *strs; /* the arena while adding (and if compressing failed) */
    size_t strs_len, strs_cap;
    /* after finishing: the compressed name blocks, blocks[i] their offsets
     * in z (blocks[nblocks] = z_len), and the last block inflated */
    uint8_t *z;
    size_t z_len;
    uint32_t *blocks;
    size_t nblocks;
    char *cur;
    size_t cur_len, cur_cap, cur_block;
};

struct sym_elf_seg {
    uint64_t offset, vaddr, filesz;
};

/* Adds the function symbols of @elf (including its .gnu_debugdata).
 * Returns the number added or a negative errno (-ENOMEM). */
int sym_symtab_add_elf(struct sym_symtab *t, Elf *elf);
/* The same, and when @mapped (@elf comes from elf_begin(ELF_C_READ_MMAP)
 * of a file, whose read-only mapping nothing writes) the file's pages are
 * handed back (MADV_DONTNEED) every 4096 symbols read. */
int sym_symtab_add_mapped_elf(struct sym_symtab *t, Elf *elf, bool mapped);
/* Sorts and drops duplicate addresses; call once after the last add. */
void sym_symtab_finish(struct sym_symtab *t);
/* The symbol containing @addr, or NULL. */
const struct sym_elf_sym *sym_symtab_find(const struct sym_symtab *t, uint64_t addr);
/* The name of @s (of @t): valid until the next call with @t. "" when it
 * cannot be read (out of memory, or corrupt). */
const char *sym_symtab_name(struct sym_symtab *t, const struct sym_elf_sym *s);
size_t sym_symtab_bytes(const struct sym_symtab *t);
void sym_symtab_free(struct sym_symtab *t);

/* True when @elf has a .debug_info (or compressed .zdebug_info) section. */
bool sym_elf_has_debug_info(Elf *elf);

/* Allocates *@segs with the PT_LOAD segments of @elf. Returns the count
 * (possibly 0) or a negative errno. */
int sym_elf_segments(Elf *elf, struct sym_elf_seg **segs);
/* File offset -> ELF vaddr through the segment containing it; 0 or -ENOENT. */
int sym_elf_off_to_vaddr(const struct sym_elf_seg *segs, int nsegs, uint64_t off, uint64_t *vaddr);

/* xz-decompresses @in into a malloc'ed buffer of at most @max bytes through
 * a dlopen'ed liblzma (as systemd does, so MiniDebugInfo stays optional).
 * 0, -ENOSYS without liblzma, -EFBIG, -EBADMSG on corrupt input. */
int sym_xz_decompress(const void *in, size_t in_len, size_t max, void **out, size_t *out_len);

#endif
