/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lease — who of several compactor replicas works on one (tenant, hour)
 * now, from the object store alone (docs/format.md §13.3).
 *
 * A lease is a sequence of small objects <prefix><seq>.lease, each written
 * with a create-only put (store_put_new): the holder is the owner of the
 * highest sequence number while its expiry lies ahead. Taking a lease is
 * writing seq + 1, so of two replicas that saw the same state exactly one
 * gets it; an expired lease (a compactor that crashed or stalled) is taken
 * over the same way. Release writes seq + 1 with expiry 0.
 *
 * A holder renews by writing seq + 1 the same way, after checking that
 * the highest number is still its own: a replica that took the lease over
 * in the meantime makes the renewal fail, and the holder leaves the work.
 *
 * Leases save work; they do not make compaction correct. A replica whose
 * lease lapsed mid-pass (a pause longer than the TTL between two renewals)
 * may still finish: its commit is itself a create-only put of the hour's
 * next manifest generation, which only one pass can win
 * (query/jobs/compact.h). Expiry compares the writers' clocks: keep them
 * within a fraction of the TTL.
 */
#ifndef STOKE_LEASE_H
#define STOKE_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define LEASE_OWNER_MAX 128

struct lease {
    char prefix[512];
    char owner[LEASE_OWNER_MAX];
    unsigned seq; /* the object we wrote */
};

/*
 * Takes the lease under @prefix (ends in '/') for @owner until now + @ttl_ms.
 * 0: held, @out filled; -EBUSY: another owner's lease is live, or another
 * replica took it first; else the store's errno (-EINVAL for an owner
 * with spaces or control characters, or too long).
 */
int lease_acquire(struct store *st, const char *prefix, const char *owner, int64_t now_ms,
                  unsigned ttl_ms, struct lease *out);

/*
 * Parses a lease object's body ("owner ID\nexpires MS\n"). 0 with @owner
 * (NUL-terminated, no spaces, shorter than LEASE_OWNER_MAX) and @expires;
 * -EBADMSG for anything else (callers treat it as an expired lease).
 */
int lease_parse(const void *body, size_t len, char *owner, size_t olen, int64_t *expires);

/*
 * Extends @l, held by its owner, until now + @ttl_ms: 0 with l->seq the
 * object written now (the one before is deleted); -EBUSY when another
 * replica wrote a lease object after ours (it took the lease over, or
 * released it since: either way ours is gone), or wrote seq + 1 first;
 * else the store's errno.
 */
int lease_renew(struct store *st, struct lease *l, int64_t now_ms, unsigned ttl_ms);

/* Gives the lease back, so another replica need not wait for its expiry.
 * 0 (also when another owner took it over already) or the store's errno. */
int lease_release(struct store *st, const struct lease *l);

/*
 * Checks that @st refuses a create-only put of an existing key (some
 * S3-compatible servers ignore If-None-Match and overwrite): writes and
 * deletes <prefix>probe-<owner>. 0 if it does; -EOPNOTSUPP if it does
 * not (@st->err says so); else the store's errno.
 */
int lease_store_check(struct store *st, const char *prefix, const char *owner);

#endif
