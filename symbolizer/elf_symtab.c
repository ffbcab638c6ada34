/* SPDX-License-Identifier: Apache-2.0 */
#include <dlfcn.h>
#include <errno.h>
#include <gelf.h>
#include <lzma.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zstd.h>

#include "common/file.h"
#include "symbolizer/elf_symtab.h"

#define DEBUGDATA_MAX   (64u << 20)  /* decompressed MiniDebugInfo cap */
#define NAME_MAX_LEN    4096         /* longer names are truncated C++ noise */
#define NAMES_PER_BLOCK 64           /* names decompressed together on a miss */
#define COMPRESS_MIN    (256u << 10) /* smaller name arenas stay as they are */

static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : first;
    while (nc < need)
        nc += nc / 2;
    void *q = realloc(*p, nc * elem);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

/* Copies @name into the arena; its offset in *@off. */
static int arena_add(struct sym_symtab *t, const char *name, size_t n, uint32_t *off)
{
    if (t->strs_len + n + 1 > SYM_NAME_OFF_MASK)
        return -E2BIG;
    if (grow((void **)&t->strs, &t->strs_cap, t->strs_len + n + 1, 1, 4096))
        return -ENOMEM;
    memcpy(t->strs + t->strs_len, name, n);
    t->strs[t->strs_len + n] = '\0';
    *off = (uint32_t)t->strs_len;
    t->strs_len += n + 1;
    return 0;
}

/* How much a name is preferred among aliases at one address, 0 best:
 * fewer leading underscores (malloc, not __libc_malloc; read, not the
 * global __read it is a weak alias of), then global before weak, and local
 * ones last (not __GI___libc_malloc); ties go to the first added. Kept in
 * the top bits of a symbol's order of adding while adding. */
#define RANK_SHIFT SYM_NAME_SRC_SHIFT

static uint32_t alias_rank(int bind, const char *name)
{
    unsigned under = name[0] != '_' ? 0 : name[1] != '_' ? 1 : 2;
    if (bind == STB_LOCAL)
        return under ? 7 : 6;
    return under * 2 + (bind == STB_WEAK);
}

static int add_sym(struct sym_symtab *t, uint64_t addr, uint64_t size, uint32_t name, uint32_t rank)
{
    if (t->n >= SYM_NAME_OFF_MASK ||
        grow((void **)&t->syms, &t->cap, t->n + 1, sizeof(*t->syms), 256) ||
        grow((void **)&t->raw, &t->raw_cap, t->n + 1, sizeof(*t->raw), 256))
        return -ENOMEM;
    t->syms[t->n].addr = addr;
    t->syms[t->n].size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    /* while adding, a symbol's name is its order of adding: finishing keeps
     * the first added of the symbols at one address, as elf_strptr-era
     * tables did (__clone3 before __GI___clone3), after alias_rank */
    t->syms[t->n].name = rank << RANK_SHIFT | (uint32_t)t->n;
    t->raw[t->n] = name;
    t->n++;
    return 0;
}

/* Every this many symbols read from a mapped file, its pages are handed
 * back (libLLVM's .dynsym is 800 KB); the string tables' pages are handed
 * back once the names are in. */
#define DROP_EVERY_SYMS 4096

void sym_elf_drop_pages(Elf *elf)
{
    size_t len;
    char *img = elf_rawfile(elf, &len);
    file_drop_pages(img, len);
}

/* The source number of a string table (1..SYM_SRC_MAX-1), registering it;
 * 0 when the sources are all taken (names are then copied). */
static unsigned source_of(struct sym_symtab *t, const Elf_Data *d, Elf *mapped)
{
    unsigned i;
    for (i = 1; i < t->nsrc; i++)
        if (t->src[i].data == d->d_buf)
            return i;
    if (t->nsrc == 0)
        t->nsrc = 1; /* 0 is the arena */
    if (t->nsrc == SYM_SRC_MAX)
        return 0;
    i = t->nsrc++;
    t->src[i].data = d->d_buf;
    t->src[i].len = d->d_size;
    t->src[i].map = NULL;
    t->src[i].map_len = 0;
    if (mapped) {
        size_t len;
        char *img = elf_rawfile(mapped, &len);
        t->src[i].map = img;
        t->src[i].map_len = img ? len : 0;
    }
    return i;
}

