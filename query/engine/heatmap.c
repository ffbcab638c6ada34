/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/heatmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "query/engine/query.h"

const char *mprof_lset_value(const struct mprof *p, uint32_t lset, const char *name)
{
    uint32_t n, id = intern_find(&p->str, name, strlen(name));
    const uint32_t *v;

    if (id == MPROF_NONE || lset == MPROF_NONE || lset >= p->lsets.n)
        return NULL;
    v = mprof_lset(p, lset, &n);
    for (uint32_t k = 0; k < n; k++)
        if (v[2 * k] == id)
            return intern_str_get(&p->str, v[2 * k + 1]);
    return NULL;
}

uint32_t heatmap_bucket(const struct heatmap *h, int64_t v)
{
    double span = (double)(h->vmax - h->vmin);
    int64_t k = (int64_t)((double)(v - h->vmin) * HEATMAP_BUCKETS / span);

    /* The guess is off by at most one where rounding bites: settle it on
     * the bounds themselves, so a value and its bucket's bounds agree. */
    if (k < 0)
        k = 0;
    if (k > HEATMAP_BUCKETS - 1)
        k = HEATMAP_BUCKETS - 1;
    while (k < HEATMAP_BUCKETS - 1 && h->y_min[k + 1] <= v)
        k++;
    while (k > 0 && h->y_min[k] > v)
        k--;
    return (uint32_t)k;
}

struct hkey {
    uint64_t key;
    size_t idx;
};

