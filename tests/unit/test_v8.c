/* SPDX-License-Identifier: Apache-2.0 */
/*
 * symbolizer/v8 + unwind/v8: JavaScript functions named from memory that a
 * real node wrote (tests/data/v8/node-v*.fixture: the reads the namer made
 * in a live process, and the names and lines V8 itself gives the same
 * functions, written by tests/data/v8/gen.sh), bad memory that must leave a
 * frame unnamed and never hang, line counting, and V8 detection on this
 * machine's node.
 *
 * `test_v8 --capture PID < list` is the fixture writer gen.sh runs: it names
 * each "sfi|name|file|line" of the list in process PID, records every read,
 * and prints the fixture (exit 1 when a name differs from V8's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "symbolizer/v8.h"
#include "unwind/v8.h"

/* ---- the layout as text ----------------------------------------------------- */

#define F(f)                                                                                       \
    {                                                                                              \
#f, offsetof(struct v8_layout, f), sizeof(((struct v8_layout *)0)->f)                      \
    }
static const struct {
    const char *name;
    size_t off, size;
} fields[] = {
    F(version),          F(bpf.fp_context),     F(bpf.fp_function),
    F(bpf.obj_map),      F(bpf.map_type),       F(bpf.func_shared),
    F(bpf.type_func_lo), F(bpf.type_func_hi),   F(type_sfi),
    F(type_scope_info),  F(type_script),        F(type_fixed_array),
    F(first_nonstring),  F(type_uncompiled_lo), F(type_uncompiled_hi),
    F(str_repr_mask),    F(str_enc_mask),       F(str_one_byte),
    F(str_seq),          F(str_cons),           F(str_thin),
    F(str_sliced),       F(sfi_data),           F(sfi_name),
    F(sfi_script),       F(script_name),        F(script_source),
    F(script_line_ends), F(str_length),         F(seq_one_chars),
    F(seq_two_chars),    F(cons_first),         F(cons_second),
    F(thin_actual),      F(sliced_parent),      F(sliced_offset),
    F(fixed_length),     F(fixed_data),         F(uncompiled_name),
    F(uncompiled_start),
};

static void print_layout(FILE *f, const struct v8_layout *l)
{
    fprintf(f, "layout");
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *p = (const char *)l + fields[i].off;
        long v = fields[i].size == 4 ? (long)*(const uint32_t *)p : (long)*(const int16_t *)p;
        if (fields[i].size == 2 && strncmp(fields[i].name, "bpf.fp_", 7) != 0)
            v = *(const uint16_t *)p;
        fprintf(f, " %s=%ld", fields[i].name, v);
    }
    fprintf(f, "\n");
}

static int parse_layout(const char *line, struct v8_layout *l)
{
    int n = 0;
    memset(l, 0, sizeof(*l));
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        char key[64];
        snprintf(key, sizeof(key), " %s=", fields[i].name);
        const char *p = strstr(line, key);
        if (!p)
            continue;
        long v = strtol(p + strlen(key), NULL, 10);
        char *d = (char *)l + fields[i].off;
        if (fields[i].size == 4)
            *(uint32_t *)d = (uint32_t)v;
        else
            *(uint16_t *)d = (uint16_t)v;
        n++;
    }
    return n == (int)(sizeof(fields) / sizeof(fields[0])) ? 0 : -EINVAL;
}

/* ---- memory images ------------------------------------------------------------ */

struct region {
    uint64_t addr;
    size_t len;
    uint8_t *data;
};

struct image {
    struct region *r;
    size_t n, cap;
    pid_t pid;    /* capture: the live process */
    size_t reads; /* reads served */
};

