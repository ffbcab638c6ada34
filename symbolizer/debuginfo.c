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
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "symbolizer/build_id.h"
#include "symbolizer/debuginfo.h"

#ifndef ELFCOMPRESS_ZSTD
#define ELFCOMPRESS_ZSTD 2 /* glibc < 2.37's elf.h lacks it */
#endif

/* libdw's own tables per compile unit (Dwarf_CU, its abbreviation hash,
 * the search tree node) and per unit looked into (abbreviations read),
 * measured on libc6-dbg's 2083 units. */
#define LIBDW_CU_BYTES     1600
#define LIBDW_LOOKUP_BYTES 512
/* While the CU table is built, resident pages are handed back every this
 * many bytes of .debug_info walked. */
#define WALK_DROP_BYTES (1u << 20)

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
        snprintf(tail, sizeof(tail), "/.build-id/%.2s/%s.debug", build_id, build_id + 2);
        /* the agent's own debug roots, then the same under the process's
         * root: a container's image may hold its debug files */
        for (int in_root = 0; in_root < 2; in_root++) {
            if (in_root && (!root_prefix || !root_prefix[0]))
                break;
            memcpy(dirs, debug_dirs, strlen(debug_dirs) + 1);
            for (char *save, *root = strtok_r(dirs, ":", &save); root;
                 root = strtok_r(NULL, ":", &save)) {
                fd = try_join(in_root ? root_prefix : "", root, tail, build_id);
                if (fd >= 0)
                    return fd;
            }
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
 * -dbg files) count at their decompressed size, which libelf allocates.
 * @heap: count only those, the ones that go to the heap. */
static size_t section_size_ex(Elf *elf, const char *want, bool heap)
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
        else if (!heap || strncmp(name, ".zdebug", 7) == 0)
            total += shdr.sh_size; /* a .zdebug section inflates to about 4x */
        if (heap && strncmp(name, ".zdebug", 7) == 0)
            total += 3 * shdr.sh_size;
    }
    return total;
}

static size_t section_size(Elf *elf, const char *want)
{
    return section_size_ex(elf, want, false);
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
    Dwarf_Off off = 0, next, dropped = 0;
    size_t hsize, cap = 0, units = 0;

    while (dwarf_nextcu(d->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
        units++;
        /* The walk reads every unit's header and first DIE: without this,
         * all of .debug_info would stay resident. */
        if (off - dropped >= WALK_DROP_BYTES) {
            sym_dwarf_trim(d);
            dropped = off;
        }
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
                d->cus[d->ncus++] = (struct sym_cu_range){lo, hi, off + hsize, false};
            }
        }
        if (next <= off)
            break;
        off = next;
    }
    if (d->ncus)
        qsort(d->cus, d->ncus, sizeof(*d->cus), cu_cmp);
    d->est_bytes += cap * sizeof(*d->cus) + units * LIBDW_CU_BYTES;
    sym_dwarf_trim(d);
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
        struct sym_cu_range *r = &d->cus[i - 1];
        if (vaddr >= r->lo && vaddr < r->hi && dwarf_offdie(d->dw, r->die_off, cu)) {
            if (!r->used) { /* libdw reads this unit's abbreviations now */
                r->used = true;
                d->est_bytes += LIBDW_LOOKUP_BYTES;
            }
            return true;
        }
    }
    return dwarf_addrdie(d->dw, vaddr, cu) != NULL;
}

/* ---- inflating compressed sections into a scratch file ------------------ */

struct out {
    int fd;
    uint64_t off, max;
    /* @img is a read-only file mapping: hand its pages back as they are
     * read, so inflating libc6-dbg's 4 MB does not keep 4 MB resident */
    const uint8_t *drop_base;
    size_t drop_len, dropped;
};

static void drop_input(struct out *o, const uint8_t *upto)
{
    if (!o->drop_base || upto < o->drop_base)
        return;
    size_t end = (size_t)(upto - o->drop_base) & ~(size_t)4095;
    if (end > o->drop_len)
        end = o->drop_len & ~(size_t)4095;
    if (end >= o->dropped + (256u << 10)) {
        madvise((void *)(uintptr_t)(o->drop_base + o->dropped), end - o->dropped, MADV_DONTNEED);
        o->dropped = end;
    }
}

