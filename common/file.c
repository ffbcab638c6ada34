/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"

/* /proc files report st_size 0, so the buffer grows while reading. */
int read_file(const char *path, size_t max, char **buf, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *buf = NULL;
    *len = 0;
    if (fd < 0)
        return neg_errno();
    b = malloc(cap);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max) {
                free(b);
                close(fd);
                return -EFBIG;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                close(fd);
                return -ENOMEM;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int err = neg_errno();
            free(b);
            close(fd);
            return err;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            free(b);
            close(fd);
            return -EFBIG;
        }
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

int read_first_line(const char *path, size_t max, char **line)
{
    char *buf;
    size_t len;
    int rc = read_file(path, max, &buf, &len);

    *line = NULL;
    if (rc)
        return rc;
    buf[strcspn(buf, "\r\n")] = '\0';
    *line = strdup(buf);
    explicit_bzero(buf, len);
    free(buf);
    return *line ? 0 : -ENOMEM;
}

int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int write_file_atomic(const char *path, const void *buf, size_t len, unsigned mode)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof(".tmp.XXXXXX"));
    int fd, err;

    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
    fd = mkstemp(tmp);
    if (fd < 0) {
        err = -errno;
        free(tmp);
        return err;
    }
    err = write_all(fd, buf, len);
    /* readers must never see a half-written file under the final name */
    if (!err && fsync(fd) < 0)
        err = -errno;
    if (fchmod(fd, (mode_t)mode) < 0 && !err)
        err = -errno;
    if (close(fd) < 0 && !err)
        err = -errno;
    if (!err && rename(tmp, path) < 0)
        err = -errno;
    if (err)
        unlink(tmp);
    free(tmp);
    return err;
}

void file_drop_pages(const void *img, size_t len)
{
    if (img && len && ((uintptr_t)img & 4095) == 0)
        madvise((void *)(uintptr_t)img, len, MADV_DONTNEED);
}

int mkdir_p(char *path, unsigned mode)
{
    for (char *p = path + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        int rc = mkdir(path, (mode_t)mode);
        int e = errno;
        *p = '/';
        if (rc && e != EEXIST)
            return -e;
    }
    if (mkdir(path, (mode_t)mode) && errno != EEXIST)
        return -errno;
    return 0;
}
