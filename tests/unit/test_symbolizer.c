/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Symbolizer tests against real binaries: small C/C++ programs are compiled
 * at test time into a temp dir (plain, stripped + build-id debug file,
 * debuglink, MiniDebugInfo, non-PIE, shared library), run as children that
 * report the addresses of their own code, and resolved through /proc.
 * Parsers are also fed table-driven good and bad lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libelf.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "symbolizer/demangle.h"
#include "symbolizer/elf_symtab.h"
#include "symbolizer/kallsyms.h"
#include "symbolizer/perfmap.h"
#include "symbolizer/proc_maps.h"
#include "symbolizer/symbolizer.h"

static char tmp[256];

/* The C program: each function records a PC inside itself. */
static const char prog_c[] =
    "#include <stdio.h>\n"
    "#include <unistd.h>\n"
    "#define PC(v) __asm__ volatile(\"lea 0(%%rip), %0\" : \"=r\"(v))\n"
    "void *pc_leaf, *pc_inner, *pc_static, *pc_lib;\n"
    "volatile int sink;\n"
    "extern void *lib_function(int);\n"
    "__attribute__((noinline)) void leaf_function(int n)\n"
    "{\n"
    "    PC(pc_leaf);\n"
    "    for (int i = 0; i < n; i++) sink += i;\n"
    "}\n"
    "static inline __attribute__((always_inline)) void inner_inlined(int n)\n"
    "{\n"
    "    PC(pc_inner); /* INNER */\n"
    "    sink += n * 3;\n"
    "}\n"
    "__attribute__((noinline)) void outer_function(int n)\n"
    "{\n"
    "    sink++;\n"
    "    inner_inlined(n); /* CALL */\n"
    "    sink--;\n"
    "}\n"
    "__attribute__((noinline, noclone)) static void static_function(int n)\n"
    "{\n"
    "    PC(pc_static);\n"
    "    sink += n;\n"
    "}\n"
    "int main(void)\n"
    "{\n"
    "    leaf_function(3);\n"
    "    outer_function(4);\n"
    "    static_function(5);\n"
    "#ifdef WITH_LIB\n"
    "    pc_lib = lib_function(1);\n"
    "#endif\n"
    "    printf(\"%p %p %p %p %p\\n\", pc_leaf, pc_inner, pc_static, (void *)leaf_function,\n"
    "           pc_lib);\n"
    "    fflush(stdout);\n"
    "    char c;\n"
    "    while (read(0, &c, 1) > 0) {}\n"
    "    return 0;\n"
    "}\n";

static const char lib_c[] = "void *lib_function(int n)\n"
                            "{\n"
                            "    void *pc;\n"
                            "    __asm__ volatile(\"lea 0(%%rip), %0\" : \"=r\"(pc));\n"
                            "    return n ? pc : 0;\n"
                            "}\n";

static const char prog_cc[] =
    "#include <cstdio>\n"
    "#include <unistd.h>\n"
    "void *pc_method;\n"
    "namespace ns {\n"
    "struct Klass { int v; __attribute__((noinline)) int method(int x); };\n"
    "int Klass::method(int x)\n"
    "{\n"
    "    __asm__ volatile(\"lea 0(%%rip), %0\" : \"=r\"(pc_method));\n"
    "    return v + x;\n"
    "}\n"
    "}\n"
    "int main()\n"
    "{\n"
    "    ns::Klass k{1};\n"
    "    volatile int r = k.method(2);\n"
    "    (void)r;\n"
    "    printf(\"%p\\n\", pc_method);\n"
    "    fflush(stdout);\n"
    "    char c;\n"
    "    while (read(0, &c, 1) > 0) {}\n"
    "}\n";

static int line_of(const char *src, const char *marker)
{
    const char *m = strstr(src, marker);
    int line = 1;
    for (const char *p = src; p < m; p++)
        line += *p == '\n';
    return line;
}

static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

struct child {
    pid_t pid;
    int in_fd;
    uint64_t addr[5];
    uint64_t start_time;
};

static uint64_t proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long v = 0;
    /* after ")": state is field 3; start time is field 22 */
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (p)
        v = strtoull(p + 1, NULL, 10);
    return v;
}

static void child_start(struct child *c, const char *path)
{
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->in_fd = in[1];
    FILE *f = fdopen(out[0], "r");
    char line[512] = "";
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    memset(c->addr, 0, sizeof(c->addr));
    char *p = line;
    for (int i = 0; i < 5 && *p; i++) {
        char *e;
        c->addr[i] = strtoull(p, &e, 16);
        if (e == p) /* "(nil)" */
            e = strchr(p, ' ') ? strchr(p, ' ') : p + strlen(p);
        p = e;
        while (*p == ' ')
            p++;
    }
    c->start_time = proc_start_time(c->pid);
}

static void child_stop(struct child *c)
{
    int status;
    close(c->in_fd);
    waitpid(c->pid, &status, 0);
}

