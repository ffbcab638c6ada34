/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The line reader (symbolizer/dwarf_line.c) against libdw, and the inflated
 * copies of compressed debug sections (sym_dwarf_inflate_copy) against
 * libelf's own inflating.
 *
 * Real binaries are compiled at test time with each DWARF version from gcc
 * and clang; for every row of every unit (and the addresses either side of
 * it) the file and line must be what dwarf_getsrc_die + dwarf_linesrc give,
 * and every file index must name what dwarf_getsrcfiles + dwarf_filesrc
 * name. The running libc's separate debug file (libc6-dbg) is compared too,
 * on a sample of its rows, when it is installed.
 */
#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <elfutils/libdw.h>

#include "symbolizer/build_id.h"
#include "symbolizer/debuginfo.h"
#include "symbolizer/dwarf_line.h"
#include "symbolizer/symbolizer.h"

static char tmp[256];

/* Two files of code (one a header of inline functions), so that units have
 * several file entries and inlined rows. */
static const char hdr[] = "static inline int twice(int x)\n"
                          "{\n"
                          "    return x * 2;\n"
                          "}\n"
                          "static inline int mix(int a, int b)\n"
                          "{\n"
                          "    for (int i = 0; i < b; i++)\n"
                          "        a = twice(a) ^ i;\n"
                          "    return a;\n"
                          "}\n";
static const char src[] = "#include <stdio.h>\n"
                          "#include \"inl.h\"\n"
                          "volatile int sink;\n"
                          "__attribute__((noinline)) int f1(int n) { return mix(n, 3); }\n"
                          "__attribute__((noinline)) int f2(int n)\n"
                          "{\n"
                          "    int s = 0;\n"
                          "    for (int i = 0; i < n; i++)\n"
                          "        s += f1(i) + twice(s);\n"
                          "    return s;\n"
                          "}\n"
                          "int main(int argc, char **argv)\n"
                          "{\n"
                          "    sink = f2(argc);\n"
                          "    printf(\"%d\\n\", sink);\n"
                          "    return 0;\n"
                          "}\n";

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static bool have_clang;

