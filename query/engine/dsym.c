/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/dsym.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"
#include "common/intern.h"
#include "symbolizer/debuginfod.h"
#include "symbolizer/offline.h"

enum fstate { F_UNKNOWN, F_OPEN, F_MISSING };

struct dfile {
    enum fstate state;
    struct sym_offline *o;
    size_t bytes;
    int64_t retry_ms; /* F_MISSING: asked again from then on */
    uint64_t used;    /* LRU tick */
};

/* The answer cache's key: a file (id in d->fids) and an offset. */
struct akey {
    uint32_t fid;
    uint32_t is_return;
    uint64_t off;
};

struct dsym {
    struct dsym_opts o;
    pthread_mutex_t mu;
    struct intern fids; /* "tenant\0build-id" -> file id */
    struct dfile *files;
    uint32_t files_cap;
    uint64_t tick, bytes_open;
    struct intern keys;  /* struct akey -> answer slot */
    struct intern blobs; /* answers: n names NUL-separated, first byte n */
    uint32_t *ans;       /* per key: blob id */
    uint32_t ans_cap;
    struct dsym_stats st;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool dsym_build_id_valid(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')) || n >= 40)
            return false;
    return n >= 2 && n % 2 == 0;
}

int dsym_key(char *buf, size_t len, const char *tenant, const char *build_id)
{
    int n = snprintf(buf, len, "%s/debuginfo/%s", tenant, build_id);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct dsym *dsym_new(const struct dsym_opts *o)
{
    struct dsym *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->o = *o;
    if (!d->o.max_file_bytes)
        d->o.max_file_bytes = DSYM_DEFAULT_MAX_FILE;
    if (!d->o.max_bytes)
        d->o.max_bytes = (uint64_t)DSYM_DEFAULT_MAX_MB << 20;
    if (!d->o.max_names)
        d->o.max_names = DSYM_DEFAULT_NAMES;
    if (!d->o.recheck_ms)
        d->o.recheck_ms = DSYM_DEFAULT_RECHECK;
    if (!d->o.scratch_dir) {
        const char *t = getenv("TMPDIR");
        d->o.scratch_dir = t && *t ? t : "/var/tmp";
    }
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

static void answers_clear(struct dsym *d)
{
    intern_free(&d->keys);
    intern_free(&d->blobs);
    memset(&d->keys, 0, sizeof(d->keys));
    memset(&d->blobs, 0, sizeof(d->blobs));
}

void dsym_free(struct dsym *d)
{
    if (!d)
        return;
    for (uint32_t i = 0; i < d->fids.n; i++)
        sym_offline_free(d->files[i].o);
    free(d->files);
    intern_free(&d->fids);
    answers_clear(d);
    free(d->ans);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* Closes the least recently used open files until the heap is under the
 * cap, keeping @keep. */
static void evict(struct dsym *d, uint32_t keep)
{
    while (d->bytes_open > d->o.max_bytes) {
        uint32_t victim = UINT32_MAX;
        for (uint32_t i = 0; i < d->fids.n; i++)
            if (i != keep && d->files[i].state == F_OPEN &&
                (victim == UINT32_MAX || d->files[i].used < d->files[victim].used))
                victim = i;
        if (victim == UINT32_MAX)
            return;
        struct dfile *f = &d->files[victim];
        sym_offline_free(f->o);
        f->o = NULL;
        d->bytes_open -= f->bytes;
        f->bytes = 0;
        f->state = F_UNKNOWN; /* read again when asked */
        d->st.files_evicted++;
    }
}

/* An fd holding @len bytes of @data: an unlinked file in the scratch
 * directory, else anonymous memory. */
static int bytes_fd(const char *dir, const uint8_t *data, size_t len)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd < 0)
        fd = memfd_create("stoke-debuginfo", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, data, len);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Opens @f's debug file: from the store, else from debuginfod. */
static void file_load(struct dsym *d, uint32_t fid, const char *tenant, const char *bid)
{
    struct dfile *f = &d->files[fid];
    char key[1024], got[41];
    uint64_t size = 0;
    int fd = -1, rc;

    f->state = F_MISSING;
    f->retry_ms = now_ms() + d->o.recheck_ms;
    if (dsym_key(key, sizeof(key), tenant, bid) == 0 && d->o.store &&
        store_head(d->o.store, key, &size) == 0) {
        struct store_buf b = {0};
        if (size > d->o.max_file_bytes) {
            d->st.bad_files++;
        } else if (store_get(d->o.store, key, 0, 0, &b) == 0) {
            if (sym_offline_check(b.data, b.len, got) != 0 || strcmp(got, bid) != 0)
                d->st.bad_files++;
            else
                fd = bytes_fd(d->o.scratch_dir, b.data, b.len);
            free(b.data);
        }
    } else {
        d->st.store_misses++;
        if (d->o.dbgd) {
            rc = sym_dbgd_open(d->o.dbgd, bid);
            if (rc >= 0) {
                fd = rc;
                d->st.dbgd_files++;
            } else if (rc == -EAGAIN || rc == -EBUSY) {
                /* being fetched: ask again soon, not after recheck_ms */
                d->st.dbgd_pending++;
                f->retry_ms = now_ms() + 200;
            }
        }
    }
    if (fd < 0)
        return;
    struct sym_offline *o;
    if (sym_offline_open(fd, d->o.scratch_dir, d->o.max_file_bytes * 4, &o) != 0) {
        d->st.bad_files++;
        return;
    }
    f->o = o;
    f->state = F_OPEN;
    f->bytes = sym_offline_bytes(o);
    d->bytes_open += f->bytes;
    d->st.files_loaded++;
    evict(d, fid);
}

/* The file id of (@tenant, @bid), its entry grown; UINT32_MAX on ENOMEM. */
static uint32_t file_id(struct dsym *d, const char *tenant, const char *bid)
{
    char k[1024];
    int n = snprintf(k, sizeof(k), "%s%c%s", tenant, 0, bid);
    uint32_t id;

    if (n < 0 || (size_t)n >= sizeof(k) || intern_add(&d->fids, k, (size_t)n, &id) < 0)
        return UINT32_MAX;
    if (id >= d->files_cap) {
        uint32_t cap = d->files_cap ? d->files_cap * 2 : 16;
        struct dfile *nf = realloc(d->files, cap * sizeof(*nf));
        if (!nf)
            return UINT32_MAX;
        memset(nf + d->files_cap, 0, (cap - d->files_cap) * sizeof(*nf));
        d->files = nf;
        d->files_cap = cap;
    }
    return id;
}

/* Caches @n names of @k. */
static void answer_put(struct dsym *d, const struct akey *k, const char *const *names, int n)
{
    char blob[4096];
    size_t len = 1;
    uint32_t kid, bid;

    blob[0] = (char)n;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]) + 1;
        if (len + l > sizeof(blob))
            return;
        memcpy(blob + len, names[i], l);
        len += l;
    }
    if (d->keys.n >= d->o.max_names) {
        answers_clear(d);
        d->st.cache_clears++;
    }
    if (intern_add(&d->blobs, blob, len, &bid) < 0 || intern_add(&d->keys, k, sizeof(*k), &kid) < 0)
        return;
    if (kid >= d->ans_cap) {
        uint32_t cap = d->ans_cap ? d->ans_cap * 2 : 1024;
        while (cap <= kid)
            cap *= 2;
        uint32_t *na = realloc(d->ans, cap * sizeof(*na));
        if (!na)
            return;
        d->ans = na;
        d->ans_cap = cap;
    }
    d->ans[kid] = bid;
}

