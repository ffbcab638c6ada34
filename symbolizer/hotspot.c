/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hotspot — names HotSpot frames from the process's memory. See hotspot.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/hotspot.h"
#include "symbolizer/proc_mem.h"

#define MAX_METHODS          16384      /* methods cached per process */
#define MAX_NMETHODS         4096       /* compiled methods cached per process */
#define MAX_SYMBOL           1024       /* bytes of a class, method or file name */
#define MAX_LINETAB          (64 << 10) /* bytes of a line number table */
#define MAX_PCS              (1 << 16)  /* PcDescs of one compiled method */
#define MAX_SCOPES           (1 << 20)  /* bytes of one compiled method's scope data */
#define MAX_NM_BYTES         (64 << 20) /* bytes of debug info cached per process */
#define MAX_META             (1 << 16)  /* metadata entries of one compiled method */
#define MAX_HOPS             (1 << 16)  /* segment map hops to a block's start */
#define SEG_CHUNK            256        /* segment map bytes read at once */
#define INVOCATION_ENTRY_BCI (-1)

/* ---- decoders ------------------------------------------------------------- */

int sym_jvm_u5(const uint8_t *buf, size_t n, size_t *pos, unsigned x, uint32_t *out)
{
    /* UNSIGNED5 (unsigned5.hpp): 64 "high" byte values continue a number,
     * the others end it; from JDK 20 byte 0 is excluded (x = 1). */
    const uint32_t L = 256 - 64 - x;
    uint32_t sum = 0;
    unsigned shift = 0;
    size_t p = *pos;

    if (x > 1)
        return -1;
    for (int i = 0; i < 5; i++) {
        if (p >= n || buf[p] < x)
            return -1;
        uint32_t b = buf[p++] - x;
        sum += b << shift;
        if (b < L || i == 4) {
            *pos = p;
            *out = sum;
            return 0;
        }
        shift += 6;
    }
    return -1; /* not reached */
}

static int32_t unzigzag(uint32_t v)
{
    return (int32_t)(v >> 1) ^ -(int32_t)(v & 1);
}

int sym_jvm_line(const uint8_t *tab, size_t n, unsigned x, uint32_t bci, size_t *used)
{
    /* CompressedLineNumberReadStream: (bci delta << 3 | line delta) in a
     * byte, or 0xff and two signed numbers; 0 ends the table. Sums are 64
     * bits: a corrupt table cannot overflow them. */
    int64_t cur_bci = 0, cur_line = 0, best_bci = -1;
    int line = -1;
    size_t p = 0;

    if (used)
        *used = 0;
    for (;;) {
        if (p >= n)
            return line; /* cut short: the best so far */
        uint8_t b = tab[p++];
        if (b == 0)
            break;
        if (b == 0xff) {
            uint32_t db, dl;
            if (sym_jvm_u5(tab, n, &p, x, &db) != 0 || sym_jvm_u5(tab, n, &p, x, &dl) != 0)
                return line;
            cur_bci += unzigzag(db);
            cur_line += unzigzag(dl);
        } else {
            cur_bci += b >> 3;
            cur_line += b & 7;
        }
        if (cur_bci <= (int64_t)bci && cur_bci >= best_bci) {
            best_bci = cur_bci;
            line = cur_line < 0 ? -1 : cur_line > INT32_MAX ? INT32_MAX : (int)cur_line;
        }
    }
    if (used)
        *used = p;
    return line;
}

int sym_jvm_scopes(const uint8_t *data, size_t n, unsigned x, uint32_t off, uint32_t *methods,
                   int32_t *bcis, int max)
{
    /* ScopeDesc::decode_body: sender offset, method index, bci + 1, at
     * each scope's offset; offset 0 (serialized_null) ends the chain, and
     * a sender is written before its callee, so offsets go down. */
    int k = 0;

    while (off != 0 && k < max) {
        size_t p = off;
        uint32_t sender, midx, bci;
        if (off >= n || sym_jvm_u5(data, n, &p, x, &sender) != 0 ||
            sym_jvm_u5(data, n, &p, x, &midx) != 0 || sym_jvm_u5(data, n, &p, x, &bci) != 0 ||
            sender >= off)
            return -1;
        methods[k] = midx;
        bcis[k] = (int32_t)bci + INVOCATION_ENTRY_BCI;
        k++;
        off = sender;
    }
    return k;
}

