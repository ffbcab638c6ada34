/* SPDX-License-Identifier: Apache-2.0 */
#include <dlfcn.h>
#include <errno.h>
#include <gelf.h>
#include <lzma.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <zstd.h>

#include "symbolizer/elf_symtab.h"

#define DEBUGDATA_MAX   (64u << 20)  /* decompressed MiniDebugInfo cap */
#define NAME_MAX_LEN    4096         /* longer names are truncated C++ noise */
#define NAMES_PER_BLOCK 64           /* names decompressed together on a miss */
#define COMPRESS_MIN    (256u << 10) /* smaller name arenas stay as they are */

static int add_name(struct sym_symtab *t, const char *name, uint32_t *off)
{
    size_t n = strnlen(name, NAME_MAX_LEN);
    if (t->strs_len + n + 1 > UINT32_MAX)
        return -E2BIG;
    if (t->strs_len + n + 1 > t->strs_cap) {
        size_t cap = t->strs_cap ? t->strs_cap : 4096;
        while (cap < t->strs_len + n + 1)
            cap *= 2;
        char *s = realloc(t->strs, cap);
        if (!s)
            return -ENOMEM;
        t->strs = s;
        t->strs_cap = cap;
    }
    memcpy(t->strs + t->strs_len, name, n);
    t->strs[t->strs_len + n] = '\0';
    *off = (uint32_t)t->strs_len;
    t->strs_len += n + 1;
    return 0;
}

static int add_sym(struct sym_symtab *t, uint64_t addr, uint64_t size, const char *name)
{
    uint32_t off;
    int err;

    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        struct sym_elf_sym *s = realloc(t->syms, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        t->syms = s;
        t->cap = cap;
    }
    err = add_name(t, name, &off);
    if (err)
        return err;
    t->syms[t->n].addr = addr;
    t->syms[t->n].size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    t->syms[t->n].name = off;
    t->n++;
    return 0;
}

/* Every this many symbols read from a mapped file, its pages are handed
 * back: a large C++ library's .symtab and .strtab (3.6 MB for libLLVM's)
 * would otherwise be resident on top of the names being copied out. */
#define DROP_EVERY_SYMS 4096

static void drop_pages(Elf *elf)
{
    size_t len;
    char *img = elf_rawfile(elf, &len);
    if (img && len && ((uintptr_t)img & 4095) == 0)
        madvise(img, len, MADV_DONTNEED);
}

static int add_section(struct sym_symtab *t, Elf *elf, Elf_Scn *scn, const GElf_Shdr *shdr,
                       bool mapped)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    int added = 0;

    if (!data || !data->d_buf || shdr->sh_entsize == 0)
        return 0;
    size_t count = data->d_size / shdr->sh_entsize;
    for (size_t i = 1; i < count && i <= INT32_MAX; i++) {
        if (mapped && i % DROP_EVERY_SYMS == 0)
            drop_pages(elf);
        GElf_Sym sym;
        if (!gelf_getsym(data, (int)i, &sym))
            break;
        int type = GELF_ST_TYPE(sym.st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
            sym.st_value == 0)
            continue;
        const char *name = elf_strptr(elf, shdr->sh_link, sym.st_name);
        if (!name || !name[0])
            continue;
        int err = add_sym(t, sym.st_value, sym.st_size, name);
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
            int n = add_section(t, mini, s, &shdr, false);
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
            n = add_section(t, elf, scn, &shdr, mapped);
        } else if (shdr.sh_type == SHT_PROGBITS && shstrndx) {
            const char *name = elf_strptr(elf, shstrndx, shdr.sh_name);
            if (name && strcmp(name, ".gnu_debugdata") == 0)
                n = add_debugdata(t, scn);
        }
        if (n < 0)
            return n;
        total += n;
    }
    return total;
}

static int cmp_sym(const void *a, const void *b)
{
    const struct sym_elf_sym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    /* Among aliases prefer the one with a size, then the longest (e.g.
     * "__libc_malloc" vs "malloc" is a toss-up; sized beats unsized). */
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->name < y->name ? -1 : (x->name > y->name);
}

static void compress_names(struct sym_symtab *t);