static int group_setup(void **state)
{
    char p[512];
    snprintf(tmp, sizeof(tmp), "/tmp/stoke-linetest-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    snprintf(p, sizeof(p), "%s/inl.h", tmp);
    FILE *f = fopen(p, "w");
    fputs(hdr, f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/prog.c", tmp);
    f = fopen(p, "w");
    fputs(src, f);
    fclose(f);
    if (sh("cd %s && gcc -gdwarf-2 -O2 -o g2 prog.c && gcc -gdwarf-3 -O0 -o g3 prog.c && "
           "gcc -gdwarf-4 -O2 -o g4 prog.c && gcc -gdwarf-5 -O2 -o g5 prog.c && "
           "gcc -gdwarf-5 -O2 -gz=zlib -o gz prog.c && gcc -gdwarf-4 -O2 -gz=zlib-gnu -o gzgnu "
           "prog.c",
           tmp))
        return -1;
    have_clang = sh("cd %s && clang -gdwarf-4 -O2 -o c4 prog.c 2>/dev/null && "
                    "clang -gdwarf-5 -O2 -o c5 prog.c 2>/dev/null",
                    tmp) == 0;
    return 0;
}

static int group_teardown(void **state)
{
    if (!getenv("STOKE_KEEP_TMP"))
        sh("rm -rf %s", tmp);
    return 0;
}

static const uint8_t *secdata(Elf *elf, const char *want, size_t *len)
{
    size_t shstrndx;
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;

    *len = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        const char *n = gelf_getshdr(scn, &sh) ? elf_strptr(elf, shstrndx, sh.sh_name) : NULL;
        if (n && strcmp(n, want) == 0 && sh.sh_type != SHT_NOBITS) {
            Elf_Data *d = elf_getdata(scn, NULL);
            if (d && d->d_size) {
                *len = d->d_size;
                return d->d_buf;
            }
        }
    }
    return NULL;
}

struct cmp {
    long units, addrs, files, mismatches;
};

/* Compares every @step-th row (and its neighbours) of every unit of @path. */
static void compare_file(const char *path, size_t step, struct cmp *c)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    Dwarf *dw = dwarf_begin(fd, DWARF_C_READ);
    assert_non_null(dw);
    Elf *elf = dwarf_getelf(dw);
    struct sym_line_secs s;
    s.line = secdata(elf, ".debug_line", &s.line_len);
    s.line_str = secdata(elf, ".debug_line_str", &s.line_str_len);
    s.str = secdata(elf, ".debug_str", &s.str_len);
    if (!s.line) /* .zdebug_line: inflated in place by libdw under its old name */
        s.line = secdata(elf, ".zdebug_line", &s.line_len);

    Dwarf_Off off = 0, next;
    size_t hs;
    while (dwarf_nextcu(dw, off, &next, &hs, NULL, NULL, NULL) == 0) {
        Dwarf_Die cu, cum;
        Dwarf_Attribute a;
        Dwarf_Word sl;
        uint8_t asz, osz;
        if (!dwarf_offdie(dw, off + hs, &cu) || !dwarf_diecu(&cu, &cum, &asz, &osz) ||
            !dwarf_attr(&cu, DW_AT_stmt_list, &a) || dwarf_formudata(&a, &sl) != 0) {
            off = next;
            continue;
        }
        c->units++;
        const char *cd = dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &a));
        struct sym_line_unit u;
        int r = sym_line_unit_parse(&u, &s, sl, cd, asz);
        Dwarf_Lines *lines;
        size_t nl;
        int lr = dwarf_getsrclines(&cu, &lines, &nl);
        if (r != 0) {
            if (lr == 0) {
                print_message("%s: unit at %#lx: ours %d, libdw reads it\n", path, (long)off, r);
                c->mismatches++;
            }
            off = next;
            continue;
        }
        Dwarf_Files *fl;
        size_t nf;
        if (dwarf_getsrcfiles(&cu, &fl, &nf) == 0) {
            for (size_t i = 0; i < nf + 2; i++, c->files++) {
                const char *want = i < nf ? dwarf_filesrc(fl, i, NULL, NULL) : NULL;
                const char *got = sym_line_path(&u, i);
                if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0)) {
                    print_message("%s: file %zu: libdw %s, ours %s\n", path, i, want, got);
                    c->mismatches++;
                }
            }
        }
        for (size_t i = 0; lr == 0 && i < nl; i += step) {
            Dwarf_Addr la;
            dwarf_lineaddr(dwarf_onesrcline(lines, i), &la);
            for (int d = -1; d <= 1; d++, c->addrs++) {
                uint64_t addr = la + (uint64_t)d, fi;
                Dwarf_Line *l = dwarf_getsrc_die(&cu, addr);
                const char *lf = NULL, *of = NULL;
                int ll = 0, ln = 0;
                if (l) {
                    lf = dwarf_linesrc(l, NULL, NULL);
                    dwarf_lineno(l, &ll);
                }
                int k = sym_line_find(&u, addr, &fi, &ln);
                if (k > 0)
                    of = sym_line_path(&u, fi);
                if ((l != NULL) != (k > 0) ||
                    (l && (ll != ln || (lf == NULL) != (of == NULL) || (lf && strcmp(lf, of))))) {
                    if (c->mismatches < 10)
                        print_message("%s: %#lx: libdw %s:%d, ours %s:%d (%d)\n", path,
                                      (unsigned long)addr, lf, ll, of, ln, k);
                    c->mismatches++;
                }
            }
        }
        sym_line_unit_free(&u);
        off = next;
    }
    dwarf_end(dw);
    close(fd);
}

static void test_same_as_libdw(void **state)
{
    static const char *const bins[] = {"g2", "g3", "g4", "g5", "gz", "gzgnu", "c4", "c5"};
    char p[512];

    elf_version(EV_CURRENT);
    for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
        if (bins[i][0] == 'c' && !have_clang)
            continue;
        struct cmp c = {0};
        snprintf(p, sizeof(p), "%s/%s", tmp, bins[i]);
        compare_file(p, 1, &c);
        print_message("%s: %ld units, %ld addresses, %ld file names, %ld mismatches\n", bins[i],
                      c.units, c.addrs, c.files, c.mismatches);
        assert_true(c.units >= 1);
        assert_true(c.addrs > 30);
        assert_true(c.files > 2);
        assert_int_equal(c.mismatches, 0);
    }
    /* the test binary itself: gcc's DWARF 5 over many units */
    struct cmp c = {0};
    compare_file("/proc/self/exe", 3, &c);
    assert_true(c.units >= 1);
    assert_int_equal(c.mismatches, 0);
}

static int find_libc(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    if (strstr(info->dlpi_name, "/libc.so"))
        snprintf(data, PATH_MAX, "%s", info->dlpi_name);
    return 0;
}

/* The running libc's debug file (libc6-dbg), or "" */
static void libc_debug_file(char *out, size_t cap)
{
    char libc[PATH_MAX] = "", bid[41];
    out[0] = '\0';
    dl_iterate_phdr(find_libc, libc);
    if (libc[0] && sym_read_build_id(libc, bid) > 0)
        snprintf(out, cap, "/usr/lib/debug/.build-id/%.2s/%s.debug", bid, bid + 2);
    if (out[0] && access(out, R_OK) != 0)
        out[0] = '\0';
}

