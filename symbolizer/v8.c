/* SPDX-License-Identifier: Apache-2.0 */
/*
 * v8 — names V8's JavaScript frames from the process's objects. See v8.h.
 *
 * Object layout (x86-64 without pointer compression, unwind/v8.h): a
 * tagged pointer has its low two bits 01 (the object starts one byte
 * lower), a Smi has bit 0 clear and its value in the upper 32 bits; every
 * heap object starts with its map, whose instance_type says what it is.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/utf8.h"
#include "symbolizer/v8.h"

#define MAX_SFIS        16384       /* functions cached per process: then the cache restarts */
#define MAX_SCRIPTS     1024        /* scripts whose line ends are cached per process */
#define MAX_NAME        512         /* UTF-16 units of a name or a script name */
#define MAX_SOURCE      (16u << 20) /* UTF-16 units of a source scanned for line ends */
#define MAX_LINES       (4u << 20)  /* line ends of one script */
#define MAX_DEPTH       32          /* nesting of cons, thin and sliced strings */
#define MAX_PIECES      4096        /* string pieces visited for one string */
#define MAX_LOCALS      65536       /* a ScopeInfo's context locals */
#define INLINED_LOCALS  75          /* kScopeInfoMaxInlinedLocalNamesSize */
#define CHUNK           (64u << 10) /* bytes per read of a long string */
#define SCOPE_SLOTS     6           /* slots read after a ScopeInfo's locals */
#define MAP_CACHE       32          /* map -> instance type, per generation */
#define FIXED_POSITIONS V8_VERSION(12, 8, 44) /* ScopeInfo's positions before its locals */

static bool is_heap(uint64_t v)
{
    return (v & 3) == 1;
}

static bool is_smi(uint64_t v)
{
    return (v & 1) == 0;
}

static int64_t smi(uint64_t v)
{
    return (int64_t)v >> 32;
}

/* ---- the caches ---------------------------------------------------------- */

struct v8fn {
    uint64_t sfi;               /* untagged; 0 = empty slot */
    uint64_t map, name, script; /* the SFI's words when it was read */
    uint64_t gen;               /* the generation it was last checked in */
    char *function, *file;
    int line;
};

struct v8script {
    uint64_t addr; /* tagged */
    uint64_t name, source, gen;
    char *file;
    uint32_t *ends;
    size_t nends;
    bool lines; /* ends are known (a one-line script has none) */
};

struct sym_v8cache {
    struct v8fn *slots;
    size_t cap, used;
    struct v8script *scripts;
    size_t nscripts;
    struct {
        uint64_t map;
        uint16_t type;
    } maps[MAP_CACHE];
    uint64_t maps_gen;
};

struct rd {
    const struct v8_layout *l;
    const struct sym_v8mem *mem;
    struct sym_v8cache *c;
    int gone; /* -ESRCH seen */
};

static int rd(struct rd *r, uint64_t addr, void *buf, size_t len)
{
    int ret = r->mem->read(r->mem->ctx, addr, buf, len);
    if (ret == -ESRCH)
        r->gone = 1;
    return ret;
}

static int rd_u64(struct rd *r, uint64_t addr, uint64_t *out)
{
    return rd(r, addr, out, sizeof(*out));
}

/* The instance type of the object at tagged pointer @v. */
static int type_of(struct rd *r, uint64_t v, uint16_t *type)
{
    uint64_t map;
    int ret;

    if (!is_heap(v))
        return -EFAULT;
    ret = rd_u64(r, v - 1 + r->l->bpf.obj_map, &map);
    if (ret)
        return ret;
    if (!is_heap(map))
        return -EFAULT;
    size_t k = (size_t)((map >> 3) * 0x9e3779b97f4a7c15ull >> 59) % MAP_CACHE;
    if (r->c->maps[k].map == map) {
        *type = r->c->maps[k].type;
        return 0;
    }
    ret = rd(r, map - 1 + r->l->bpf.map_type, type, sizeof(*type));
    if (ret)
        return ret;
    r->c->maps[k].map = map;
    r->c->maps[k].type = *type;
    return 0;
}

/* ---- strings ------------------------------------------------------------- */

/* Receives a piece of a string: @n code units, one or two bytes each.
 * Returns 0 to go on, 1 to stop. */
typedef int (*units_fn)(void *arg, const uint8_t *units, size_t n, bool two_byte);

