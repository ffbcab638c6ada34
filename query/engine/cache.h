/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache — the query worker's cache of immutable object bytes: manifests,
 * footers and section byte ranges, keyed by (object key, offset, length).
 *
 * Objects never change once written, so nothing is ever invalidated: an
 * entry is either present and right, or absent. Memory is an LRU bounded by
 * bytes; an optional directory adds a second, larger tier (files named by a
 * hash of the cache key, written atomically by rename, never trusted beyond
 * their length check). All functions are thread-safe.
 */
#ifndef STOKE_QUERY_CACHE_H
#define STOKE_QUERY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct cache;

struct cache_stats {
    uint64_t hits, disk_hits, misses, evictions, bytes, entries;
};

/* Allocates a cache of at most @max_bytes in memory (0 disables the memory
 * tier) and, when @disk_dir is set, files under it (created if missing).
 * NULL on failure. */
struct cache *cache_new(size_t max_bytes, const char *disk_dir);
void cache_free(struct cache *c);

/* Copies the cached bytes of (key, off, len) into a malloc'd out->data.
 * 0 on a hit, -ENOENT on a miss. */
int cache_get(struct cache *c, const char *key, uint64_t off, uint64_t len, struct store_buf *out);

/* Stores a copy of @data. Entries larger than a quarter of the memory tier
 * go to disk only. */
void cache_put(struct cache *c, const char *key, uint64_t off, uint64_t len, const void *data,
               size_t n);

/* Gets (key, off, len) from the cache or else from @st (and caches it).
 * @hit (may be NULL) says which. Returns 0 or the store's negative errno. */
int cache_fetch(struct cache *c, struct store *st, const char *key, uint64_t off, uint64_t len,
                struct store_buf *out, bool *hit);

void cache_stats(struct cache *c, struct cache_stats *out);

#endif