static void image_add(struct image *im, uint64_t addr, const void *data, size_t len)
{
    for (size_t i = 0; i < im->n; i++)
        if (im->r[i].addr == addr && im->r[i].len == len)
            return;
    if (im->n == im->cap) {
        im->cap = im->cap ? im->cap * 2 : 64;
        im->r = realloc(im->r, im->cap * sizeof(*im->r));
        assert_non_null(im->r);
    }
    im->r[im->n].addr = addr;
    im->r[im->n].len = len;
    im->r[im->n].data = malloc(len ? len : 1);
    memcpy(im->r[im->n].data, data, len);
    im->n++;
}

static void image_free(struct image *im)
{
    for (size_t i = 0; i < im->n; i++)
        free(im->r[i].data);
    free(im->r);
    memset(im, 0, sizeof(*im));
}

static int image_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct image *im = ctx;

    im->reads++;
    for (size_t i = im->n; i-- > 0;) {
        const struct region *r = &im->r[i];
        if (addr >= r->addr && addr - r->addr + len <= r->len && addr + len >= addr) {
            memcpy(buf, r->data + (addr - r->addr), len);
            return 0;
        }
    }
    return -EFAULT;
}

/* capture: the live process's memory, each read recorded */
static int live_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    struct image *im = ctx;
    struct iovec local = {.iov_base = buf, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};

    if (process_vm_readv(im->pid, &local, 1, &remote, 1, 0) != (ssize_t)len)
        return errno == ESRCH ? -ESRCH : -EFAULT;
    image_add(im, addr, buf, len);
    return 0;
}

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (h[0] && h[1] && h[0] != '\n' && n < cap) {
        unsigned b;
        if (sscanf(h, "%2x", &b) != 1)
            break;
        out[n++] = (uint8_t)b;
        h += 2;
    }
    return n;
}

/* ---- capture --------------------------------------------------------------------- */

static int capture(pid_t pid)
{
    char path[64], line[4096];
    struct v8_layout l;
    struct image im = {.pid = pid};
    struct sym_v8mem mem = {.read = live_read, .ctx = &im};
    struct sym_v8cache *c = NULL;
    size_t bytes = 0;
    int bad = 0, fd;

    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    elf_version(EV_CURRENT);
    fd = open(path, O_RDONLY);
    Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
    if (!elf || v8_detect(elf, &l, false) != 0) {
        fprintf(stderr, "capture: %s holds no V8 this agent reads\n", path);
        return 1;
    }
    elf_end(elf);
    close(fd);
    printf("# written by tests/data/v8/gen.sh: V8 %u.%u.%u\n", l.version >> 24,
           (l.version >> 16) & 0xff, l.version & 0xffff);
    print_layout(stdout, &l);
    char *frames = NULL;
    size_t flen = 0;
    FILE *fo = open_memstream(&frames, &flen);
    while (fgets(line, sizeof(line), stdin)) {
        char want_name[1024], want_file[2048];
        unsigned long long sfi;
        int want_line;
        struct sym_v8name got;
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "%llx|%1023[^|]|%2047[^|]|%d", &sfi, want_name, want_file, &want_line) !=
            4)
            continue;
        uint64_t frame = STOKE_V8_FRAME(sfi - 1, 0);
        int ret = sym_v8_name(&c, &l, &mem, 1, frame, &got, &bytes);
        if (ret || strcmp(got.function, want_name) != 0 || !got.file ||
            strcmp(got.file, want_file) != 0 || got.line != want_line) {
            fprintf(stderr, "capture: %s: got %s|%s|%d (%s)\n", line, ret ? "-" : got.function,
                    ret || !got.file ? "-" : got.file, ret ? 0 : got.line, strerror(-ret));
            bad = 1;
        }
        fprintf(fo, "frame %llx %s|%s|%d\n", (unsigned long long)frame, want_name, want_file,
                want_line);
    }
    fclose(fo);
    for (size_t i = 0; i < im.n; i++) {
        printf("mem %llx ", (unsigned long long)im.r[i].addr);
        for (size_t k = 0; k < im.r[i].len; k++)
            printf("%02x", im.r[i].data[k]);
        printf("\n");
    }
    fputs(frames, stdout);
    free(frames);
    sym_v8cache_free(c);
    image_free(&im);
    return bad;
}

