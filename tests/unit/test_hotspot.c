/* SPDX-License-Identifier: Apache-2.0 */
/*
 * symbolizer/hotspot + unwind/hotspot: HotSpot's compressed streams decoded
 * as the VM wrote them. tests/data/jvm/jdk17.txt (tests/data/jvm/gen.sh)
 * holds, from a live JDK 17 running JvmWork.java, each compiled method's
 * line number table and debug information (PcDescs, scope data, metadata
 * names), and javap's LineNumberTable of each method: every bci decodes to
 * the line javac recorded, every PcDesc's scope chain decodes to methods
 * the nmethod lists, ending at the nmethod's own method. Also UNSIGNED5
 * round trips, corrupt streams, and libjvm detection on this machine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer/hotspot.h"

#define FIXTURE "tests/data/jvm/jdk17.txt"
#define MAXN    64

struct table {
    char name[128];
    uint8_t b[256];
    size_t n;
};

struct nm {
    char name[128];
    uint8_t *scopes;
    size_t nscopes;
    int32_t pcs[512][2];
    int npcs;
    char meta[32][128];
    int nmeta;
};

static struct table tabs[MAXN];
static int ntabs;
static struct nm nms[MAXN];
static int nnms;
static struct {
    char name[128];
    uint32_t bci;
    int line;
} lines[512];
static int nlines;

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned v;
    while (n < cap && sscanf(h + 2 * n, "%2x", &v) == 1)
        out[n++] = (uint8_t)v;
    return n;
}

static int load(void **state)
{
    FILE *f = fopen(FIXTURE, "r");
    static char ln[1 << 16];
    struct nm *cur = NULL;

    assert_non_null(f);
    while (fgets(ln, sizeof(ln), f)) {
        char a[128], b[1 << 15];
        int x, y;
        ln[strcspn(ln, "\n")] = '\0';
        if (sscanf(ln, "nmethod %127s", a) == 1 && nnms < MAXN) {
            cur = &nms[nnms++];
            snprintf(cur->name, sizeof(cur->name), "%s", a);
        } else if (cur && strncmp(ln, "scopes ", 7) == 0) {
            size_t hl = strlen(ln + 7) / 2;
            cur->scopes = malloc(hl ? hl : 1);
            cur->nscopes = unhex(ln + 7, cur->scopes, hl);
        } else if (cur && sscanf(ln, "pc %d %d", &x, &y) == 2 && cur->npcs < 512) {
            cur->pcs[cur->npcs][0] = x;
            cur->pcs[cur->npcs++][1] = y;
        } else if (cur && sscanf(ln, "meta %d %127s", &x, a) == 2 && cur->nmeta < 32) {
            snprintf(cur->meta[cur->nmeta++], 128, "%s", a);
        } else if (sscanf(ln, "line %127s %d %d", a, &x, &y) == 3 && nlines < 512) {
            snprintf(lines[nlines].name, 128, "%s", a);
            lines[nlines].bci = (uint32_t)x;
            lines[nlines++].line = y;
        } else if (sscanf(ln, "JvmWork.%99s %32767s", a, b) == 2 && ntabs < MAXN) {
            snprintf(tabs[ntabs].name, 128, "JvmWork.%.100s", a);
            tabs[ntabs].n = unhex(b, tabs[ntabs].b, sizeof(tabs[ntabs].b));
            ntabs++;
        }
    }
    fclose(f);
    (void)state;
    return 0;
}

static int unload(void **state)
{
    for (int i = 0; i < nnms; i++)
        free(nms[i].scopes);
    (void)state;
    return 0;
}

static const struct table *table_of(const char *name)
{
    for (int i = 0; i < ntabs; i++)
        if (strcmp(tabs[i].name, name) == 0)
            return &tabs[i];
    return NULL;
}

/* Every bci of every method: the line of javap's entry with the largest bci
 * at or before it (javac's truth), decoded from the VM's compressed table. */