static int group_setup(void **state)
{
    snprintf(tmp, sizeof(tmp), "/tmp/stoke-symtest-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    char p[512];
    snprintf(p, sizeof(p), "%s/prog.c", tmp);
    FILE *f = fopen(p, "w");
    fputs(prog_c, f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/lib.c", tmp);
    f = fopen(p, "w");
    fputs(lib_c, f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/prog.cc", tmp);
    f = fopen(p, "w");
    fputs(prog_cc, f);
    fclose(f);
    const char *cf = "-g -O2 -fno-omit-frame-pointer -Wl,--build-id";
    if (sh("cd %s && gcc %s -o plain prog.c", tmp, cf) ||
        sh("cd %s && gcc %s -no-pie -fno-pie -o nopie prog.c", tmp, cf) ||
        sh("cd %s && g++ %s -o cxx prog.cc", tmp, cf) ||
        /* build-id debug file under a private debug root */
        sh("cd %s && cp plain bid && objcopy --only-keep-debug bid bid.dbg && strip -s bid && "
           "id=$(readelf -n bid | sed -n 's/.*Build ID: //p') && "
           "mkdir -p dbgroot/.build-id/$(echo $id | cut -c1-2) && "
           "mv bid.dbg dbgroot/.build-id/$(echo $id | cut -c1-2)/$(echo $id | cut -c3-).debug",
           tmp) ||
        /* debuglink next to the binary */
        sh("cd %s && cp plain dl && objcopy --only-keep-debug dl dl.debug && strip -s dl && "
           "objcopy --add-gnu-debuglink=dl.debug dl",
           tmp) ||
        /* MiniDebugInfo, as Fedora builds it */
        sh("cd %s && cp plain mini && nm -D mini --format=posix --defined-only | cut -d' ' -f1 "
           "| sort > dynsyms && nm mini --format=posix --defined-only | awk '$2 ~ /[TtW]/ {print "
           "$1}' | sort > funcsyms && comm -13 dynsyms funcsyms > keep && "
           "objcopy --only-keep-debug mini mini.dbg && objcopy -S --remove-section .gdb_index "
           "--remove-section .comment --keep-symbols=keep mini.dbg mini.mdi && "
           "xz -f mini.mdi && strip -s mini && "
           "objcopy --add-section .gnu_debugdata=mini.mdi.xz mini",
           tmp) ||
        sh("cd %s && cp plain bare && strip -s bare", tmp) ||
        sh("cd %s && gcc %s -shared -fPIC -o libstoketest.so lib.c && "
           "gcc %s -DWITH_LIB -o withlib prog.c -L. -lstoketest -Wl,-rpath,%s",
           tmp, cf, cf, tmp))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    if (!getenv("STOKE_KEEP_TMP"))
        sh("rm -rf %s", tmp);
    return 0;
}

static struct symbolizer *new_sym(const char *debug_dirs)
{
    struct symbolizer_opts o = {.debug_dirs = debug_dirs};
    struct symbolizer *s = symbolizer_new(&o);
    assert_non_null(s);
    return s;
}

/* ---- parsers ------------------------------------------------------------ */

static void test_maps_line(void **state)
{
    static const struct {
        const char *line;
        int ret;
        uint64_t start, end, off, inode;
        bool x, deleted;
        const char *path;
    } cases[] = {
        {"55d4c8a00000-55d4c8a22000 r-xp 00002000 fd:01 1234 /usr/bin/cat", 0, 0x55d4c8a00000,
         0x55d4c8a22000, 0x2000, 1234, true, false, "/usr/bin/cat"},
        {"7ffd1000-7ffd3000 r-xp 00000000 00:00 0                  [vdso]", 0, 0x7ffd1000,
         0x7ffd3000, 0, 0, true, false, "[vdso]"},
        {"7f0000000000-7f0000001000 rwxp 00000000 00:00 0 ", 0, 0x7f0000000000, 0x7f0000001000, 0,
         0, true, false, ""},
        {"1000-2000 r--p 00000000 08:02 99 /tmp/a b (deleted)\n", 0, 0x1000, 0x2000, 0, 99, false,
         true, "/tmp/a b"},
        {"2000-1000 r-xp 00000000 08:02 99 /x", -EINVAL, 0, 0, 0, 0, false, false, NULL},
        {"1000-2000 r-xp 00000000 08:02", -EINVAL, 0, 0, 0, 0, false, false, NULL},
        {"1000-2000", -EINVAL, 0, 0, 0, 0, false, false, NULL},
        {"", -EINVAL, 0, 0, 0, 0, false, false, NULL},
        {"zzzz-2000 r-xp 00000000 08:02 1 /x", -EINVAL, 0, 0, 0, 0, false, false, NULL},
        {"11112222333344445-2000 r-xp 0 08:02 1 /x", -EINVAL, 0, 0, 0, 0, false, false, NULL},
        {"1000-2000 r-xp 00000000 08:02 99999999999999999999999 /x", -EINVAL, 0, 0, 0, 0, false,
         false, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sym_map_line ml;
        int ret = sym_maps_parse_line(cases[i].line, strlen(cases[i].line), &ml);
        assert_int_equal(ret, cases[i].ret);
        if (ret)
            continue;
        assert_int_equal(ml.start, cases[i].start);
        assert_int_equal(ml.end, cases[i].end);
        assert_int_equal(ml.offset, cases[i].off);
        assert_int_equal(ml.inode, cases[i].inode);
        assert_int_equal(ml.executable, cases[i].x);
        assert_int_equal(ml.deleted, cases[i].deleted);
        assert_int_equal(ml.path_len, strlen(cases[i].path));
        assert_memory_equal(ml.path, cases[i].path, ml.path_len);
    }
}

static void test_demangle(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"_ZN2ns5Klass6methodEi", "ns::Klass::method(int)"},
        {"_ZNSt6vectorIiSaIiEE9push_backERKi",
         "std::vector<int, std::allocator<int> >::push_back(int const&)"},
        {"_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write"},
        {"_RNvCs1234_7mycrate3foo", "mycrate::foo"},
        {"main", NULL},
        {"_Zgarbage", NULL},
        {"_", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *d = sym_demangle(cases[i].in);
        if (!cases[i].out) {
            assert_null(d);
            continue;
        }
        assert_non_null(d);
        assert_string_equal(d, cases[i].out);
        free(d);
    }
}

static void test_kallsyms_fake(void **state)
{
    struct symbolizer_opts o = {.kallsyms = "tests/data/symbolizer/kallsyms"};
    struct symbolizer *s = symbolizer_new(&o);
    struct sym_result r;
    static const struct {
        uint64_t addr;
        const char *fn, *mapping;
    } cases[] = {
        {0xffffffff81000010, "_stext", "[kernel.kallsyms]"},
        {0xffffffff81001fff, "do_one_thing", "[kernel.kallsyms]"},
        {0xffffffff81002800, "do_one_thing", "[kernel.kallsyms]"}, /* data is not a bound */
        {0xffffffff81003004, "schedule", "[kernel.kallsyms]"},
        {0xffffffffc0001100, "nft_do_chain", "[nf_tables]"},
        {0xffffffffc0002000, "nft_register", "[nf_tables]"},
        {0xffffffffc0010008, "ext4_fill", "[ext4]"},
        {0x1000, NULL, "[kernel.kallsyms]"},
        {0xffffffffc0100000, NULL, "[kernel.kallsyms]"}, /* far past the last symbol */
    };
    assert_non_null(s);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(symbolizer_kernel(s, cases[i].addr, &r), 0);
        assert_int_equal(r.kind, SYM_KERNEL);
        assert_int_equal(r.file_offset, cases[i].addr);
        assert_string_equal(r.mapping, cases[i].mapping);
        if (!cases[i].fn) {
            assert_int_equal(r.nframes, 0);
            continue;
        }
        assert_int_equal(r.nframes, 1);
        assert_string_equal(r.frames[0].function, cases[i].fn);
    }
    struct sym_stats st;
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.resolved, 7);
    assert_int_equal(st.unresolved, 2);
    symbolizer_free(s);

    /* parser level: bad lines counted */
    struct sym_kallsyms k = {0};
    const char *txt = "ffffffff81000000 T a\nnonsense\nffffffff81000010 t b\t[m\n";
    assert_int_equal(sym_kallsyms_parse(&k, txt, strlen(txt)), 0);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.bad_lines, 2);
    sym_kallsyms_free(&k);
}