static void test_libc(void **state)
{
    char dbg[PATH_MAX];
    libc_debug_file(dbg, sizeof(dbg));
    if (!dbg[0]) {
        print_message("no debug file for libc (libc6-dbg): skipped\n");
        skip();
    }
    elf_version(EV_CURRENT);
    struct cmp c = {0};
    compare_file(dbg, 37, &c);
    print_message("libc: %ld units, %ld addresses, %ld file names, %ld mismatches\n", c.units,
                  c.addrs, c.files, c.mismatches);
    assert_true(c.units > 100);
    assert_int_equal(c.mismatches, 0);
}

/* Garbage, truncations and every byte flipped in turn: an error or an
 * answer, never a crash (ASan/UBSan in `make test-san`). */
static void test_bad_units(void **state)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/g4", tmp);
    elf_version(EV_CURRENT);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    Dwarf *dw = dwarf_begin(fd, DWARF_C_READ);
    assert_non_null(dw);
    struct sym_line_secs s = {0};
    s.line = secdata(dwarf_getelf(dw), ".debug_line", &s.line_len);
    assert_non_null(s.line);
    uint8_t *copy = malloc(s.line_len);
    memcpy(copy, s.line, s.line_len);
    struct sym_line_secs bad = s;
    bad.line = copy;
    struct sym_line_unit u;
    uint64_t fi;
    int ln;

    static const struct {
        size_t off;
        uint8_t val;
    } cases[] = {
        {4, 1},                                     /* version 1 */
        {4, 6},                                     /* version 6 */
        {0, 0xff}, {1, 0xff}, {2, 0xff}, {3, 0x7f}, /* unit length past the section */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(copy, s.line, s.line_len);
        copy[cases[i].off] = cases[i].val;
        assert_int_equal(sym_line_unit_parse(&u, &bad, 0, "/cd", 8), -EBADMSG);
    }
    /* out of range offset, no section */
    assert_int_equal(sym_line_unit_parse(&u, &s, s.line_len, "/cd", 8), -EBADMSG);
    struct sym_line_secs none = {0};
    assert_int_equal(sym_line_unit_parse(&u, &none, 0, NULL, 8), -EBADMSG);

    for (size_t len = 0; len < s.line_len; len++) {
        bad.line_len = len;
        memcpy(copy, s.line, s.line_len);
        if (sym_line_unit_parse(&u, &bad, 0, "/cd", 8) == 0) {
            sym_line_find(&u, 0x1130, &fi, &ln);
            sym_line_path(&u, 1);
            sym_line_unit_free(&u);
        }
    }
    bad.line_len = s.line_len;
    for (size_t i = 0; i < s.line_len; i++) {
        for (int v = 0; v < 3; v++) {
            memcpy(copy, s.line, s.line_len);
            copy[i] = v == 0 ? 0 : v == 1 ? 0xff : (uint8_t)(copy[i] ^ 0x40);
            if (sym_line_unit_parse(&u, &bad, 0, v ? NULL : "/cd", 8) == 0) {
                for (uint64_t a = 0x1000; a < 0x1400; a += 0x33)
                    sym_line_find(&u, a, &fi, &ln);
                for (uint64_t k = 0; k < 4; k++)
                    sym_line_path(&u, k);
                sym_line_unit_free(&u);
            }
        }
    }
    free(copy);
    dwarf_end(dw);
    close(fd);
}

/* The .debug_* bytes of @path as libelf inflates them, concatenated. */
static size_t debug_bytes(const char *path, uint8_t **out)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    assert_non_null(elf);
    size_t shstrndx, total = 0;
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    *out = NULL;
    assert_int_equal(elf_getshdrstrndx(elf, &shstrndx), 0);
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        gelf_getshdr(scn, &sh);
        const char *n = elf_strptr(elf, shstrndx, sh.sh_name);
        if (!n || (strncmp(n, ".debug_", 7) != 0 && strncmp(n, ".zdebug_", 8) != 0))
            continue;
        if (sh.sh_flags & SHF_COMPRESSED)
            assert_int_equal(elf_compress(scn, 0, 0), 1);
        else if (n[1] == 'z')
            elf_compress_gnu(scn, 0, 0); /* as libdw: kept as it is when not compressed */
        Elf_Data *d = elf_getdata(scn, NULL);
        assert_non_null(d);
        *out = realloc(*out, total + d->d_size);
        memcpy(*out + total, d->d_buf, d->d_size);
        total += d->d_size;
    }
    elf_end(elf);
    close(fd);
    return total;
}

