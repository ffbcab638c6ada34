/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dwarf_line — see dwarf_line.h. The reading follows libdw 0.188's
 * read_srclines (libdw/dwarf_getsrclines.c) step by step, including the
 * integer widths of its state machine, so that the answers are the same;
 * what differs is that no row is stored: the row libdw's binary search
 * would pick is tracked while the program runs.
 */
#include <dwarf.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/dwarf_line.h"

/* A cursor over [p, end). */
struct rd {
    const uint8_t *p, *end;
};

static size_t left(const struct rd *r)
{
    return (size_t)(r->end - r->p);
}

/* libdw's __libdw_get_uleb128: at most 10 bytes, UINT64_MAX when none of
 * them ends the number. -1 when there is no byte at all. */
static int uleb(struct rd *r, uint64_t *v)
{
    uint64_t acc = 0;
    size_t max = left(r) < 10 ? left(r) : 10;

    if (max == 0)
        return -1;
    for (size_t i = 0; i < max; i++) {
        uint8_t b = *r->p++;
        acc |= (uint64_t)(b & 0x7f) << (i * 7);
        if (!(b & 0x80)) {
            *v = acc;
            return 0;
        }
    }
    *v = UINT64_MAX;
    return 0;
}

/* libdw's __libdw_get_sleb128. */
static int sleb(struct rd *r, int64_t *v)
{
    uint64_t acc = 0;
    size_t max = left(r) < 9 ? left(r) : 9;

    if (max == 0)
        return -1;
    for (size_t i = 0; i < max; i++) {
        uint8_t b = *r->p++;
        acc |= (uint64_t)(b & 0x7f) << (i * 7);
        if (!(b & 0x80)) {
            if (b & 0x40)
                acc |= -((uint64_t)1 << ((i + 1) * 7));
            *v = (int64_t)acc;
            return 0;
        }
    }
    if (r->p == r->end) {
        *v = INT64_MAX;
        return 0;
    }
    uint8_t b = *r->p++;
    if (!(b & 0x80)) {
        acc |= (uint64_t)b << (7 * max);
        *v = (int64_t)acc;
        return 0;
    }
    *v = INT64_MAX;
    return 0;
}

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int fixed(struct rd *r, unsigned n, uint64_t *v)
{
    if (left(r) < n)
        return -1;
    *v = rd_le(r->p, n);
    r->p += n;
    return 0;
}

/* libdw_valid_user_form */
static bool valid_form(uint64_t form)
{
    switch (form) {
    case DW_FORM_block:
    case DW_FORM_block1:
    case DW_FORM_block2:
    case DW_FORM_block4:
    case DW_FORM_data1:
    case DW_FORM_data2:
    case DW_FORM_data4:
    case DW_FORM_data8:
    case DW_FORM_data16:
    case DW_FORM_flag:
    case DW_FORM_line_strp:
    case DW_FORM_sdata:
    case DW_FORM_sec_offset:
    case DW_FORM_string:
    case DW_FORM_strp:
    case DW_FORM_strp_sup:
    case DW_FORM_strx:
    case DW_FORM_strx1:
    case DW_FORM_strx2:
    case DW_FORM_strx3:
    case DW_FORM_strx4:
    case DW_FORM_udata:
        return true;
    default:
        return false;
    }
}

/* Skips one value of @form (one of valid_form's). -EBADMSG when it does
 * not fit. */
