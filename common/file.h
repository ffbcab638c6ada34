/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file — whole-file reads and writes: read_file (/proc text files, perf
 * maps, configuration and credentials files, profiles the query worker
 * imports) into one heap buffer, refusing files larger than a cap so a
 * runaway perf map or a hostile /proc entry cannot exhaust memory;
 * read_first_line for secrets; write_all, which finishes short writes; and
 * write_file_atomic, which readers never see half-written;
 * mkdir_p, which creates a directory and its missing parents;
 * file_drop_pages, which hands a read-only file mapping's pages back; and
 * neg_errno, the negative errno these and their callers return.
 */
#ifndef STOKE_COMMON_FILE_H
#define STOKE_COMMON_FILE_H

#include <errno.h>
#include <stddef.h>

/* Allocates *@buf (NUL-terminated, free with free()) holding the contents of
 * @path. Returns 0, -EFBIG when the file exceeds @max bytes, or -errno. */
int read_file(const char *path, size_t max, char **buf, size_t *len);

/* The first line of @path (its end of line cut) into *@line (malloc'd), for
 * credentials kept in files: the bytes read are zeroed before they are
 * freed. At most @max bytes are read (-EFBIG past them). 0 or -errno. */
int read_first_line(const char *path, size_t max, char **line);

/* Writes all @len bytes of @buf to @fd, retrying short writes and EINTR.
 * 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* Writes @path atomically: a temp file beside it (PATH.tmp.XXXXXX), fsync,
 * mode @mode, then rename over @path, so a reader sees the old file or the
 * whole new one, never a part. 0 or -errno (the temp file removed). */
int write_file_atomic(const char *path, const void *buf, size_t len, unsigned mode);

/* Creates @path and its missing parents with @mode (existing ones are
 * fine). @path is modified while it runs and restored. 0 or -errno. */
int mkdir_p(char *path, unsigned mode);

/* Hands the pages of the page-aligned read-only file mapping @img (@len
 * bytes) back to the kernel (they are read again on the next access):
 * scanning a big binary's tables need not keep all of them resident. Does
 * nothing for a NULL, empty or unaligned @img. */
void file_drop_pages(const void *img, size_t len);

/* -errno right after a failed system call; -EIO should the call have left
 * errno 0, so that a caller's "< 0" test holds either way. (Written so the
 * static analyzer sees the result is negative: it reads errno once and
 * tests the value it returns.) */
static inline int neg_errno(void)
{
    int r = -errno;

    return r < 0 ? r : -EIO;
}

#endif
