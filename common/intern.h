/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intern — the one table of the tree that gives byte strings dense integer
 * ids: strings, u32 sequences (stacks, location keys), fixed-size records
 * (a segment's sample rows). The exporters' and the segment writer's
 * dictionaries, the query worker's merged profiles and string sets, and
 * the agent's label limiter all use it.
 *
 * Owns one contiguous pool holding every key (offsets, not pointers, so it
 * grows by realloc), an entry array indexed by id, and an open-addressing
 * index (linear probing, load <= 1/2) over the entries. Each of the three
 * that reaches INTERN_BIG bytes moves to a mapping of its own (huge pages
 * where the kernel gives them; grown by mremap, not copied). Each key starts
 * 8-aligned in the pool and is followed by at least one NUL byte, so u32
 * and u64 keys are read in place and string keys are C strings. Nothing is
 * ever removed; ids are 0, 1, 2... in first-seen order, so identical input
 * gives identical ids.
 *
 * A zeroed struct intern is an empty table. Pointers returned by
 * intern_get are valid until the next add to the same table. Not
 * thread-safe.
 */
#ifndef STOKE_COMMON_INTERN_H
#define STOKE_COMMON_INTERN_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

#define INTERN_NONE UINT32_MAX /* no id: absent, or out of memory */
#define INTERN_BIG  (2u << 20) /* bytes: an array this large is mapped */

struct intern_entry {
    size_t off;    /* into the pool */
    uint32_t len;  /* bytes, excluding the padding */
    uint32_t hash; /* low 32 bits of hash_bytes(key) */
};

struct intern {
    uint8_t *pool;
    size_t pool_len, pool_cap;
    struct intern_entry *e;
    uint32_t n, cap;
    uint32_t *slots; /* entry id + 1; 0 = empty; NULL until the first add */
    size_t mask;     /* number of slots - 1 (a power of two) */
};

void intern_free(struct intern *t);

/* The heap bytes @t holds (pool, entries and index, as allocated). */
static inline size_t intern_bytes(const struct intern *t)
{
    return t->pool_cap + (size_t)t->cap * sizeof(*t->e) +
           (t->slots ? (t->mask + 1) * sizeof(*t->slots) : 0);
}

/* Adds @key (@len bytes) unless present; its id in *@id. Returns 1 when it
 * was added, 0 when it was there, -ENOMEM. */
int intern_add(struct intern *t, const void *key, size_t len, uint32_t *id);
/* The same with @hash = intern_hash(@key, @len) computed beforehand: a
 * caller adding many keys hashes a few ahead and intern_prefetch()es their
 * index slots, so the cache misses of several lookups overlap. */
int intern_add_hashed(struct intern *t, const void *key, size_t len, uint32_t hash, uint32_t *id);
static inline uint32_t intern_hash(const void *key, size_t len)
{
    return (uint32_t)hash_bytes(key, len);
}
/* A hint: brings the index slot of @hash into the cache. */
static inline void intern_prefetch(const struct intern *t, uint32_t hash)
{
    if (t->slots)
        __builtin_prefetch(&t->slots[hash & t->mask]);
}
/* A hint, some time after intern_prefetch: brings the entry of the first
 * key in @hash's probe run into the cache. */
static inline void intern_prefetch_entry(const struct intern *t, uint32_t hash)
{
    uint32_t s = t->slots ? t->slots[hash & t->mask] : 0;

    if (s)
        __builtin_prefetch(&t->e[s - 1]);
}
/* Makes room for @n keys without growing the index or the entry array
 * (a table whose size is known roughly up front). 0 or -ENOMEM. */
int intern_reserve(struct intern *t, uint32_t n);
/* The id of @key, or INTERN_NONE when absent. */
uint32_t intern_find(const struct intern *t, const void *key, size_t len);

/* The key of @id (< t->n) and its length in bytes (@len may be NULL). */
static inline const void *intern_get(const struct intern *t, uint32_t id, uint32_t *len)
{
    if (len)
        *len = t->e[id].len;
    return t->pool + t->e[id].off;
}

/* Strings (@len bytes, no NUL needed; NULL interns as ""): the id, or
 * INTERN_NONE when out of memory. */
uint32_t intern_strn(struct intern *t, const char *s, size_t len);
uint32_t intern_str(struct intern *t, const char *s);
static inline const char *intern_str_get(const struct intern *t, uint32_t id)
{
    return (const char *)intern_get(t, id, NULL);
}

/* Sequences of u32 (@n items; may be empty): the id, or INTERN_NONE. */
uint32_t intern_seq(struct intern *t, const uint32_t *v, size_t n);
static inline const uint32_t *intern_seq_get(const struct intern *t, uint32_t id, size_t *n)
{
    uint32_t len;
    const uint32_t *v = (const uint32_t *)intern_get(t, id, &len);

    *n = len / sizeof(uint32_t);
    return v;
}

#endif
