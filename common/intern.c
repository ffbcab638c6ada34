/* SPDX-License-Identifier: Apache-2.0 */
#include "common/intern.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t mix64(uint64_t h)
{
    /* murmur3 fmix64: full avalanche, so linear probing on the low bits works */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t intern_hash_bytes(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0x100000001b3ULL);
    uint64_t w;

    /* a word at a time: symbol names are long and this is on every intern */
    while (len >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ mix64(w)) * 0x9fb21c651e98df25ULL;
        s += 8;
        len -= 8;
    }
    w = 0;
    if (len)
        memcpy(&w, s, len);
    h = (h ^ mix64(w ^ len)) * 0x9fb21c651e98df25ULL;
    return mix64(h);
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *nb;

    if (need <= *cap)
        return 0;
    ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return -ENOMEM;
        ncap *= 2;
    }
    nb = realloc(*buf, ncap * elem);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int index_init(struct intern_index *x, size_t nslots)
{
    x->slots = calloc(nslots, sizeof(*x->slots));
    if (!x->slots)
        return -ENOMEM;
    x->mask = nslots - 1;
    return 0;
}

/* Doubles the index when it would pass half full: keeps probe runs short. */
static int index_reserve(struct intern_index *x, const struct intern_entry *e, size_t n)
{
    struct intern_index nx;
    size_t i;

    if ((n + 1) * 2 <= x->mask + 1)
        return 0;
    if (index_init(&nx, (x->mask + 1) * 2) < 0)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        size_t s = e[i].hash & nx.mask;
        while (nx.slots[s])
            s = (s + 1) & nx.mask;
        nx.slots[s] = (uint32_t)i + 1;
    }
    free(x->slots);
    *x = nx;
    return 0;
}

/* ---- strings ------------------------------------------------------------ */

int strtab_init(struct strtab *t)
{
    memset(t, 0, sizeof(*t));
    if (index_init(&t->idx, 256) < 0)
        return -ENOMEM;
    if (strtab_intern_len(t, "", 0) != 0) {
        strtab_free(t);
        return -ENOMEM;
    }
    return 0;
}

void strtab_free(struct strtab *t)
{
    free(t->pool);
    free(t->e);
    free(t->idx.slots);
    memset(t, 0, sizeof(*t));
}

uint32_t strtab_intern_len(struct strtab *t, const char *s, size_t len)
{
    uint64_t h = intern_hash_bytes(s, len);
    size_t slot = h & t->idx.mask;
    uint32_t v;

    while ((v = t->idx.slots[slot])) {
        const struct intern_entry *e = &t->e[v - 1];
        if (e->hash == h && e->len == len && memcmp(t->pool + e->off, s, len) == 0)
            return v - 1;
        slot = (slot + 1) & t->idx.mask;
    }
    if (len >= UINT32_MAX || t->n >= INTERN_NONE - 1)
        return INTERN_NONE;
    if (grow((void **)&t->pool, &t->pool_cap, t->pool_len + len + 1, 1) < 0 ||
        grow((void **)&t->e, &t->cap, t->n + 1, sizeof(*t->e)) < 0)
        return INTERN_NONE;
    if (index_reserve(&t->idx, t->e, t->n + 1) < 0)
        return INTERN_NONE;
    memcpy(t->pool + t->pool_len, s, len);
    t->pool[t->pool_len + len] = '\0';
    t->e[t->n] = (struct intern_entry){.hash = h, .off = t->pool_len, .len = (uint32_t)len};
    t->pool_len += len + 1;
    slot = h & t->idx.mask;
    while (t->idx.slots[slot])
        slot = (slot + 1) & t->idx.mask;
    t->idx.slots[slot] = (uint32_t)t->n + 1;
    return (uint32_t)t->n++;
}

uint32_t strtab_intern(struct strtab *t, const char *s)
{
    return s ? strtab_intern_len(t, s, strlen(s)) : 0;
}

const char *strtab_get(const struct strtab *t, uint32_t id)
{
    return t->pool + t->e[id].off;
}

/* ---- u32 sequences ------------------------------------------------------ */

int seqtab_init(struct seqtab *t)
{
    memset(t, 0, sizeof(*t));
    return index_init(&t->idx, 256);
}

void seqtab_free(struct seqtab *t)
{
    free(t->pool);
    free(t->e);
    free(t->idx.slots);
    memset(t, 0, sizeof(*t));
}

uint32_t seqtab_intern(struct seqtab *t, const uint32_t *v, size_t n)
{
    uint64_t h = intern_hash_bytes(v, n * sizeof(*v));
    size_t slot = h & t->idx.mask;
    uint32_t x;

    while ((x = t->idx.slots[slot])) {
        const struct intern_entry *e = &t->e[x - 1];
        if (e->hash == h && e->len == n &&
            (n == 0 || memcmp(t->pool + e->off, v, n * sizeof(*v)) == 0))
            return x - 1;
        slot = (slot + 1) & t->idx.mask;
    }
    if (n >= UINT32_MAX || t->n >= INTERN_NONE - 1)
        return INTERN_NONE;
    if (grow((void **)&t->pool, &t->pool_cap, t->pool_len + n, sizeof(*t->pool)) < 0 ||
        grow((void **)&t->e, &t->cap, t->n + 1, sizeof(*t->e)) < 0)
        return INTERN_NONE;
    if (index_reserve(&t->idx, t->e, t->n + 1) < 0)
        return INTERN_NONE;
    if (n)
        memcpy(t->pool + t->pool_len, v, n * sizeof(*v));
    t->e[t->n] = (struct intern_entry){.hash = h, .off = t->pool_len, .len = (uint32_t)n};
    t->pool_len += n;
    slot = h & t->idx.mask;
    while (t->idx.slots[slot])
        slot = (slot + 1) & t->idx.mask;
    t->idx.slots[slot] = (uint32_t)t->n + 1;
    return (uint32_t)t->n++;
}

const uint32_t *seqtab_get(const struct seqtab *t, uint32_t id, size_t *n)
{
    *n = t->e[id].len;
    return t->pool ? t->pool + t->e[id].off : NULL;
}
