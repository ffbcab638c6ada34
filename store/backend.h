/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store/backend.h — what the store backends share, and the pieces of the S3
 * backend exposed so the unit tests and fuzz targets can reach them without
 * a server. Not for use outside store/ and tests/.
 *
 * Invariants: every backend embeds struct store as its first member and is
 * freed through ops->free; keys and prefixes pass store_key_check /
 * store_prefix_check before any backend touches a path or a URL, so both
 * backends accept and reject exactly the same keys.
 */
#ifndef STOKE_STORE_BACKEND_H
#define STOKE_STORE_BACKEND_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* S3's own limit on key length, applied to both backends. */
#define STORE_KEY_MAX 1024
/* A file name's limit (NAME_MAX), applied to both backends. */
#define STORE_COMPONENT_MAX 255

struct store *store_dir_open(const struct store_opts *opts, const char *root, char *err,
                             size_t errlen);
struct store *store_s3_open(const struct store_opts *opts, const char *bucket_and_prefix, char *err,
                            size_t errlen);

/* 0 or -EINVAL: empty key, leading '/', empty, "." or ".." components,
 * control characters, a trailing '/', longer than STORE_KEY_MAX, a
 * component longer than STORE_COMPONENT_MAX, or a component starting with the directory backend's
 * temp-file marker. */
int store_key_check(const char *key);
/* Like store_key_check, but "" is allowed and a trailing '/' too. */
int store_prefix_check(const char *prefix);

/* Formats s->err and returns @rc, so error paths read `return store_fail(...)`;
 * counts the error. */
int store_fail(struct store *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends a key (copied) and size to @l, whose capacity is *cap. */
int store_list_push(struct store_list *l, size_t *cap, const char *key, size_t keylen,
                    uint64_t size);
/* Sorts @l by key (bytewise, like S3). */
void store_list_sort(struct store_list *l);

#define STORE_STAT_ADD(s, field, v) __atomic_fetch_add(&(s)->stats.field, (v), __ATOMIC_RELAXED)

/* ---- S3 helpers --------------------------------------------------------- */

/* One page of a ListObjectsV2 response. Appends to @items (capacity *cap);
 * sets *truncated and *token (malloc'd, or NULL). Keys are entity-decoded,
 * at most STORE_KEY_MAX * 4 bytes, never contain NUL. 0 or -EPROTO (the
 * body is not a ListBucketResult we understand) or -ENOMEM. */
int s3_list_parse(const char *xml, size_t len, struct store_list *items, size_t *cap,
                  int *truncated, char **token);

/* <Code>…</Code> of an S3 error body into @code (truncated, NUL-terminated;
 * "" when absent). */
void s3_error_code(const char *xml, size_t len, char *code, size_t codelen);

/* SigV4 URI encoding: unreserved characters (A-Z a-z 0-9 - . _ ~) stay,
 * '/' stays when @keep_slash, everything else becomes %XX (upper case).
 * Returns the length written, or -ENAMETOOLONG if @out is too small. */
int s3_uri_encode(const char *in, int keep_slash, char *out, size_t outlen);

struct s3_creds {
    char *access_key, *secret_key, *session_token; /* malloc'd */
};
/* Finds [@profile] in the text of an AWS shared credentials file. 0, or
 * -ENOENT when the profile or its two keys are missing. */
int s3_creds_parse(const char *text, size_t len, const char *profile, struct s3_creds *c);
void s3_creds_clear(struct s3_creds *c);

#endif
