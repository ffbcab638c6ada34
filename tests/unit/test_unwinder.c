/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent/unwinder: loads this very process into real BPF maps and checks
 * that a function's address, through the mapping's bias and the table in
 * the kernel, finds the row the table of the binary on disk has for it;
 * that exited processes are swept; that the byte cap is kept. Needs root
 * (or CAP_BPF); skipped otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <gelf.h>
#include <linux/types.h>

#include "agent/unwinder.h"
#include "bpf/profile.h"
#include "unwind/table.h"

struct maps {
    int tmpl, tables, procs, files;
};

static bool make_maps(struct maps *m)
{
    LIBBPF_OPTS(bpf_map_create_opts, io, .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);
    LIBBPF_OPTS(bpf_map_create_opts, ho, .map_flags = BPF_F_NO_PREALLOC);

    m->tmpl = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_tmpl", 4, 8, 1, &io);
    if (m->tmpl < 0)
        return false;
    LIBBPF_OPTS(bpf_map_create_opts, oo, .inner_map_fd = m->tmpl);
    m->tables =
        bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "t_tables", 4, 4, STOKE_UW_MAX_TABLES, &oo);
    m->procs = bpf_map_create(BPF_MAP_TYPE_HASH, "t_procs", 4, sizeof(struct unwind_proc), 64, &ho);
    m->files = bpf_map_create(BPF_MAP_TYPE_HASH, "t_files", sizeof(struct unwind_file_key),
                              sizeof(struct unwind_file), 1024, NULL);
    return m->tables >= 0 && m->procs >= 0 && m->files >= 0;
}

static void close_maps(struct maps *m)
{
    close(m->tmpl);
    close(m->tables);
    close(m->procs);
    close(m->files);
}

__attribute__((noinline)) int unwinder_test_target(int x)
{
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

/* The row the walker finds for @addr: mapping, bias, the kernel's copy of
 * the table. NULL row when the mapping has no table. */
static bool walker_row(const struct maps *m, const struct unwind_proc *p, uint64_t addr,
                       struct unwind_row *out)
{
    const struct unwind_mapping *hit = NULL;
    for (uint32_t i = 0; i < p->nmaps; i++)
        if (addr >= p->maps[i].start && addr - p->maps[i].start < p->maps[i].len)
            hit = &p->maps[i];
    assert_non_null(hit);
    if (hit->table == STOKE_UW_NO_TABLE)
        return false;
    uint32_t inner_id;
    assert_int_equal(bpf_map_lookup_elem(m->tables, &hit->table, &inner_id), 0);
    int fd = bpf_map_get_fd_by_id(inner_id);
    assert_true(fd >= 0);
    struct bpf_map_info info = {0};
    __u32 len = sizeof(info);
    assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
    size_t bytes = (size_t)info.max_entries * 8;
    void *mem = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(mem != MAP_FAILED);
    struct uw_table t = {.elems = mem, .nelems = info.max_entries, .base = 0};
    t.nrows = ((uint32_t *)mem)[0];
    t.npages = ((uint32_t *)mem)[1];
    const struct unwind_row *r = uw_table_lookup(&t, addr - hit->bias);
    assert_non_null(r);
    *out = *r;
    munmap(mem, bytes);
    close(fd);
    return true;
}

/* The row the binary's own table on disk has for @addr. */
static void disk_row(const char *path, uint64_t vaddr, struct unwind_row *out)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    struct uw_table t;
    assert_int_equal(uw_table_from_elf(elf, &t), 0);
    const struct unwind_row *r = uw_table_lookup(&t, vaddr);
    assert_non_null(r);
    *out = *r;
    uw_table_free(&t);
    elf_end(elf);
    close(fd);
}

struct found {
    uintptr_t addr;
    uintptr_t bias;
    char path[4096];
};

static int find_obj(struct dl_phdr_info *info, size_t size, void *data)
{
    struct found *f = data;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && f->addr >= lo && f->addr < lo + ph->p_memsz) {
            f->bias = info->dlpi_addr;
            snprintf(f->path, sizeof(f->path), "%s",
                     info->dlpi_name[0] ? info->dlpi_name : "/proc/self/exe");
            return 1;
        }
    }
    return 0;
}

/* The mapping the walker builds from the kernel's VMA (start, file offset,
 * file identity) and `unwind_files`, for a process not loaded yet: the VMA
 * is read here from /proc/self/maps. */
