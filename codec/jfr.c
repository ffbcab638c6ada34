/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JFR to pprof (codec/jfr.h). The file format, as the JDK writes it
 * (jdk.jfr.internal.consumer.ChunkParser) and docs/format.md summarizes:
 *
 *   chunk   = header(68 bytes, big-endian) event*      several chunks follow
 *   header  = "FLR\0" u16 major u16 minor u64 size u64 cp_offset
 *             u64 meta_offset u64 start_ns u64 duration_ns u64 start_ticks
 *             u64 ticks_per_second u32 features
 *   event   = varlong size, varlong type id, the fields of the type
 *   type 0  = the metadata: strings, then an element tree (class, field)
 *   type 1  = a checkpoint: delta to the previous one, constant pools
 *
 * varlong: 7 bits a byte, low first, the 9th byte holding 8 bits. Strings
 * are a kind byte (0 null, 1 empty, 2 pool ref, 3 UTF-8, 4 UTF-16 chars as
 * varints, 5 Latin-1) and the data. A field is a pool reference (varlong)
 * when constantPool="true", an array (varint count) when dimension="1",
 * else its type's encoding: primitives, a string, or the nested fields.
 *
 * Conversion follows grafana/jfr-parser's pprof package (what Pyroscope
 * runs on /ingest?format=jfr), with the differences docs/format.md lists.
 */
#include "codec/jfr.h"

#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/errmsg.h"
#include "common/gzip.h"
#include "common/intern.h"
#include "pyroscope/jfr_labels.pb-c.h"

#define HEADER_SIZE 68
#define MAX_DEPTH   16 /* nested field types and metadata elements */
#define MAX_CAPTURE 64 /* fields of one type whose values are kept */
#define DEFAULT_MAX (256u << 20)

enum prim { P_STRUCT, P_BOOL, P_BYTE, P_CHAR, P_SHORT, P_INT, P_LONG, P_FLOAT, P_DOUBLE, P_STRING };

struct field {
    uint32_t owner; /* class index (metadata order) */
    uint32_t seq;   /* position in the metadata: the order of the values */
    uint32_t cls;   /* type's class index after resolution */
    uint64_t type;
    const char *name;
    bool cp, array;
};

struct cls {
    uint64_t id;
    const char *name;
    uint32_t f0, nf; /* its fields: fields[f0 .. f0+nf) */
    enum prim prim;
};

/* A string read from the file: where its bytes are. */
struct jstr {
    uint8_t where; /* 0 none/empty, 1 input, 2 arena, 3 pool reference */
    uint32_t len;
    uint64_t v; /* offset, or the pool id */
};

struct val {
    uint64_t u;
    struct jstr s;
};

/* One constant-pool entry, by the kind of its type. */
struct cpval {
    struct jstr s;   /* Symbol.string, String, ThreadState.name */
    uint64_t a, b;   /* Class.name; Method.type, Method.name */
    uint32_t f0, nf; /* StackTrace frames */
    uint32_t stack;  /* StackTrace resolved (INTERN_NONE: not yet) */
    uint32_t name;   /* Method's frame name in names (INTERN_NONE: not yet) */
};

struct frame {
    uint64_t method;
    uint32_t line;
};

/* The events converted: their type's class and the fields they read. */
enum ev {
    EV_EXEC,
    EV_WALL,
    EV_INTLAB,
    EV_OUTTLAB,
    EV_ALLOCSAMPLE,
    EV_MONITOR,
    EV_PARK,
    EV_LIVE,
    EV_MALLOC,
    EV_SETTING,
    EV_N
};
static const char *const ev_names[EV_N] = {"jdk.ExecutionSample",
                                           "profiler.WallClockSample",
                                           "jdk.ObjectAllocationInNewTLAB",
                                           "jdk.ObjectAllocationOutsideTLAB",
                                           "jdk.ObjectAllocationSample",
                                           "jdk.JavaMonitorEnter",
                                           "jdk.ThreadPark",
                                           "profiler.LiveObject",
                                           "profiler.Malloc",
                                           "jdk.ActiveSetting"};
/* the field whose value an event adds (besides a count) */
static const char *const ev_value[EV_N] = {NULL,     "samples",  "tlabSize", "allocationSize",
                                           "weight", "duration", "duration", NULL,
                                           "size",   "value"};

struct evdef {
    int cls; /* -1: not in this chunk */
    int f_stack, f_state, f_ctx, f_span, f_spanname, f_val, f_name;
};

struct sample_key {
    uint32_t kind, stack;
    uint64_t ctx, span, spanname;
};

struct cx {
    const uint8_t *buf; /* the decompressed file */
    size_t len;
    char *err;
    size_t errlen;
    struct wbuf arena; /* converted (Latin-1, UTF-16) strings */
    /* this chunk */
    size_t chunk, chunk_end;
    uint64_t tps;
    char **ms; /* metadata strings */
    uint32_t nms;
    struct cls *cls;
    uint32_t ncls, capcls;
    struct field *fields;
    uint32_t nfields, capfields;
    int c_string, c_symbol, c_class, c_method, c_stack, c_frame, c_tstate;
    int f_sym_string, f_class_name, f_method_type, f_method_name, f_tstate_name, f_frames,
        f_frame_method, f_frame_line;
    struct evdef ev[EV_N];
    struct intern cpk; /* (class, id) -> index into cpv */
    struct cpval *cpv;
    size_t capcpv;
    struct frame *frames;
    size_t nframes, capframes;
    /* all chunks */
    struct intern names;   /* function names */
    struct intern locs;    /* (name, line) */
    struct intern stacks;  /* location id sequences */
    struct intern samples; /* struct sample_key */
    int64_t (*vals)[2];
    size_t capvals;
    int64_t cur[2]; /* jfr-parser's values array: kept between events */
    int64_t period;
    char event[32];
    struct jfr_stats stats;
    int64_t time_ns, end_ns;
};

static int bad(struct cx *c, const char *what, size_t at)
{
    errmsg(c->err, c->errlen, "jfr: %s at byte %zu", what, at);
    return -EBADMSG;
}

/* ---- primitives ------------------------------------------------------- */

