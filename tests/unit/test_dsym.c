/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deferred symbolization: symbolizer/offline.h (a debug file alone names
 * file offsets exactly as the agent's symbolizer names them on the host)
 * and query/engine/dsym.h (uploads checked, names from the store).
 *
 * The exactness check uses this process's libc and libc6-dbg's debug
 * file: every 241st byte of libc's code, as a leaf and as a return
 * address, named by symbolizer_user (the host, with /usr/lib/debug) and by
 * sym_offline_names (the debug file alone). Skipped without libc6-dbg.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/file.h"
#include "query/engine/dsym.h"
#include "store/store.h"
#include "symbolizer/build_id.h"
#include "symbolizer/elf_symtab.h"
#include "symbolizer/offline.h"
#include "symbolizer/symbolizer.h"

struct libc_map {
    char path[512];
    uint64_t start, end, off;
    char bid[41];
    char debug[600];
};

/* libc's executable mapping in this process, and its debug file. */
static bool find_libc(struct libc_map *m)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    bool ok = false;

    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long s, e, o;
        char perm[8], path[512] = "";
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %511s", &s, &e, perm, &o, path) < 4)
            continue;
        const char *b = strrchr(path, '/');
        if (!b || strcmp(b, "/libc.so.6") != 0 || perm[2] != 'x')
            continue;
        snprintf(m->path, sizeof(m->path), "%s", path);
        m->start = s;
        m->end = e;
        m->off = o;
        ok = true;
        break;
    }
    fclose(f);
    if (!ok || sym_read_build_id(m->path, m->bid) <= 0)
        return false;
    snprintf(m->debug, sizeof(m->debug), "/usr/lib/debug/.build-id/%.2s/%s.debug", m->bid,
             m->bid + 2);
    return access(m->debug, R_OK) == 0;
}

