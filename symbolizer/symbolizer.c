/* SPDX-License-Identifier: Apache-2.0 */
/*
 * symbolizer — the caches behind symbolizer.h.
 *
 * Layout: processes (hash by pid) hold their executable mappings sorted by
 * start; a file mapping points at a struct bin once an address first falls
 * in it. Bins are found by file identity (dev, inode, size, mtime: "alias"
 * entries) and shared by build-id, so the same library in a hundred
 * processes, or in two containers, is parsed once. A bin's light part
 * (identity, build-id, PT_LOAD table) lives as long as a mapping refers to
 * it; its heavy part (symbols, DWARF, per-address results) sits on an LRU
 * list and is dropped when the estimated footprint exceeds max_bytes, then
 * reloaded through a live mapping on demand.
 *
 * Results handed out point into per-address cache blobs, perf maps or the
 * kallsyms arena; eviction only runs at the start of a public call, which is
 * what keeps them valid until the next call.
 */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/hash.h"
#include "symbolizer/build_id.h"
#include "symbolizer/debuginfo.h"
#include "symbolizer/debuginfod.h"
#include "symbolizer/demangle.h"
#include "symbolizer/elf_symtab.h"
#include "symbolizer/kallsyms.h"
#include "symbolizer/offline.h"
#include "symbolizer/perfmap.h"
#include "symbolizer/proc_maps.h"
#include "symbolizer/hotspot.h"
#include "symbolizer/proc_mem.h"
#include "symbolizer/python.h"
#include "common/file.h"
#include "symbolizer/symbolizer.h"
#include "symbolizer/v8.h"

#define DEFAULT_MAX_BYTES    (64u << 20)
#define DEFAULT_SCRATCH_MAX  (1ull << 30)
#define PROC_BUCKETS         1024
#define BIN_BUCKETS          4096
#define MAPS_MAX             (64u << 20)
#define PERFMAP_MAX          (256u << 20)
#define KSYMS_RELOAD_WINDOWS 6
#define DWARF_IDLE_WINDOWS   3
#define PROC_IDLE_WINDOWS    3 /* a process's maps are dropped after this many unused windows */
#define DWARF_KEEP_MAX       (4u << 20)          /* larger DWARF is closed after one idle window */
#define DWARF_DEAR_NS        (20u * 1000 * 1000) /* ... unless opening it cost this much CPU */

enum map_kind { MAP_FILE, MAP_ANON, MAP_VDSO, MAP_OTHER };
enum map_state { MAP_NEW, MAP_BOUND, MAP_FAILED };

struct lru {
    struct lru *prev, *next;
};

/* One cached answer: frames whose strings follow in the same allocation. */
struct cres {
    uint32_t nframes;
    uint32_t bytes;
    struct sym_frame frames[];
};

struct addr_cache {
    uint64_t *keys;
    struct cres **vals; /* NULL = empty slot */
    size_t cap, used, bytes;
};

struct alias {
    struct alias *next;     /* hash chain */
    struct alias *bin_next; /* the bin's list of aliases */
    uint64_t dev, ino, size;
    int64_t mtime_ns;
    struct bin *bin;
};

struct bin {
    struct bin *next; /* hash chain by key */
    char key[64];     /* build-id, or "f:dev:ino:size:mtime" */
    char build_id[41];
    int py_minor;         /* the CPython it holds (unwind/python.h), 0: none */
    struct hs_syms *hs;   /* a libjvm: its introspection tables' symbols */
    struct v8_layout *v8; /* the V8 it holds (unwind/v8.h), NULL: none */
    bool is_vdso;
    bool loaded;
    bool dbgd_pending; /* its debug file is being fetched (opts.dbgd) */
    unsigned refs;     /* mappings pointing here */
    struct alias *aliases;
    struct sym_elf_seg *segs;
    int nsegs;
    /* heavy part */
    struct sym_symtab symtab;
    struct sym_dwarf dwarf;
    /* DWARF is opened on the first cache miss and closed again when no miss
     * needed it for DWARF_IDLE_WINDOWS: libdw decompresses and indexes the
     * debug sections in the heap (18 MB for libc's), while a steady
     * workload's addresses are answered from the per-address cache. Large
     * DWARF is closed after one window in which no lookup needed it, small
     * DWARF and large DWARF that had to be reopened once after
     * DWARF_IDLE_WINDOWS: reopening costs ~40 ms of CPU for libc's, so a
     * DWARF file in steady use stays open. */
    int dwarf_fd;           /* where to reopen it from; -1 = no DWARF */
    size_t scratch_bytes;   /* dwarf_fd is an inflated copy of this size */
    uint64_t dwarf_window;  /* the last window a lookup used it */
    unsigned dwarf_opens;   /* times opened: a file reopened is in steady use */
    uint64_t dwarf_open_ns; /* CPU the last open took */
    uint64_t used_window;   /* the last window a lookup touched this binary */
    struct addr_cache ac;
    size_t heavy_bytes;
    struct lru lru;
};

struct pmap {
    uint64_t start, end, off;
    uint64_t dev, ino;
    uint8_t kind, state;
    struct bin *bin;
    const char *path; /* into proc->paths */
};

struct proc {
    struct proc *next;
    uint32_t pid;
    uint64_t start_time;
    uint64_t read_window;
    uint64_t used_window; /* the last window a lookup came for it */
    struct pmap *maps;
    size_t nmaps;
    char *paths;
    size_t bytes;
    /* JIT perf map, loaded when an address first falls in anon memory */
    struct sym_perfmap pm;
    bool pm_loaded;
    off_t pm_size;
    uint64_t pm_window;
    /* CPython: the version its interpreter binary says (0: not looked for
     * yet, -1: none), and the code objects named so far */
    int py_minor;
    struct sym_pycache *py;
    size_t py_bytes;
    /* HotSpot: its libjvm's tables (0: not looked for yet, -1: none, 1:
     * read), and the methods named so far */
    int jvm_state;
    struct hs_vm *jvm_vm;
    uint64_t jvm_bias;
    struct sym_jvm *jvm;
    long jvm_bytes;
    /* V8: the layout its binary (node, libnode) describes (v8_state 0: not
     * looked for yet, 1: found, -1: none), and the functions named so far */
    int v8_state;
    struct v8_layout v8;
    struct sym_v8cache *v8c;
    size_t v8_bytes;
};