static void test_kallsyms_restricted(void **state)
{
    struct symbolizer_opts o = {.kallsyms = "tests/data/symbolizer/kallsyms_restricted"};
    struct symbolizer *s = symbolizer_new(&o);
    struct sym_result r;
    assert_int_equal(symbolizer_kernel(s, 0xffffffff81000000, &r), 0);
    assert_int_equal(r.nframes, 0);
    assert_int_equal(symbolizer_kernel(s, 0, &r), 0);
    assert_int_equal(r.nframes, 0);
    struct sym_stats st;
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.unresolved, 2);
    symbolizer_free(s);

    o.kallsyms = "/nonexistent/kallsyms";
    s = symbolizer_new(&o);
    assert_int_equal(symbolizer_kernel(s, 0xffffffff81000000, &r), 0);
    assert_int_equal(r.nframes, 0);
    symbolizer_free(s);
}

static void test_kallsyms_real(void **state)
{
    FILE *f = fopen("/proc/kallsyms", "r");
    char line[512];
    unsigned long long addr = 0;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char name[256], type;
        unsigned long long a;
        if (sscanf(line, "%llx %c %255s", &a, &type, name) == 3 && strcmp(name, "schedule") == 0 &&
            (type == 'T' || type == 't')) {
            addr = a;
            break;
        }
    }
    fclose(f);
    if (addr == 0)
        skip(); /* kptr_restrict */
    struct symbolizer *s = symbolizer_new(NULL);
    struct sym_result r;
    assert_int_equal(symbolizer_kernel(s, addr + 4, &r), 0);
    assert_int_equal(r.nframes, 1);
    assert_string_equal(r.frames[0].function, "schedule");
    assert_string_equal(r.mapping, "[kernel.kallsyms]");
    symbolizer_free(s);
}

struct ksym_line {
    unsigned long long addr;
    char *name;
};

