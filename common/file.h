/* SPDX-License-Identifier: Apache-2.0 */
/*
 * read_file — reads a whole file (/proc text files, perf maps; profiles the
 * query worker imports) into one heap buffer, refusing files larger than a
 * cap so a runaway perf map or a hostile /proc entry cannot exhaust memory.
 */
#ifndef STOKE_COMMON_FILE_H
#define STOKE_COMMON_FILE_H

#include <stddef.h>

/* Allocates *@buf (NUL-terminated, free with free()) holding the contents of
 * @path. Returns 0, -EFBIG when the file exceeds @max bytes, or -errno. */
int read_file(const char *path, size_t max, char **buf, size_t *len);

#endif