static void test_line_tables(void **state)
{
    int checked = 0;

    (void)state;
    assert_true(nlines > 20);
    for (int i = 0; i < nlines; i++) {
        const struct table *t = table_of(lines[i].name);
        if (!t)
            continue; /* a method not compiled when captured */
        uint32_t hi = 0;
        for (int k = 0; k < nlines; k++)
            if (strcmp(lines[k].name, lines[i].name) == 0 && lines[k].bci > hi)
                hi = lines[k].bci;
        for (uint32_t bci = lines[i].bci; bci <= hi + 3; bci++) {
            uint32_t best = 0;
            int want = -1;
            for (int k = 0; k < nlines; k++)
                if (strcmp(lines[k].name, lines[i].name) == 0 && lines[k].bci <= bci &&
                    lines[k].bci >= best) {
                    best = lines[k].bci;
                    want = lines[k].line;
                }
            size_t used;
            int got = sym_jvm_line(t->b, t->n, 0, bci, &used);
            if (got != want)
                fail_msg("%s bci %u: line %d, javap says %d", lines[i].name, bci, got, want);
            assert_true(used > 0 && used <= t->n); /* the table ends in the capture */
            checked++;
        }
    }
    assert_true(checked > 100);
}

/* Every PcDesc with a scope: a chain of methods the nmethod lists, the
 * outermost its own; some methods had others inlined. */
static void test_scopes(void **state)
{
    int checked = 0, inlined = 0;

    (void)state;
    assert_true(nnms >= 4);
    for (int i = 0; i < nnms; i++) {
        const struct nm *m = &nms[i];
        assert_non_null(m->scopes);
        for (int p = 0; p < m->npcs; p++) {
            uint32_t midx[SYM_JVM_MAX_INLINE];
            int32_t bcis[SYM_JVM_MAX_INLINE];
            if (m->pcs[p][1] <= 0)
                continue;
            int n = sym_jvm_scopes(m->scopes, m->nscopes, 0, (uint32_t)m->pcs[p][1], midx, bcis,
                                   SYM_JVM_MAX_INLINE);
            if (n < 1)
                fail_msg("%s pc %d: scopes %d", m->name, m->pcs[p][0], n);
            for (int k = 0; k < n; k++) {
                assert_true(midx[k] >= 1 && (int)midx[k] <= m->nmeta);
                assert_string_not_equal(m->meta[midx[k] - 1], ".");
                assert_true(bcis[k] >= -1 && bcis[k] < 65536);
            }
            assert_string_equal(m->meta[midx[n - 1] - 1], m->name);
            inlined += n > 1;
            checked++;
        }
    }
    assert_true(checked > 20);
    assert_true(inlined > 0);
}

/* Corrupt streams: every prefix and every single-byte change of the real
 * ones decodes to an answer or -1, never past the buffer (ASan). */
static void test_corrupt(void **state)
{
    uint32_t midx[4];
    int32_t bcis[4];

    (void)state;
    for (int i = 0; i < ntabs; i++) {
        for (size_t n = 0; n <= tabs[i].n; n++) {
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, tabs[i].b, n);
            assert_true(sym_jvm_line(cut, n, 0, 5, NULL) >= -1);
            assert_true(sym_jvm_line(cut, n, 1, 5, NULL) >= -1);
            free(cut);
        }
    }
    for (int i = 0; i < nnms; i++) {
        const struct nm *m = &nms[i];
        uint8_t *c = malloc(m->nscopes);
        for (size_t k = 0; k < m->nscopes; k++) {
            memcpy(c, m->scopes, m->nscopes);
            c[k] ^= 0xa5;
            for (int p = 0; p < m->npcs; p++) {
                int n = sym_jvm_scopes(c, m->nscopes, 0, (uint32_t)m->pcs[p][1], midx, bcis, 4);
                assert_true(n >= -1 && n <= 4);
            }
        }
        free(c);
    }
    /* a sender that does not go back is a loop */
    const uint8_t loop[] = {0xff, 0x01, 0x01, 0x01};
    assert_int_equal(sym_jvm_scopes(loop, sizeof(loop), 0, 1, midx, bcis, 4), -1);
    /* an offset past the stream */
    assert_int_equal(sym_jvm_scopes(loop, sizeof(loop), 0, 9, midx, bcis, 4), -1);
}

/* UNSIGNED5 as unsigned5.hpp writes it, for x = 0 (JDK <= 19) and 1. */
static size_t u5_write(uint8_t *o, uint32_t v, unsigned x)
{
    const uint32_t L = 256 - 64 - x;
    size_t n = 0;
    for (int i = 0; i < 4 && v >= L; i++) {
        v -= L;
        o[n++] = (uint8_t)(x + L + (v % 64));
        v >>= 6;
    }
    o[n++] = (uint8_t)(x + v);
    return n;
}

/* Which PcDesc names a pc. The layout is a C1-compiled JvmWork.timed on
 * JDK 17 with beta inlined (as the agent read it): beta's back-edge poll
 * at 700, the loop's tail after it to ~711, then the inlined
 * getCurrentThreadCpuTime's call returning at 868. */
