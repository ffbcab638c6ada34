/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_dir: the directory backend. Key "a/b/c" is the file ROOT/a/b/c.
 * Atomicity comes from rename(2): an object is written to a temp file in its
 * final directory, fsync'd, then renamed over the key, so readers see the
 * old object, the new one or none, never a prefix. Safe to use from several
 * threads and processes at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "store/backend.h"

#define TMP_MARK ".stoke-tmp-"
/* Keys have at most STORE_KEY_MAX / 2 components; deeper trees are not ours. */
#define MAX_DEPTH (STORE_KEY_MAX / 2 + 1)

struct dir_store {
    struct store s;
    char *root; /* no trailing '/' */
};

static struct dir_store *ds(struct store *s)
{
    return (struct dir_store *)s;
}

static int path_of(struct dir_store *d, const char *key, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s", d->root, key);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* mkdir -p of the directories above @path (inside the root). */
static int mkparents(struct dir_store *d, char *path)
{
    size_t rootlen = strlen(d->root);

    for (char *p = path + rootlen + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        int rc = mkdir(path, 0755);
        int e = errno;
        *p = '/';
        if (rc && e != EEXIST)
            return -e;
    }
    return 0;
}

static int fsync_parent(char *path)
{
    char *slash = strrchr(path, '/');
    int fd, rc = 0;

    *slash = 0;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *slash = '/';
    if (fd < 0)
        return -errno;
    if (fsync(fd) && errno != EINVAL)
        rc = -errno;
    close(fd);
    return rc;
}

/* @excl: link(2) the finished temp file to the key instead of rename(2),
 * so the key is created whole or not at all, never replaced (-EEXIST). */
static int dir_put_once(struct dir_store *d, const void *data, size_t len, char *path, char *tmp,
                        bool excl)
{
    uint64_t rnd = 0;
    char *slash;
    int fd, rc;

    rc = mkparents(d, path);
    if (rc)
        return rc;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
        rnd ^= (uint64_t)(uintptr_t)&rnd ^ (uint64_t)gettid() << 32;
    slash = strrchr(path, '/');
    if (snprintf(tmp, PATH_MAX, "%.*s/" TMP_MARK "%d-%016llx", (int)(slash - path), path,
                 (int)getpid(), (unsigned long long)rnd) >= PATH_MAX)
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    rc = write_all(fd, data, len);
    if (!rc && fsync(fd))
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    if (!rc && (excl ? link(tmp, path) : rename(tmp, path)))
        rc = -errno;
    if (rc || excl)
        unlink(tmp);
    if (rc)
        return rc;
    return fsync_parent(path);
}

static int put_common(struct store *s, const char *key, const void *data, size_t len, bool excl)
{
    struct dir_store *d = ds(s);
    char path[PATH_MAX], tmp[PATH_MAX];
    int rc;

    if (store_key_check(key))
        return store_fail(s, -EINVAL, "store put: invalid key");
    if (!data && len)
        return store_fail(s, -EINVAL, "store put %s: no data", key);
    if (path_of(d, key, path, sizeof(path)))
        return store_fail(s, -EINVAL, "store put %s: path too long", key);
    /* A concurrent delete may remove a parent directory between our mkdir
     * and open (it prunes empty ones); that is ENOENT, and worth a retry. */
    for (int i = 0;; i++) {
        rc = dir_put_once(d, data, len, path, tmp, excl);
        if (rc != -ENOENT || i == 8)
            break;
    }
    if (rc == -EEXIST && excl) {
        snprintf(s->err, sizeof(s->err), "store put %s: exists", key);
        return rc; /* an answer, not a failure */
    }
    if (rc)
        return store_fail(s, rc, "store put %s: %s", key, strerror(-rc));
    STORE_STAT_ADD(s, puts, 1);
    STORE_STAT_ADD(s, bytes_put, len);
    return 0;
}

static int dir_put(struct store *s, const char *key, const void *data, size_t len)
{
    return put_common(s, key, data, len, false);
}

static int dir_put_new(struct store *s, const char *key, const void *data, size_t len)
{
    return put_common(s, key, data, len, true);
}

static int dir_get(struct store *s, const char *key, uint64_t off, uint64_t len,
                   struct store_buf *out)
{
    struct dir_store *d = ds(s);
    char path[PATH_MAX];
    struct stat st;
    uint64_t n, got = 0;
    uint8_t *buf;
    int fd;

    out->data = NULL;
    out->len = 0;
    if (store_key_check(key))
        return store_fail(s, -EINVAL, "store get: invalid key");
    if (path_of(d, key, path, sizeof(path)))
        return store_fail(s, -EINVAL, "store get %s: path too long", key);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno == ENOTDIR ? ENOENT : errno;
        return store_fail(s, -e, "store get %s: %s", key, strerror(e));
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return store_fail(s, -ENOENT, "store get %s: not an object", key);
    }
    n = off >= (uint64_t)st.st_size ? 0 : (uint64_t)st.st_size - off;
    if (len && len < n)
        n = len;
    if (n > SIZE_MAX - 1) {
        close(fd);
        return store_fail(s, -EFBIG, "store get %s: too large", key);
    }
    buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return store_fail(s, -ENOMEM, "store get %s: out of memory", key);
    }
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return store_fail(s, -e, "store get %s: %s", key, strerror(e));
        }
        got += (uint64_t)r;
    }
    close(fd);
    out->data = buf;
    out->len = n;
    STORE_STAT_ADD(s, gets, 1);
    STORE_STAT_ADD(s, bytes_got, n);
    return 0;
}

