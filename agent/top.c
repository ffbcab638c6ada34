/* SPDX-License-Identifier: Apache-2.0 */
/* top — see top.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/top.h"
#include "common/hash.h"

struct top_entry {
    char *name;
    uint64_t hash;
    uint64_t self, total;
    uint64_t seen; /* stamp of the last stack that counted it, for dedup */
};

struct top {
    struct top_entry *v;
    size_t cap, n;
    uint64_t total;
    uint64_t stamp;
};

struct top *top_new(void)
{
    struct top *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cap = 1024;
    t->v = calloc(t->cap, sizeof(*t->v));
    if (!t->v) {
        free(t);
        return NULL;
    }
    return t;
}

void top_free(struct top *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        free(t->v[i].name);
    free(t->v);
    free(t);
}

static int grow(struct top *t)
{
    size_t ncap = t->cap * 2;
    struct top_entry *nv = calloc(ncap, sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->v[i].name)
            continue;
        size_t j = t->v[i].hash & (ncap - 1);
        while (nv[j].name)
            j = (j + 1) & (ncap - 1);
        nv[j] = t->v[i];
    }
    free(t->v);
    t->v = nv;
    t->cap = ncap;
    return 0;
}

static struct top_entry *lookup(struct top *t, const char *name)
{
    uint64_t h = hash_str(name);
    size_t i;

    if ((t->n + 1) * 2 > t->cap && grow(t) != 0)
        return NULL;
    for (i = h & (t->cap - 1); t->v[i].name; i = (i + 1) & (t->cap - 1))
        if (t->v[i].hash == h && strcmp(t->v[i].name, name) == 0)
            return &t->v[i];
    t->v[i].name = strdup(name);
    if (!t->v[i].name)
        return NULL;
    t->v[i].hash = h;
    t->n++;
    return &t->v[i];
}

int top_add(struct top *t, const char *const *names, size_t n, uint64_t count)
{
    t->stamp++;
    t->total += count;
    for (size_t i = 0; i < n; i++) {
        struct top_entry *e = lookup(t, names[i]);
        if (!e)
            return -ENOMEM;
        if (i == 0)
            e->self += count;
        if (e->seen != t->stamp) {
            e->seen = t->stamp;
            e->total += count;
        }
    }
    return 0;
}

uint64_t top_total(const struct top *t)
{
    return t->total;
}

static int by_self(const void *a, const void *b)
{
    const struct top_entry *x = *(const struct top_entry *const *)a;
    const struct top_entry *y = *(const struct top_entry *const *)b;
    if (x->self != y->self)
        return x->self < y->self ? 1 : -1;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return strcmp(x->name, y->name);
}

void top_print(const struct top *t, FILE *out, size_t n, uint64_t period_ns)
{
    struct top_entry **rows = calloc(t->n ? t->n : 1, sizeof(*rows));
    size_t k = 0;

    if (!rows)
        return;
    for (size_t i = 0; i < t->cap; i++)
        if (t->v[i].name)
            rows[k++] = &t->v[i];
    qsort(rows, k, sizeof(*rows), by_self);
    fprintf(out, "%10s %7s %10s %7s %9s  %s\n", "SELF", "SELF%", "TOTAL", "TOTAL%", "CPU-s",
            "FUNCTION");
    for (size_t i = 0; i < k && i < n; i++) {
        double d = t->total ? 100.0 / (double)t->total : 0;
        fprintf(out, "%10llu %6.2f%% %10llu %6.2f%% %9.2f  %s\n", (unsigned long long)rows[i]->self,
                (double)rows[i]->self * d, (unsigned long long)rows[i]->total,
                (double)rows[i]->total * d, (double)rows[i]->self * (double)period_ns / 1e9,
                rows[i]->name);
    }
    fprintf(out, "%10llu samples in all\n", (unsigned long long)t->total);
    free(rows);
}
