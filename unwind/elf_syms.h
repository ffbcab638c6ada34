/* SPDX-License-Identifier: Apache-2.0 */
/*
 * elf_syms — what the runtime detectors (unwind/python.c, hotspot.c, v8.c)
 * read from a binary before any process runs it: its defined symbols, by
 * name, and the bytes of a variable at its address.
 *
 * Owns nothing: stateless functions over a libelf handle the caller owns.
 * The ELF is a file on disk, untrusted: a symbol table without an entry
 * size, names off the string table and reads outside a section are
 * skipped, never followed.
 */
#ifndef STOKE_UNWIND_ELF_SYMS_H
#define STOKE_UNWIND_ELF_SYMS_H

#include <gelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called per defined symbol (section not SHN_UNDEF) with its name: 0 to go
 * on, a negative errno to stop the scan and return it. */
typedef int (*uw_sym_fn)(void *ctx, const char *name, const GElf_Sym *sym);

/* Calls @fn for every defined symbol of the sections of type @type
 * (SHT_DYNSYM or SHT_SYMTAB) of @elf. 0, or @fn's error. @mapped: @elf
 * reads a read-only file mapping (elf_memory over mmap), whose pages are
 * handed back as the scan goes and at its end, so that scanning a big
 * binary does not leave all of it resident; never for a heap image. */
int uw_elf_syms(Elf *elf, Elf64_Word type, bool mapped, uw_sym_fn fn, void *ctx);

/* Hands back the pages of @elf's file mapping (see file_drop_pages). */
void uw_elf_drop_pages(Elf *elf);

/* Reads @len bytes at ELF vaddr @vaddr from the allocated section holding
 * them: zeros from one without bytes in the file (.bss). False when no
 * section holds them all. */
bool uw_elf_read_vaddr(Elf *elf, uint64_t vaddr, void *out, size_t len);

#endif
