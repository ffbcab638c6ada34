/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer/proc_maps.h"

static int parse_hex(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;
    int digits = 0;

    while (s < end) {
        char c = *s;
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            break;
        if (++digits > 16)
            return -EINVAL;
        v = (v << 4) | d;
        s++;
    }
    if (digits == 0)
        return -EINVAL;
    *p = s;
    *out = v;
    return 0;
}

static int parse_dec(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    if (s >= end || *s < '0' || *s > '9')
        return -EINVAL;
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

static int expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return -EINVAL;
    (*p)++;
    return 0;
}

/* Format (fs/proc/task_mmu.c): "start-end perms offset maj:min inode   path". */
int sym_maps_parse_line(const char *line, size_t len, struct sym_map_line *out)
{
    const char *p = line, *end = line + len;
    uint64_t maj, min;
    static const char deleted[] = " (deleted)";

    memset(out, 0, sizeof(*out));
    while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    if (parse_hex(&p, end, &out->start) || expect(&p, end, '-') || parse_hex(&p, end, &out->end) ||
        expect(&p, end, ' '))
        return -EINVAL;
    if (out->end <= out->start || end - p < 5)
        return -EINVAL;
    out->readable = p[0] == 'r';
    out->writable = p[1] == 'w';
    out->executable = p[2] == 'x';
    p += 4;
    if (expect(&p, end, ' ') || parse_hex(&p, end, &out->offset) || expect(&p, end, ' ') ||
        parse_hex(&p, end, &maj) || expect(&p, end, ':') || parse_hex(&p, end, &min) ||
        expect(&p, end, ' ') || parse_dec(&p, end, &out->inode))
        return -EINVAL;
    if (maj > UINT32_MAX || min > UINT32_MAX)
        return -EINVAL;
    out->dev_major = (uint32_t)maj;
    out->dev_minor = (uint32_t)min;
    while (p < end && *p == ' ')
        p++;
    out->path = p;
    out->path_len = (size_t)(end - p);
    if (out->path_len >= sizeof(deleted) - 1 &&
        memcmp(end - (sizeof(deleted) - 1), deleted, sizeof(deleted) - 1) == 0) {
        out->deleted = true;
        out->path_len -= sizeof(deleted) - 1;
    }
    return 0;
}

int sym_maps_open(const char *proc_root, uint32_t pid, uint64_t start, uint64_t end,
                  const char *path)
{
    char buf[PATH_MAX];
    int fd, n;

    n = snprintf(buf, sizeof(buf), "%s/%u/map_files/%llx-%llx", proc_root, pid,
                 (unsigned long long)start, (unsigned long long)end);
    if (n > 0 && (size_t)n < sizeof(buf)) {
        fd = open(buf, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            return fd;
    }
    if (path[0] != '/')
        return -ENOENT;
    n = snprintf(buf, sizeof(buf), "%s/%u/root%s", proc_root, pid, path);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -ENAMETOOLONG;
    fd = open(buf, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