static int vlong(struct rbuf *r, uint64_t *v)
{
    uint64_t x = 0;

    for (int i = 0; i < 9; i++) {
        if (r->off >= r->len)
            return -EBADMSG;
        uint8_t b = r->p[r->off++];
        if (i == 8) {
            x |= (uint64_t)b << 56;
            break;
        }
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    *v = x;
    return 0;
}

/* A count of things that each take at least one byte. */
static int vcount(struct rbuf *r, uint64_t *n)
{
    if (vlong(r, n))
        return -EBADMSG;
    return *n > rb_left(r) ? -EBADMSG : 0;
}

static int skip(struct rbuf *r, size_t n)
{
    if (n > rb_left(r))
        return -EBADMSG;
    r->off += n;
    return 0;
}

static void utf8_put(struct wbuf *b, uint32_t cp)
{
    uint8_t s[4];
    size_t n;

    if (cp < 0x80) {
        s[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (uint8_t)(0xc0 | cp >> 6);
        s[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else {
        if (cp > 0xffff || (cp >= 0xd800 && cp < 0xe000))
            cp = 0xfffd; /* lone surrogate halves: not UTF-8 */
        s[0] = (uint8_t)(0xe0 | cp >> 12);
        s[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        s[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    }
    wb_bytes(b, s, n);
}

static int read_str(struct cx *c, struct rbuf *r, struct jstr *s)
{
    uint8_t kind;
    uint64_t n, ch;

    memset(s, 0, sizeof(*s));
    if (rb_u8(r, &kind))
        return -EBADMSG;
    switch (kind) {
    case 0:
    case 1:
        return 0;
    case 2:
        s->where = 3;
        return vlong(r, &s->v);
    case 3:
        if (vcount(r, &n) || n > UINT32_MAX)
            return -EBADMSG;
        *s = (struct jstr){.where = 1, .len = (uint32_t)n, .v = r->off};
        r->off += n;
        return 0;
    case 4:
    case 5:
        if (vcount(r, &n))
            return -EBADMSG;
        s->where = 2;
        s->v = c->arena.len;
        for (uint64_t i = 0; i < n; i++) {
            if (kind == 4) {
                if (vlong(r, &ch))
                    return -EBADMSG;
            } else {
                ch = r->p[r->off++];
            }
            utf8_put(&c->arena, (uint32_t)(ch > 0xffff ? 0xfffd : ch));
        }
        if (c->arena.err)
            return -ENOMEM;
        if (c->arena.len - s->v > UINT32_MAX)
            return -EBADMSG;
        s->len = (uint32_t)(c->arena.len - s->v);
        return 0;
    default:
        return -EBADMSG;
    }
}

/* ---- constant-pool lookups ---------------------------------------------- */

static struct cpval *cp_get(struct cx *c, int cls, uint64_t id)
{
    struct {
        uint32_t cls, pad;
        uint64_t id;
    } k = {(uint32_t)cls, 0, id};
    if (cls < 0)
        return NULL;
    uint32_t i = intern_find(&c->cpk, &k, sizeof(k));
    return i == INTERN_NONE ? NULL : &c->cpv[i];
}

static int cp_put(struct cx *c, int cls, uint64_t id, struct cpval **out)
{
    struct {
        uint32_t cls, pad;
        uint64_t id;
    } k = {(uint32_t)cls, 0, id};
    uint32_t i;
    if (intern_add(&c->cpk, &k, sizeof(k), &i) < 0)
        return -ENOMEM;
    if (i >= c->capcpv) {
        size_t cap = c->capcpv ? c->capcpv * 2 : 256;
        struct cpval *v = realloc(c->cpv, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->cpv = v;
        c->capcpv = cap;
    }
    c->cpv[i] = (struct cpval){.stack = INTERN_NONE, .name = INTERN_NONE};
    *out = &c->cpv[i];
    return 0;
}

/* The bytes of @s (not NUL-terminated); "" for none or a dangling ref. */
static const char *str_of(struct cx *c, const struct jstr *s, uint32_t *len)
{
    if (s->where == 3) {
        struct cpval *v = cp_get(c, c->c_string, s->v);
        if (!v || v->s.where == 3) {
            *len = 0;
            return "";
        }
        s = &v->s;
    }
    *len = s->len;
    if (s->where == 1)
        return (const char *)c->buf + s->v;
    if (s->where == 2 && c->arena.s) /* NULL while only empty strings were converted */
        return c->arena.s + s->v;
    *len = 0;
    return "";
}

/* ---- field values ------------------------------------------------------- */

static int read_fields(struct cx *c, struct rbuf *r, uint32_t ci, int depth, struct val *caps);

static int read_one(struct cx *c, struct rbuf *r, const struct field *f, int depth, struct val *cap)
{
    struct val scratch;
    uint64_t u = 0;

    if (!cap)
        cap = &scratch;
    if (f->cp)
        return vlong(r, &cap->u);
    const struct cls *t = &c->cls[f->cls];
    switch (t->prim) {
    case P_BOOL:
    case P_BYTE: {
        uint8_t b;
        if (rb_u8(r, &b))
            return -EBADMSG;
        cap->u = b;
        return 0;
    }
    case P_CHAR:
    case P_SHORT:
    case P_INT:
    case P_LONG:
        if (vlong(r, &u))
            return -EBADMSG;
        cap->u = u;
        return 0;
    case P_FLOAT:
        return skip(r, 4);
    case P_DOUBLE:
        return skip(r, 8);
    case P_STRING:
        return read_str(c, r, &cap->s);
    case P_STRUCT:
        if (depth >= MAX_DEPTH || !t->nf)
            return -EBADMSG; /* a field-less nested value would take no bytes */
        return read_fields(c, r, f->cls, depth + 1, NULL);
    }
    return -EBADMSG;
}

static int read_value(struct cx *c, struct rbuf *r, const struct field *f, int depth,
                      struct val *cap)
{
    uint64_t n;

    if (cap) /* what a float, an array or a nested value leaves */
        memset(cap, 0, sizeof(*cap));
    if (!f->array)
        return read_one(c, r, f, depth, cap);
    if (vcount(r, &n))
        return -EBADMSG;
    for (uint64_t i = 0; i < n; i++) {
        int e = read_one(c, r, f, depth, NULL);
        if (e)
            return e;
    }
    return 0;
}

static int read_fields(struct cx *c, struct rbuf *r, uint32_t ci, int depth, struct val *caps)
{
    const struct cls *t = &c->cls[ci];

    for (uint32_t i = 0; i < t->nf; i++) {
        int e = read_value(c, r, &c->fields[t->f0 + i], depth,
                           caps && i < MAX_CAPTURE ? &caps[i] : NULL);
        if (e)
            return e;
    }
    return 0;
}

/* ---- metadata ----------------------------------------------------------- */

static void meta_reset(struct cx *c)
{
    for (uint32_t i = 0; i < c->nms; i++)
        free(c->ms[i]);
    free(c->ms);
    c->ms = NULL;
    c->nms = 0;
    c->ncls = c->nfields = 0;
    intern_free(&c->cpk);
    memset(&c->cpk, 0, sizeof(c->cpk));
    c->nframes = 0;
}

static int add_class(struct cx *c, uint64_t id, const char *name, uint32_t *ci)
{
    if (c->ncls == c->capcls) {
        uint32_t cap = c->capcls ? c->capcls * 2 : 128;
        struct cls *v = realloc(c->cls, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->cls = v;
        c->capcls = cap;
    }
    c->cls[c->ncls] = (struct cls){.id = id, .name = name};
    *ci = c->ncls++;
    return 0;
}

static int add_field(struct cx *c, const struct field *f)
{
    if (c->nfields == c->capfields) {
        uint32_t cap = c->capfields ? c->capfields * 2 : 512;
        struct field *v = realloc(c->fields, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->fields = v;
        c->capfields = cap;
    }
    c->fields[c->nfields] = *f;
    c->fields[c->nfields].seq = c->nfields;
    c->nfields++;
    return 0;
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!s || !*s)
        return false;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return !errno && !*end;
}

/* One element of the metadata tree and its children. @owner: the class
 * this element is a direct child of, or -1. */
static int read_element(struct cx *c, struct rbuf *r, int depth, int64_t owner)
{
    uint64_t name, nattr, nchild, k, v;
    const char *a_id = NULL, *a_name = NULL, *a_class = NULL, *a_cp = NULL, *a_dim = NULL;

    if (depth > MAX_DEPTH)
        return bad(c, "metadata nested too deep", r->off);
    if (vlong(r, &name) || name >= c->nms || vcount(r, &nattr))
        return bad(c, "bad metadata element", r->off);
    for (uint64_t i = 0; i < nattr; i++) {
        if (vlong(r, &k) || vlong(r, &v) || k >= c->nms || v >= c->nms)
            return bad(c, "bad metadata attribute", r->off);
        const char *ks = c->ms[k], *vs = c->ms[v];
        if (!strcmp(ks, "id"))
            a_id = vs;
        else if (!strcmp(ks, "name"))
            a_name = vs;
        else if (!strcmp(ks, "class"))
            a_class = vs;
        else if (!strcmp(ks, "constantPool"))
            a_cp = vs;
        else if (!strcmp(ks, "dimension"))
            a_dim = vs;
    }
    int64_t me = -1;
    const char *el = c->ms[name];
    if (!strcmp(el, "class")) {
        uint64_t id;
        uint32_t ci;
        if (!parse_u64(a_id, &id) || !a_name)
            return bad(c, "metadata class without id or name", r->off);
        int e = add_class(c, id, a_name, &ci);
        if (e)
            return e;
        me = ci;
    } else if (!strcmp(el, "field") && owner >= 0) {
        struct field f = {.owner = (uint32_t)owner, .name = a_name ? a_name : ""};
        if (!parse_u64(a_class, &f.type))
            return bad(c, "metadata field without a class", r->off);
        f.cp = a_cp && !strcmp(a_cp, "true");
        f.array = a_dim && strcmp(a_dim, "0") != 0;
        int e = add_field(c, &f);
        if (e)
            return e;
    }
    if (vcount(r, &nchild))
        return bad(c, "bad metadata element", r->off);
    for (uint64_t i = 0; i < nchild; i++) {
        int e = read_element(c, r, depth + 1, me);
        if (e)
            return e;
    }
    return 0;
}

static int cmp_cls(const void *a, const void *b)
{
    const struct cls *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_field(const void *a, const void *b)
{
    const struct field *x = a, *y = b;
    /* qsort is not stable: within an owner, the metadata order */
    if (x->owner != y->owner)
        return x->owner < y->owner ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int find_cls(const struct cx *c, uint64_t id)
{
    uint32_t lo = 0, hi = c->ncls;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->cls[mid].id == id)
            return (int)mid;
        if (c->cls[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int cls_by_name(const struct cx *c, const char *name)
{
    for (uint32_t i = 0; i < c->ncls; i++)
        if (!strcmp(c->cls[i].name, name))
            return (int)i;
    return -1;
}

static int field_by_name(const struct cx *c, int ci, const char *name)
{
    if (ci < 0 || !name)
        return -1;
    for (uint32_t i = 0; i < c->cls[ci].nf && i < MAX_CAPTURE; i++)
        if (!strcmp(c->fields[c->cls[ci].f0 + i].name, name))
            return (int)i;
    return -1;
}

static enum prim prim_of(const char *n)
{
    static const struct {
        const char *name;
        enum prim p;
    } t[] = {{"boolean", P_BOOL}, {"byte", P_BYTE},     {"char", P_CHAR},
             {"short", P_SHORT},  {"int", P_INT},       {"long", P_LONG},
             {"float", P_FLOAT},  {"double", P_DOUBLE}, {"java.lang.String", P_STRING}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!strcmp(n, t[i].name))
            return t[i].p;
    return P_STRUCT;
}

static int read_meta(struct cx *c, size_t pos)
{
    struct rbuf r = {.p = c->buf, .len = c->chunk_end, .off = pos};
    uint64_t size, typ, skipv, nstr;

    if (vlong(&r, &size) || size == 0 || size > c->chunk_end - pos)
        return bad(c, "bad metadata event size", pos);
    r.len = pos + size;
    if (vlong(&r, &typ) || typ != 0 || vlong(&r, &skipv) || vlong(&r, &skipv) ||
        vlong(&r, &skipv) || vcount(&r, &nstr) || nstr > UINT32_MAX)
        return bad(c, "bad metadata event header", pos);
    c->ms = calloc(nstr ? nstr : 1, sizeof(*c->ms));
    if (!c->ms)
        return -ENOMEM;
    for (uint64_t i = 0; i < nstr; i++) {
        struct jstr s;
        uint32_t len;
        int e = read_str(c, &r, &s);
        if (e)
            return e == -ENOMEM ? e : bad(c, "bad metadata string", r.off);
        if (s.where == 3)
            return bad(c, "metadata string refers to a pool", r.off);
        const char *p = str_of(c, &s, &len);
        c->ms[i] = strndup(p, len);
        if (!c->ms[i])
            return -ENOMEM;
        c->nms = (uint32_t)i + 1;
    }
    int e = read_element(c, &r, 0, -1);
    if (e)
        return e;

    /* classes sorted by id; fields grouped by class, then types resolved */
    if (c->nfields) /* qsort's base may not be NULL, even for 0 elements */
        qsort(c->fields, c->nfields, sizeof(*c->fields), cmp_field);
    for (uint32_t i = 0, f = 0; i < c->ncls; i++) {
        c->cls[i].f0 = f;
        while (f < c->nfields && c->fields[f].owner == i)
            f++;
        c->cls[i].nf = f - c->cls[i].f0;
        c->cls[i].prim = prim_of(c->cls[i].name);
    }
    if (c->ncls)
        qsort(c->cls, c->ncls, sizeof(*c->cls), cmp_cls);
    for (uint32_t i = 1; i < c->ncls; i++)
        if (c->cls[i].id == c->cls[i - 1].id)
            return bad(c, "metadata defines a class id twice", pos);
    for (uint32_t i = 0; i < c->nfields; i++) {
        int t = find_cls(c, c->fields[i].type);
        if (t < 0)
            return bad(c, "metadata field of an undefined type", pos);
        c->fields[i].cls = (uint32_t)t;
    }

    c->c_string = cls_by_name(c, "java.lang.String");
    c->c_symbol = cls_by_name(c, "jdk.types.Symbol");
    c->c_class = cls_by_name(c, "java.lang.Class");
    c->c_method = cls_by_name(c, "jdk.types.Method");
    c->c_stack = cls_by_name(c, "jdk.types.StackTrace");
    c->c_frame = cls_by_name(c, "jdk.types.StackFrame");
    c->c_tstate = cls_by_name(c, "jdk.types.ThreadState");
    c->f_sym_string = field_by_name(c, c->c_symbol, "string");
    c->f_class_name = field_by_name(c, c->c_class, "name");
    c->f_method_type = field_by_name(c, c->c_method, "type");
    c->f_method_name = field_by_name(c, c->c_method, "name");
    c->f_tstate_name = field_by_name(c, c->c_tstate, "name");
    c->f_frames = field_by_name(c, c->c_stack, "frames");
    c->f_frame_method = field_by_name(c, c->c_frame, "method");
    c->f_frame_line = field_by_name(c, c->c_frame, "lineNumber");
    if (c->f_frames >= 0) {
        const struct field *ff = &c->fields[c->cls[c->c_stack].f0 + c->f_frames];
        if (!ff->array || ff->cp || (int)ff->cls != c->c_frame)
            c->f_frames = -1; /* not the shape we know: no frames */
    }
    for (int k = 0; k < EV_N; k++) {
        struct evdef *d = &c->ev[k];
        d->cls = cls_by_name(c, ev_names[k]);
        d->f_stack = field_by_name(c, d->cls, "stackTrace");
        d->f_state = field_by_name(c, d->cls, "state");
        d->f_ctx = field_by_name(c, d->cls, "contextId");
        d->f_span = field_by_name(c, d->cls, "spanId");
        d->f_spanname = field_by_name(c, d->cls, "spanName");
        d->f_val = field_by_name(c, d->cls, ev_value[k]);
        d->f_name = field_by_name(c, d->cls, "name");
    }
    return 0;
}

/* ---- constant pools ----------------------------------------------------- */

static int read_stacktrace(struct cx *c, struct rbuf *r, struct cpval *v)
{
    const struct cls *t = &c->cls[c->c_stack];
    struct val caps[MAX_CAPTURE];
    uint64_t n;

    v->f0 = (uint32_t)c->nframes;
    for (uint32_t i = 0; i < t->nf; i++) {
        const struct field *f = &c->fields[t->f0 + i];
        if ((int)i != c->f_frames) {
            int e = read_value(c, r, f, 0, NULL);
            if (e)
                return e;
            continue;
        }
        if (!c->cls[c->c_frame].nf || vcount(r, &n))
            return -EBADMSG;
        if (c->nframes + n > UINT32_MAX)
            return -EBADMSG;
        if (c->nframes + n > c->capframes) {
            size_t cap = c->capframes ? c->capframes : 1024;
            while (cap < c->nframes + n)
                cap *= 2;
            struct frame *fr = realloc(c->frames, cap * sizeof(*fr));
            if (!fr)
                return -ENOMEM;
            c->frames = fr;
            c->capframes = cap;
        }
        for (uint64_t j = 0; j < n; j++) {
            int e = read_fields(c, r, (uint32_t)c->c_frame, 1, caps);
            if (e)
                return e;
            c->frames[c->nframes++] = (struct frame){
                .method = c->f_frame_method >= 0 ? caps[c->f_frame_method].u : 0,
                .line = c->f_frame_line >= 0 ? (uint32_t)caps[c->f_frame_line].u : 0};
        }
    }
    v->nf = (uint32_t)(c->nframes - v->f0);
    return 0;
}

static int read_pool_entry(struct cx *c, struct rbuf *r, int ci)
{
    struct val caps[MAX_CAPTURE];
    struct cpval *v;
    uint64_t id;
    int e;

    if (vlong(r, &id))
        return -EBADMSG;
    if ((e = cp_put(c, ci, id, &v)))
        return e;
    if (ci == c->c_string)
        return read_str(c, r, &v->s);
    if (ci == c->c_stack)
        return read_stacktrace(c, r, v);
    if ((e = read_fields(c, r, (uint32_t)ci, 0, caps)))
        return e;
    if (ci == c->c_symbol && c->f_sym_string >= 0)
        v->s = caps[c->f_sym_string].s;
    else if (ci == c->c_class && c->f_class_name >= 0)
        v->a = caps[c->f_class_name].u;
    else if (ci == c->c_method) {
        v->a = c->f_method_type >= 0 ? caps[c->f_method_type].u : 0;
        v->b = c->f_method_name >= 0 ? caps[c->f_method_name].u : 0;
    } else if (ci == c->c_tstate && c->f_tstate_name >= 0)
        v->s = caps[c->f_tstate_name].s;
    return 0;
}

/* The checkpoints, from the last one (the header's offset) back along their
 * deltas. Each must lie before the one that led to it (the JDK chains them
 * backwards, async-profiler writes one), so the walk ends and reads every
 * byte at most once. */
static int read_pools(struct cx *c, size_t pos)
{
    size_t limit = c->chunk_end;

    for (;;) {
        struct rbuf r = {.p = c->buf, .len = limit, .off = pos};
        uint64_t size, typ, skipv, delta, npools;
        uint8_t flush;

        if (vlong(&r, &size) || size == 0 || size > limit - pos)
            return bad(c, "bad checkpoint event size", pos);
        r.len = pos + size;
        if (vlong(&r, &typ) || typ != 1 || vlong(&r, &skipv) || vlong(&r, &skipv) ||
            vlong(&r, &delta) || rb_u8(&r, &flush) || vcount(&r, &npools))
            return bad(c, "bad checkpoint event header", pos);
        for (uint64_t p = 0; p < npools; p++) {
            uint64_t tid, n;
            if (vlong(&r, &tid) || vcount(&r, &n))
                return bad(c, "bad constant pool", r.off);
            int ci = find_cls(c, tid);
            if (ci < 0)
                return bad(c, "constant pool of an undefined type", r.off);
            if (n && ci != c->c_string && !c->cls[ci].nf)
                return bad(c, "constant pool of a type without fields", r.off);
            for (uint64_t i = 0; i < n; i++) {
                size_t at = r.off;
                int e = read_pool_entry(c, &r, ci);
                if (e)
                    return e == -ENOMEM ? e
                                        : bad(c, "truncated or corrupt constant pool entry", at);
            }
        }
        if (delta == 0)
            return 0;
        int64_t d = (int64_t)delta;
        if (d >= 0 || (uint64_t)-d > pos - c->chunk - HEADER_SIZE)
            return bad(c, "checkpoint delta does not lead back into the chunk", pos);
        limit = pos;
        pos -= (size_t)-d;
    }
}

/* ---- names and stacks --------------------------------------------------- */

static regex_t merge_re[6];
static bool merge_ok;
static pthread_once_t merge_once = PTHREAD_ONCE_INIT;
/* grafana/jfr-parser parser/symbols.go: JVM-generated class names merged */
static const struct {
    const char *re, *hint, *repl; /* repl: "\1_" keeps group 1 */
} merges[6] = {
    {"^(jdk/internal/reflect/GeneratedMethodAccessor)([0-9]+)$", "GeneratedMethodAccessor", NULL},
    {"^(.+\\$\\$Lambda)(\\$?[0-9]*[./](0x)?[0-9a-f]+|[0-9]+)$", "$$Lambda", NULL},
    {"^(\\.?/tmp/)?(libzstd-jni-[0-9]+\\.[0-9]+\\.[0-9]+-)([0-9]+)(\\.so)( \\(deleted\\))?$",
     "libzstd-jni-", "libzstd-jni-_.so"},
    {"^(\\.?/tmp/)?(lib)?(amazonCorrettoCryptoProvider)(NativeLibraries\\.)?([0-9a-f]{16})"
     "(/libcrypto|/libamazonCorrettoCryptoProvider)?(\\.so)( \\(deleted\\))?$",
     "amazonCorrettoCryptoProvider", "libamazonCorrettoCryptoProvider_.so"},
    {"^(\\.?/tmp/)?(libasyncProfiler)-(linux-arm64|linux-musl-x64|linux-x64|macos)-"
     "(17b9a1d8156277a98ccc871afa9a8f69215f92)(\\.so)( \\(deleted\\))?$",
     "libasyncProfiler-", "libasyncProfiler-_.so"},
    {"^(.+\\$\\$EnhancerBySpringCGLIB\\$\\$)(.*)$", "$$EnhancerBySpringCGLIB$$", NULL},
};

static void merge_init(void)
{
    merge_ok = true;
    for (size_t i = 0; i < 6; i++)
        if (regcomp(&merge_re[i], merges[i].re, REG_EXTENDED))
            merge_ok = false;
}

/* Appends symbol @s[0..len) to @b as Pyroscope names it. */
static void put_symbol(struct wbuf *b, const char *s, uint32_t len)
{
    char b0[1024], b1[1024], *cur = b0, *next = b1;
    bool hint = false;

    for (size_t i = 0; i < 6 && !hint; i++)
        hint = memmem(s, len, merges[i].hint, strlen(merges[i].hint)) != NULL;
    pthread_once(&merge_once, merge_init);
    if (!hint || !merge_ok || len >= sizeof(b0) || memchr(s, 0, len)) {
        wb_bytes(b, s, len);
        return;
    }
    memcpy(cur, s, len);
    cur[len] = 0;
    for (size_t i = 0; i < 6; i++) {
        regmatch_t m[2];
        if (regexec(&merge_re[i], cur, 2, m, 0))
            continue;
        if (merges[i].repl)
            snprintf(next, sizeof(b0), "%s", merges[i].repl);
        else
            snprintf(next, sizeof(b0), "%.*s_", (int)(m[1].rm_eo - m[1].rm_so), cur + m[1].rm_so);
        char *t = cur;
        cur = next;
        next = t;
    }
    wb_puts(b, cur);
}

static void put_symbol_ref(struct cx *c, struct wbuf *b, uint64_t sym)
{
    struct cpval *v = cp_get(c, c->c_symbol, sym);
    uint32_t len = 0;
    const char *s = v ? str_of(c, &v->s, &len) : "";
    put_symbol(b, s, len);
}

/* The stack of pool entry @st as interned location ids (leaf first), or
 * INTERN_NONE when @st is in no pool. */
static int resolve_stack(struct cx *c, uint64_t st, uint32_t *out)
{
    struct cpval *v = cp_get(c, c->c_stack, st);
    struct wbuf name = {0};
    uint32_t *ids;
    size_t n = 0;

    *out = INTERN_NONE;
    if (!v)
        return 0;
    if (v->stack != INTERN_NONE) {
        *out = v->stack;
        return 0;
    }
    ids = malloc((v->nf ? v->nf : 1) * sizeof(*ids));
    if (!ids)
        return -ENOMEM;
    for (uint32_t i = 0; i < v->nf; i++) {
        const struct frame *f = &c->frames[v->f0 + i];
        struct cpval *m = cp_get(c, c->c_method, f->method);
        if (m && m->name == INTERN_NONE) {
            struct cpval *k = cp_get(c, c->c_class, m->a);
            if (!k) {
                c->stats.frame_missing++;
                continue;
            }
            name.len = 0;
            put_symbol_ref(c, &name, k->a);
            wb_bytes(&name, ".", 1);
            put_symbol_ref(c, &name, m->b);
            if (name.err || (m->name = intern_strn(&c->names, name.s, name.len)) == INTERN_NONE) {
                free(ids);
                wb_free(&name);
                return -ENOMEM;
            }
        }
        if (!m) {
            c->stats.frame_missing++;
            continue;
        }
        struct {
            uint32_t name, line;
        } key = {m->name, f->line};
        uint32_t loc;
        if (intern_add(&c->locs, &key, sizeof(key), &loc) < 0) {
            free(ids);
            wb_free(&name);
            return -ENOMEM;
        }
        ids[n++] = loc;
    }
    wb_free(&name);
    *out = intern_seq(&c->stacks, ids, n);
    free(ids);
    if (*out == INTERN_NONE)
        return -ENOMEM;
    v->stack = *out;
    return 0;
}

/* ---- events ------------------------------------------------------------- */

static int add_sample(struct cx *c, enum jfr_kind kind, const struct val *caps,
                      const struct evdef *d, bool correlated, size_t nvals)
{
    struct sample_key k = {.kind = kind};
    uint32_t idx;
    int e;

    if (d->f_stack < 0) {
        c->stats.stack_missing++;
        return 0;
    }
    if ((e = resolve_stack(c, caps[d->f_stack].u, &k.stack)))
        return e;
    if (k.stack == INTERN_NONE) {
        c->stats.stack_missing++;
        return 0;
    }
    if (correlated) {
        k.ctx = d->f_ctx >= 0 ? caps[d->f_ctx].u : 0;
        k.span = d->f_span >= 0 ? caps[d->f_span].u : 0;
        k.spanname = d->f_spanname >= 0 ? caps[d->f_spanname].u : 0;
    }
    uint32_t before = c->samples.n;
    if (intern_add(&c->samples, &k, sizeof(k), &idx) < 0)
        return -ENOMEM;
    if (idx >= c->capvals) {
        size_t cap = c->capvals ? c->capvals * 2 : 1024;
        int64_t(*v)[2] = realloc(c->vals, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->vals = v;
        c->capvals = cap;
    }
    if (idx == before)
        c->vals[idx][0] = c->vals[idx][1] = 0;
    int64_t mul = kind == JFR_CPU || kind == JFR_WALL ? c->period : 1;
    for (size_t i = 0; i < nvals; i++)
        c->vals[idx][i] += c->cur[i] * mul;
    return 0;
}

static bool state_is(struct cx *c, const struct val *caps, const struct evdef *d, const char *want,
                     bool *found)
{
    *found = false;
    if (d->f_state < 0)
        return false;
    struct cpval *v = cp_get(c, c->c_tstate, caps[d->f_state].u);
    if (!v)
        return false;
    *found = true;
    uint32_t len;
    const char *s = str_of(c, &v->s, &len);
    return len == strlen(want) && !memcmp(s, want, len);
}

static int64_t ticks_to_ns(const struct cx *c, uint64_t t)
{
    if (!c->tps || c->tps == 1000000000)
        return (int64_t)t;
    return (int64_t)((__int128)t * 1000000000 / c->tps);
}

static int on_event(struct cx *c, enum ev k, const struct val *caps)
{
    const struct evdef *d = &c->ev[k];
    bool wall = !strcmp(c->event, "wall"), found;
    int e = 0;
    uint64_t v = d->f_val >= 0 ? caps[d->f_val].u : 0;

    switch (k) {
    case EV_EXEC:
        if (!state_is(c, caps, d, "STATE_SLEEPING", &found) && found)
            e = add_sample(c, JFR_CPU, caps, d, true, 1);
        if (!e && wall)
            e = add_sample(c, JFR_WALL, caps, d, true, 1);
        return e;
    case EV_WALL:
        c->cur[0] = (int64_t)v;
        if (state_is(c, caps, d, "STATE_RUNNABLE", &found) && wall)
            e = add_sample(c, JFR_CPU, caps, d, true, 1);
        return e ? e : add_sample(c, JFR_WALL, caps, d, true, 1);
    case EV_INTLAB:
        c->cur[1] = (int64_t)v;
        return add_sample(c, JFR_ALLOC_IN_TLAB, caps, d, true, 2);
    case EV_OUTTLAB:
        c->cur[1] = (int64_t)v;
        return add_sample(c, JFR_ALLOC_OUTSIDE_TLAB, caps, d, true, 2);
    case EV_ALLOCSAMPLE:
        c->cur[1] = (int64_t)v;
        return add_sample(c, JFR_ALLOC_SAMPLE, caps, d, false, 2);
    case EV_MONITOR:
        c->cur[1] = ticks_to_ns(c, v);
        return add_sample(c, JFR_LOCK, caps, d, true, 2);
    case EV_PARK:
        c->cur[1] = ticks_to_ns(c, v);
        return add_sample(c, JFR_PARK, caps, d, false, 2);
    case EV_LIVE:
        return add_sample(c, JFR_LIVE, caps, d, false, 1);
    case EV_MALLOC:
        c->cur[1] = (int64_t)v;
        return add_sample(c, JFR_MALLOC, caps, d, false, 2);
    case EV_SETTING:
        if (d->f_name >= 0 && d->f_val >= 0) {
            uint32_t nl, vl;
            const char *n = str_of(c, &caps[d->f_name].s, &nl);
            const char *s = str_of(c, &caps[d->f_val].s, &vl);
            if (nl == 5 && !memcmp(n, "event", 5))
                snprintf(c->event, sizeof(c->event), "%.*s", (int)vl, s);
        }
        return 0;
    case EV_N:
        break;
    }
    return 0;
}

static int read_events(struct cx *c)
{
    size_t pos = c->chunk + HEADER_SIZE;
    struct val caps[MAX_CAPTURE];

    while (pos < c->chunk_end) {
        struct rbuf r = {.p = c->buf, .len = c->chunk_end, .off = pos};
        uint64_t size, typ;
        if (vlong(&r, &size) || size == 0 || size > c->chunk_end - pos)
            return bad(c, "bad event size", pos);
        r.len = pos + size;
        if (vlong(&r, &typ))
            return bad(c, "bad event type", pos);
        for (int k = 0; k < EV_N; k++) {
            if (c->ev[k].cls < 0 || c->cls[c->ev[k].cls].id != typ)
                continue;
            int e = read_fields(c, &r, (uint32_t)c->ev[k].cls, 0, caps);
            if (e)
                return e == -ENOMEM ? e : bad(c, "truncated or corrupt event", pos);
            c->stats.events++;
            if ((e = on_event(c, (enum ev)k, caps)))
                return e;
            break;
        }
        pos += size;
    }
    return 0;
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int read_chunk(struct cx *c, size_t pos)
{
    const uint8_t *h = c->buf + pos;
    int e;

    if (c->len - pos < HEADER_SIZE)
        return bad(c, "truncated chunk header", pos);
    if (memcmp(h, "FLR\0", 4))
        return bad(c, "not a JFR chunk (no FLR magic)", pos);
    uint16_t major = (uint16_t)(h[4] << 8 | h[5]);
    if (major != 2 && major != 1)
        return bad(c, "unsupported JFR major version", pos + 4);
    uint64_t size = be64(h + 8);
    uint64_t cpoff = be64(h + 16);
    uint64_t metaoff = be64(h + 24);
    uint64_t start = be64(h + 32);
    uint64_t dur = be64(h + 40);
    c->tps = be64(h + 56);
    if (size < HEADER_SIZE || size > c->len - pos)
        return bad(c, "chunk size past the end of the file (truncated?)", pos + 8);
    if (cpoff < HEADER_SIZE || cpoff >= size || metaoff < HEADER_SIZE || metaoff >= size)
        return bad(c, "chunk offsets outside the chunk", pos + 16);
    c->chunk = pos;
    c->chunk_end = pos + size;
    if (!c->time_ns || (int64_t)start < c->time_ns)
        c->time_ns = (int64_t)start;
    if ((int64_t)(start + dur) > c->end_ns)
        c->end_ns = (int64_t)(start + dur);
    meta_reset(c);
    if ((e = read_meta(c, pos + metaoff)))
        return e;
    if ((e = read_pools(c, pos + cpoff)))
        return e;
    if ((e = read_events(c)))
        return e;
    c->stats.chunks++;
    return 0;
}

/* ---- labels and output -------------------------------------------------- */

struct labels {
    Io__Pyroscope__Labels__Pb__LabelsSnapshot *snap;
    /* map keys -> the entry that holds them: the last one, as protobuf
     * says of a key given twice */
    struct intern ctx, str;
    uint32_t *ctx_at, *str_at;
};

/* Entry @i of @n with key @key: indexed in @t, @at[id] its position. */
static int index_key(struct intern *t, uint32_t *at, int64_t key, size_t i)
{
    uint32_t id;
    if (intern_add(t, &key, sizeof(key), &id) < 0)
        return -ENOMEM;
    at[id] = (uint32_t)i;
    return 0;
}

/* The context entry of @ctx, or NULL. */
static const Io__Pyroscope__Labels__Pb__Context *label_ctx(const struct labels *l, uint64_t ctx)
{
    uint32_t i = intern_find(&l->ctx, &ctx, sizeof(ctx));
    return i == INTERN_NONE ? NULL : l->snap->contexts[l->ctx_at[i]]->value;
}

static const char *label_str(const struct labels *l, int64_t k)
{
    uint32_t i = intern_find(&l->str, &k, sizeof(k));
    return i == INTERN_NONE ? "" : l->snap->strings[l->str_at[i]]->value;
}

static int labels_load(struct labels *l, const uint8_t *in, size_t len, size_t max, char *err,
                       size_t errlen)
{
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    int e = gzip_decompress(in, len, max, &raw, &rawlen);
    if (e == -EBADMSG)
        return errmsg(err, errlen, "jfr labels: damaged gzip stream"), -EBADMSG;
    if (e)
        return e;
    l->snap = io__pyroscope__labels__pb__labels_snapshot__unpack(NULL, rawlen, raw);
    free(raw);
    if (!l->snap)
        return errmsg(err, errlen, "jfr labels: not a LabelsSnapshot message"), -EBADMSG;
    l->ctx_at = malloc((l->snap->n_contexts + 1) * sizeof(*l->ctx_at));
    l->str_at = malloc((l->snap->n_strings + 1) * sizeof(*l->str_at));
    if (!l->ctx_at || !l->str_at)
        return -ENOMEM;
    for (size_t i = 0; i < l->snap->n_contexts; i++)
        if (index_key(&l->ctx, l->ctx_at, l->snap->contexts[i]->key, i))
            return -ENOMEM;
    for (size_t i = 0; i < l->snap->n_strings; i++)
        if (index_key(&l->str, l->str_at, l->snap->strings[i]->key, i))
            return -ENOMEM;
    return 0;
}

static void labels_free(struct labels *l)
{
    if (l->snap)
        io__pyroscope__labels__pb__labels_snapshot__free_unpacked(l->snap, NULL);
    intern_free(&l->ctx);
    intern_free(&l->str);
    free(l->ctx_at);
    free(l->str_at);
}

static const struct kind_info {
    const char *name, *types[2][2], *period[2];
    int ntypes;
} kinds[JFR_NKINDS] = {
    [JFR_CPU] = {"process_cpu", {{"cpu", "nanoseconds"}}, {"cpu", "nanoseconds"}, 1},
    [JFR_WALL] = {"wall", {{"wall", "nanoseconds"}}, {"wall", "nanoseconds"}, 1},
    [JFR_ALLOC_IN_TLAB] = {"memory",
                           {{"alloc_in_new_tlab_objects", "count"},
                            {"alloc_in_new_tlab_bytes", "bytes"}},
                           {"space", "bytes"},
                           2},
    [JFR_ALLOC_OUTSIDE_TLAB] = {"memory",
                                {{"alloc_outside_tlab_objects", "count"},
                                 {"alloc_outside_tlab_bytes", "bytes"}},
                                {"space", "bytes"},
                                2},
    [JFR_LOCK] = {"mutex",
                  {{"contentions", "count"}, {"delay", "nanoseconds"}},
                  {"mutex", "count"},
                  2},
    [JFR_PARK] = {"block",
                  {{"contentions", "count"}, {"delay", "nanoseconds"}},
                  {"block", "count"},
                  2},
    [JFR_LIVE] = {"memory", {{"live", "count"}}, {"objects", "count"}, 1},
    [JFR_ALLOC_SAMPLE] = {"memory",
                          {{"alloc_sample_objects", "count"}, {"alloc_sample_bytes", "bytes"}},
                          {"space", "bytes"},
                          2},
    [JFR_MALLOC] = {"memory",
                    {{"malloc_objects", "count"}, {"malloc_bytes", "bytes"}},
                    {"space", "bytes"},
                    2},
};

int jfr_profile_type_id(const struct jfr_profile *p, size_t i, char *buf, size_t len)
{
    if (!p || (unsigned)p->kind >= JFR_NKINDS || i >= (size_t)kinds[p->kind].ntypes)
        return -EINVAL;
    const struct kind_info *k = &kinds[p->kind];
    int n = snprintf(buf, len, "%s:%s:%s:%s:%s", k->name, k->types[i][0], k->types[i][1],
                     k->period[0], k->period[1]);
    return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static int64_t strid(struct intern *st, const char *s)
{
    uint32_t id = intern_str(st, s);
    return id == INTERN_NONE ? -1 : (int64_t)id;
}

/* One pprof of the samples of @kind: built from stack structs, packed, and
 * unpacked again so the caller frees it with ..._free_unpacked. */
static int build(struct cx *c, const struct labels *l, enum jfr_kind kind,
                 Perftools__Profiles__Profile **out)
{
    const struct kind_info *ki = &kinds[kind];
    Perftools__Profiles__Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
    Perftools__Profiles__ValueType vt[2], pt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
    Perftools__Profiles__ValueType *vtp[2] = {&vt[0], &vt[1]};
    Perftools__Profiles__Mapping map = PERFTOOLS__PROFILES__MAPPING__INIT, *mapp = &map;
    struct intern st = {0};
    uint32_t nloc = c->locs.n, nname = c->names.n, ns = 0, nl = 0, nf = 0, nlab = 0;
    uint32_t *locmap = calloc(nloc + 1, sizeof(*locmap));
    uint32_t *fnmap = calloc(nname + 1, sizeof(*fnmap));
    size_t nsamples = 0, nids = 0, nlabels = 0;
    int e = -ENOMEM;

    /* sizes first */
    for (uint32_t i = 0; i < c->samples.n; i++) {
        const struct sample_key *k = intern_get(&c->samples, i, NULL);
        if (k->kind != kind)
            continue;
        size_t n;
        intern_seq_get(&c->stacks, k->stack, &n);
        nsamples++;
        nids += n;
        if (l->snap) {
            const Io__Pyroscope__Labels__Pb__Context *cx = label_ctx(l, k->ctx);
            if (cx)
                nlabels += cx->n_labels;
            nlabels += 2;
        }
    }
    Perftools__Profiles__Sample *sm = calloc(nsamples + 1, sizeof(*sm));
    Perftools__Profiles__Sample **smp = calloc(nsamples + 1, sizeof(*smp));
    uint64_t *ids = calloc(nids + 1, sizeof(*ids));
    int64_t *values = calloc(nsamples * 2 + 1, sizeof(*values));
    Perftools__Profiles__Label *lab = calloc(nlabels + 1, sizeof(*lab));
    Perftools__Profiles__Label **labp = calloc(nlabels + 1, sizeof(*labp));
    Perftools__Profiles__Location *loc = calloc(nloc + 1, sizeof(*loc));
    Perftools__Profiles__Location **locp = calloc(nloc + 1, sizeof(*locp));
    Perftools__Profiles__Line *line = calloc(nloc + 1, sizeof(*line));
    Perftools__Profiles__Line **linep = calloc(nloc + 1, sizeof(*linep));
    Perftools__Profiles__Function *fn = calloc(nname + 1, sizeof(*fn));
    Perftools__Profiles__Function **fnp = calloc(nname + 1, sizeof(*fnp));
    uint8_t *packed = NULL;
    if (!locmap || !fnmap || !sm || !smp || !ids || !values || !lab || !labp || !loc || !locp ||
        !line || !linep || !fn || !fnp)
        goto out;
    if (strid(&st, "") < 0)
        goto out;
    for (int i = 0; i < ki->ntypes; i++) {
        perftools__profiles__value_type__init(&vt[i]);
        vt[i].type = strid(&st, ki->types[i][0]);
        vt[i].unit = strid(&st, ki->types[i][1]);
    }
    pt.type = strid(&st, ki->period[0]);
    pt.unit = strid(&st, ki->period[1]);
    map.id = 1;
    map.has_functions = true;

    size_t at = 0;
    for (uint32_t i = 0; i < c->samples.n; i++) {
        const struct sample_key *k = intern_get(&c->samples, i, NULL);
        if (k->kind != kind)
            continue;
        size_t n;
        const uint32_t *stack = intern_seq_get(&c->stacks, k->stack, &n);
        Perftools__Profiles__Sample *s = &sm[ns];
        perftools__profiles__sample__init(s);
        s->location_id = ids + at;
        s->n_location_id = n;
        for (size_t j = 0; j < n; j++) {
            uint32_t g = stack[j];
            if (!locmap[g]) {
                const uint32_t *key = intern_get(&c->locs, g, NULL); /* name, line */
                if (!fnmap[key[0]]) {
                    perftools__profiles__function__init(&fn[nf]);
                    fn[nf].id = nf + 1;
                    fn[nf].name = strid(&st, intern_str_get(&c->names, key[0]));
                    if (fn[nf].name < 0)
                        goto out;
                    fnp[nf] = &fn[nf];
                    fnmap[key[0]] = ++nf;
                }
                perftools__profiles__location__init(&loc[nl]);
                perftools__profiles__line__init(&line[nl]);
                line[nl].function_id = fnmap[key[0]];
                line[nl].line = key[1];
                linep[nl] = &line[nl];
                loc[nl].id = nl + 1;
                loc[nl].mapping_id = 1;
                loc[nl].line = &linep[nl];
                loc[nl].n_line = 1;
                locp[nl] = &loc[nl];
                locmap[g] = ++nl;
            }
            ids[at++] = locmap[g];
        }
        s->value = values + 2 * ns;
        s->n_value = (size_t)ki->ntypes;
        for (int j = 0; j < ki->ntypes; j++)
            s->value[j] = c->vals[i][j];
        if (l->snap) {
            /* jfr-parser: the context's labels, profile_id, span_name */
            s->label = labp + nlab;
            const Io__Pyroscope__Labels__Pb__Context *cx = label_ctx(l, k->ctx);
            for (size_t j = 0; cx && j < cx->n_labels; j++) {
                perftools__profiles__label__init(&lab[nlab]);
                lab[nlab].key = strid(&st, label_str(l, cx->labels[j]->key));
                lab[nlab].str = strid(&st, label_str(l, cx->labels[j]->value));
                labp[nlab] = &lab[nlab];
                nlab++;
            }
            if (k->span) {
                char hex[17];
                snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)k->span);
                perftools__profiles__label__init(&lab[nlab]);
                lab[nlab].key = strid(&st, "profile_id");
                lab[nlab].str = strid(&st, hex);
                labp[nlab] = &lab[nlab];
                nlab++;
            }
            const char *sn = k->spanname ? label_str(l, (int64_t)k->spanname) : "";
            if (*sn) {
                perftools__profiles__label__init(&lab[nlab]);
                lab[nlab].key = strid(&st, "span_name");
                lab[nlab].str = strid(&st, sn);
                labp[nlab] = &lab[nlab];
                nlab++;
            }
            s->n_label = (size_t)(labp + nlab - s->label);
        }
        smp[ns++] = s;
    }
    if (st.n == INTERN_NONE)
        goto out;
    char **strs = calloc(st.n, sizeof(*strs));
    if (!strs)
        goto out;
    for (uint32_t i = 0; i < st.n; i++)
        strs[i] = (char *)intern_str_get(&st, i);
    p.n_sample_type = (size_t)ki->ntypes;
    p.sample_type = vtp;
    p.n_sample = ns;
    p.sample = smp;
    p.n_mapping = 1;
    p.mapping = &mapp;
    p.n_location = nl;
    p.location = locp;
    p.n_function = nf;
    p.function = fnp;
    p.n_string_table = st.n;
    p.string_table = strs;
    p.time_nanos = c->time_ns;
    p.duration_nanos = c->end_ns > c->time_ns ? c->end_ns - c->time_ns : 0;
    p.period_type = &pt;
    p.period = kind == JFR_CPU || kind == JFR_WALL ? c->period : 0;
    size_t plen = perftools__profiles__profile__get_packed_size(&p);
    packed = malloc(plen ? plen : 1);
    if (packed) {
        perftools__profiles__profile__pack(&p, packed);
        *out = perftools__profiles__profile__unpack(NULL, plen, packed);
        if (*out)
            e = 0;
    }
    free(strs);
out:
    free(packed);
    intern_free(&st);
    free(locmap);
    free(fnmap);
    free(sm);
    free(smp);
    free(ids);
    free(values);
    free(lab);
    free(labp);
    free(loc);
    free(locp);
    free(line);
    free(linep);
    free(fn);
    free(fnp);
    return e;
}

void jfr_result_free(struct jfr_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (r->profiles[i].pprof)
            perftools__profiles__profile__free_unpacked(r->profiles[i].pprof, NULL);
    free(r->profiles);
    free(r);
}

int jfr_convert(const uint8_t *jfr, size_t len, const uint8_t *labels, size_t labels_len,
                const struct jfr_opts *o, struct jfr_result **out, char *err, size_t errlen)
{
    struct cx c = {.err = err, .errlen = errlen, .cur = {1, 0}};
    struct labels l = {0};
    struct jfr_result *res = NULL;
    uint8_t *raw = NULL;
    size_t max = o && o->max_bytes ? o->max_bytes : DEFAULT_MAX;
    int64_t rate = o && o->sample_rate > 0 ? o->sample_rate : 100;
    int e;

    *out = NULL;
    c.period = 1000000000 / rate;
    e = gzip_decompress(jfr, len, max, &raw, &c.len);
    if (!e && c.len > max) /* gzip_decompress may return a little past max */
        e = -EFBIG;
    if (e == -EBADMSG) {
        errmsg(err, errlen, "jfr: damaged or truncated gzip stream");
        return e;
    }
    if (e == -EFBIG)
        errmsg(err, errlen, "jfr: recording larger than %zu bytes decompressed", max);
    if (e) {
        free(raw);
        return e;
    }
    c.buf = raw;
    if (labels && labels_len && (e = labels_load(&l, labels, labels_len, max, err, errlen)))
        goto out;
    if (c.len == 0) {
        e = bad(&c, "empty recording", 0);
        goto out;
    }
    for (size_t pos = 0; pos < c.len; pos = c.chunk_end)
        if ((e = read_chunk(&c, pos)))
            goto out;

    e = -ENOMEM;
    res = calloc(1, sizeof(*res));
    if (!res || !(res->profiles = calloc(JFR_NKINDS, sizeof(*res->profiles))))
        goto out;
    bool have[JFR_NKINDS] = {false};
    for (uint32_t i = 0; i < c.samples.n; i++)
        have[((const struct sample_key *)intern_get(&c.samples, i, NULL))->kind] = true;
    for (int k = 0; k < JFR_NKINDS; k++) {
        if (!have[k])
            continue;
        struct jfr_profile *p = &res->profiles[res->n];
        p->kind = (enum jfr_kind)k;
        p->name = kinds[k].name;
        if ((e = build(&c, &l, (enum jfr_kind)k, &p->pprof)))
            goto out;
        res->n++;
    }
    snprintf(res->event, sizeof(res->event), "%s", c.event);
    res->stats = c.stats;
    *out = res;
    res = NULL;
    e = 0;
out:
    jfr_result_free(res);
    labels_free(&l);
    meta_reset(&c);
    free(c.cls);
    free(c.fields);
    free(c.cpv);
    free(c.frames);
    wb_free(&c.arena);
    intern_free(&c.names);
    intern_free(&c.locs);
    intern_free(&c.stacks);
    intern_free(&c.samples);
    free(c.vals);
    free(raw);
    return e;
}
