/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proc_maps — internal: parses /proc/PID/maps lines and opens the file
 * behind a mapping.
 *
 * The parser never trusts the line: every field is bounds-checked and a line
 * that does not parse is rejected with -EINVAL (the caller skips it). The
 * path in the result points into the caller's line buffer, not NUL-terminated
 * (path_len bytes); a " (deleted)" suffix is reported separately.
 */
#ifndef STOKE_SYM_PROC_MAPS_H
#define STOKE_SYM_PROC_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sym_map_line {
    uint64_t start, end, offset;
    uint32_t dev_major, dev_minor;
    uint64_t inode;
    bool readable, writable, executable;
    const char *path; /* not NUL-terminated; "" for anonymous mappings */
    size_t path_len;
    bool deleted; /* path ended in " (deleted)"; not part of path_len */
};

/* Parses one line of @len bytes (no trailing newline needed). 0 or -EINVAL. */
int sym_maps_parse_line(const char *line, size_t len, struct sym_map_line *out);

/*
 * Opens the file mapped at [@start, @end) in process @pid read-only: first
 * through map_files/ (works for deleted or replaced binaries), then through
 * the process's root/ + @path. Returns an fd or a negative errno.
 */
int sym_maps_open(const char *proc_root, uint32_t pid, uint64_t start, uint64_t end,
                  const char *path);

#endif