struct visit {
    struct rd *r;
    units_fn fn;
    void *arg;
    unsigned pieces;
    uint8_t *buf; /* CHUNK bytes */
};

static int str_length(struct rd *r, uint64_t s, uint32_t *len)
{
    int32_t n;
    int ret = rd(r, s - 1 + r->l->str_length, &n, sizeof(n));
    if (ret == 0 && n < 0)
        ret = -EFAULT;
    if (ret == 0)
        *len = (uint32_t)n;
    return ret;
}

/*
 * Hands code units [@from, @to) of string @s to v->fn, through cons, thin
 * and sliced strings (external ones are not read: -ENOTSUP). Returns 0, 1
 * when v->fn stopped, or a negative errno. Recursion is on a cons string's
 * first part only and bounded by MAX_DEPTH; pieces by MAX_PIECES.
 */
static int visit(struct visit *v, uint64_t s, uint32_t from, uint32_t to, int depth)
{
    const struct v8_layout *l = v->r->l;

    for (;;) {
        uint16_t t;
        uint32_t len;
        int ret;

        if (from >= to)
            return 0;
        if (depth > MAX_DEPTH || ++v->pieces > MAX_PIECES)
            return -E2BIG;
        if ((ret = type_of(v->r, s, &t)) != 0)
            return ret;
        if (t >= l->first_nonstring)
            return -EFAULT;
        if ((ret = str_length(v->r, s, &len)) != 0)
            return ret;
        if (to > len)
            to = len;
        if (from >= to)
            return 0;
        uint16_t rep = t & l->str_repr_mask;
        if (rep == l->str_seq) {
            bool two = (t & l->str_enc_mask) != l->str_one_byte;
            uint64_t at = s - 1 + (two ? l->seq_two_chars : l->seq_one_chars);
            size_t unit = two ? 2 : 1;
            while (from < to) {
                size_t n = to - from;
                if (n * unit > CHUNK)
                    n = CHUNK / unit;
                if ((ret = rd(v->r, at + (uint64_t)from * unit, v->buf, n * unit)) != 0)
                    return ret;
                if ((ret = v->fn(v->arg, v->buf, n, two)) != 0)
                    return ret;
                from += (uint32_t)n;
            }
            return 0;
        }
        if (rep == l->str_cons) {
            uint64_t first, second;
            uint32_t flen;
            if ((ret = rd_u64(v->r, s - 1 + l->cons_first, &first)) != 0 ||
                (ret = rd_u64(v->r, s - 1 + l->cons_second, &second)) != 0)
                return ret;
            if (!is_heap(first) || (ret = str_length(v->r, first, &flen)) != 0)
                return ret ? ret : -EFAULT;
            if (from < flen && (ret = visit(v, first, from, to < flen ? to : flen, depth + 1)) != 0)
                return ret;
            if (to <= flen)
                return 0;
            s = second;
            from = from > flen ? from - flen : 0;
            to -= flen;
        } else if (rep == l->str_thin) {
            if ((ret = rd_u64(v->r, s - 1 + l->thin_actual, &s)) != 0)
                return ret;
        } else if (rep == l->str_sliced) {
            uint64_t parent, off;
            if ((ret = rd_u64(v->r, s - 1 + l->sliced_parent, &parent)) != 0 ||
                (ret = rd_u64(v->r, s - 1 + l->sliced_offset, &off)) != 0)
                return ret;
            if (!is_smi(off) || smi(off) < 0 || (uint64_t)smi(off) + to > UINT32_MAX)
                return -EFAULT;
            s = parent;
            from += (uint32_t)smi(off);
            to += (uint32_t)smi(off);
        } else {
            return -ENOTSUP; /* external: its characters are outside the heap */
        }
        depth++;
    }
}

static int visit_string(struct rd *r, uint64_t s, uint32_t max, units_fn fn, void *arg)
{
    struct visit v = {.r = r, .fn = fn, .arg = arg};
    int ret;

    v.buf = malloc(CHUNK);
    if (!v.buf)
        return -ENOMEM;
    ret = visit(&v, s, 0, max, 0);
    free(v.buf);
    return ret < 0 ? ret : 0;
}

struct utf16 {
    uint16_t u[MAX_NAME];
    size_t n;
};

