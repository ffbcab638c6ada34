/* SPDX-License-Identifier: Apache-2.0 */
/* store backends: the choice of backend by URL (store_open) and the key
 * rules and helpers both backends share (backend.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"

struct store *store_open(const struct store_opts *opts, char *err, size_t errlen)
{
    const char *url = opts && opts->url && *opts->url ? opts->url : "data";
    struct store_opts none = {0};

    if (!opts)
        opts = &none;
    if (!strncmp(url, "s3://", 5))
        return store_s3_open(opts, url + 5, err, errlen);
    if (!strncmp(url, "file://", 7))
        return store_dir_open(opts, url + 7, err, errlen);
    if (strstr(url, "://")) {
        int n = (int)(strstr(url, "://") - url);

        /* Naming the scheme only: the rest may carry user:password. */
        snprintf(err, errlen,
                 "store: unsupported URL scheme '%.*s://' (use a directory, file://DIR "
                 "or s3://BUCKET/PREFIX)",
                 n > 16 ? 16 : n, url);
        return NULL;
    }
    return store_dir_open(opts, url, err, errlen);
}

/* The directory backend's temp files start with this; no key component may,
 * so a temp file can never shadow or be listed as an object. */
#define TMP_MARK ".stoke-tmp-"

static int check(const char *key, int is_prefix)
{
    const char *comp;
    size_t len;

    if (!key)
        return -EINVAL;
    len = strlen(key);
    if (len > STORE_KEY_MAX || (!is_prefix && len == 0) || key[0] == '/')
        return -EINVAL;
    for (const char *p = key; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return -EINVAL;
    comp = key;
    for (;;) {
        const char *slash = strchr(comp, '/');
        size_t n = slash ? (size_t)(slash - comp) : strlen(comp);

        /* A prefix may end in the middle of a component or right after '/'. */
        if (!slash && is_prefix && n == 0)
            break;
        if (n == 0 || (n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.'))
            return -EINVAL;
        if (n > STORE_COMPONENT_MAX)
            return -EINVAL;
        if (n >= strlen(TMP_MARK) && !strncmp(comp, TMP_MARK, strlen(TMP_MARK)))
            return -EINVAL;
        if (!slash)
            break;
        comp = slash + 1;
    }
    return 0;
}

int store_key_check(const char *key)
{
    return check(key, 0);
}

int store_prefix_check(const char *prefix)
{
    return check(prefix, 1);
}

int store_fail(struct store *s, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    STORE_STAT_ADD(s, errors, 1);
    return rc;
}

int store_list_push(struct store_list *l, size_t *cap, const char *key, size_t keylen,
                    uint64_t size)
{
    char *k;

    if (l->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        char **keys;
        uint64_t *sizes;

        if (ncap > SIZE_MAX / sizeof(*sizes))
            return -ENOMEM;
        keys = realloc(l->keys, ncap * sizeof(*keys));
        if (!keys)
            return -ENOMEM;
        l->keys = keys;
        sizes = realloc(l->sizes, ncap * sizeof(*sizes));
        if (!sizes)
            return -ENOMEM;
        l->sizes = sizes;
        *cap = ncap;
    }
    k = strndup(key, keylen);
    if (!k)
        return -ENOMEM;
    l->keys[l->n] = k;
    l->sizes[l->n] = size;
    l->n++;
    return 0;
}

struct entry {
    char *key;
    uint64_t size;
};

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

void store_list_sort(struct store_list *l)
{
    struct entry *e;

    if (l->n < 2)
        return;
    e = malloc(l->n * sizeof(*e));
    if (!e) {
        /* Rare: fall back to an insertion sort rather than fail the list. */
        for (size_t i = 1; i < l->n; i++)
            for (size_t j = i; j > 0 && strcmp(l->keys[j - 1], l->keys[j]) > 0; j--) {
                char *k = l->keys[j];
                uint64_t s = l->sizes[j];
                l->keys[j] = l->keys[j - 1], l->sizes[j] = l->sizes[j - 1];
                l->keys[j - 1] = k, l->sizes[j - 1] = s;
            }
        return;
    }
    for (size_t i = 0; i < l->n; i++)
        e[i] = (struct entry){l->keys[i], l->sizes[i]};
    qsort(e, l->n, sizeof(*e), cmp_entry);
    for (size_t i = 0; i < l->n; i++)
        l->keys[i] = e[i].key, l->sizes[i] = e[i].size;
    free(e);
}
