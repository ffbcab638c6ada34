/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lease — see lease.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/jobs/lease.h"

#define SEQ_MAX 999999999u

static bool owner_ok(const char *o)
{
    size_t n = o ? strlen(o) : 0;
    if (n == 0 || n >= LEASE_OWNER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)o[i] <= ' ' || o[i] == 0x7f)
            return false;
    return true;
}

/* "<prefix>NNNNNNNNN.lease" → NNNNNNNNN, or -1. */
static long seq_of(const char *key, size_t plen)
{
    const char *b = key + plen;
    unsigned v;
    char tail[8];
    if (strlen(b) != 9 + 6 || sscanf(b, "%9u%7s", &v, tail) != 2 || strcmp(tail, ".lease"))
        return -1;
    for (int i = 0; i < 9; i++)
        if (b[i] < '0' || b[i] > '9')
            return -1;
    return (long)v;
}

static int lease_key(char *buf, size_t len, const char *prefix, unsigned seq)
{
    int n = snprintf(buf, len, "%s%09u.lease", prefix, seq);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_seq(struct store *st, const char *prefix, unsigned seq, const char *owner,
                     int64_t expires_ms)
{
    char key[600], body[256];
    int n = snprintf(body, sizeof(body), "owner %s\nexpires %" PRId64 "\n", owner, expires_ms);
    int ret = lease_key(key, sizeof(key), prefix, seq);
    if (ret)
        return ret;
    ret = store_put_new(st, key, body, (size_t)n);
    return ret == -EEXIST ? -EBUSY : ret;
}

int lease_parse(const void *body, size_t len, char *owner, size_t olen, int64_t *expires)
{
    char text[300], who[LEASE_OWNER_MAX];
    long long e;
    int used = 0;

    if (len >= sizeof(text) || olen == 0)
        return -EBADMSG;
    memcpy(text, body, len);
    text[len] = 0;
    if (strlen(text) != len || sscanf(text, "owner %127s expires %lld%n", who, &e, &used) != 2 ||
        !owner_ok(who) || strlen(who) >= olen)
        return -EBADMSG;
    snprintf(owner, olen, "%s", who);
    *expires = e;
    return 0;
}

/* The holder of an existing lease object; one that cannot be read or
 * parsed is an expired lease (it cannot hold anything back). */
static void read_holder(struct store *st, const char *key, char *owner, size_t olen,
                        int64_t *expires)
{
    struct store_buf b = {0};

    owner[0] = 0;
    *expires = 0;
    if (store_get(st, key, 0, 0, &b) == 0 &&
        lease_parse(b.data, b.len, owner, olen, expires) != 0) {
        owner[0] = 0;
        *expires = 0;
    }
    free(b.data);
}

/* The highest sequence number of @l (a listing of a prefix @plen long),
 * or -1. */
static long top_seq(const struct store_list *l, size_t plen)
{
    long top = -1;
    for (size_t i = 0; i < l->n; i++) {
        long s = seq_of(l->keys[i], plen);
        if (s > top)
            top = s;
    }
    return top;
}

int lease_acquire(struct store *st, const char *prefix, const char *owner, int64_t now_ms,
                  unsigned ttl_ms, struct lease *out)
{
    struct store_list l = {0};
    size_t plen = strlen(prefix);
    long top;
    int ret;

    if (!owner_ok(owner) || plen >= sizeof(out->prefix))
        return -EINVAL;
    ret = store_list(st, prefix, &l);
    if (ret && ret != -ENOENT)
        return ret;
    top = top_seq(&l, plen);
    if (top >= 0) {
        char key[600], who[LEASE_OWNER_MAX];
        int64_t expires;
        if ((ret = lease_key(key, sizeof(key), prefix, (unsigned)top)))
            goto out;
        read_holder(st, key, who, sizeof(who), &expires);
        if (expires > now_ms && strcmp(who, owner) != 0) {
            ret = -EBUSY;
            goto out;
        }
    }
    if (top >= (long)SEQ_MAX) {
        ret = -EOVERFLOW;
        goto out;
    }
    unsigned seq = (unsigned)(top + 1);
    if ((ret = write_seq(st, prefix, seq, owner, now_ms + (int64_t)ttl_ms)))
        goto out;
    snprintf(out->prefix, sizeof(out->prefix), "%s", prefix);
    snprintf(out->owner, sizeof(out->owner), "%s", owner);
    out->seq = seq;
    /* The ones before are history now. */
    for (size_t i = 0; i < l.n; i++) {
        long s = seq_of(l.keys[i], plen);
        if (s >= 0 && (unsigned)s < seq)
            store_del(st, l.keys[i]);
    }
out:
    store_list_free(&l);
    return ret;
}

int lease_renew(struct store *st, struct lease *l, int64_t now_ms, unsigned ttl_ms)
{
    struct store_list ls = {0};
    char key[600];
    int ret = store_list(st, l->prefix, &ls);

    if (ret && ret != -ENOENT)
        return ret;
    /* Ours only while nobody wrote after us: a taker deletes the numbers
     * below its own, so seq + 1 may be free again under a newer holder. */
    long top = top_seq(&ls, strlen(l->prefix));
    store_list_free(&ls);
    if (top != (long)l->seq)
        return -EBUSY;
    if (l->seq >= SEQ_MAX)
        return -EOVERFLOW;
    if ((ret = write_seq(st, l->prefix, l->seq + 1, l->owner, now_ms + (int64_t)ttl_ms)))
        return ret;
    if (lease_key(key, sizeof(key), l->prefix, l->seq) == 0)
        store_del(st, key);
    l->seq++;
    return 0;
}

int lease_release(struct store *st, const struct lease *l)
{
    if (l->seq >= SEQ_MAX)
        return 0; /* expires by itself */
    int ret = write_seq(st, l->prefix, l->seq + 1, l->owner, 0);
    return ret == -EBUSY ? 0 : ret;
}

int lease_store_check(struct store *st, const char *prefix, const char *owner)
{
    char key[700];
    int ret;

    if (!owner_ok(owner))
        return -EINVAL;
    if (snprintf(key, sizeof(key), "%sprobe-%s", prefix, owner) >= (int)sizeof(key))
        return -ENAMETOOLONG;
    store_del(st, key);
    ret = store_put_new(st, key, "1", 1);
    if (ret == 0) {
        ret = store_put_new(st, key, "2", 1);
        if (ret == 0) {
            snprintf(st->err, sizeof(st->err),
                     "the store overwrote %.300s on a create-only put (If-None-Match: * ignored): "
                     "compactor replicas cannot share it safely",
                     key);
            ret = -EOPNOTSUPP;
        } else if (ret == -EEXIST) {
            ret = 0;
        }
    }
    store_del(st, key);
    return ret;
}