static int collect(void *arg, const uint8_t *units, size_t n, bool two)
{
    struct utf16 *o = arg;

    for (size_t i = 0; i < n && o->n < MAX_NAME; i++)
        o->u[o->n++] = two ? (uint16_t)(units[2 * i] | units[2 * i + 1] << 8) : units[i];
    return o->n == MAX_NAME;
}

/* The string @s as malloc'd UTF-8 (at most MAX_NAME code units), or NULL
 * when it is not a string this reader can read. */
static char *read_string(struct rd *r, uint64_t s)
{
    struct utf16 *w = malloc(sizeof(*w));
    char *out = NULL;

    if (!w)
        return NULL;
    w->n = 0;
    if (visit_string(r, s, MAX_NAME, collect, w) == 0 && (out = malloc(w->n * 3 + 1)) != NULL) {
        size_t o = 0;
        for (size_t i = 0; i < w->n; i++) {
            uint32_t c = w->u[i];
            if (c >= 0xd800 && c < 0xdc00 && i + 1 < w->n && w->u[i + 1] >= 0xdc00 &&
                w->u[i + 1] < 0xe000) {
                c = 0x10000 + ((c - 0xd800) << 10) + (w->u[i + 1] - 0xdc00);
                i++;
            } else if ((c >= 0xd800 && c < 0xe000) || c == 0) {
                c = 0xfffd; /* a lone surrogate; NUL would end the name */
            }
            o += sym_put_utf8(out + o, c);
        }
        out[o] = '\0';
    }
    free(w);
    return out;
}

/* A non-empty string at @v (tagged), or NULL. */
static char *read_name(struct rd *r, uint64_t v)
{
    uint16_t t;
    char *s;

    if (!is_heap(v) || type_of(r, v, &t) != 0 || t >= r->l->first_nonstring)
        return NULL;
    s = read_string(r, v);
    if (s && !s[0]) {
        free(s);
        s = NULL;
    }
    return s;
}

/* ---- line ends ------------------------------------------------------------ */

