/* SPDX-License-Identifier: Apache-2.0 */
#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolizer/build_id.h"
#include "symbolizer/debuginfo.h"

/* Opens @path if it is an ELF file whose build-id matches @want (when both
 * are known). */
static int try_candidate(const char *path, const char *want)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    bool ok = elf && elf_kind(elf) == ELF_K_ELF;
    if (ok && want && want[0]) {
        char hex[41];
        if (sym_elf_build_id(elf, hex) > 0 && strcmp(hex, want) != 0)
            ok = false;
    }
    if (elf)
        elf_end(elf);
    if (!ok) {
        close(fd);
        return -ENOENT;
    }
    return fd;
}

/* The file name stored in .gnu_debuglink (NUL-terminated within the section,
 * followed by a CRC we do not check: build-ids are the stronger guard). */
static int read_debuglink(Elf *elf, char *name, size_t cap)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr shdr;
    size_t shstrndx;

    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return -ENOENT;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_PROGBITS)
            continue;
        const char *sname = elf_strptr(elf, shstrndx, shdr.sh_name);
        if (!sname || strcmp(sname, ".gnu_debuglink") != 0)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf)
            return -ENOENT;
        size_t n = strnlen(d->d_buf, d->d_size);
        if (n == 0 || n == d->d_size || n >= cap || memchr(d->d_buf, '/', n))
            return -ENOENT;
        memcpy(name, d->d_buf, n);
        name[n] = '\0';
        return 0;
    }
    return -ENOENT;
}

/* Calls try_candidate on "<a><b><c>" when it fits. */
static int try_join(const char *a, const char *b, const char *c, const char *want)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s%s%s", a, b, c);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    return try_candidate(path, want);
}

int sym_debuginfo_find(const char *debug_dirs, const char *build_id, Elf *elf,
                       const char *root_prefix, const char *map_path)
{
    char dirs[PATH_MAX], link[256], dir[PATH_MAX], tail[PATH_MAX];
    int fd;

    if (!debug_dirs)
        debug_dirs = "/usr/lib/debug";
    if (strlen(debug_dirs) >= sizeof(dirs))
        return -ENAMETOOLONG;

    if (build_id && strlen(build_id) > 2) {
        memcpy(dirs, debug_dirs, strlen(debug_dirs) + 1);
        for (char *save, *root = strtok_r(dirs, ":", &save); root;
             root = strtok_r(NULL, ":", &save)) {
            snprintf(tail, sizeof(tail), "/.build-id/%.2s/%s.debug", build_id, build_id + 2);
            fd = try_join(root, tail, "", build_id);
            if (fd >= 0)
                return fd;
        }
    }

    if (read_debuglink(elf, link, sizeof(link)) != 0 || !map_path || map_path[0] != '/')
        return -ENOENT;
    const char *slash = strrchr(map_path, '/');
    size_t dlen = (size_t)(slash - map_path) + 1; /* keeps the trailing '/' */
    if (dlen >= sizeof(dir))
        return -ENAMETOOLONG;
    memcpy(dir, map_path, dlen);
    dir[dlen] = '\0';
    /* A debuglink naming the binary itself would just reopen it. */
    if (strcmp(slash + 1, link) != 0) {
        fd = try_join(root_prefix, dir, link, build_id);
        if (fd >= 0)
            return fd;
    }
    snprintf(tail, sizeof(tail), ".debug/%s", link);
    fd = try_join(root_prefix, dir, tail, build_id);
    if (fd >= 0)
        return fd;
    memcpy(dirs, debug_dirs, strlen(debug_dirs) + 1);
    for (char *save, *root = strtok_r(dirs, ":", &save); root; root = strtok_r(NULL, ":", &save)) {
        char sub[PATH_MAX];
        int n = snprintf(sub, sizeof(sub), "%s%s", root, dir);
        if (n < 0 || (size_t)n >= sizeof(sub))
            continue;
        fd = try_join(sub, link, "", build_id);
        if (fd >= 0)
            return fd;
    }
    return -ENOENT;
}