static int cmp_ksym_line(const void *a, const void *b)
{
    const struct ksym_line *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* "__pfx_NAME" padding symbols are folded into NAME's entry, and a lookup
 * in the padding still says "__pfx_NAME". */
static void test_kallsyms_pfx(void **state)
{
    struct sym_kallsyms k = {0};
    struct sym_ksym_hit h;
    const char *txt = "ffffffff81000000 T _stext\n"
                      "ffffffff81000ff0 T __pfx_f\n"
                      "ffffffff81001000 T f\n"
                      "ffffffff81001ff0 t __pfx_g\n"
                      "ffffffff81002000 D not_text\n" /* a line between: no fold */
                      "ffffffff81002000 t g\n"
                      "ffffffff81002ff0 t __pfx_h\n"
                      "ffffffff81003000 t other\n" /* not its function: no fold */
                      "ffffffffc0000ff0 t __pfx_m\t[mod]\n"
                      "ffffffffc0001000 t m\t[mod]\n"
                      "ffffffffc0002000 t __pfx_last\t[mod]\n";
    assert_int_equal(sym_kallsyms_parse(&k, txt, strlen(txt)), 0);
    assert_int_equal(k.n, 8); /* two folded */
    static const struct {
        uint64_t addr;
        const char *name, *mod;
        uint64_t start;
    } cases[] = {
        {0xffffffff81000010, "_stext", NULL, 0xffffffff81000000},
        {0xffffffff81000ff0, "__pfx_f", NULL, 0xffffffff81000ff0},
        {0xffffffff81000fff, "__pfx_f", NULL, 0xffffffff81000ff0},
        {0xffffffff81001000, "f", NULL, 0xffffffff81001000},
        {0xffffffff81001ff4, "__pfx_g", NULL, 0xffffffff81001ff0},
        {0xffffffff81002001, "g", NULL, 0xffffffff81002000},
        {0xffffffff81002ff8, "__pfx_h", NULL, 0xffffffff81002ff0},
        {0xffffffff81003000, "other", NULL, 0xffffffff81003000},
        {0xffffffffc0000ff1, "__pfx_m", "[mod]", 0xffffffffc0000ff0},
        {0xffffffffc0001004, "m", "[mod]", 0xffffffffc0001000},
        {0xffffffffc0002001, "__pfx_last", "[mod]", 0xffffffffc0002000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(sym_kallsyms_lookup(&k, cases[i].addr, &h), 0);
        assert_string_equal(h.name, cases[i].name);
        assert_int_equal(h.addr, cases[i].start);
        if (cases[i].mod)
            assert_string_equal(h.module, cases[i].mod);
        else
            assert_null(h.module);
    }
    sym_kallsyms_free(&k);

    /* The real table: every text symbol is found at its address under one
     * of the names it has there, the padding included. */
    FILE *f = fopen("/proc/kallsyms", "r");
    char line[1024];
    size_t n = 0, cap = 0, folded = 0;
    struct ksym_line *all = NULL;
    assert_non_null(f);
    assert_int_equal(sym_kallsyms_load(&k, "/proc/kallsyms"), 0);
    if (k.restricted) {
        fclose(f);
        sym_kallsyms_free(&k);
        skip();
    }
    while (fgets(line, sizeof(line), f)) {
        char name[600], type;
        unsigned long long a;
        if (sscanf(line, "%llx %c %599s", &a, &type, name) != 3 || (type != 't' && type != 'T'))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            all = realloc(all, cap * sizeof(*all));
            assert_non_null(all);
        }
        all[n].addr = a;
        all[n++].name = strdup(name);
        folded += strncmp(name, "__pfx_", 6) == 0;
    }
    fclose(f);
    qsort(all, n, sizeof(*all), cmp_ksym_line);
    for (size_t rs = 0, re; rs < n; rs = re) {
        for (re = rs; re < n && all[re].addr == all[rs].addr;)
            re++;
        assert_int_equal(sym_kallsyms_lookup(&k, all[rs].addr, &h), 0);
        assert_int_equal(h.addr, all[rs].addr);
        bool named = false;
        for (size_t j = rs; j < re && !named; j++)
            named = strcmp(all[j].name, h.name) == 0;
        if (!named)
            print_message("%llx: %s is none of its names\n", all[rs].addr, h.name);
        assert_true(named);
    }
    print_message("kallsyms: %zu text symbols, %zu of them __pfx_, %zu entries, %zu bytes\n", n,
                  folded, k.n, sym_kallsyms_bytes(&k));
    assert_true(k.n <= n);
    if (folded > n / 4) /* a kernel with function padding */
        assert_true(k.n < n - folded / 2);
    for (size_t i = 0; i < n; i++)
        free(all[i].name);
    free(all);
    sym_kallsyms_free(&k);
}

struct file_sym {
    uint64_t addr;
    const char *name; /* as elf_strptr reads it: NULL or "" for none */
    uint64_t size;
    int pref;   /* global, then weak, then local; then fewer leading '_' */
    size_t seq; /* order in the file: section, then index */
};

/* The preference among aliases a user expects: malloc, not __libc_malloc
 * (two underscores) nor __GI___libc_malloc (local); read (weak), not
 * __read; local names last. Lower is preferred. */
static int alias_pref(int bind, const char *name)
{
    int under = 0;
    while (name && under < 2 && name[under] == '_')
        under++;
    if (bind == STB_LOCAL)
        return 100 + (under > 0);
    return under * 10 + (bind == STB_WEAK);
}

static int cmp_file_sym(const void *a, const void *b)
{
    const struct file_sym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->size != y->size) /* the table prefers a sized alias, the largest */
        return x->size > y->size ? -1 : 1;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every symbol kept has a name, and it is, of the names its address has in
 * the file, the largest, then the preferred (alias_pref), then the first in
 * the file (cut at 4096 bytes), as
 * before names were read in a second pass; every function address with a name in
 * the file is kept. Checks every symbol, not a sample. When @compressed,
 * the names were compressed in blocks and take less room than the raw
 * names. Returns the number of symbols checked. */
static size_t check_symtab_names(const char *path, bool compressed)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    assert_non_null(elf);
    struct sym_symtab t = {0};
    assert_true(sym_symtab_add_mapped_elf(&t, elf, true) > 0);
    sym_symtab_finish(&t);
    /* the file's function symbols, by address, and its string tables (an
     * upper bound of the raw names) */
    struct file_sym *fs = NULL;
    size_t nfs = 0, cap = 0, strtabs = 0;
    Elf_Scn *scn = NULL;
    GElf_Shdr sh, sh2;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
            continue;
        if (gelf_getshdr(elf_getscn(elf, sh.sh_link), &sh2))
            strtabs += sh2.sh_size;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 1; d && sh.sh_entsize && i < d->d_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            assert_non_null(gelf_getsym(d, (int)i, &sym));
            int type = GELF_ST_TYPE(sym.st_info);
            if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
                !sym.st_value)
                continue;
            if (nfs == cap) {
                cap = cap ? 2 * cap : 1024;
                fs = realloc(fs, cap * sizeof(*fs));
                assert_non_null(fs);
            }
            fs[nfs].addr = sym.st_value;
            fs[nfs].seq = nfs;
            fs[nfs].size = sym.st_size > UINT32_MAX ? UINT32_MAX : sym.st_size;
            fs[nfs].name = elf_strptr(elf, sh.sh_link, sym.st_name);
            fs[nfs].pref = alias_pref(GELF_ST_BIND(sym.st_info), fs[nfs].name);
            nfs++;
        }
    }
    qsort(fs, nfs, sizeof(*fs), cmp_file_sym);
    if (compressed) {
        assert_non_null(t.blocks);
        assert_null(t.strs);
        print_message("%s: %zu symbols, %zu bytes of string tables, table %zu bytes\n", path, t.n,
                      strtabs, sym_symtab_bytes(&t));
        assert_true(sym_symtab_bytes(&t) < t.n * sizeof(*t.syms) + strtabs / 2);
    }
    /* each symbol kept: a name of its address in the file */
    for (size_t i = 0, lo = 0; i < t.n; i++) {
        const char *kept = sym_symtab_name(&t, &t.syms[i]);
        if (kept[0] == '\0')
            print_message("%s: %#llx kept without a name\n", path,
                          (unsigned long long)t.syms[i].addr);
        assert_true(kept[0] != '\0');
        size_t kl = strlen(kept);
        if (kl > 4 && strcmp(kept + kl - 4, "@plt") == 0)
            continue; /* a PLT stub's made-up name: test_plt */
        while (lo < nfs && fs[lo].addr < t.syms[i].addr)
            lo++;
        /* of its names, the largest, then the preferred (alias_pref), then
         * the first in the file's order (__clone3, not __GI___clone3) */
        size_t j = lo;
        while (j < nfs && fs[j].addr == t.syms[i].addr && !(fs[j].name && fs[j].name[0]))
            j++;
        assert_true(j < nfs && fs[j].addr == t.syms[i].addr);
        size_t fl = strlen(fs[j].name);
        if (strlen(kept) != (fl < 4096 ? fl : 4096) || strncmp(kept, fs[j].name, strlen(kept)))
            print_message("%s: %#llx kept as %s, its first name is %s\n", path,
                          (unsigned long long)t.syms[i].addr, kept, fs[j].name);
        assert_true(strlen(kept) == (fl < 4096 ? fl : 4096) &&
                    strncmp(kept, fs[j].name, strlen(kept)) == 0);
    }
    /* each named function address: kept, at that address */
    for (size_t j = 0; j < nfs; j++) {
        if (!fs[j].name || !fs[j].name[0])
            continue;
        const struct sym_elf_sym *e = sym_symtab_find(&t, fs[j].addr);
        assert_non_null(e);
        assert_true(e->addr == fs[j].addr);
    }
    size_t checked = t.n;
    free(fs);
    sym_symtab_free(&t);
    elf_end(elf);
    close(fd);
    return checked;
}

/* A copy of @src whose symbol @name is made nameless: its st_name points at
 * the end of its own name (an empty string inside the table), in every
 * symbol table. Returns the symbol's address. */
