/* SPDX-License-Identifier: Apache-2.0 */
/* label_limiter — see label_limiter.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent/label_limiter.h"
#include "common/hash.h"

struct value_set {
    char *name;
    char **slots; /* open addressing, linear probing; NULL = empty */
    size_t cap;   /* power of two, > 2 * n */
    size_t n;
};

struct label_limiter {
    size_t max_values;
    struct value_set *sets;
    size_t nsets, capsets;
    uint64_t overflows;
};

#define OVERFLOW_VALUE "_overflow_"

struct label_limiter *label_limiter_new(size_t max_values)
{
    struct label_limiter *l = calloc(1, sizeof(*l));

    if (l)
        l->max_values = max_values;
    return l;
}

void label_limiter_free(struct label_limiter *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nsets; i++) {
        for (size_t j = 0; j < l->sets[i].cap; j++)
            free(l->sets[i].slots[j]);
        free(l->sets[i].slots);
        free(l->sets[i].name);
    }
    free(l->sets);
    free(l);
}

uint64_t label_limiter_overflows(const struct label_limiter *l)
{
    return l ? l->overflows : 0;
}

static struct value_set *limiter_set(struct label_limiter *l, const char *name)
{
    for (size_t i = 0; i < l->nsets; i++)
        if (strcmp(l->sets[i].name, name) == 0)
            return &l->sets[i];
    if (l->nsets == l->capsets) {
        size_t cap = l->capsets ? l->capsets * 2 : 8;
        struct value_set *nv = realloc(l->sets, cap * sizeof(*nv));
        if (!nv)
            return NULL;
        l->sets = nv;
        l->capsets = cap;
    }
    struct value_set *s = &l->sets[l->nsets];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    if (!s->name)
        return NULL;
    l->nsets++;
    return s;
}

static char **vs_slot(const struct value_set *s, const char *value)
{
    size_t i = (size_t)hash_fnv1a(FNV64_OFFSET, value, strlen(value) + 1) & (s->cap - 1);

    while (s->slots[i] && strcmp(s->slots[i], value) != 0)
        i = (i + 1) & (s->cap - 1);
    return &s->slots[i];
}

static int vs_grow(struct value_set *s)
{
    char **old = s->slots;
    size_t oldcap = s->cap, cap = s->cap ? s->cap * 2 : 16;
    char **slots = calloc(cap, sizeof(*slots));

    if (!slots)
        return -ENOMEM;
    s->slots = slots;
    s->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            *vs_slot(s, old[i]) = old[i];
    free(old);
    return 0;
}

/* True when @value is (now) one of the tracked values of @s. */
static bool vs_admit(struct value_set *s, const char *value, size_t max)
{
    char **slot;

    if (s->cap) {
        slot = vs_slot(s, value);
        if (*slot)
            return true;
    }
    if (s->n >= max)
        return false;
    if ((s->n + 1) * 2 > s->cap && vs_grow(s) < 0)
        return false;
    slot = vs_slot(s, value);
    *slot = strdup(value);
    if (!*slot)
        return false;
    s->n++;
    return true;
}

void label_limiter_apply(struct label_limiter *l, struct label_set *ls)
{
    if (!l)
        return;
    for (size_t i = 0; i < ls->n; i++) {
        const char *name = ls->v[i].name;
        if (!strcmp(name, "service_name") || !strcmp(name, "host_name"))
            continue;
        if (!strcmp(ls->v[i].value, OVERFLOW_VALUE))
            continue;
        struct value_set *s = limiter_set(l, name);
        /* Without memory to track the value we cannot prove it is under the
         * cap, so it is treated as over it: the cap is never exceeded. */
        if (s && vs_admit(s, ls->v[i].value, l->max_values))
            continue;
        char *ov = strdup(OVERFLOW_VALUE);
        if (!ov)
            continue;
        free(ls->v[i].value);
        ls->v[i].value = ov;
        l->overflows++;
    }
}
