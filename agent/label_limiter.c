/* SPDX-License-Identifier: Apache-2.0 */
/* label_limiter — see label_limiter.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent/label_limiter.h"
#include "common/intern.h"

struct value_set {
    char *name;
    struct intern values; /* the values admitted so far */
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
        intern_free(&l->sets[i].values);
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

/* True when @value is (now) one of the tracked values of @s. */
static bool vs_admit(struct value_set *s, const char *value, size_t max)
{
    size_t len = strlen(value);
    uint32_t id;

    if (intern_find(&s->values, value, len) != INTERN_NONE)
        return true;
    if (s->values.n >= max)
        return false;
    return intern_add(&s->values, value, len, &id) >= 0;
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