static uint64_t unname_symbol(const char *src, const char *dst, const char *name)
{
    uint64_t addr = 0;
    assert_int_equal(sh("cp %s %s", src, dst), 0);
    int fd = open(dst, O_RDWR);
    assert_true(fd >= 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    assert_non_null(elf);
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 1; d && i < d->d_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            gelf_getsym(d, (int)i, &sym);
            const char *nm = elf_strptr(elf, sh.sh_link, sym.st_name);
            if (!nm || strcmp(nm, name) != 0)
                continue;
            uint32_t empty = sym.st_name + (uint32_t)strlen(nm);
            off_t at = (off_t)(sh.sh_offset + i * sh.sh_entsize + offsetof(Elf64_Sym, st_name));
            assert_int_equal(pwrite(fd, &empty, sizeof(empty), at), (ssize_t)sizeof(empty));
            addr = sym.st_value;
        }
    }
    elf_end(elf);
    close(fd);
    assert_true(addr != 0);
    return addr;
}

static void test_symtab_names_compressed(void **state)
{
    char path[512];
    elf_version(EV_CURRENT);
    snprintf(path, sizeof(path), "%s/plain", tmp);
    assert_true(check_symtab_names(path, false) >= 5);
    snprintf(path, sizeof(path), "%s/cxx", tmp);
    assert_true(check_symtab_names(path, false) >= 5);
    /* a symbol whose name is empty is not kept (it would name its code "") */
    char src[512];
    snprintf(src, sizeof(src), "%s/plain", tmp);
    snprintf(path, sizeof(path), "%s/unnamed", tmp);
    uint64_t addr = unname_symbol(src, path, "leaf_function");
    assert_true(check_symtab_names(path, false) >= 5);
    {
        int fd = open(path, O_RDONLY);
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        struct sym_symtab t = {0};
        assert_true(sym_symtab_add_mapped_elf(&t, elf, true) > 0);
        sym_symtab_finish(&t);
        const struct sym_elf_sym *e = sym_symtab_find(&t, addr);
        assert_true(e == NULL || e->addr != addr);
        sym_symtab_free(&t);
        elf_end(elf);
        close(fd);
    }
    /* a large C++ library (clang's libLLVM, a build dependency): its 2.8 MB
     * of names are compressed */
    glob_t g;
    size_t done = 0;
    if (glob("/usr/lib/*/libLLVM-*.so*", 0, NULL, &g) == 0) {
        if (g.gl_pathc > 0) {
            assert_true(check_symtab_names(g.gl_pathv[0], true) >= 100);
            done++;
        }
        globfree(&g);
    }
    if (!done)
        print_message("no large C++ library here: compressed names not checked\n");
    /* libc6-dbg's debug file: a .symtab of many aliases per address */
    if (glob("/usr/lib/debug/.build-id/*/*.debug", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            char cmd[1024];
            snprintf(cmd, sizeof(cmd), "readelf -sW %s 2>/dev/null | grep -q ' __GI___clone3$'",
                     g.gl_pathv[i]);
            if (system(cmd) == 0) {
                assert_true(check_symtab_names(g.gl_pathv[i], false) >= 1000);
                /* and by name: malloc's four names (__GI___libc_malloc
                 * first in the file) give the one a user calls */
                int fd = open(g.gl_pathv[i], O_RDONLY);
                Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
                struct sym_symtab t = {0};
                assert_true(sym_symtab_add_mapped_elf(&t, elf, true) > 0);
                sym_symtab_finish(&t);
                size_t named = 0;
                for (size_t k = 0; k < t.n; k++) {
                    const char *nm = sym_symtab_name(&t, &t.syms[k]);
                    assert_string_not_equal(nm, "__GI___libc_malloc");
                    assert_string_not_equal(nm, "__libc_malloc");
                    named += strcmp(nm, "malloc") == 0;
                }
                assert_int_equal(named, 1);
                sym_symtab_free(&t);
                elf_end(elf);
                close(fd);
                break;
            }
        }
        globfree(&g);
    }
}

/* PLT stubs are named "function@plt" as objdump names them: every stub
 * objdump labels (but its *ABS* IRELATIVE ones) gets the same name at the
 * same address, and nothing else is named @plt. */
static size_t check_plt(const char *path)
{
    char cmd[1024], line[1024];
    size_t want = 0, got = 0;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    struct sym_symtab t = {0};
    assert_true(sym_symtab_add_mapped_elf(&t, elf, true) > 0);
    sym_symtab_finish(&t);
    snprintf(cmd, sizeof(cmd),
             "objdump -d -j .plt -j .plt.sec -j .plt.got %s 2>/dev/null | "
             "grep -E '^[0-9a-f]+ <.*@plt>:$'",
             path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned long long addr;
        char name[512];
        if (sscanf(line, "%llx <%511[^>]>:", &addr, name) != 2 || !strncmp(name, "*ABS*", 5))
            continue;
        want++;
        const struct sym_elf_sym *e = sym_symtab_find(&t, addr);
        if (e && e->addr == addr && strcmp(sym_symtab_name(&t, e), name) == 0)
            continue;
        fprintf(stderr, "%s: %llx is %s, not %s\n", path, addr,
                e ? sym_symtab_name(&t, e) : "(none)", name);
        fail();
    }
    pclose(f);
    for (size_t i = 0; i < t.n; i++) {
        const char *n = sym_symtab_name(&t, &t.syms[i]);
        size_t len = strlen(n);
        got += len > 4 && strcmp(n + len - 4, "@plt") == 0;
    }
    assert_int_equal(got, want);
    sym_symtab_free(&t);
    elf_end(elf);
    close(fd);
    return want;
}

static void test_plt(void **state)
{
    static const char src[] =
        "#include <stdio.h>\n"
        "#include <stdlib.h>\n"
        "#include <string.h>\n"
        "static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; "
        "}\n"
        "int (*volatile taken)(int) = abs;\n"
        "int main(int argc, char **argv)\n"
        "{\n"
        "    int v[3] = {3, 1, 2};\n"
        "    qsort(v, 3, sizeof(int), cmp);\n"
        "    printf(\"%zu %d %d\\n\", strlen(argv[0]), abs(argc - 5), taken(v[0]));\n"
        "    return 0;\n"
        "}\n";
    static const char *const variants[][2] = {
        {"plt-default", ""},
        {"plt-ibt", "-fcf-protection=full"},
        {"plt-ibt-now", "-fcf-protection=full -Wl,-z,now"},
        {"plt-nopie", "-no-pie -fno-pie"},
    };
    char path[512];

    elf_version(EV_CURRENT);
    snprintf(path, sizeof(path), "%s/plt.c", tmp);
    write_file(path, src, sizeof(src) - 1);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        assert_int_equal(sh("cd %s && gcc -O1 %s -o %s plt.c", tmp, variants[i][1], variants[i][0]),
                         0);
        snprintf(path, sizeof(path), "%s/%s", tmp, variants[i][0]);
        assert_true(check_plt(path) >= 3); /* qsort, strlen, printf, abs */
    }
    /* the machine's own binaries and libc */
    static const char *const real[] = {"/usr/bin/python3", "/bin/bash", "/usr/bin/sqlite3"};
    for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++)
        if (access(real[i], R_OK) == 0)
            check_plt(real[i]);
    glob_t g;
    if (glob("/lib/x86_64-linux-gnu/libc.so.6", 0, NULL, &g) == 0) {
        if (g.gl_pathc)
            assert_true(check_plt(g.gl_pathv[0]) > 0);
        globfree(&g);
    }
}

