/* SPDX-License-Identifier: Apache-2.0 */
/*
 * python — names CPython frames from the process's code objects. See
 * python.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "symbolizer/proc_mem.h"
#include "symbolizer/python.h"
#include "symbolizer/utf8.h"

#define MAX_CODES 8192       /* code objects cached per process */
#define MAX_STR   512        /* characters of a name or file */
#define MAX_TABLE (64 << 10) /* bytes of a line table */
#define NO_LINE   (-1)

/* ---- line tables ---------------------------------------------------------- */

/* <= 3.9: co_lnotab, (address increment, line increment) pairs. */
/* Lines are summed in 64 bits: a corrupt table cannot overflow them. */
static int clamp_line(int64_t line)
{
    return line < -1 ? -1 : line > INT32_MAX ? INT32_MAX : (int)line;
}

static int line_lnotab(const uint8_t *t, size_t n, int64_t line, uint32_t off)
{
    uint32_t addr = 0;

    for (size_t i = 0; i + 1 < n; i += 2) {
        addr += t[i];
        if (addr > off)
            break;
        line += (int8_t)t[i + 1];
    }
    return clamp_line(line);
}

/* 3.10: PEP 626, (start delta, line delta) pairs; -128: no line. */
static int line_310(const uint8_t *t, size_t n, int64_t line, uint32_t off)
{
    uint32_t start, end = 0;
    int64_t ar_line = NO_LINE;

    for (size_t i = 0; i + 1 < n; i += 2) {
        start = end;
        end += t[i];
        if ((int8_t)t[i + 1] == -128) {
            ar_line = NO_LINE;
        } else {
            line += (int8_t)t[i + 1];
            ar_line = line;
        }
        if (off >= start && off < end)
            return clamp_line(ar_line);
    }
    return NO_LINE;
}

struct lt {
    const uint8_t *p, *end;
};