/* ---- the fixtures ---------------------------------------------------------------- */

struct fixture {
    struct v8_layout l;
    struct image im;
    char (*frames)[2048];
    size_t nframes;
};

static void load_fixture(const char *path, struct fixture *fx)
{
    static char line[1 << 20];
    uint8_t *buf = malloc(sizeof(line) / 2);
    FILE *f = fopen(path, "r");
    bool have_layout = false;

    memset(fx, 0, sizeof(*fx));
    assert_non_null(f);
    assert_non_null(buf);
    while (fgets(line, sizeof(line), f)) {
        unsigned long long addr;
        int off = 0;
        if (strncmp(line, "layout ", 7) == 0) {
            assert_int_equal(parse_layout(line + 6, &fx->l), 0);
            have_layout = true;
        } else if (sscanf(line, "mem %llx %n", &addr, &off) == 1 && off) {
            size_t n = unhex(line + off, buf, sizeof(line) / 2);
            image_add(&fx->im, addr, buf, n);
        } else if (strncmp(line, "frame ", 6) == 0) {
            fx->frames = realloc(fx->frames, (fx->nframes + 1) * sizeof(*fx->frames));
            assert_non_null(fx->frames);
            size_t n = strnlen(line + 6, sizeof(fx->frames[0]) - 1);
            memcpy(fx->frames[fx->nframes], line + 6, n);
            fx->frames[fx->nframes++][n] = '\0';
        }
    }
    fclose(f);
    free(buf);
    assert_true(have_layout);
    assert_true(fx->nframes >= 10);
}

static void check_fixture(const char *path)
{
    struct fixture fx;
    struct sym_v8mem mem;
    struct sym_v8cache *c = NULL;
    size_t bytes = 0;

    load_fixture(path, &fx);
    mem = (struct sym_v8mem){.read = image_read, .ctx = &fx.im};
    for (int pass = 0; pass < 2; pass++) { /* the second from the cache */
        for (size_t i = 0; i < fx.nframes; i++) {
            unsigned long long frame;
            char want[2048], got[4096];
            struct sym_v8name n;
            assert_int_equal(sscanf(fx.frames[i], "%llx %2047[^\n]", &frame, want), 2);
            int ret = sym_v8_name(&c, &fx.l, &mem, 1, frame, &n, &bytes);
            if (ret)
                fail_msg("%s: frame %llx: %s", path, frame, strerror(-ret));
            snprintf(got, sizeof(got), "%s|%s|%d", n.function, n.file ? n.file : "-", n.line);
            if (strcmp(got, want) != 0)
                fail_msg("%s: frame %llx: %s, V8 says %s", path, frame, got, want);
        }
    }
    size_t reads = fx.im.reads;
    /* a later generation checks each function again with one read each */
    for (size_t i = 0; i < fx.nframes; i++) {
        unsigned long long frame;
        struct sym_v8name n;
        sscanf(fx.frames[i], "%llx", &frame);
        assert_int_equal(sym_v8_name(&c, &fx.l, &mem, 2, frame, &n, &bytes), 0);
    }
    assert_true(fx.im.reads - reads <= 6 * fx.nframes);
    assert_true(bytes > 0);
    sym_v8cache_free(c);
    image_free(&fx.im);
    free(fx.frames);
}

static void test_node20_fixture(void **state)
{
    check_fixture("tests/data/v8/node-v20.fixture");
}

/* ---- synthetic memory -------------------------------------------------------------- */

/* A tiny heap: objects at 8-aligned offsets of one region, built by hand
 * with the node 20 layout of the fixture. */
struct heap {
    struct fixture fx;
    uint8_t mem[1 << 16];
    uint64_t base;
};