static void test_perfmap_parse(void **state)
{
    struct sym_perfmap m = {0};
    char *buf;
    FILE *f = fopen("tests/data/symbolizer/perf-map", "r");
    assert_non_null(f);
    buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, f);
    fclose(f);
    assert_int_equal(sym_perfmap_parse(&m, buf, n), 0);
    assert_int_equal(m.bad_lines, 3);
    static const struct {
        uint64_t addr;
        const char *name;
    } cases[] = {
        {0x7f0000001000, "LazyCompile:*foo /app/x.js:1"}, /* later line wins */
        {0x7f00000010ff, "LazyCompile:*foo /app/x.js:1"},
        {0x7f0000001100, NULL},
        {0x7f0000002040, "Builtin:ArgumentsAdaptor"},
        {0x7f0000003000, NULL},
        {0x7f0000005000, "name with  spaces"},
        {0x10, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct sym_perfmap_entry *e = sym_perfmap_find(&m, cases[i].addr);
        if (!cases[i].name) {
            assert_null(e);
            continue;
        }
        assert_non_null(e);
        assert_string_equal(m.strs + e->name, cases[i].name);
    }
    sym_perfmap_free(&m);
    free(buf);
}

/* A fake /proc: <root>/4242/maps with an anonymous executable mapping and the
 * perf map under <root>/4242/root/tmp/. */
static void test_perfmap_fake_proc(void **state)
{
    char root[512], p[600];
    snprintf(root, sizeof(root), "%s/fakeproc", tmp);
    assert_int_equal(sh("mkdir -p %s/4242/root/tmp", root), 0);
    const char *maps = "7f0000000000-7f0000100000 rwxp 00000000 00:00 0 \n"
                       "7f0000200000-7f0000300000 r-xp 00000000 00:00 0   [vsyscall]\n";
    snprintf(p, sizeof(p), "%s/4242/maps", root);
    write_file(p, maps, strlen(maps));
    snprintf(p, sizeof(p), "%s/4242/root/tmp/perf-4242.map", root);
    const char *pm = "7f0000001000 100 jitted_one\nbogus\n";
    write_file(p, pm, strlen(pm));

    struct symbolizer_opts o = {.proc_root = root};
    struct symbolizer *s = symbolizer_new(&o);
    struct sym_result r;
    assert_int_equal(symbolizer_user(s, 4242, 1, 0x7f0000001010, false, &r), 0);
    assert_int_equal(r.kind, SYM_JIT);
    assert_string_equal(r.mapping, "[anon]");
    assert_int_equal(r.nframes, 1);
    assert_string_equal(r.frames[0].function, "jitted_one");
    assert_int_equal(symbolizer_user(s, 4242, 1, 0x7f0000002000, false, &r), 0);
    assert_int_equal(r.nframes, 0);

    /* The runtime appends; the next window re-reads the grown map. */
    const char *pm2 = "7f0000001000 100 jitted_one\nbogus\n7f0000002000 80 jitted_two\n";
    write_file(p, pm2, strlen(pm2));
    symbolizer_new_window(s);
    assert_int_equal(symbolizer_user(s, 4242, 1, 0x7f0000002010, true, &r), 0);
    assert_int_equal(r.nframes, 1);
    assert_string_equal(r.frames[0].function, "jitted_two");

    assert_int_equal(symbolizer_user(s, 4242, 1, 0x7f0000200010, false, &r), 0);
    assert_string_equal(r.mapping, "[vsyscall]");
    assert_int_equal(r.nframes, 0);
    assert_int_equal(symbolizer_user(s, 4242, 1, 0x1000, false, &r), -ENOENT);
    assert_int_equal(symbolizer_user(s, 4243, 1, 0x1000, false, &r), -ESRCH);
    struct sym_stats st;
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.proc_gone, 1);
    symbolizer_free(s);
}

/* ---- real binaries -------------------------------------------------------- */

static void expect_fn(struct symbolizer *s, const struct child *c, uint64_t addr, bool ret,
                      const char *fn)
{
    struct sym_result r;
    assert_int_equal(symbolizer_user(s, (uint32_t)c->pid, c->start_time, addr, ret, &r), 0);
    if (r.nframes == 0)
        fail_msg("0x%llx unresolved, expected %s", (unsigned long long)addr, fn);
    assert_string_equal(r.frames[r.nframes - 1].function, fn);
}

static void check_full(const char *bin, const char *debug_dirs, bool want_lines)
{
    char path[512];
    struct child c;
    struct sym_result r;
    snprintf(path, sizeof(path), "%s/%s", tmp, bin);
    child_start(&c, path);
    struct symbolizer *s = new_sym(debug_dirs);

    expect_fn(s, &c, c.addr[0], true, "leaf_function");
    expect_fn(s, &c, c.addr[2], true, "static_function");
    /* A return address just past a function's first byte still belongs to
     * it; one at its first byte belongs to whatever precedes it. */
    expect_fn(s, &c, c.addr[3] + 1, true, "leaf_function");
    assert_int_equal(symbolizer_user(s, c.pid, c.start_time, c.addr[3], true, &r), 0);
    assert_true(r.nframes == 0 || strcmp(r.frames[r.nframes - 1].function, "leaf_function"));

    assert_int_equal(symbolizer_user(s, c.pid, c.start_time, c.addr[1], true, &r), 0);
    assert_string_equal(r.mapping, path);
    assert_int_not_equal(strlen(r.build_id), 0);
    assert_true(r.nframes >= 1);
    assert_string_equal(r.frames[r.nframes - 1].function, "outer_function");
    if (want_lines) {
        assert_int_equal(r.nframes, 2);
        assert_string_equal(r.frames[0].function, "inner_inlined");
        assert_non_null(r.frames[0].file);
        assert_non_null(strstr(r.frames[0].file, "prog.c"));
        assert_int_equal(r.frames[0].line, line_of(prog_c, "PC(pc_inner)"));
        assert_int_equal(r.frames[1].line, line_of(prog_c, "inner_inlined(n); /* CALL"));
    }
    /* warm: same answer from the per-address cache */
    struct sym_stats st;
    symbolizer_get_stats(s, &st);
    uint64_t hits = st.cache_hits, loaded = st.binaries_loaded;
    expect_fn(s, &c, c.addr[1], true, "outer_function");
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.cache_hits, hits + 1);
    assert_int_equal(st.binaries_loaded, loaded);
    symbolizer_free(s);
    child_stop(&c);
}

