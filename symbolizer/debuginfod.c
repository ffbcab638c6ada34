/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <elfutils/debuginfod.h>
#include <errno.h>
#include <fcntl.h>
#include <libelf.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"
#include "common/hash.h"
#include "common/log.h"
#include "symbolizer/build_id.h"
#include "symbolizer/debuginfod.h"

#define DEFAULT_CACHE_MAX (2ull << 30)
#define DEFAULT_FILE_MAX  (512ull << 20)
#define DEFAULT_TIMEOUT   10
#define DEFAULT_MAX_TIME  120
#define DEFAULT_NEGATIVE  3600
#define DEFAULT_QUEUE     256
/* Build-ids whose state is remembered in memory (open addressing, never
 * shrinks): a host maps a few hundred distinct binaries; past this, new
 * build-ids are refused as if the queue were full. */
#define TABLE_SLOTS 8192

const char *const sym_dbgd_fail_names[DBGD_FAIL_N] = {
    "timeout", "unreachable", "too_large", "mismatch", "bad_file", "queue_full", "other",
};

enum state { ST_FREE, ST_QUEUED, ST_INFLIGHT, ST_HAVE, ST_NEGATIVE };

struct entry {
    char bid[41];
    uint8_t state;
    time_t until; /* ST_NEGATIVE: not asked again before this */
};

struct sym_dbgd {
    struct sym_dbgd_opts o;
    char *cache_dir, *client_dir;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    struct entry *table; /* TABLE_SLOTS */
    size_t *queue;       /* ring of table indexes, o.queue_max */
    size_t qhead, qlen;
    atomic_uint_fast64_t gen;
    struct sym_dbgd_stats st;
    /* the fetch in flight (worker only) */
    time_t fetch_deadline;
    int abort_reason; /* -1: none, else an enum sym_dbgd_fail */
};

static bool valid_build_id(const char *bid)
{
    size_t n = strlen(bid);

    if (n < 8 || n > 40 || n % 2)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((bid[i] >= '0' && bid[i] <= '9') || (bid[i] >= 'a' && bid[i] <= 'f')))
            return false;
    return true;
}

/* The slot of @bid, or the free slot where it would go (@add), or NULL. */
static struct entry *slot(struct sym_dbgd *d, const char *bid, bool add)
{
    size_t h = hash_str(bid) % TABLE_SLOTS;

    for (size_t k = 0; k < TABLE_SLOTS; k++) {
        struct entry *e = &d->table[(h + k) % TABLE_SLOTS];
        if (e->state == ST_FREE) {
            if (!add)
                return NULL;
            snprintf(e->bid, sizeof(e->bid), "%s", bid);
            return e;
        }
        if (strcmp(e->bid, bid) == 0)
            return e;
    }
    return NULL;
}