/* ---- the caches ----------------------------------------------------------- */

struct jmethod {
    uint64_t addr; /* Method*; 0 = empty slot */
    char *name;    /* "pkg.Class.method" */
    char *file;
    uint8_t *lines; /* the compressed line number table, or NULL */
    size_t nlines;
};

struct jnmethod {
    uint64_t addr; /* the nmethod; 0 = empty slot */
    uint64_t code_begin, end;
    uint32_t compile_id;
    uint64_t name_p; /* CodeBlob::_name: a stub still there has the same */
    bool is_nmethod; /* else a stub: name only */
    uint64_t method;
    char *stub;   /* a stub's name */
    uint8_t *pcs; /* PcDescs */
    size_t npcs;
    uint8_t *scopes;
    size_t nscopes;
    uint64_t *meta;
    size_t nmeta;
};

struct sym_jvm {
    struct jmethod *m;
    size_t mcap, mused;
    struct jnmethod *nm;
    size_t nmcap, nmused;
    size_t nm_bytes; /* debug info held, at most MAX_NM_BYTES */
    bool have_proc;
    struct jvm_proc proc; /* the code heaps */
    char stubname[96];
};

static size_t hash64(uint64_t v)
{
    return (size_t)((v >> 3) * 0x9e3779b97f4a7c15ull);
}

static void method_free(struct jmethod *e)
{
    free(e->name);
    free(e->file);
    free(e->lines);
    memset(e, 0, sizeof(*e));
}

static void nm_free(struct jnmethod *e)
{
    free(e->stub);
    free(e->pcs);
    free(e->scopes);
    free(e->meta);
    memset(e, 0, sizeof(*e));
}

void sym_jvm_free(struct sym_jvm *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->mcap; i++)
        method_free(&c->m[i]);
    for (size_t i = 0; i < c->nmcap; i++)
        nm_free(&c->nm[i]);
    free(c->m);
    free(c->nm);
    free(c);
}

/* Open addressing on a power-of-two table of entries whose first member is
 * the key: the slot of @key, or the empty one where it goes. */
#define SLOT(tab, cap, key)                                                                        \
    ({                                                                                             \
        size_t i_ = hash64(key) & ((cap)-1);                                                       \
        while ((tab)[i_].addr && (tab)[i_].addr != (key))                                          \
            i_ = (i_ + 1) & ((cap)-1);                                                             \
        i_;                                                                                        \
    })

/* Room for one more entry: the table doubled when half full. */
#define GROW(tab, cap, used, bytes)                                                                \
    ({                                                                                             \
        int r_ = 0;                                                                                \
        if (((used) + 1) * 2 > (cap)) {                                                            \
            size_t ocap_ = (cap), ncap_ = ocap_ ? ocap_ * 2 : 256;                                 \
            __typeof__(tab) ns_ = calloc(ncap_, sizeof(*ns_)), old_ = (tab);                       \
            if (!ns_) {                                                                            \
                r_ = -ENOMEM;                                                                      \
            } else {                                                                               \
                (tab) = ns_;                                                                       \
                (cap) = ncap_;                                                                     \
                for (size_t k_ = 0; k_ < ocap_; k_++)                                              \
                    if (old_[k_].addr)                                                             \
                        (tab)[SLOT(tab, cap, old_[k_].addr)] = old_[k_];                           \
                free(old_);                                                                        \
                *(bytes) += (long)((ncap_ - ocap_) * sizeof(*ns_));                                \
            }                                                                                      \
        }                                                                                          \
        r_;                                                                                        \
    })

