/* SPDX-License-Identifier: Apache-2.0 */
/*
 * symbolizer/python + unwind/python: the line tables of CPython 3.8-3.13
 * decoded as each interpreter decodes them (tests/data/python/linetable-3.X.txt,
 * written by linetable_gen.py with that interpreter), the version table, and
 * interpreter detection on this machine's python3.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer/python.h"
#include "unwind/python.h"

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (h[0] && h[1] && n < cap) {
        unsigned b;
        if (sscanf(h, "%2x", &b) != 1)
            break;
        out[n++] = (uint8_t)b;
        h += 2;
    }
    return n;
}

static void check_version(unsigned minor)
{
    char path[256], line[8192], name[128], hex[8000];
    uint8_t tab[4000];
    size_t ntab = 0, checked = 0;
    int first = 0;
    FILE *f;

    snprintf(path, sizeof(path), "tests/data/python/linetable-3.%u.txt", minor);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned off;
        int want;
        hex[0] = '\0';
        if (sscanf(line, "code %127s %d %7999s", name, &first, hex) >= 2) {
            ntab = unhex(hex, tab, sizeof(tab));
        } else if (sscanf(line, "at %u %d", &off, &want) == 2) {
            int got = sym_py_line(minor, tab, ntab, first, off);
            if (got != want)
                fail_msg("3.%u %s: offset %u: line %d, the interpreter says %d", minor, name, off,
                         got, want);
            checked++;
        }
    }
    fclose(f);
    assert_true(checked > 50);
}

static void test_line_tables(void **state)
{
    for (unsigned m = 8; m <= 13; m++)
        check_version(m);
}

/* Corrupt tables end the search, never read out of bounds (ASan). */
static void test_line_tables_corrupt(void **state)
{
    uint8_t t[64];
    srand(3);
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)rand() % sizeof(t);
        for (size_t i = 0; i < n; i++)
            t[i] = (uint8_t)rand();
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, t, n);
        for (unsigned m = 8; m <= 13; m++)
            (void)sym_py_line(m, exact, n, 1, (uint32_t)rand() % 512);
        free(exact);
    }
}

static void test_versions(void **state)
{
    for (unsigned m = 8; m <= 13; m++) {
        const struct py_version *v = py_version(m);
        assert_non_null(v);
        assert_int_equal(v->bpf.minor, m);
        assert_int_not_equal(v->bpf.tstate_thread_id, STOKE_PY_NONE);
    }
    assert_null(py_version(7));
    assert_null(py_version(14));
    assert_int_equal(sym_py_offset(9, 10), 10);
    assert_int_equal(sym_py_offset(10, 10), 20);
    assert_int_equal(sym_py_offset(12, 10), 20);
}

/* Debian's python3 holds the interpreter: found with its version. */
static void test_detect(void **state)
{
    const char *paths[] = {"/usr/bin/python3.11", "/usr/bin/python3"};
    for (size_t i = 0; i < 2; i++) {
        char real[4096];
        if (!realpath(paths[i], real))
            continue;
        int fd = open(real, O_RDONLY);
        assert_true(fd >= 0);
        elf_version(EV_CURRENT);
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        struct py_runtime rt;
        assert_int_equal(py_detect(elf, real, &rt, false), 0);
        assert_true(rt.minor >= 8 && rt.minor <= 13);
        assert_true(rt.eval_size > 1000);
        assert_true(rt.runtime_vaddr != 0);
        elf_end(elf);
        close(fd);
        /* a binary without an interpreter */
        fd = open("/bin/true", O_RDONLY);
        elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        assert_int_equal(py_detect(elf, "/bin/true", &rt, false), -ENOENT);
        elf_end(elf);
        close(fd);
        return;
    }
    print_message("skipped: no python3 here\n");
    skip();
}

/* Resident kB of this process's mapping that starts at @addr. */
static long mapping_rss_kb(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false;
    long kb = -1;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            in = lo == (unsigned long)addr;
            continue;
        }
        if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

/* Detection in a mapped file with large symbol tables hands their pages back:
 * the agent scans every binary it meets, and node's 13 MB of symbol and
 * string tables were all resident in it at once. */
static void test_detect_drops_pages(void **state)
{
    (void)state;
    const char *pats[] = {"/usr/lib/*/libLLVM-*.so*", "/usr/bin/node"};
    glob_t g;
    const char *path = NULL;
    char buf[4096];
    for (size_t i = 0; i < 2 && !path; i++)
        if (glob(pats[i], 0, NULL, &g) == 0) {
            if (g.gl_pathc > 0) {
                snprintf(buf, sizeof(buf), "%s", g.gl_pathv[0]);
                path = buf;
            }
            globfree(&g);
        }
    if (!path) {
        print_message("no binary with large symbol tables here: not checked\n");
        return;
    }
    elf_version(EV_CURRENT);
    for (int mapped = 0; mapped < 2; mapped++) {
        int fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        assert_non_null(elf);
        size_t len;
        char *img = elf_rawfile(elf, &len);
        struct py_runtime rt;
        assert_int_equal(py_detect(elf, path, &rt, mapped), -ENOENT);
        long kb = mapping_rss_kb(img);
        print_message("%s: %ld kB resident after detection (%s)\n", path, kb,
                      mapped ? "pages handed back" : "kept");
        if (mapped)
            assert_true(kb >= 0 && kb < 256);
        else
            assert_true(kb > 1024); /* the check above can fail */
        elf_end(elf);
        close(fd);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_tables),        cmocka_unit_test(test_line_tables_corrupt),
        cmocka_unit_test(test_versions),           cmocka_unit_test(test_detect),
        cmocka_unit_test(test_detect_drops_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