#define MAP_SFI    0x100
#define MAP_SCOPE  0x180
#define MAP_SCRIPT 0x200
#define MAP_ONE    0x280 /* sequential one-byte string */
#define MAP_CONS   0x300
#define MAP_ODD    0x380
#define MAP_TWO    0x400 /* sequential two-byte string */

static uint64_t tag(const struct heap *h, uint64_t off)
{
    return h->base + off + 1;
}

static void put64(struct heap *h, uint64_t off, uint64_t v)
{
    memcpy(h->mem + off, &v, 8);
}

static uint64_t smiv(int64_t v)
{
    return (uint64_t)v << 32;
}

static void make_map(struct heap *h, uint64_t off, uint16_t type)
{
    memcpy(h->mem + off + h->fx.l.bpf.map_type, &type, 2);
}

static void make_one_byte(struct heap *h, uint64_t off, const char *s)
{
    int32_t len = (int32_t)strlen(s);
    put64(h, off, tag(h, MAP_ONE));
    memcpy(h->mem + off + h->fx.l.str_length, &len, 4);
    memcpy(h->mem + off + h->fx.l.seq_one_chars, s, (size_t)len);
}

static void heap_init(struct heap *h)
{
    memset(h, 0, sizeof(*h));
    load_fixture("tests/data/v8/node-v20.fixture", &h->fx);
    image_free(&h->fx.im);
    free(h->fx.frames);
    h->base = 0x7f0000000000ull;
    const struct v8_layout *l = &h->fx.l;
    make_map(h, MAP_SFI, l->type_sfi);
    make_map(h, MAP_SCOPE, l->type_scope_info);
    make_map(h, MAP_SCRIPT, l->type_script);
    make_map(h, MAP_ONE, l->str_one_byte | l->str_seq | 0x40); /* an internalized one-byte string */
    make_map(h, MAP_CONS, l->str_one_byte | l->str_cons);
    make_map(h, MAP_ODD, (uint16_t)(l->first_nonstring + 3)); /* an oddball */
    make_map(h, MAP_TWO, l->str_seq);
    for (uint64_t m = MAP_SFI; m <= MAP_TWO; m += 0x80)
        put64(h, m, tag(h, m)); /* maps' own map: anything tagged */
}

/* An SFI at 0x1000 whose ScopeInfo at 0x1100 names it @name (at 0x2000),
 * with positions @start, @end, and a Script at 0x1200 named "s.js" whose
 * source is @src (at 0x3000). */
static void make_function(struct heap *h, const char *src, int start, int end)
{
    const struct v8_layout *l = &h->fx.l;
    put64(h, 0x1000, tag(h, MAP_SFI));
    put64(h, 0x1000 + l->sfi_name, tag(h, 0x1100));
    put64(h, 0x1000 + l->sfi_script, tag(h, 0x1200));
    put64(h, 0x1000 + l->sfi_data, smiv(0));
    put64(h, 0x1100, tag(h, MAP_SCOPE));
    uint64_t slots[] = {smiv(0x171c2), smiv(1),        smiv(0),     tag(h, 0x2000),
                        smiv(-1),      tag(h, 0x1180), smiv(start), smiv(end)};
    memcpy(h->mem + 0x1108, slots, sizeof(slots));
    put64(h, 0x1180, tag(h, MAP_ODD)); /* undefined */
    put64(h, 0x1200, tag(h, MAP_SCRIPT));
    put64(h, 0x1200 + l->script_name, tag(h, 0x2100));
    put64(h, 0x1200 + l->script_source, tag(h, 0x3000));
    put64(h, 0x1200 + l->script_line_ends, tag(h, 0x1180));
    make_one_byte(h, 0x2000, "fn");
    make_one_byte(h, 0x2100, "s.js");
    make_one_byte(h, 0x3000, src);
}