static int cmp_hkey(const void *a, const void *b)
{
    const struct hkey *x = a, *y = b;

    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Group of every label set: the group_by values as a key, interned. */
static int lset_groups(const struct mprof *p, const char *group_by, uint32_t *lg,
                       struct intern *keys)
{
    char names[QUERY_MAX_GROUP_BY][130];
    uint32_t ng = query_group_by_count(group_by);
    struct wbuf k = {0};
    const char *gb = group_by;

    if (ng > QUERY_MAX_GROUP_BY)
        return -EINVAL;
    for (uint32_t j = 0; j < ng; j++, gb += strcspn(gb, ",") + 1) {
        size_t len = strcspn(gb, ",");
        if (len >= sizeof(names[j]))
            return -EINVAL;
        memcpy(names[j], gb, len);
        names[j][len] = '\0';
    }
    for (uint32_t l = 0; l < p->lsets.n; l++) {
        k.len = 0;
        for (uint32_t j = 0; j < ng; j++) {
            const char *v = mprof_lset_value(p, l, names[j]);
            query_group_key_append(&k, v ? v : "", j == 0);
        }
        wb_bytes(&k, "", 1);
        if (k.err || (lg[l] = intern_strn(keys, k.s, strlen(k.s))) == MPROF_NONE) {
            free(k.p);
            return -ENOMEM;
        }
    }
    free(k.p);
    return 0;
}

size_t heatmap_dense_cells = HEATMAP_DENSE_CELLS;

/* Is @a a better exemplar than @b: larger, or as large with a smaller id? */
static bool better(const struct mprof_ind *a, const struct mprof_ind *b)
{
    struct prof_id ia = {a->time, a->hash}, ib = {b->time, b->hash};

    return a->value > b->value || (a->value == b->value && prof_id_cmp(&ia, &ib) < 0);
}

int heatmap_build(const struct mprof *p, int64_t from, int64_t until, int64_t step,
                  const char *group_by, struct heatmap *h)
{
    struct query grid = {.from = from, .until = until, .step = step};
    struct intern keys = {0};
    uint32_t *lg = NULL;
    struct hkey *hk = NULL;
    int rc;

    memset(h, 0, sizeof(*h));
    if ((rc = query_series_grid(&grid, &h->step, &h->nslots)))
        return rc;
    h->from = from;
    if (p->nind == 0)
        return 0;
    h->vmin = INT64_MAX;
    h->vmax = INT64_MIN;
    for (size_t i = 0; i < p->nind; i++) {
        h->vmin = p->ind[i].value < h->vmin ? p->ind[i].value : h->vmin;
        h->vmax = p->ind[i].value > h->vmax ? p->ind[i].value : h->vmax;
    }
    if (h->vmax == h->vmin)
        h->vmax = h->vmin + 1;
    double size = ((double)h->vmax - (double)h->vmin) / HEATMAP_BUCKETS;
    for (int b = 0; b < HEATMAP_BUCKETS; b++)
        h->y_min[b] = h->vmin + (int64_t)((double)b * size);
    h->y_min[HEATMAP_BUCKETS] = h->vmax;

    rc = -ENOMEM;
    lg = calloc((size_t)p->lsets.n + 1, sizeof(*lg));
    if (!lg)
        goto out;
    if ((rc = lset_groups(p, group_by, lg, &keys)))
        goto out;
    rc = -ENOMEM;
    h->group_rep = calloc((size_t)keys.n + 1, sizeof(*h->group_rep));
    if (!h->group_rep)
        goto out;
    h->ngroups = keys.n;
    for (uint32_t g = 0; g < keys.n; g++)
        h->group_rep[g] = SIZE_MAX;
    size_t dense = (size_t)keys.n * h->nslots * HEATMAP_BUCKETS;
    if (dense <= heatmap_dense_cells) {
        /* Few enough cells for a dense grid: one pass, no sort. */
        uint32_t *cnt = calloc(dense + 1, sizeof(*cnt));
        size_t *best = malloc((dense + 1) * sizeof(*best));
        size_t n = 0;
        if (!cnt || !best) {
            free(cnt);
            free(best);
            goto out;
        }
        for (size_t i = 0; i < p->nind; i++) {
            const struct mprof_ind *v = &p->ind[i];
            if (v->time < from || v->time >= until)
                continue;
            size_t slot = (size_t)((uint64_t)(v->time - from) / (uint64_t)h->step);
            size_t g = v->lset < p->lsets.n ? lg[v->lset] : 0;
            size_t c = (g * h->nslots + slot) * HEATMAP_BUCKETS + heatmap_bucket(h, v->value);
            if (!cnt[c]++) {
                best[c] = i;
                n++;
            } else if (better(&p->ind[i], &p->ind[best[c]])) {
                best[c] = i;
            }
        }
        if (!(h->cells = malloc((n + 1) * sizeof(*h->cells)))) {
            free(cnt);
            free(best);
            goto out;
        }
        for (size_t c = 0; c < dense; c++) {
            if (!cnt[c])
                continue;
            uint32_t g = (uint32_t)(c / HEATMAP_BUCKETS / h->nslots);
            if (h->group_rep[g] == SIZE_MAX)
                h->group_rep[g] = best[c];
            h->cells[h->ncells++] =
                (struct heatmap_cell){.group = g,
                                      .slot = (uint32_t)(c / HEATMAP_BUCKETS % h->nslots),
                                      .bucket = (uint32_t)(c % HEATMAP_BUCKETS),
                                      .count = cnt[c],
                                      .best = best[c]};
            h->profiles += cnt[c];
        }
        free(cnt);
        free(best);
        rc = 0;
        goto out;
    }
    /* Many groups: only the non-empty cells, by sorting their keys. */
    hk = malloc((p->nind + 1) * sizeof(*hk));
    if (!hk)
        goto out;
    size_t n = 0;
    for (size_t i = 0; i < p->nind; i++) {
        const struct mprof_ind *v = &p->ind[i];
        if (v->time < from || v->time >= until)
            continue;
        uint64_t slot = (uint64_t)(v->time - from) / (uint64_t)h->step;
        uint64_t g = v->lset < p->lsets.n ? lg[v->lset] : 0;
        hk[n++] = (struct hkey){g << 40 | slot << 8 | heatmap_bucket(h, v->value), i};
    }
    qsort(hk, n, sizeof(*hk), cmp_hkey);
    h->cells = malloc((n + 1) * sizeof(*h->cells));
    if (!h->cells)
        goto out;
    for (size_t i = 0; i < n;) {
        size_t j = i, best = hk[i].idx;
        for (; j < n && hk[j].key == hk[i].key; j++)
            if (better(&p->ind[hk[j].idx], &p->ind[best]))
                best = hk[j].idx;
        uint32_t g = (uint32_t)(hk[i].key >> 40);
        if (h->group_rep[g] == SIZE_MAX)
            h->group_rep[g] = best;
        h->cells[h->ncells++] =
            (struct heatmap_cell){.group = g,
                                  .slot = (uint32_t)(hk[i].key >> 8 & 0xffffffff),
                                  .bucket = (uint32_t)(hk[i].key & 0xff),
                                  .count = (uint32_t)(j - i),
                                  .best = best};
        h->profiles += j - i;
        i = j;
    }
    rc = 0;
out:
    free(lg);
    free(hk);
    intern_free(&keys);
    if (rc)
        heatmap_free(h);
    return rc;
}

void heatmap_free(struct heatmap *h)
{
    free(h->cells);
    free(h->group_rep);
    memset(h, 0, sizeof(*h));
}

static bool same_id(const struct mprof_ind *a, const struct mprof_ind *b)
{
    return a->time == b->time && a->hash == b->hash;
}

int individual_dedup(struct mprof *p)
{
    size_t cap = 16, k = 0;

    while (cap < 2 * p->nind)
        cap <<= 1;
    uint32_t *t = malloc(cap * sizeof(*t));
    if (!t)
        return -ENOMEM;
    memset(t, 0xff, cap * sizeof(*t));
    for (size_t i = 0; i < p->nind; i++) {
        const struct mprof_ind v = p->ind[i];
        size_t s = hash64((uint64_t)v.time ^ hash64(v.hash)) & (cap - 1);
        for (; t[s] != UINT32_MAX && !same_id(&p->ind[t[s]], &v); s = (s + 1) & (cap - 1))
            ;
        if (t[s] != UINT32_MAX) {
            MPROF_ADD(p->ind[t[s]].value, v.value);
            continue;
        }
        t[s] = (uint32_t)k;
        p->ind[k++] = v;
    }
    p->nind = k;
    free(t);
    return 0;
}

static int cmp_time(const void *a, const void *b)
{
    const struct mprof_ind *x = a, *y = b;
    struct prof_id ix = {x->time, x->hash}, iy = {y->time, y->hash};

    return prof_id_cmp(&ix, &iy);
}

static int cmp_value(const void *a, const void *b)
{
    const struct mprof_ind *x = a, *y = b;

    if (x->value != y->value)
        return x->value > y->value ? -1 : 1;
    return cmp_time(a, b);
}

void individual_sort(struct mprof *p, bool by_value)
{
    size_t k = 0;

    qsort(p->ind, p->nind, sizeof(*p->ind), cmp_time);
    /* One profile split over two sections (never written so, but a store
     * may hold anything) is one profile: its parts are summed. */
    for (size_t i = 0; i < p->nind; i++) {
        if (k && !cmp_time(&p->ind[k - 1], &p->ind[i]))
            MPROF_ADD(p->ind[k - 1].value, p->ind[i].value);
        else
            p->ind[k++] = p->ind[i];
    }
    p->nind = k;
    if (by_value)
        qsort(p->ind, p->nind, sizeof(*p->ind), cmp_value);
}
