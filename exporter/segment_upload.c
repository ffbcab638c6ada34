/* SPDX-License-Identifier: Apache-2.0 */
/*
 * segment_upload — see segment_upload.h.
 *
 * Threads: the main thread adds windows and cuts objects; the uploader
 * thread owns the store. They share only the queue, under `mu`. An object
 * being uploaded is off the queue (so spill/drop never races an upload)
 * and goes back to its head when the attempt fails.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"
#include "codec/segment.h"
#include "exporter/backoff.h"
#include "exporter/segment_upload.h"

#define DEFAULT_BUFFER (64u << 20)
#define DEFAULT_SPILL  (256u << 20)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define SPILL_MAGIC    "STKSPIL1"
#define SPILL_MAX_FILE (1u << 30)

/* One flush's object. The entry (a manifest entry object naming the
 * segment) is set only for spill files an agent wrote before one object
 * per flush (docs/format.md §7): uploaded after its segment, as then. */
struct pending {
    struct pending *next;
    char *seg_key, *entry_key;
    uint8_t *seg, *entry;
    size_t seg_len, entry_len;
    uint64_t nsamples;
    bool seg_done; /* the segment is stored; only the entry is left */
};

struct seg_upload {
    struct seg_upload_opts o;
    char *tenant, *host, *spill_dir;
    /* the writing side only (one thread at a time: the caller's) */
    struct seg_writer *ws[SEG_UPLOAD_MAX_WRITERS]; /* ws[0] first; more only for type clashes */
    size_t nws;
    int64_t flush_start_ms;
    int64_t opened_mono_ms; /* when ws[0] was opened: seg_upload_tick's clock */
    uint64_t cur_samples;
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* queue changed / stop */
    pthread_cond_t idle_cv; /* the uploader went idle */
    struct pending *head, *tail;
    bool busy; /* the uploader holds an object */
    bool stop;
    struct seg_upload_stats st;
    pthread_t thread;
    bool started;
};

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pending_free(struct pending *p)
{
    if (!p)
        return;
    free(p->seg_key);
    free(p->entry_key);
    free(p->seg);
    free(p->entry);
    free(p);
}

static size_t pending_bytes(const struct pending *p)
{
    return p->seg_len + p->entry_len;
}

/* ---- spill files ---------------------------------------------------------- */

static size_t spill_dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t total = 0;
    char path[4096];
    struct stat st;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) == 0)
            total += (size_t)st.st_size;
    }
    closedir(d);
    return total;
}

/* Writes @p as one file: magic, then four length-prefixed blobs (seg key,
 * entry key, segment, entry) in native-endian u64 lengths — the file never
 * leaves this host; entry key and entry are empty since one object per
 * flush. Temp file + rename: a crash leaves no half file. */
static int spill_write(struct seg_upload *u, const struct pending *p)
{
    char path[4096], tmp[4200];
    const void *parts[4] = {p->seg_key, p->entry_key ? p->entry_key : "", p->seg, p->entry};
    uint64_t lens[4] = {strlen(p->seg_key), p->entry_key ? strlen(p->entry_key) : 0,
                        p->seg_done ? 0 : p->seg_len, p->entry_len};
    int fd, ret = 0;

    if (spill_dir_bytes(u->spill_dir) + pending_bytes(p) > u->o.spill_bytes)
        return -ENOSPC;
    snprintf(path, sizeof(path), "%s/%016llx.spill", u->spill_dir,
             (unsigned long long)(p->entry_len ? seg_hash64(p->entry, p->entry_len)
                                               : seg_hash64(p->seg, p->seg_len)));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ret = write_all(fd, SPILL_MAGIC, 8);
    for (int i = 0; i < 4 && ret == 0; i++) {
        ret = write_all(fd, &lens[i], sizeof(lens[i]));
        if (ret == 0)
            ret = write_all(fd, parts[i], (size_t)lens[i]);
    }
    if (ret == 0 && fsync(fd) != 0)
        ret = -errno;
    close(fd);
    if (ret == 0 && rename(tmp, path) != 0)
        ret = -errno;
    if (ret)
        unlink(tmp);
    return ret;
}