/* ---- reading the process -------------------------------------------------- */

static int rd(uint32_t pid, uint64_t addr, void *buf, size_t len)
{
    return sym_proc_read(pid, addr, buf, len);
}

static int rd64(uint32_t pid, uint64_t addr, uint64_t *out)
{
    return rd(pid, addr, out, sizeof(*out));
}

/* A Symbol's text, '/' turned to '.' when @dots; malloc'd, or NULL. */
static char *read_symbol(uint32_t pid, const struct hs_vm *vm, uint64_t sym, bool dots)
{
    uint16_t len;
    char *s;

    if (!sym || rd(pid, sym + hs_get(vm, HS_SYMBOL_LENGTH), &len, sizeof(len)) != 0 || !len ||
        len > MAX_SYMBOL)
        return NULL;
    s = malloc((size_t)len + 1);
    if (!s)
        return NULL;
    if (rd(pid, sym + hs_get(vm, HS_SYMBOL_BODY), s, len) != 0) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20) { /* modified UTF-8 has no NUL or control bytes */
            free(s);
            return NULL;
        }
        if (dots && s[i] == '/')
            s[i] = '.';
    }
    s[len] = '\0';
    return s;
}

/* The Symbol* at index @idx of constant pool @cp. */
static uint64_t cp_symbol(uint32_t pid, const struct hs_vm *vm, uint64_t cp, uint16_t idx)
{
    uint64_t sym = 0;

    if (!idx || rd64(pid, cp + hs_get(vm, HS_SIZE_CONSTANTPOOL) + (uint64_t)idx * 8, &sym) != 0)
        return 0;
    return sym;
}

/* The line number table after the bytecodes at @at: read in growing chunks
 * until it ends inside one. */
static uint8_t *read_lines(uint32_t pid, const struct hs_vm *vm, uint64_t at, size_t *n)
{
    for (size_t want = 256; want <= MAX_LINETAB; want *= 4) {
        uint8_t *buf = malloc(want);
        size_t got = want, used;
        if (!buf)
            return NULL;
        /* near the end of a mapping a shorter read may still hold it */
        while (got >= 16 && rd(pid, at, buf, got) != 0)
            got /= 2;
        if (got < 16) {
            free(buf);
            return NULL;
        }
        sym_jvm_line(buf, got, vm->u5_excluded, 0, &used);
        if (used) {
            uint8_t *t = realloc(buf, used);
            *n = used;
            return t ? t : buf;
        }
        free(buf);
        if (got < want)
            return NULL; /* the memory ended before the table did */
    }
    return NULL;
}

static int load_method(uint32_t pid, const struct hs_vm *vm, uint64_t addr, struct jmethod *e)
{
    uint64_t cm, cp, holder, kname;
    uint16_t name_idx, code_size, flags, file_idx = 0;
    int r;

    if ((r = rd64(pid, addr + hs_get(vm, HS_METHOD_CONST), &cm)) != 0 ||
        (r = rd64(pid, cm + hs_get(vm, HS_CONST_CONSTANTS), &cp)) != 0 ||
        (r = rd(pid, cm + hs_get(vm, HS_CONST_NAME), &name_idx, 2)) != 0 ||
        (r = rd(pid, cm + hs_get(vm, HS_CONST_CODE_SIZE), &code_size, 2)) != 0 ||
        (r = rd(pid, cm + hs_get(vm, HS_CONST_FLAGS), &flags, 2)) != 0 ||
        (r = rd64(pid, cp + hs_get(vm, HS_CP_HOLDER), &holder)) != 0 ||
        (r = rd64(pid, holder + hs_get(vm, HS_KLASS_NAME), &kname)) != 0)
        return r;
    char *cls = read_symbol(pid, vm, kname, true);
    char *mname = read_symbol(pid, vm, cp_symbol(pid, vm, cp, name_idx), false);
    if (!cls || !mname) {
        free(cls);
        free(mname);
        return -EFAULT; /* not a method (any more) */
    }
    e->name = malloc(strlen(cls) + strlen(mname) + 2);
    if (e->name)
        sprintf(e->name, "%s.%s", cls, mname);
    free(cls);
    free(mname);
    if (!e->name)
        return -ENOMEM;
    if (hs_has(vm, HS_CP_SOURCE_FILE))
        r = rd(pid, cp + hs_get(vm, HS_CP_SOURCE_FILE), &file_idx, 2);
    else
        r = rd(pid, holder + hs_get(vm, HS_IK_SOURCE_FILE), &file_idx, 2);
    if (r == 0 && file_idx)
        e->file = read_symbol(pid, vm, cp_symbol(pid, vm, cp, file_idx), false);
    if (flags & 1) /* _has_linenumber_table: right after the bytecodes */
        e->lines =
            read_lines(pid, vm, cm + hs_get(vm, HS_SIZE_CONSTMETHOD) + code_size, &e->nlines);
    e->addr = addr;
    return 0;
}

