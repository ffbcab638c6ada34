/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "symbolizer/kallsyms.h"

#define KALLSYMS_MAX  (256u << 20)
#define KSYM_NAME_MAX SYM_KSYM_NAME_MAX
#define NAME_MASK     ((1u << SYM_KSYM_NAME_BITS) - 1)
#define PFX_MAX       ((1u << (32 - SYM_KSYM_NAME_BITS)) - 1)
/* The last symbol has no successor to bound it; kernel functions are rarely
 * larger than this. */
#define KSYM_LAST_SPAN (64u * 1024)

static int cmp_ksym(const void *a, const void *b)
{
    const struct sym_ksym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    uint32_t xn = x->name & NAME_MASK, yn = y->name & NAME_MASK;
    return xn < yn ? -1 : (xn > yn);
}

/* Parses "ADDR TYPE NAME[\t[MODULE]]". Returns 1 for a text symbol, 0 for a
 * valid non-text line, -1 for garbage. */
static int parse_line(const char *p, const char *end, uint64_t *addr, const char **name,
                      size_t *name_len, const char **mod, size_t *mod_len)
{
    uint64_t v = 0;
    int digits = 0, h;

    while (p < end && (h = hexval(*p)) >= 0) {
        if (++digits > 16)
            return -1;
        v = (v << 4) | (uint64_t)h;
        p++;
    }
    if (digits == 0 || end - p < 4 || p[0] != ' ' || p[2] != ' ')
        return -1;
    char type = p[1];
    p += 3;
    const char *n = p;
    while (p < end && *p != '\t' && *p != ' ')
        p++;
    if (p == n || (size_t)(p - n) > KSYM_NAME_MAX)
        return -1;
    *addr = v;
    *name = n;
    *name_len = (size_t)(p - n);
    *mod = NULL;
    *mod_len = 0;
    while (p < end && (*p == '\t' || *p == ' '))
        p++;
    if (p < end) {
        if (*p != '[' || end[-1] != ']' || end - p < 3 || end - p > KSYM_NAME_MAX)
            return -1;
        *mod = p;
        *mod_len = (size_t)(end - p);
    }
    return type == 't' || type == 'T';
}

/* Parser state carried across chunks of a streamed file. */
struct kparse {
    size_t cap, scap, nonzero, total;
    uint32_t last_mod_off; /* the last module name, shared by the lines after it */
    size_t last_mod_len;
    /* a "__pfx_" line waiting for the function it pads */
    bool pending;
    uint64_t p_addr;
    size_t p_len, p_mod_len;
    bool p_has_mod;
    char p_name[KSYM_NAME_MAX + 1], p_mod[KSYM_NAME_MAX + 1];
};

static int append(struct sym_kallsyms *k, struct kparse *st, uint64_t addr, const char *name,
                  size_t name_len, const char *mod, size_t mod_len, unsigned pfx)
{
    size_t need = name_len + 1 + (mod ? mod_len + 1 : 0);
    if (k->strs_len + need > NAME_MASK)
        return -E2BIG;
    if (k->strs_len + need > st->scap) {
        size_t ns = st->scap ? st->scap + st->scap / 2 : 65536;
        while (ns < k->strs_len + need)
            ns *= 2;
        char *s = realloc(k->strs, ns);
        if (!s)
            return -ENOMEM;
        k->strs = s;
        st->scap = ns;
    }
    if (k->n == st->cap) {
        size_t nc = st->cap ? st->cap + st->cap / 2 : 4096;
        struct sym_ksym *s = realloc(k->syms, nc * sizeof(*s));
        if (!s)
            return -ENOMEM;
        k->syms = s;
        st->cap = nc;
    }
    struct sym_ksym *ks = &k->syms[k->n++];
    ks->addr = addr;
    ks->name = (uint32_t)k->strs_len | (uint32_t)pfx << SYM_KSYM_NAME_BITS;
    memcpy(k->strs + k->strs_len, name, name_len);
    k->strs[k->strs_len + name_len] = '\0';
    k->strs_len += name_len + 1;
    ks->module = SYM_KSYM_NO_MODULE;
    if (mod) {
        if (st->last_mod_off != SYM_KSYM_NO_MODULE && st->last_mod_len == mod_len &&
            memcmp(k->strs + st->last_mod_off, mod, mod_len) == 0) {
            ks->module = st->last_mod_off;
        } else {
            ks->module = (uint32_t)k->strs_len;
            memcpy(k->strs + k->strs_len, mod, mod_len);
            k->strs[k->strs_len + mod_len] = '\0';
            k->strs_len += mod_len + 1;
            st->last_mod_off = ks->module;
            st->last_mod_len = mod_len;
        }
    }
    return 0;
}