static unsigned lt_byte(struct lt *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

/* 3.11+: 6-bit chunks, bit 6 says another follows. */
static uint32_t lt_varint(struct lt *r)
{
    unsigned b = lt_byte(r);
    uint32_t v = b & 63;
    unsigned shift = 6;

    while ((b & 64) && shift < 32 && r->p < r->end) {
        b = lt_byte(r);
        v |= (uint32_t)(b & 63) << shift;
        shift += 6;
    }
    return v;
}

static int64_t lt_svarint(struct lt *r)
{
    uint32_t u = lt_varint(r);
    return (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
}

/* 3.11+: the location table of PEP 657, one entry per run of code units. */
static int line_311(const uint8_t *t, size_t n, int64_t line, uint32_t off)
{
    struct lt r = {.p = t, .end = t + n};
    uint32_t unit = off / 2, at = 0;

    while (r.p < r.end) {
        unsigned first = lt_byte(&r);
        if (!(first & 0x80))
            return NO_LINE; /* not at an entry's start: corrupt */
        unsigned code = (first >> 3) & 15, len = (first & 7) + 1;
        int64_t entry_line;
        switch (code) {
        case 15: /* no location */
            entry_line = NO_LINE;
            break;
        case 14: /* long form */
            line += lt_svarint(&r);
            entry_line = line;
            lt_varint(&r); /* end line delta */
            lt_varint(&r); /* column + 1 */
            lt_varint(&r); /* end column + 1 */
            break;
        case 13: /* no columns */
            line += lt_svarint(&r);
            entry_line = line;
            break;
        case 10:
        case 11:
        case 12: /* one line, columns in two bytes */
            line += (int)code - 10;
            entry_line = line;
            lt_byte(&r);
            lt_byte(&r);
            break;
        default: /* short form: same line, one byte of columns */
            entry_line = line;
            lt_byte(&r);
        }
        if (unit >= at && unit < at + len)
            return clamp_line(entry_line);
        at += len;
    }
    return NO_LINE;
}

int sym_py_line(unsigned minor, const uint8_t *tab, size_t n, int firstlineno, uint32_t off)
{
    if (minor <= 9)
        return line_lnotab(tab, n, firstlineno, off);
    if (minor == 10)
        return line_310(tab, n, firstlineno, off);
    return line_311(tab, n, firstlineno, off);
}

uint32_t sym_py_offset(unsigned minor, uint32_t lasti)
{
    /* f_lasti counts bytes before 3.10; from 3.10 code units of 2 bytes */
    return minor <= 9 ? lasti : 2 * lasti;
}

/* ---- the process's memory ---------------------------------------------- */

static int read_u64(uint32_t pid, uint64_t addr, uint64_t *out)
{
    return sym_proc_read(pid, addr, out, sizeof(*out));
}

/* A str object at @addr as a malloc'd UTF-8 string (at most MAX_STR
 * characters), or NULL. Only compact strings (every str CPython makes for
 * names and file names). */
static char *read_str(uint32_t pid, const struct py_version *v, uint64_t addr)
{
    uint32_t state;
    int64_t len;
    char *out;

    if (!addr || sym_proc_read(pid, addr + v->unicode_state, &state, sizeof(state)) != 0 ||
        sym_proc_read(pid, addr + v->unicode_length, &len, sizeof(len)) != 0 || len < 0)
        return NULL;
    unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
    if (!compact || (kind != 1 && kind != 2 && kind != 4))
        return NULL;
    if (len > MAX_STR)
        len = MAX_STR;
    out = malloc((size_t)len * 4 + 1);
    if (!out)
        return NULL;
    if (ascii) {
        if (sym_proc_read(pid, addr + v->unicode_ascii_data, out, (size_t)len) != 0)
            goto fail;
        for (int64_t i = 0; i < len; i++)
            if ((unsigned char)out[i] >= 0x80)
                goto fail;
        out[len] = '\0';
        return out;
    }
    uint8_t *raw = malloc((size_t)len * kind);
    if (!raw || sym_proc_read(pid, addr + v->unicode_compact_data, raw, (size_t)len * kind) != 0) {
        free(raw);
        goto fail;
    }
    size_t o = 0;
    for (int64_t i = 0; i < len; i++) {
        uint32_t c = kind == 1 ? raw[i]
                     : kind == 2
                         ? (uint32_t)raw[2 * i] | (uint32_t)raw[2 * i + 1] << 8
                         : (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                               (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
        o += sym_put_utf8(out + o, c ? c : 0xfffd);
    }
    free(raw);
    out[o] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

/* A bytes object at @addr (the line table), malloc'd, or NULL. */
static uint8_t *read_bytes(uint32_t pid, const struct py_version *v, uint64_t addr, size_t *n)
{
    int64_t len;
    uint8_t *out;

    if (!addr || sym_proc_read(pid, addr + v->bytes_size, &len, sizeof(len)) != 0 || len < 0 ||
        len > MAX_TABLE)
        return NULL;
    out = malloc(len ? (size_t)len : 1);
    if (!out || (len && sym_proc_read(pid, addr + v->bytes_data, out, (size_t)len) != 0)) {
        free(out);
        return NULL;
    }
    *n = (size_t)len;
    return out;
}

/* ---- the cache of code objects -------------------------------------------- */

struct pycode {
    uint64_t addr; /* 0 = empty slot */
    char *name, *file;
    uint8_t *table;
    size_t ntable;
    int firstlineno;
};

struct sym_pycache {
    struct pycode *slots;
    size_t cap, used;
};

static size_t slot_of(const struct sym_pycache *c, uint64_t addr)
{
    size_t i = (size_t)hash64(addr) & (c->cap - 1);
    while (c->slots[i].addr && c->slots[i].addr != addr)
        i = (i + 1) & (c->cap - 1);
    return i;
}

static void code_free(struct pycode *e)
{
    free(e->name);
    free(e->file);
    free(e->table);
    memset(e, 0, sizeof(*e));
}

void sym_pycache_free(struct sym_pycache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        code_free(&c->slots[i]);
    free(c->slots);
    free(c);
}

/* Reads the code object at @addr into @e. */
static int load_code(uint32_t pid, const struct py_version *v, uint64_t addr, struct pycode *e)
{
    uint64_t name = 0, file = 0, table = 0;
    int32_t first = 0;
    uint16_t name_off = v->code_qualname != STOKE_PY_NONE ? v->code_qualname : v->code_name;
    int r;

    if ((r = read_u64(pid, addr + name_off, &name)) != 0 ||
        (r = read_u64(pid, addr + v->code_filename, &file)) != 0 ||
        (r = read_u64(pid, addr + v->code_linetable, &table)) != 0 ||
        (r = sym_proc_read(pid, addr + v->code_firstlineno, &first, sizeof(first))) != 0)
        return r;
    e->name = read_str(pid, v, name);
    if (!e->name)
        return -EFAULT; /* not a code object (any more) */
    e->file = read_str(pid, v, file);
    e->table = read_bytes(pid, v, table, &e->ntable);
    e->firstlineno = first;
    e->addr = addr;
    return 0;
}

int sym_py_name(struct sym_pycache **cache, uint32_t pid, const struct py_version *v,
                uint64_t frame, struct sym_pyname *out, size_t *bytes)
{
    struct sym_pycache *c = *cache;
    uint64_t addr = STOKE_PY_CODE(frame);
    struct pycode *e;

    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return -ENOMEM;
        c->cap = 256;
        c->slots = calloc(c->cap, sizeof(*c->slots));
        if (!c->slots) {
            free(c);
            return -ENOMEM;
        }
        *cache = c;
        *bytes += sizeof(*c) + c->cap * sizeof(*c->slots);
    }
    e = &c->slots[slot_of(c, addr)];
    if (!e->addr) {
        struct pycode fresh = {0};
        int r;
        if (c->used >= MAX_CODES)
            return -ENOSPC;
        r = load_code(pid, v, addr, &fresh);
        if (r) {
            code_free(&fresh);
            return r;
        }
        if ((c->used + 1) * 2 > c->cap) {
            size_t ncap = c->cap * 2;
            struct pycode *ns = calloc(ncap, sizeof(*ns)), *old = c->slots;
            if (!ns) {
                code_free(&fresh);
                return -ENOMEM;
            }
            size_t ocap = c->cap;
            c->slots = ns;
            c->cap = ncap;
            for (size_t i = 0; i < ocap; i++)
                if (old[i].addr)
                    c->slots[slot_of(c, old[i].addr)] = old[i];
            free(old);
            *bytes += (ncap - ocap) * sizeof(*ns);
        }
        e = &c->slots[slot_of(c, addr)];
        *e = fresh;
        c->used++;
        *bytes += strlen(e->name) + (e->file ? strlen(e->file) : 0) + e->ntable + 2;
    }
    out->function = e->name;
    out->file = e->file;
    out->line = 0;
    if (e->table) {
        int line = sym_py_line(v->minor, e->table, e->ntable, e->firstlineno,
                               sym_py_offset(v->minor, STOKE_PY_LASTI(frame)));
        out->line = line > 0 ? line : e->firstlineno;
    }
    return 0;
}