static int out_write(struct out *o, const void *buf, size_t n)
{
    const char *p = buf;
    if (n > o->max || o->off > o->max - n)
        return -EFBIG;
    while (n > 0) {
        ssize_t w = pwrite(o->fd, p, n, (off_t)o->off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
        o->off += (uint64_t)w;
    }
    return 0;
}

static int out_pad(struct out *o, uint64_t align)
{
    static const char zeros[64];
    if (align < 2)
        return 0;
    if (align > 4096)
        return -EBADMSG;
    while (o->off % align) {
        size_t n = (size_t)(align - o->off % align);
        int r = out_write(o, zeros, n < sizeof(zeros) ? n : sizeof(zeros));
        if (r)
            return r;
    }
    return 0;
}

enum { CHUNK = 64 * 1024 };

/* Inflates a zlib stream of @n bytes; exactly @want bytes must come out. */
static int inflate_zlib(struct out *o, const uint8_t *in, size_t n, uint64_t want)
{
    uint8_t *buf = malloc(CHUNK);
    z_stream z = {0};
    uint64_t got = 0;
    int ret = 0, zr = Z_OK;

    if (!buf)
        return -ENOMEM;
    if (inflateInit(&z) != Z_OK) {
        free(buf);
        return -ENOMEM;
    }
    while (n > 0 && zr != Z_STREAM_END) {
        uInt step = n > (1u << 30) ? (1u << 30) : (uInt)n;
        z.next_in = (Bytef *)(uintptr_t)in;
        z.avail_in = step;
        do {
            z.next_out = buf;
            z.avail_out = CHUNK;
            zr = inflate(&z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
                ret = -EBADMSG;
                goto done;
            }
            size_t have = CHUNK - z.avail_out;
            if (got + have > want) {
                ret = -EBADMSG;
                goto done;
            }
            if (have && (ret = out_write(o, buf, have)) != 0)
                goto done;
            got += have;
            drop_input(o, z.next_in);
        } while (z.avail_out == 0 && zr != Z_STREAM_END);
        if (zr == Z_BUF_ERROR && z.avail_in == step) {
            ret = -EBADMSG; /* no progress */
            goto done;
        }
        in += step - z.avail_in;
        n -= step - z.avail_in;
        drop_input(o, in);
    }
    if (zr != Z_STREAM_END || got != want)
        ret = -EBADMSG;
done:
    inflateEnd(&z);
    free(buf);
    return ret;
}

static int inflate_zstd(struct out *o, const uint8_t *in, size_t n, uint64_t want)
{
    ZSTD_DStream *z = ZSTD_createDStream();
    uint8_t *buf = malloc(CHUNK);
    ZSTD_inBuffer ib = {in, n, 0};
    uint64_t got = 0;
    size_t zr = 1;
    int ret = 0;

    if (!z || !buf) {
        ret = -ENOMEM;
        goto done;
    }
    /* A hostile frame may ask for a window up to 2 GB; 8 MB serves real
     * debug sections, and anything larger is left to libelf. */
    if (ZSTD_isError(ZSTD_DCtx_setParameter(z, ZSTD_d_windowLogMax, 23))) {
        ret = -ENOMEM;
        goto done;
    }
    while (zr != 0) {
        ZSTD_outBuffer ob = {buf, CHUNK, 0};
        size_t before = ib.pos;
        zr = ZSTD_decompressStream(z, &ob, &ib);
        if (ZSTD_isError(zr)) {
            ret = ZSTD_getErrorCode(zr) == ZSTD_error_frameParameter_windowTooLarge ? -ENOTSUP
                                                                                    : -EBADMSG;
            goto done;
        }
        if (got + ob.pos > want) {
            ret = -EBADMSG;
            goto done;
        }
        if (ob.pos && (ret = out_write(o, buf, ob.pos)) != 0)
            goto done;
        got += ob.pos;
        drop_input(o, in + ib.pos);
        if (zr != 0 && ob.pos == 0 && ib.pos == before) {
            ret = -EBADMSG; /* truncated frame */
            goto done;
        }
    }
    if (got != want)
        ret = -EBADMSG;
done:
    ZSTD_freeDStream(z);
    free(buf);
    return ret;
}

ssize_t sym_dwarf_inflate_copy(const void *img, size_t len, int out_fd, size_t max_bytes, bool drop)
{
    const uint8_t *base = img;
    Elf64_Ehdr ehdr; /* copied: @img need not be aligned */
    const Elf64_Ehdr *eh = &ehdr;
    Elf64_Shdr *sh = NULL;
    struct out o = {out_fd, 0, max_bytes, drop ? img : NULL, len, 0};
    int ret;

    if (len < sizeof(ehdr))
        return -EBADMSG;
    memcpy(&ehdr, img, sizeof(ehdr));
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return -EBADMSG;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
        return -ENOTSUP;
#else
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2MSB)
        return -ENOTSUP;
#endif
    size_t n = eh->e_shnum;
    /* Extended numbering (65280+ sections) is left to libelf. */
    if (n == 0 || n >= SHN_LORESERVE || eh->e_shstrndx >= SHN_LORESERVE ||
        eh->e_shentsize != sizeof(Elf64_Shdr))
        return -ENOTSUP;
    if (eh->e_shstrndx >= n)
        return -EBADMSG; /* the section-name table is not among the sections */
    if (eh->e_shoff > len || (len - eh->e_shoff) / sizeof(Elf64_Shdr) < n)
        return -EBADMSG;
    sh = malloc(n * sizeof(*sh));
    if (!sh)
        return -ENOMEM;
    memcpy(sh, base + eh->e_shoff, n * sizeof(*sh));
    const Elf64_Shdr *strsh = &sh[eh->e_shstrndx];
    if (strsh->sh_type == SHT_NOBITS || strsh->sh_offset > len ||
        strsh->sh_size > len - strsh->sh_offset) {
        ret = -EBADMSG;
        goto fail;
    }
    const char *names = (const char *)base + strsh->sh_offset;

    Elf64_Ehdr neh = *eh;
    neh.e_phoff = 0;
    neh.e_phnum = 0;
    if ((ret = out_write(&o, &neh, sizeof(neh))) != 0)
        goto fail;
    for (size_t i = 1; i < n; i++) {
        Elf64_Shdr *s = &sh[i];
        if (s->sh_type == SHT_NOBITS || s->sh_type == SHT_NULL) {
            s->sh_offset = o.off;
            continue;
        }
        if (s->sh_offset > len || s->sh_size > len - s->sh_offset) {
            ret = -EBADMSG;
            goto fail;
        }
        const uint8_t *data = base + s->sh_offset;
        const char *name = s->sh_name < strsh->sh_size &&
                                   memchr(names + s->sh_name, 0, strsh->sh_size - s->sh_name)
                               ? names + s->sh_name
                               : "";
        if (s->sh_flags & SHF_COMPRESSED) {
            Elf64_Chdr ch;
            if (s->sh_size < sizeof(ch)) {
                ret = -EBADMSG;
                goto fail;
            }
            memcpy(&ch, data, sizeof(ch));
            if (ch.ch_addralign > 4096 || (ch.ch_addralign & (ch.ch_addralign - 1))) {
                ret = -EBADMSG;
                goto fail;
            }
            if ((ret = out_pad(&o, ch.ch_addralign)) != 0)
                goto fail;
            s->sh_offset = o.off;
            if (ch.ch_type == ELFCOMPRESS_ZLIB)
                ret = inflate_zlib(&o, data + sizeof(ch), s->sh_size - sizeof(ch), ch.ch_size);
            else if (ch.ch_type == ELFCOMPRESS_ZSTD)
                ret = inflate_zstd(&o, data + sizeof(ch), s->sh_size - sizeof(ch), ch.ch_size);
            else
                ret = -ENOTSUP;
            if (ret)
                goto fail;
            s->sh_flags &= ~(uint64_t)SHF_COMPRESSED;
            s->sh_size = ch.ch_size;
            s->sh_addralign = ch.ch_addralign;
        } else if (strncmp(name, ".zdebug", 7) == 0 && s->sh_size >= 12 &&
                   memcmp(data, "ZLIB", 4) == 0) {
            /* GNU style: "ZLIB", the size big-endian, a zlib stream. The
             * name stays: libdw tries to inflate a .zdebug section and
             * keeps it as it is when that fails. */
            uint64_t want = 0;
            for (int k = 4; k < 12; k++)
                want = (want << 8) | data[k];
            if ((ret = out_pad(&o, s->sh_addralign)) != 0)
                goto fail;
            s->sh_offset = o.off;
            if ((ret = inflate_zlib(&o, data + 12, s->sh_size - 12, want)) != 0)
                goto fail;
            s->sh_size = want;
        } else {
            if ((ret = out_pad(&o, s->sh_addralign)) != 0)
                goto fail;
            s->sh_offset = o.off;
            if ((ret = out_write(&o, data, s->sh_size)) != 0)
                goto fail;
            drop_input(&o, data + s->sh_size);
        }
    }
    if ((ret = out_pad(&o, 8)) != 0)
        goto fail;
    neh.e_shoff = o.off;
    if ((ret = out_write(&o, sh, n * sizeof(*sh))) != 0)
        goto fail;
    o.off = 0;
    if ((ret = out_write(&o, &neh, sizeof(neh))) != 0)
        goto fail;
    free(sh);
    return (ssize_t)(neh.e_shoff + n * sizeof(*sh));
fail:
    free(sh);
    return ret;
}