/* Appends the waiting "__pfx_" line as a symbol of its own. */
static int flush_pending(struct sym_kallsyms *k, struct kparse *st)
{
    if (!st->pending)
        return 0;
    st->pending = false;
    return append(k, st, st->p_addr, st->p_name, st->p_len, st->p_has_mod ? st->p_mod : NULL,
                  st->p_mod_len, 0);
}

/* One text symbol. "__pfx_NAME" waits for the next line: when that is NAME,
 * in the same module, within PFX_MAX bytes after it, the two become one
 * entry. */
static int add_text(struct sym_kallsyms *k, struct kparse *st, uint64_t addr, const char *name,
                    size_t name_len, const char *mod, size_t mod_len)
{
    int ret;
    if (st->pending) {
        bool same_mod =
            mod ? st->p_has_mod && st->p_mod_len == mod_len && memcmp(st->p_mod, mod, mod_len) == 0
                : !st->p_has_mod;
        if (same_mod && st->p_len == name_len + 6 && memcmp(st->p_name + 6, name, name_len) == 0 &&
            addr > st->p_addr && addr - st->p_addr <= PFX_MAX) {
            st->pending = false;
            return append(k, st, addr, name, name_len, mod, mod_len, (unsigned)(addr - st->p_addr));
        }
        if ((ret = flush_pending(k, st)) != 0)
            return ret;
    }
    if (name_len > 6 && memcmp(name, "__pfx_", 6) == 0) {
        st->pending = true;
        st->p_addr = addr;
        memcpy(st->p_name, name, name_len);
        st->p_len = name_len;
        st->p_has_mod = mod != NULL;
        st->p_mod_len = mod ? mod_len : 0;
        if (mod)
            memcpy(st->p_mod, mod, mod_len);
        return 0;
    }
    return append(k, st, addr, name, name_len, mod, mod_len, 0);
}

/* Parses the complete lines of @buf; returns the bytes consumed (a final
 * line without '\n' is left for the next chunk unless @last). */
static ssize_t parse_lines(struct sym_kallsyms *k, struct kparse *st, const char *buf, size_t len,
                           bool last)
{
    const char *p = buf, *end = buf + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl && !last)
            break;
        const char *le = nl ? nl : end;
        uint64_t addr = 0;
        const char *name, *mod;
        size_t name_len, mod_len;
        if (le == p) {
            p = nl ? nl + 1 : end;
            continue;
        }
        int r = parse_line(p, le, &addr, &name, &name_len, &mod, &mod_len);
        p = nl ? nl + 1 : end;
        if (r < 0) {
            k->bad_lines++;
            continue;
        }
        st->total++;
        if (addr)
            st->nonzero++;
        int ret =
            r == 0 ? flush_pending(k, st) : add_text(k, st, addr, name, name_len, mod, mod_len);
        if (ret)
            return ret;
    }
    if (last) {
        int ret = flush_pending(k, st);
        if (ret)
            return ret;
    }
    return p - buf;
}

/* Sorts, and gives back the slack of the growing arrays: the table lives
 * for the agent's whole life. */
static void finish(struct sym_kallsyms *k, struct kparse *st)
{
    k->restricted = st->total > 0 && st->nonzero == 0;
    if (k->n) {
        qsort(k->syms, k->n, sizeof(*k->syms), cmp_ksym);
        struct sym_ksym *s = realloc(k->syms, k->n * sizeof(*s));
        if (s)
            k->syms = s;
    }
    if (k->strs_len) {
        char *s = realloc(k->strs, k->strs_len);
        if (s)
            k->strs = s;
    }
}