static int skip_form(struct rd *r, uint64_t form, unsigned offset_size)
{
    uint64_t n;
    size_t len;

    switch (form) {
    case DW_FORM_data1:
    case DW_FORM_flag:
    case DW_FORM_strx1:
        len = 1;
        break;
    case DW_FORM_data2:
    case DW_FORM_strx2:
        len = 2;
        break;
    case DW_FORM_strx3:
        len = 3;
        break;
    case DW_FORM_data4:
    case DW_FORM_strx4:
        len = 4;
        break;
    case DW_FORM_data8:
        len = 8;
        break;
    case DW_FORM_data16:
        len = 16;
        break;
    case DW_FORM_line_strp:
    case DW_FORM_sec_offset:
    case DW_FORM_strp:
    case DW_FORM_strp_sup:
        len = offset_size;
        break;
    case DW_FORM_sdata:
    case DW_FORM_udata:
    case DW_FORM_strx:
        return uleb(r, &n) == 0 ? 0 : -EBADMSG;
    case DW_FORM_string: {
        const uint8_t *z = memchr(r->p, 0, left(r));
        if (!z)
            return -EBADMSG;
        r->p = z + 1;
        return 0;
    }
    case DW_FORM_block1:
    case DW_FORM_block2:
    case DW_FORM_block4:
    case DW_FORM_block: {
        unsigned w = form == DW_FORM_block1 ? 1 : form == DW_FORM_block2 ? 2 : 4;
        if (form == DW_FORM_block ? uleb(r, &n) != 0 : fixed(r, w, &n) != 0)
            return -EBADMSG;
        if (n > left(r))
            return -EBADMSG;
        r->p += n;
        return 0;
    }
    default:
        return -EBADMSG;
    }
    if (left(r) < len)
        return -EBADMSG;
    r->p += len;
    return 0;
}

/* A NUL-terminated string at @off of a string section. */
static const char *sec_str(const uint8_t *sec, size_t len, uint64_t off)
{
    if (!sec || off >= len || !memchr(sec + off, 0, len - off))
        return NULL;
    return (const char *)sec + off;
}

/* The path value of an entry (DW_LNCT_path) in @form at r->p, without
 * moving r. NULL with *err set when it cannot be read. */
static const char *form_string(const struct rd *r, uint64_t form, unsigned offset_size,
                               const struct sym_line_secs *s, int *err)
{
    uint64_t off;
    *err = -EBADMSG;
    switch (form) {
    case DW_FORM_string:
        return memchr(r->p, 0, left(r)) ? (const char *)r->p : NULL;
    case DW_FORM_line_strp:
    case DW_FORM_strp:
        if (left(r) < offset_size)
            return NULL;
        off = rd_le(r->p, offset_size);
        return form == DW_FORM_line_strp ? sec_str(s->line_str, s->line_str_len, off)
                                         : sec_str(s->str, s->str_len, off);
    default:
        *err = -ENOTSUP; /* strx, strp_sup: not in line tables from gcc or clang */
        return NULL;
    }
}

/* The directory index value (DW_LNCT_directory_index), without moving r. */
static int form_udata(const struct rd *r, uint64_t form, uint64_t *v)
{
    struct rd c = *r;
    switch (form) {
    case DW_FORM_data1:
        return fixed(&c, 1, v) == 0 ? 0 : -EBADMSG;
    case DW_FORM_data2:
        return fixed(&c, 2, v) == 0 ? 0 : -EBADMSG;
    case DW_FORM_data4:
        return fixed(&c, 4, v) == 0 ? 0 : -EBADMSG;
    case DW_FORM_data8:
        return fixed(&c, 8, v) == 0 ? 0 : -EBADMSG;
    case DW_FORM_udata:
        return uleb(&c, v) == 0 ? 0 : -EBADMSG;
    default:
        return -ENOTSUP;
    }
}