static void test_inflate_copy(void **state)
{
    static const char *const bins[] = {"gz", "gzgnu", "g5"};
    char p[512];

    elf_version(EV_CURRENT);
    for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", tmp, bins[i]);
        int fd = open(p, O_RDONLY);
        struct stat st;
        assert_true(fd >= 0 && fstat(fd, &st) == 0);
        void *img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        assert_true(img != MAP_FAILED);
        close(fd);
        snprintf(p, sizeof(p), "%s/%s.inflated", tmp, bins[i]);
        int out = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_true(out >= 0);
        ssize_t n = sym_dwarf_inflate_copy(img, (size_t)st.st_size, out, 64 << 20, true);
        assert_true(n > 0);
        close(out);
        /* too small a cap is refused, not cut short */
        int junk = open("/dev/null", O_WRONLY);
        assert_int_equal(sym_dwarf_inflate_copy(img, (size_t)st.st_size, junk, 1000, true), -EFBIG);
        /* garbage and truncations: an error, never a crash */
        for (size_t len = 0; len < (size_t)st.st_size; len += 97)
            sym_dwarf_inflate_copy(img, len, junk, 64 << 20, true);
        /* a section-name index past the section table (a fuzzer's find) */
        uint8_t *bad = malloc((size_t)st.st_size);
        assert_non_null(bad);
        memcpy(bad, img, (size_t)st.st_size);
        Elf64_Ehdr *beh = (Elf64_Ehdr *)bad;
        beh->e_shstrndx = (Elf64_Half)(beh->e_shnum + 200);
        assert_int_equal(sym_dwarf_inflate_copy(bad, (size_t)st.st_size, junk, 64 << 20, false),
                         -EBADMSG);
        free(bad);
        close(junk);
        munmap(img, (size_t)st.st_size);

        uint8_t *a, *b;
        snprintf(p, sizeof(p), "%s/%s", tmp, bins[i]);
        size_t na = debug_bytes(p, &a);
        snprintf(p, sizeof(p), "%s/%s.inflated", tmp, bins[i]);
        size_t nb = debug_bytes(p, &b);
        assert_true(na > 1000);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        free(a);
        free(b);
        /* and libdw reads the copy as the original */
        struct cmp c = {0};
        compare_file(p, 1, &c);
        assert_true(c.addrs > 30);
        assert_int_equal(c.mismatches, 0);
    }
}

/* sym_dwarf_open with a scratch directory: the compressed file's sections
 * end up in a file, not the heap, and every lookup answers as without. */
static void test_open_with_scratch(void **state)
{
    char p[512];
    struct sym_dwarf heap, disk;
    struct sym_dwarf_scratch sc = {tmp, 64 << 20};
    struct sym_raw_frame f1[16], f2[16];

    elf_version(EV_CURRENT);
    snprintf(p, sizeof(p), "%s/gz", tmp);
    assert_int_equal(sym_dwarf_open(open(p, O_RDONLY), NULL, &heap), 0);
    assert_int_equal(sym_dwarf_open(open(p, O_RDONLY), &sc, &disk), 0);
    assert_true(heap.heap_sections > 0);
    assert_int_equal(heap.scratch_bytes, 0);
    assert_int_equal(disk.heap_sections, 0);
    assert_true(disk.scratch_bytes > 0 && disk.scratch_fd >= 0);
    assert_true(disk.droppable);
    assert_true(heap.est_bytes > disk.est_bytes);
    long found = 0;
    for (size_t i = 0; i < disk.ncus; i++) {
        for (uint64_t a = disk.cus[i].lo; a < disk.cus[i].hi; a++) {
            int n1 = sym_dwarf_lookup(&heap, a, f1, 16);
            int n2 = sym_dwarf_lookup(&disk, a, f2, 16);
            assert_int_equal(n1, n2);
            for (int k = 0; k < n1; k++) {
                assert_string_equal(f1[k].name ? f1[k].name : "-", f2[k].name ? f2[k].name : "-");
                assert_string_equal(f1[k].file ? f1[k].file : "-", f2[k].file ? f2[k].file : "-");
                assert_int_equal(f1[k].line, f2[k].line);
            }
            found += n1 > 0;
        }
    }
    assert_true(found > 30);
    /* the copy reopens like any file, and is not inflated again */
    struct sym_dwarf again;
    assert_int_equal(sym_dwarf_open(dup(disk.scratch_fd), &sc, &again), 0);
    assert_int_equal(again.scratch_bytes, 0);
    assert_int_equal(again.heap_sections, 0);
    sym_dwarf_close(&again);
    sym_dwarf_close(&heap);
    sym_dwarf_close(&disk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_libdw),     cmocka_unit_test(test_libc),
        cmocka_unit_test(test_bad_units),         cmocka_unit_test(test_inflate_copy),
        cmocka_unit_test(test_open_with_scratch),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