int sym_v8_line(const uint32_t *ends, size_t n, int64_t pos)
{
    size_t lo = 0, hi = n;

    if (pos < 0)
        return 0;
    while (lo < hi) { /* the first end at or after pos */
        size_t mid = lo + (hi - lo) / 2;
        if ((int64_t)ends[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo + 1 > INT32_MAX ? INT32_MAX : (int)(lo + 1);
}

struct ends {
    uint32_t *v;
    size_t n, cap;
    uint32_t pos;
    bool cr; /* the previous unit was '\r' */
    bool full;
};

static void end_at(struct ends *e, uint32_t pos)
{
    if (e->n == e->cap) {
        size_t ncap = e->cap ? e->cap * 2 : 1024;
        uint32_t *nv = ncap <= MAX_LINES ? realloc(e->v, ncap * sizeof(*nv)) : NULL;
        if (!nv) {
            e->full = true;
            return;
        }
        e->v = nv;
        e->cap = ncap;
    }
    e->v[e->n++] = pos;
}

/* V8's line terminators: \n, \r not before \n, U+2028, U+2029. */
static int scan_ends(void *arg, const uint8_t *units, size_t n, bool two)
{
    struct ends *e = arg;

    for (size_t i = 0; i < n && !e->full; i++, e->pos++) {
        uint16_t c = two ? (uint16_t)(units[2 * i] | units[2 * i + 1] << 8) : units[i];
        if (e->cr && c != '\n')
            end_at(e, e->pos - 1);
        e->cr = c == '\r';
        if (c == '\n' || c == 0x2028 || c == 0x2029)
            end_at(e, e->pos);
    }
    return e->full;
}

/* The script's line ends: V8's own (a FixedArray of Smis) when it has
 * computed them, else counted in its source. */
static void load_ends(struct rd *r, uint64_t script, struct v8script *sc)
{
    const struct v8_layout *l = r->l;
    struct ends e = {0};
    uint64_t v;
    uint16_t t;

    if (l->script_line_ends && rd_u64(r, script - 1 + l->script_line_ends, &v) == 0 && is_heap(v) &&
        type_of(r, v, &t) == 0 && t == l->type_fixed_array) {
        uint64_t len, *words;
        if (rd_u64(r, v - 1 + l->fixed_length, &len) != 0 || !is_smi(len) || smi(len) < 0 ||
            smi(len) > MAX_LINES)
            return;
        size_t n = (size_t)smi(len);
        words = malloc(n ? n * 8 : 1);
        e.v = malloc(n ? n * sizeof(*e.v) : 1);
        if (words && e.v && rd(r, v - 1 + l->fixed_data, words, n * 8) == 0) {
            for (size_t i = 0; i < n; i++) {
                if (!is_smi(words[i]) || smi(words[i]) < 0 || smi(words[i]) > UINT32_MAX) {
                    n = 0; /* not line ends after all */
                    break;
                }
                e.v[i] = (uint32_t)smi(words[i]);
            }
            free(words);
            if (n == (size_t)smi(len)) {
                sc->ends = e.v;
                sc->nends = n;
                sc->lines = true;
                return;
            }
        } else {
            free(words);
        }
        free(e.v);
        return;
    }
    if (!l->script_source || rd_u64(r, script - 1 + l->script_source, &v) != 0)
        return;
    if (visit_string(r, v, MAX_SOURCE, scan_ends, &e) == 0 && !e.full) {
        if (e.cr)
            end_at(&e, e.pos - 1);
        if (!e.full) {
            sc->ends = e.v;
            sc->nends = e.n;
            sc->lines = true;
            return;
        }
    }
    free(e.v);
}

static void script_clear(struct v8script *sc)
{
    free(sc->file);
    free(sc->ends);
    memset(sc, 0, sizeof(*sc));
}

/* The script at @script (tagged, checked to be a Script), cached. */
static struct v8script *get_script(struct rd *r, uint64_t script, uint64_t gen, size_t *bytes)
{
    struct sym_v8cache *c = r->c;
    uint64_t w[2];
    struct v8script *sc = NULL;

    if (rd_u64(r, script - 1 + r->l->script_name, &w[0]) != 0 ||
        (r->l->script_source && rd_u64(r, script - 1 + r->l->script_source, &w[1]) != 0))
        return NULL;
    if (!r->l->script_source)
        w[1] = 0;
    for (size_t i = 0; i < c->nscripts; i++) {
        if (c->scripts[i].addr != script)
            continue;
        sc = &c->scripts[i];
        if (sc->name == w[0] && sc->source == w[1]) {
            sc->gen = gen;
            return sc;
        }
        *bytes -= (sc->file ? strlen(sc->file) : 0) + sc->nends * sizeof(uint32_t);
        script_clear(sc); /* another script since: read again */
        break;
    }
    if (!sc) {
        if (c->nscripts == MAX_SCRIPTS) /* the least recently checked goes */
            for (size_t i = 0; i < c->nscripts; i++)
                if (!sc || c->scripts[i].gen < sc->gen)
                    sc = &c->scripts[i];
        if (sc) {
            *bytes -= (sc->file ? strlen(sc->file) : 0) + sc->nends * sizeof(uint32_t);
            script_clear(sc);
        } else {
            sc = &c->scripts[c->nscripts++];
        }
    }
    sc->addr = script;
    sc->name = w[0];
    sc->source = w[1];
    sc->gen = gen;
    sc->file = read_name(r, w[0]);
    load_ends(r, script, sc);
    *bytes += (sc->file ? strlen(sc->file) : 0) + sc->nends * sizeof(uint32_t);
    return sc;
}

/* ---- functions ------------------------------------------------------------ */

/*
 * The name and start position in a ScopeInfo (@si, tagged). Up to 12.8
 * (Node 18 to 22), after the flags, the parameter count, the context local
 * count and the locals' names and infos, a function scope holds: the
 * function variable (name, slot; its name is the function's, copied there
 * by V8), the inferred name (String or undefined: always there for a
 * function scope), the start and end positions (Smis), then others. Older
 * versions may put the receiver's slot (a Smi) first. The layout has no
 * metadata: it is matched by the slots' types (an object followed by two
 * Smis, start <= end), so a slot that is not where it was expected makes
 * no name rather than a wrong one. From 12.8 the positions come before the
 * locals.
 */
static void scope_info(struct rd *r, uint64_t si, char **name, int64_t *start)
{
    uint64_t head[5], t[SCOPE_SLOTS];
    uint64_t base = si - 1 + 8; /* the slots follow the map */
    bool fixed = r->l->version >= FIXED_POSITIONS;
    int64_t ncl;
    uint16_t type;

    if (rd(r, base, head, sizeof(head)) != 0 || !is_smi(head[2]) || (ncl = smi(head[2])) < 0 ||
        ncl > MAX_LOCALS)
        return;
    int64_t idx = (fixed ? 5 : 3) + (ncl < INLINED_LOCALS ? 2 * ncl : ncl + 1);
    if (fixed && is_smi(head[3]) && is_smi(head[4]) && smi(head[3]) >= 0 &&
        smi(head[3]) <= smi(head[4]))
        *start = smi(head[3]);
    if (rd(r, base + (uint64_t)idx * 8, t, sizeof(t)) != 0)
        return;
    for (int j = 0; j + 2 < SCOPE_SLOTS; j++) {
        if (!is_heap(t[j]) || !is_smi(t[j + 1]) || !is_smi(t[j + 2]) || smi(t[j + 1]) < 0 ||
            smi(t[j + 1]) > smi(t[j + 2]) || type_of(r, t[j], &type) != 0)
            continue;
        /* the inferred name at j (a string, or undefined), then the
         * positions; the function variable before it */
        if (!fixed)
            *start = smi(t[j + 1]);
        if (j >= 2 && is_smi(t[j - 1]))
            *name = read_name(r, t[j - 2]);
        if (!*name)
            *name = read_name(r, t[j]);
        return;
    }
    for (int j = 0; j < 3 && !*name; j++) /* no positions: the first name */
        *name = read_name(r, t[j]);
}

static void fn_clear(struct v8fn *e)
{
    free(e->function);
    free(e->file);
    memset(e, 0, sizeof(*e));
}

static size_t fn_bytes(const struct v8fn *e)
{
    return (e->function ? strlen(e->function) + 1 : 0) + (e->file ? strlen(e->file) + 1 : 0);
}

/* The SFI's words: its map, name_or_scope_info, script and function_data.
 * 0, or -EFAULT when @sfi does not hold a SharedFunctionInfo. */
static int sfi_words(struct rd *r, uint64_t sfi, uint64_t w[4])
{
    const struct v8_layout *l = r->l;
    uint16_t t;
    int ret;

    if ((ret = rd_u64(r, sfi + l->bpf.obj_map, &w[0])) != 0 ||
        (ret = rd_u64(r, sfi + l->sfi_name, &w[1])) != 0 ||
        (ret = rd_u64(r, sfi + l->sfi_script, &w[2])) != 0 ||
        (ret = rd_u64(r, sfi + l->sfi_data, &w[3])) != 0 || (ret = type_of(r, sfi + 1, &t)) != 0)
        return ret;
    return t == l->type_sfi ? 0 : -EFAULT;
}

static int load_fn(struct rd *r, uint64_t sfi, const uint64_t w[4], uint64_t gen, struct v8fn *e,
                   size_t *bytes)
{
    const struct v8_layout *l = r->l;
    char *name = NULL;
    int64_t start = -1;
    uint16_t t;

    if (is_heap(w[1]) && type_of(r, w[1], &t) == 0) {
        if (t < l->first_nonstring)
            name = read_name(r, w[1]);
        else if (t == l->type_scope_info)
            scope_info(r, w[1], &name, &start);
    }
    /* not compiled yet: the UncompiledData has the inferred name and start */
    if ((!name || start < 0) && l->type_uncompiled_lo <= l->type_uncompiled_hi &&
        type_of(r, w[3], &t) == 0 && t >= l->type_uncompiled_lo && t <= l->type_uncompiled_hi) {
        uint64_t inferred;
        int32_t pos;
        if (!name && rd_u64(r, w[3] - 1 + l->uncompiled_name, &inferred) == 0)
            name = read_name(r, inferred);
        if (start < 0 && rd(r, w[3] - 1 + l->uncompiled_start, &pos, sizeof(pos)) == 0 && pos >= 0)
            start = pos;
    }
    if (r->gone) {
        free(name);
        return -ESRCH;
    }
    e->function = name ? name : strdup("<anonymous>");
    if (!e->function)
        return -ENOMEM;
    e->sfi = sfi;
    e->map = w[0];
    e->name = w[1];
    e->script = w[2];
    e->gen = gen;
    if (is_heap(w[2]) && type_of(r, w[2], &t) == 0 && t == l->type_script) {
        struct v8script *sc = get_script(r, w[2], gen, bytes);
        if (sc && sc->file)
            e->file = strdup(sc->file);
        if (sc && sc->lines && start >= 0)
            e->line = sym_v8_line(sc->ends, sc->nends, start);
    }
    *bytes += fn_bytes(e);
    return 0;
}

static size_t slot_of(const struct sym_v8cache *c, uint64_t sfi)
{
    size_t i = (size_t)((sfi >> 3) * 0x9e3779b97f4a7c15ull) & (c->cap - 1);
    while (c->slots[i].sfi && c->slots[i].sfi != sfi)
        i = (i + 1) & (c->cap - 1);
    return i;
}

/* Drops every function (the table is full: objects moved or many new). */
static void reset_fns(struct sym_v8cache *c, size_t *bytes)
{
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].sfi) {
            *bytes -= fn_bytes(&c->slots[i]);
            fn_clear(&c->slots[i]);
        }
    c->used = 0;
}

static int grow(struct sym_v8cache *c, size_t *bytes)
{
    size_t ncap = c->cap * 2, ocap = c->cap;
    struct v8fn *ns = calloc(ncap, sizeof(*ns)), *old = c->slots;

    if (!ns)
        return -ENOMEM;
    c->slots = ns;
    c->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].sfi)
            c->slots[slot_of(c, old[i].sfi)] = old[i];
    free(old);
    *bytes += (ncap - ocap) * sizeof(*ns);
    return 0;
}

