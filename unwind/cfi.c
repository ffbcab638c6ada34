/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfi — the .eh_frame / .debug_frame parser. See cfi.h; DWARF 5 §6.4 and
 * the LSB's .eh_frame description are the references.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>
#include "bpf/profile.h"
#include "unwind/cfi.h"

/* x86-64 DWARF register numbers */
#define REG_RBP 6
#define REG_RSP 7

#define MAX_CIES        64 /* parsed CIEs kept; more are parsed again per FDE */
#define MAX_STATE_DEPTH 32 /* DW_CFA_remember_state nesting */
#define MAX_AUG_LEN     16

/* ---- bounds-checked reading ---------------------------------------------- */

struct rd {
    const uint8_t *p, *end;
    bool err;
};

static uint8_t rd_u8(struct rd *r)
{
    if (r->p >= r->end) {
        r->err = true;
        return 0;
    }
    return *r->p++;
}

static uint64_t rd_le(struct rd *r, unsigned n)
{
    uint64_t v = 0;

    if ((size_t)(r->end - r->p) < n) {
        r->err = true;
        r->p = r->end;
        return 0;
    }
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static uint64_t rd_uleb(struct rd *r)
{
    uint64_t v = 0;
    unsigned shift = 0;

    for (;;) {
        uint8_t b = rd_u8(r);
        if (r->err)
            return 0;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            return v;
        if (shift > 70) { /* over 10 bytes: not a 64-bit value */
            r->err = true;
            return 0;
        }
    }
}

static int64_t rd_sleb(struct rd *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;

    do {
        b = rd_u8(r);
        if (r->err)
            return 0;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (shift > 70 && (b & 0x80)) {
            r->err = true;
            return 0;
        }
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40))
        v |= ~0ull << shift;
    return (int64_t)v;
}

/* An unsigned operand as a signed offset, saturated: huge values are then
 * rejected by the range checks that every offset goes through. */
