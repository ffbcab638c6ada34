/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unwinder — the tables and process mappings behind the BPF walker. See
 * unwinder.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <dirent.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/types.h>

#include "common/hash.h"
#include "common/log.h"
#include "agent/procinfo.h"
#include "agent/sampler.h"
#include "agent/unwinder.h"
#include "bpf/profile.h"
#include "symbolizer/build_id.h"
#include "symbolizer/proc_mem.h"
#include "symbolizer/proc_maps.h"
#include "common/file.h"
#include "unwind/hotspot.h"
#include "unwind/python.h"
#include "unwind/table.h"
#include "unwind/v8.h"

#define DEFAULT_MAX_BYTES (64u << 20)
#define BUCKETS           1024
#define MAPS_MAX          (64u << 20)

struct uw_seg {
    uint64_t offset, vaddr, filesz;
    bool exec;
};

/* One binary: its table (or the knowledge that it has none). */
struct uw_bin {
    struct uw_bin *next; /* hash chain by key */
    struct uw_bin *prev_lru, *next_lru;
    char key[64];      /* build-id, or "f:dev:ino:size:mtime" */
    uint64_t dev, ino; /* as /proc/PID/maps shows it */
    uint32_t id;       /* index in unwind_tables, or STOKE_UW_NO_TABLE */
    int map_fd;        /* the inner map, -1 when none */
    size_t bytes;
    uint32_t rows;
    uint64_t base;        /* ELF vaddr of table pc 0 */
    struct uw_seg *segs;  /* PT_LOAD segments */
    struct py_runtime py; /* a CPython interpreter: minor != 0 */
    int py_ret;           /* py_detect's answer */
    struct hs_syms hs;    /* a libjvm: its introspection tables */
    int hs_ret;           /* hs_detect's answer */
    struct hs_vm *hsvm;   /* ... read from the first process using it */
    int hsvm_ret;         /* hs_read_vm's answer; 1: not read yet */
    struct v8_proc v8;    /* V8's layout, for the walker */
    int v8_ret;           /* v8_detect's answer */
    int nsegs;
    unsigned refs; /* loaded processes mapping it */
};

struct uw_proc {
    struct uw_proc *next;
    uint32_t pid;
    uint64_t start_time;
    uint64_t maps_hash;     /* of the /proc/PID/maps text last loaded */
    unsigned unchanged;     /* reloads in a row that found the same maps */
    uint64_t ignore_until;  /* CLOCK_MONOTONIC ms: unmapped requests ignored */
    bool python;            /* has a py_procs entry */
    bool jvm;               /* has a jvm_procs entry */
    bool v8;                /* has a v8_procs entry */
    struct uw_bin *jvm_bin; /* its libjvm while its code cache is not set up yet */
    uint64_t jvm_bias;
    unsigned jvm_tries;
    uint64_t jvm_retry_at; /* CLOCK_MONOTONIC ms */
    struct uw_bin **bins;  /* referenced bins (one ref each) */
    size_t nbins;
};

/* A bin found again by file identity (fstat of the mapped file): no ELF
 * parsing for a binary the host already has a table for. */
struct ino_link {
    struct ino_link *next;
    uint64_t dev, ino, size;
    int64_t mtime_ns;
    struct uw_bin *bin;
};

struct unwinder {
    pthread_mutex_t mu; /* everything below, once the thread runs */
    pthread_t thread;
    bool running;
    atomic_bool stop;
    struct sampler *sampler;
    unsigned sweep_ms;
    struct unwinder_opts opts;
    char proc_root[PATH_MAX - 64]; /* room for "/PID/maps" in a PATH_MAX path */
    size_t max_bytes;
    struct uw_bin *bins[BUCKETS];        /* by key */
    struct ino_link *ino_links[BUCKETS]; /* by dev/inode */
    struct uw_bin lru;                   /* unreferenced bins with a table, most recent first */
    struct uw_proc *procs[BUCKETS];
    uint32_t *free_ids;
    uint32_t nfree;
    struct uw_bin *vdso;
    struct unwinder_stats st;
    struct unwind_proc val; /* scratch for one map update (6 KiB) */
};