/* Pass 1: the symbols, and where each name is in its string table; names
 * are not copied yet (@copy: they are, into the arena, because @elf goes
 * away before sym_symtab_finish). */
static int add_section(struct sym_symtab *t, Elf *elf, Elf_Scn *scn, const GElf_Shdr *shdr,
                       bool mapped, bool copy)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    Elf_Scn *strscn = elf_getscn(elf, shdr->sh_link);
    Elf_Data *strs = strscn ? elf_getdata(strscn, NULL) : NULL;
    int added = 0;

    if (!data || !data->d_buf || shdr->sh_entsize == 0 || !strs || !strs->d_buf)
        return 0;
    unsigned src = copy ? 0 : source_of(t, strs, mapped ? elf : NULL);
    size_t count = data->d_size / shdr->sh_entsize;
    for (size_t i = 1; i < count && i <= INT32_MAX; i++) {
        if (mapped && i % DROP_EVERY_SYMS == 0)
            sym_elf_drop_pages(elf);
        GElf_Sym sym;
        if (!gelf_getsym(data, (int)i, &sym))
            break;
        int type = GELF_ST_TYPE(sym.st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
            sym.st_value == 0)
            continue;
        /* As elf_strptr: a name must end inside its table; an empty one
         * (offset 0, or any offset of a NUL) names nothing and is skipped.
         * Reading it here goes through the table in symbol order, which is
         * the table's own order, with the pages dropped every
         * DROP_EVERY_SYMS; finishing copies the kept ones in address order. */
        const char *base = strs->d_buf;
        if (sym.st_name == 0 || sym.st_name >= strs->d_size)
            continue;
        size_t room = strs->d_size - sym.st_name, n = strnlen(base + sym.st_name, room);
        if (n == room || n == 0)
            continue;
        uint32_t name;
        int err = 0;
        if (src && sym.st_name <= SYM_NAME_OFF_MASK)
            name = (uint32_t)src << SYM_NAME_SRC_SHIFT | (uint32_t)sym.st_name;
        else
            err = arena_add(t, base + sym.st_name, n < NAME_MAX_LEN ? n : NAME_MAX_LEN, &name);
        if (!err)
            err = add_sym(t, sym.st_value, sym.st_size, name,
                          alias_rank(GELF_ST_BIND(sym.st_info), base + sym.st_name));
        if (err)
            return err;
        added++;
    }
    return added;
}

struct lzma_api {
    lzma_ret (*stream_decoder)(lzma_stream *, uint64_t, uint32_t);
    lzma_ret (*code)(lzma_stream *, lzma_action);
    void (*end)(lzma_stream *);
};
static struct lzma_api lzma_api;
static pthread_once_t lzma_once = PTHREAD_ONCE_INIT;