static int heap_name_gen(struct heap *h, struct sym_v8name *n, struct sym_v8cache **c,
                         size_t *bytes, uint64_t gen)
{
    struct image im = {0};
    image_add(&im, h->base, h->mem, sizeof(h->mem));
    struct sym_v8mem mem = {.read = image_read, .ctx = &im};
    int ret = sym_v8_name(c, &h->fx.l, &mem, gen, STOKE_V8_FRAME(h->base + 0x1000, 0), n, bytes);
    image_free(&im);
    return ret;
}

static int heap_name(struct heap *h, struct sym_v8name *n, struct sym_v8cache **c, size_t *bytes)
{
    return heap_name_gen(h, n, c, bytes, 1);
}

/* Line terminators as V8 counts them: \n, a lone \r, \r\n once, U+2028. */
static void test_lines_from_source(void **state)
{
    static const struct {
        const char *src;
        int start, line;
    } cases[] = {
        {"function fn() {}", 8, 1},
        {"\n\nfunction fn() {}", 10, 3},
        {"a\r\nb\r\nfunction fn", 6, 3},
        {"a\rb\rc\r\rfunction", 8, 5},
        {"a\n\r\nb", 4, 3},
        {"abc", 0, 1},
    };
    struct heap *h = malloc(sizeof(*h));
    assert_non_null(h);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sym_v8cache *c = NULL;
        struct sym_v8name n;
        size_t bytes = 0;
        heap_init(h);
        make_function(h, cases[i].src, cases[i].start, cases[i].start + 1);
        assert_int_equal(heap_name(h, &n, &c, &bytes), 0);
        assert_string_equal(n.function, "fn");
        assert_string_equal(n.file, "s.js");
        if (n.line != cases[i].line)
            fail_msg("case %zu: line %d, want %d", i, n.line, cases[i].line);
        sym_v8cache_free(c);
    }
    /* V8's own line ends, when it has them, over the source's */
    {
        struct sym_v8cache *c = NULL;
        struct sym_v8name n;
        size_t bytes = 0;
        const struct v8_layout *l = &h->fx.l;
        heap_init(h);
        make_map(h, 0x480, l->type_fixed_array);
        put64(h, 0x480, tag(h, 0x480));
        make_function(h, "no line ends here", 7, 8);
        put64(h, 0x1200 + l->script_line_ends, tag(h, 0x1400));
        put64(h, 0x1400, tag(h, 0x480));
        put64(h, 0x1400 + l->fixed_length, smiv(3));
        put64(h, 0x1400 + l->fixed_data, smiv(2));
        put64(h, 0x1400 + l->fixed_data + 8, smiv(5));
        put64(h, 0x1400 + l->fixed_data + 16, smiv(30));
        assert_int_equal(heap_name(h, &n, &c, &bytes), 0);
        assert_int_equal(n.line, 3);
        sym_v8cache_free(c);
    }
    /* a name in a sliced string: "xfnx"[1..3] */
    {
        struct sym_v8cache *c = NULL;
        struct sym_v8name n;
        size_t bytes = 0;
        const struct v8_layout *l = &h->fx.l;
        int32_t len = 2;
        heap_init(h);
        make_map(h, 0x480, l->str_one_byte | l->str_sliced);
        put64(h, 0x480, tag(h, 0x480));
        make_function(h, "x", 0, 1);
        make_one_byte(h, 0x2200, "xfnx");
        put64(h, 0x2000, tag(h, 0x480));
        memcpy(h->mem + 0x2000 + l->str_length, &len, 4);
        put64(h, 0x2000 + l->sliced_parent, tag(h, 0x2200));
        put64(h, 0x2000 + l->sliced_offset, smiv(1));
        assert_int_equal(heap_name(h, &n, &c, &bytes), 0);
        assert_string_equal(n.function, "fn");
        sym_v8cache_free(c);
    }
    /* a two-byte source with U+2028 and U+2029 */
    {
        struct sym_v8cache *c = NULL;
        struct sym_v8name n;
        size_t bytes = 0;
        const uint16_t src[] = {'a', 0x2028, 'b', 0x2029, 'c', '\n', 'f'};
        int32_t len = 7;
        heap_init(h);
        make_function(h, "", 6, 7);
        put64(h, 0x3000, tag(h, MAP_TWO));
        memcpy(h->mem + 0x3000 + h->fx.l.str_length, &len, 4);
        memcpy(h->mem + 0x3000 + h->fx.l.seq_two_chars, src, sizeof(src));
        assert_int_equal(heap_name(h, &n, &c, &bytes), 0);
        assert_int_equal(n.line, 4);
        sym_v8cache_free(c);
    }
    free(h);
}

