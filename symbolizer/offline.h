/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offline — names file offsets of a binary from its debug file alone, away
 * from the host that ran it: what the query workers use to name the frames
 * an agent stored unnamed (mapping build-id + file offset, docs/format.md
 * §4), with the same readers and the same rules as the agent's symbolizer
 * (sym_frames_at: the DWARF inline chain, the symbol table's name for the
 * physical function, demangled), so a frame named later reads as if it had
 * been named on the host.
 *
 * A separate debug file (objcopy --only-keep-debug, eu-strip -f, Debian's
 * -dbg packages, debuginfod's answers) keeps the binary's program headers
 * with their file offsets rewritten (its segments hold no bytes). The
 * original offsets are rebuilt from the virtual addresses and sizes: each
 * PT_LOAD starts at the first offset at or after the previous one's end
 * that is congruent to its address modulo its alignment, which is how
 * GNU ld, gold and lld lay files out (tests/unit/test_offline.c checks it
 * against libc and a fixture's real headers). A full binary (segments with
 * bytes) is read as it is.
 *
 * Input is untrusted (an upload, a debuginfod answer): libelf and the
 * readers it goes through bound every read; sym_offline_check is the gate
 * an upload passes. Not thread-safe: one caller at a time per handle.
 */
#ifndef STOKE_SYM_OFFLINE_H
#define STOKE_SYM_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sym_symtab;
struct sym_dwarf;
struct sym_raw_frame;

/* The frames of ELF address @vaddr, innermost first, as the symbolizer
 * gives them: DWARF's inline chain (when @dw is open), the physical
 * function named by the symbol table, frames without a name dropped.
 * Names are not demangled. Returns how many (0: nothing known). */
int sym_frames_at(struct sym_symtab *t, struct sym_dwarf *dw, uint64_t vaddr,
                  struct sym_raw_frame *raw, int max);

/* Checks that @buf is an ELF file libelf reads, with a GNU build-id, and
 * gives the build-id in @hex. 0, -ENOEXEC (not ELF, or corrupt), -ENODATA
 * (no build-id). */
int sym_offline_check(const void *buf, size_t len, char hex[41]);

struct sym_offline;

/* Opens the debug file (or binary) @fd (always consumed). Compressed
 * debug sections are inflated into an unlinked file in @scratch_dir (NULL:
 * the heap), at most @scratch_max bytes. -ENOEXEC when it is not ELF,
 * -ENOMEM. A file without DWARF is named from its symbol table. */
int sym_offline_open(int fd, const char *scratch_dir, size_t scratch_max, struct sym_offline **out);
void sym_offline_free(struct sym_offline *o);

/* The PT_LOAD segments @o maps file offsets with (rebuilt for a debug
 * file): their count, the array in *@segs. */
struct sym_elf_seg;
int sym_offline_segments(const struct sym_offline *o, const struct sym_elf_seg **segs);

/* Heap held for @o, estimated (its symbol table and libdw's). */
size_t sym_offline_bytes(const struct sym_offline *o);

/* The names of file offset @off, innermost first (the inline chain, then
 * the physical function), demangled, written NUL-separated into @buf
 * (@buflen bytes) and pointed to by @names[0..return). @is_return: @off is a
 * return address (every frame of a stack but the user leaf): lines and
 * inlines are looked up at @off - 1, as on the host. 0 when nothing names
 * it; -ENOSPC when @buf is too small. */
int sym_offline_names(struct sym_offline *o, uint64_t off, bool is_return, char *buf, size_t buflen,
                      const char **names, int max);

#endif