/* Bytes the sections whose names start with @want occupy once libdw has
 * them in memory: compressed sections (SHF_COMPRESSED, as in Debian's
 * -dbg files) count at their decompressed size, which libdw allocates. */
static size_t section_size(Elf *elf, const char *want)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr shdr;
    size_t shstrndx, total = 0;

    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return 0;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
            continue;
        const char *name = elf_strptr(elf, shstrndx, shdr.sh_name);
        if (!name || strncmp(name, want, strlen(want)) != 0)
            continue;
        GElf_Chdr chdr;
        if ((shdr.sh_flags & SHF_COMPRESSED) && gelf_getchdr(scn, &chdr))
            total += chdr.ch_size;
        else
            total += shdr.sh_size;
    }
    return total;
}

static int cu_cmp(const void *a, const void *b)
{
    const struct sym_cu_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Walks every CU's DW_AT_low_pc/high_pc/ranges. Bounded by the number of
 * ranges libdw can read out of the section; gives up quietly on garbage
 * (lookups then fall back to dwarf_addrdie). */
static void build_cu_ranges(struct sym_dwarf *d)
{
    Dwarf_Off off = 0, next;
    size_t hsize, cap = 0;

    while (dwarf_nextcu(d->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
        Dwarf_Die cu;
        if (dwarf_offdie(d->dw, off + hsize, &cu)) {
            Dwarf_Addr base, lo, hi;
            ptrdiff_t it = 0;
            while ((it = dwarf_ranges(&cu, it, &base, &lo, &hi)) > 0) {
                if (hi <= lo)
                    continue;
                if (d->ncus == cap) {
                    size_t ncap = cap ? cap * 2 : 64;
                    struct sym_cu_range *n = realloc(d->cus, ncap * sizeof(*n));
                    if (!n)
                        return;
                    d->cus = n;
                    cap = ncap;
                }
                d->cus[d->ncus++] = (struct sym_cu_range){lo, hi, off + hsize};
            }
        }
        if (next <= off)
            break;
        off = next;
    }
    if (d->ncus)
        qsort(d->cus, d->ncus, sizeof(*d->cus), cu_cmp);
    d->est_bytes += cap * sizeof(*d->cus);
}

/* The CU containing @vaddr: our own range table first, libdw's aranges
 * second. */
static bool find_cu(struct sym_dwarf *d, uint64_t vaddr, Dwarf_Die *cu)
{
    size_t lo = 0, hi = d->ncus;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->cus[mid].lo <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Ranges may nest or overlap (rare): look back a few entries. */
    for (size_t i = lo, k = 0; i > 0 && k < 8; i--, k++) {
        const struct sym_cu_range *r = &d->cus[i - 1];
        if (vaddr >= r->lo && vaddr < r->hi && dwarf_offdie(d->dw, r->die_off, cu))
            return true;
    }
    return dwarf_addrdie(d->dw, vaddr, cu) != NULL;
}

int sym_dwarf_open(int fd, struct sym_dwarf *out)
{
    struct stat st;

    memset(out, 0, sizeof(*out));
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return -ENODATA;
    }
    /* Our own read-only mapping, so no fd stays open per binary. */
    out->map_len = (size_t)st.st_size;
    out->map = mmap(NULL, out->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (out->map == MAP_FAILED) {
        out->map = NULL;
        return -errno;
    }
    out->elf = elf_memory(out->map, out->map_len);
    if (!out->elf || elf_kind(out->elf) != ELF_K_ELF) {
        sym_dwarf_close(out);
        return -EBADMSG;
    }
    size_t info = section_size(out->elf, ".debug_info") + section_size(out->elf, ".zdebug_info");
    if (info == 0) {
        sym_dwarf_close(out);
        return -ENODATA;
    }
    out->dw = dwarf_begin_elf(out->elf, DWARF_C_READ, NULL);
    if (!out->dw) {
        sym_dwarf_close(out);
        return -EBADMSG;
    }
    /* libdw's own allocations (CU, abbrev and line tables) scale with
     * the debug sections it parses; the mapping itself is page cache. */
    /* libdw holds every debug section it reads (decompressed when they are
     * compressed) plus its CU, abbreviation and line tables. */
    out->est_bytes = 64 * 1024 + section_size(out->elf, ".debug_") + info / 2;
    build_cu_ranges(out);
    return 0;
}

void sym_dwarf_close(struct sym_dwarf *d)
{
    if (d->dw)
        dwarf_end(d->dw);
    if (d->elf)
        elf_end(d->elf);
    if (d->map)
        munmap(d->map, d->map_len);
    free(d->cus);
    memset(d, 0, sizeof(*d));
}

static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = NULL;

    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
        name = dwarf_formstring(&attr);
    if (!name && dwarf_attr_integrate(die, DW_AT_name, &attr))
        name = dwarf_formstring(&attr);
    return name;
}

static void call_site(Dwarf_Die *cu, Dwarf_Die *die, const char **file, uint32_t *line)
{
    Dwarf_Attribute attr;
    Dwarf_Word v;
    Dwarf_Files *files;
    size_t nfiles;

    *file = NULL;
    *line = 0;
    if (dwarf_attr(die, DW_AT_call_line, &attr) && dwarf_formudata(&attr, &v) == 0)
        *line = v > UINT32_MAX ? 0 : (uint32_t)v;
    if (dwarf_attr(die, DW_AT_call_file, &attr) && dwarf_formudata(&attr, &v) == 0 &&
        dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && v < nfiles)
        *file = dwarf_filesrc(files, v, NULL, NULL);
}

int sym_dwarf_lookup(struct sym_dwarf *d, uint64_t vaddr, struct sym_raw_frame *frames, int max)
{
    Dwarf_Die cudie, *scopes = NULL;
    const char *file = NULL;
    uint32_t line = 0;
    int n, nf = 0;

    if (!d->dw || max < 1 || !find_cu(d, vaddr, &cudie))
        return 0;
    Dwarf_Line *l = dwarf_getsrc_die(&cudie, vaddr);
    if (l) {
        int ln = 0;
        file = dwarf_linesrc(l, NULL, NULL);
        if (dwarf_lineno(l, &ln) == 0 && ln > 0)
            line = (uint32_t)ln;
    }
    n = dwarf_getscopes(&cudie, vaddr, &scopes);
    Dwarf_Die die;
    bool have = false;
    for (int i = 0; i < n && !have; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram) {
            die = scopes[i];
            have = true;
        }
    }
    free(scopes);
    scopes = NULL;
    /* dwarf_getscopes continues into the abstract origin after an inlined
     * instance; the caller's chain is in the concrete tree, so each step
     * asks dwarf_getscopes_die for the scopes around the inlined DIE. The
     * step count bounds the walk even on cyclic garbage. */
    for (int step = 0; have && step < 4 * max; step++) {
        int tag = dwarf_tag(&die);
        /* Keep the last slot for the physical function; deeper inline
         * levels beyond the cap are skipped but their call sites still
         * carry the position outwards. */
        if (tag == DW_TAG_subprogram || nf < max - 1) {
            frames[nf].name = die_name(&die);
            frames[nf].file = file;
            frames[nf].line = line;
            nf++;
        }
        if (tag != DW_TAG_inlined_subroutine)
            break;
        call_site(&cudie, &die, &file, &line);
        Dwarf_Die *outer;
        int m = dwarf_getscopes_die(&die, &outer);
        have = false;
        for (int i = 1; i < m && !have; i++) {
            int t = dwarf_tag(&outer[i]);
            if (t == DW_TAG_inlined_subroutine || t == DW_TAG_subprogram) {
                die = outer[i];
                have = true;
            }
        }
        if (m > 0)
            free(outer);
    }
    if (nf == 0 && (file || line)) {
        frames[0].name = NULL;
        frames[0].file = file;
        frames[0].line = line;
        nf = 1;
    }
    return nf;
}