static size_t key_hash(const char *s)
{
    return (size_t)(hash_str(s) % BUCKETS);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the LRU of unreferenced tables -------------------------------------- */

static void lru_unlink(struct uw_bin *b)
{
    if (b->prev_lru) {
        b->prev_lru->next_lru = b->next_lru;
        b->next_lru->prev_lru = b->prev_lru;
    }
    b->prev_lru = b->next_lru = NULL;
}

static void lru_push(struct unwinder *u, struct uw_bin *b)
{
    b->next_lru = u->lru.next_lru;
    b->prev_lru = &u->lru;
    u->lru.next_lru->prev_lru = b;
    u->lru.next_lru = b;
}

/* ---- bins ---------------------------------------------------------------- */

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static struct uw_bin *find_by_ino(struct unwinder *u, const struct stat *st)
{
    for (struct ino_link *l = u->ino_links[hash64(st->st_dev ^ hash64(st->st_ino)) % BUCKETS]; l;
         l = l->next)
        if (l->dev == st->st_dev && l->ino == st->st_ino && l->size == (uint64_t)st->st_size &&
            l->mtime_ns == mtime_ns(st))
            return l->bin;
    return NULL;
}

/* Tells the walker @b's file by identity (for processes not loaded yet). */
static void publish_file(struct unwinder *u, const struct uw_bin *b, const struct ino_link *l)
{
    struct unwind_file_key k = {.ino = l->ino, .size = l->size};
    struct unwind_file v = {.table = b->id};

    if (u->opts.files_fd < 0 || b->id == STOKE_UW_NO_TABLE)
        return;
    for (int i = 0; i < b->nsegs && v.nsegs < STOKE_UW_FILE_SEGS; i++) {
        const struct uw_seg *s = &b->segs[i];
        if (!s->exec)
            continue;
        v.segs[v.nsegs].off_lo = s->offset & ~0xfffull;
        v.segs[v.nsegs].off_hi = s->offset + s->filesz;
        v.segs[v.nsegs].delta = s->vaddr - s->offset - b->base;
        v.nsegs++;
    }
    if (v.nsegs)
        bpf_map_update_elem(u->opts.files_fd, &k, &v, BPF_ANY);
}

static void add_ino(struct unwinder *u, struct uw_bin *b, const struct stat *st)
{
    struct ino_link *l = calloc(1, sizeof(*l));
    size_t h = hash64(st->st_dev ^ hash64(st->st_ino)) % BUCKETS;

    if (!l)
        return; /* only a lookup shortcut */
    l->dev = st->st_dev;
    l->ino = st->st_ino;
    l->size = (uint64_t)st->st_size;
    l->mtime_ns = mtime_ns(st);
    l->bin = b;
    l->next = u->ino_links[h];
    u->ino_links[h] = l;
    publish_file(u, b, l);
}

/* Eviction is rare: a scan of every chain is fine. */
static void drop_ino_links(struct unwinder *u, struct uw_bin *b)
{
    for (size_t h = 0; h < BUCKETS; h++) {
        struct ino_link **pp = &u->ino_links[h];
        while (*pp) {
            if ((*pp)->bin == b) {
                struct ino_link *l = *pp;
                struct unwind_file_key k = {.ino = l->ino, .size = l->size};
                if (u->opts.files_fd >= 0 && b->id != STOKE_UW_NO_TABLE)
                    bpf_map_delete_elem(u->opts.files_fd, &k);
                *pp = l->next;
                free(l);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

static struct uw_bin *find_by_key(struct unwinder *u, const char *key)
{
    for (struct uw_bin *b = u->bins[key_hash(key)]; b; b = b->next)
        if (strcmp(b->key, key) == 0)
            return b;
    return NULL;
}

/* Removes @b's table from the BPF maps and frees it. */
static void bin_destroy(struct unwinder *u, struct uw_bin *b)
{
    struct uw_bin **pp = &u->bins[key_hash(b->key)];

    while (*pp && *pp != b)
        pp = &(*pp)->next;
    if (*pp)
        *pp = b->next;
    lru_unlink(b);
    drop_ino_links(u, b);
    if (b->id != STOKE_UW_NO_TABLE) {
        bpf_map_delete_elem(u->opts.tables_fd, &b->id);
        u->free_ids[u->nfree++] = b->id;
        u->st.tables_live--;
        u->st.table_bytes -= b->bytes;
        u->st.table_rows -= b->rows;
    }
    if (b->map_fd >= 0)
        close(b->map_fd);
    if (u->vdso == b)
        u->vdso = NULL;
    free(b->segs);
    free(b->hsvm);
    free(b);
}

/* Makes room for @need more bytes by dropping unreferenced tables, least
 * recently used first. */
static bool make_room(struct unwinder *u, size_t need)
{
    while (u->st.table_bytes + need > u->max_bytes && u->lru.prev_lru != &u->lru) {
        bin_destroy(u, u->lru.prev_lru);
        u->st.tables_evicted++;
    }
    return u->st.table_bytes + need <= u->max_bytes;
}

#define UW_WRITE_WINDOW (1u << 20) /* a multiple of the page size and of 8 */

/* A new BPF array for a table of @nelems elements, room made for it among
 * the cached tables: its fd, or a negative errno. */
static int table_map_new(struct unwinder *u, uint32_t nelems)
{
    struct bpf_map_create_opts o = {.sz = sizeof(o), .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE};
    int fd;

    if (u->nfree == 0)
        return -ENOSPC;
    if (!make_room(u, (size_t)nelems * 8)) {
        u->st.over_cap++;
        return -ENOSPC;
    }
    fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "stoke_uw_table", sizeof(__u32), 8, nelems, &o);
    return fd < 0 ? -errno : fd;
}

/* Installs the written array @fd at a free id (closes it on failure). */
static int table_map_install(struct unwinder *u, struct uw_bin *b, int fd, uint32_t nelems,
                             uint32_t nrows)
{
    uint32_t id = u->free_ids[u->nfree - 1];
    int ret;

    if (bpf_map_update_elem(u->opts.tables_fd, &id, &fd, BPF_ANY) != 0) {
        ret = -errno;
        close(fd);
        return ret;
    }
    u->nfree--;
    b->id = id;
    b->map_fd = fd;
    b->bytes = (size_t)nelems * 8;
    b->rows = nrows;
    u->st.tables_live++;
    u->st.table_bytes += b->bytes;
    u->st.table_rows += nrows;
    return 0;
}

/* Lays the table of @rows out straight into a new BPF array (through its
 * mmap: no copy of the table in the agent) and installs it at a free id. */
static int install_table(struct unwinder *u, struct uw_bin *b, const struct uw_rows *rows)
{
    uint32_t nelems;
    size_t bytes;
    int fd, ret;
    void *mem;

    ret = uw_table_size(rows, &nelems);
    if (ret)
        return ret;
    bytes = (size_t)nelems * 8;
    fd = table_map_new(u, nelems);
    if (fd < 0)
        return fd;
    /* through windows of UW_WRITE_WINDOW: mapped, the array is resident in
     * the agent until unmapped (libclang-cpp's 7.9 MB, on top of its rows) */
    for (size_t off = 0; off < bytes; off += UW_WRITE_WINDOW) {
        size_t len = bytes - off < UW_WRITE_WINDOW ? bytes - off : UW_WRITE_WINDOW;
        mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
        if (mem == MAP_FAILED) {
            ret = -errno;
            close(fd);
            return ret;
        }
        b->base = uw_table_write_part(rows, mem, off / 8, len / 8);
        munmap(mem, len);
    }
    return table_map_install(u, b, fd, nelems, (uint32_t)rows->n);
}

/* uw_table_stream_write's sink: elements copied into the array @ctx (an
 * fd) through a mapping of just the pages they go to. */
static int write_elems(void *ctx, uint64_t from, const uint64_t *elems, size_t n)
{
    int fd = *(const int *)ctx;
    uint64_t off = from * 8 & ~(uint64_t)4095, end = (from + n) * 8;
    void *mem = mmap(NULL, end - off, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);

    if (mem == MAP_FAILED)
        return -errno;
    memcpy((char *)mem + (from * 8 - off), elems, n * 8);
    munmap(mem, end - off);
    return 0;
}

/* The table of @elf streamed into a new BPF array: the rows are never all
 * in the agent (see uw_table_stream_open). -ERANGE when the rows do not
 * come in order: then they have to be sorted, held (install_table). */
static int install_streamed(struct unwinder *u, struct uw_bin *b, Elf *elf, bool mapped,
                            struct uw_cfi_stats *st, const char **source)
{
    struct uw_table_stream ts;
    int fd, ret;

    ret = uw_table_stream_open(elf, mapped, &ts);
    *st = ts.cfi;
    *source = ts.source;
    if (ret)
        return ret;
    fd = table_map_new(u, ts.nelems);
    if (fd < 0) {
        uw_table_stream_close(&ts);
        return fd;
    }
    ret = uw_table_stream_write(&ts, write_elems, &fd);
    *st = ts.cfi;
    uw_table_stream_close(&ts);
    if (ret) {
        close(fd);
        return ret;
    }
    b->base = ts.base;
    return table_map_install(u, b, fd, ts.nelems, ts.nrows);
}

static int copy_segments(Elf *elf, struct uw_bin *b)
{
    size_t phnum;

    if (elf_getphdrnum(elf, &phnum) != 0 || phnum == 0)
        return 0;
    if (phnum > 256)
        phnum = 256;
    b->segs = calloc(phnum, sizeof(*b->segs));
    if (!b->segs)
        return -ENOMEM;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        b->segs[b->nsegs++] =
            (struct uw_seg){ph.p_offset, ph.p_vaddr, ph.p_filesz, (ph.p_flags & PF_X) != 0};
    }
    return 0;
}

/* Whether @elf holds V8 (node, libnode.so), and its layout. */
static void v8_bin(struct uw_bin *b, Elf *elf, const char *what, bool mapped)
{
    struct v8_layout l;

    b->v8_ret = v8_detect(elf, &l, mapped);
    if (b->v8_ret == 0) {
        b->v8 = l.bpf;
        log_debug("%s holds V8 %u.%u.%u", what, l.version >> 24, (l.version >> 16) & 0xff,
                  l.version & 0xffff);
    } else if (b->v8_ret == -ENOTSUP) {
        log_info("%s holds a V8 whose layout this agent cannot read (its v8dbg_ metadata lacks "
                 "what the walker needs, or pointer compression): its processes show native "
                 "frames, not their JavaScript functions",
                 what);
    }
}

/* Builds and installs the table of @elf into @b; on failure @b stays a
 * frame-pointer bin. @mapped: @elf is elf_begin(ELF_C_READ_MMAP) of a file,
 * whose pages may be handed back. */
static void bin_build(struct unwinder *u, struct uw_bin *b, Elf *elf, const char *what, bool mapped)
{
    struct uw_rows rows;
    struct uw_cfi_stats st;
    const char *source;
    uint64_t t0 = thread_cpu_ns();
    int ret;

    if (copy_segments(elf, b) != 0)
        return;
    b->py_ret = py_detect(elf, what, &b->py, mapped);
    b->hs_ret = hs_detect(elf, &b->hs, mapped);
    b->hsvm_ret = 1;
    if (b->py_ret == 0)
        log_debug("%s holds CPython 3.%u", what, b->py.minor);
    else if (b->py_ret == -ENOTSUP)
        log_info("%s holds a CPython this agent does not know (3.%u): its processes show "
                 "the interpreter's native frames, not their Python functions",
                 what, b->py.minor);
    v8_bin(b, elf, what, mapped);
    ret = install_streamed(u, b, elf, mapped, &st, &source);
    if (ret == -ERANGE) {
        /* rows out of order (no .eh_frame_hdr, overlapping FDEs): sorted
         * in memory, the whole table held while it is written */
        ret = uw_rows_from_elf(elf, &rows, &st, &source);
        if (ret == 0)
            ret = install_table(u, b, &rows);
        uw_rows_free(&rows);
        u->st.tables_sorted++;
        /* a large table's rows leave a hole in this thread's arena: give it back */
        if (b->bytes > (1u << 20))
            malloc_trim(0);
    }
    if (ret == 0) {
        u->st.tables_built++;
        u->st.unsupported_rows += st.unsupported_rows;
        log_debug("unwind table for %s (%s): %u rows, %zu bytes, %u FDEs (%u malformed)", what,
                  source, b->rows, b->bytes, st.fdes, st.bad_entries);
    }
    if (ret != 0) {
        u->st.tables_failed++;
        log_debug("no unwind table for %s (%s): frame pointers", what, strerror(-ret));
    }
    u->st.build_ns += thread_cpu_ns() - t0;
}

static struct uw_bin *bin_new(struct unwinder *u, const char *key)
{
    struct uw_bin *b = calloc(1, sizeof(*b));
    size_t h = key_hash(key);

    if (!b)
        return NULL;
    snprintf(b->key, sizeof(b->key), "%s", key);
    b->id = STOKE_UW_NO_TABLE;
    b->map_fd = -1;
    b->hs_ret = -ENOENT;
    b->v8_ret = -ENOENT;
    b->next = u->bins[h];
    u->bins[h] = b;
    return b;
}

/* The bin of the file mapped at @ml in @pid, built when new. NULL when the
 * file cannot be opened. */
static struct uw_bin *file_bin(struct unwinder *u, uint32_t pid, const struct sym_map_line *ml,
                               const char *path)
{
    struct uw_bin *b = NULL;
    char bid[41] = "", key[64];
    struct stat st;
    Elf *elf = NULL;
    int fd;

    fd = sym_maps_open(u->proc_root, pid, ml->start, ml->end, path);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0)
        goto out;
    b = find_by_ino(u, &st);
    if (b)
        goto out;
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (!elf || elf_kind(elf) != ELF_K_ELF)
        goto out;
    if (sym_elf_build_id(elf, bid) > 0)
        snprintf(key, sizeof(key), "%s", bid);
    else
        snprintf(key, sizeof(key), "f:%llx:%llx:%llx:%llx", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
                 (unsigned long long)st.st_mtim.tv_sec);
    b = find_by_key(u, key);
    if (!b && (b = bin_new(u, key)) != NULL)
        bin_build(u, b, elf, path, true);
    if (b)
        add_ino(u, b, &st);
out:
    if (elf)
        elf_end(elf);
    close(fd);
    return b;
}

/* The vDSO is the same image in every process on this kernel: ours. */
static struct uw_bin *vdso_bin(struct unwinder *u)
{
    uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    char *maps = NULL, *line, *save;
    size_t len;

    if (u->vdso)
        return u->vdso;
    if (!base || read_file("/proc/self/maps", MAPS_MAX, &maps, &len) != 0)
        return NULL;
    for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct sym_map_line ml;
        if (sym_maps_parse_line(line, strlen(line), &ml) != 0 || ml.start != base)
            continue;
        Elf *elf = elf_memory((char *)base, (size_t)(ml.end - ml.start));
        if (elf && elf_kind(elf) == ELF_K_ELF && (u->vdso = bin_new(u, "[vdso]")) != NULL)
            bin_build(u, u->vdso, elf, "[vdso]", false);
        if (elf)
            elf_end(elf);
        break;
    }
    free(maps);
    return u->vdso;
}

/* ---- processes ------------------------------------------------------------ */

static void bin_ref(struct unwinder *u, struct uw_bin *b)
{
    if (b->refs++ == 0)
        lru_unlink(b);
}

static void bin_unref(struct unwinder *u, struct uw_bin *b)
{
    if (--b->refs > 0)
        return;
    if (b->id == STOKE_UW_NO_TABLE && b != u->vdso)
        bin_destroy(u, b); /* nothing worth caching but the negative answer */
    else
        lru_push(u, b);
}

static struct uw_proc **proc_slot(struct unwinder *u, uint32_t pid)
{
    struct uw_proc **pp = &u->procs[pid % BUCKETS];
    while (*pp && (*pp)->pid != pid)
        pp = &(*pp)->next;
    return pp;
}

static void proc_release(struct unwinder *u, struct uw_proc *p)
{
    for (size_t i = 0; i < p->nbins; i++)
        bin_unref(u, p->bins[i]);
    free(p->bins);
    p->bins = NULL;
    p->nbins = 0;
}

static void proc_forget(struct unwinder *u, struct uw_proc **pp)
{
    struct uw_proc *p = *pp;

    *pp = p->next;
    proc_release(u, p);
    if (p->python)
        u->st.py_procs--;
    if (p->jvm)
        u->st.jvm_procs--;
    if (p->v8)
        u->st.v8_procs--;
    free(p);
    u->st.procs_tracked--;
}

static int read_start_time(struct unwinder *u, uint32_t pid, uint64_t *start)
{
    char path[PATH_MAX], *buf, comm[17];
    size_t len;
    int ret;

    snprintf(path, sizeof(path), "%s/%u/stat", u->proc_root, pid);
    ret = read_file(path, 4096, &buf, &len);
    if (ret)
        return ret == -ENOENT ? -ESRCH : ret;
    ret = procinfo_parse_stat(buf, len, comm, start);
    free(buf);
    return ret;
}

/* Appends a mapping to u->val, merging it into the one before when it
 * continues it with the same table and bias. */
static void add_mapping(struct unwinder *u, uint64_t start, uint64_t end, uint32_t table,
                        uint64_t bias)
{
    struct unwind_proc *v = &u->val;
    uint64_t len = end - start;

    if (len > UINT32_MAX)
        len = UINT32_MAX;
    if (v->nmaps) {
        struct unwind_mapping *last = &v->maps[v->nmaps - 1];
        if (last->table == table && last->start + last->len == start &&
            (table == STOKE_UW_NO_TABLE || last->bias == bias) &&
            (uint64_t)last->len + len <= UINT32_MAX) {
            last->len += (uint32_t)len;
            return;
        }
    }
    if (v->nmaps == STOKE_UW_MAX_MAPPINGS) {
        u->st.mappings_capped++;
        return;
    }
    v->maps[v->nmaps++] =
        (struct unwind_mapping){.start = start, .len = (uint32_t)len, .table = table, .bias = bias};
}

/*
 * The load bias of a mapping of @b at @ml: address - ELF vaddr, from the
 * executable PT_LOAD segment that overlaps it; the kernel maps whole pages,
 * so a segment that starts mid-page (lld, Rust) begins after the mapping's
 * offset (modular arithmetic). The table bias adds the table's base:
 * address - bias = table pc.
 */
static bool load_bias(const struct uw_bin *b, const struct sym_map_line *ml, uint64_t *load)
{
    uint64_t len = ml->end - ml->start;

    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < b->nsegs; i++) {
            const struct uw_seg *s = &b->segs[i];
            if ((pass == 0 && !s->exec) || ml->offset >= s->offset + s->filesz ||
                ml->offset + len <= s->offset)
                continue;
            /* address - ELF vaddr, from the vaddr of the mapping's first byte */
            *load = ml->start - (s->vaddr + ml->offset - s->offset);
            return true;
        }
    }
    return false;
}