void sym_v8cache_free(struct sym_v8cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        fn_clear(&c->slots[i]);
    for (size_t i = 0; i < c->nscripts; i++)
        script_clear(&c->scripts[i]);
    free(c->slots);
    free(c->scripts);
    free(c);
}

static struct sym_v8cache *cache_new(size_t *bytes)
{
    struct sym_v8cache *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->cap = 256;
    c->slots = calloc(c->cap, sizeof(*c->slots));
    c->scripts = calloc(MAX_SCRIPTS, sizeof(*c->scripts));
    if (!c->slots || !c->scripts) {
        free(c->slots);
        free(c->scripts);
        free(c);
        return NULL;
    }
    *bytes += sizeof(*c) + c->cap * sizeof(*c->slots) + MAX_SCRIPTS * sizeof(*c->scripts);
    return c;
}

int sym_v8_name(struct sym_v8cache **cache, const struct v8_layout *l, const struct sym_v8mem *mem,
                uint64_t gen, uint64_t frame, struct sym_v8name *out, size_t *bytes)
{
    uint64_t sfi = STOKE_V8_SFI(frame), w[4];
    struct rd r = {.l = l, .mem = mem};
    struct v8fn *e, fresh = {0};
    int ret;

    if (!*cache && !(*cache = cache_new(bytes)))
        return -ENOMEM;
    r.c = *cache;
    if (r.c->maps_gen != gen) { /* maps may have moved too */
        memset(r.c->maps, 0, sizeof(r.c->maps));
        r.c->maps_gen = gen;
    }
    if (!sfi)
        return -EFAULT;
    e = &r.c->slots[slot_of(r.c, sfi)];
    if (e->sfi && e->function && e->gen == gen)
        goto found;
    /* new, or named in an earlier generation: the collector may have moved
     * it since, and put another function (or anything) there */
    if ((ret = sfi_words(&r, sfi, w)) == 0 && e->function && w[0] == e->map && w[1] == e->name &&
        w[2] == e->script) {
        e->gen = gen;
        goto found;
    }
    if (e->function) { /* the key stays: entries only go all at once */
        *bytes -= fn_bytes(e);
        free(e->function);
        free(e->file);
        e->function = e->file = NULL;
    }
    if (ret || (ret = load_fn(&r, sfi, w, gen, &fresh, bytes)) != 0)
        return ret;
    if (!e->sfi) {
        if (r.c->used + 1 >= MAX_SFIS) {
            reset_fns(r.c, bytes);
        } else if ((r.c->used + 1) * 2 > r.c->cap && (ret = grow(r.c, bytes)) != 0) {
            *bytes -= fn_bytes(&fresh);
            fn_clear(&fresh);
            return ret;
        }
        e = &r.c->slots[slot_of(r.c, sfi)];
        r.c->used++;
    }
    *e = fresh;
found:
    out->function = e->function;
    out->file = e->file;
    out->line = e->line;
    return 0;
}
