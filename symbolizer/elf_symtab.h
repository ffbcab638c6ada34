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
 * search. Names are read in two passes: adding records where each name is
 * in its file's string table, and finishing (while those files are still
 * open) copies only the kept symbols' names in address order, into an
 * arena of their exact size, or, once the string tables reach 256 KB,
 * zstd-compressed 64 to a block (names are most of a large C++ library's
 * table: libLLVM's 3 MB become 1.1 MB, and its raw names are never all in
 * the heap); sym_symtab_name() inflates one block on demand, keeping the
 * last. All lengths come from libelf, which checks them
 * against the section data; nothing here reads the image directly. PLT
 * stubs get made-up names, "function@plt", from their GOT slots' dynamic
 * relocations (x86-64).
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
    uint32_t name; /* read it with sym_symtab_name(): an offset into strs, or the
                      name's index in the blocks (while adding: the symbol's
                      order of adding, its name in raw[]) */
};

#define SYM_SRC_MAX        8 /* string tables a table may point into while adding */
#define SYM_NAME_SRC_SHIFT 29
#define SYM_NAME_OFF_MASK  ((1u << SYM_NAME_SRC_SHIFT) - 1)
#define SYM_NAME_NONE      UINT32_MAX /* no name could be kept (out of memory) */

struct sym_strsrc {
    const char *data; /* a string table of an ELF file still open */
    size_t len;
    const char *map; /* that file's read-only mapping, or NULL */
    size_t map_len;
};

struct sym_symtab {
    struct sym_elf_sym *syms;
    size_t n, cap;
    char *strs; /* small tables: the names, one arena (also names copied while
                   adding, from string tables that do not stay open) */
    size_t strs_len, strs_cap;
    /* large tables: the names compressed NAMES_PER_BLOCK to a block in
     * address order, blocks[i] their offsets in z, blocks[nblocks] = z_len;
     * and the last block inflated */
    uint8_t *z;
    size_t z_len, z_cap;
    uint32_t *blocks;
    size_t nblocks, blocks_cap;
    char *cur;
    size_t cur_len, cur_cap, cur_block;
    /* while adding: where each symbol's name is (by order of adding: a
     * string table number in the top bits, the offset in it below) */
    uint32_t *raw;
    size_t raw_cap;
    /* while adding: the string tables names point into */
    struct sym_strsrc src[SYM_SRC_MAX];
    unsigned nsrc;
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
/* Hands back the pages of @elf's file (MADV_DONTNEED on its read-only
 * mapping: they are read again from the page cache when next touched).
 * Only for elf_begin(ELF_C_READ_MMAP) of a file: an image in memory
 * (elf_memory) would lose its contents. */
void sym_elf_drop_pages(Elf *elf);
/* Sorts, drops duplicate addresses and takes the names in; call once after
 * the last add, before any ELF added is closed (elf_end). */
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