static uint64_t self_start_time(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* The rebuilt offsets of the debug file's segments are the binary's. */
static void test_segments_rebuilt(void **state)
{
    struct libc_map m;
    (void)state;
    if (!find_libc(&m))
        skip();
    struct sym_offline *o;
    assert_int_equal(sym_offline_open(open(m.debug, O_RDONLY), NULL, 0, &o), 0);
    const struct sym_elf_seg *got;
    int n = sym_offline_segments(o, &got);

    elf_version(EV_CURRENT);
    int fd = open(m.path, O_RDONLY);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    struct sym_elf_seg *want;
    int nw = sym_elf_segments(elf, &want);
    assert_true(nw >= 2);
    assert_int_equal(n, nw);
    for (int i = 0; i < n; i++) {
        assert_int_equal(got[i].vaddr, want[i].vaddr);
        assert_int_equal(got[i].offset, want[i].offset);
    }
    free(want);
    elf_end(elf);
    close(fd);
    sym_offline_free(o);
}

/* Every 241st byte of libc's code that a host without debug files leaves
 * unnamed: the same names from the debug file alone as from the host's
 * symbolizer with the debug file. */
static void test_names_as_on_host(void **state)
{
    struct libc_map m;
    (void)state;
    if (!find_libc(&m))
        skip();
    struct symbolizer_opts so = {.debug_dirs = "/usr/lib/debug", .max_bytes = 256u << 20};
    struct symbolizer *s = symbolizer_new(&so);
    /* a production host: no debug files; what it leaves unnamed is what
     * is stored for later */
    struct symbolizer_opts po = {.debug_dirs = "/nonexistent", .max_bytes = 64u << 20};
    struct symbolizer *prod = symbolizer_new(&po);
    struct sym_offline *o;
    assert_non_null(s);
    assert_non_null(prod);
    assert_int_equal(sym_offline_open(open(m.debug, O_RDONLY), "/var/tmp", 1u << 30, &o), 0);
    uint64_t st = self_start_time(), compared = 0, named = 0, differ = 0, inl = 0, versioned = 0;
    for (uint64_t a = m.start; a < m.end; a += 241) {
        for (int ret = 0; ret < 2; ret++) {
            struct sym_result r;
            char buf[4096];
            const char *names[16];
            assert_int_equal(symbolizer_user(s, (uint32_t)getpid(), st, a, ret, &r), 0);
            int n = sym_offline_names(o, a - m.start + m.off, ret, buf, sizeof(buf), names, 16);
            /* Only what a host without debug files leaves unnamed is
             * stored unnamed (what it names from .dynsym and the PLT's
             * relocations never comes here). */
            /* exported names without their version ("localeconv", not
             * "localeconv@@GLIBC_2.2.5"), as .dynsym spells them */
            for (int i = 0; i < n; i++)
                versioned += strchr(names[i], '@') != NULL;
            struct sym_result pr;
            assert_int_equal(symbolizer_user(prod, (uint32_t)getpid(), st, a, ret, &pr), 0);
            if (pr.nframes)
                continue;
            compared++;
            named += n > 0;
            inl += n > 1;
            bool same = n >= 0 && (uint32_t)n == r.nframes;
            for (int i = 0; same && i < n; i++)
                same = strcmp(names[i], r.frames[i].function) == 0;
            if (!same && differ++ < 5)
                fprintf(stderr, "offset %#llx ret %d: host %u frames (%s), offline %d (%s)\n",
                        (unsigned long long)(a - m.start + m.off), ret, r.nframes,
                        r.nframes ? r.frames[0].function : "-", n, n > 0 ? names[0] : "-");
        }
    }
    fprintf(stderr, "libc: %llu lookups, %llu named, %llu with inlined frames, %llu differ\n",
            (unsigned long long)compared, (unsigned long long)named, (unsigned long long)inl,
            (unsigned long long)differ);
    assert_true(compared > 5000);
    assert_true(named > compared * 9 / 10);
    assert_true(inl > 0);
    assert_int_equal(differ, 0);
    assert_int_equal(versioned, 0);
    sym_offline_free(o);
    symbolizer_free(s);
    symbolizer_free(prod);
}

static char tmpdir[64];

static struct store *dir_store(void)
{
    char err[256];
    struct store_opts so = {.url = tmpdir};
    struct store *st = store_open(&so, err, sizeof(err));
    assert_non_null(st);
    return st;
}

/* Uploads: checked, keyed by their build-id, per tenant, not rewritten. */
static void test_upload_checks(void **state)
{
    (void)state;
    char *self = NULL, err[512], bid[41], want[41];
    size_t len = 0;
    bool existed;
    struct store *st = dir_store();

    assert_int_equal(read_file("/proc/self/exe", 64u << 20, &self, &len), 0);
    assert_true(sym_read_build_id("/proc/self/exe", want) > 0);
    /* not ELF; corrupt (a truncated ELF header); too large */
    assert_int_equal(dsym_upload(st, "t1", "hello", 5, NULL, 0, bid, &existed, err, sizeof(err)),
                     -ENOEXEC);
    assert_int_equal(dsym_upload(st, "t1", self, 40, NULL, 0, bid, &existed, err, sizeof(err)),
                     -ENOEXEC);
    /* cut short: its headers and build-id note read, its sections gone */
    assert_int_equal(dsym_upload(st, "t1", self, len / 2, NULL, 0, bid, &existed, err, sizeof(err)),
                     -ENOEXEC);
    assert_int_equal(
        dsym_upload(st, "t1", self, len, NULL, len - 1, bid, &existed, err, sizeof(err)), -EFBIG);
    /* the URL's build-id is not the file's */
    assert_int_equal(
        dsym_upload(st, "t1", self, len, "00112233", 0, bid, &existed, err, sizeof(err)), -EXDEV);
    assert_non_null(strstr(err, want));
    /* an ELF file without a build-id */
    char *copy = malloc(len);
    memcpy(copy, self, len);
    char nb[41];
    elf_version(EV_CURRENT);
    Elf *e = elf_memory(copy, len);
    for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn));) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE)
            memset(copy + sh.sh_offset, 0, sh.sh_size); /* notes of type 0 */
    }
    elf_end(e);
    assert_int_equal(sym_offline_check(copy, len, nb), -ENODATA);
    assert_int_equal(dsym_upload(st, "t1", copy, len, NULL, 0, bid, &existed, err, sizeof(err)),
                     -ENODATA);
    free(copy);
    /* stored once under its build-id, per tenant */
    assert_int_equal(dsym_upload(st, "t1", self, len, want, 0, bid, &existed, err, sizeof(err)), 0);
    assert_string_equal(bid, want);
    assert_false(existed);
    assert_int_equal(dsym_upload(st, "t1", self, len, NULL, 0, bid, &existed, err, sizeof(err)), 0);
    assert_true(existed);
    char key[1024];
    uint64_t size;
    assert_int_equal(dsym_key(key, sizeof(key), "t1", want), 0);
    assert_int_equal(store_head(st, key, &size), 0);
    assert_int_equal(size, len);
    assert_int_equal(dsym_key(key, sizeof(key), "t2", want), 0);
    assert_int_equal(store_head(st, key, &size), -ENOENT);
    free(self);
    store_close(st);
}