static bool mapping_bias(const struct uw_bin *b, const struct sym_map_line *ml, uint64_t *bias)
{
    uint64_t load;

    if (b->id == STOKE_UW_NO_TABLE || !load_bias(b, ml, &load))
        return false;
    *bias = load + b->base;
    return true;
}

static bool is_anon(const struct sym_map_line *ml)
{
    return ml->path_len == 0 || (ml->path_len >= 6 && memcmp(ml->path, "//anon", 6) == 0) ||
           (ml->path_len >= 6 && memcmp(ml->path, "[anon:", 6) == 0);
}

/* ---- HotSpot ---------------------------------------------------------------- */

/* A JVM found before it set up its code cache is tried again this often,
 * for a minute. */
#define JVM_RETRY_MS 500
#define JVM_TRIES    120

/* The introspection tables of @b's libjvm, read through process @pid once
 * per build: 0, or why they cannot be used. */
static int jvm_vm(struct unwinder *u, struct uw_bin *b, uint32_t pid, uint64_t bias,
                  const char *why_path)
{
    struct hs_vm *vm;
    int missing = -1, r;
    char name[96];

    if (b->hsvm_ret <= 0)
        return b->hsvm_ret;
    vm = malloc(sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    r = hs_read_vm(&b->hs, bias, sym_proc_read_cb, &pid, vm, &missing);
    if (r == -EFAULT || r == -ESRCH || r == -ENOMEM) {
        free(vm); /* this process, not the build: the next one may do */
        return r;
    }
    b->hsvm_ret = r;
    if (r == 0) {
        b->hsvm = vm;
        log_debug("%s: HotSpot %u, introspection tables read", why_path, vm->major);
        return 0;
    }
    if (missing == HS_NFIELDS)
        log_info("%s: HotSpot %u is a version the walker does not read (11-22): its processes "
                 "show the JVM's native frames, not their Java methods",
                 why_path, vm->major);
    else
        log_info("%s: HotSpot tables without %s (%s): its processes show the JVM's native "
                 "frames, not their Java methods",
                 why_path, missing >= 0 ? hs_field_name(missing, name, sizeof(name)) : "?",
                 strerror(-r));
    free(vm);
    return r;
}

/* Writes @p's jvm_procs entry for its libjvm @b loaded at @bias, or drops
 * it when @b is NULL. A JVM still starting is tried again (jvm_retry). */
static void jvm_update(struct unwinder *u, struct uw_proc *p, struct uw_bin *b, uint64_t bias)
{
    struct jvm_proc jp;
    uint32_t pid = p->pid;
    int r;

    if (u->opts.jvm_procs_fd < 0)
        return;
    if (!b) {
        if (p->jvm) {
            bpf_map_delete_elem(u->opts.jvm_procs_fd, &pid); /* an exec of something else */
            u->st.jvm_procs--;
        }
        p->jvm = false;
        p->jvm_bin = NULL;
        return;
    }
    r = jvm_vm(u, b, pid, bias, b->key);
    if (r == 0)
        r = hs_read_proc(b->hsvm, bias, sym_proc_read_cb, &pid, &jp);
    if (r == 0 && bpf_map_update_elem(u->opts.jvm_procs_fd, &pid, &jp, BPF_ANY) != 0)
        r = -errno;
    p->jvm_bin = NULL;
    if (r == 0) {
        if (!p->jvm)
            u->st.jvm_procs++;
        p->jvm = true;
        p->jvm_tries = 0;
        return;
    }
    if ((r == -EAGAIN || r == -EFAULT) && p->jvm_tries < JVM_TRIES) {
        p->jvm_bin = b; /* referenced by p: lives as long as p maps it */
        p->jvm_bias = bias;
        p->jvm_retry_at = mono_ms() + JVM_RETRY_MS;
        p->jvm_tries++;
        return;
    }
    if (r != -ESRCH && !p->jvm_tries++) {
        u->st.jvm_unsupported++;
        log_debug("unwind: pid %u: HotSpot code cache not read: %s", pid, strerror(-r));
    }
}

/* Processes whose JVM had not set up its code cache: tried again. */
static void jvm_retry(struct unwinder *u)
{
    uint64_t now = mono_ms();

    for (size_t h = 0; h < BUCKETS; h++)
        for (struct uw_proc *p = u->procs[h]; p; p = p->next)
            if (p->jvm_bin && now >= p->jvm_retry_at)
                jvm_update(u, p, p->jvm_bin, p->jvm_bias);
}

/*
 * A request because a pc fell outside the known mappings is answered by
 * reading the maps again; when they have not changed twice in a row (a pc
 * in memory that is not an executable mapping at all), the process's such
 * requests are ignored for UNMAPPED_BACKOFF_MS.
 */
#define UNMAPPED_BACKOFF_MS 10000

static int load_pid(struct unwinder *u, uint32_t pid, bool unmapped)
{
    char path[PATH_MAX], *buf, *line, *save;
    size_t len, cap = 1;
    struct uw_proc **pp, *p;
    struct uw_bin **bins;
    uint64_t start_time = 0, hash;
    int ret;

    ret = read_start_time(u, pid, &start_time);
    if (ret) {
        u->st.procs_failed++;
        return ret;
    }
    p = *proc_slot(u, pid);
    if (p && p->start_time != start_time)
        p = NULL; /* a new process under a reused pid */
    if (unmapped && p && mono_ms() < p->ignore_until)
        return 0;
    snprintf(path, sizeof(path), "%s/%u/maps", u->proc_root, pid);
    ret = read_file(path, MAPS_MAX, &buf, &len);
    if (ret) {
        u->st.procs_failed++;
        return ret == -ENOENT ? -ESRCH : ret;
    }
    hash = hash_fnv1a(FNV64_OFFSET, buf, len);
    if (unmapped && p && p->maps_hash == hash) {
        if (++p->unchanged >= 2)
            p->ignore_until = mono_ms() + UNMAPPED_BACKOFF_MS;
        free(buf);
        return 0;
    }
    /* one reference per mapping at most: room for one per line, so taking
     * a reference never fails after its mapping was written */
    for (size_t i = 0; i < len; i++)
        cap += buf[i] == '\n';
    bins = malloc(cap * sizeof(*bins));
    if (!bins) {
        free(buf);
        return -ENOMEM;
    }
    size_t nbins = 0;
    struct py_proc py = {0};
    bool py_found = false, py_unknown = false;
    struct uw_bin *jvm_bin = NULL;
    uint64_t jvm_bias = 0;
    struct v8_proc v8 = {0};
    bool v8_found = false, v8_unknown = false;
    u->val.nmaps = 0;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct sym_map_line ml;
        struct uw_bin *b = NULL;
        uint64_t bias = 0;
        char fpath[PATH_MAX];

        if (sym_maps_parse_line(line, strlen(line), &ml) != 0 || !ml.executable)
            continue;
        if (ml.path_len == 6 && memcmp(ml.path, "[vdso]", 6) == 0) {
            b = vdso_bin(u);
        } else if (!is_anon(&ml) && ml.path[0] == '/' && ml.path_len < sizeof(fpath)) {
            memcpy(fpath, ml.path, ml.path_len);
            fpath[ml.path_len] = '\0';
            b = file_bin(u, pid, &ml, fpath);
        }
        if (b && mapping_bias(b, &ml, &bias))
            add_mapping(u, ml.start, ml.end, b->id, bias);
        else
            add_mapping(u, ml.start, ml.end, STOKE_UW_NO_TABLE, 0);
        uint64_t load;
        if (b && b->py_ret == 0 && !py_found && load_bias(b, &ml, &load)) {
            py.runtime = load + b->py.runtime_vaddr;
            py.eval_lo = load + b->py.eval_vaddr;
            py.eval_len = b->py.eval_size;
            py.off = py_version(b->py.minor)->bpf;
            py_found = true;
        }
        py_unknown |= b && b->py_ret == -ENOTSUP;
        if (b && b->hs_ret == 0 && !jvm_bin && load_bias(b, &ml, &load)) {
            jvm_bin = b;
            jvm_bias = load;
        }
        if (b && b->v8_ret == 0 && !v8_found) {
            v8 = b->v8;
            v8_found = true;
        }
        v8_unknown |= b && b->v8_ret == -ENOTSUP;
        if (b && nbins < cap) {
            bin_ref(u, b);
            bins[nbins++] = b;
        }
    }
    free(buf);
    ret = bpf_map_update_elem(u->opts.procs_fd, &pid, &u->val, BPF_ANY) == 0 ? 0 : -errno;
    if (u->opts.py_procs_fd >= 0) {
        if (py_found)
            bpf_map_update_elem(u->opts.py_procs_fd, &pid, &py, BPF_ANY);
        else
            bpf_map_delete_elem(u->opts.py_procs_fd, &pid); /* an exec of something else */
    }
    if (u->opts.v8_procs_fd >= 0) {
        if (v8_found)
            bpf_map_update_elem(u->opts.v8_procs_fd, &pid, &v8, BPF_ANY);
        else
            bpf_map_delete_elem(u->opts.v8_procs_fd, &pid);
    }

    pp = proc_slot(u, pid);
    p = *pp;
    if (!p && (p = calloc(1, sizeof(*p))) != NULL) {
        p->pid = pid;
        p->next = u->procs[pid % BUCKETS];
        u->procs[pid % BUCKETS] = p;
        u->st.procs_tracked++;
    }
    if (!p) {
        for (size_t i = 0; i < nbins; i++)
            bin_unref(u, bins[i]);
        free(bins);
        bpf_map_delete_elem(u->opts.procs_fd, &pid);
        return -ENOMEM;
    }
    /* the old references go after the new ones are taken: a binary both
     * map is never evicted in between */
    proc_release(u, p);
    p->bins = bins;
    p->nbins = nbins;
    p->start_time = start_time;
    p->maps_hash = hash;
    p->unchanged = 0;
    p->ignore_until = 0;
    if (py_found != p->python) {
        u->st.py_procs += py_found ? 1 : -1;
        p->python = py_found;
    }
    u->st.py_unknown += py_unknown && !py_found;
    jvm_update(u, p, jvm_bin, jvm_bias);
    if (v8_found != p->v8) {
        u->st.v8_procs += v8_found ? 1 : -1;
        p->v8 = v8_found;
    }
    u->st.v8_unknown += v8_unknown && !v8_found;
    if (ret == 0)
        u->st.procs_loaded++;
    else
        u->st.procs_failed++;
    return ret;
}