static int get_method(struct sym_jvm *c, uint32_t pid, const struct hs_vm *vm, uint64_t addr,
                      const struct jmethod **out, long *bytes)
{
    struct jmethod fresh = {0};
    size_t i;
    int r;

    if (!addr || (addr & 7))
        return -EFAULT;
    if (c->mcap) {
        i = SLOT(c->m, c->mcap, addr);
        if (c->m[i].addr) {
            *out = &c->m[i];
            return 0;
        }
    }
    if (c->mused >= MAX_METHODS)
        return -ENOSPC;
    r = load_method(pid, vm, addr, &fresh);
    if (r == 0)
        r = GROW(c->m, c->mcap, c->mused, bytes);
    if (r) {
        method_free(&fresh);
        return r;
    }
    i = SLOT(c->m, c->mcap, addr);
    c->m[i] = fresh;
    c->mused++;
    *bytes += (long)(strlen(fresh.name) + (fresh.file ? strlen(fresh.file) : 0) + fresh.nlines + 2);
    *out = &c->m[i];
    return 0;
}

static int set_frame(const struct jmethod *m, int32_t bci, struct sym_jvm_frame *out, unsigned x)
{
    out->function = m->name;
    out->file = m->file;
    out->line = 0;
    if (m->lines) {
        int line = sym_jvm_line(m->lines, m->nlines, x, bci < 0 ? 0 : (uint32_t)bci, NULL);
        out->line = line > 0 ? (uint32_t)line : 0;
    }
    return 0;
}

/* The start of the code blob holding @pc: its heap's segment map, read
 * SEG_CHUNK bytes at a time, hopped back to the block's first segment. */
static int find_blob(struct sym_jvm *c, uint32_t pid, uint64_t pc, uint64_t *blob)
{
    const struct jvm_proc *j = &c->proc;
    const struct jvm_heap *h = NULL;
    uint8_t chunk[SEG_CHUNK];
    uint64_t seg, chunk_lo = 1, chunk_hi = 0;

    for (int i = 0; i < j->nheaps && i < STOKE_JVM_MAX_HEAPS; i++)
        if (pc >= j->heaps[i].lo && pc < j->heaps[i].hi)
            h = &j->heaps[i];
    if (!h)
        return -ENOENT;
    seg = (pc - h->lo) >> j->segment_shift;
    for (int hop = 0; hop < MAX_HOPS; hop++) {
        if (seg < chunk_lo || seg > chunk_hi) {
            chunk_lo = seg >= SEG_CHUNK - 1 ? seg - (SEG_CHUNK - 1) : 0;
            chunk_hi = seg;
            if (rd(pid, h->segmap + chunk_lo, chunk, (size_t)(chunk_hi - chunk_lo + 1)) != 0)
                return -EFAULT;
        }
        uint8_t tag = chunk[seg - chunk_lo];
        if (tag == 0xff)
            return -ENOENT; /* a free block */
        if (tag == 0) {
            *blob = h->lo + (seg << j->segment_shift) + j->heapblock_size;
            return 0;
        }
        if (tag > seg)
            return -EFAULT;
        seg -= tag;
    }
    return -EFAULT;
}