static int64_t rd_uoff(struct rd *r)
{
    uint64_t v = rd_uleb(r);
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* A factored offset; INT64_MAX (never a valid offset) on overflow. */
static int64_t scale(int64_t v, int64_t factor)
{
    int64_t out;
    return __builtin_mul_overflow(v, factor, &out) ? INT64_MAX : out;
}

/* ---- pointer encodings (DW_EH_PE_*) --------------------------------------- */

#define PE_OMIT     0xff
#define PE_ABSPTR   0x00
#define PE_ULEB128  0x01
#define PE_UDATA2   0x02
#define PE_UDATA4   0x03
#define PE_UDATA8   0x04
#define PE_SLEB128  0x09
#define PE_SDATA2   0x0a
#define PE_SDATA4   0x0b
#define PE_SDATA8   0x0c
#define PE_PCREL    0x10
#define PE_INDIRECT 0x80

struct sect {
    const uint8_t *data;
    size_t len;
    uint64_t vaddr;
    enum uw_section kind;
};

/* Reads a pointer in encoding @enc; @apply adds the pc-relative base.
 * Encodings relative to text, data or a function, and indirect ones, do
 * not occur in x86-64 unwind tables and are refused. */
static bool rd_ptr(struct rd *r, const struct sect *s, uint8_t enc, bool apply, uint64_t *out)
{
    uint64_t field = s->vaddr + (uint64_t)(r->p - s->data), v;

    if (enc == PE_OMIT || (enc & PE_INDIRECT))
        return false;
    switch (enc & 0x0f) {
    case PE_ABSPTR:
    case PE_UDATA8:
    case PE_SDATA8:
        v = rd_le(r, 8);
        break;
    case PE_ULEB128:
        v = rd_uleb(r);
        break;
    case PE_SLEB128:
        v = (uint64_t)rd_sleb(r);
        break;
    case PE_UDATA2:
        v = rd_le(r, 2);
        break;
    case PE_SDATA2:
        v = (uint64_t)(int64_t)(int16_t)rd_le(r, 2);
        break;
    case PE_UDATA4:
        v = rd_le(r, 4);
        break;
    case PE_SDATA4:
        v = (uint64_t)(int64_t)(int32_t)rd_le(r, 4);
        break;
    default:
        return false;
    }
    if (r->err)
        return false;
    if (apply) {
        switch (enc & 0x70) {
        case 0:
            break;
        case PE_PCREL:
            v += field;
            break;
        default:
            return false;
        }
    }
    *out = v;
    return true;
}

/* ---- CIEs ---------------------------------------------------------------- */

struct cie {
    uint64_t offset; /* of the entry in the section: the key */
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    bool has_z, signal, ok;
    const uint8_t *insns, *insns_end;
};

/* The three rules the walker needs. */
enum cfa_how { CFA_UNSET, CFA_REG, CFA_PLT, CFA_DEREF_RBP, CFA_OTHER };
enum reg_how { R_SAME, R_OFFSET, R_UNDEF, R_DEREF_RBP, R_OTHER };

struct rules {
    uint8_t cfa_how, plt_k, rbp_how, ra_how;
    uint64_t cfa_reg;
    int64_t cfa_off, rbp_off, ra_off;
};

struct parser {
    struct sect s;
    bool scan;       /* first pass: only the FDEs' address range */
    uint64_t lo, hi; /* that range; rows are stored relative to lo */
    size_t max_rows;
    struct uw_rows *out;
    uw_rows_fn fn; /* when set, each FDE's rows are handed to it, then dropped */
    void *fn_ctx;
    size_t handed; /* rows handed to fn so far */
    struct uw_cfi_stats *st;
    struct cie cies[MAX_CIES];
    unsigned ncies;
    int fatal; /* -E2BIG / -ENOMEM: stop everything */
};

/* Reads an entry header at @off: its total end and the CIE id / pointer. */
static bool entry_header(const struct sect *s, size_t off, struct rd *r, size_t *end, uint64_t *id,
                         size_t *id_off, bool *is64)
{
    uint64_t len;

    r->p = s->data + off;
    r->end = s->data + s->len;
    r->err = false;
    len = rd_le(r, 4);
    *is64 = len == 0xffffffffu;
    if (*is64)
        len = rd_le(r, 8);
    if (r->err || len == 0 || len > (size_t)(r->end - r->p))
        return false;
    *end = (size_t)(r->p - s->data) + (size_t)len;
    r->end = s->data + *end;
    *id_off = (size_t)(r->p - s->data);
    *id = rd_le(r, *is64 ? 8 : 4);
    return !r->err;
}

static bool parse_cie(const struct sect *s, size_t off, struct cie *c)
{
    struct rd r;
    size_t end, id_off;
    uint64_t id;
    bool is64;
    char aug[MAX_AUG_LEN + 1];
    size_t naug = 0;
    uint8_t version;

    memset(c, 0, sizeof(*c));
    c->offset = off;
    c->fde_enc = PE_ABSPTR;
    if (!entry_header(s, off, &r, &end, &id, &id_off, &is64))
        return false;
    if (s->kind == UW_EH_FRAME ? id != 0 : id != (is64 ? ~0ull : 0xffffffffull))
        return false;
    version = rd_u8(&r);
    if (version != 1 && version != 3 && version != 4)
        return false;
    for (;;) {
        uint8_t ch = rd_u8(&r);
        if (r.err)
            return false;
        if (!ch)
            break;
        if (naug == MAX_AUG_LEN)
            return false;
        aug[naug++] = (char)ch;
    }
    aug[naug] = '\0';
    if (version == 4) {
        uint8_t addr_size = rd_u8(&r), seg_size = rd_u8(&r);
        if (addr_size != 8 || seg_size != 0)
            return false;
    }
    c->code_align = rd_uleb(&r);
    c->data_align = rd_sleb(&r);
    c->ra_reg = version == 1 ? rd_u8(&r) : rd_uleb(&r);
    /* real alignment factors are 1..8 in magnitude */
    if (r.err || c->code_align == 0 || c->code_align > 256 || c->data_align < -256 ||
        c->data_align > 256)
        return false;
    if (aug[0] == 'z') {
        uint64_t alen = rd_uleb(&r);
        if (r.err || alen > (size_t)(r.end - r.p))
            return false;
        struct rd a = {.p = r.p, .end = r.p + alen};
        c->has_z = true;
        for (size_t i = 1; i < naug && !a.err; i++) {
            uint64_t ignored;
            switch (aug[i]) {
            case 'R':
                c->fde_enc = rd_u8(&a);
                break;
            case 'P': {
                uint8_t penc = rd_u8(&a);
                /* The personality routine's address: only skipped over. */
                if (!a.err && !rd_ptr(&a, s, penc & 0x7f, false, &ignored))
                    a.err = true;
                break;
            }
            case 'L':
                rd_u8(&a);
                break;
            case 'S':
                c->signal = true;
                break;
            case 'B': /* AArch64 BTI, MTE tagging: no data */
            case 'G':
                break;
            default:
                i = naug; /* unknown: the length says where the data ends */
            }
        }
        if (a.err)
            return false;
        r.p += alen;
    } else if (naug) {
        return false; /* "eh" and other pre-'z' augmentations */
    }
    c->insns = r.p;
    c->insns_end = r.end;
    c->ok = true;
    return true;
}

static const struct cie *find_cie(struct parser *ps, size_t off, struct cie *scratch)
{
    for (unsigned i = 0; i < ps->ncies; i++)
        if (ps->cies[i].offset == off)
            return ps->cies[i].ok ? &ps->cies[i] : NULL;
    struct cie *c = ps->ncies < MAX_CIES ? &ps->cies[ps->ncies++] : scratch;
    if (!parse_cie(&ps->s, off, c)) {
        c->ok = false;
        ps->st->bad_entries++;
        return NULL;
    }
    ps->st->cies++;
    return c;
}

/* ---- rows ---------------------------------------------------------------- */

static int push_row(struct parser *ps, uint64_t pc, uint8_t kind, uint16_t off, int8_t rbp)
{
    struct uw_rows *o = ps->out;

    if (ps->handed + o->n >= ps->max_rows)
        return -E2BIG;
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 1024;
        struct unwind_row *nv = realloc(o->v, ncap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        o->v = nv;
        o->cap = ncap;
    }
    /* the scan pass bounded every FDE within 4 GiB of lo */
    o->v[o->n++] =
        (struct unwind_row){.pc = (uint32_t)(pc - ps->lo), .off = off, .kind = kind, .rbp = rbp};
    ps->st->rows++;
    return 0;
}

/* The row the walker runs for @r. */
static void compile_rules(const struct rules *r, bool signal, uint8_t *kind, uint16_t *off,
                          int8_t *rbp)
{
    *off = 0;
    *rbp = 0;
    if (signal) {
        *kind = STOKE_UW_SIGNAL;
        return;
    }
    if (r->ra_how == R_UNDEF) {
        *kind = STOKE_UW_END;
        return;
    }
    *kind = STOKE_UW_UNSUPPORTED;
    if (r->ra_how != R_OFFSET || r->ra_off != -8)
        return;
    switch (r->cfa_how) {
    case CFA_REG:
        if (r->cfa_off < 0)
            return;
        if (r->cfa_reg == REG_RSP && r->cfa_off <= 0xffff) {
            *kind = STOKE_UW_CFA_RSP;
            *off = (uint16_t)r->cfa_off;
        } else if (r->cfa_reg == REG_RSP && r->cfa_off % 8 == 0 && r->cfa_off / 8 <= 0xffff) {
            *kind = STOKE_UW_CFA_RSP_X8;
            *off = (uint16_t)(r->cfa_off / 8);
        } else if (r->cfa_reg == REG_RBP && r->cfa_off <= 0xffff) {
            *kind = STOKE_UW_CFA_RBP;
            *off = (uint16_t)r->cfa_off;
        } else {
            return;
        }
        break;
    case CFA_PLT:
        if (r->cfa_off < 0 || r->cfa_off > 0xffff || r->rbp_how != R_SAME)
            return;
        *kind = STOKE_UW_PLT;
        *off = (uint16_t)r->cfa_off;
        *rbp = (int8_t)r->plt_k;
        return;
    case CFA_DEREF_RBP:
        if (r->cfa_off > 0 || r->cfa_off < -0xffff)
            return;
        *kind = STOKE_UW_DEREF_RBP;
        *off = (uint16_t)-r->cfa_off;
        break;
    default:
        return;
    }
    switch (r->rbp_how) {
    case R_SAME:
    case R_UNDEF:
        *rbp = 0;
        break;
    case R_OFFSET:
        if (r->rbp_off % 8 == 0 && r->rbp_off != 0 && r->rbp_off / 8 >= -126 &&
            r->rbp_off / 8 <= 127)
            *rbp = (int8_t)(r->rbp_off / 8);
        else
            *rbp = STOKE_UW_RBP_LOST;
        break;
    case R_DEREF_RBP:
        *rbp = STOKE_UW_RBP_DEREF;
        break;
    default:
        *rbp = STOKE_UW_RBP_LOST;
    }
}

static int emit(struct parser *ps, uint64_t pc, const struct rules *r, bool signal)
{
    uint8_t kind;
    uint16_t off;
    int8_t rbp;

    compile_rules(r, signal, &kind, &off, &rbp);
    ps->st->unsupported_rows += kind == STOKE_UW_UNSUPPORTED;
    ps->st->rbp_lost_rows += rbp == STOKE_UW_RBP_LOST && kind != STOKE_UW_PLT;
    return push_row(ps, pc, kind, off, rbp);
}

/* ---- the CFA program ------------------------------------------------------ */

/* Recognises the two CFA expressions compilers emit on x86-64: the lazy
 * PLT's "rsp + off + ((rip & 15) >= K) << 3" and stack realignment's
 * "*(rbp + off)". */
static void cfa_expression(const uint8_t *b, size_t n, struct rules *st)
{
    struct rd r = {.p = b, .end = b + n};
    uint8_t op = rd_u8(&r);

    st->cfa_how = CFA_OTHER;
    if (op == 0x77) { /* DW_OP_breg7 (rsp) */
        int64_t off = rd_sleb(&r);
        static const uint8_t tail1[] = {0x80, 0x00, 0x3f, 0x1a}; /* breg16 0; lit15; and */
        static const uint8_t tail2[] = {0x2a, 0x33, 0x24, 0x22}; /* ge; lit3; shl; plus */
        if (r.err || (size_t)(r.end - r.p) != sizeof(tail1) + 1 + sizeof(tail2) ||
            memcmp(r.p, tail1, sizeof(tail1)) != 0 ||
            memcmp(r.p + sizeof(tail1) + 1, tail2, sizeof(tail2)) != 0)
            return;
        uint8_t lit = r.p[sizeof(tail1)];
        if (lit < 0x30 || lit > 0x3f) /* DW_OP_lit0..lit15 */
            return;
        st->cfa_how = CFA_PLT;
        st->cfa_off = off;
        st->plt_k = (uint8_t)(lit - 0x30);
    } else if (op == 0x76) { /* DW_OP_breg6 (rbp) off; DW_OP_deref */
        int64_t off = rd_sleb(&r);
        if (!r.err && r.end - r.p == 1 && r.p[0] == 0x06) {
            st->cfa_how = CFA_DEREF_RBP;
            st->cfa_off = off;
        }
    }
}

static void set_reg(struct rules *st, uint64_t ra_reg, uint64_t reg, uint8_t how, int64_t off)
{
    if (reg == REG_RBP) {
        st->rbp_how = how;
        st->rbp_off = off;
    } else if (reg == ra_reg) {
        st->ra_how = how;
        st->ra_off = off;
    }
}

static void restore_reg(struct rules *st, const struct rules *init, uint64_t ra_reg, uint64_t reg)
{
    if (reg == REG_RBP) {
        st->rbp_how = init->rbp_how;
        st->rbp_off = init->rbp_off;
    } else if (reg == ra_reg) {
        st->ra_how = init->ra_how;
        st->ra_off = init->ra_off;
    }
}

struct prog {
    const struct cie *cie;
    const struct rules *init; /* the CIE's rules, for DW_CFA_restore */
    bool emit;                /* FDE program: rows; CIE program: rules only */
    uint64_t loc, end;        /* current and end pc */
};

/* Runs one CFA program. Returns 0, -EBADMSG (malformed: the caller drops
 * the FDE), or a fatal -E2BIG/-ENOMEM. */
static int run(struct parser *ps, struct prog *pg, const uint8_t *p, const uint8_t *end,
               struct rules *st)
{
    struct rd r = {.p = p, .end = end};
    struct rules stack[MAX_STATE_DEPTH];
    unsigned depth = 0;
    const struct cie *c = pg->cie;
    int ret;

    while (r.p < r.end) {
        uint8_t op = rd_u8(&r), low = op & 0x3f;
        uint64_t reg, delta = 0, step = 0, newloc;
        bool advance = false;

        switch (op >> 6) {
        case 1: /* DW_CFA_advance_loc */
            delta = low;
            advance = true;
            break;
        case 2: /* DW_CFA_offset */
            set_reg(st, c->ra_reg, low, R_OFFSET, scale(rd_uoff(&r), c->data_align));
            break;
        case 3: /* DW_CFA_restore */
            restore_reg(st, pg->init, c->ra_reg, low);
            break;
        default:
            switch (op) {
            case 0x00: /* nop */
                break;
            case 0x01: /* set_loc */
                if (!rd_ptr(&r, &ps->s, c->fde_enc, true, &newloc) || newloc < pg->loc)
                    return -EBADMSG;
                step = newloc - pg->loc;
                advance = true;
                break;
            case 0x02:
                delta = rd_u8(&r);
                advance = true;
                break;
            case 0x03:
                delta = rd_le(&r, 2);
                advance = true;
                break;
            case 0x04:
                delta = rd_le(&r, 4);
                advance = true;
                break;
            case 0x05: /* offset_extended */
                reg = rd_uleb(&r);
                set_reg(st, c->ra_reg, reg, R_OFFSET, scale(rd_uoff(&r), c->data_align));
                break;
            case 0x06: /* restore_extended */
                restore_reg(st, pg->init, c->ra_reg, rd_uleb(&r));
                break;
            case 0x07: /* undefined */
                set_reg(st, c->ra_reg, rd_uleb(&r), R_UNDEF, 0);
                break;
            case 0x08: /* same_value */
                set_reg(st, c->ra_reg, rd_uleb(&r), R_SAME, 0);
                break;
            case 0x09: /* register */
                reg = rd_uleb(&r);
                rd_uleb(&r);
                set_reg(st, c->ra_reg, reg, R_OTHER, 0);
                break;
            case 0x0a: /* remember_state */
                if (depth == MAX_STATE_DEPTH)
                    return -EBADMSG;
                stack[depth++] = *st;
                break;
            case 0x0b: /* restore_state: the whole row, CFA included, as
                          libgcc and GCC's epilogues have it */
                if (depth == 0)
                    return -EBADMSG;
                *st = stack[--depth];
                break;
            case 0x0c: /* def_cfa */
                st->cfa_how = CFA_REG;
                st->cfa_reg = rd_uleb(&r);
                st->cfa_off = rd_uoff(&r);
                break;
            case 0x0d: /* def_cfa_register */
                st->cfa_reg = rd_uleb(&r);
                if (st->cfa_how != CFA_REG)
                    st->cfa_how = st->cfa_how == CFA_UNSET ? CFA_REG : CFA_OTHER;
                break;
            case 0x0e: /* def_cfa_offset */
                st->cfa_off = rd_uoff(&r);
                if (st->cfa_how != CFA_REG)
                    st->cfa_how = CFA_OTHER;
                break;
            case 0x0f: { /* def_cfa_expression */
                uint64_t n = rd_uleb(&r);
                if (r.err || n > (size_t)(r.end - r.p))
                    return -EBADMSG;
                cfa_expression(r.p, (size_t)n, st);
                r.p += n;
                break;
            }
            case 0x10:   /* expression */
            case 0x16: { /* val_expression */
                uint64_t n;
                reg = rd_uleb(&r);
                n = rd_uleb(&r);
                if (r.err || n > (size_t)(r.end - r.p))
                    return -EBADMSG;
                /* "rbp was saved at the address rbp holds": realignment */
                if (op == 0x10 && reg == REG_RBP && n == 2 && r.p[0] == 0x76 && r.p[1] == 0)
                    set_reg(st, c->ra_reg, reg, R_DEREF_RBP, 0);
                else
                    set_reg(st, c->ra_reg, reg, R_OTHER, 0);
                r.p += n;
                break;
            }
            case 0x11: /* offset_extended_sf */
                reg = rd_uleb(&r);
                set_reg(st, c->ra_reg, reg, R_OFFSET, scale(rd_sleb(&r), c->data_align));
                break;
            case 0x12: /* def_cfa_sf */
                st->cfa_how = CFA_REG;
                st->cfa_reg = rd_uleb(&r);
                st->cfa_off = scale(rd_sleb(&r), c->data_align);
                break;
            case 0x13: /* def_cfa_offset_sf */
                st->cfa_off = scale(rd_sleb(&r), c->data_align);
                if (st->cfa_how != CFA_REG)
                    st->cfa_how = CFA_OTHER;
                break;
            case 0x14: /* val_offset */
                reg = rd_uleb(&r);
                rd_uleb(&r);
                set_reg(st, c->ra_reg, reg, R_OTHER, 0);
                break;
            case 0x15: /* val_offset_sf */
                reg = rd_uleb(&r);
                rd_sleb(&r);
                set_reg(st, c->ra_reg, reg, R_OTHER, 0);
                break;
            case 0x2e: /* GNU_args_size */
                rd_uleb(&r);
                break;
            case 0x2f: /* GNU_negative_offset_extended */
                reg = rd_uleb(&r);
                set_reg(st, c->ra_reg, reg, R_OFFSET, scale(rd_uoff(&r), -c->data_align));
                break;
            default:
                return -EBADMSG;
            }
        }
        if (r.err)
            return -EBADMSG;
        if (delta) {
            if (delta > UINT64_MAX / c->code_align)
                return -EBADMSG;
            step = delta * c->code_align;
        }
        if (advance && pg->emit) {
            if (step > pg->end - pg->loc)
                return -EBADMSG;
            if (step) {
                if ((ret = emit(ps, pg->loc, st, c->signal)) != 0)
                    return ret;
                pg->loc += step;
            }
        }
    }
    return 0;
}

static int parse_fde(struct parser *ps, const struct cie *c, struct rd *r)
{
    uint64_t pc, range;
    struct rules init = {.cfa_how = CFA_UNSET, .rbp_how = R_SAME, .ra_how = R_OTHER}, st;
    size_t mark = ps->out->n;
    int ret;

    if (!rd_ptr(r, &ps->s, c->fde_enc, true, &pc) ||
        !rd_ptr(r, &ps->s, c->fde_enc & 0x0f, false, &range))
        return -EBADMSG;
    if (c->has_z) {
        uint64_t alen = rd_uleb(r);
        if (r->err || alen > (size_t)(r->end - r->p))
            return -EBADMSG;
        r->p += alen;
    }
    if (range == 0 || pc + range < pc)
        return range == 0 ? 0 : -EBADMSG;
    if (ps->scan) {
        if (pc < ps->lo)
            ps->lo = pc;
        if (pc + range > ps->hi)
            ps->hi = pc + range;
        return 0;
    }

    struct prog cp = {.cie = c, .init = &init, .emit = false, .loc = pc, .end = pc + range};
    if ((ret = run(ps, &cp, c->insns, c->insns_end, &init)) != 0)
        return ret;
    st = init;
    struct prog fp = {.cie = c, .init = &init, .emit = true, .loc = pc, .end = pc + range};
    ret = run(ps, &fp, r->p, r->end, &st);
    if (ret == -EBADMSG) {
        /* A program we cannot follow: the whole function is unsupported
         * rather than half right. */
        ps->out->n = mark;
        ps->st->bad_entries++;
        ret = push_row(ps, pc, STOKE_UW_UNSUPPORTED, 0, 0);
        ps->st->unsupported_rows++;
    } else if (ret == 0 && fp.loc < pc + range) {
        ret = emit(ps, fp.loc, &st, c->signal);
    }
    if (ret == 0)
        ret = push_row(ps, pc + range, STOKE_UW_NONE, 0, 0);
    ps->st->signal_fdes += c->signal;
    return ret;
}

/* The entry at @off: an FDE is parsed (or scanned), a CIE skipped. Sets
 * *@next to the following entry; false when no entry can be read there. */
static bool parse_entry_at(struct parser *ps, size_t off, size_t *next, int *ret)
{
    const struct sect *sc = &ps->s;
    struct uw_cfi_stats *st = ps->st;
    struct rd r;
    size_t end, id_off;
    uint64_t id;
    bool is64;

    *ret = 0;
    if (off + 4 > sc->len || !entry_header(sc, off, &r, &end, &id, &id_off, &is64)) {
        /* A zero length is .eh_frame's terminator; any other bad length
         * leaves no way to find the next entry. */
        const uint8_t *d = sc->data + off;
        if (off + 4 <= sc->len && (d[0] | d[1] | d[2] | d[3]) != 0)
            st->bad_entries++;
        return false;
    }
    *next = end;
    bool is_cie = sc->kind == UW_EH_FRAME ? id == 0 : id == (is64 ? ~0ull : 0xffffffffull);
    if (is_cie)
        return true;
    size_t cie_off;
    struct cie scratch;
    const struct cie *c;
    st->fdes++;
    if (sc->kind == UW_EH_FRAME)
        cie_off = id <= id_off ? id_off - (size_t)id : SIZE_MAX;
    else
        cie_off = id < sc->len ? (size_t)id : SIZE_MAX;
    c = cie_off < sc->len ? find_cie(ps, cie_off, &scratch) : NULL;
    if (!c) {
        st->bad_entries++;
        return true;
    }
    *ret = parse_fde(ps, c, &r);
    if (*ret == -EBADMSG) {
        st->bad_entries++;
        *ret = 0;
    }
    if (ps->fn && !ps->scan && ps->out->n) {
        /* the FDE is whole: its rows go out, the buffer is reused */
        if (*ret == 0)
            *ret = ps->fn(ps->fn_ctx, ps->out->v, ps->out->n);
        ps->handed += ps->out->n;
        ps->out->n = 0;
    }
    return true;
}

/* One pass over the section's entries (the scan pass or the parse): in
 * section order, or in the order of @order (FDE offsets) when given. */
static int parse_entries(struct parser *ps, const uint32_t *order, size_t norder)
{
    size_t off = 0, next, count = 0;
    int ret = 0;

    for (;;) {
        count++;
        if (ps->fn && count % UW_CFI_TICK == 0 && (ret = ps->fn(ps->fn_ctx, NULL, 0)) != 0)
            return ret;
        if (order) {
            if (count > norder || ret != 0)
                return ret;
            if (!parse_entry_at(ps, order[count - 1], &next, &ret))
                ps->st->bad_entries++;
        } else {
            if (ret != 0 || !parse_entry_at(ps, off, &next, &ret))
                return ret;
            off = next;
        }
    }
}

static int parse_section(const uint8_t *data, size_t len, uint64_t vaddr, enum uw_section kind,
                         const uint32_t *order, size_t norder, size_t max_rows, struct uw_rows *out,
                         uw_rows_fn fn, void *ctx, struct uw_cfi_stats *st)
{
    struct parser *ps = calloc(1, sizeof(*ps));
    struct uw_cfi_stats scan_st = {0};
    int ret;

    if (!ps)
        return -ENOMEM;
    ps->s = (struct sect){.data = data, .len = len, .vaddr = vaddr, .kind = kind};
    ps->max_rows = max_rows;
    ps->out = out;
    ps->fn = fn;
    ps->fn_ctx = ctx;
    /* First the FDEs' address range, so rows fit 32 bits from its start;
     * in section order, which also counts the FDEs. */
    ps->scan = true;
    ps->st = &scan_st;
    ps->lo = UINT64_MAX;
    ps->hi = 0;
    ret = parse_entries(ps, NULL, 0);
    /* an order that does not list every FDE is not used */
    if (order && norder != scan_st.fdes)
        order = NULL;
    if (ret == 0 && ps->lo <= ps->hi) {
        if (ps->hi - ps->lo > UINT32_MAX) {
            ret = -E2BIG; /* unwind information over 4 GiB apart: corrupt or exotic */
        } else {
            ps->scan = false;
            ps->st = st;
            ps->ncies = 0; /* counted again in the real pass */
            out->base = ps->lo;
            ret = parse_entries(ps, order, norder);
        }
    }
    free(ps);
    return ret;
}

int uw_cfi_parse_ordered(const uint8_t *data, size_t len, uint64_t vaddr, enum uw_section kind,
                         const uint32_t *order, size_t norder, size_t max_rows, struct uw_rows *out,
                         struct uw_cfi_stats *st)
{
    return parse_section(data, len, vaddr, kind, order, norder, max_rows, out, NULL, NULL, st);
}

int uw_cfi_parse_each(const uint8_t *data, size_t len, uint64_t vaddr, enum uw_section kind,
                      const uint32_t *order, size_t norder, size_t max_rows, uw_rows_fn fn,
                      void *ctx, uint64_t *base, struct uw_cfi_stats *st)
{
    struct uw_rows fde = {0};
    int ret = parse_section(data, len, vaddr, kind, order, norder, max_rows, &fde, fn, ctx, st);

    *base = fde.base;
    uw_rows_free(&fde);
    return ret;
}

int uw_cfi_parse(const uint8_t *data, size_t len, uint64_t vaddr, enum uw_section kind,
                 size_t max_rows, struct uw_rows *out, struct uw_cfi_stats *st)
{
    return uw_cfi_parse_ordered(data, len, vaddr, kind, NULL, 0, max_rows, out, st);
}

/* Sort order: by pc; at the same pc a rule before an FDE's end marker. */
static int row_cmp(const void *a, const void *b)
{
    const struct unwind_row *x = a, *y = b;

    if (x->pc != y->pc)
        return x->pc < y->pc ? -1 : 1;
    return (x->kind == STOKE_UW_NONE) - (y->kind == STOKE_UW_NONE);
}

/* Stable merge sort of v[0..n) by row_cmp, @tmp holding (n + 1) / 2 rows:
 * only the left half of each merge is copied out. qsort (glibc's merge
 * sort) allocates a copy of all the rows, which for a large binary's
 * unsorted table was as much again as the rows themselves. */
static void rows_sort(struct unwind_row *v, size_t n, struct unwind_row *tmp)
{
    size_t h = (n + 1) / 2, i = 0, j = h, k = 0;

    if (n < 2)
        return;
    rows_sort(v, h, tmp);
    rows_sort(v + h, n - h, tmp);
    if (row_cmp(&v[h - 1], &v[h]) <= 0)
        return; /* already in order */
    memcpy(tmp, v, h * sizeof(*v));
    /* the left half from tmp[0..h), the right in place; k < j always */
    while (i < h && j < n)
        v[k++] = row_cmp(&v[j], &tmp[i]) < 0 ? v[j++] : tmp[i++];
    while (i < h)
        v[k++] = tmp[i++];
}

static bool same_rule(const struct unwind_row *a, const struct unwind_row *b)
{
    return a->kind == b->kind && a->off == b->off && a->rbp == b->rbp;
}

int uw_merge_push(struct uw_merge *m, const struct unwind_row *r)
{
    const struct unwind_row *top;

    if (m->nin++ && r->pc < m->in_pc)
        return -ERANGE;
    m->in_pc = r->pc;
    if (m->pending && m->last.pc == r->pc) {
        /* one row per pc: a rule over the end marker of the FDE before,
         * else the first */
        if (m->last.kind != STOKE_UW_NONE || r->kind == STOKE_UW_NONE)
            return 0;
        m->pending = false;
    }
    top = m->pending ? &m->last : m->nout ? &m->out : NULL;
    if (top && same_rule(top, r))
        return 0; /* same rule as the row before: one row */
    if (m->pending) {
        /* final: no later row has its pc (they come in order) */
        int ret = m->fn(m->ctx, &m->last);
        if (ret)
            return ret;
        m->out = m->last;
        m->nout++;
    }
    m->last = *r;
    m->pending = true;
    return 0;
}

int uw_merge_end(struct uw_merge *m)
{
    int ret = 0;

    if (m->pending) {
        ret = m->fn(m->ctx, &m->last);
        m->out = m->last;
        m->nout++;
        m->pending = false;
    }
    return ret;
}

/* uw_rows_finish's sink: rows written back in place (the write index never
 * passes the read index). */
static int put_back(void *ctx, const struct unwind_row *r)
{
    struct uw_rows *rows = ctx;

    rows->v[rows->n++] = *r;
    return 0;
}

void uw_rows_finish(struct uw_rows *rows)
{
    size_t n = rows->n;

    if (n == 0)
        return;
    /* in .eh_frame_hdr's order (and mostly in section order) the rows are
     * sorted already: sort only when not */
    for (size_t i = 1; i < n; i++) {
        if (rows->v[i - 1].pc > rows->v[i].pc) {
            struct unwind_row *tmp = malloc((n + 1) / 2 * sizeof(*tmp));
            if (tmp)
                rows_sort(rows->v, n, tmp);
            else /* no room for half: in place, unstable among equal rows */
                qsort(rows->v, n, sizeof(*rows->v), row_cmp);
            free(tmp);
            break;
        }
    }
    struct uw_merge m = {.fn = put_back, .ctx = rows};
    rows->n = 0;
    for (size_t i = 0; i < n; i++) {
        struct unwind_row r = rows->v[i]; /* read before any write: writes go to n <= i */
        uw_merge_push(&m, &r);
    }
    uw_merge_end(&m);
    /* merging halves the rows of a typical binary: give the rest back */
    if (rows->cap > 2 * rows->n + 1024) {
        struct unwind_row *nv = realloc(rows->v, rows->n * sizeof(*nv));
        if (nv) {
            rows->v = nv;
            rows->cap = rows->n;
        }
    }
}

void uw_rows_free(struct uw_rows *rows)
{
    free(rows->v);
    memset(rows, 0, sizeof(*rows));
}