static void test_pc_scope(void **state)
{
    struct {
        int32_t pc, scope, obj, flags;
    } pcs[] = {{-1, 0, 0, 0}, {358, 10, 0, 0}, {556, 20, 0, 0}, {700, 30, 0, 0}, {868, 40, 0, 0}};
    const uint8_t *p = (const uint8_t *)pcs;
    size_t n = sizeof(pcs) / sizeof(pcs[0]), sz = sizeof(pcs[0]);
    static const struct {
        int64_t off;
        bool leaf;
        int64_t want;
    } cases[] = {
        {651, true, 30},  /* ahead of the poll: the next */
        {700, true, 30},  /* at it */
        {709, true, 30},  /* the loop's tail just past its poll: that one, not 868's */
        {711, true, 30},  /* ... */
        {732, true, 30},  /* SYM_JVM_LEAF_AFTER past it */
        {733, true, 40},  /* farther: the next again */
        {805, true, 40},  /* */
        {868, false, 40}, /* a return address: its own */
        {709, false, 40}, /* return addresses never take the one before */
        {360, true, 10},  /* */
        {2000, true, -1}, /* past the last */
        {0, true, 10},    /* before the first real one */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = sym_jvm_pc_scope(p, n, sz, 0, 4, cases[i].off, cases[i].leaf);
        if (got != cases[i].want)
            fail_msg("off %lld leaf %d: scope %lld, want %lld", (long long)cases[i].off,
                     cases[i].leaf, (long long)got, (long long)cases[i].want);
    }
    /* offsets outside a PcDesc, or none */
    assert_int_equal(sym_jvm_pc_scope(p, n, sz, sz - 3, 4, 700, true), -1);
    assert_int_equal(sym_jvm_pc_scope(NULL, n, sz, 0, 4, 700, true), -1);
    assert_int_equal(sym_jvm_pc_scope(p, 0, sz, 0, 4, 700, true), -1);
}

static void test_u5(void **state)
{
    const uint32_t vals[] = {0,   1,   190,   191,      192,        193,
                             255, 256, 12345, 1u << 20, 0x7fffffff, 0xfffffffe};
    (void)state;
    for (unsigned x = 0; x <= 1; x++) {
        for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
            uint8_t b[8];
            size_t n = u5_write(b, vals[i], x), pos = 0;
            uint32_t got = 0;
            assert_true(n <= 5);
            assert_int_equal(sym_jvm_u5(b, n, &pos, x, &got), 0);
            assert_int_equal(pos, n);
            assert_int_equal(got, vals[i]);
            pos = 0;
            if (n > 1) /* cut short */
                assert_int_equal(sym_jvm_u5(b, n - 1, &pos, x, &got), -1);
        }
    }
    uint8_t zero = 0;
    size_t pos = 0;
    uint32_t v;
    assert_int_equal(sym_jvm_u5(&zero, 1, &pos, 1, &v), -1); /* excluded from JDK 20 */
}

/* This machine's libjvm exports the tables; libc does not. */
static void test_detect(void **state)
{
    const char *paths[] = {"/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so",
                           "/usr/lib/jvm/default-java/lib/server/libjvm.so"};
    struct hs_syms sy;
    int fd = -1;

    (void)state;
    elf_version(EV_CURRENT);
    for (size_t i = 0; i < 2 && fd < 0; i++)
        fd = open(paths[i], O_RDONLY);
    if (fd < 0)
        skip();
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    assert_int_equal(hs_detect(e, &sy, false), 0);
    assert_true(sy.structs && sy.types && sy.s_stride && sy.t_size);
    elf_end(e);
    close(fd);
    fd = open("/proc/self/exe", O_RDONLY);
    e = elf_begin(fd, ELF_C_READ, NULL);
    assert_int_equal(hs_detect(e, &sy, false), -ENOENT);
    elf_end(e);
    close(fd);
}

/* ---- naming, from this process's own memory laid out as a VM's ---------- */

static uint8_t heap[4096] __attribute__((aligned(4096)));
static uint8_t segmap[64];
static uint8_t methods[3][64] __attribute__((aligned(8)));
static uint8_t cms[2][96] __attribute__((aligned(8)));
static uint8_t cp[128] __attribute__((aligned(8)));
static uint8_t klass[32] __attribute__((aligned(8)));
static uint8_t syms[4][80] __attribute__((aligned(8)));
static uint8_t ga[16] __attribute__((aligned(8))), codeheap[48] __attribute__((aligned(8)));
static uint8_t stubq[16] __attribute__((aligned(8)));
static uint64_t heaps_var, heaparr[1], lo_var, hi_var, interp_var;
static const char nmethod_name[] = "nmethod", stub_name[] = "StubRoutines (1)";

