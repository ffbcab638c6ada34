/* SPDX-License-Identifier: Apache-2.0 */
/*
 * build_id — reads the GNU build-id note of an ELF file (see symbolizer.h).
 * Bounds: note sizes come from the file and are checked by libelf's
 * gelf_getnote, which never reads past the section or segment data.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer/build_id.h"

#define BUILD_ID_MAX 20

static int hexify(const uint8_t *b, size_t n, char hex[41])
{
    static const char digits[] = "0123456789abcdef";
    if (n > BUILD_ID_MAX)
        n = BUILD_ID_MAX;
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[b[i] >> 4];
        hex[2 * i + 1] = digits[b[i] & 15];
    }
    hex[2 * n] = '\0';
    return (int)n;
}

static int note_build_id(Elf_Data *data, char hex[41])
{
    GElf_Nhdr nhdr;
    size_t off = 0, name_off, desc_off;

    while (off < data->d_size && (off = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
        if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == 4 &&
            memcmp((const char *)data->d_buf + name_off, "GNU", 4) == 0 && nhdr.n_descsz > 0)
            return hexify((const uint8_t *)data->d_buf + desc_off, nhdr.n_descsz, hex);
    }
    return -ENODATA;
}

/* Looks in SHT_NOTE sections first, then PT_NOTE segments (stripped files
 * may have no section headers). */
int sym_elf_build_id(Elf *elf, char hex[41])
{
    Elf_Scn *scn = NULL;
    GElf_Shdr shdr;
    size_t phnum;

    hex[0] = '\0';
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (data && data->d_buf) {
            int n = note_build_id(data, hex);
            if (n > 0)
                return n;
        }
    }
    if (elf_getphdrnum(elf, &phnum) != 0)
        return -ENODATA;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr phdr;
        if (!gelf_getphdr(elf, (int)i, &phdr) || phdr.p_type != PT_NOTE)
            continue;
        Elf_Data *data = elf_getdata_rawchunk(elf, phdr.p_offset, phdr.p_filesz, ELF_T_NHDR);
        if (data && data->d_buf) {
            int n = note_build_id(data, hex);
            if (n > 0)
                return n;
        }
    }
    return -ENODATA;
}

int sym_read_build_id(const char *path, char hex[41])
{
    int fd, ret;
    Elf *elf;

    hex[0] = '\0';
    if (elf_version(EV_CURRENT) == EV_NONE)
        return -ENOSYS;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (!elf || elf_kind(elf) != ELF_K_ELF)
        ret = -ENOEXEC;
    else
        ret = sym_elf_build_id(elf, hex);
    if (elf)
        elf_end(elf);
    close(fd);
    return ret;
}