static void test_plain(void **state)
{
    check_full("plain", "/nonexistent", true);
}

static void test_build_id_debug_root(void **state)
{
    char root[512];
    snprintf(root, sizeof(root), "/nonexistent:%s/dbgroot", tmp);
    check_full("bid", root, true);
}

/* A process in a container: its binary and the binary's build-id debug
 * file only under its root (a fake /proc whose PID/root holds both), not
 * in the agent's debug roots. */
static void test_build_id_in_process_root(void **state)
{
    char proc[512], bin[512], maps[512];
    struct child c;
    snprintf(bin, sizeof(bin), "%s/bid", tmp);
    child_start(&c, bin);
    snprintf(proc, sizeof(proc), "%s/cproc", tmp);
    snprintf(maps, sizeof(maps), "/proc/%d/maps", c.pid);
    assert_int_equal(sh("rm -rf %s && mkdir -p %s/%d/root%s %s/%d/root/usr/lib/debug && "
                        "cp %s %s/%d/maps && cp %s %s/%d/root%s/ && "
                        "cp -r %s/dbgroot/.build-id %s/%d/root/usr/lib/debug/",
                        proc, proc, c.pid, tmp, proc, c.pid, maps, proc, c.pid, bin, proc, c.pid,
                        tmp, tmp, proc, c.pid),
                     0);
    struct symbolizer_opts o = {.debug_dirs = "/nonexistent:/usr/lib/debug", .proc_root = proc};
    struct symbolizer *s = symbolizer_new(&o);
    assert_non_null(s);
    expect_fn(s, &c, c.addr[2], true, "static_function");
    expect_fn(s, &c, c.addr[0], true, "leaf_function");
    symbolizer_free(s);
    child_stop(&c);
}

static void test_debuglink(void **state)
{
    check_full("dl", "/nonexistent", true);
}

static void test_minidebuginfo(void **state)
{
    check_full("mini", "/nonexistent", false);
}

static void test_nopie(void **state)
{
    check_full("nopie", "/nonexistent", true);
}

static void test_shared_lib(void **state)
{
    char path[512];
    struct child c;
    struct sym_result r;
    snprintf(path, sizeof(path), "%s/withlib", tmp);
    child_start(&c, path);
    struct symbolizer *s = new_sym("/nonexistent");
    expect_fn(s, &c, c.addr[4], true, "lib_function");
    assert_int_equal(symbolizer_user(s, c.pid, c.start_time, c.addr[4], true, &r), 0);
    assert_non_null(strstr(r.mapping, "libstoketest.so"));
    assert_non_null(r.frames[0].file);
    assert_non_null(strstr(r.frames[0].file, "lib.c"));
    assert_int_equal(r.frames[0].line, 4);
    expect_fn(s, &c, c.addr[0], true, "leaf_function");
    symbolizer_free(s);
    child_stop(&c);
}

static void test_cxx(void **state)
{
    char path[512];
    struct child c;
    snprintf(path, sizeof(path), "%s/cxx", tmp);
    child_start(&c, path);
    struct symbolizer *s = new_sym("/nonexistent");
    expect_fn(s, &c, c.addr[0], true, "ns::Klass::method(int)");
    symbolizer_free(s);
    child_stop(&c);
}

/* Fully stripped: unresolved, but mapping, build-id and file offset kept. */
static void test_unresolved_keeps_offset(void **state)
{
    char path[512], maps[64];
    struct child c;
    struct sym_result r;
    snprintf(path, sizeof(path), "%s/bare", tmp);
    child_start(&c, path);
    struct symbolizer *s = new_sym("/nonexistent");
    assert_int_equal(symbolizer_user(s, c.pid, c.start_time, c.addr[2], true, &r), 0);
    assert_int_equal(r.nframes, 0);
    assert_string_equal(r.mapping, path);
    assert_int_equal(strlen(r.build_id), 40);

    /* independent file offset from /proc/PID/maps */
    snprintf(maps, sizeof(maps), "/proc/%d/maps", c.pid);
    FILE *f = fopen(maps, "r");
    char line[1024];
    uint64_t want = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long a, b, off;
        if (sscanf(line, "%llx-%llx %*s %llx", &a, &b, &off) == 3 && c.addr[2] >= a &&
            c.addr[2] < b)
            want = c.addr[2] - a + off;
    }
    fclose(f);
    assert_int_equal(r.file_offset, want);
    struct sym_stats st;
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.unresolved, 1);
    symbolizer_free(s);
    child_stop(&c);
}

static void test_pid_reuse_and_exit(void **state)
{
    char path[512];
    struct child c;
    struct sym_result r;
    struct sym_stats st;
    snprintf(path, sizeof(path), "%s/plain", tmp);
    child_start(&c, path);
    struct symbolizer *s = new_sym("/nonexistent");
    expect_fn(s, &c, c.addr[0], true, "leaf_function");
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.maps_reads, 1);
    /* same pid, another start time: the view is dropped and re-read */
    assert_int_equal(symbolizer_user(s, c.pid, c.start_time + 1, c.addr[0], true, &r), 0);
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.maps_reads, 2);
    assert_int_equal(st.binaries_loaded, 1); /* the binary itself stays cached */
    child_stop(&c);
    /* exited but cached: still answers */
    assert_int_equal(symbolizer_user(s, c.pid, c.start_time + 1, c.addr[0], true, &r), 0);
    assert_true(r.nframes > 0);
    symbolizer_forget_pid(s, c.pid);
    assert_int_equal(symbolizer_user(s, c.pid, c.start_time, c.addr[0], true, &r), -ESRCH);
    symbolizer_free(s);
}