static void put64(uint8_t *at, uint64_t v)
{
    memcpy(at, &v, 8);
}
static void put32(uint8_t *at, uint32_t v)
{
    memcpy(at, &v, 4);
}
static void put16(uint8_t *at, uint16_t v)
{
    memcpy(at, &v, 2);
}

static void set_symbol(uint8_t *sym, const char *text)
{
    put16(sym, (uint16_t)strlen(text));
    memcpy(sym + 6, text, strlen(text));
}

#define BLOB (heap + 2 * 64 + 16) /* block at segment 2, after a 16-byte HeapBlock */

static void build_vm(struct hs_vm *vm)
{
    static const struct {
        enum hs_field f;
        uint64_t v;
    } offs[] = {
        {HS_SIZE_CONSTMETHOD, 48},
        {HS_SIZE_CONSTANTPOOL, 64},
        {HS_SIZE_HEAPBLOCK, 16},
        {HS_SIZE_PCDESC, 16},
        {HS_SIZE_NMETHOD, 128},
        {HS_BLOB_NAME, 0},
        {HS_BLOB_SIZE, 8},
        {HS_BLOB_CODE_BEGIN, 16},
        {HS_BLOB_FRAME_COMPLETE, 24},
        {HS_BLOB_FRAME_SIZE, 28},
        {HS_BLOB_CODE_END, 32},
        {HS_CM_METHOD, 40},
        {HS_CM_SCOPES_DATA, 48},
        {HS_CM_DEOPT, 56},
        {HS_NM_COMPILE_ID, 64},
        {HS_NM_ORIG_PC, 68},
        {HS_NM_METADATA, 72},
        {HS_NM_SCOPES_PCS, 76},
        {HS_NM_DEPENDENCIES, 80},
        {HS_METHOD_CONST, 8},
        {HS_CONST_CONSTANTS, 8},
        {HS_CONST_FLAGS, 16},
        {HS_CONST_CODE_SIZE, 18},
        {HS_CONST_NAME, 20},
        {HS_CONST_SIGNATURE, 22},
        {HS_CP_HOLDER, 8},
        {HS_CP_SOURCE_FILE, 16},
        {HS_KLASS_NAME, 16},
        {HS_SYMBOL_LENGTH, 0},
        {HS_SYMBOL_BODY, 6},
        {HS_PCDESC_PC, 0},
        {HS_PCDESC_SCOPE, 4},
        {HS_HEAP_MEMORY, 0},
        {HS_HEAP_SEGMAP, 16},
        {HS_HEAP_LOG2SEG, 40},
        {HS_VS_LOW, 0},
        {HS_VS_HIGH, 8},
        {HS_GA_LEN, 0},
        {HS_GA_DATA, 8},
        {HS_SQ_BUFFER, 0},
        {HS_SQ_LIMIT, 8},
    };
    memset(vm, 0, sizeof(*vm));
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        vm->v[offs[i].f] = offs[i].v;
        vm->found |= 1ull << offs[i].f;
    }
    /* statics: absolute addresses, the bias 0 */
    vm->v[HS_CC_HEAPS] = (uintptr_t)&heaps_var;
    vm->v[HS_CC_LOW] = (uintptr_t)&lo_var;
    vm->v[HS_CC_HIGH] = (uintptr_t)&hi_var;
    vm->v[HS_INTERP_CODE] = (uintptr_t)&interp_var;
    vm->major = 17;

    /* two methods of one class: pkg.Cls.outer and pkg.Cls.inner */
    set_symbol(syms[0], "pkg/Cls");
    set_symbol(syms[1], "outer");
    set_symbol(syms[2], "inner");
    set_symbol(syms[3], "Cls.java");
    put64(klass + 16, (uintptr_t)syms[0]);
    put64(cp + 8, (uintptr_t)klass);
    put16(cp + 16, 3);
    for (int k = 1; k <= 3; k++)
        put64(cp + 64 + 8 * k, (uintptr_t)syms[k]);
    /* line table after 10 bytes of bytecodes: bci 0 line 10, bci 5 line 12 */
    const uint8_t lines[] = {0xff, 0x00, 0x14, (5 << 3) | 2, 0};
    for (int m = 0; m < 2; m++) {
        put64(methods[m] + 8, (uintptr_t)cms[m]);
        put64(cms[m] + 8, (uintptr_t)cp);
        put16(cms[m] + 16, 1); /* has a line number table */
        put16(cms[m] + 18, 10);
        put16(cms[m] + 20, (uint16_t)(1 + m));
        memcpy(cms[m] + 48 + 10, lines, sizeof(lines));
    }

    /* the code heap: 64 segments of 64 bytes; the interpreter in the
     * first, a StubRoutines blob... no: an nmethod in segments 2-9 */
    memset(segmap, 0xff, sizeof(segmap));
    segmap[0] = 0;
    segmap[2] = 0;
    for (int k = 3; k < 10; k++)
        segmap[k] = (uint8_t)(k - 2);
    segmap[10] = 0;
    put64(codeheap + 0, (uintptr_t)heap);
    put64(codeheap + 8, (uintptr_t)heap + sizeof(heap));
    put64(codeheap + 16, (uintptr_t)segmap);
    put32(codeheap + 40, 6);
    heaparr[0] = (uintptr_t)codeheap;
    put32(ga + 0, 1);
    put64(ga + 8, (uintptr_t)heaparr);
    heaps_var = (uintptr_t)ga;
    lo_var = (uintptr_t)heap;
    hi_var = (uintptr_t)heap + sizeof(heap);
    put64(stubq + 0, (uintptr_t)heap);
    put32(stubq + 8, 64);
    interp_var = (uintptr_t)stubq;

    uint8_t *b = BLOB;
    put64(b + 0, (uintptr_t)nmethod_name);
    put32(b + 8, 8 * 64 - 16);
    put64(b + 16, (uintptr_t)b + 256);
    put64(b + 40, (uintptr_t)methods[0]);
    put32(b + 64, 0x1234);
    put32(b + 72, 128); /* metadata: [outer, inner] */
    put64(b + 128, (uintptr_t)methods[0]);
    put64(b + 136, (uintptr_t)methods[1]);
    /* scopes at 144: at 1 outer bci 3 (top), at 4 inner bci 6 called from it */
    const uint8_t scopes[] = {0xff, 0, 1, 4, 1, 2, 7};
    put64(b + 48, (uintptr_t)b + 144);
    memcpy(b + 144, scopes, sizeof(scopes));
    put32(b + 76, 152); /* PcDescs: (-1, 0), (20, inner's), (40, outer's) */
    const int32_t pcs[][2] = {{-1, 0}, {20, 4}, {40, 1}};
    for (int k = 0; k < 3; k++) {
        put32(b + 152 + 16 * k, (uint32_t)pcs[k][0]);
        put32(b + 152 + 16 * k + 4, (uint32_t)pcs[k][1]);
    }
    put32(b + 80, 152 + 48);
    /* a stub blob at segment 10 */
    put64(heap + 10 * 64 + 16, (uintptr_t)stub_name);
    put32(heap + 10 * 64 + 16 + 8, 64);
}