static void lzma_load(void)
{
    void *h = dlopen("liblzma.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    lzma_api.code = (lzma_ret(*)(lzma_stream *, lzma_action))dlsym(h, "lzma_code");
    lzma_api.end = (void (*)(lzma_stream *))dlsym(h, "lzma_end");
    lzma_api.stream_decoder =
        (lzma_ret(*)(lzma_stream *, uint64_t, uint32_t))dlsym(h, "lzma_stream_decoder");
    if (!lzma_api.code || !lzma_api.end || !lzma_api.stream_decoder)
        lzma_api.stream_decoder = NULL;
}

int sym_xz_decompress(const void *in, size_t in_len, size_t max, void **out, size_t *out_len)
{
    lzma_stream strm = LZMA_STREAM_INIT;
    size_t cap = in_len * 4 + 4096;
    uint8_t *buf;
    int ret = -EBADMSG;

    *out = NULL;
    *out_len = 0;
    pthread_once(&lzma_once, lzma_load);
    if (!lzma_api.stream_decoder)
        return -ENOSYS;
    if (cap > max)
        cap = max;
    buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    if (lzma_api.stream_decoder(&strm, 128u << 20, 0) != LZMA_OK) {
        free(buf);
        return -ENOMEM;
    }
    strm.next_in = in;
    strm.avail_in = in_len;
    strm.next_out = buf;
    strm.avail_out = cap;
    for (;;) {
        lzma_ret r = lzma_api.code(&strm, LZMA_FINISH);
        if (r == LZMA_STREAM_END) {
            ret = 0;
            break;
        }
        if (r != LZMA_OK && r != LZMA_BUF_ERROR)
            break;
        if (strm.avail_out == 0) {
            if (cap >= max) {
                ret = -EFBIG;
                break;
            }
            size_t ncap = cap * 2 > max ? max : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                ret = -ENOMEM;
                break;
            }
            buf = nb;
            strm.next_out = buf + cap;
            strm.avail_out = ncap - cap;
            cap = ncap;
        } else if (r == LZMA_BUF_ERROR) {
            break; /* truncated input: no progress possible */
        }
    }
    size_t produced = cap - strm.avail_out;
    lzma_api.end(&strm);
    if (ret) {
        free(buf);
        return ret;
    }
    *out = buf;
    *out_len = produced;
    return 0;
}

static int add_debugdata(struct sym_symtab *t, Elf_Scn *scn)
{
    Elf_Data *data = elf_rawdata(scn, NULL);
    void *img;
    size_t len;
    int ret;

    if (!data || !data->d_buf || data->d_size == 0)
        return 0;
    ret = sym_xz_decompress(data->d_buf, data->d_size, DEBUGDATA_MAX, &img, &len);
    if (ret)
        return ret == -ENOMEM ? ret : 0;
    Elf *mini = elf_memory(img, len);
    ret = 0;
    if (mini && elf_kind(mini) == ELF_K_ELF) {
        Elf_Scn *s = NULL;
        GElf_Shdr shdr;
        while ((s = elf_nextscn(mini, s)) != NULL) {
            if (!gelf_getshdr(s, &shdr) || shdr.sh_type != SHT_SYMTAB)
                continue;
            int n = add_section(t, mini, s, &shdr, false, true);
            if (n < 0) {
                ret = n;
                break;
            }
            ret += n;
        }
    }
    if (mini)
        elf_end(mini);
    free(img);
    return ret;
}

/* ---- PLT stubs ------------------------------------------------------------
 *
 * A call into a shared library goes through a stub in .plt (.plt.sec with
 * IBT, .plt.got for functions whose address is also taken): the stub jumps
 * through the GOT slot that the dynamic linker fills for one symbol. No
 * symbol table covers the stubs, so as perf and objdump do they get names
 * made up here, "function@plt": each stub's `jmp *disp32(%rip)` (ff 25,
 * perhaps after endbr64 or a bnd prefix) gives its GOT slot, and the slot's
 * JUMP_SLOT or GLOB_DAT relocation gives the symbol. x86-64 only; stubs of
 * other shapes (the lazy-binding half of .plt with IBT, the header PLT0,
 * IRELATIVE slots) stay unnamed. Everything is bounded by the sections'
 * own sizes as libelf checked them. */

#define PLT_MAX_RELOCS (1u << 20)

struct plt_reloc {
    uint64_t got;
    uint32_t sym;
};

static int cmp_reloc(const void *a, const void *b)
{
    const struct plt_reloc *x = a, *y = b;
    return x->got < y->got ? -1 : x->got > y->got;
}

/* The GOT slots of the file's dynamic JUMP_SLOT and GLOB_DAT relocations,
 * sorted, with the .dynsym section they index. */
