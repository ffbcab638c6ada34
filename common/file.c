/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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
        return -errno;
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
            int err = -errno;
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