static int dir_head(struct store *s, const char *key, uint64_t *size)
{
    struct dir_store *d = ds(s);
    char path[PATH_MAX];
    struct stat st;

    if (store_key_check(key))
        return store_fail(s, -EINVAL, "store head: invalid key");
    if (path_of(d, key, path, sizeof(path)))
        return store_fail(s, -EINVAL, "store head %s: path too long", key);
    if (stat(path, &st) || !S_ISREG(st.st_mode)) {
        /* -ENOENT is an answer, not a failure: not counted as an error. */
        snprintf(s->err, sizeof(s->err), "store head %s: no such key", key);
        return -ENOENT;
    }
    *size = (uint64_t)st.st_size;
    STORE_STAT_ADD(s, gets, 1);
    return 0;
}

struct walk {
    struct store_list *out;
    size_t cap;
    const char *prefix;
    size_t prefixlen;
};

/* @path is ROOT/@rel (rel "" for the root, else ending in '/'). */
static int walk(struct walk *w, char *path, size_t pathlen, size_t rellen, int depth)
{
    DIR *dir;
    struct dirent *de;
    const char *rel = path + pathlen - rellen;
    int rc = 0;

    if (depth > MAX_DEPTH)
        return 0;
    dir = opendir(path);
    if (!dir)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    while ((de = readdir(dir))) {
        size_t nl = strlen(de->d_name);
        struct stat st;

        if (de->d_name[0] == '.' && (nl == 1 || (nl == 2 && de->d_name[1] == '.')))
            continue;
        if (!strncmp(de->d_name, TMP_MARK, strlen(TMP_MARK)))
            continue;
        if (pathlen + nl + 2 > PATH_MAX)
            continue;
        memcpy(path + pathlen, de->d_name, nl + 1);
        /* Compare what we have against the prefix: a subtree is only worth
         * entering if its name and the prefix agree up to the shorter one. */
        size_t klen = rellen + nl;
        size_t cmp = klen < w->prefixlen ? klen : w->prefixlen;
        if (memcmp(rel, w->prefix, cmp))
            continue;
        if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
            continue; /* deleted under us */
        if (S_ISDIR(st.st_mode)) {
            path[pathlen + nl] = '/';
            path[pathlen + nl + 1] = 0;
            rc = walk(w, path, pathlen + nl + 1, rellen + nl + 1, depth + 1);
        } else if (S_ISREG(st.st_mode) && klen >= w->prefixlen && !store_key_check(rel)) {
            rc = store_list_push(w->out, &w->cap, rel, klen, (uint64_t)st.st_size);
        }
        path[pathlen] = 0;
        if (rc)
            break;
    }
    closedir(dir);
    return rc;
}