/* A process no lookup came for in 3 windows is dropped, alive or not: a
 * host's thousands of processes sampled once do not stay cached. */
static void test_idle_process_dropped(void **state)
{
    char path[512];
    struct child c;
    struct sym_stats st, st2;
    snprintf(path, sizeof(path), "%s/plain", tmp);
    child_start(&c, path);
    struct symbolizer *s = new_sym("/nonexistent");
    expect_fn(s, &c, c.addr[0], true, "leaf_function");
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.maps_reads, 1);
    for (int w = 0; w < 3; w++)
        symbolizer_new_window(s);
    expect_fn(s, &c, c.addr[0], true, "leaf_function"); /* still cached */
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.maps_reads, 1);
    for (int w = 0; w < 4; w++)
        symbolizer_new_window(s);
    symbolizer_get_stats(s, &st2);
    assert_true(st2.bytes_used < st.bytes_used);        /* its maps are gone */
    expect_fn(s, &c, c.addr[0], true, "leaf_function"); /* read again */
    symbolizer_get_stats(s, &st);
    assert_int_equal(st.maps_reads, 2);
    assert_int_equal(st.binaries_loaded, 1); /* the binary stayed */
    child_stop(&c);
    symbolizer_free(s);
}

static void test_eviction(void **state)
{
    char path[512];
    struct child c;
    struct sym_stats st;
    snprintf(path, sizeof(path), "%s/withlib", tmp);
    child_start(&c, path);
    struct symbolizer_opts o = {.debug_dirs = "/nonexistent", .max_bytes = 1};
    struct symbolizer *s = symbolizer_new(&o);
    for (int i = 0; i < 3; i++) {
        expect_fn(s, &c, c.addr[0], true, "leaf_function");
        expect_fn(s, &c, c.addr[4], false, "lib_function");
    }
    symbolizer_get_stats(s, &st);
    assert_true(st.binaries_evicted >= 5);
    assert_true(st.binaries_loaded >= 6);
    symbolizer_free(s);
    child_stop(&c);
}

static void test_vdso(void **state)
{
    uintptr_t base = getauxval(AT_SYSINFO_EHDR);
    if (!base)
        skip();
    /* find __vdso_clock_gettime in our own vDSO */
    elf_version(EV_CURRENT);
    Elf *e = elf_memory((char *)base, 8192);
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    uint64_t addr = 0;
    while (e && (scn = elf_nextscn(e, scn))) {
        gelf_getshdr(scn, &sh);
        if (sh.sh_type != SHT_DYNSYM)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym sym;
            gelf_getsym(d, (int)i, &sym);
            const char *n = elf_strptr(e, sh.sh_link, sym.st_name);
            if (n && strcmp(n, "__vdso_clock_gettime") == 0)
                addr = base + sym.st_value;
        }
    }
    if (e)
        elf_end(e);
    if (!addr)
        skip();
    struct symbolizer *s = new_sym("/nonexistent");
    struct sym_result r;
    assert_int_equal(symbolizer_user(s, getpid(), 0, addr + 2, false, &r), 0);
    assert_string_equal(r.mapping, "[vdso]");
    assert_true(r.nframes >= 1);
    assert_non_null(strstr(r.frames[r.nframes - 1].function, "clock_gettime"));
    symbolizer_free(s);
}

/* Corrupt binaries behind a fake /proc whose root/ is the real one. */
static void test_corrupt_elf(void **state)
{
    char src[512], dst[512], root[512], p[600];
    snprintf(src, sizeof(src), "%s/plain", tmp);
    snprintf(root, sizeof(root), "%s/corruptproc", tmp);
    assert_int_equal(sh("mkdir -p %s/7 && ln -sfn / %s/7/root", root, root), 0);
    FILE *f = fopen(src, "r");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    unsigned char *img = malloc((size_t)size);
    assert_int_equal(fread(img, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    snprintf(dst, sizeof(dst), "%s/corrupt", tmp);
    srand(1);
    for (int iter = 0; iter < 60; iter++) {
        unsigned char *b = malloc((size_t)size);
        memcpy(b, img, (size_t)size);
        size_t len = (size_t)size;
        if (iter < 20)
            len = (size_t)size * (size_t)iter / 20;
        else
            for (int k = 0; k < 1 + iter; k++)
                b[rand() % size] ^= (unsigned char)(1 + rand() % 255);
        unlink(dst);
        write_file(dst, b, len);
        free(b);
        char maps[1024];
        snprintf(maps, sizeof(maps), "10000-90000 r-xp 00000000 00:00 1 %s\n", dst);
        snprintf(p, sizeof(p), "%s/7/maps", root);
        write_file(p, maps, strlen(maps));
        struct symbolizer_opts o = {.debug_dirs = "/nonexistent", .proc_root = root};
        struct symbolizer *s = symbolizer_new(&o);
        struct sym_result r;
        for (uint64_t a = 0x10000; a < 0x90000; a += 0x777) {
            int ret = symbolizer_user(s, 7, 0, a, a & 1, &r);
            if (ret)
                fail_msg("iter %d addr 0x%llx: %d", iter, (unsigned long long)a, ret);
        }
        symbolizer_free(s);
    }
    free(img);
    (void)ENOENT;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maps_line),
        cmocka_unit_test(test_demangle),
        cmocka_unit_test(test_kallsyms_fake),
        cmocka_unit_test(test_kallsyms_restricted),
        cmocka_unit_test(test_kallsyms_real),
        cmocka_unit_test(test_kallsyms_pfx),
        cmocka_unit_test(test_symtab_names_compressed),
        cmocka_unit_test(test_plt),
        cmocka_unit_test(test_perfmap_parse),
        cmocka_unit_test(test_perfmap_fake_proc),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_build_id_debug_root),
        cmocka_unit_test(test_build_id_in_process_root),
        cmocka_unit_test(test_debuglink),
        cmocka_unit_test(test_minidebuginfo),
        cmocka_unit_test(test_nopie),
        cmocka_unit_test(test_shared_lib),
        cmocka_unit_test(test_cxx),
        cmocka_unit_test(test_unresolved_keeps_offset),
        cmocka_unit_test(test_pid_reuse_and_exit),
        cmocka_unit_test(test_idle_process_dropped),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_vdso),
        cmocka_unit_test(test_corrupt_elf),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