/* Names come from the tenant's store object, cached; another tenant's
 * store has none; a build-id uploaded later is found after dsym_forget. */
static void test_names_from_store(void **state)
{
    (void)state;
    struct store *st = dir_store();
    char want[41], buf[4096], *self = NULL, err[256], bid[41];
    const char *names[16];
    size_t len;
    bool existed;
    assert_true(sym_read_build_id("/proc/self/exe", want) > 0);
    assert_int_equal(read_file("/proc/self/exe", 64u << 20, &self, &len), 0);
    /* an offset of this very function in this test binary */
    struct libc_map m = {0};
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024], exe[512];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(el > 0);
    exe[el] = '\0';
    uint64_t pc = (uint64_t)(uintptr_t)&test_names_from_store;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long s, e, o;
        char perm[8], path[512] = "";
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %511s", &s, &e, perm, &o, path) == 5 &&
            strcmp(path, exe) == 0 && pc >= s && pc < e) {
            m.start = s;
            m.off = o;
        }
    }
    fclose(f);
    assert_true(m.start != 0);
    uint64_t off = pc - m.start + m.off + 4;

    struct dsym_opts o = {.store = st, .recheck_ms = 60000};
    struct dsym *d = dsym_new(&o);
    /* not uploaded yet: unnamed, and remembered as missing */
    assert_int_equal(dsym_names(d, "t3", want, off, false, buf, sizeof(buf), names, 16), 0);
    assert_int_equal(dsym_upload(st, "t3", self, len, want, 0, bid, &existed, err, sizeof(err)), 0);
    assert_int_equal(dsym_names(d, "t3", want, off, false, buf, sizeof(buf), names, 16), 0);
    dsym_forget(d, "t3", want);
    int n = dsym_names(d, "t3", want, off, false, buf, sizeof(buf), names, 16);
    assert_true(n >= 1);
    assert_string_equal(names[n - 1], "test_names_from_store");
    n = dsym_names(d, "t3", want, off, false, buf, sizeof(buf), names, 16);
    assert_string_equal(names[n - 1], "test_names_from_store");
    /* another tenant has no such object */
    assert_int_equal(dsym_names(d, "t4", want, off, false, buf, sizeof(buf), names, 16), 0);
    /* malformed build-ids are never looked up */
    assert_int_equal(dsym_names(d, "t3", "../x", off, false, buf, sizeof(buf), names, 16), 0);
    struct dsym_stats ds;
    dsym_get_stats(d, &ds);
    assert_int_equal(ds.files_loaded, 1);
    assert_int_equal(ds.cache_hits, 1);
    assert_int_equal(ds.named, 2);
    dsym_free(d);
    free(self);
    store_close(st);
}

/* A store object whose bytes are not its key's build-id is refused and
 * counted, never named from. */
static void test_store_object_mismatch(void **state)
{
    (void)state;
    struct store *st = dir_store();
    char *self = NULL, key[1024], buf[4096];
    const char *names[16];
    size_t len;
    assert_int_equal(read_file("/proc/self/exe", 64u << 20, &self, &len), 0);
    assert_int_equal(dsym_key(key, sizeof(key), "t5", "0123456789abcdef"), 0);
    assert_int_equal(store_put(st, key, self, len), 0);
    assert_int_equal(dsym_key(key, sizeof(key), "t5", "abcdef0123456789"), 0);
    assert_int_equal(store_put(st, key, "garbage", 7), 0);
    struct dsym_opts o = {.store = st};
    struct dsym *d = dsym_new(&o);
    assert_int_equal(
        dsym_names(d, "t5", "0123456789abcdef", 0x1000, false, buf, sizeof(buf), names, 16), 0);
    assert_int_equal(
        dsym_names(d, "t5", "abcdef0123456789", 0x1000, false, buf, sizeof(buf), names, 16), 0);
    struct dsym_stats ds;
    dsym_get_stats(d, &ds);
    assert_int_equal(ds.bad_files, 2);
    assert_int_equal(ds.files_loaded, 0);
    dsym_free(d);
    free(self);
    store_close(st);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/stoke-dsym-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segments_rebuilt),      cmocka_unit_test(test_names_as_on_host),
        cmocka_unit_test(test_upload_checks),         cmocka_unit_test(test_names_from_store),
        cmocka_unit_test(test_store_object_mismatch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
