/* SPDX-License-Identifier: Apache-2.0 */
#include "common/intern.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/hash.h"

/* ---- big arrays ---------------------------------------------------------
 * An array of INTERN_BIG bytes or more (pool, entries or index) gets a
 * mapping of its own, a whole number of 2 MiB huge pages long, and grows
 * by mremap: no copy and no second round of page faults, where realloc
 * copies into fresh pages and faults every one of them. The mapping asks
 * for transparent huge pages (MADV_HUGEPAGE): one fault per 2 MiB instead
 * of 512 (a query worker's merged stacks are tens of MB; perf: page
 * faults were most of a cold query's time, BENCHMARKS.md). Smaller arrays
 * stay on the heap. Whether an array is mapped follows from its size, so
 * nothing else is recorded. */

#define HUGE_PAGE (2u << 20) /* <= INTERN_BIG */

static size_t map_len(size_t bytes)
{
    return (bytes + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
}

static void *map_new(size_t bytes)
{
    void *p =
        mmap(NULL, map_len(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return NULL;
    madvise(p, map_len(bytes), MADV_HUGEPAGE); /* a hint: may be refused */
    return p;
}

/* @p (@old bytes, NULL when 0) resized to @bytes (> @old); NULL on ENOMEM
 * (@p is then kept). New bytes past @old are zeroed when mapped, not
 * otherwise. */
static void *arr_grow(void *p, size_t old, size_t bytes)
{
    if (bytes < INTERN_BIG)
        return realloc(p, bytes);
    if (old >= INTERN_BIG) {
        if (map_len(bytes) == map_len(old))
            return p;
        void *n = mremap(p, map_len(old), map_len(bytes), MREMAP_MAYMOVE);
        if (n == MAP_FAILED)
            return NULL;
        madvise(n, map_len(bytes), MADV_HUGEPAGE);
        return n;
    }
    void *n = map_new(bytes);
    if (!n)
        return NULL;
    if (old)
        memcpy(n, p, old);
    free(p);
    return n;
}

/* @bytes zeroed bytes. */
static void *arr_zalloc(size_t bytes)
{
    return bytes < INTERN_BIG ? calloc(1, bytes) : map_new(bytes);
}

static void arr_free(void *p, size_t bytes)
{
    if (p && bytes >= INTERN_BIG)
        munmap(p, map_len(bytes));
    else
        free(p);
}

static size_t slots_bytes(const struct intern *t)
{
    return t->slots ? (t->mask + 1) * sizeof(*t->slots) : 0;
}

void intern_free(struct intern *t)
{
    arr_free(t->pool, t->pool_cap);
    arr_free(t->e, (size_t)t->cap * sizeof(*t->e));
    arr_free(t->slots, slots_bytes(t));
    memset(t, 0, sizeof(*t));
}

/* Rebuilds the index with @ns slots (a power of two above 2 * t->n). */
static int resize_slots(struct intern *t, size_t ns)
{
    uint32_t *sl = arr_zalloc(ns * sizeof(*sl));

    if (!sl)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->n; i++) {
        size_t h = t->e[i].hash & (ns - 1);
        while (sl[h])
            h = (h + 1) & (ns - 1);
        sl[h] = i + 1;
    }
    arr_free(t->slots, slots_bytes(t));
    t->slots = sl;
    t->mask = ns - 1;
    return 0;
}

/* Doubles the index: keeps probe runs short at load <= 1/2. */
static int grow_slots(struct intern *t)
{
    return resize_slots(t, t->slots ? (t->mask + 1) * 2 : 64);
}

int intern_reserve(struct intern *t, uint32_t n)
{
    size_t ns = 64;

    while (ns < (size_t)n * 2)
        ns *= 2;
    if (ns > (t->slots ? t->mask + 1 : 0) && resize_slots(t, ns))
        return -ENOMEM;
    if (n > t->cap) {
        struct intern_entry *e =
            arr_grow(t->e, (size_t)t->cap * sizeof(*e), (size_t)n * sizeof(*e));
        if (!e)
            return -ENOMEM;
        t->e = e;
        t->cap = n;
    }
    return 0;
}

uint32_t intern_find(const struct intern *t, const void *key, size_t len)
{
    if (!t->slots || len > UINT32_MAX)
        return INTERN_NONE;
    uint32_t hash = intern_hash(key, len);
    for (size_t h = hash & t->mask; t->slots[h]; h = (h + 1) & t->mask) {
        const struct intern_entry *e = &t->e[t->slots[h] - 1];
        if (e->hash == hash && e->len == len && (!len || !memcmp(t->pool + e->off, key, len)))
            return t->slots[h] - 1;
    }
    return INTERN_NONE;
}

int intern_add(struct intern *t, const void *key, size_t len, uint32_t *id)
{
    return intern_add_hashed(t, key, len, intern_hash(key, len), id);
}

int intern_add_hashed(struct intern *t, const void *key, size_t len, uint32_t hash, uint32_t *id)
{
    if (len > UINT32_MAX - 8 || t->n >= INTERN_NONE - 1)
        return -ENOMEM;
    if ((!t->slots || (size_t)(t->n + 1) * 2 > t->mask + 1) && grow_slots(t))
        return -ENOMEM;
    size_t h = hash & t->mask;
    for (; t->slots[h]; h = (h + 1) & t->mask) {
        const struct intern_entry *e = &t->e[t->slots[h] - 1];
        if (e->hash == hash && e->len == len && (!len || !memcmp(t->pool + e->off, key, len))) {
            *id = t->slots[h] - 1;
            return 0;
        }
    }
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 64;
        struct intern_entry *e =
            arr_grow(t->e, (size_t)t->cap * sizeof(*e), (size_t)cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        t->e = e;
        t->cap = cap;
    }
    /* 8-aligned, and at least one NUL after the key */
    size_t need = (len + 8) & ~(size_t)7;
    if (t->pool_len + need > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1024;
        while (cap < t->pool_len + need) {
            if (cap > SIZE_MAX / 2)
                return -ENOMEM;
            cap *= 2;
        }
        uint8_t *p = arr_grow(t->pool, t->pool_cap, cap);
        if (!p)
            return -ENOMEM;
        t->pool = p;
        t->pool_cap = cap;
    }
    if (len)
        memcpy(t->pool + t->pool_len, key, len);
    memset(t->pool + t->pool_len + len, 0, need - len);
    t->e[t->n] = (struct intern_entry){.off = t->pool_len, .len = (uint32_t)len, .hash = hash};
    t->pool_len += need;
    t->slots[h] = t->n + 1;
    *id = t->n++;
    return 1;
}

uint32_t intern_strn(struct intern *t, const char *s, size_t len)
{
    uint32_t id;

    return intern_add(t, s, len, &id) < 0 ? INTERN_NONE : id;
}

uint32_t intern_str(struct intern *t, const char *s)
{
    return s ? intern_strn(t, s, strlen(s)) : intern_strn(t, "", 0);
}

uint32_t intern_seq(struct intern *t, const uint32_t *v, size_t n)
{
    uint32_t id;

    if (n > UINT32_MAX / sizeof(*v))
        return INTERN_NONE;
    return intern_add(t, v, n * sizeof(*v), &id) < 0 ? INTERN_NONE : id;
}