void sym_symtab_finish(struct sym_symtab *t)
{
    size_t w = 0;

    if (t->n == 0)
        return;
    qsort(t->syms, t->n, sizeof(*t->syms), cmp_sym);
    for (size_t r = 0; r < t->n; r++) {
        if (w > 0 && t->syms[w - 1].addr == t->syms[r].addr)
            continue;
        t->syms[w++] = t->syms[r];
    }
    t->n = w;
    if (w < t->cap) {
        struct sym_elf_sym *s = realloc(t->syms, w * sizeof(*s));
        if (s) {
            t->syms = s;
            t->cap = w;
        }
    }
    /* Names are most of a symbol table (2.8 MB of libLLVM's 3.4 MB), and
     * only a cache miss reads one: keep them zstd-compressed, NAMES_PER_BLOCK
     * to a block in address order, 2-3x smaller. Only the names still in
     * use go in (not those of the aliases and duplicates just dropped).
     * Small tables (most executables) are not worth the CPU. */
    if (t->strs_len >= COMPRESS_MIN)
        compress_names(t);
}

/* Compresses the names of syms[0..n) into blocks and frees the arena; on
 * failure the arena stays as it is (names read from it directly). */
static void compress_names(struct sym_symtab *t)
{
    size_t nblocks = (t->n + NAMES_PER_BLOCK - 1) / NAMES_PER_BLOCK, zcap = 0, zlen = 0;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    uint32_t *blocks = malloc((nblocks + 1) * sizeof(*blocks));
    char *raw = NULL;
    uint8_t *z = NULL;
    size_t rawcap = 0;

    if (!cc || !blocks)
        goto fail;
    for (size_t b = 0; b < nblocks; b++) {
        size_t len = 0, first = b * NAMES_PER_BLOCK;
        size_t last = first + NAMES_PER_BLOCK < t->n ? first + NAMES_PER_BLOCK : t->n;
        for (size_t i = first; i < last; i++)
            len += strlen(t->strs + t->syms[i].name) + 1;
        if (len > rawcap) {
            char *r = realloc(raw, len);
            if (!r)
                goto fail;
            raw = r;
            rawcap = len;
        }
        len = 0;
        for (size_t i = first; i < last; i++) {
            size_t l = strlen(t->strs + t->syms[i].name) + 1;
            memcpy(raw + len, t->strs + t->syms[i].name, l);
            len += l;
        }
        size_t bound = ZSTD_compressBound(len);
        if (zlen + bound > zcap) {
            size_t nc = zcap ? zcap * 2 : 4096;
            while (nc < zlen + bound)
                nc *= 2;
            uint8_t *nz = realloc(z, nc);
            if (!nz)
                goto fail;
            z = nz;
            zcap = nc;
        }
        size_t n = ZSTD_compressCCtx(cc, z + zlen, zcap - zlen, raw, len, 1);
        if (ZSTD_isError(n) || zlen + n > UINT32_MAX)
            goto fail;
        blocks[b] = (uint32_t)zlen;
        zlen += n;
    }
    blocks[nblocks] = (uint32_t)zlen;
    for (size_t i = 0; i < t->n; i++)
        t->syms[i].name = (uint32_t)i; /* its index: block i / NAMES_PER_BLOCK */
    uint8_t *shrunk = zlen ? realloc(z, zlen) : NULL;
    t->z = shrunk ? shrunk : z;
    t->z_len = zlen;
    t->blocks = blocks;
    t->nblocks = nblocks;
    t->cur_block = SIZE_MAX;
    free(t->strs);
    t->strs = NULL;
    t->strs_len = t->strs_cap = 0;
    free(raw);
    ZSTD_freeCCtx(cc);
    return;
fail:
    free(raw);
    free(z);
    free(blocks);
    ZSTD_freeCCtx(cc);
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
    return t->cap * sizeof(*t->syms) + t->strs_cap + t->z_len +
           (t->blocks ? (t->nblocks + 1) * sizeof(*t->blocks) : 0) + t->cur_cap;
}

void sym_symtab_free(struct sym_symtab *t)
{
    free(t->syms);
    free(t->strs);
    free(t->z);
    free(t->blocks);
    free(t->cur);
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
