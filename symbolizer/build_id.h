/* SPDX-License-Identifier: Apache-2.0 */
/* build_id — the GNU build-id of an ELF file, or of an already opened ELF
 * handle. */
#ifndef STOKE_BUILD_ID_H
#define STOKE_BUILD_ID_H

#include <libelf.h>

/* Fills @hex with the GNU build-id of @elf. Returns its length in bytes or
 * -ENODATA. */
int sym_elf_build_id(Elf *elf, char hex[41]);

/*
 * Reads the GNU build-id note of the ELF file at @path into @hex (lowercase,
 * NUL-terminated, at most 40 digits). Returns the number of bytes of the
 * build-id, or a negative errno (-ENODATA when the file has none,
 * -ENOEXEC when it is not ELF).
 */
int sym_read_build_id(const char *path, char hex[41]);

#endif
