/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intern — dense integer ids for strings and for short sequences of u32,
 * the building blocks of the exporter's dictionaries.
 *
 * Owns: for each table, one contiguous pool holding every interned item
 * (offsets, not pointers, so the pool can grow by realloc), an entry array
 * indexed by id, and an open-addressing index (linear probing, load <= 1/2)
 * over the entries. Nothing is ever removed; ids are assigned 0, 1, 2... in
 * first-seen order, so identical input sequences give identical ids.
 *
 * strtab: id 0 is always "" (pprof's string_table[0]).
 * seqtab: sequences may be empty; each distinct sequence gets one id.
 *
 * Pointers returned by *_get are valid until the next *_intern on the same
 * table. Not thread-safe.
 */
#ifndef STOKE_INTERN_H
#define STOKE_INTERN_H

#include <stddef.h>
#include <stdint.h>

#define INTERN_NONE UINT32_MAX /* returned on allocation failure */

struct intern_entry {
    uint64_t hash;
    size_t off;   /* into the pool */
    uint32_t len; /* bytes (strtab, excluding the NUL) or u32 items (seqtab) */
};

struct intern_index {
    uint32_t *slots; /* entry id + 1; 0 = empty */
    size_t mask;     /* nslots - 1; nslots is a power of two */
};

struct strtab {
    char *pool;
    size_t pool_len, pool_cap;
    struct intern_entry *e;
    size_t n, cap;
    struct intern_index idx;
};

struct seqtab {
    uint32_t *pool;
    size_t pool_len, pool_cap;
    struct intern_entry *e;
    size_t n, cap;
    struct intern_index idx;
};

uint64_t intern_hash_bytes(const void *p, size_t len);

/* Initialises an empty table (allocates; free with strtab_free). 0 or -ENOMEM. */
int strtab_init(struct strtab *t);
void strtab_free(struct strtab *t);
/* Returns the id of @s (len bytes, need not be NUL-terminated), or INTERN_NONE. */
uint32_t strtab_intern_len(struct strtab *t, const char *s, size_t len);
uint32_t strtab_intern(struct strtab *t, const char *s); /* NULL interns as "" */
/* NUL-terminated; @id must be < t->n. */
const char *strtab_get(const struct strtab *t, uint32_t id);

/* Initialises an empty table (allocates; free with seqtab_free). 0 or -ENOMEM. */
int seqtab_init(struct seqtab *t);
void seqtab_free(struct seqtab *t);
/* Returns the id of the sequence @v[0..n), or INTERN_NONE. */
uint32_t seqtab_intern(struct seqtab *t, const uint32_t *v, size_t n);
/* Returns the items of sequence @id and its length in *@n; @id must be < t->n. */
const uint32_t *seqtab_get(const struct seqtab *t, uint32_t id, size_t *n);

#endif