static int plt_relocs(Elf *elf, struct plt_reloc **out, size_t *n, Elf_Scn **dynsym)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr sh, ln;
    struct plt_reloc *v = NULL;
    size_t cap = 0;

    *n = 0;
    *dynsym = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || sh.sh_entsize == 0)
            continue;
        Elf_Scn *link = elf_getscn(elf, sh.sh_link);
        if (!link || !gelf_getshdr(link, &ln) || ln.sh_type != SHT_DYNSYM)
            continue;
        if (*dynsym && *dynsym != link)
            continue; /* one dynamic symbol table per file */
        *dynsym = link;
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t count = d ? d->d_size / sh.sh_entsize : 0;
        for (size_t i = 0; i < count && i <= INT32_MAX && *n < PLT_MAX_RELOCS; i++) {
            GElf_Rela r;
            if (!gelf_getrela(d, (int)i, &r))
                break;
            uint32_t type = GELF_R_TYPE(r.r_info), sym = GELF_R_SYM(r.r_info);
            if ((type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) || sym == 0)
                continue;
            if (grow((void **)&v, &cap, *n + 1, sizeof(*v), 64)) {
                free(v);
                return -ENOMEM;
            }
            v[*n].got = r.r_offset;
            v[(*n)++].sym = sym;
        }
    }
    if (*n)
        qsort(v, *n, sizeof(*v), cmp_reloc);
    *out = v;
    return 0;
}

static const struct plt_reloc *reloc_at(const struct plt_reloc *v, size_t n, uint64_t got)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].got < got)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo].got == got ? &v[lo] : NULL;
}

/* The GOT slot a stub of @len bytes at @addr jumps through, or 0. */
static uint64_t stub_target(const uint8_t *code, size_t len, uint64_t addr)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        if (code[i] != 0xff || code[i + 1] != 0x25)
            continue;
        int32_t disp;
        memcpy(&disp, code + i + 2, sizeof(disp));
        return addr + i + 6 + (uint64_t)(int64_t)disp;
    }
    return 0;
}

static int add_plt(struct sym_symtab *t, Elf *elf, size_t shstrndx)
{
    GElf_Ehdr eh;
    GElf_Shdr sh, dsh;
    Elf_Scn *scn = NULL, *dynsym;
    struct plt_reloc *rel = NULL;
    size_t nrel;
    int added = 0, ret;

    if (!gelf_getehdr(elf, &eh) || eh.e_machine != EM_X86_64 || !shstrndx)
        return 0;
    if ((ret = plt_relocs(elf, &rel, &nrel, &dynsym)) != 0 || nrel == 0) {
        free(rel);
        return ret;
    }
    Elf_Data *syms = gelf_getshdr(dynsym, &dsh) ? elf_getdata(dynsym, NULL) : NULL;
    while (syms && (scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS || !(sh.sh_flags & SHF_EXECINSTR))
            continue;
        const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
        if (!name || (strcmp(name, ".plt") && strcmp(name, ".plt.sec") && strcmp(name, ".plt.got")))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t ent = sh.sh_entsize >= 8 && sh.sh_entsize <= 32 ? sh.sh_entsize : 16;
        if (!d || !d->d_buf || d->d_size % ent)
            ent = 16;
        for (size_t off = 0; d && d->d_buf && off + ent <= d->d_size; off += ent) {
            uint64_t got = stub_target((const uint8_t *)d->d_buf + off, ent, sh.sh_addr + off);
            const struct plt_reloc *r = got ? reloc_at(rel, nrel, got) : NULL;
            GElf_Sym sym;
            const char *fn;
            if (!r || r->sym > INT32_MAX || !gelf_getsym(syms, (int)r->sym, &sym) ||
                !(fn = elf_strptr(elf, dsh.sh_link, sym.st_name)) || !*fn)
                continue;
            char buf[NAME_MAX_LEN + 8];
            int len = snprintf(buf, sizeof(buf), "%.*s@plt", NAME_MAX_LEN, fn);
            uint32_t sname;
            if ((ret = arena_add(t, buf, (size_t)len, &sname)) != 0 ||
                (ret = add_sym(t, sh.sh_addr + off, ent, sname, 0)) != 0) {
                free(rel);
                return ret;
            }
            added++;
        }
    }
    free(rel);
    return added;
}