/* Reads one spill file back. -EBADMSG for a damaged file. */
static int spill_read(const char *path, struct pending **out)
{
    struct pending *p = calloc(1, sizeof(*p));
    FILE *f = fopen(path, "rbe");
    char magic[8];
    void **parts[4];
    uint64_t len;
    int ret = -EBADMSG;

    if (!p || !f) {
        ret = p ? neg_errno() : -ENOMEM;
        goto out;
    }
    parts[0] = (void **)&p->seg_key;
    parts[1] = (void **)&p->entry_key;
    parts[2] = (void **)&p->seg;
    parts[3] = (void **)&p->entry;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, SPILL_MAGIC, 8) != 0)
        goto out;
    for (int i = 0; i < 4; i++) {
        if (fread(&len, sizeof(len), 1, f) != 1 || len > SPILL_MAX_FILE)
            goto out;
        char *b = malloc((size_t)len + 1);
        if (!b) {
            ret = -ENOMEM;
            goto out;
        }
        if (len && fread(b, 1, (size_t)len, f) != len) {
            free(b);
            goto out;
        }
        b[len] = '\0';
        *parts[i] = b;
        if (i == 2)
            p->seg_len = (size_t)len;
        if (i == 3)
            p->entry_len = (size_t)len;
    }
    p->seg_done = p->seg_len == 0;
    /* an old agent's file may hold an entry; ours hold the segment alone */
    if (!p->seg_key[0] || !p->entry_key[0] != !p->entry_len || (p->seg_done && !p->entry_len))
        goto out;
    ret = 0;
    *out = p;
    p = NULL;
out:
    if (f)
        fclose(f);
    pending_free(p);
    return ret;
}

/* ---- the uploader ------------------------------------------------------- */

static int upload_one(struct seg_upload *u, struct pending *p)
{
    int ret;

    if (!p->seg_done) {
        ret = store_put(u->o.store, p->seg_key, p->seg, p->seg_len);
        if (ret)
            return ret;
        p->seg_done = true;
    }
    if (!p->entry_len)
        return 0;
    return store_put(u->o.store, p->entry_key, p->entry, p->entry_len);
}

static void record_error(struct seg_upload *u, int ret)
{
    pthread_mutex_lock(&u->mu);
    u->st.upload_errors++;
    snprintf(u->st.last_error, sizeof(u->st.last_error), "%.250s",
             u->o.store->err[0] ? u->o.store->err : strerror(-ret));
    pthread_mutex_unlock(&u->mu);
}

/* Uploads what the spill directory holds, oldest name first. Returns false
 * when an upload failed (the store is still down). */
static bool upload_spilled(struct seg_upload *u)
{
    DIR *d;
    struct dirent *de;
    char path[4096];

    if (!u->spill_dir || !(d = opendir(u->spill_dir)))
        return true;
    bool ok = true;
    while (ok && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 6, ".spill") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", u->spill_dir, de->d_name);
        struct pending *p = NULL;
        int ret = spill_read(path, &p);
        if (ret == -EBADMSG) {
            char bad[4200];
            snprintf(bad, sizeof(bad), "%s.bad", path);
            rename(path, bad);
            continue;
        }
        if (ret)
            continue;
        ret = upload_one(u, p);
        if (ret == 0) {
            unlink(path);
            pthread_mutex_lock(&u->mu);
            u->st.objects_uploaded++;
            u->st.entries_uploaded += p->entry_len != 0;
            u->st.bytes_uploaded += pending_bytes(p);
            pthread_mutex_unlock(&u->mu);
        } else {
            record_error(u, ret);
            ok = false;
        }
        pending_free(p);
    }
    closedir(d);
    return ok;
}

