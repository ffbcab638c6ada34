/* SPDX-License-Identifier: Apache-2.0 */
/* build_id — internal: the build-id of an already opened ELF handle. */
#ifndef STOKE_BUILD_ID_H
#define STOKE_BUILD_ID_H

#include <libelf.h>

/* Fills @hex with the GNU build-id of @elf. Returns its length in bytes or
 * -ENODATA. */
int sym_elf_build_id(Elf *elf, char hex[41]);

#endif