int sym_symtab_add_elf(struct sym_symtab *t, Elf *elf)
{
    return sym_symtab_add_mapped_elf(t, elf, false);
}

int sym_symtab_add_mapped_elf(struct sym_symtab *t, Elf *elf, bool mapped)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr shdr;
    size_t shstrndx;
    int total = 0;

    if (elf_kind(elf) != ELF_K_ELF)
        return -ENOEXEC;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        shstrndx = 0;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        int n = 0;
        if (!gelf_getshdr(scn, &shdr))
            continue;
        if (shdr.sh_type == SHT_SYMTAB || shdr.sh_type == SHT_DYNSYM) {
            n = add_section(t, elf, scn, &shdr, mapped, false);
        } else if (shdr.sh_type == SHT_PROGBITS && shstrndx) {
            const char *name = elf_strptr(elf, shstrndx, shdr.sh_name);
            if (name && strcmp(name, ".gnu_debugdata") == 0)
                n = add_debugdata(t, scn);
        }
        if (n < 0)
            return n;
        total += n;
    }
    int n = add_plt(t, elf, shstrndx);
    return n < 0 ? n : total + n;
}

static int cmp_sym(const void *a, const void *b)
{
    const struct sym_elf_sym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    /* Among aliases prefer the one with a size, then by alias_rank and
     * order of adding (both in name while adding). */
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->name < y->name ? -1 : (x->name > y->name);
}

/* The name a pass-1 symbol points at. */
static const char *raw_name(const struct sym_symtab *t, uint32_t name, size_t *len)
{
    unsigned src = name >> SYM_NAME_SRC_SHIFT;
    uint32_t off = name & SYM_NAME_OFF_MASK;
    const char *p;
    size_t room;
    if (src == 0) {
        p = t->strs + off;
        room = t->strs_len - off;
    } else {
        p = t->src[src].data + off;
        room = t->src[src].len - off;
    }
    /* as elf_strptr, a name must end inside its table (longer ones are cut
     * at NAME_MAX_LEN) */
    *len = strnlen(p, room);
    if (*len == room)
        *len = 0;
    else if (*len > NAME_MAX_LEN)
        *len = NAME_MAX_LEN;
    return p;
}

static int flush_block(struct sym_symtab *t, void *cc, const char *blk, size_t len)
{
    size_t bound = ZSTD_compressBound(len);
    if (grow((void **)&t->z, &t->z_cap, t->z_len + bound, 1, 16384) ||
        grow((void **)&t->blocks, &t->blocks_cap, t->nblocks + 2, sizeof(*t->blocks), 64))
        return -ENOMEM;
    size_t n = ZSTD_compressCCtx(cc, t->z + t->z_len, t->z_cap - t->z_len, blk, len, 1);
    if (ZSTD_isError(n) || t->z_len + n > UINT32_MAX)
        return -ENOMEM;
    t->blocks[t->nblocks++] = (uint32_t)t->z_len;
    t->z_len += n;
    return 0;
}

static void drop_sources(const struct sym_symtab *t)
{
    for (unsigned i = 1; i < t->nsrc; i++)
        file_drop_pages(t->src[i].map, t->src[i].map_len);
}

/* Pass 2, compressed: the names in address order, NAMES_PER_BLOCK to a
 * zstd block; a symbol's name becomes its index. */