static void sweep(struct unwinder *u)
{
    for (size_t h = 0; h < BUCKETS; h++) {
        struct uw_proc **pp = &u->procs[h];
        while (*pp) {
            uint64_t st;
            if (read_start_time(u, (*pp)->pid, &st) != 0 || st != (*pp)->start_time) {
                /* gone, or the pid reused by a process not loaded yet (a
                 * loaded one would have its own start time here) */
                uint32_t pid = (*pp)->pid;
                bpf_map_delete_elem(u->opts.procs_fd, &pid);
                if (u->opts.py_procs_fd >= 0)
                    bpf_map_delete_elem(u->opts.py_procs_fd, &pid);
                if (u->opts.jvm_procs_fd >= 0)
                    bpf_map_delete_elem(u->opts.jvm_procs_fd, &pid);
                if (u->opts.v8_procs_fd >= 0)
                    bpf_map_delete_elem(u->opts.v8_procs_fd, &pid);
                proc_forget(u, pp);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    make_room(u, 0);
}

int unwinder_load_pid(struct unwinder *u, uint32_t pid)
{
    pthread_mutex_lock(&u->mu);
    int ret = load_pid(u, pid, false);
    pthread_mutex_unlock(&u->mu);
    return ret;
}

void unwinder_sweep(struct unwinder *u)
{
    pthread_mutex_lock(&u->mu);
    sweep(u);
    pthread_mutex_unlock(&u->mu);
}

/* True when a thread of @pid is running now (a main thread asleep while
 * its workers run is the common case). */
static bool any_thread_running(struct unwinder *u, unsigned long pid)
{
    char path[PATH_MAX];
    struct dirent *e;
    bool running = false;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%lu/task", u->proc_root, pid);
    d = opendir(path);
    if (!d)
        return false;
    while (!running && (e = readdir(d)) != NULL) {
        char *buf;
        size_t len;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%lu/task/%.20s/stat", u->proc_root, pid, e->d_name);
        if (read_file(path, 4096, &buf, &len) != 0)
            continue;
        const char *close_p = strrchr(buf, ')'); /* the state follows the last ')' */
        running = close_p && close_p[1] == ' ' && close_p[2] == 'R';
        free(buf);
    }
    closedir(d);
    return running;
}

#define LOAD_RUNNING_MS 1000 /* at most this long before sampling starts */

int unwinder_load_running(struct unwinder *u)
{
    DIR *d = opendir(u->proc_root);
    struct dirent *e;
    uint32_t *pids = NULL;
    size_t npids = 0, cap = 0;
    int n = 0;

    if (!d)
        return -errno;
    /* which processes run now, then load them: the time budget goes to
     * loading, not to the order /proc lists them in */
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX], *buf, comm[17], *end;
        uint64_t flags = 0;
        size_t len;
        unsigned long pid = strtoul(e->d_name, &end, 10);

        if (*end || pid == 0 || pid > UINT32_MAX)
            continue;
        snprintf(path, sizeof(path), "%s/%lu/stat", u->proc_root, pid);
        if (read_file(path, 4096, &buf, &len) != 0)
            continue;
        bool kthread = procinfo_parse_stat_ex(buf, len, comm, NULL, &flags) == 0 &&
                       (flags & 0x00200000); /* PF_KTHREAD */
        free(buf);
        if (kthread || !any_thread_running(u, pid))
            continue;
        if (npids == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            uint32_t *np = realloc(pids, ncap * sizeof(*np));
            if (!np)
                break;
            pids = np;
            cap = ncap;
        }
        pids[npids++] = (uint32_t)pid;
    }
    closedir(d);
    uint64_t until = mono_ms() + LOAD_RUNNING_MS;
    for (size_t i = 0; i < npids && mono_ms() < until; i++)
        n += unwinder_load_pid(u, pids[i]) == 0;
    free(pids);
    return n;
}

static void on_request(uint32_t pid, bool unmapped, void *ctx)
{
    struct unwinder *u = ctx;

    pthread_mutex_lock(&u->mu);
    int r = load_pid(u, pid, unmapped);
    pthread_mutex_unlock(&u->mu);

    if (r != 0 && r != -ESRCH)
        log_debug("unwind: loading pid %u: %s", pid, strerror(-r));
}

static void *run(void *arg)
{
    struct unwinder *u = arg;
    uint64_t last_sweep = mono_ms();

    while (!atomic_load(&u->stop)) {
        if (sampler_poll(u->sampler, 100, on_request, u) < 0) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (mono_ms() - last_sweep >= u->sweep_ms) {
            unwinder_sweep(u);
            last_sweep = mono_ms();
        }
        pthread_mutex_lock(&u->mu);
        jvm_retry(u);
        pthread_mutex_unlock(&u->mu);
    }
    return NULL;
}

int unwinder_start(struct unwinder *u, struct sampler *s, unsigned sweep_ms)
{
    int ret;

    u->sampler = s;
    u->sweep_ms = sweep_ms ? sweep_ms : 10000;
    ret = pthread_create(&u->thread, NULL, run, u);
    if (ret)
        return -ret;
    u->running = true;
    return 0;
}

struct unwinder *unwinder_new(const struct unwinder_opts *opts)
{
    struct unwinder *u = calloc(1, sizeof(*u));

    if (!u)
        return NULL;
    pthread_mutex_init(&u->mu, NULL);
    u->opts = *opts;
    snprintf(u->proc_root, sizeof(u->proc_root), "%s", opts->proc_root ? opts->proc_root : "/proc");
    u->max_bytes = opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES;
    u->lru.next_lru = u->lru.prev_lru = &u->lru;
    u->free_ids = malloc(STOKE_UW_MAX_TABLES * sizeof(*u->free_ids));
    if (!u->free_ids) {
        free(u);
        return NULL;
    }
    for (uint32_t i = 0; i < STOKE_UW_MAX_TABLES; i++)
        u->free_ids[u->nfree++] = STOKE_UW_MAX_TABLES - 1 - i;
    elf_version(EV_CURRENT);
    return u;
}

void unwinder_free(struct unwinder *u)
{
    if (!u)
        return;
    if (u->running) {
        atomic_store(&u->stop, true);
        pthread_join(u->thread, NULL);
    }
    for (size_t h = 0; h < BUCKETS; h++)
        while (u->procs[h])
            proc_forget(u, &u->procs[h]);
    for (size_t h = 0; h < BUCKETS; h++)
        while (u->bins[h])
            bin_destroy(u, u->bins[h]);
    free(u->free_ids);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

void unwinder_get_stats(struct unwinder *u, struct unwinder_stats *out)
{
    pthread_mutex_lock(&u->mu);
    *out = u->st;
    pthread_mutex_unlock(&u->mu);
}