static void vma_mapping(const struct maps *m, uint64_t addr, struct unwind_proc *out)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[4096];
    unsigned long long lo, hi, off, ino;
    char perms[8];

    assert_non_null(f);
    memset(out, 0, sizeof(*out));
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%llx-%llx %7s %llx %*s %llu", &lo, &hi, perms, &off, &ino) != 5 ||
            addr < lo || addr >= hi)
            continue;
        char *path = strchr(line, '/');
        struct stat st;
        assert_non_null(path);
        path[strcspn(path, "\n")] = '\0';
        assert_int_equal(stat(path, &st), 0);
        struct unwind_file_key k = {.ino = ino, .size = (uint64_t)st.st_size};
        struct unwind_file v;
        assert_int_equal(bpf_map_lookup_elem(m->files, &k, &v), 0);
        uint64_t foff = addr - lo + off;
        for (uint32_t i = 0; i < v.nsegs; i++)
            if (foff >= v.segs[i].off_lo && foff < v.segs[i].off_hi) {
                out->nmaps = 1;
                out->maps[0] = (struct unwind_mapping){.start = lo,
                                                       .len = (uint32_t)(hi - lo),
                                                       .table = v.table,
                                                       .bias = addr - (foff + v.segs[i].delta)};
            }
    }
    fclose(f);
    assert_int_equal(out->nmaps, 1);
}

static void check_function(const struct maps *m, const struct unwind_proc *p, void *fn)
{
    struct found f = {.addr = (uintptr_t)fn};
    struct unwind_row got, want, via_vma;
    struct unwind_proc vp;

    assert_int_equal(dl_iterate_phdr(find_obj, &f), 1);
    assert_true(walker_row(m, p, f.addr, &got));
    vma_mapping(m, f.addr, &vp);
    assert_true(walker_row(m, &vp, f.addr, &via_vma));
    assert_memory_equal(&got, &via_vma, sizeof(got));
    /* one byte into the function: past its first row boundary at most */
    disk_row(f.path, f.addr - f.bias, &want);
    assert_memory_equal(&got, &want, sizeof(got));
}

static void test_load_self(void **state)
{
    struct maps m;
    struct unwind_proc p;
    struct unwinder_stats st;
    uint32_t pid = (uint32_t)getpid();

    if (!make_maps(&m)) {
        print_message("skipped: cannot create BPF maps (%s)\n", strerror(errno));
        skip();
    }
    elf_version(EV_CURRENT);
    struct unwinder_opts o = {.tables_fd = m.tables, .procs_fd = m.procs, .files_fd = m.files};
    struct unwinder *u = unwinder_new(&o);
    assert_non_null(u);
    assert_int_equal(unwinder_load_pid(u, pid), 0);
    assert_int_equal(bpf_map_lookup_elem(m.procs, &pid, &p), 0);
    assert_true(p.nmaps >= 2);
    for (uint32_t i = 1; i < p.nmaps; i++)
        assert_true(p.maps[i].start >= p.maps[i - 1].start + p.maps[i - 1].len);
    check_function(&m, &p, (void *)unwinder_test_target); /* this binary */
    check_function(&m, &p, (void *)qsort);                /* libc */
    check_function(&m, &p, (void *)bpf_map_create);       /* libbpf */
    unwinder_get_stats(u, &st);
    assert_true(st.tables_built >= 3);
    assert_int_equal(st.procs_tracked, 1);
    size_t bytes_one = st.table_bytes;

    /* a second load of the same process builds nothing new */
    assert_int_equal(unwinder_load_pid(u, pid), 0);
    unwinder_get_stats(u, &st);
    assert_int_equal(st.table_bytes, bytes_one);
    assert_int_equal(st.procs_tracked, 1);

    /* a child that exits is swept, its entry dropped */
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    assert_int_equal(unwinder_load_pid(u, (uint32_t)child), 0);
    unwinder_get_stats(u, &st);
    assert_int_equal(st.procs_tracked, 2);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    unwinder_sweep(u);
    unwinder_get_stats(u, &st);
    assert_int_equal(st.procs_tracked, 1);
    uint32_t cpid = (uint32_t)child;
    assert_int_not_equal(bpf_map_lookup_elem(m.procs, &cpid, &p), 0);
    assert_int_equal(unwinder_load_pid(u, cpid), -ESRCH);

    unwinder_free(u);
    close_maps(&m);
}

/* With a cap too small for any table, every mapping falls back to frame
 * pointers and the refusals are counted. */
