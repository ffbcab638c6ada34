/* SPDX-License-Identifier: Apache-2.0 */
#include "common/intern.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

void intern_free(struct intern *t)
{
    free(t->pool);
    free(t->e);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* Rebuilds the index with @ns slots (a power of two above 2 * t->n). */
static int resize_slots(struct intern *t, size_t ns)
{
    uint32_t *sl = calloc(ns, sizeof(*sl));

    if (!sl)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->n; i++) {
        size_t h = t->e[i].hash & (ns - 1);
        while (sl[h])
            h = (h + 1) & (ns - 1);
        sl[h] = i + 1;
    }
    free(t->slots);
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
        struct intern_entry *e = realloc(t->e, (size_t)n * sizeof(*e));
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
    uint32_t hash = (uint32_t)hash_bytes(key, len);
    for (size_t h = hash & t->mask; t->slots[h]; h = (h + 1) & t->mask) {
        const struct intern_entry *e = &t->e[t->slots[h] - 1];
        if (e->hash == hash && e->len == len && (!len || !memcmp(t->pool + e->off, key, len)))
            return t->slots[h] - 1;
    }
    return INTERN_NONE;
}

int intern_add(struct intern *t, const void *key, size_t len, uint32_t *id)
{
    if (len > UINT32_MAX - 8 || t->n >= INTERN_NONE - 1)
        return -ENOMEM;
    if ((!t->slots || (size_t)(t->n + 1) * 2 > t->mask + 1) && grow_slots(t))
        return -ENOMEM;
    uint32_t hash = (uint32_t)hash_bytes(key, len);
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
        struct intern_entry *e = realloc(t->e, cap * sizeof(*e));
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
        uint8_t *p = realloc(t->pool, cap);
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