/* Copies the cached answer @blob into the caller's buffer. */
static int answer_copy(const uint8_t *blob, uint32_t blen, char *buf, size_t buflen,
                       const char **names, int max)
{
    int n = blob[0], w = 0;
    size_t p = 1, used = 0;

    for (int i = 0; i < n && i < max && p < blen; i++) {
        size_t l = strlen((const char *)blob + p) + 1;
        if (used + l > buflen)
            break;
        memcpy(buf + used, blob + p, l);
        names[w++] = buf + used;
        used += l;
        p += l;
    }
    return w;
}

int dsym_names(struct dsym *d, const char *tenant, const char *build_id, uint64_t off,
               bool is_return, char *buf, size_t buflen, const char **names, int max)
{
    int n = 0;

    if (!d || !build_id || !dsym_build_id_valid(build_id) || max < 1)
        return 0;
    if (!tenant)
        tenant = "";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&d->mu);
    d->st.lookups++;
    uint32_t fid = file_id(d, tenant, build_id);
    if (fid == UINT32_MAX)
        goto out;
    struct akey k = {.fid = fid, .is_return = is_return, .off = off};
    uint32_t kid = intern_find(&d->keys, &k, sizeof(k));
    if (kid != INTERN_NONE) {
        uint32_t blen;
        const uint8_t *blob = intern_get(&d->blobs, d->ans[kid], &blen);
        d->st.cache_hits++;
        n = answer_copy(blob, blen, buf, buflen, names, max);
        goto out;
    }
    struct dfile *f = &d->files[fid];
    if (f->state == F_UNKNOWN || (f->state == F_MISSING && now_ms() >= f->retry_ms))
        file_load(d, fid, tenant, build_id);
    f = &d->files[fid];
    if (f->state != F_OPEN)
        goto out;
    f->used = ++d->tick;
    n = sym_offline_names(f->o, off, is_return, buf, buflen, names, max);
    if (n < 0)
        n = 0;
    answer_put(d, &k, names, n);