/* Memory that lies: a frame stays unnamed (an error), or named without
 * what could not be read, and nothing loops. */
static void test_bad_memory(void **state)
{
    struct heap *h = malloc(sizeof(*h));
    struct sym_v8name n;
    size_t bytes = 0;
    assert_non_null(h);

    /* not an SFI: its map says otherwise */
    {
        struct sym_v8cache *c = NULL;
        heap_init(h);
        make_function(h, "x", 0, 1);
        put64(h, 0x1000, tag(h, MAP_SCRIPT));
        assert_int_equal(heap_name(h, &n, &c, &bytes), -EFAULT);
        sym_v8cache_free(c);
    }
    /* a name that is a cons string of itself: named <anonymous>, promptly */
    {
        struct sym_v8cache *c = NULL;
        const struct v8_layout *l = &h->fx.l;
        heap_init(h);
        make_function(h, "x", 0, 1);
        int32_t len = 1000;
        put64(h, 0x2000, tag(h, MAP_CONS));
        memcpy(h->mem + 0x2000 + l->str_length, &len, 4);
        put64(h, 0x2000 + l->cons_first, tag(h, 0x2000));
        put64(h, 0x2000 + l->cons_second, tag(h, 0x2000));
        assert_int_equal(heap_name(h, &n, &c, &bytes), 0);
        assert_string_equal(n.function, "<anonymous>");
        sym_v8cache_free(c);
    }
    /* a right-leaning chain of cons strings longer than the nesting cap */
    {
        struct sym_v8cache *c = NULL;
        const struct v8_layout *l = &h->fx.l;
        heap_init(h);
        make_function(h, "x", 0, 1);
        for (int i = 0; i < 200; i++) {
            uint64_t at = 0x4000 + (uint64_t)i * 64;
            int32_t len = 200 - i;
            put64(h, at, tag(h, MAP_CONS));
            memcpy(h->mem + at + l->str_length, &len, 4);
            put64(h, at + l->cons_first, tag(h, 0x2000)); /* "fn" */
            put64(h, at + l->cons_second, tag(h, at + 64));
        }
        put64(h, 0x1108 + 3 * 8, tag(h, 0x4000));
        assert_int_equal(heap_name(h, &n, &c, &bytes), 0);
        assert_string_equal(n.function, "<anonymous>");
        sym_v8cache_free(c);
    }
    /* a ScopeInfo whose locals count points past the heap: no name */
    {
        struct sym_v8cache *c = NULL;
        heap_init(h);
        make_function(h, "x", 0, 1);
        put64(h, 0x1108 + 2 * 8, smiv(60000));
        assert_int_equal(heap_name(h, &n, &c, &bytes), 0);
        assert_string_equal(n.function, "<anonymous>");
        assert_int_equal(n.line, 0);
        sym_v8cache_free(c);
    }
    /* positions the wrong way round: not taken for positions */
    {
        struct sym_v8cache *c = NULL;
        heap_init(h);
        make_function(h, "\n\nx", 3, 1);
        assert_int_equal(heap_name(h, &n, &c, &bytes), 0);
        assert_int_equal(n.line, 0);
        sym_v8cache_free(c);
    }
    free(h);
}