static int dir_list(struct store *s, const char *prefix, struct store_list *out)
{
    struct dir_store *d = ds(s);
    struct walk w = {.out = out, .prefix = prefix ? prefix : ""};
    char path[PATH_MAX];
    size_t rootlen = strlen(d->root);
    int rc;

    memset(out, 0, sizeof(*out));
    if (store_prefix_check(w.prefix))
        return store_fail(s, -EINVAL, "store list: invalid prefix");
    w.prefixlen = strlen(w.prefix);
    if (rootlen + 2 > sizeof(path))
        return store_fail(s, -ENAMETOOLONG, "store list: root path too long");
    memcpy(path, d->root, rootlen);
    path[rootlen] = '/';
    path[rootlen + 1] = 0;
    rc = walk(&w, path, rootlen + 1, 0, 0);
    if (rc) {
        store_list_free(out);
        return store_fail(s, rc, "store list %s: %s", w.prefix, strerror(-rc));
    }
    store_list_sort(out);
    STORE_STAT_ADD(s, lists, 1);
    return 0;
}

static int dir_del(struct store *s, const char *key)
{
    struct dir_store *d = ds(s);
    char path[PATH_MAX];
    size_t rootlen = strlen(d->root);
    char *slash;

    if (store_key_check(key))
        return store_fail(s, -EINVAL, "store delete: invalid key");
    if (path_of(d, key, path, sizeof(path)))
        return store_fail(s, -EINVAL, "store delete %s: path too long", key);
    if (unlink(path) && errno != ENOENT && errno != ENOTDIR) {
        int e = errno == EISDIR ? ENOENT : errno;
        if (e != ENOENT)
            return store_fail(s, -e, "store delete %s: %s", key, strerror(e));
    }
    /* Prune now-empty parents so the tree does not fill with empty hour
     * directories; rmdir fails harmlessly on the first non-empty one. */
    while ((slash = strrchr(path, '/')) && (size_t)(slash - path) > rootlen) {
        *slash = 0;
        if (rmdir(path))
            break;
    }
    STORE_STAT_ADD(s, deletes, 1);
    return 0;
}

static void dir_free(struct store *s)
{
    struct dir_store *d = ds(s);

    free(d->root);
    free(d);
}

static const struct store_ops dir_ops = {
    .put = dir_put,
    .put_new = dir_put_new,
    .get = dir_get,
    .head = dir_head,
    .list = dir_list,
    .del = dir_del,
    .free = dir_free,
};

struct store *store_dir_open(const struct store_opts *opts, const char *root, char *err,
                             size_t errlen)
{
    struct dir_store *d;
    struct stat st;
    size_t n = strlen(root);
    int rc;

    while (n > 1 && root[n - 1] == '/')
        n--;
    if (n == 0 || n > PATH_MAX - STORE_KEY_MAX - 64) {
        snprintf(err, errlen, "store: directory path is empty or too long");
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d || !(d->root = strndup(root, n))) {
        free(d);
        snprintf(err, errlen, "store: out of memory");
        return NULL;
    }
    if (n == 1 && d->root[0] == '/')
        d->root[0] = 0; /* "/" + key */
    rc = d->root[0] ? mkdir_p(d->root, 0755) : 0;
    if (!rc && (stat(d->root[0] ? d->root : "/", &st) || !S_ISDIR(st.st_mode)))
        rc = -ENOTDIR;
    if (!rc && access(d->root[0] ? d->root : "/", W_OK | X_OK))
        rc = -errno;
    if (rc) {
        snprintf(err, errlen, "store: cannot use directory %s: %s", d->root, strerror(-rc));
        dir_free(&d->s);
        return NULL;
    }
    d->s.ops = &dir_ops;
    return &d->s;
}