/* An unlinked file under @dir, or a negative errno. */
static int scratch_file(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? fd : -errno;
    /* no O_TMPFILE on this filesystem */
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/stoke-dwarf.XXXXXX", dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    return fd;
}

/* The first section (with data, named) for which @match says yes, or NULL. */
static Elf_Scn *find_section(Elf *elf, bool (*match)(const GElf_Shdr *, const char *, const void *),
                             const void *arg)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr shdr;
    size_t shstrndx;

    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
            continue;
        const char *name = elf_strptr(elf, shstrndx, shdr.sh_name);
        if (name && match(&shdr, name, arg))
            return scn;
    }
    return NULL;
}

static bool compressed_debug(const GElf_Shdr *shdr, const char *name, const void *arg)
{
    (void)arg;
    return ((shdr->sh_flags & SHF_COMPRESSED) && strncmp(name, ".debug", 6) == 0) ||
           strncmp(name, ".zdebug", 7) == 0;
}

/* libdw's choice of a section: by name, not in a group */
static bool named(const GElf_Shdr *shdr, const char *name, const void *want)
{
    return !(shdr->sh_flags & SHF_GROUP) && strcmp(name, want) == 0;
}

/* True when a debug section of @elf is compressed (libelf would inflate it
 * into the heap). */
static bool has_compressed_debug(Elf *elf)
{
    return find_section(elf, compressed_debug, NULL) != NULL;
}