static int compress_names(struct sym_symtab *t)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    char *blk = NULL;
    size_t blk_len = 0, blk_cap = 0;
    int ret = -ENOMEM;

    if (!cc)
        return -ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        size_t n;
        if (i % DROP_EVERY_SYMS == DROP_EVERY_SYMS - 1)
            drop_sources(t);
        const char *name = raw_name(t, t->raw[t->syms[i].name & SYM_NAME_OFF_MASK], &n);
        if (grow((void **)&blk, &blk_cap, blk_len + n + 1, 1, 4096))
            goto out;
        memcpy(blk + blk_len, name, n);
        blk[blk_len + n] = '\0';
        blk_len += n + 1;
        t->syms[i].name = (uint32_t)i;
        if ((i + 1) % NAMES_PER_BLOCK == 0 || i + 1 == t->n) {
            if (flush_block(t, cc, blk, blk_len))
                goto out;
            blk_len = 0;
        }
    }
    t->blocks[t->nblocks] = (uint32_t)t->z_len; /* the end of the last block */
    uint8_t *z = realloc(t->z, t->z_len);
    if (z) {
        t->z = z;
        t->z_cap = t->z_len;
    }
    t->cur_block = SIZE_MAX;
    ret = 0;
out:
    free(blk);
    ZSTD_freeCCtx(cc);
    return ret;
}

/* Pass 2, small tables: the names in address order, in an arena of their
 * exact size. */
static int copy_names(struct sym_symtab *t)
{
    struct sym_symtab fresh = {0};
    for (size_t i = 0; i < t->n; i++) {
        size_t n;
        if (i % DROP_EVERY_SYMS == DROP_EVERY_SYMS - 1)
            drop_sources(t);
        const char *name = raw_name(t, t->raw[t->syms[i].name & SYM_NAME_OFF_MASK], &n);
        uint32_t off;
        if (arena_add(&fresh, name, n, &off)) {
            free(fresh.strs);
            return -ENOMEM;
        }
        t->syms[i].name = off;
    }
    char *exact = fresh.strs_len ? realloc(fresh.strs, fresh.strs_len) : NULL;
    free(t->strs);
    t->strs = exact ? exact : fresh.strs;
    t->strs_len = fresh.strs_len;
    t->strs_cap = exact ? fresh.strs_len : fresh.strs_cap;
    return 0;
}

void sym_symtab_finish(struct sym_symtab *t)
{
    size_t w = 0, srcbytes = t->strs_len;

    if (t->n > 0)
        qsort(t->syms, t->n, sizeof(*t->syms), cmp_sym);
    for (size_t r = 0; r < t->n; r++) {
        if (w > 0 && t->syms[w - 1].addr == t->syms[r].addr)
            continue;
        t->syms[w++] = t->syms[r];
    }
    t->n = w;
    if (w < t->cap) {
        struct sym_elf_sym *s = w ? realloc(t->syms, w * sizeof(*s)) : NULL;
        if (s || !w) {
            if (!w)
                free(t->syms);
            t->syms = s;
            t->cap = w;
        }
    }
    /* Names are most of a large table (2.5 MB of libLLVM's 3 MB): over
     * COMPRESS_MIN of string tables they are compressed, 64 to a block in
     * address order (4x smaller for libLLVM), else copied into an arena of
     * their size; either way only the names of the symbols kept. A failure
     * (out of memory) leaves a symbol nameless, never a dangling name. */
    for (unsigned i = 1; i < t->nsrc; i++)
        srcbytes += t->src[i].len;
    int ret = w == 0 ? 0 : srcbytes >= COMPRESS_MIN ? compress_names(t) : copy_names(t);
    if (ret == 0 && t->blocks) {
        free(t->strs);
        t->strs = NULL;
        t->strs_len = t->strs_cap = 0;
    } else if (ret != 0) {
        free(t->z);
        free(t->blocks);
        t->z = NULL;
        t->blocks = NULL;
        t->z_len = t->z_cap = t->nblocks = t->blocks_cap = 0;
        for (size_t i = 0; i < t->n; i++)
            t->syms[i].name = SYM_NAME_NONE;
    }
    free(t->raw);
    t->raw = NULL;
    t->raw_cap = 0;
    drop_sources(t);
    memset(t->src, 0, sizeof(t->src));
    t->nsrc = 0;
}