static int add_file(struct sym_line_unit *u, const char *name, uint64_t dir)
{
    if (u->nfiles == u->capfiles) {
        size_t ncap = u->capfiles ? u->capfiles * 2 : 16;
        struct sym_line_file *n = realloc(u->files, ncap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        u->bytes += (ncap - u->capfiles) * sizeof(*n);
        u->files = n;
        u->capfiles = ncap;
    }
    u->files[u->nfiles++] = (struct sym_line_file){name, dir, NULL};
    return 0;
}

/* A v5 entry-format list: (content type, form) pairs. */
struct fmt {
    uint64_t forms[256];
    unsigned n;
    int path, index; /* positions, -1 = none */
};

static int read_formats(struct rd *r, struct fmt *f)
{
    uint64_t desc, form;

    if (left(r) < 1)
        return -EBADMSG;
    f->n = *r->p++;
    f->path = f->index = -1;
    for (unsigned i = 0; i < f->n; i++) {
        if (left(r) < 1 || uleb(r, &desc) != 0 || left(r) < 1 || uleb(r, &form) != 0)
            return -EBADMSG;
        /* libdw reads both into uint16_t */
        desc &= 0xffff;
        form &= 0xffff;
        if (!valid_form(form))
            return -EBADMSG;
        f->forms[i] = form;
        if (desc == DW_LNCT_path)
            f->path = (int)i;
        else if (desc == DW_LNCT_directory_index)
            f->index = (int)i;
    }
    return 0;
}

int sym_line_unit_parse(struct sym_line_unit *u, const struct sym_line_secs *s, uint64_t off,
                        const char *comp_dir, unsigned address_size)
{
    struct rd r;
    uint64_t v, unit_length, header_length, n;
    struct fmt f;
    int ret = -EBADMSG;

    memset(u, 0, sizeof(*u));
    u->off = off;
    u->address_size = address_size;
    if (!s->line || off >= s->line_len)
        return -EBADMSG;
    r = (struct rd){s->line + off, s->line + s->line_len};
    if (fixed(&r, 4, &unit_length) != 0)
        return -EBADMSG;
    u->offset_size = 4;
    if (unit_length == 0xffffffff) {
        if (fixed(&r, 8, &unit_length) != 0)
            return -EBADMSG;
        u->offset_size = 8;
    }
    if (unit_length > left(&r))
        return -EBADMSG;
    r.end = r.p + unit_length;
    if (fixed(&r, 2, &v) != 0 || v < 2 || v > 5)
        return -EBADMSG;
    u->version = (unsigned)v;
    if (u->version >= 5) {
        if (left(&r) < 2 || r.p[0] != address_size || r.p[1] != 0)
            return -EBADMSG;
        r.p += 2;
    }
    if (fixed(&r, u->offset_size, &header_length) != 0)
        return -EBADMSG;
    const uint8_t *header_start = r.p;
    if (left(&r) < 1)
        return -EBADMSG;
    u->min_inst_len = *r.p++;
    u->max_ops = 1;
    if (u->version >= 4) {
        if (left(&r) < 1 || (u->max_ops = *r.p++) == 0)
            return -EBADMSG;
    }
    if (left(&r) < 4)
        return -EBADMSG;
    u->default_is_stmt = *r.p++;
    u->line_base = (int8_t)*r.p++;
    u->line_range = *r.p++;
    u->opcode_base = *r.p++;
    u->std_lens = r.p - 1;
    /* libdw steps back a byte on opcode_base 0; such a header is garbage. */
    if (u->opcode_base == 0 || left(&r) < (size_t)u->opcode_base - 1)
        return -EBADMSG;
    r.p += u->opcode_base - 1;

    /* Directories. Entry 0 is the compilation directory below DWARF 5. */
    size_t ndirs = 0;
    if (u->version < 5) {
        for (const uint8_t *d = r.p; d < r.end && *d; ndirs++) {
            const uint8_t *z = memchr(d, 0, (size_t)(r.end - d));
            if (!z)
                return -EBADMSG;
            d = z + 1;
        }
        ndirs++;
    } else {
        if ((ret = read_formats(&r, &f)) != 0)
            return ret;
        if (f.n > 0 && f.path < 0)
            return -EBADMSG;
        if (left(&r) < 1 || uleb(&r, &n) != 0)
            return -EBADMSG;
        if ((f.n == 0 && n != 0) || (f.n != 0 && n > left(&r) / f.n))
            return -EBADMSG;
        ndirs = (size_t)n;
    }
    u->dirs = calloc(ndirs ? ndirs : 1, sizeof(*u->dirs));
    if (!u->dirs)
        return -ENOMEM;
    u->ndirs = ndirs;
    u->bytes += (ndirs ? ndirs : 1) * sizeof(*u->dirs);
    if (u->version < 5) {
        u->dirs[0] = (struct sym_line_dir){comp_dir, comp_dir ? strlen(comp_dir) : 0};
        for (size_t i = 1; i < ndirs; i++) {
            const uint8_t *z = memchr(r.p, 0, left(&r));
            u->dirs[i] = (struct sym_line_dir){(const char *)r.p, (size_t)(z - r.p)};
            r.p = z + 1;
        }
        if (left(&r) < 1)
            goto bad;
        r.p++;
    } else {
        for (size_t i = 0; i < ndirs; i++) {
            const char *dir = NULL;
            for (unsigned m = 0; m < f.n; m++) {
                if ((int)m == f.path &&
                    !(dir = form_string(&r, f.forms[m], u->offset_size, s, &ret)))
                    goto fail;
                if (skip_form(&r, f.forms[m], u->offset_size) != 0)
                    goto bad;
            }
            if (!dir)
                goto bad;
            u->dirs[i] = (struct sym_line_dir){dir, strlen(dir)};
        }
    }

    /* Files. Below DWARF 5 they count from 1; entry 0 is libdw's "???". */
    if (add_file(u, "???", SYM_LINE_NO_DIR) != 0)
        goto nomem;
    if (u->version < 5) {
        if (left(&r) < 1)
            goto bad;
        while (left(&r) > 0 && *r.p) {
            const uint8_t *z = memchr(r.p, 0, left(&r));
            uint64_t dir, ignored;
            if (!z)
                goto bad;
            const char *name = (const char *)r.p;
            r.p = z + 1;
            if (left(&r) < 1 || uleb(&r, &dir) != 0)
                goto bad;
            if (dir >= ndirs)
                goto bad;
            if (left(&r) < 1 || uleb(&r, &ignored) != 0 || left(&r) < 1 || uleb(&r, &ignored) != 0)
                goto bad;
            if (add_file(u, name, dir) != 0)
                goto nomem;
        }
        if (left(&r) < 1 || *r.p)
            goto bad;
        r.p++;
    } else {
        if ((ret = read_formats(&r, &f)) != 0)
            goto fail;
        if (f.n > 0 && (f.path < 0 || f.index < 0))
            goto bad;
        if (uleb(&r, &n) != 0)
            goto bad;
        if ((f.n == 0 && n != 0) || (f.n != 0 && n > left(&r) / f.n))
            goto bad;
        for (uint64_t i = 0; i < n; i++) {
            const char *name = NULL;
            uint64_t dir = UINT64_MAX;
            for (unsigned m = 0; m < f.n; m++) {
                if ((int)m == f.path &&
                    !(name = form_string(&r, f.forms[m], u->offset_size, s, &ret)))
                    goto fail;
                if ((int)m == f.index && (ret = form_udata(&r, f.forms[m], &dir)) != 0) {
                    if (ret == -ENOTSUP)
                        goto fail;
                    dir = UINT64_MAX;
                }
                if (skip_form(&r, f.forms[m], u->offset_size) != 0)
                    goto bad;
            }
            if (!name || dir == UINT64_MAX || dir >= ndirs)
                goto bad;
            if (i == 0)
                u->files[0] = (struct sym_line_file){name, dir, NULL};
            else if (add_file(u, name, dir) != 0)
                goto nomem;
        }
    }

    /* CUBINs carry a 4-byte .debug_str offset here. */
    if (header_length >= 4 && (size_t)(r.p - header_start) == header_length - 4) {
        if (left(&r) < 4)
            goto bad;
        r.p += 4;
    }
    if ((uint64_t)(r.p - header_start) != header_length)
        goto bad;
    u->prog = r.p;
    u->end = r.end;
    return 0;
bad:
    ret = -EBADMSG;
    goto fail;
nomem:
    ret = -ENOMEM;
fail:
    sym_line_unit_free(u);
    return ret;
}

void sym_line_unit_free(struct sym_line_unit *u)
{
    for (size_t i = 0; i < u->nfiles; i++)
        free(u->files[i].path);
    free(u->files);
    free(u->dirs);
    memset(u, 0, sizeof(*u));
}

/* The row libdw's dwarf_getsrc_die would return: libdw sorts rows by
 * (address, end_sequence first, order of appearance), marks the last one
 * an end of sequence, and takes the last row at or below the address
 * unless it ends a sequence. With rows compared by that key, the answer is
 * the largest row at or below @addr, and it must not be the largest row of
 * all. */
struct row {
    uint64_t addr, seq;
    bool end_seq, set;
    uint32_t file;
    int line;
};

static bool row_after(const struct row *a, const struct row *b)
{
    if (!b->set)
        return true;
    if (a->addr != b->addr)
        return a->addr > b->addr;
    if (a->end_seq != b->end_seq)
        return b->end_seq; /* an end of sequence sorts first */
    return a->seq > b->seq;
}

struct state {
    uint64_t addr;
    uint32_t op_index, file, column, isa, discriminator;
    int64_t line;
    uint8_t is_stmt;
};

static void state_reset(struct state *st, const struct sym_line_unit *u)
{
    memset(st, 0, sizeof(*st));
    st->file = 1;
    st->line = 1;
    st->is_stmt = u->default_is_stmt;
}

/* libdw's advance_pc, in its integer widths. */
static void advance_pc(struct state *st, const struct sym_line_unit *u, uint32_t op_advance)
{
    st->addr += (uint32_t)(u->min_inst_len * ((st->op_index + op_advance) / u->max_ops));
    st->op_index = (st->op_index + op_advance) % u->max_ops;
}

/* One row of the matrix. false: the values do not fit libdw's Dwarf_Line
 * (it rejects the unit). */
static bool emit(const struct state *st, bool end_seq, uint64_t seq, uint64_t addr,
                 struct row *best, struct row *last)
{
    if (st->line < INT_MIN || st->line > INT_MAX || st->column > 0xffff || st->is_stmt > 1 ||
        st->op_index > 0xff || st->isa > 0xff || st->discriminator > 0xffffff)
        return false;
    struct row r = {st->addr, seq, end_seq, true, st->file, (int)st->line};
    if (row_after(&r, last))
        *last = r;
    if (r.addr <= addr && row_after(&r, best))
        *best = r;
    return true;
}

static bool std_len_is(const struct sym_line_unit *u, unsigned opcode, unsigned want)
{
    return u->std_lens + opcode < u->end && u->std_lens[opcode] == want;
}

static int run(struct sym_line_unit *u, uint64_t addr, uint64_t *file, int *line)
{
    struct rd r = {u->prog, u->end};
    struct row best = {0}, last = {0};
    struct state st;
    uint64_t seq = 0, v;
    int64_t sv;
    bool define = !u->program_read;

    if (!u->prog || u->err)
        return -EBADMSG;
    state_reset(&st, u);
    while (left(&r) > 0) {
        unsigned opcode = *r.p++;
        if (opcode >= u->opcode_base) {
            if (u->line_range == 0)
                return -EBADMSG;
            st.line += (int)(u->line_base + (int)((opcode - u->opcode_base) % u->line_range));
            advance_pc(&st, u, (opcode - u->opcode_base) / u->line_range);
            if (!emit(&st, false, seq++, addr, &best, &last))
                return -EBADMSG;
            st.discriminator = 0;
        } else if (opcode == 0) {
            if (left(&r) < 2)
                return -EBADMSG;
            unsigned len = *r.p++;
            if (left(&r) < len)
                return -EBADMSG;
            unsigned sub = *r.p++;
            switch (sub) {
            case DW_LNE_end_sequence:
                if (!emit(&st, true, seq++, addr, &best, &last))
                    return -EBADMSG;
                state_reset(&st, u);
                break;
            case DW_LNE_set_address:
                st.op_index = 0;
                if (left(&r) < u->address_size || (u->address_size != 4 && u->address_size != 8))
                    return -EBADMSG;
                st.addr = rd_le(r.p, u->address_size);
                r.p += u->address_size;
                break;
            case DW_LNE_define_file: {
                const uint8_t *z = memchr(r.p, 0, left(&r));
                uint64_t dir, ignored;
                if (!z)
                    return -EBADMSG;
                const char *name = (const char *)r.p;
                r.p = z + 1;
                if (uleb(&r, &dir) != 0)
                    return -EBADMSG;
                if ((uint32_t)dir >= u->ndirs)
                    return -EBADMSG;
                if (uleb(&r, &ignored) != 0 || uleb(&r, &ignored) != 0)
                    return -EBADMSG;
                if (define && add_file(u, name, (uint32_t)dir) != 0)
                    return -ENOMEM;
                break;
            }
            case DW_LNE_set_discriminator:
                if (!std_len_is(u, DW_LNE_set_discriminator, 1) || uleb(&r, &v) != 0)
                    return -EBADMSG;
                st.discriminator = (uint32_t)v;
                break;
            case DW_LNE_NVIDIA_inlined_call:
                if (uleb(&r, &v) != 0 || uleb(&r, &v) != 0)
                    return -EBADMSG;
                break;
            case DW_LNE_NVIDIA_set_function_name:
                if (uleb(&r, &v) != 0)
                    return -EBADMSG;
                break;
            default:
                /* libdw skips len - 1 bytes past the sub-opcode: with
                 * len 0 it steps back onto it. */
                if ((size_t)(r.end - (r.p - 1)) < len)
                    return -EBADMSG;
                r.p = r.p - 1 + len;
                break;
            }
        } else if (opcode <= DW_LNS_set_isa) {
            switch (opcode) {
            case DW_LNS_copy:
                if (!std_len_is(u, opcode, 0))
                    return -EBADMSG;
                if (!emit(&st, false, seq++, addr, &best, &last))
                    return -EBADMSG;
                st.discriminator = 0;
                break;
            case DW_LNS_advance_pc:
                if (!std_len_is(u, opcode, 1) || uleb(&r, &v) != 0)
                    return -EBADMSG;
                advance_pc(&st, u, (uint32_t)v);
                break;
            case DW_LNS_advance_line:
                if (!std_len_is(u, opcode, 1) || sleb(&r, &sv) != 0)
                    return -EBADMSG;
                st.line += (int32_t)sv;
                break;
            case DW_LNS_set_file:
                if (!std_len_is(u, opcode, 1) || uleb(&r, &v) != 0)
                    return -EBADMSG;
                st.file = (uint32_t)v;
                break;
            case DW_LNS_set_column:
                if (!std_len_is(u, opcode, 1) || uleb(&r, &v) != 0)
                    return -EBADMSG;
                st.column = (uint32_t)v;
                break;
            case DW_LNS_negate_stmt:
                if (!std_len_is(u, opcode, 0))
                    return -EBADMSG;
                st.is_stmt = (uint8_t)(1 - st.is_stmt);
                break;
            case DW_LNS_set_basic_block:
            case DW_LNS_set_prologue_end:
            case DW_LNS_set_epilogue_begin:
                if (!std_len_is(u, opcode, 0))
                    return -EBADMSG;
                break;
            case DW_LNS_const_add_pc:
                if (!std_len_is(u, opcode, 0) || u->line_range == 0)
                    return -EBADMSG;
                advance_pc(&st, u, (255u - u->opcode_base) / u->line_range);
                break;
            case DW_LNS_fixed_advance_pc:
                if (!std_len_is(u, opcode, 1) || fixed(&r, 2, &v) != 0)
                    return -EBADMSG;
                st.addr += v;
                st.op_index = 0;
                break;
            case DW_LNS_set_isa:
                if (!std_len_is(u, opcode, 1) || uleb(&r, &v) != 0)
                    return -EBADMSG;
                st.isa = (uint32_t)v;
                break;
            }
        } else {
            /* An opcode this reader does not know: skip its operands. */
            if (u->std_lens + opcode >= u->end)
                return -EBADMSG;
            for (unsigned k = u->std_lens[opcode]; k > 0; k--)
                if (uleb(&r, &v) != 0)
                    return -EBADMSG;
        }
    }
    u->program_read = true;
    if (!best.set || best.end_seq)
        return 0;
    if (!row_after(&last, &best)) /* best is the last row: an end of sequence */
        return 0;
    *file = best.file;
    *line = best.line;
    return 1;
}

int sym_line_find(struct sym_line_unit *u, uint64_t addr, uint64_t *file, int *line)
{
    int ret = run(u, addr, file, line);
    /* libdw rejects the whole unit, files included; and DW_LNE_define_file
     * entries must not be appended twice. */
    if (ret < 0)
        u->err = ret;
    return ret;
}

const char *sym_line_path(struct sym_line_unit *u, uint64_t index)
{
    if (!u->program_read) {
        uint64_t f;
        int l;
        sym_line_find(u, 0, &f, &l);
    }
    if (!u->program_read || index >= u->nfiles)
        return NULL;
    struct sym_line_file *f = &u->files[index];
    if (f->dir == SYM_LINE_NO_DIR) /* libdw's "???" */
        return f->name;
    if (f->path)
        return f->path;
    const struct sym_line_dir *d = &u->dirs[f->dir];
    if (f->name[0] == '/' || !d->dir)
        return f->name;
    size_t nl = strlen(f->name);
    f->path = malloc(d->len + 1 + nl + 1);
    if (!f->path)
        return NULL;
    memcpy(f->path, d->dir, d->len);
    f->path[d->len] = '/';
    memcpy(f->path + d->len + 1, f->name, nl + 1);
    u->bytes += d->len + nl + 2;
    return f->path;
}