static void test_name(void **state)
{
    struct hs_vm vm;
    struct sym_jvm *c = NULL;
    struct sym_jvm_frame f[SYM_JVM_MAX_INLINE];
    uint32_t pid = (uint32_t)getpid();
    uint64_t code = (uintptr_t)BLOB + 256;
    long bytes = 0;
    int n;

    (void)state;
    build_vm(&vm);
    /* interpreted: the method and its bci's line */
    n = sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_INTERP((uintptr_t)methods[1], 6), true, f, 16,
                     &bytes);
    assert_int_equal(n, 1);
    assert_string_equal(f[0].function, "pkg.Cls.inner");
    assert_string_equal(f[0].file, "Cls.java");
    assert_int_equal(f[0].line, 12);
    n = sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_INTERP((uintptr_t)methods[0], 2), true, f, 16,
                     &bytes);
    assert_int_equal(n, 1);
    assert_string_equal(f[0].function, "pkg.Cls.outer");
    assert_int_equal(f[0].line, 10);
    /* compiled, at an inlined call: inner (bci 6) in outer (bci 3) */
    n = sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_CODE(code + 20, 0x234), true, f, 16, &bytes);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].function, "pkg.Cls.inner");
    assert_int_equal(f[0].line, 12);
    assert_string_equal(f[1].function, "pkg.Cls.outer");
    assert_int_equal(f[1].line, 10);
    /* the leaf 10 bytes past the inlined call's PcDesc: that one's scope
     * (inner in outer), not the next one's (outer alone) */
    n = sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_CODE(code + 30, 0x234), false, f, 16, &bytes);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].function, "pkg.Cls.inner");
    /* ... while a return address there has only the next one */
    n = sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_CODE(code + 30, 0x234), true, f, 16, &bytes);
    assert_int_equal(n, 1);
    assert_string_equal(f[0].function, "pkg.Cls.outer");
    /* recompiled at the same address since the sample: stale */
    n = sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_CODE(code + 20, 0x235), true, f, 16, &bytes);
    assert_int_equal(n, -ESTALE);
    /* ... and the new method's frames are named once it is read again */
    put32(BLOB + 64, 0x1235);
    n = sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_CODE(code + 20, 0x235), true, f, 16, &bytes);
    assert_int_equal(n, 2);
    /* a stub: its blob's name */
    n = sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_CODE((uintptr_t)heap + 10 * 64 + 40, 0), true, f,
                     16, &bytes);
    assert_int_equal(n, 1);
    assert_string_equal(f[0].function, "[jvm] StubRoutines (1)");
    /* a pc in a free block, memory that holds no method, a cut-off scope chain */
    assert_int_equal(sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_CODE((uintptr_t)heap + 20 * 64, 0),
                                  true, f, 16, &bytes),
                     -EFAULT);
    assert_int_equal(
        sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_INTERP((uintptr_t)syms[0], 0), true, f, 16, &bytes),
        -EFAULT);
    put16(syms[1], 60000); /* a name longer than any, for a method not cached yet */
    put64(methods[2] + 8, (uintptr_t)cms[0]);
    assert_int_equal(sym_jvm_name(&c, pid, &vm, 0, STOKE_JVM_INTERP((uintptr_t)methods[2], 0), true,
                                  f, 16, &bytes),
                     -EFAULT);
    assert_true(bytes > 0);
    sym_jvm_free(c);
}