static int cache_path(const struct sym_dbgd *d, const char *bid, const char *ext, char *out,
                      size_t cap)
{
    int n = snprintf(out, cap, "%s/%s.%s", d->cache_dir, bid, ext);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ---- the disk cache ----------------------------------------------------- */

struct cfile {
    char name[48];
    time_t mtime;
    uint64_t size;
};

static int cfile_cmp(const void *a, const void *b)
{
    const struct cfile *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* A cache file name: <hex>.debug or <hex>.miss; returns its kind or 0. */
static int cache_name(const char *name, char bid[41])
{
    const char *dot = strrchr(name, '.');
    if (!dot || (size_t)(dot - name) > 40)
        return 0;
    memcpy(bid, name, (size_t)(dot - name));
    bid[dot - name] = '\0';
    if (!valid_build_id(bid))
        return 0;
    return strcmp(dot, ".debug") == 0 ? 'd' : strcmp(dot, ".miss") == 0 ? 'm' : 0;
}

uint64_t sym_dbgd_cache_trim(struct sym_dbgd *d)
{
    DIR *dir = opendir(d->cache_dir);
    struct cfile *files = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0, evicted = 0;
    time_t now = time(NULL);
    struct dirent *de;

    if (!dir)
        return 0;
    while ((de = readdir(dir)) != NULL) {
        char bid[41];
        struct stat st;
        int kind = cache_name(de->d_name, bid);
        if (!kind || fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (kind == 'm') {
            if (st.st_mtime + (time_t)d->o.negative_s <= now)
                unlinkat(dirfd(dir), de->d_name, 0);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct cfile *f = realloc(files, ncap * sizeof(*f));
            if (!f)
                break;
            files = f;
            cap = ncap;
        }
        /* cache_name() checked it: at most 40 digits and ".debug" */
        memcpy(files[n].name, de->d_name, strlen(de->d_name) + 1);
        files[n].mtime = st.st_mtime;
        files[n].size = (uint64_t)st.st_size;
        total += files[n].size;
        n++;
    }
    if (n)
        qsort(files, n, sizeof(*files), cfile_cmp);
    size_t i = 0;
    /* Least recently used first; the newest file always stays (it is at
     * most max_file_bytes, which is at most the cap). */
    for (; total > d->o.cache_max_bytes && i + 1 < n; i++) {
        if (unlinkat(dirfd(dir), files[i].name, 0) == 0) {
            total -= files[i].size;
            evicted++;
        }
    }
    closedir(dir);
    free(files);
    pthread_mutex_lock(&d->mu);
    d->st.cache_bytes = total;
    d->st.cache_files = n - evicted;
    d->st.evictions += evicted;
    pthread_mutex_unlock(&d->mu);
    return total;
}

int sym_dbgd_cache_add(struct sym_dbgd *d, const char *build_id, int fd, const char *path)
{
    char dst[PATH_MAX], got[41];
    struct stat st;
    int ret = 0;

    if (fstat(fd, &st) != 0) {
        ret = -errno;
    } else if ((uint64_t)st.st_size > d->o.max_file_bytes) {
        ret = -EFBIG;
    } else {
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        if (!elf || elf_kind(elf) != ELF_K_ELF)
            ret = -ENOEXEC;
        else if (sym_elf_build_id(elf, got) <= 0 || strcmp(got, build_id) != 0)
            ret = -EBADMSG;
        if (elf)
            elf_end(elf);
    }
    if (ret == 0 && (ret = cache_path(d, build_id, "debug", dst, sizeof(dst))) == 0 &&
        rename(path, dst) != 0)
        ret = -errno;
    if (ret != 0)
        unlink(path);
    if (ret == 0)
        sym_dbgd_cache_trim(d);
    return ret;
}

/* ---- asking ----------------------------------------------------------- */

int sym_dbgd_open(struct sym_dbgd *d, const char *build_id)
{
    char path[PATH_MAX];
    struct stat st;
    int ret;

    if (!valid_build_id(build_id))
        return -EINVAL;
    if (cache_path(d, build_id, "debug", path, sizeof(path)) != 0)
        return -ENAMETOOLONG;
    time_t now = time(NULL);
    pthread_mutex_lock(&d->mu);
    struct entry *e = slot(d, build_id, true);
    if (!e) {
        d->st.failures[DBGD_FAIL_QUEUE_FULL]++;
        ret = -EBUSY;
        goto out;
    }
    if (e->state == ST_QUEUED || e->state == ST_INFLIGHT) {
        ret = -EAGAIN;
        goto out;
    }
    if (e->state == ST_NEGATIVE && now < e->until) {
        d->st.negative_hits++;
        ret = -ENOENT;
        goto out;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        /* The mtime is the cache's LRU clock. */
        futimens(fd, NULL);
        e->state = ST_HAVE;
        d->st.cache_hits++;
        ret = fd;
        goto out;
    }
    if (cache_path(d, build_id, "miss", path, sizeof(path)) == 0 && stat(path, &st) == 0 &&
        st.st_mtime + (time_t)d->o.negative_s > now) {
        /* a miss recorded before this agent started */
        e->state = ST_NEGATIVE;
        e->until = st.st_mtime + (time_t)d->o.negative_s;
        d->st.negative_hits++;
        ret = -ENOENT;
        goto out;
    }
    if (d->qlen >= d->o.queue_max) {
        d->st.failures[DBGD_FAIL_QUEUE_FULL]++;
        ret = -EBUSY;
        goto out;
    }
    e->state = ST_QUEUED;
    d->queue[(d->qhead + d->qlen) % d->o.queue_max] = (size_t)(e - d->table);
    d->qlen++;
    d->st.requests++;
    pthread_cond_signal(&d->cv);
    ret = -EAGAIN;
out:
    /* A slot taken for nothing must not stay half-made: FREE with a name
     * would break the probe chain, so it keeps the name as NEGATIVE-expired. */
    if (e && e->state == ST_FREE) {
        e->state = ST_NEGATIVE;
        e->until = 0;
    }
    pthread_mutex_unlock(&d->mu);
    return ret;
}

uint64_t sym_dbgd_generation(struct sym_dbgd *d)
{
    return atomic_load(&d->gen);
}

void sym_dbgd_get_stats(struct sym_dbgd *d, struct sym_dbgd_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->st;
    out->queued = d->qlen;
    for (size_t i = 0; i < TABLE_SLOTS; i++)
        out->queued += d->table[i].state == ST_INFLIGHT;
    pthread_mutex_unlock(&d->mu);
}

/* ---- the worker -------------------------------------------------------- */

/* libdebuginfod calls this about once a second while a transfer runs (and
 * while it waits for a silent server): a non-zero return abandons it. */
static int progress(debuginfod_client *c, long done, long total)
{
    struct sym_dbgd *d = debuginfod_get_user_data(c);

    if (atomic_load(&d->stop)) {
        d->abort_reason = DBGD_FAIL_OTHER;
        return 1;
    }
    if ((total > 0 && (uint64_t)total > d->o.max_file_bytes) ||
        (done > 0 && (uint64_t)done > d->o.max_file_bytes)) {
        d->abort_reason = DBGD_FAIL_TOO_LARGE;
        return 1;
    }
    if (time(NULL) >= d->fetch_deadline) {
        d->abort_reason = DBGD_FAIL_TIMEOUT;
        return 1;
    }
    return 0;
}

static enum sym_dbgd_fail fail_of(int err)
{
    switch (err) {
    case -ETIME:
    case -ETIMEDOUT:
        return DBGD_FAIL_TIMEOUT;
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -EADDRNOTAVAIL:
    case -EHOSTDOWN:
    case -ENOTCONN:
        return DBGD_FAIL_UNREACHABLE;
    case -EFBIG:
        return DBGD_FAIL_TOO_LARGE;
    case -EBADMSG:
        return DBGD_FAIL_MISMATCH;
    case -ENOEXEC:
        return DBGD_FAIL_BAD_FILE;
    default:
        return DBGD_FAIL_OTHER;
    }
}

/* Removes libdebuginfod's own copy of @bid (its cache entry, or the
 * negative-cache marker it writes for a 404): our cache is the one that
 * decides what is kept and for how long. */
static void client_forget(struct sym_dbgd *d, const char *bid)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/%s", d->client_dir, bid) >= (int)sizeof(dir))
        return;
    DIR *dh = opendir(dir);
    if (!dh)
        return;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL)
        if (de->d_name[0] != '.')
            unlinkat(dirfd(dh), de->d_name, 0);
    closedir(dh);
    rmdir(dir);
}

static void fetch_one(struct sym_dbgd *d, debuginfod_client *c, const char *bid)
{
    char *path = NULL;
    char miss[PATH_MAX];

    d->fetch_deadline = time(NULL) + (time_t)d->o.max_time_s;
    d->abort_reason = -1;
    int fd = debuginfod_find_debuginfo(c, (const unsigned char *)bid, 0, &path);
    int ret = fd >= 0 ? sym_dbgd_cache_add(d, bid, fd, path) : fd;
    uint64_t size = 0;
    if (fd >= 0) {
        struct stat st;
        if (ret == 0 && fstat(fd, &st) == 0)
            size = (uint64_t)st.st_size;
        close(fd);
    }
    free(path);
    client_forget(d, bid);

    bool missing = ret == -ENOENT && d->abort_reason < 0;
    if (missing && cache_path(d, bid, "miss", miss, sizeof(miss)) == 0) {
        int mfd = open(miss, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (mfd >= 0)
            close(mfd);
    }
    pthread_mutex_lock(&d->mu);
    struct entry *e = slot(d, bid, false);
    if (ret == 0) {
        d->st.fetched++;
        d->st.bytes += size;
        if (e)
            e->state = ST_HAVE;
    } else {
        if (missing) {
            d->st.misses++;
        } else {
            enum sym_dbgd_fail why =
                d->abort_reason >= 0 ? (enum sym_dbgd_fail)d->abort_reason : fail_of(ret);
            d->st.failures[why]++;
        }
        if (e) {
            e->state = ST_NEGATIVE;
            e->until = time(NULL) + (time_t)d->o.negative_s;
        }
    }
    pthread_mutex_unlock(&d->mu);
    if (ret != 0 && !atomic_load(&d->stop))
        log_info("debuginfod: %s: %s", bid,
                 missing ? "not on the servers"
                 : d->abort_reason >= 0
                     ? sym_dbgd_fail_names[d->abort_reason]
                     : (ret == -EBADMSG ? "build-id differs from the one asked for: refused"
                                        : strerror(-ret)));
    atomic_fetch_add(&d->gen, 1);
}

/* The client (libcurl's multi handle, its connection and DNS caches) is
 * made for a batch of fetches and ended when the queue is empty: a host
 * whose debug files are all cached never holds one, and one that fetched
 * at start-up gives the memory back. */
static void *worker(void *arg)
{
    struct sym_dbgd *d = arg;
    debuginfod_client *c = NULL;

    sym_dbgd_cache_trim(d);
    pthread_mutex_lock(&d->mu);
    while (!atomic_load(&d->stop)) {
        if (d->qlen == 0) {
            if (c) {
                pthread_mutex_unlock(&d->mu);
                debuginfod_end(c);
                c = NULL;
                malloc_trim(0);
                pthread_mutex_lock(&d->mu);
                continue;
            }
            pthread_cond_wait(&d->cv, &d->mu);
            continue;
        }
        if (!c) {
            pthread_mutex_unlock(&d->mu);
            c = debuginfod_begin();
            if (c) {
                debuginfod_set_user_data(c, d);
                debuginfod_set_progressfn(c, progress);
            }
            pthread_mutex_lock(&d->mu);
        }
        struct entry *e = &d->table[d->queue[d->qhead]];
        d->qhead = (d->qhead + 1) % d->o.queue_max;
        d->qlen--;
        char bid[41];
        memcpy(bid, e->bid, sizeof(bid));
        if (!c) { /* out of memory: this one fails, later ones try again */
            e->state = ST_NEGATIVE;
            e->until = time(NULL) + (time_t)d->o.negative_s;
            d->st.failures[DBGD_FAIL_OTHER]++;
            atomic_fetch_add(&d->gen, 1);
            continue;
        }
        e->state = ST_INFLIGHT;
        d->st.fetches++;
        pthread_mutex_unlock(&d->mu);
        fetch_one(d, c, bid);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    if (c)
        debuginfod_end(c);
    return NULL;
}

/* ---- life -------------------------------------------------------------- */

static int set_env_uint(const char *name, unsigned long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", v);
    return setenv(name, buf, 1) == 0 ? 0 : -errno;
}

struct sym_dbgd *sym_dbgd_new(const struct sym_dbgd_opts *opts, int *err)
{
    struct sym_dbgd *d = calloc(1, sizeof(*d));
    int ret = -ENOMEM;

    if (!d)
        goto fail_early;
    d->o = *opts;
    if (!d->o.urls || !*d->o.urls || !d->o.cache_dir || !*d->o.cache_dir) {
        ret = -EINVAL;
        goto fail;
    }
    if (!d->o.cache_max_bytes)
        d->o.cache_max_bytes = DEFAULT_CACHE_MAX;
    if (!d->o.max_file_bytes)
        d->o.max_file_bytes = DEFAULT_FILE_MAX;
    if (d->o.max_file_bytes > d->o.cache_max_bytes)
        d->o.max_file_bytes = d->o.cache_max_bytes;
    if (!d->o.timeout_s)
        d->o.timeout_s = DEFAULT_TIMEOUT;
    if (!d->o.max_time_s)
        d->o.max_time_s = DEFAULT_MAX_TIME;
    if (!d->o.negative_s)
        d->o.negative_s = DEFAULT_NEGATIVE;
    if (!d->o.queue_max)
        d->o.queue_max = DEFAULT_QUEUE;
    d->cache_dir = strdup(d->o.cache_dir);
    d->table = calloc(TABLE_SLOTS, sizeof(*d->table));
    d->queue = calloc(d->o.queue_max, sizeof(*d->queue));
    if (!d->cache_dir || !d->table || !d->queue ||
        asprintf(&d->client_dir, "%s/client", d->cache_dir) < 0) {
        d->client_dir = NULL;
        goto fail;
    }
    d->o.cache_dir = d->cache_dir;
    d->o.urls = NULL; /* not kept: the environment holds them */
    if ((ret = mkdir_p(d->cache_dir, 0700)) != 0 || (ret = mkdir_p(d->client_dir, 0700)) != 0)
        goto fail;
    if (elf_version(EV_CURRENT) == EV_NONE) {
        ret = -ELIBBAD;
        goto fail;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    /* libdebuginfod reads its settings from the environment on every
     * query: set once here, before any thread can read it. Its own cache
     * is only where downloads land (client/): we move them into ours.
     * One try per server, no retries: the negative time is our retry
     * policy. */
    if ((ret = -(setenv(DEBUGINFOD_URLS_ENV_VAR, opts->urls, 1) ? errno : 0)) != 0 ||
        (ret = -(setenv(DEBUGINFOD_CACHE_PATH_ENV_VAR, d->client_dir, 1) ? errno : 0)) != 0 ||
        (ret = set_env_uint(DEBUGINFOD_TIMEOUT_ENV_VAR, d->o.timeout_s)) != 0 ||
        (ret = set_env_uint(DEBUGINFOD_MAXTIME_ENV_VAR, d->o.max_time_s)) != 0 ||
        (ret = set_env_uint(DEBUGINFOD_MAXSIZE_ENV_VAR, d->o.max_file_bytes)) != 0 ||
        (ret = set_env_uint(DEBUGINFOD_RETRY_LIMIT_ENV_VAR, 0)) != 0)
        goto fail_sync;
    unsetenv(DEBUGINFOD_PROGRESS_ENV_VAR);
    unsetenv(DEBUGINFOD_VERBOSE_ENV_VAR);
    if (!d->o.no_worker) {
        ret = -pthread_create(&d->thread, NULL, worker, d);
        if (ret)
            goto fail_sync;
        d->started = true;
    } else {
        sym_dbgd_cache_trim(d);
    }
    return d;
fail_sync:
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
fail:
    free(d->cache_dir);
    free(d->client_dir);
    free(d->table);
    free(d->queue);
    free(d);
fail_early:
    if (err)
        *err = ret;
    return NULL;
}

void sym_dbgd_stop(struct sym_dbgd *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    atomic_store(&d->stop, true);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void sym_dbgd_free(struct sym_dbgd *d)
{
    if (!d)
        return;
    sym_dbgd_stop(d);
    if (d->started)
        pthread_join(d->thread, NULL);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d->cache_dir);
    free(d->client_dir);
    free(d->table);
    free(d->queue);
    free(d);
}