static void test_byte_cap(void **state)
{
    struct maps m;
    struct unwind_proc p;
    struct unwinder_stats st;
    uint32_t pid = (uint32_t)getpid();

    if (!make_maps(&m))
        skip();
    struct unwinder_opts o = {
        .tables_fd = m.tables, .procs_fd = m.procs, .files_fd = m.files, .max_bytes = 1};
    struct unwinder *u = unwinder_new(&o);
    assert_int_equal(unwinder_load_pid(u, pid), 0);
    assert_int_equal(bpf_map_lookup_elem(m.procs, &pid, &p), 0);
    for (uint32_t i = 0; i < p.nmaps; i++)
        assert_int_equal(p.maps[i].table, STOKE_UW_NO_TABLE);
    unwinder_get_stats(u, &st);
    assert_int_equal(st.tables_live, 0);
    assert_true(st.over_cap >= 3);
    unwinder_free(u);
    close_maps(&m);
}

/* A field of /proc/self/status, in kB. */
static long status_kb(const char *field)
{
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = atol(line + n + 1);
    fclose(f);
    return v;
}

/* The size of @path's .eh_frame, 0 if none. */
static size_t eh_frame_size(const char *path)
{
    int fd = open(path, O_RDONLY);
    Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
    Elf_Scn *scn = NULL;
    size_t shstrndx, size = 0;
    GElf_Shdr sh;

    if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0)
        while ((scn = elf_nextscn(elf, scn)) != NULL)
            if (gelf_getshdr(scn, &sh) &&
                strcmp(elf_strptr(elf, shstrndx, sh.sh_name) ?: "", ".eh_frame") == 0)
                size = sh.sh_size;
    if (elf)
        elf_end(elf);
    if (fd >= 0)
        close(fd);
    return size;
}

/*
 * Loading a process that maps a very large library (libLLVM, clang's: a
 * build dependency; 1 M rows, a 7.9 MB table) raises the agent's peak RSS
 * by little more than the library's .eh_frame pages, which the parse
 * reads: the rows are streamed into the BPF array, never all held. Held,
 * as they were, they took 8 bytes a row on top (14 MB in all for
 * libLLVM-15, where this bound is 5 + 3 MB).
 */
#if defined(__SANITIZE_ADDRESS__)
#define SLACK_KB (6 * 1024) /* ASan's redzones and quarantine: freed memory is not reused */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLACK_KB (6 * 1024)
#endif
#endif
#ifndef SLACK_KB
#define SLACK_KB (3 * 1024)
#endif

static void test_big_table_memory(void **state)
{
    struct maps m;
    struct unwinder_stats st;
    glob_t g;
    const char *lib = NULL;
    size_t eh = 0;
    int pfd[2];
    char c;

    if (!make_maps(&m))
        skip();
    if (glob("/usr/lib/x86_64-linux-gnu/libLLVM*.so.*", 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (eh_frame_size(g.gl_pathv[i]) > eh) {
                lib = g.gl_pathv[i];
                eh = eh_frame_size(lib);
            }
    if (!lib) {
        print_message("skipped: no libLLVM (clang's) on this host\n");
        globfree(&g);
        close_maps(&m);
        skip();
    }
    assert_int_equal(pipe(pfd), 0);
    pid_t child = fork();
    if (child == 0) {
        void *h = dlopen(lib, RTLD_LAZY | RTLD_LOCAL);
        c = h ? 1 : 0;
        if (write(pfd[1], &c, 1) != 1 || !h)
            _exit(1);
        pause();
        _exit(0);
    }
    assert_int_equal(read(pfd[0], &c, 1), 1);
    assert_int_equal(c, 1);
    close(pfd[0]);
    close(pfd[1]);

    struct unwinder_opts o = {.tables_fd = m.tables, .procs_fd = m.procs, .files_fd = m.files};
    struct unwinder *u = unwinder_new(&o);
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "5", 1), 1); /* VmHWM := VmRSS */
    close(fd);
    long rss0 = status_kb("VmRSS");
    assert_int_equal(unwinder_load_pid(u, (uint32_t)child), 0);
    long peak = status_kb("VmHWM") - rss0;
    unwinder_get_stats(u, &st);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    print_message("%s: .eh_frame %zu kB, %llu tables (%llu sorted), %llu kB in maps; peak RSS "
                  "+%ld kB while loading\n",
                  lib, eh / 1024, (unsigned long long)st.tables_built,
                  (unsigned long long)st.tables_sorted, (unsigned long long)st.table_bytes / 1024,
                  peak);
    /* libLLVM's table is built: nothing left to frame pointers */
    assert_true(st.table_bytes > eh);
    assert_true(peak < (long)(eh / 1024) + SLACK_KB);
    globfree(&g);
    unwinder_free(u);
    close_maps(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_self),
        cmocka_unit_test(test_byte_cap),
        cmocka_unit_test(test_big_table_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