/* The data of the first section named @want as libdw picks it (not
 * NOBITS, not in a group), after dwarf_begin_elf. */
static const uint8_t *section_data(Elf *elf, const char *want, size_t *len)
{
    Elf_Scn *scn = find_section(elf, named, want);
    Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;

    *len = 0;
    if (!d || !d->d_buf || d->d_size == 0)
        return NULL;
    *len = d->d_size;
    return d->d_buf;
}

/* Maps @fd read-only; 0 or a negative errno. */
static int map_file(int fd, struct sym_dwarf *out)
{
    struct stat st;

    if (fstat(fd, &st) != 0 || st.st_size <= 0)
        return -ENODATA;
    out->map_len = (size_t)st.st_size;
    out->map = mmap(NULL, out->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (out->map == MAP_FAILED) {
        out->map = NULL;
        return -errno;
    }
    return 0;
}

int sym_dwarf_open(int fd, const struct sym_dwarf_scratch *scratch, struct sym_dwarf *out)
{
    int ret;

    memset(out, 0, sizeof(*out));
    out->scratch_fd = -1;
    /* Our own read-only mapping, so no fd stays open per binary. */
    ret = map_file(fd, out);
    close(fd);
    if (ret)
        return ret;
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
    if (has_compressed_debug(out->elf)) {
        int sfd = scratch && scratch->dir && scratch->max_bytes ? scratch_file(scratch->dir) : -1;
        ssize_t n =
            sfd >= 0 ? sym_dwarf_inflate_copy(out->map, out->map_len, sfd, scratch->max_bytes, true)
                     : -ENOENT;
        if (n > 0) {
            /* From here on, the inflated copy is the file. */
            elf_end(out->elf);
            munmap(out->map, out->map_len);
            out->elf = NULL;
            out->map = NULL;
            ret = map_file(sfd, out);
            out->elf = ret == 0 ? elf_memory(out->map, out->map_len) : NULL;
            if (!out->elf || elf_kind(out->elf) != ELF_K_ELF) {
                close(sfd);
                sym_dwarf_close(out);
                return ret ? ret : -EBADMSG;
            }
            out->scratch_fd = sfd;
            out->scratch_bytes = (size_t)n;
        } else {
            if (sfd >= 0)
                close(sfd);
            /* libelf inflates into the heap, and writes the section
             * headers of the image as it does. */
            if (mprotect(out->map, out->map_len, PROT_READ | PROT_WRITE) != 0) {
                ret = -errno;
                sym_dwarf_close(out);
                return ret;
            }
            out->heap_sections = section_size_ex(out->elf, ".debug_", true) +
                                 section_size_ex(out->elf, ".zdebug_", true);
        }
    }
    out->droppable = out->heap_sections == 0;
    out->dw = dwarf_begin_elf(out->elf, DWARF_C_READ, NULL);
    if (!out->dw) {
        sym_dwarf_close(out);
        return -EBADMSG;
    }
    out->lsecs.line = section_data(out->elf, ".debug_line", &out->lsecs.line_len);
    out->lsecs.line_str = section_data(out->elf, ".debug_line_str", &out->lsecs.line_str_len);
    out->lsecs.str = section_data(out->elf, ".debug_str", &out->lsecs.str_len);
    out->est_bytes = 16 * 1024 + out->heap_sections;
    build_cu_ranges(out);
    return 0;
}

void sym_dwarf_close(struct sym_dwarf *d)
{
    if (d->unit_ok)
        sym_line_unit_free(&d->unit);
    if (d->dw)
        dwarf_end(d->dw);
    if (d->elf)
        elf_end(d->elf);
    if (d->map)
        munmap(d->map, d->map_len);
    if (d->scratch_bytes && d->scratch_fd >= 0)
        close(d->scratch_fd);
    free(d->cus);
    memset(d, 0, sizeof(*d));
    d->scratch_fd = -1;
}

void sym_dwarf_trim(struct sym_dwarf *d)
{
    if (d->map && d->droppable)
        madvise(d->map, d->map_len, MADV_DONTNEED);
    d->since_drop = 0;
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

/* The line unit of @cu, parsed by dwarf_line.c (the last one is kept), or
 * NULL when libdw has to be asked instead: no line table, split units,
 * forms dwarf_line.c does not read. */
static struct sym_line_unit *line_unit(struct sym_dwarf *d, Dwarf_Die *cu)
{
    Dwarf_Attribute attr;
    Dwarf_Word off;
    uint8_t address_size, offset_size;
    Dwarf_Die cumem;

    if (!dwarf_attr(cu, DW_AT_stmt_list, &attr) || dwarf_formudata(&attr, &off) != 0)
        return NULL;
    if (d->unit_ok && d->unit.off == off)
        return &d->unit;
    if (d->unit_ok) {
        sym_line_unit_free(&d->unit);
        d->unit_ok = false;
    }
    if (!dwarf_diecu(cu, &cumem, &address_size, &offset_size) ||
        dwarf_tag(cu) != DW_TAG_compile_unit)
        return NULL;
    const char *comp_dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
    if (sym_line_unit_parse(&d->unit, &d->lsecs, off, comp_dir, address_size) != 0)
        return NULL;
    d->unit_ok = true;
    return &d->unit;
}

static void call_site(struct sym_line_unit *u, Dwarf_Die *cu, Dwarf_Die *die, const char **file,
                      uint32_t *line)
{
    Dwarf_Attribute attr;
    Dwarf_Word v;
    Dwarf_Files *files;
    size_t nfiles;

    *file = NULL;
    *line = 0;
    if (dwarf_attr(die, DW_AT_call_line, &attr) && dwarf_formudata(&attr, &v) == 0)
        *line = v > UINT32_MAX ? 0 : (uint32_t)v;
    if (!dwarf_attr(die, DW_AT_call_file, &attr) || dwarf_formudata(&attr, &v) != 0)
        return;
    if (u)
        *file = sym_line_path(u, v);
    else if (dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && v < nfiles)
        *file = dwarf_filesrc(files, v, NULL, NULL);
}

int sym_dwarf_lookup(struct sym_dwarf *d, uint64_t vaddr, struct sym_raw_frame *frames, int max)
{
    Dwarf_Die cudie, *scopes = NULL;
    const char *file = NULL;
    uint32_t line = 0;
    int n, nf = 0;

    if (!d->dw || max < 1)
        return 0;
    /* A file this large has units whose DIE trees span megabytes (CPython's
     * ceval): one lookup reads them, so drop them after each. */
    if (d->droppable && (d->map_len >= SYM_DWARF_LARGE || ++d->since_drop >= SYM_DWARF_DROP_EVERY))
        sym_dwarf_trim(d);
    if (!find_cu(d, vaddr, &cudie))
        return 0;
    struct sym_line_unit *u = line_unit(d, &cudie);
    if (u) {
        uint64_t fi;
        int ln;
        if (sym_line_find(u, vaddr, &fi, &ln) > 0) {
            file = sym_line_path(u, fi);
            line = ln > 0 ? (uint32_t)ln : 0;
        }
    } else {
        Dwarf_Line *l = dwarf_getsrc_die(&cudie, vaddr);
        if (l) {
            int ln = 0;
            file = dwarf_linesrc(l, NULL, NULL);
            if (dwarf_lineno(l, &ln) == 0 && ln > 0)
                line = (uint32_t)ln;
        }
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
        call_site(u, &cudie, &die, &file, &line);
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