int sym_kallsyms_parse(struct sym_kallsyms *k, const char *buf, size_t len)
{
    struct kparse st = {.last_mod_off = SYM_KSYM_NO_MODULE};
    ssize_t r = parse_lines(k, &st, buf, len, true);
    if (r < 0)
        return (int)r;
    finish(k, &st);
    return 0;
}

/* Streams the file through a 64 KiB buffer: /proc/kallsyms is ~6 MB of
 * text, which need never be in memory at once. */
int sym_kallsyms_load(struct sym_kallsyms *k, const char *path)
{
    struct kparse st = {.last_mod_off = SYM_KSYM_NO_MODULE};
    enum { CHUNK = 65536 };
    char *buf = malloc(CHUNK);
    size_t have = 0, total = 0;
    int fd, ret = 0;

    if (!buf)
        return -ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(buf);
        return -errno;
    }
    for (;;) {
        ssize_t n = read(fd, buf + have, CHUNK - have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ret = -errno;
            break;
        }
        total += (size_t)n;
        if (total > KALLSYMS_MAX) {
            ret = -EFBIG;
            break;
        }
        have += (size_t)n;
        ssize_t used = parse_lines(k, &st, buf, have, n == 0);
        if (used < 0) {
            ret = (int)used;
            break;
        }
        memmove(buf, buf + used, have - (size_t)used);
        have -= (size_t)used;
        if (n == 0)
            break;
        if (have == CHUNK) { /* one line longer than the buffer: garbage */
            k->bad_lines++;
            have = 0;
        }
    }
    close(fd);
    free(buf);
    if (ret == 0)
        finish(k, &st);
    return ret;
}

static unsigned pfx_of(const struct sym_ksym *s)
{
    return s->name >> SYM_KSYM_NAME_BITS;
}

static void hit(struct sym_kallsyms *k, const struct sym_ksym *s, bool in_pfx,
                struct sym_ksym_hit *out)
{
    const char *name = k->strs + (s->name & NAME_MASK);
    out->module = s->module == SYM_KSYM_NO_MODULE ? NULL : k->strs + s->module;
    out->addr = s->addr;
    out->name = name;
    if (in_pfx) {
        out->addr = s->addr - pfx_of(s);
        snprintf(k->pfx_name, sizeof(k->pfx_name), "__pfx_%s", name);
        out->name = k->pfx_name;
    }
}

int sym_kallsyms_lookup(struct sym_kallsyms *k, uint64_t addr, struct sym_ksym_hit *out)
{
    size_t lo = 0, hi = k->n;

    if (k->restricted || addr == 0)
        return -ENOENT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k->syms[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* The padding before the next symbol (any of its aliases) is its
     * "__pfx_" symbol, unless another symbol starts inside the padding. An
     * address is in a padding only when the next symbol starts within
     * PFX_MAX bytes: the common case costs one comparison. */
    if (lo < k->n && k->syms[lo].addr - addr <= PFX_MAX) {
        for (size_t j = lo; j < k->n && k->syms[j].addr == k->syms[lo].addr; j++) {
            uint64_t start = k->syms[j].addr - pfx_of(&k->syms[j]);
            if (pfx_of(&k->syms[j]) && addr >= start && (lo == 0 || k->syms[lo - 1].addr < start)) {
                hit(k, &k->syms[j], true, out);
                return 0;
            }
        }
    }
    if (lo == 0)
        return -ENOENT;
    /* Several names may share an address; lo - 1 is the last of them. */
    size_t i = lo - 1;
    if (lo == k->n && addr - k->syms[i].addr >= KSYM_LAST_SPAN)
        return -ENOENT;
    while (i > 0 && k->syms[i - 1].addr == k->syms[i].addr)
        i--;
    hit(k, &k->syms[i], false, out);
    return 0;
}

size_t sym_kallsyms_bytes(const struct sym_kallsyms *k)
{
    return k->n * sizeof(*k->syms) + k->strs_len;
}

void sym_kallsyms_free(struct sym_kallsyms *k)
{
    free(k->syms);
    free(k->strs);
    memset(k, 0, sizeof(*k));
}