/* Copies [@lo, @hi) of the process, at most @cap bytes; NULL on failure. */
static void *read_range(uint32_t pid, uint64_t lo, uint64_t hi, size_t cap, size_t *n)
{
    void *buf;

    if (hi < lo || hi - lo > cap)
        return NULL;
    *n = (size_t)(hi - lo);
    buf = malloc(*n ? *n : 1);
    if (buf && *n && rd(pid, lo, buf, *n) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int load_nmethod(uint32_t pid, const struct hs_vm *vm, uint64_t blob, struct jnmethod *e)
{
    uint8_t hdr[STOKE_JVM_HDR];
    uint64_t name_p, scopes_begin;
    char name[16] = "";
    int32_t size, off_meta, off_pcs, off_deps;
    size_t n;

    if (rd(pid, blob, hdr, sizeof(hdr)) != 0)
        return -EFAULT;
    if (hs_get(vm, HS_BLOB_NAME) > sizeof(hdr) - 8 || hs_get(vm, HS_BLOB_SIZE) > sizeof(hdr) - 4 ||
        hs_get(vm, HS_BLOB_CODE_BEGIN) > sizeof(hdr) - 8)
        return -EINVAL;
    memcpy(&name_p, hdr + hs_get(vm, HS_BLOB_NAME), 8);
    memcpy(&size, hdr + hs_get(vm, HS_BLOB_SIZE), 4);
    memcpy(&e->code_begin, hdr + hs_get(vm, HS_BLOB_CODE_BEGIN), 8);
    if (size <= 0 || rd(pid, name_p, name, sizeof(name) - 1) != 0)
        return -EFAULT;
    e->end = blob + (uint64_t)size;
    e->addr = blob;
    e->name_p = name_p;
    if (strncmp(name, "nmethod", 7) != 0 && strncmp(name, "native nmethod", 14) != 0) {
        char stub[64] = "";
        for (size_t k = 0; k + 1 < sizeof(stub); k++) { /* names are short: read on to NUL */
            if (rd(pid, name_p + k, &stub[k], 1) != 0 || !stub[k])
                break;
            if ((unsigned char)stub[k] < 0x20 || (unsigned char)stub[k] > 0x7e)
                stub[k] = '?';
        }
        e->stub = malloc(strlen(stub) + 8);
        if (!e->stub)
            return -ENOMEM;
        sprintf(e->stub, "[jvm] %s", stub[0] ? stub : "stub");
        return 0;
    }
    e->is_nmethod = true;
    if (rd(pid, blob + hs_get(vm, HS_NM_COMPILE_ID), &e->compile_id, 4) != 0 ||
        rd64(pid, blob + hs_get(vm, HS_CM_METHOD), &e->method) != 0 ||
        rd64(pid, blob + hs_get(vm, HS_CM_SCOPES_DATA), &scopes_begin) != 0 ||
        rd(pid, blob + hs_get(vm, HS_NM_METADATA), &off_meta, 4) != 0 ||
        rd(pid, blob + hs_get(vm, HS_NM_SCOPES_PCS), &off_pcs, 4) != 0 ||
        rd(pid, blob + hs_get(vm, HS_NM_DEPENDENCIES), &off_deps, 4) != 0)
        return -EFAULT;
    if (off_meta <= 0 || off_pcs <= 0 || off_deps < off_pcs || off_deps > size ||
        scopes_begin < blob + (uint64_t)off_meta || scopes_begin > blob + (uint64_t)off_pcs)
        return 0; /* no debug info to read: the method alone */
    uint64_t meta_lo = blob + (uint64_t)off_meta;
    e->meta = read_range(pid, meta_lo, scopes_begin & ~7ull, MAX_META * 8, &n);
    e->nmeta = e->meta ? n / 8 : 0;
    e->scopes = read_range(pid, scopes_begin, blob + (uint64_t)off_pcs, MAX_SCOPES, &e->nscopes);
    e->pcs = read_range(pid, blob + (uint64_t)off_pcs, blob + (uint64_t)off_deps,
                        MAX_PCS * hs_get(vm, HS_SIZE_PCDESC), &n);
    e->npcs = e->pcs ? n / hs_get(vm, HS_SIZE_PCDESC) : 0;
    return 0;
}

static size_t nm_size(const struct jnmethod *e, const struct hs_vm *vm)
{
    return e->npcs * hs_get(vm, HS_SIZE_PCDESC) + e->nscopes + e->nmeta * 8 +
           (e->stub ? strlen(e->stub) + 1 : 0);
}

/* The cached code blob at @blob, read again when its compile id is not
 * @cookie's (a method compiled at the same address since). */
static int get_nmethod(struct sym_jvm *c, uint32_t pid, const struct hs_vm *vm, uint64_t blob,
                       const struct jnmethod **out, long *bytes)
{
    struct jnmethod fresh = {0};
    size_t i = 0;
    int r;

    if (c->nmcap) {
        i = SLOT(c->nm, c->nmcap, blob);
        if (c->nm[i].addr) {
            uint32_t id;
            uint64_t np;
            /* still the same blob? a compile id (or name) read is cheap */
            if (c->nm[i].is_nmethod ? rd(pid, blob + hs_get(vm, HS_NM_COMPILE_ID), &id, 4) == 0 &&
                                          id == c->nm[i].compile_id
                                    : rd64(pid, blob + hs_get(vm, HS_BLOB_NAME), &np) == 0 &&
                                          np == c->nm[i].name_p) {
                *out = &c->nm[i];
                return 0;
            }
        }
    }
    r = load_nmethod(pid, vm, blob, &fresh);
    if (r) {
        nm_free(&fresh);
        return r;
    }
    size_t add = nm_size(&fresh, vm),
           old = c->nmcap && c->nm[i].addr == blob ? nm_size(&c->nm[i], vm) : 0;
    if (c->nm_bytes - old + add > MAX_NM_BYTES) {
        nm_free(&fresh);
        return -ENOSPC;
    }
    if (c->nmcap && c->nm[i].addr == blob) { /* replaced */
        struct jnmethod *o = &c->nm[i];
        nm_free(o);
        *o = fresh;
        c->nm_bytes = c->nm_bytes - old + add;
        *bytes += (long)add - (long)old;
        *out = o;
        return 0;
    }
    if (c->nmused >= MAX_NMETHODS || (r = GROW(c->nm, c->nmcap, c->nmused, bytes)) != 0) {
        nm_free(&fresh);
        return r ? r : -ENOSPC;
    }
    i = SLOT(c->nm, c->nmcap, blob);
    c->nm[i] = fresh;
    c->nmused++;
    c->nm_bytes += add;
    *bytes += (long)add;
    *out = &c->nm[i];
    return 0;
}

int64_t sym_jvm_pc_scope(const uint8_t *pcs, size_t npcs, size_t sz, size_t opc, size_t osc,
                         int64_t off, bool leaf)
{
    int64_t prev_pc = -1, prev_sc = -1;

    if (!pcs || sz < 4 || opc > sz - 4 || osc > sz - 4)
        return -1;
    for (size_t k = 0; k < npcs; k++) {
        int32_t pco, sco;
        memcpy(&pco, pcs + k * sz + opc, 4);
        memcpy(&sco, pcs + k * sz + osc, 4);
        if (pco >= off) {
            if (leaf && pco != off && prev_pc >= 0 && prev_sc > 0 &&
                off - prev_pc <= SYM_JVM_LEAF_AFTER)
                return prev_sc;
            return sco < 0 ? -1 : sco;
        }
        prev_pc = pco;
        prev_sc = sco;
    }
    return -1;
}

static int name_code(struct sym_jvm *c, uint32_t pid, const struct hs_vm *vm, uint64_t bias,
                     uint64_t frame, bool is_return, struct sym_jvm_frame *out, int max,
                     long *bytes)
{
    uint64_t pc = STOKE_JVM_PC(frame), blob;
    const struct jnmethod *nm;
    const struct jmethod *m;
    int r;

    if (!c->have_proc) {
        r = hs_read_proc(vm, bias, sym_proc_read_cb, &pid, &c->proc);
        if (r)
            return r == -ESRCH ? r : -EFAULT;
        c->have_proc = true;
    }
    if ((r = find_blob(c, pid, pc, &blob)) != 0 || (r = get_nmethod(c, pid, vm, blob, &nm, bytes)))
        return r == -ESRCH || r == -ENOMEM ? r : -EFAULT;
    if (pc < nm->addr || pc >= nm->end)
        return -EFAULT;
    if (!nm->is_nmethod) {
        out[0].function = nm->stub;
        out[0].file = NULL;
        out[0].line = 0;
        return 1;
    }
    if ((nm->compile_id & 0xfff) != STOKE_JVM_COOKIE(frame))
        return -ESTALE;
    int64_t sc =
        sym_jvm_pc_scope(nm->pcs, nm->npcs, hs_get(vm, HS_SIZE_PCDESC), hs_get(vm, HS_PCDESC_PC),
                         hs_get(vm, HS_PCDESC_SCOPE), (int64_t)(pc - nm->code_begin), !is_return);
    uint32_t midx[SYM_JVM_MAX_INLINE];
    int32_t bcis[SYM_JVM_MAX_INLINE];
    int n = sc > 0 ? sym_jvm_scopes(nm->scopes, nm->nscopes, vm->u5_excluded, (uint32_t)sc, midx,
                                    bcis, max < SYM_JVM_MAX_INLINE ? max : SYM_JVM_MAX_INLINE)
                   : 0;
    int w = 0;
    for (int k = 0; k < n; k++) {
        if (midx[k] == 0 || midx[k] > nm->nmeta)
            continue;
        if (get_method(c, pid, vm, nm->meta[midx[k] - 1], &m, bytes) == 0)
            set_frame(m, bcis[k], &out[w++], vm->u5_excluded);
    }
    if (w == 0) { /* no debug info at this pc: the compiled method itself */
        if ((r = get_method(c, pid, vm, nm->method, &m, bytes)) != 0)
            return r == -ESRCH || r == -ENOMEM ? r : -EFAULT;
        set_frame(m, -1, &out[w++], vm->u5_excluded);
        out[0].line = 0;
    }
    return w;
}

int sym_jvm_name(struct sym_jvm **cache, uint32_t pid, const struct hs_vm *vm, uint64_t bias,
                 uint64_t frame, bool is_return, struct sym_jvm_frame *out, int max, long *bytes)
{
    struct sym_jvm *c = *cache;
    const struct jmethod *m;
    int r;

    if (max <= 0)
        return -EINVAL;
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return -ENOMEM;
        *cache = c;
        *bytes += (long)sizeof(*c);
    }
    if (STOKE_JVM_IS_CODE(frame))
        return name_code(c, pid, vm, bias, frame, is_return, out, max, bytes);
    r = get_method(c, pid, vm, STOKE_JVM_METHOD(frame), &m, bytes);
    if (r)
        return r == -ESRCH || r == -ENOMEM || r == -ENOSPC ? r : -EFAULT;
    set_frame(m, (int32_t)STOKE_JVM_BCI(frame), out, vm->u5_excluded);
    return 1;
}