struct symbolizer {
    struct symbolizer_opts opts;
    char *debug_dirs, *proc_root, *kallsyms_path, *scratch_dir;
    size_t max_bytes;
    size_t scratch_max, scratch_bytes;
    uint64_t evict_stuck_window; /* evict() found nothing idle to drop */
    uint64_t window;
    struct proc *procs[PROC_BUCKETS];
    struct bin *bins[BIN_BUCKETS];
    struct alias *aliases[BIN_BUCKETS];
    struct lru lru; /* head.next = most recently used */
    struct bin *vdso;
    struct sym_kallsyms ksyms;
    uint64_t dbgd_gen; /* the debuginfod generation last looked at */
    bool ksyms_loaded, ksyms_missed;
    int ksyms_err;
    uint64_t ksyms_window;
    size_t fixed_bytes; /* procs + perf maps + kallsyms */
    size_t heavy_bytes; /* sum over loaded bins */
    struct sym_stats st;
};

/* ---- small helpers ---------------------------------------------------- */

static void lru_unlink(struct lru *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static void lru_push(struct lru *head, struct lru *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

#define BIN_OF(l) ((struct bin *)((char *)(l)-offsetof(struct bin, lru)))

/* ---- per-address cache ------------------------------------------------ */

static struct cres *ac_get(const struct addr_cache *ac, uint64_t key)
{
    if (!ac->cap)
        return NULL;
    for (size_t i = hash64(key) & (ac->cap - 1);; i = (i + 1) & (ac->cap - 1)) {
        if (!ac->vals[i])
            return NULL;
        if (ac->keys[i] == key)
            return ac->vals[i];
    }
}

static int ac_put(struct addr_cache *ac, uint64_t key, struct cres *v)
{
    if ((ac->used + 1) * 10 > ac->cap * 7) {
        size_t ncap = ac->cap ? ac->cap * 2 : 256;
        uint64_t *nk = calloc(ncap, sizeof(*nk));
        struct cres **nv = calloc(ncap, sizeof(*nv));
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return -ENOMEM;
        }
        for (size_t i = 0; i < ac->cap; i++) {
            if (!ac->vals[i])
                continue;
            size_t j = hash64(ac->keys[i]) & (ncap - 1);
            while (nv[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = ac->keys[i];
            nv[j] = ac->vals[i];
        }
        free(ac->keys);
        free(ac->vals);
        ac->bytes += (ncap - ac->cap) * (sizeof(*nk) + sizeof(*nv));
        ac->keys = nk;
        ac->vals = nv;
        ac->cap = ncap;
    }
    size_t i = hash64(key) & (ac->cap - 1);
    while (ac->vals[i])
        i = (i + 1) & (ac->cap - 1);
    ac->keys[i] = key;
    ac->vals[i] = v;
    ac->used++;
    ac->bytes += v->bytes;
    return 0;
}

static void ac_free(struct addr_cache *ac)
{
    for (size_t i = 0; i < ac->cap; i++)
        free(ac->vals[i]);
    free(ac->keys);
    free(ac->vals);
    memset(ac, 0, sizeof(*ac));
}

/* ---- bins ---------------------------------------------------------------- */

static void bin_account(struct symbolizer *s, struct bin *b)
{
    size_t now = b->loaded ? sym_symtab_bytes(&b->symtab) + b->dwarf.est_bytes + b->ac.bytes : 0;
    s->heavy_bytes = s->heavy_bytes - b->heavy_bytes + now;
    b->heavy_bytes = now;
}

static void close_dwarf_fd(struct symbolizer *s, struct bin *b)
{
    if (b->dwarf_fd >= 0)
        close(b->dwarf_fd);
    b->dwarf_fd = -1;
    s->scratch_bytes -= b->scratch_bytes;
    b->scratch_bytes = 0;
}

static void bin_unload(struct symbolizer *s, struct bin *b)
{
    /* The analyzer cannot follow the LRU's links: a bin is on the list iff it
     * is loaded and leaves it here, so evict() never reaches a freed bin. */
    if (!b->loaded) /* NOLINT(clang-analyzer-unix.Malloc) */
        return;
    sym_symtab_free(&b->symtab);
    sym_dwarf_close(&b->dwarf);
    close_dwarf_fd(s, b);
    ac_free(&b->ac);
    b->loaded = false;
    lru_unlink(&b->lru);
    bin_account(s, b);
}

static void bin_destroy(struct symbolizer *s, struct bin *b)
{
    bin_unload(s, b);
    free(b->hs);
    for (struct alias *a = b->aliases, *an; a; a = an) {
        an = a->bin_next;
        struct alias **pp = &s->aliases[hash64(a->dev ^ hash64(a->ino)) % BIN_BUCKETS];
        while (*pp && *pp != a)
            pp = &(*pp)->next;
        if (*pp)
            *pp = a->next;
        free(a);
    }
    struct bin **pp = &s->bins[hash_str(b->key) % BIN_BUCKETS];
    while (*pp && *pp != b)
        pp = &(*pp)->next;
    if (*pp)
        *pp = b->next;
    if (s->vdso == b)
        s->vdso = NULL;
    free(b->v8);
    free(b->segs);
    free(b);
}

static void bin_unref(struct symbolizer *s, struct bin *b)
{
    if (--b->refs == 0 && !b->loaded)
        bin_destroy(s, b);
}

static bool over(const struct symbolizer *s, size_t cap)
{
    return s->heavy_bytes + s->fixed_bytes > cap;
}

static void evict_bin(struct symbolizer *s, struct bin *b)
{
    bin_unload(s, b);
    s->st.binaries_evicted++;
    if (b->refs == 0)
        bin_destroy(s, b);
}

/*
 * Keeps the caches under max_bytes, least recently used first, in three
 * passes: DWARF handles of binaries this window has not touched (the
 * largest part, and reopened on demand), then those binaries whole. What
 * this window uses stays, so one drain whose working set exceeds the cap
 * does not reload the same binary row after row; it may hold up to
 * HARD_CAP (1.25x the cap) until the window ends, and beyond that anything
 * goes. (Not more: max_bytes is what keeps the agent's RSS in its budget,
 * and reopening DWARF is cheap since the scratch copies.)
 */
#define HARD_CAP(s) ((s)->max_bytes + (s)->max_bytes / 4)

static void evict(struct symbolizer *s)
{
    struct lru *l, *prev;

    if (!over(s, s->max_bytes))
        return;
    /* Everything left is in use this window: don't walk the list on every
     * lookup until the window ends or the hard limit is reached. */
    if (s->evict_stuck_window == s->window && !over(s, HARD_CAP(s)))
        return;
    for (l = s->lru.prev; over(s, s->max_bytes) && l != &s->lru; l = l->prev) {
        struct bin *b = BIN_OF(l);
        if (b->used_window != s->window && b->dwarf.dw) {
            sym_dwarf_close(&b->dwarf);
            bin_account(s, b);
        }
    }
    for (l = s->lru.prev; over(s, s->max_bytes) && l != &s->lru; l = prev) {
        prev = l->prev;
        if (BIN_OF(l)->used_window != s->window)
            evict_bin(s, BIN_OF(l));
    }
    while (over(s, HARD_CAP(s)) && s->lru.prev != &s->lru)
        evict_bin(s, BIN_OF(s->lru.prev));
    if (!over(s, HARD_CAP(s))) {
        if (over(s, s->max_bytes))
            s->evict_stuck_window = s->window;
        return;
    }
    /* Only perf maps are left to shed; they are re-read on demand. */
    for (size_t i = 0; i < PROC_BUCKETS; i++) {
        for (struct proc *p = s->procs[i]; p; p = p->next) {
            if (!p->pm_loaded)
                continue;
            s->fixed_bytes -= sym_perfmap_bytes(&p->pm);
            sym_perfmap_free(&p->pm);
            p->pm_loaded = false;
        }
    }
}

/* Builds the heavy part from the main ELF (@elf) and its separate debug
 * file, if any. @root_prefix/@path locate debuglink candidates. */
static void bin_load_elf(struct symbolizer *s, struct bin *b, Elf *elf, int fd,
                         const char *root_prefix, const char *path)
{
    int dfd = -1, ret;

    memset(&b->symtab, 0, sizeof(b->symtab));
    memset(&b->dwarf, 0, sizeof(b->dwarf));
    b->dwarf.scratch_fd = -1;
    b->dwarf_fd = -1;
    b->scratch_bytes = 0;
    if (sym_symtab_add_mapped_elf(&b->symtab, elf, fd >= 0) < 0)
        s->st.bad_binaries++;
    b->dbgd_pending = false;
    if (!b->is_vdso)
        dfd = sym_debuginfo_find(s->debug_dirs, b->build_id, elf, root_prefix, path);
    if (dfd < 0 && s->opts.dbgd && !b->is_vdso && b->build_id[0] && !sym_elf_has_debug_info(elf)) {
        /* never waits: the file is on disk already, or it is queued */
        int r = sym_dbgd_open(s->opts.dbgd, b->build_id);
        if (r >= 0)
            dfd = r;
        else
            b->dbgd_pending = r == -EAGAIN || r == -EBUSY;
    }
    Elf *delf = NULL;
    if (dfd >= 0) {
        delf = elf_begin(dfd, ELF_C_READ_MMAP, NULL);
        if (delf)
            sym_symtab_add_mapped_elf(&b->symtab, delf, true);
        if (s->opts.no_dwarf)
            close(dfd);
        else
            b->dwarf_fd = dfd;
    } else if (!s->opts.no_dwarf && fd >= 0 && sym_elf_has_debug_info(elf)) {
        b->dwarf_fd = dup(fd);
    }
    (void)ret;
    sym_symtab_finish(&b->symtab); /* reads the names: before the files close */
    if (delf)
        elf_end(delf);
    b->loaded = true;
    lru_push(&s->lru, &b->lru);
    bin_account(s, b);
    s->st.binaries_loaded++;
}

/* The vDSO is the same image in every process on this kernel: read ours. */
static int vdso_image(void **img, size_t *len)
{
    uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    char *maps, *line, *save;
    size_t mlen;
    int ret = -ENOENT;

    *img = NULL;
    if (!base || read_file("/proc/self/maps", MAPS_MAX, &maps, &mlen) != 0)
        return -ENOENT;
    for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct sym_map_line ml;
        if (sym_maps_parse_line(line, strlen(line), &ml) == 0 && ml.start == base &&
            ml.path_len == 6 && memcmp(ml.path, "[vdso]", 6) == 0) {
            *len = (size_t)(ml.end - ml.start);
            *img = malloc(*len);
            if (*img) {
                memcpy(*img, (const void *)base, *len);
                ret = 0;
            } else {
                ret = -ENOMEM;
            }
            break;
        }
    }
    free(maps);
    return ret;
}

static void vdso_load(struct symbolizer *s, struct bin *b)
{
    void *img;
    size_t len;
    Elf *elf;

    if (vdso_image(&img, &len) != 0)
        return;
    elf = elf_memory(img, len);
    if (elf && elf_kind(elf) == ELF_K_ELF) {
        if (!b->segs) {
            sym_elf_build_id(elf, b->build_id);
            int n = sym_elf_segments(elf, &b->segs);
            b->nsegs = n > 0 ? n : 0;
        }
        bin_load_elf(s, b, elf, -1, "", NULL);
    }
    if (elf)
        elf_end(elf);
    free(img);
}

static struct bin *vdso_bin(struct symbolizer *s)
{
    if (!s->vdso) {
        struct bin *b = calloc(1, sizeof(*b));
        if (!b)
            return NULL;
        b->lru.prev = b->lru.next = &b->lru;
        b->is_vdso = true;
        strcpy(b->key, "[vdso]");
        b->next = s->bins[hash_str(b->key) % BIN_BUCKETS];
        s->bins[hash_str(b->key) % BIN_BUCKETS] = b;
        s->vdso = b;
        vdso_load(s, b);
    }
    return s->vdso;
}

static struct bin *bin_find_key(struct symbolizer *s, const char *key)
{
    for (struct bin *b = s->bins[hash_str(key) % BIN_BUCKETS]; b; b = b->next)
        if (strcmp(b->key, key) == 0)
            return b;
    return NULL;
}

static int add_alias(struct symbolizer *s, struct bin *b, const struct stat *st)
{
    struct alias *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->dev = st->st_dev;
    a->ino = st->st_ino;
    a->size = (uint64_t)st->st_size;
    a->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    a->bin = b;
    size_t h = hash64(a->dev ^ hash64(a->ino)) % BIN_BUCKETS;
    a->next = s->aliases[h];
    s->aliases[h] = a;
    a->bin_next = b->aliases;
    b->aliases = a;
    return 0;
}

static struct bin *find_alias(struct symbolizer *s, const struct stat *st)
{
    int64_t mt = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    for (struct alias *a = s->aliases[hash64(st->st_dev ^ hash64(st->st_ino)) % BIN_BUCKETS]; a;
         a = a->next)
        if (a->dev == st->st_dev && a->ino == st->st_ino && a->size == (uint64_t)st->st_size &&
            a->mtime_ns == mt)
            return a->bin;
    return NULL;
}

/* Binds a file mapping to its bin, parsing the binary when it is new to
 * this host, and reloads an evicted heavy part. NULL when the file cannot be
 * opened or is not ELF. */
/* A libjvm exports its introspection tables: kept to read them per process. */
static void bin_detect_jvm(struct bin *b, Elf *elf)
{
    struct hs_syms sy;

    if (hs_detect(elf, &sy, true) != 0)
        return;
    b->hs = malloc(sizeof(*b->hs));
    if (b->hs)
        *b->hs = sy;
}

static struct bin *map_bin(struct symbolizer *s, struct proc *p, struct pmap *m)
{
    char root_prefix[PATH_MAX];
    struct stat st;
    struct bin *b = m->bin;
    Elf *elf = NULL;
    int fd;

    if (m->kind == MAP_VDSO) {
        if (!m->bin && (b = vdso_bin(s)) != NULL) {
            m->bin = b;
            b->refs++;
            m->state = MAP_BOUND;
        }
        if (b && !b->loaded)
            vdso_load(s, b);
        return b;
    }
    if (m->state == MAP_FAILED || (b && b->loaded))
        return b;

    fd = sym_maps_open(s->proc_root, p->pid, m->start, m->end, m->path);
    if (fd < 0) {
        if (!b)
            m->state = MAP_FAILED;
        return b;
    }
    snprintf(root_prefix, sizeof(root_prefix), "%s/%u/root", s->proc_root, p->pid);
    if (!b) {
        if (fstat(fd, &st) != 0)
            goto fail;
        b = find_alias(s, &st);
        if (b && b->loaded)
            goto bind;
        if (!b) {
            char bid[41] = "", key[64];
            elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
            if (!elf || elf_kind(elf) != ELF_K_ELF) {
                s->st.bad_binaries++;
                goto fail;
            }
            if (sym_elf_build_id(elf, bid) > 0)
                snprintf(key, sizeof(key), "%s", bid);
            else
                snprintf(key, sizeof(key), "f:%llx:%llx:%llx:%llx", (unsigned long long)st.st_dev,
                         (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
                         (unsigned long long)st.st_mtim.tv_sec);
            b = bin_find_key(s, key);
            if (!b) {
                b = calloc(1, sizeof(*b));
                if (!b)
                    goto fail;
                b->lru.prev = b->lru.next = &b->lru;
                memcpy(b->key, key, sizeof(key));
                memcpy(b->build_id, bid, sizeof(bid));
                int n = sym_elf_segments(elf, &b->segs);
                b->nsegs = n > 0 ? n : 0;
                struct py_runtime py;
                if (py_detect(elf, m->path, &py, true) == 0)
                    b->py_minor = (int)py.minor;
                bin_detect_jvm(b, elf);
                struct v8_layout v8;
                if (v8_detect(elf, &v8, true) == 0 && (b->v8 = malloc(sizeof(v8))) != NULL)
                    *b->v8 = v8;
                size_t h = hash_str(key) % BIN_BUCKETS;
                b->next = s->bins[h];
                s->bins[h] = b;
            }
            if (add_alias(s, b, &st) != 0 && b->refs == 0 && !b->loaded) {
                bin_destroy(s, b);
                goto fail;
            }
        }
    bind:
        m->bin = b;
        m->state = MAP_BOUND;
        /* every path here has a bin: the NULL ones jumped to fail */
        // cppcheck-suppress nullPointerRedundantCheck
        b->refs++;
    }
    // cppcheck-suppress nullPointerRedundantCheck
    if (!b->loaded) {
        if (!elf)
            elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (elf && elf_kind(elf) == ELF_K_ELF)
            bin_load_elf(s, b, elf, fd, root_prefix, m->path);
    }
    if (elf)
        elf_end(elf);
    close(fd);
    return b;
fail:
    if (elf)
        elf_end(elf);
    close(fd);
    m->state = MAP_FAILED;
    return NULL;
}

/* ---- processes --------------------------------------------------------- */

static void proc_free_maps(struct symbolizer *s, struct proc *p)
{
    for (size_t i = 0; i < p->nmaps; i++)
        if (p->maps[i].bin)
            bin_unref(s, p->maps[i].bin);
    free(p->maps);
    free(p->paths);
    p->maps = NULL;
    p->paths = NULL;
    p->nmaps = 0;
    s->fixed_bytes -= p->bytes;
    p->bytes = 0;
}

static void proc_destroy(struct symbolizer *s, struct proc *p)
{
    proc_free_maps(s, p);
    sym_pycache_free(p->py);
    s->fixed_bytes -= p->py_bytes;
    sym_jvm_free(p->jvm);
    free(p->jvm_vm);
    s->fixed_bytes -= (size_t)p->jvm_bytes;
    sym_v8cache_free(p->v8c);
    s->fixed_bytes -= p->v8_bytes;
    if (p->pm_loaded)
        s->fixed_bytes -= sym_perfmap_bytes(&p->pm);
    sym_perfmap_free(&p->pm);
    free(p);
}

static enum map_kind classify(const struct sym_map_line *ml)
{
    if (ml->path_len == 0)
        return MAP_ANON;
    if (ml->path[0] == '/')
        return (ml->path_len >= 6 && memcmp(ml->path, "//anon", 6) == 0) ? MAP_ANON : MAP_FILE;
    if (ml->path_len == 6 && memcmp(ml->path, "[vdso]", 6) == 0)
        return MAP_VDSO;
    if (ml->path_len >= 6 && memcmp(ml->path, "[anon:", 6) == 0)
        return MAP_ANON;
    return MAP_OTHER;
}

static const struct pmap *find_old(const struct pmap *maps, size_t n, uint64_t start)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (maps[mid].start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && maps[lo].start == start ? &maps[lo] : NULL;
}

/* (Re-)reads /proc/PID/maps, keeping only executable mappings; bins of
 * mappings that did not change are carried over. */
static int proc_read_maps(struct symbolizer *s, struct proc *p)
{
    char path[PATH_MAX], *buf, *line, *save;
    size_t len, n = 0, cap = 16, plen = 0;
    struct pmap *maps;
    int ret;

    snprintf(path, sizeof(path), "%s/%u/maps", s->proc_root, p->pid);
    p->read_window = s->window;
    s->st.maps_reads++;
    ret = read_file(path, MAPS_MAX, &buf, &len);
    if (ret)
        return ret == -ENOENT ? -ESRCH : ret;
    maps = malloc(cap * sizeof(*maps));
    char *paths = malloc(len + 64);
    if (!maps || !paths) {
        free(maps);
        free(paths);
        free(buf);
        return -ENOMEM;
    }
    memcpy(paths, "[anon]", 7);
    plen = 7;
    for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct sym_map_line ml;
        if (sym_maps_parse_line(line, strlen(line), &ml) != 0 || !ml.executable)
            continue;
        if (n && ml.start < maps[n - 1].end)
            continue; /* maps is sorted by the kernel; refuse overlaps */
        if (n == cap) {
            struct pmap *nm = realloc(maps, cap * 2 * sizeof(*maps));
            if (!nm) {
                ret = -ENOMEM;
                break;
            }
            maps = nm;
            cap *= 2;
        }
        struct pmap *m = &maps[n++];
        memset(m, 0, sizeof(*m));
        m->start = ml.start;
        m->end = ml.end;
        m->off = ml.offset;
        m->dev = ((uint64_t)ml.dev_major << 32) | ml.dev_minor;
        m->ino = ml.inode;
        m->kind = (uint8_t)classify(&ml);
        if (m->kind == MAP_ANON) {
            m->path = paths; /* "[anon]" */
        } else {
            /* Each path is at most its line, and paths has room for all. */
            memcpy(paths + plen, ml.path, ml.path_len);
            paths[plen + ml.path_len] = '\0';
            m->path = (const char *)(uintptr_t)plen; /* fixed up below */
            plen += ml.path_len + 1;
        }
    }
    free(buf);
    if (ret) {
        free(maps);
        free(paths);
        return ret;
    }
    for (size_t i = 0; i < n; i++) {
        struct pmap *m = &maps[i];
        if (m->kind != MAP_ANON)
            m->path = paths + (uintptr_t)m->path;
        const struct pmap *old = find_old(p->maps, p->nmaps, m->start);
        if (old && old->end == m->end && old->off == m->off && old->ino == m->ino &&
            old->dev == m->dev && old->kind == m->kind && old->state != MAP_NEW) {
            m->state = old->state;
            m->bin = old->bin;
            if (m->bin)
                m->bin->refs++;
        }
    }
    proc_free_maps(s, p);
    p->maps = maps;
    p->nmaps = n;
    p->paths = paths;
    p->bytes = sizeof(*p) + cap * sizeof(*maps) + len + 64;
    s->fixed_bytes += p->bytes;
    return 0;
}

static struct pmap *proc_find_map(struct proc *p, uint64_t addr)
{
    size_t lo = 0, hi = p->nmaps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->maps[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || addr >= p->maps[lo - 1].end)
        return NULL;
    return &p->maps[lo - 1];
}

static struct proc **proc_slot(struct symbolizer *s, uint32_t pid)
{
    struct proc **pp = &s->procs[pid % PROC_BUCKETS];
    while (*pp && (*pp)->pid != pid)
        pp = &(*pp)->next;
    return pp;
}

static int proc_get(struct symbolizer *s, uint32_t pid, uint64_t start_time, struct proc **out)
{
    struct proc **pp = proc_slot(s, pid), *p = *pp;
    int ret;

    if (p && start_time && p->start_time && p->start_time != start_time) {
        *pp = p->next;
        proc_destroy(s, p);
        p = NULL;
    }
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return -ENOMEM;
        p->pid = pid;
        p->start_time = start_time;
        ret = proc_read_maps(s, p);
        if (ret) {
            free(p);
            if (ret == -ESRCH)
                s->st.proc_gone++;
            return ret;
        }
        pp = proc_slot(s, pid);
        p->next = *pp;
        *pp = p;
    }
    p->used_window = s->window;
    *out = p;
    return 0;
}

/* ---- perf maps --------------------------------------------------------- */

/* The pid the process sees itself as (last NSpid field): a JIT inside a
 * container names its map after that one. */
static uint32_t ns_pid(struct symbolizer *s, uint32_t pid)
{
    char path[PATH_MAX], *buf;
    size_t len;
    uint32_t ret = pid;

    snprintf(path, sizeof(path), "%s/%u/status", s->proc_root, pid);
    if (read_file(path, 1 << 20, &buf, &len) != 0)
        return pid;
    char *l = strstr(buf, "\nNSpid:");
    if (l) {
        char *end = strchr(l + 1, '\n'), *q = l + 7;
        while (q && *q && q != end) {
            char *e;
            unsigned long v = strtoul(q, &e, 10);
            if (e == q)
                break;
            if (v && v <= UINT32_MAX)
                ret = (uint32_t)v;
            q = e;
        }
    }
    free(buf);
    return ret;
}

static void perfmap_refresh(struct symbolizer *s, struct proc *p)
{
    char path[PATH_MAX], *buf;
    struct stat st;
    size_t len;

    if (p->pm_window == s->window && p->pm_loaded)
        return;
    p->pm_window = s->window;
    snprintf(path, sizeof(path), "%s/%u/root/tmp/perf-%u.map", s->proc_root, p->pid,
             ns_pid(s, p->pid));
    if (stat(path, &st) != 0 || (p->pm_loaded && st.st_size == p->pm_size))
        return;
    if (read_file(path, PERFMAP_MAX, &buf, &len) != 0)
        return;
    if (p->pm_loaded)
        s->fixed_bytes -= sym_perfmap_bytes(&p->pm);
    sym_perfmap_free(&p->pm);
    if (sym_perfmap_parse(&p->pm, buf, len) != 0)
        sym_perfmap_free(&p->pm);
    free(buf);
    p->pm_loaded = true;
    p->pm_size = st.st_size;
    s->fixed_bytes += sym_perfmap_bytes(&p->pm);
}

/* ---- resolution -------------------------------------------------------- */

/* Copies frames and their strings into one allocation. */
static struct cres *cres_build(const struct sym_raw_frame *raw, int n)
{
    char *dem[SYM_MAX_FRAMES] = {0};
    const char *names[SYM_MAX_FRAMES];
    size_t need = sizeof(struct cres) + (size_t)n * sizeof(struct sym_frame);

    for (int i = 0; i < n; i++) {
        dem[i] = sym_demangle(raw[i].name);
        names[i] = dem[i] ? dem[i] : raw[i].name;
        need += strlen(names[i]) + 1 + (raw[i].file ? strlen(raw[i].file) + 1 : 0);
    }
    struct cres *r = malloc(need);
    if (r) {
        char *w = (char *)&r->frames[n];
        r->nframes = (uint32_t)n;
        r->bytes = (uint32_t)(need < UINT32_MAX ? need : UINT32_MAX);
        for (int i = 0; i < n; i++) {
            size_t l = strlen(names[i]) + 1;
            memcpy(w, names[i], l);
            r->frames[i].function = w;
            w += l;
            r->frames[i].file = NULL;
            if (raw[i].file) {
                l = strlen(raw[i].file) + 1;
                memcpy(w, raw[i].file, l);
                r->frames[i].file = w;
                w += l;
            }
            r->frames[i].line = raw[i].line;
        }
    }
    for (int i = 0; i < n; i++)
        free(dem[i]);
    return r;
}

/* Opens the bin's DWARF if it has some and it is not open. */
static void dwarf_ensure(struct symbolizer *s, struct bin *b)
{
    b->dwarf_window = s->window;
    if (b->dwarf.dw || b->dwarf_fd < 0)
        return;
    struct timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    int fd = dup(b->dwarf_fd);
    struct sym_dwarf_scratch sc = {
        .dir = s->scratch_dir,
        .max_bytes = s->scratch_max > s->scratch_bytes ? s->scratch_max - s->scratch_bytes : 0,
    };
    int ret = fd >= 0 ? sym_dwarf_open(fd, &sc, &b->dwarf) : -errno;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    b->dwarf_open_ns =
        (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    s->st.dwarf_open_ns += b->dwarf_open_ns;
    s->st.dwarf_opens++;
    if (b->dwarf_opens++)
        s->st.dwarf_reopens++;
    if (ret < 0) {
        /* Not DWARF after all, or broken: never try again. */
        if (ret == -EBADMSG)
            s->st.bad_binaries++;
        close_dwarf_fd(s, b);
    } else if (b->dwarf.scratch_fd >= 0) {
        /* Reopen from the inflated copy from now on: no inflating again. */
        close_dwarf_fd(s, b);
        b->dwarf_fd = b->dwarf.scratch_fd;
        b->dwarf.scratch_fd = -1;
        b->scratch_bytes = b->dwarf.scratch_bytes;
        s->scratch_bytes += b->scratch_bytes;
    } else if (b->dwarf.heap_sections) {
        s->st.dwarf_heap_inflated++;
    }
    bin_account(s, b);
}

static struct cres *resolve_vaddr(struct symbolizer *s, struct bin *b, uint64_t vaddr)
{
    struct sym_raw_frame raw[SYM_MAX_FRAMES];

    dwarf_ensure(s, b);
    return cres_build(raw, sym_frames_at(&b->symtab, &b->dwarf, vaddr, raw, SYM_MAX_FRAMES));
}

static void fill(struct sym_result *out, const struct cres *r)
{
    out->nframes = r->nframes;
    memcpy(out->frames, r->frames, r->nframes * sizeof(struct sym_frame));
}

static int finish(struct symbolizer *s, struct sym_result *out)
{
    if (out->nframes)
        s->st.resolved++;
    else
        s->st.unresolved++;
    return 0;
}

/* The CPython version process @p runs: its interpreter binary tells,
 * looked for once: first among files named like it (python3.X,
 * libpython3.X.so), then among the others (an interpreter renamed, an
 * application's own launcher linking it statically). */
static int proc_py_minor(struct symbolizer *s, struct proc *p)
{
    if (p->py_minor)
        return p->py_minor;
    p->py_minor = -1;
    for (int pass = 0; pass < 2 && p->py_minor < 0; pass++)
        for (size_t i = 0; i < p->nmaps; i++) {
            struct pmap *m = &p->maps[i];
            const char *base = m->kind == MAP_FILE ? strrchr(m->path, '/') : NULL;
            if (!base || (strstr(base, "python") != NULL) != (pass == 0))
                continue;
            struct bin *b = map_bin(s, p, m);
            if (b && b->py_minor) {
                p->py_minor = b->py_minor;
                break;
            }
        }
    return p->py_minor;
}

/* A CPython frame of the BPF walker: named by its code object. */
static int python_frame(struct symbolizer *s, uint32_t pid, uint64_t start_time, uint64_t frame,
                        struct sym_result *out)
{
    const struct py_version *v;
    struct sym_pyname name;
    struct proc *p;
    int ret;

    out->mapping = "[python]";
    out->file_offset = frame; /* one location per code object and instruction */
    ret = proc_get(s, pid, start_time, &p);
    if (ret)
        return ret;
    v = py_version((unsigned)(proc_py_minor(s, p) > 0 ? p->py_minor : 0));
    if (v) {
        size_t grew = 0;
        ret = sym_py_name(&p->py, pid, v, frame, &name, &grew);
        p->py_bytes += grew;
        s->fixed_bytes += grew;
        if (ret == 0) {
            s->st.py_named++;
            out->nframes = 1;
            out->frames[0].function = name.function;
            out->frames[0].file = name.file;
            out->frames[0].line = name.line > 0 ? (uint32_t)name.line : 0;
        }
    }
    if (!out->nframes)
        s->st.py_unnamed++;
    return finish(s, out);
}

/* ---- HotSpot ------------------------------------------------------------- */

/* The HotSpot tables of process @p, read from its memory once: 1, or -1
 * when it runs no JVM the reader knows. */
static int proc_jvm(struct symbolizer *s, struct proc *p)
{
    if (p->jvm_state)
        return p->jvm_state;
    p->jvm_state = -1;
    for (size_t i = 0; i < p->nmaps; i++) {
        struct pmap *m = &p->maps[i];
        const char *base = m->kind == MAP_FILE ? strrchr(m->path, '/') : NULL;
        uint64_t vaddr;
        if (!base || !strstr(base, "libjvm"))
            continue;
        struct bin *b = map_bin(s, p, m);
        if (!b || !b->hs || sym_elf_off_to_vaddr(b->segs, b->nsegs, m->off, &vaddr) != 0)
            continue;
        struct hs_vm *vm = malloc(sizeof(*vm));
        uint32_t pid = p->pid;
        if (!vm)
            return -1;
        if (hs_read_vm(b->hs, m->start - vaddr, sym_proc_read_cb, &pid, vm, NULL) != 0) {
            free(vm);
            break;
        }
        p->jvm_vm = vm;
        p->jvm_bias = m->start - vaddr;
        p->jvm_state = 1;
        s->fixed_bytes += sizeof(*vm);
        p->jvm_bytes += (long)sizeof(*vm);
        break;
    }
    return p->jvm_state;
}

/* A HotSpot frame of the BPF walker: an interpreted method or a pc in
 * compiled code, named by its method and the methods inlined there. */
static int jvm_frame(struct symbolizer *s, uint32_t pid, uint64_t start_time, uint64_t frame,
                     bool is_return, struct sym_result *out)
{
    struct sym_jvm_frame f[SYM_MAX_FRAMES];
    struct proc *p;
    int ret, n = 0;

    out->mapping = "[java]";
    out->file_offset = frame; /* one location per method and bci, or pc */
    ret = proc_get(s, pid, start_time, &p);
    if (ret)
        return ret;
    if (proc_jvm(s, p) > 0) {
        long grew = 0;
        n = sym_jvm_name(&p->jvm, pid, p->jvm_vm, p->jvm_bias, frame, is_return, f, SYM_MAX_FRAMES,
                         &grew);
        p->jvm_bytes += grew;
        s->fixed_bytes += (size_t)grew;
    }
    if (n > 0) {
        s->st.jvm_named++;
        out->nframes = (uint32_t)n;
        for (int i = 0; i < n; i++) {
            out->frames[i].function = f[i].function;
            out->frames[i].file = f[i].file;
            out->frames[i].line = f[i].line;
        }
    } else if (n == -ESTALE) {
        s->st.jvm_stale++;
    } else {
        s->st.jvm_unnamed++;
    }
    return finish(s, out);
}

/* ---- V8 ------------------------------------------------------------------ */

/* The V8 process @p runs: the binary holding it tells, looked for once:
 * first among files named like node (node, libnode.so), then among the
 * others (a node renamed, a single-executable application). */
static bool proc_v8(struct symbolizer *s, struct proc *p)
{
    if (p->v8_state)
        return p->v8_state > 0;
    p->v8_state = -1;
    for (int pass = 0; pass < 2 && p->v8_state < 0; pass++)
        for (size_t i = 0; i < p->nmaps; i++) {
            struct pmap *m = &p->maps[i];
            const char *base = m->kind == MAP_FILE ? strrchr(m->path, '/') : NULL;
            if (!base || (strstr(base, "node") != NULL) != (pass == 0))
                continue;
            struct bin *b = map_bin(s, p, m);
            if (b && b->v8) {
                p->v8 = *b->v8;
                p->v8_state = 1;
                break;
            }
        }
    return p->v8_state > 0;
}

/* A V8 JavaScript frame of the BPF walker: named by its SharedFunctionInfo. */
static int v8_frame(struct symbolizer *s, uint32_t pid, uint64_t start_time, uint64_t frame,
                    struct sym_result *out)
{
    struct sym_v8mem mem = {.read = sym_proc_read_cb, .ctx = &pid};
    struct sym_v8name name;
    struct proc *p;
    int ret;

    out->mapping = "[v8]";
    out->file_offset = frame; /* one location per function */
    ret = proc_get(s, pid, start_time, &p);
    if (ret)
        return ret;
    if (proc_v8(s, p)) {
        size_t before = p->v8_bytes;
        ret = sym_v8_name(&p->v8c, &p->v8, &mem, s->window, frame, &name, &p->v8_bytes);
        s->fixed_bytes = s->fixed_bytes - before + p->v8_bytes;
        if (ret == 0) {
            s->st.v8_named++;
            out->nframes = 1;
            out->frames[0].function = name.function;
            out->frames[0].file = name.file;
            out->frames[0].line = name.line > 0 ? (uint32_t)name.line : 0;
        }
    }
    if (!out->nframes)
        s->st.v8_unnamed++;
    return finish(s, out);
}

int symbolizer_user(struct symbolizer *s, uint32_t pid, uint64_t start_time, uint64_t addr,
                    bool is_return_address, struct sym_result *out)
{
    struct proc *p;
    struct pmap *m;
    int ret;

    evict(s);
    s->st.lookups++;
    out->kind = SYM_USER;
    out->mapping = "[unknown]";
    out->build_id = "";
    out->file_offset = 0;
    out->nframes = 0;

    if ((addr & STOKE_FRAME_TAGMASK) == STOKE_PY_TAG)
        return python_frame(s, pid, start_time, addr, out);
    if ((addr & STOKE_FRAME_TAGMASK) == STOKE_JVM_TAG)
        return jvm_frame(s, pid, start_time, addr, is_return_address, out);
    if ((addr & STOKE_FRAME_TAGMASK) == STOKE_V8_TAG)
        return v8_frame(s, pid, start_time, addr, out);
    ret = proc_get(s, pid, start_time, &p);
    if (ret)
        return ret;
    m = proc_find_map(p, addr);
    if (!m && p->read_window != s->window) {
        ret = proc_read_maps(s, p);
        if (ret == -ESRCH)
            s->st.proc_gone++;
        m = proc_find_map(p, addr);
    }
    if (!m)
        return -ENOENT;

    out->mapping = m->path;
    out->file_offset = addr - m->start + m->off;
    uint64_t laddr = is_return_address && addr > m->start ? addr - 1 : addr;

    if (m->kind == MAP_ANON) {
        out->kind = SYM_JIT;
        perfmap_refresh(s, p);
        const struct sym_perfmap_entry *e = p->pm_loaded ? sym_perfmap_find(&p->pm, laddr) : NULL;
        if (e) {
            out->nframes = 1;
            out->frames[0].function = p->pm.strs + e->name;
            out->frames[0].file = NULL;
            out->frames[0].line = 0;
        }
        return finish(s, out);
    }
    if (m->kind == MAP_OTHER)
        return finish(s, out);

    struct bin *b = map_bin(s, p, m);
    if (!b)
        return finish(s, out);
    out->build_id = b->build_id;
    uint64_t vaddr;
    if (!b->loaded || sym_elf_off_to_vaddr(b->segs, b->nsegs, laddr - m->start + m->off, &vaddr))
        return finish(s, out);

    lru_unlink(&b->lru);
    lru_push(&s->lru, &b->lru);
    b->used_window = s->window;
    struct cres *r = ac_get(&b->ac, vaddr);
    if (r) {
        s->st.cache_hits++;
    } else {
        r = resolve_vaddr(s, b, vaddr);
        if (!r)
            return -ENOMEM;
        if (ac_put(&b->ac, vaddr, r) != 0) {
            free(r);
            return -ENOMEM;
        }
        bin_account(s, b);
    }
    fill(out, r);
    return finish(s, out);
}

int symbolizer_kernel(struct symbolizer *s, uint64_t addr, struct sym_result *out)
{
    evict(s);
    s->st.lookups++;
    s->st.kernel_lookups++;
    out->kind = SYM_KERNEL;
    out->mapping = "[kernel.kallsyms]";
    out->build_id = "";
    out->file_offset = addr;
    out->nframes = 0;

    if (!s->ksyms_loaded) {
        s->ksyms_loaded = true;
        s->ksyms_window = s->window;
        s->ksyms_err = sym_kallsyms_load(&s->ksyms, s->kallsyms_path);
        if (s->ksyms_err) {
            fprintf(stderr,
                    "stoke: symbolizer: cannot read %s: %s; kernel frames stay unresolved\n",
                    s->kallsyms_path, strerror(-s->ksyms_err));
        } else if (s->ksyms.restricted) {
            fprintf(stderr,
                    "stoke: symbolizer: %s shows only zero addresses (kptr_restrict); "
                    "kernel frames stay unresolved\n",
                    s->kallsyms_path);
        }
        s->fixed_bytes += sym_kallsyms_bytes(&s->ksyms);
    }
    struct sym_ksym_hit k;
    if (sym_kallsyms_lookup(&s->ksyms, addr, &k) != 0) {
        s->ksyms_missed = true;
        return finish(s, out);
    }
    if (k.module)
        out->mapping = k.module;
    out->nframes = 1;
    out->frames[0].function = k.name;
    out->frames[0].file = NULL;
    out->frames[0].line = 0;
    return finish(s, out);
}

/* Binaries waiting for a debug file are unloaded once a fetch has ended
 * (theirs or another's): the next lookup loads them again and finds the
 * file in the cache, or queues or waits again. Addresses cached with the
 * symbol-table names go with them. */
static void dbgd_poll(struct symbolizer *s)
{
    uint64_t gen = sym_dbgd_generation(s->opts.dbgd);

    if (gen == s->dbgd_gen)
        return;
    s->dbgd_gen = gen;
    for (size_t i = 0; i < BIN_BUCKETS; i++) {
        for (struct bin *b = s->bins[i], *next; b; b = next) {
            next = b->next;
            if (!b->loaded || !b->dbgd_pending)
                continue;
            b->dbgd_pending = false;
            s->st.dbgd_reloads++;
            bin_unload(s, b);
            if (b->refs == 0)
                bin_destroy(s, b);
        }
    }
}

void symbolizer_new_window(struct symbolizer *s)
{
    s->window++;
    if (s->opts.dbgd)
        dbgd_poll(s);
    /* Processes not looked up for a while: their maps (and perf map) go,
     * exited or not, and are read again if they come back. Without this
     * every process ever sampled stays, the bins it mapped pinned. */
    for (size_t i = 0; i < PROC_BUCKETS; i++) {
        for (struct proc **pp = &s->procs[i]; *pp;) {
            struct proc *p = *pp;
            if (p->used_window + PROC_IDLE_WINDOWS < s->window) {
                *pp = p->next;
                proc_destroy(s, p);
            } else {
                pp = &p->next;
            }
        }
    }
    for (struct lru *l = s->lru.next; l && l != &s->lru; l = l->next) {
        struct bin *b = BIN_OF(l);
        uint64_t idle = s->window - b->dwarf_window;
        /* A large file is closed after one idle window, unless opening it
         * was dear (compressed debug sections: libc6-dbg's inflate takes
         * 30-70 ms) or it had to be reopened before: then new addresses keep arriving (other
         * processes, other paths) and each reopen costs more CPU (30-40 ms for libc's DWARF) than
         * the memory it frees is worth. The cache cap still evicts it under memory pressure. */
        bool large = b->dwarf.est_bytes > DWARF_KEEP_MAX && b->dwarf_opens < 2 &&
                     b->dwarf_open_ns < DWARF_DEAR_NS;
        if (b->dwarf.dw && (idle > DWARF_IDLE_WINDOWS || (idle >= 1 && large))) {
            sym_dwarf_close(&b->dwarf);
            bin_account(s, b);
        } else if (b->dwarf.dw) {
            /* what the lookups paged in of a read-only mapping */
            sym_dwarf_trim(&b->dwarf);
        }
    }
    /* Modules come and go: a miss suggests the table is stale, but re-reading
     * a large kallsyms every window would cost more than it finds. */
    if (s->ksyms_loaded && s->ksyms_missed && !s->ksyms.restricted &&
        s->window - s->ksyms_window >= KSYMS_RELOAD_WINDOWS) {
        s->fixed_bytes -= sym_kallsyms_bytes(&s->ksyms);
        sym_kallsyms_free(&s->ksyms);
        s->ksyms_loaded = false;
        s->ksyms_missed = false;
    }
}

void symbolizer_forget_pid(struct symbolizer *s, uint32_t pid)
{
    struct proc **pp = proc_slot(s, pid), *p = *pp;
    if (!p)
        return;
    *pp = p->next;
    proc_destroy(s, p);
}

void symbolizer_get_stats(const struct symbolizer *s, struct sym_stats *out)
{
    *out = s->st;
    out->bytes_used = s->heavy_bytes + s->fixed_bytes;
    out->scratch_bytes = s->scratch_bytes;
}

struct symbolizer *symbolizer_new(const struct symbolizer_opts *opts)
{
    struct symbolizer *s;

    if (elf_version(EV_CURRENT) == EV_NONE)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (opts)
        s->opts = *opts;
    s->debug_dirs = strdup(s->opts.debug_dirs ? s->opts.debug_dirs : "/usr/lib/debug");
    s->proc_root = strdup(s->opts.proc_root ? s->opts.proc_root : "/proc");
    s->kallsyms_path = strdup(s->opts.kallsyms ? s->opts.kallsyms : "/proc/kallsyms");
    if (!s->debug_dirs || !s->proc_root || !s->kallsyms_path) {
        symbolizer_free(s);
        return NULL;
    }
    s->opts.debug_dirs = s->debug_dirs;
    s->opts.proc_root = s->proc_root;
    s->opts.kallsyms = s->kallsyms_path;
    s->max_bytes = s->opts.max_bytes ? s->opts.max_bytes : DEFAULT_MAX_BYTES;
    s->scratch_max = s->opts.scratch_max_bytes ? s->opts.scratch_max_bytes : DEFAULT_SCRATCH_MAX;
    if (s->opts.scratch_dir && !s->opts.no_dwarf) {
        struct statfs fs;
        if (statfs(s->opts.scratch_dir, &fs) != 0 || access(s->opts.scratch_dir, W_OK) != 0) {
            fprintf(stderr,
                    "stoke: symbolizer: scratch directory %s: %s; compressed debug sections "
                    "are inflated in memory\n",
                    s->opts.scratch_dir, strerror(errno));
        } else if (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC) {
            fprintf(stderr,
                    "stoke: symbolizer: scratch directory %s is in memory (tmpfs); compressed "
                    "debug sections are inflated in the heap instead\n",
                    s->opts.scratch_dir);
        } else if (!(s->scratch_dir = strdup(s->opts.scratch_dir))) {
            symbolizer_free(s);
            return NULL;
        }
    }
    s->opts.scratch_dir = s->scratch_dir;
    s->lru.prev = s->lru.next = &s->lru;
    s->window = 1;
    return s;
}

void symbolizer_free(struct symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < PROC_BUCKETS; i++) {
        while (s->procs[i]) {
            struct proc *p = s->procs[i];
            s->procs[i] = p->next;
            proc_destroy(s, p);
        }
    }
    for (size_t i = 0; i < BIN_BUCKETS; i++)
        while (s->bins[i])
            bin_destroy(s, s->bins[i]);
    sym_kallsyms_free(&s->ksyms);
    free(s->debug_dirs);
    free(s->proc_root);
    free(s->kallsyms_path);
    free(s->scratch_dir);
    free(s);
}