const char *sym_symtab_name(struct sym_symtab *t, const struct sym_elf_sym *s)
{
    if (!t->blocks)
        return s->name < t->strs_len ? t->strs + s->name : "";
    size_t b = s->name / NAMES_PER_BLOCK;
    if (b >= t->nblocks)
        return "";
    if (b != t->cur_block) {
        const uint8_t *src = t->z + t->blocks[b];
        size_t srclen = t->blocks[b + 1] - t->blocks[b];
        unsigned long long want = ZSTD_getFrameContentSize(src, srclen);
        if (want == ZSTD_CONTENTSIZE_ERROR || want == ZSTD_CONTENTSIZE_UNKNOWN ||
            want > NAMES_PER_BLOCK * (NAME_MAX_LEN + 1))
            return "";
        if (want > t->cur_cap) {
            char *c = realloc(t->cur, want);
            if (!c)
                return "";
            t->cur = c;
            t->cur_cap = want;
        }
        size_t got = ZSTD_decompress(t->cur, t->cur_cap, src, srclen);
        if (ZSTD_isError(got) || got != want || got == 0 || t->cur[got - 1] != '\0') {
            t->cur_block = SIZE_MAX;
            return "";
        }
        t->cur_len = got;
        t->cur_block = b;
    }
    const char *p = t->cur, *end = t->cur + t->cur_len;
    for (size_t k = s->name % NAMES_PER_BLOCK; k > 0 && p < end; k--)
        p += strlen(p) + 1;
    return p < end ? p : "";
}

const struct sym_elf_sym *sym_symtab_find(const struct sym_symtab *t, uint64_t addr)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->syms[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    /* A sized symbol may end before addr while an earlier, larger one still
     * covers it (nested local labels); look back a few entries. */
    for (size_t i = lo, steps = 0; i > 0 && steps < 4; i--, steps++) {
        const struct sym_elf_sym *s = &t->syms[i - 1];
        if (s->size == 0) {
            if (i == lo)
                return i < t->n || addr - s->addr < 4096 ? s : NULL;
            continue;
        }
        if (addr - s->addr < s->size)
            return s;
    }
    return NULL;
}

size_t sym_symtab_bytes(const struct sym_symtab *t)
{
    return t->cap * sizeof(*t->syms) + t->strs_cap + t->z_cap + t->blocks_cap * sizeof(*t->blocks) +
           t->cur_cap;
}

void sym_symtab_free(struct sym_symtab *t)
{
    free(t->syms);
    free(t->strs);
    free(t->z);
    free(t->blocks);
    free(t->cur);
    free(t->raw);
    memset(t, 0, sizeof(*t));
}

int sym_elf_segments(Elf *elf, struct sym_elf_seg **segs)
{
    size_t phnum;
    int n = 0;

    *segs = NULL;
    if (elf_getphdrnum(elf, &phnum) != 0 || phnum == 0)
        return 0;
    if (phnum > 4096)
        phnum = 4096;
    *segs = calloc(phnum, sizeof(**segs));
    if (!*segs)
        return -ENOMEM;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        (*segs)[n].offset = ph.p_offset;
        (*segs)[n].vaddr = ph.p_vaddr;
        (*segs)[n].filesz = ph.p_filesz;
        n++;
    }
    return n;
}

int sym_elf_off_to_vaddr(const struct sym_elf_seg *segs, int nsegs, uint64_t off, uint64_t *vaddr)
{
    for (int i = 0; i < nsegs; i++) {
        if (off >= segs[i].offset && off - segs[i].offset < segs[i].filesz) {
            *vaddr = segs[i].vaddr + (off - segs[i].offset);
            return 0;
        }
    }
    return -ENOENT;
}

bool sym_elf_has_debug_info(Elf *elf)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr shdr;
    size_t shstrndx;

    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return false;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
            continue;
        const char *name = elf_strptr(elf, shstrndx, shdr.sh_name);
        if (name && (strcmp(name, ".debug_info") == 0 || strcmp(name, ".zdebug_info") == 0))
            return true;
    }
    return false;
}