/* The collector moved a function and put another at its address: the
 * cache answers for the old one within a generation, the new one after. */
static void test_moved(void **state)
{
    struct heap *h = malloc(sizeof(*h));
    struct sym_v8cache *c = NULL;
    struct sym_v8name n;
    size_t bytes = 0;

    assert_non_null(h);
    heap_init(h);
    make_function(h, "x", 0, 1);
    assert_int_equal(heap_name_gen(h, &n, &c, &bytes, 1), 0);
    assert_string_equal(n.function, "fn");
    size_t held = bytes;
    /* another function's ScopeInfo (a copy, named "gn") */
    memcpy(h->mem + 0x1500, h->mem + 0x1100, 0x80);
    make_one_byte(h, 0x2300, "gn");
    put64(h, 0x1508 + 3 * 8, tag(h, 0x2300));
    put64(h, 0x1000 + h->fx.l.sfi_name, tag(h, 0x1500));
    assert_int_equal(heap_name_gen(h, &n, &c, &bytes, 1), 0);
    assert_string_equal(n.function, "fn");
    assert_int_equal(heap_name_gen(h, &n, &c, &bytes, 2), 0);
    assert_string_equal(n.function, "gn");
    assert_int_equal(bytes, held);
    /* and then nothing there at all */
    put64(h, 0x1000, tag(h, MAP_ONE));
    assert_int_equal(heap_name_gen(h, &n, &c, &bytes, 3), -EFAULT);
    sym_v8cache_free(c);
    free(h);
}

static void test_line(void **state)
{
    const uint32_t ends[] = {10, 20, 30};
    assert_int_equal(sym_v8_line(ends, 3, -1), 0);
    assert_int_equal(sym_v8_line(ends, 3, 0), 1);
    assert_int_equal(sym_v8_line(ends, 3, 10), 1);
    assert_int_equal(sym_v8_line(ends, 3, 11), 2);
    assert_int_equal(sym_v8_line(ends, 3, 30), 3);
    assert_int_equal(sym_v8_line(ends, 3, 31), 4);
    assert_int_equal(sym_v8_line(NULL, 0, 5), 1);
}

/* This machine's node: V8 found, with the layout the walker needs; node 20
 * is the one the fixture came from, and must agree with it. */
static void test_detect_node(void **state)
{
    const char *path = "/usr/bin/node";
    struct v8_layout l, want;
    struct fixture fx;
    int fd = open(path, O_RDONLY);

    if (fd < 0)
        skip();
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    assert_non_null(elf);
    assert_int_equal(v8_detect(elf, &l, false), 0);
    elf_end(elf);
    close(fd);
    assert_true(l.version >= V8_VERSION(10, 2, 0));
    assert_int_equal(l.bpf.fp_function, -16);
    assert_true(l.bpf.type_func_lo > 0 && l.bpf.type_func_lo < l.bpf.type_func_hi);
    load_fixture("tests/data/v8/node-v20.fixture", &fx);
    want = fx.l;
    image_free(&fx.im);
    free(fx.frames);
    if ((l.version >> 16) == (want.version >> 16)) {
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            if (memcmp((char *)&l + fields[i].off, (char *)&want + fields[i].off, fields[i].size) !=
                    0 &&
                strcmp(fields[i].name, "version") != 0)
                fail_msg("%s differs from the fixture's", fields[i].name);
    }

    /* not V8: the agent's own binary */
    fd = open("/proc/self/exe", O_RDONLY);
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    assert_int_equal(v8_detect(elf, &l, false), -ENOENT);
    elf_end(elf);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--capture") == 0)
        return capture((pid_t)atoi(argv[2]));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node20_fixture), cmocka_unit_test(test_lines_from_source),
        cmocka_unit_test(test_bad_memory),     cmocka_unit_test(test_moved),
        cmocka_unit_test(test_line),           cmocka_unit_test(test_detect_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
