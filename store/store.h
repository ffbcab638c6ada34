/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store — the object-store interface: a small vtable with two backends, a
 * directory (the default, ./data) and S3-compatible storage through
 * libcurl's AWS SigV4 signing.
 *
 * Contract shared by both backends (and checked by one acceptance suite):
 * objects are immutable byte strings under '/'-separated keys; put is
 * atomic (no reader ever sees a partial object: the directory backend
 * writes a temp file and renames, S3 PUT is atomic); put of an existing key
 * with the same bytes succeeds (idempotent retries); get may ask for a byte
 * range; list returns keys under a prefix in lexicographic order; delete of
 * a missing key succeeds. put_new creates a key only if it does not exist
 * yet (the directory backend by link(2) of the finished temp file, S3 by
 * `If-None-Match: *`): of several writers racing for one key exactly one
 * gets 0, the others -EEXIST — what leases and the compactor's commit rely
 * on (docs/format.md §13). Errors are negative errnos plus a message:
 * -ENOENT (no such key), -EACCES (403), -EIO (5xx, network, after retries),
 * -ETIMEDOUT, -EINVAL.
 *
 * Credentials are never logged.
 */
#ifndef STOKE_STORE_H
#define STOKE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_opts {
    /* "DIR" or "file://DIR" for a directory; "s3://bucket/prefix" for S3. */
    const char *url;
    /* S3 only; NULL = from the environment (AWS_ENDPOINT_URL, AWS_REGION /
     * AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
     * AWS_SESSION_TOKEN) or a credentials file (AWS_SHARED_CREDENTIALS_FILE,
     * ~/.aws/credentials, profile AWS_PROFILE or "default"). */
    const char *endpoint; /* e.g. "http://127.0.0.1:4568"; NULL = AWS */
    const char *region;   /* default "us-east-1" */
    const char *access_key;
    const char *secret_key;
    const char *session_token;
    int path_style;      /* 1 = path-style, 0 = virtual-hosted, -1 = auto
                            (path-style for custom endpoints) */
    unsigned timeout_ms; /* per request; 0 = 30000 */
    unsigned retries;    /* extra attempts on 5xx/network errors; 0 = 4 */
    const char *ca_file; /* extra CA bundle for TLS; NULL = AWS_CA_BUNDLE,
                            else the system's */
    unsigned list_page;  /* S3 only: max-keys per ListObjectsV2 page;
                            0 = the server's default (1000) */
};

struct store_buf {
    uint8_t *data; /* malloc'd; the caller frees */
    size_t len;
};

struct store_list {
    char **keys; /* malloc'd, sorted */
    uint64_t *sizes;
    size_t n;
};

struct store_stats {
    uint64_t puts, gets, lists, deletes;
    uint64_t bytes_put, bytes_got;
    uint64_t retries, errors;
};

struct store_ops {
    int (*put)(struct store *s, const char *key, const void *data, size_t len);
    /* Create-only put: -EEXIST when the key exists (whatever its bytes). */
    int (*put_new)(struct store *s, const char *key, const void *data, size_t len);
    /* @len == 0 means to the end; a range past the end is clipped. */
    int (*get)(struct store *s, const char *key, uint64_t off, uint64_t len, struct store_buf *out);
    /* Size of an object: 0 or -ENOENT. */
    int (*head)(struct store *s, const char *key, uint64_t *size);
    int (*list)(struct store *s, const char *prefix, struct store_list *out);
    int (*del)(struct store *s, const char *key);
    void (*free)(struct store *s);
};

struct store {
    const struct store_ops *ops;
    char err[512]; /* the last error, for the user */
    struct store_stats stats;
};

/* Opens the backend the URL names (store/backend.c). NULL with a message in
 * @err. */
struct store *store_open(const struct store_opts *opts, char *err, size_t errlen);
void store_close(struct store *s);

static inline int store_put(struct store *s, const char *key, const void *d, size_t n)
{
    return s->ops->put(s, key, d, n);
}
static inline int store_put_new(struct store *s, const char *key, const void *d, size_t n)
{
    return s->ops->put_new(s, key, d, n);
}
static inline int store_get(struct store *s, const char *key, uint64_t off, uint64_t len,
                            struct store_buf *out)
{
    return s->ops->get(s, key, off, len, out);
}
static inline int store_head(struct store *s, const char *key, uint64_t *size)
{
    return s->ops->head(s, key, size);
}
static inline int store_list(struct store *s, const char *prefix, struct store_list *out)
{
    return s->ops->list(s, prefix, out);
}
static inline int store_del(struct store *s, const char *key)
{
    return s->ops->del(s, key);
}
void store_list_free(struct store_list *l);

#endif
