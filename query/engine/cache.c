/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "common/hash.h"

struct centry {
    char *id; /* "key\x01off\x01len" */
    uint64_t h;
    uint8_t *data;
    size_t n;
    struct centry *prev, *next; /* LRU list, head = most recent */
    struct centry *hnext;       /* hash chain */
};

struct cache {
    pthread_mutex_t lock;
    size_t max_bytes, bytes;
    struct centry **buckets;
    size_t nbuckets, n;
    struct centry *head, *tail;
    char *dir;
    struct cache_stats st;
};

/* FNV-1a folded: the disk cache's file names carry it (disk_path). */
static uint64_t id_hash(const char *s)
{
    uint64_t h = hash_str(s);

    return h ^ (h >> 32);
}

struct cache *cache_new(size_t max_bytes, const char *disk_dir)
{
    struct cache *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    c->nbuckets = 4096;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets)
        goto bad;
    if (disk_dir && *disk_dir) {
        if (mkdir(disk_dir, 0700) && errno != EEXIST)
            goto bad;
        c->dir = strdup(disk_dir);
        if (!c->dir)
            goto bad;
    }
    return c;
bad:
    cache_free(c);
    return NULL;
}

static void entry_free(struct centry *e)
{
    free(e->id);
    free(e->data);
    free(e);
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    for (struct centry *e = c->head, *n; e; e = n) {
        n = e->next;
        entry_free(e);
    }
    free(c->buckets);
    free(c->dir);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static char *make_id(const char *key, uint64_t off, uint64_t len)
{
    char *id;
    if (asprintf(&id, "%s\x01%" PRIu64 "\x01%" PRIu64, key, off, len) < 0)
        return NULL;
    return id;
}

static void lru_unlink(struct cache *c, struct centry *e)
{
    /* The ends are recognized by c->head and c->tail themselves, so that
     * unlinking the tail visibly moves c->tail (mem_put's eviction loop). */
    if (e == c->head)
        c->head = e->next;
    else
        e->prev->next = e->next;
    if (e == c->tail)
        c->tail = e->prev;
    else
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct cache *c, struct centry *e)
{
    e->next = c->head;
    e->prev = NULL;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static struct centry *lookup(struct cache *c, const char *id, uint64_t h)
{
    for (struct centry *e = c->buckets[h % c->nbuckets]; e; e = e->hnext)
        if (e->h == h && strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

static void evict(struct cache *c, struct centry *e)
{
    struct centry **pp = &c->buckets[e->h % c->nbuckets];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->bytes -= e->n;
    c->n--;
    c->st.evictions++;
    entry_free(e);
}

static void disk_path(const struct cache *c, uint64_t h, const char *id, char *path, size_t len)
{
    /* Two hashes of the id keep accidental collisions out of reach. */
    uint64_t h2 = 0x84222325cbf29ce4ULL;
    for (const char *s = id; *s; s++)
        h2 = (h2 ^ (uint8_t)*s) * 0x100000001b3ULL + 7;
    snprintf(path, len, "%s/%016" PRIx64 "%016" PRIx64, c->dir, h, h2);
}

static int disk_get(struct cache *c, uint64_t h, const char *id, uint64_t want,
                    struct store_buf *out)
{
    char path[4096];
    struct stat sb;
    int fd, rc = -ENOENT;

    disk_path(c, h, id, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    if (fstat(fd, &sb) == 0 && sb.st_size > 0 && (want == 0 || (uint64_t)sb.st_size == want)) {
        out->data = malloc((size_t)sb.st_size);
        if (out->data && pread(fd, out->data, (size_t)sb.st_size, 0) == sb.st_size) {
            out->len = (size_t)sb.st_size;
            rc = 0;
        } else {
            free(out->data);
            out->data = NULL;
        }
    }
    close(fd);
    return rc;
}

static void disk_put(struct cache *c, uint64_t h, const char *id, const void *data, size_t n)
{
    char path[4096], tmp[4200];
    int fd;

    disk_path(c, h, id, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.%d.%lu.tmp", path, (int)getpid(), (unsigned long)pthread_self());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (write_all(fd, data, n) == 0 && close(fd) == 0) {
        if (rename(tmp, path))
            unlink(tmp);
        return;
    }
    close(fd);
    unlink(tmp);
}

static void mem_put(struct cache *c, char *id, uint64_t h, const void *data, size_t n)
{
    struct centry *e;

    if (c->max_bytes == 0 || n > c->max_bytes / 4 || lookup(c, id, h)) {
        free(id);
        return;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->data = malloc(n ? n : 1))) {
        free(e);
        free(id);
        return;
    }
    memcpy(e->data, data, n);
    e->n = n;
    e->id = id;
    e->h = h;
    e->hnext = c->buckets[h % c->nbuckets];
    c->buckets[h % c->nbuckets] = e;
    lru_push(c, e);
    c->bytes += n;
    c->n++;
    while (c->bytes > c->max_bytes && c->tail && c->tail != e)
        evict(c, c->tail);
}

int cache_get(struct cache *c, const char *key, uint64_t off, uint64_t len, struct store_buf *out)
{
    char *id = make_id(key, off, len);
    uint64_t h;
    struct centry *e;
    int rc = -ENOENT;

    out->data = NULL;
    out->len = 0;
    if (!id)
        return -ENOMEM;
    h = id_hash(id);
    pthread_mutex_lock(&c->lock);
    e = lookup(c, id, h);
    if (e) {
        out->data = malloc(e->n ? e->n : 1);
        if (out->data) {
            memcpy(out->data, e->data, e->n);
            out->len = e->n;
            lru_unlink(c, e);
            lru_push(c, e);
            c->st.hits++;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (rc && c->dir && disk_get(c, h, id, len, out) == 0) {
        pthread_mutex_lock(&c->lock);
        c->st.disk_hits++;
        mem_put(c, id, h, out->data, out->len);
        id = NULL;
        pthread_mutex_unlock(&c->lock);
        rc = 0;
    }
    if (rc) {
        pthread_mutex_lock(&c->lock);
        c->st.misses++;
        pthread_mutex_unlock(&c->lock);
    }
    free(id);
    return rc;
}

void cache_put(struct cache *c, const char *key, uint64_t off, uint64_t len, const void *data,
               size_t n)
{
    char *id = make_id(key, off, len);
    uint64_t h;

    if (!id)
        return;
    h = id_hash(id);
    if (c->dir)
        disk_put(c, h, id, data, n);
    pthread_mutex_lock(&c->lock);
    mem_put(c, id, h, data, n);
    pthread_mutex_unlock(&c->lock);
}

int cache_fetch(struct cache *c, struct store *st, const char *key, uint64_t off, uint64_t len,
                struct store_buf *out, bool *hit)
{
    int rc;

    if (hit)
        *hit = false;
    if (c && cache_get(c, key, off, len, out) == 0) {
        if (hit)
            *hit = true;
        return 0;
    }
    rc = store_get(st, key, off, len, out);
    if (rc)
        return rc;
    if (c)
        cache_put(c, key, off, len, out->data, out->len);
    return 0;
}

void cache_stats(struct cache *c, struct cache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    out->bytes = c->bytes;
    out->entries = c->n;
    pthread_mutex_unlock(&c->lock);
}