out:
    if (n > 0)
        d->st.named++;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    d->st.ns += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    pthread_mutex_unlock(&d->mu);
    return n;
}

bool dsym_has_file(struct dsym *d, const char *tenant, const char *build_id)
{
    bool open = false;

    if (!d || !build_id || !dsym_build_id_valid(build_id))
        return false;
    pthread_mutex_lock(&d->mu);
    uint32_t fid = file_id(d, tenant ? tenant : "", build_id);
    if (fid != UINT32_MAX) {
        struct dfile *f = &d->files[fid];
        if (f->state == F_UNKNOWN || (f->state == F_MISSING && now_ms() >= f->retry_ms))
            file_load(d, fid, tenant ? tenant : "", build_id);
        open = d->files[fid].state == F_OPEN;
    }
    pthread_mutex_unlock(&d->mu);
    return open;
}

void dsym_forget(struct dsym *d, const char *tenant, const char *build_id)
{
    char k[1024];
    int n = snprintf(k, sizeof(k), "%s%c%s", tenant, 0, build_id);

    if (!d || n < 0 || (size_t)n >= sizeof(k))
        return;
    pthread_mutex_lock(&d->mu);
    uint32_t id = intern_find(&d->fids, k, (size_t)n);
    if (id != INTERN_NONE && d->files[id].state == F_MISSING)
        d->files[id].state = F_UNKNOWN;
    pthread_mutex_unlock(&d->mu);
}

void dsym_get_stats(struct dsym *d, struct dsym_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    *out = d->st;
    for (uint32_t i = 0; i < d->fids.n; i++)
        out->files_open += d->files[i].state == F_OPEN;
    out->bytes_open = d->bytes_open;
    out->names_cached = d->keys.n;
    pthread_mutex_unlock(&d->mu);
}

int dsym_upload(struct store *st, const char *tenant, const void *buf, size_t len, const char *want,
                uint64_t max_bytes, char bid[41], bool *existed, char *err, size_t errlen)
{
    char key[1024];
    uint64_t size;
    int rc;

    *existed = false;
    bid[0] = '\0';
    if (!max_bytes)
        max_bytes = DSYM_DEFAULT_MAX_FILE;
    if (len > max_bytes) {
        snprintf(err, errlen, "%zu bytes, more than the limit of %llu", len,
                 (unsigned long long)max_bytes);
        return -EFBIG;
    }
    rc = sym_offline_check(buf, len, bid);
    if (rc == -ENODATA) {
        snprintf(err, errlen, "an ELF file without a GNU build-id note: nothing to key it by");
        return rc;
    }
    if (rc) {
        snprintf(err, errlen, "not an ELF file libelf can read");
        return -ENOEXEC;
    }
    if (want && strcmp(want, bid) != 0) {
        snprintf(err, errlen, "the file's build-id is %s, not %s", bid, want);
        return -EXDEV;
    }
    if (dsym_key(key, sizeof(key), tenant, bid)) {
        snprintf(err, errlen, "tenant name too long");
        return -EINVAL;
    }
    if (store_head(st, key, &size) == 0) {
        *existed = true;
        return 0;
    }
    rc = store_put(st, key, buf, len);
    if (rc)
        snprintf(err, errlen, "store: %s", st->err[0] ? st->err : strerror(-rc));
    return rc;
}