static void *uploader(void *arg)
{
    struct seg_upload *u = arg;
    unsigned backoff = 0;
    bool spilled_checked = false;

    for (;;) {
        pthread_mutex_lock(&u->mu);
        while (!u->head && !u->stop && spilled_checked)
            pthread_cond_wait(&u->cv, &u->mu);
        if (u->stop && (!u->head || backoff)) {
            pthread_mutex_unlock(&u->mu);
            break;
        }
        struct pending *p = u->head;
        if (p) {
            u->head = p->next;
            if (!u->head)
                u->tail = NULL;
            p->next = NULL;
            u->busy = true;
        }
        pthread_mutex_unlock(&u->mu);

        int ret = 0;
        if (!spilled_checked) {
            spilled_checked = upload_spilled(u);
            if (!spilled_checked)
                ret = -EIO;
        }
        if (p && ret == 0)
            ret = upload_one(u, p);

        pthread_mutex_lock(&u->mu);
        u->busy = false;
        if (ret == 0 && p) {
            u->st.objects_uploaded++;
            u->st.bytes_uploaded += pending_bytes(p);
            u->st.objects_pending--;
            u->st.bytes_pending -= pending_bytes(p);
            pending_free(p);
            backoff = 0;
            /* the store is back: spilled objects go next */
            if (u->spill_dir)
                spilled_checked = false;
        } else if (ret != 0) {
            if (p) { /* back to the head: order is kept */
                p->next = u->head;
                u->head = p;
                if (!u->tail)
                    u->tail = p;
            }
        }
        pthread_cond_broadcast(&u->idle_cv);
        pthread_mutex_unlock(&u->mu);

        if (ret != 0) {
            if (p)
                record_error(u, ret);
            unsigned wait_ms = backoff_next(&backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += wait_ms / 1000;
            until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_mutex_lock(&u->mu);
            if (!u->stop)
                pthread_cond_timedwait(&u->cv, &u->mu, &until);
            bool stopping = u->stop;
            pthread_mutex_unlock(&u->mu);
            if (stopping)
                break;
        }
    }
    return NULL;
}

/* ---- the main thread's side ----------------------------------------------- */

/* Keeps the queue under the memory cap: the oldest objects go to the spill
 * directory, or are dropped. Called with mu held. */
static void enforce_cap(struct seg_upload *u)
{
    while (u->head && u->st.bytes_pending > u->o.buffer_bytes) {
        struct pending *p = u->head;
        u->head = p->next;
        if (!u->head)
            u->tail = NULL;
        u->st.objects_pending--;
        u->st.bytes_pending -= pending_bytes(p);
        if (u->spill_dir && spill_write(u, p) == 0) {
            u->st.objects_spilled++;
        } else {
            u->st.objects_dropped++;
            u->st.samples_dropped += p->nsamples;
        }
        pending_free(p);
    }
}

/* Finishes one writer's segment and queues it: one object per writer and
 * flush, whose footer is the index readers need (docs/format.md §3.2). */
static int cut_one(struct seg_upload *u, struct seg_writer *w, uint64_t nsamples)
{
    struct pending *p = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char key[1024];
    int ret;

    if (!w || seg_writer_empty(w))
        return 0;
    ret = seg_writer_finish(w, &buf, &len, NULL);
    if (ret)
        goto out;
    p = calloc(1, sizeof(*p));
    if (!p) {
        ret = -ENOMEM;
        goto out;
    }
    ret = seg_object_key(key, sizeof(key), u->tenant, u->host, u->flush_start_ms,
                         seg_hash64(buf, len));
    if (ret < 0)
        goto out;
    if (!(p->seg_key = strdup(key))) {
        ret = -ENOMEM;
        goto out;
    }
    p->seg = buf;
    p->seg_len = len;
    p->nsamples = nsamples;
    buf = NULL;

    pthread_mutex_lock(&u->mu);
    if (u->tail)
        u->tail->next = p;
    else
        u->head = p;
    u->tail = p;
    u->st.objects_pending++;
    u->st.bytes_pending += pending_bytes(p);
    enforce_cap(u);
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
    p = NULL;
    ret = 0;
out:
    if (ret < 0) {
        pthread_mutex_lock(&u->mu);
        u->st.encode_errors++;
        u->st.samples_dropped += nsamples;
        pthread_mutex_unlock(&u->mu);
    }
    pending_free(p);
    free(buf);
    return ret < 0 ? ret : 0;
}

/* Cuts every open writer into an object of its own (the first one carries
 * the flush's sample count for the drop counters). */
static int cut(struct seg_upload *u)
{
    int ret = 0;

    for (size_t i = 0; i < u->nws; i++) {
        int r = cut_one(u, u->ws[i], i == 0 ? u->cur_samples : 0);
        if (r && !ret)
            ret = r;
        seg_writer_free(u->ws[i]);
        u->ws[i] = NULL;
    }
    u->nws = 0;
    u->cur_samples = 0;
    return ret;
}

static size_t writers_bytes(const struct seg_upload *u)
{
    size_t n = 0;
    for (size_t i = 0; i < u->nws; i++)
        n += seg_writer_bytes(u->ws[i]);
    return n;
}

/* The writer that takes a profile of @service with @p's sample types:
 * the first whose section of @service has the same types (or none yet);
 * a new one when every open writer clashes. NULL when out of memory or
 * SEG_UPLOAD_MAX_WRITERS are open (the caller cuts and retries). */
static struct seg_writer *writer_for(struct seg_upload *u, const char *service,
                                     const Perftools__Profiles__Profile *p, int64_t t)
{
    for (size_t i = 0; i < u->nws; i++)
        if (seg_writer_accepts(u->ws[i], service, p))
            return u->ws[i];
    if (u->nws == SEG_UPLOAD_MAX_WRITERS)
        return NULL;
    struct seg_writer *w = seg_writer_new(u->tenant, u->host);
    if (!w)
        return NULL;
    if (u->nws == 0) {
        u->flush_start_ms = t;
        u->opened_mono_ms = now_ms(CLOCK_MONOTONIC);
    }
    u->ws[u->nws++] = w;
    return w;
}

/* After an add: the memory cap of the writers being filled. A churning
 * host's services and stacks are cut now rather than piled up for
 * flush_s. */
static int cap_writers(struct seg_upload *u)
{
    if (writers_bytes(u) <= u->o.writer_bytes)
        return 0;
    int ret = cut(u);
    pthread_mutex_lock(&u->mu);
    u->st.objects_cut_early++;
    pthread_mutex_unlock(&u->mu);
    return ret;
}

static int64_t hour_of(int64_t ms)
{
    return ms >= 0 ? ms / 3600000 : -1;
}

int seg_upload_add(struct seg_upload *u, const char *service, const struct profile *p,
                   uint64_t window_start_ns)
{
    struct profile_pprof *pp = NULL;
    int64_t t = (int64_t)(window_start_ns / 1000000);
    int ret;

    /* the flush interval, or the next UTC hour: the key carries the flush
     * start's hour and readers pick an hour's objects by it */
    if (u->nws && (t - u->flush_start_ms >= (int64_t)u->o.flush_s * 1000 ||
                   hour_of(t) != hour_of(u->flush_start_ms))) {
        ret = cut(u);
        if (ret)
            return ret;
    }
    ret = profile_to_pprof(p, &pp);
    if (ret)
        return ret;
    const Perftools__Profiles__Profile *msg = profile_pprof_msg(pp);
    struct seg_writer *w = writer_for(u, service, msg, t);
    if (!w && u->nws == SEG_UPLOAD_MAX_WRITERS && (ret = cut(u)) == 0)
        w = writer_for(u, service, msg, t);
    if (!w)
        ret = ret ? ret : -ENOMEM;
    else
        ret = seg_writer_add_pprof(w, service, msg, NULL, 0, t);
    profile_pprof_free(pp);
    if (ret == 0)
        u->cur_samples += profile_total_samples(p);
    return ret == 0 ? cap_writers(u) : ret;
}

int seg_upload_add_pprof(struct seg_upload *u, const char *service,
                         const Perftools__Profiles__Profile *p, const struct seg_label *labels,
                         size_t nlabels, int64_t time_ms, uint64_t nsamples)
{
    int ret;

    /* An object's key carries its flush start's hour, and readers pick an
     * hour's objects by it: profiles of another hour (a client's clock, a
     * late push) start an object of their own. */
    if (u->nws && (hour_of(time_ms) != hour_of(u->flush_start_ms) ||
                   now_ms(CLOCK_MONOTONIC) - u->opened_mono_ms >= (int64_t)u->o.flush_s * 1000)) {
        if ((ret = cut(u)))
            return ret;
    }
    struct seg_writer *w = writer_for(u, service, p, time_ms);
    if (!w && u->nws == SEG_UPLOAD_MAX_WRITERS) {
        if ((ret = cut(u)))
            return ret;
        w = writer_for(u, service, p, time_ms);
    }
    if (!w)
        return -ENOMEM;
    ret = seg_writer_add_pprof(w, service, p, labels, nlabels, time_ms);
    if (ret == 0)
        u->cur_samples += nsamples;
    return ret == 0 ? cap_writers(u) : ret;
}

int seg_upload_tick(struct seg_upload *u)
{
    if (!u->nws || now_ms(CLOCK_MONOTONIC) - u->opened_mono_ms < (int64_t)u->o.flush_s * 1000)
        return 0;
    return cut(u);
}

size_t seg_upload_writer_bytes(const struct seg_upload *u)
{
    return writers_bytes(u);
}

bool seg_upload_full(struct seg_upload *u)
{
    pthread_mutex_lock(&u->mu);
    bool full =
        u->st.bytes_pending > 0 && u->st.bytes_pending * 4 >= (uint64_t)u->o.buffer_bytes * 3;
    pthread_mutex_unlock(&u->mu);
    return full;
}

int seg_upload_flush(struct seg_upload *u)
{
    return cut(u);
}

size_t seg_upload_drain(struct seg_upload *u, unsigned timeout_ms)
{
    int64_t end = now_ms(CLOCK_REALTIME) + timeout_ms;
    size_t left;

    pthread_mutex_lock(&u->mu);
    while ((u->head || u->busy) && now_ms(CLOCK_REALTIME) < end) {
        struct timespec ts = {.tv_sec = (time_t)(end / 1000),
                              .tv_nsec = (long)(end % 1000) * 1000000};
        pthread_cond_timedwait(&u->idle_cv, &u->mu, &ts);
    }
    left = (size_t)u->st.objects_pending;
    pthread_mutex_unlock(&u->mu);
    return left;
}

void seg_upload_get_stats(struct seg_upload *u, struct seg_upload_stats *out)
{
    pthread_mutex_lock(&u->mu);
    *out = u->st;
    pthread_mutex_unlock(&u->mu);
}

struct seg_upload *seg_upload_new(const struct seg_upload_opts *opts, char *err, size_t errlen)
{
    struct seg_upload *u = calloc(1, sizeof(*u));

    if (!u) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    u->o = *opts;
    if (!u->o.flush_s)
        u->o.flush_s = 60;
    if (!u->o.writer_bytes)
        u->o.writer_bytes = 4u << 20;
    if (!u->o.buffer_bytes)
        u->o.buffer_bytes = DEFAULT_BUFFER;
    if (!u->o.spill_bytes)
        u->o.spill_bytes = DEFAULT_SPILL;
    u->tenant = strdup(opts->tenant ? opts->tenant : "default");
    u->host = strdup(opts->host ? opts->host : "localhost");
    if (opts->spill_dir) {
        u->spill_dir = strdup(opts->spill_dir);
        if (u->spill_dir && mkdir(u->spill_dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create spill directory %s: %s", opts->spill_dir,
                     strerror(errno));
            seg_upload_free(u, 0);
            return NULL;
        }
    }
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    pthread_cond_init(&u->idle_cv, NULL);
    if (!u->tenant || !u->host || pthread_create(&u->thread, NULL, uploader, u) != 0) {
        snprintf(err, errlen, "cannot start the uploader thread");
        seg_upload_free(u, 0);
        return NULL;
    }
    u->started = true;
    return u;
}

void seg_upload_free(struct seg_upload *u, unsigned timeout_ms)
{
    if (!u)
        return;
    if (u->started) {
        cut(u);
        seg_upload_drain(u, timeout_ms);
        pthread_mutex_lock(&u->mu);
        u->stop = true;
        pthread_cond_broadcast(&u->cv);
        pthread_mutex_unlock(&u->mu);
        pthread_join(u->thread, NULL);
        /* What could not be uploaded in time survives on disk if it can. */
        for (struct pending *p = u->head, *n; p; p = n) {
            n = p->next;
            if (u->spill_dir && spill_write(u, p) == 0) {
                u->st.objects_spilled++;
            } else {
                u->st.objects_dropped++;
                u->st.samples_dropped += p->nsamples;
            }
            pending_free(p);
        }
        pthread_mutex_destroy(&u->mu);
        pthread_cond_destroy(&u->cv);
        pthread_cond_destroy(&u->idle_cv);
    }
    for (size_t i = 0; i < u->nws; i++)
        seg_writer_free(u->ws[i]);
    free(u->tenant);
    free(u->host);
    free(u->spill_dir);
    free(u);
}