/* ---- the introspection tables, from a memory image ----------------------- */

#define IMG_BASE 0x10000ull
static uint8_t img[0x10000];

static int img_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    (void)ctx;
    if (addr < IMG_BASE || addr - IMG_BASE > sizeof(img) || len > sizeof(img) - (addr - IMG_BASE))
        return -EFAULT;
    memcpy(buf, img + (addr - IMG_BASE), len);
    return 0;
}

/* The fuzz seed (gen_hotspot_vm_seed.py: every table entry the reader
 * wants) reads; layout variables the process could corrupt are refused:
 * an offset that wrapped past the entry's stride once read out of bounds. */
static void test_tables(void **state)
{
    const struct hs_syms sy = {IMG_BASE,      IMG_BASE + 8,  IMG_BASE + 16, IMG_BASE + 24,
                               IMG_BASE + 32, IMG_BASE + 40, IMG_BASE + 48, IMG_BASE + 56,
                               IMG_BASE + 64, IMG_BASE + 72, IMG_BASE + 80};
    FILE *f = fopen("tests/fuzz/corpus/fuzz_hotspot_vm/seed", "rb");
    struct hs_vm *vm = malloc(sizeof(*vm));
    struct jvm_proc jp;
    int missing;

    (void)state;
    assert_non_null(f);
    assert_non_null(vm);
    assert_true(fread(img, 1, sizeof(img), f) > 0x6000);
    fclose(f);
    assert_int_equal(hs_read_vm(&sy, 0, img_read, NULL, vm, &missing), 0);
    assert_int_equal(vm->major, 17);
    assert_int_equal(hs_read_proc(vm, 0, img_read, NULL, &jp), 0);
    assert_int_equal(jp.nheaps, 1);
    assert_int_equal(jp.segment_shift, 6);
    for (int k = 1; k <= 10; k++) { /* every layout variable but the arrays' */
        if (k == 7)
            continue;
        uint64_t saved, bad = ~0ull - 3;
        memcpy(&saved, img + 8 * k, 8);
        memcpy(img + 8 * k, &bad, 8);
        assert_int_equal(hs_read_vm(&sy, 0, img_read, NULL, vm, &missing), -EBADMSG);
        memcpy(img + 8 * k, &saved, 8);
    }
    free(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_tables), cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_corrupt),     cmocka_unit_test(test_u5),
        cmocka_unit_test(test_detect),      cmocka_unit_test(test_name),
        cmocka_unit_test(test_tables),      cmocka_unit_test(test_pc_scope),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
