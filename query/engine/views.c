/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/views.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/gzip.h"
#include "common/hash.h"
#include "profile.pb-c.h"

/* ---- top --------------------------------------------------------------- */

static int cmp_top(const void *a, const void *b, void *ctx)
{
    const struct mprof *p = ctx;
    const struct top_row *x = a, *y = b;
    if (x->self != y->self)
        return x->self > y->self ? -1 : 1;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return strcmp(intern_str_get(&p->str, x->name), intern_str_get(&p->str, y->name));
}

int view_top(const struct mprof *p, uint32_t col, struct top_row **rows, size_t *n, int64_t *total)
{
    uint32_t nn = p->str.n;
    int64_t *self = calloc(nn + 1, sizeof(*self)), *tot = calloc(nn + 1, sizeof(*tot));
    uint32_t *stamp = calloc(nn + 1, sizeof(*stamp));
    struct top_row *r = NULL;
    size_t k = 0;
    int64_t sum = 0;

    *rows = NULL;
    *n = 0;
    if (!self || !tot || !stamp)
        goto oom;
    if (p->top) { /* function totals already (Q_TOP) */
        sum = p->fsum[col];
        for (uint32_t i = 0; i < nn && i < p->fcap; i++) {
            self[i] = p->fself[(size_t)i * p->ntypes + col];
            tot[i] = p->ftotal[(size_t)i * p->ntypes + col];
        }
    }
    for (uint32_t s = 0; s < p->nstacks; s++) {
        int64_t v = p->vals[(size_t)s * p->ntypes + col];
        const uint32_t *f = mprof_stack_frames(p, s);
        uint32_t d = mprof_stack_len(p, s);
        if (v == 0 || d == 0)
            continue;
        MPROF_ADD(sum, v);
        MPROF_ADD(self[f[0]], v);
        for (uint32_t i = 0; i < d; i++)
            if (stamp[f[i]] != s + 1) {
                stamp[f[i]] = s + 1; /* recursion counted once per stack */
                MPROF_ADD(tot[f[i]], v);
            }
    }
    r = malloc((nn + 1) * sizeof(*r));
    if (!r)
        goto oom;
    for (uint32_t i = 0; i < nn; i++)
        if (tot[i] != 0 || self[i] != 0)
            r[k++] = (struct top_row){.name = i, .self = self[i], .total = tot[i]};
    qsort_r(r, k, sizeof(*r), cmp_top, (void *)p);
    free(self);
    free(tot);
    free(stamp);
    *rows = r;
    *n = k;
    *total = sum;
    return 0;
oom:
    free(self);
    free(tot);
    free(stamp);
    free(r);
    return -ENOMEM;
}

/* ---- diff -------------------------------------------------------------- */

static int cmp_diff(const void *a, const void *b)
{
    const struct diff_row *x = a, *y = b;
    double ax = x->d < 0 ? -x->d : x->d, ay = y->d < 0 ? -y->d : y->d;
    if (ax != ay)
        return ax > ay ? -1 : 1;
    return strcmp(x->name, y->name);
}

int view_diff(const struct mprof *left, const struct mprof *right, struct diff_row **out,
              size_t *nout, int64_t *ltotal, int64_t *rtotal)
{
    struct top_row *lrows = NULL, *rrows = NULL;
    struct diff_row *rows = NULL;
    size_t ln = 0, rn = 0, n = 0, k = 0;
    int64_t lt = 0, rt = 0, *rself = NULL;
    uint8_t *taken = NULL;
    int rc = -ENOMEM;

    *out = NULL;
    *nout = 0;
    if (view_top(left, 0, &lrows, &ln, &lt) || view_top(right, 0, &rrows, &rn, &rt) ||
        !(rows = calloc(ln + rn + 1, sizeof(*rows))))
        goto out;
    /* Join by name through the right profile's string table. */
    rself = calloc(right->str.n + 1, sizeof(*rself));
    taken = calloc(right->str.n + 1, 1);
    if (!rself || !taken)
        goto out;
    for (size_t i = 0; i < rn; i++)
        rself[rrows[i].name] = rrows[i].self;
    for (size_t i = 0; i < ln; i++) {
        const char *nm = intern_str_get(&left->str, lrows[i].name);
        uint32_t rid = intern_find(&right->str, nm, strlen(nm));
        rows[n] = (struct diff_row){.name = nm, .l = lrows[i].self};
        if (rid != MPROF_NONE) {
            rows[n].r = rself[rid];
            taken[rid] = 1;
        }
        n++;
    }
    for (size_t i = 0; i < rn; i++)
        if (!taken[rrows[i].name])
            rows[n++] = (struct diff_row){.name = intern_str_get(&right->str, rrows[i].name),
                                          .r = rrows[i].self};
    for (size_t i = 0; i < n; i++) {
        if (rows[i].l == 0 && rows[i].r == 0)
            continue;
        rows[i].d =
            (rt ? (double)rows[i].r / (double)rt : 0) - (lt ? (double)rows[i].l / (double)lt : 0);
        rows[k++] = rows[i];
    }
    qsort(rows, k, sizeof(*rows), cmp_diff);
    *out = rows;
    *nout = k;
    *ltotal = lt;
    *rtotal = rt;
    rows = NULL;
    rc = 0;
out:
    free(rows);
    free(lrows);
    free(rrows);
    free(rself);
    free(taken);
    return rc;
}

/* ---- series ------------------------------------------------------------ */

struct series_order {
    const struct mprof *p;
    const int64_t *sum;
};

static int cmp_group(const void *a, const void *b, void *ctx)
{
    const struct series_order *o = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return strcmp(intern_str_get(&o->p->str, o->p->group_val[x]),
                  intern_str_get(&o->p->str, o->p->group_val[y]));
}

static int cmp_group_sum(const void *a, const void *b, void *ctx)
{
    const struct series_order *o = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (o->sum[x] != o->sum[y])
        return o->sum[x] > o->sum[y] ? -1 : 1;
    return cmp_group(a, b, ctx);
}

int view_series_order(const struct mprof *p, uint32_t limit, uint32_t **out, uint32_t *nout)
{
    uint32_t ng = p->ngroups;
    uint32_t *order = malloc(((size_t)ng + 1) * sizeof(*order));
    int64_t *sum = NULL;
    struct series_order so = {p, NULL};

    *out = NULL;
    *nout = 0;
    if (!order)
        return -ENOMEM;
    for (uint32_t g = 0; g < ng; g++)
        order[g] = g;
    if (limit && limit < ng) {
        sum = calloc((size_t)ng + 1, sizeof(*sum));
        if (!sum) {
            free(order);
            return -ENOMEM;
        }
        for (uint32_t g = 0; g < ng; g++)
            for (uint32_t bk = 0; bk < p->nbuckets; bk++)
                MPROF_ADD(sum[g], p->points[(size_t)g * p->nbuckets + bk]);
        so.sum = sum;
        qsort_r(order, ng, sizeof(*order), cmp_group_sum, &so);
        ng = limit;
    }
    qsort_r(order, ng, sizeof(*order), cmp_group, &so);
    free(sum);
    *out = order;
    *nout = ng;
    return 0;
}

/* ---- label names and values ------------------------------------------ */

int view_label_strings(const struct mprof *p, const char *name, struct intern *set)
{
    uint32_t want = name ? intern_find(&p->str, name, strlen(name)) : MPROF_NONE;

    if (name && want == MPROF_NONE)
        return 0;
    for (uint32_t i = 0; i < p->pairs.n; i++) {
        uint32_t a, v, len;
        mprof_pair_get(p, i, &a, &v);
        if (name && a != want)
            continue;
        const char *s = intern_get(&p->str, name ? v : a, &len);
        if (intern_strn(set, s, len) == INTERN_NONE)
            return -ENOMEM;
    }
    return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int view_sorted_strings(const struct intern *set, const char ***out)
{
    const char **v = malloc(((size_t)set->n + 1) * sizeof(*v));

    *out = NULL;
    if (!v)
        return -ENOMEM;
    for (uint32_t i = 0; i < set->n; i++)
        v[i] = intern_str_get(set, i);
    qsort(v, set->n, sizeof(*v), cmp_cstr);
    *out = v;
    return 0;
}

/* ---- flame graph ------------------------------------------------------- */

struct fnode {
    uint32_t name, parent;
    uint32_t first_child, next_sibling;
    uint32_t nchildren, unselected;
    int64_t self, total;
    uint32_t depth;                    /* the root's 0: the selection's last tie-break (path_cmp) */
    uint32_t child_start, child_count; /* into the sorted selected list */
    bool selected;
};

struct ftree {
    struct fnode *n;
    uint32_t count, cap;
    uint32_t *slots; /* (parent, name) -> node */
    uint32_t nslots;
};

static int ftree_grow_slots(struct ftree *t)
{
    uint32_t ns = t->nslots ? t->nslots * 2 : 1024;
    uint32_t *sl = malloc((size_t)ns * sizeof(*sl));

    if (!sl)
        return -ENOMEM;
    memset(sl, 0xff, (size_t)ns * sizeof(*sl));
    for (uint32_t i = 1; i < t->count; i++) {
        uint32_t j = (uint32_t)hash_pair32(t->n[i].parent, t->n[i].name) & (ns - 1);
        while (sl[j] != UINT32_MAX)
            j = (j + 1) & (ns - 1);
        sl[j] = i;
    }
    free(t->slots);
    t->slots = sl;
    t->nslots = ns;
    return 0;
}

/* The child of @parent named @name, or UINT32_MAX. */
static uint32_t ftree_find(const struct ftree *t, uint32_t parent, uint32_t name)
{
    for (uint32_t j = (uint32_t)hash_pair32(parent, name) & (t->nslots - 1);
         t->nslots && t->slots[j] != UINT32_MAX; j = (j + 1) & (t->nslots - 1)) {
        const struct fnode *c = &t->n[t->slots[j]];
        if (c->parent == parent && c->name == name)
            return t->slots[j];
    }
    return UINT32_MAX;
}

/* The child of @parent named @name, made if it is not there yet;
 * UINT32_MAX on ENOMEM. */
static uint32_t ftree_child(struct ftree *t, uint32_t parent, uint32_t name)
{
    uint32_t j = ftree_find(t, parent, name);

    if (j != UINT32_MAX)
        return j;
    if ((uint64_t)(t->count + 1) * 2 > t->nslots && ftree_grow_slots(t))
        return UINT32_MAX;
    if (t->count == t->cap) {
        uint32_t cap = t->cap * 2;
        struct fnode *nn = realloc(t->n, (size_t)cap * sizeof(*nn));
        if (!nn)
            return UINT32_MAX;
        t->n = nn;
        t->cap = cap;
    }
    uint32_t id = t->count++;
    t->n[id] = (struct fnode){.name = name,
                              .parent = parent,
                              .first_child = UINT32_MAX,
                              .next_sibling = t->n[parent].first_child};
    t->n[parent].first_child = id;
    t->n[parent].nchildren++;
    for (j = (uint32_t)hash_pair32(parent, name) & (t->nslots - 1); t->slots[j] != UINT32_MAX;
         j = (j + 1) & (t->nslots - 1))
        ;
    t->slots[j] = id;
    return id;
}

/* Max-heap of node ids by (total desc, name asc, path). */
struct heap {
    uint32_t *v;
    size_t n;
};

/* Two nodes by where they are: the shallower first, then by their paths
 * from the root, name by name. Content only, so the same stacks give the
 * same flame graph whatever order they came in (rows of a flush, of a
 * block, or call trees: query.flame). */
static int path_cmp(const struct ftree *t, const struct mprof *p, uint32_t a, uint32_t b)
{
    uint32_t da = t->n[a].depth, db = t->n[b].depth;

    if (a == b)
        return 0;
    if (da != db)
        return da < db ? -1 : 1;
    int c = path_cmp(t, p, t->n[a].parent, t->n[b].parent);
    return c ? c
             : strcmp(intern_str_get(&p->str, t->n[a].name), intern_str_get(&p->str, t->n[b].name));
}

static bool heap_before(const struct ftree *t, const struct mprof *p, uint32_t a, uint32_t b)
{
    if (t->n[a].total != t->n[b].total)
        return t->n[a].total > t->n[b].total;
    int c = strcmp(intern_str_get(&p->str, t->n[a].name), intern_str_get(&p->str, t->n[b].name));
    return c != 0 ? c < 0 : path_cmp(t, p, a, b) < 0;
}

static void heap_push(struct heap *h, const struct ftree *t, const struct mprof *p, uint32_t x)
{
    size_t i = h->n++;
    h->v[i] = x;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!heap_before(t, p, h->v[i], h->v[up]))
            break;
        uint32_t tmp = h->v[i];
        h->v[i] = h->v[up];
        h->v[up] = tmp;
        i = up;
    }
}

static uint32_t heap_pop(struct heap *h, const struct ftree *t, const struct mprof *p)
{
    uint32_t top = h->v[0];
    size_t i = 0;

    h->v[0] = h->v[--h->n];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && heap_before(t, p, h->v[l], h->v[m]))
            m = l;
        if (r < h->n && heap_before(t, p, h->v[r], h->v[m]))
            m = r;
        if (m == i)
            break;
        uint32_t tmp = h->v[i];
        h->v[i] = h->v[m];
        h->v[m] = tmp;
        i = m;
    }
    return top;
}

struct sel_ctx {
    const struct ftree *t;
    const struct mprof *p;
};

static int cmp_sel(const void *a, const void *b, void *ctx)
{
    const struct sel_ctx *c = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const struct fnode *nx = &c->t->n[x], *ny = &c->t->n[y];
    if (nx->parent != ny->parent)
        return nx->parent < ny->parent ? -1 : 1;
    if (x == y)
        return 0;
    return heap_before(c->t, c->p, x, y) ? -1 : 1;
}

void view_topk_add(struct view_topk *h, int64_t x)
{
    size_t i;

    if (h->n == h->k) {
        if (x <= h->v[0])
            return;
        i = 0; /* replace the smallest, sift down */
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            int64_t mv = x;
            if (l < h->n && h->v[l] < mv)
                m = l, mv = h->v[l];
            if (r < h->n && h->v[r] < mv)
                m = r;
            if (m == i)
                break;
            h->v[i] = h->v[m];
            i = m;
        }
        h->v[i] = x;
        return;
    }
    for (i = h->n++; i > 0 && h->v[(i - 1) / 2] > x; i = (i - 1) / 2)
        h->v[i] = h->v[(i - 1) / 2];
    h->v[i] = x;
}

/*
 * Builds the call tree of column @col of @p into @t (which holds the root),
 * level by level from the root: each level moves every live stack from its
 * node one frame deeper. The selection (view_flame_walk) pops nodes by
 * total, largest first, and pops at most max_nodes of them, so every node
 * it pops has a total at least the (max_nodes + 1)-th largest of the tree
 * (more nodes above it would all have been popped before it). The nodes
 * of the levels built so far are a part of the tree: the (max_nodes +
 * 1)-th largest of their totals is a lower bound of that, and a node below
 * it is never popped. Such a node is still made (its parent counts its
 * children), but nothing under it: its stacks stop there. A calibrated
 * fleet's day has millions of stacks whose deep frames are each their own
 * node; this keeps the tree to the few thousand nodes a flame graph can
 * show and their siblings. The bound needs totals that only shrink towards
 * the leaves: with a negative value anywhere the whole tree is built.
 */
static int flame_build(struct ftree *t, const struct mprof *p, uint32_t col, uint32_t max_nodes)
{
    struct {
        uint32_t stack, node;
    } *live = NULL;
    /* (callers cap max_nodes far below this; past it, no bound) */
    bool prune = max_nodes < (1u << 24);
    struct view_topk top = {.k = prune ? max_nodes + 1 : 1};
    uint32_t nlive = 0;
    int rc = -ENOMEM;

    if (p->nstacks && !(live = malloc((size_t)p->nstacks * sizeof(*live))))
        return -ENOMEM;
    if (!(top.v = malloc((size_t)top.k * sizeof(*top.v))))
        goto out;
    for (uint32_t s = 0; s < p->nstacks; s++) {
        int64_t v = p->vals[(size_t)s * p->ntypes + col];
        if (v == 0)
            continue;
        if (v < 0)
            prune = false;
        MPROF_ADD(t->n[0].total, v);
        live[nlive].stack = s;
        live[nlive].node = 0;
        nlive++;
    }
    for (uint32_t d = 0; nlive; d++) {
        /* nodes below the bound (exact totals: their level is done) stop */
        int64_t bound = prune ? view_topk_min(&top) : INT64_MIN;
        uint32_t first_new = t->count, w = 0;
        for (uint32_t i = 0; i < nlive; i++) {
            uint32_t s = live[i].stack, node = live[i].node, len = mprof_stack_len(p, s);
            int64_t v = p->vals[(size_t)s * p->ntypes + col];
            if (t->n[node].total < bound)
                continue;
            if (d == len) {
                MPROF_ADD(t->n[node].self, v);
                continue;
            }
            /* frames are leaf first: depth d's is len - 1 - d */
            uint32_t before = t->count;
            uint32_t c = ftree_child(t, node, mprof_stack_frames(p, s)[len - 1 - d]);
            if (c == UINT32_MAX)
                goto out;
            if (t->count != before)
                t->n[c].depth = d + 1;
            MPROF_ADD(t->n[c].total, v);
            live[w].stack = s;
            live[w].node = c;
            w++;
        }
        nlive = w;
        if (prune)
            for (uint32_t c = first_new; c < t->count; c++)
                view_topk_add(&top, t->n[c].total);
    }
    rc = 0;
out:
    free(live);
    free(top.v);
    return rc;
}

/* A flame graph's tree and its selection (view_flame_walk). */
struct fsel {
    struct ftree t;
    uint32_t *sel, nsel; /* the nodes taken, in the order they were */
    uint32_t next;       /* the node popped and not taken; UINT32_MAX: none */
    uint64_t used, others;
};

static void fsel_free(struct fsel *f)
{
    free(f->t.n);
    free(f->t.slots);
    free(f->sel);
}

/* Builds column @col of @p's tree into @f and selects at most @max_nodes:
 * greedy by total from the root, a node taken only with its parent, and
 * the budget counts the "other" node each parent with cut children needs.
 * 0 or -ENOMEM (free @f either way). */
static int flame_select(struct fsel *f, const struct mprof *p, uint32_t col, uint32_t max_nodes)
{
    struct ftree *t = &f->t;
    struct heap h = {0};
    int rc = -ENOMEM;

    memset(f, 0, sizeof(*f));
    f->next = UINT32_MAX;
    t->cap = 1024;
    t->n = malloc(t->cap * sizeof(*t->n));
    if (!t->n)
        return -ENOMEM;
    t->count = 1;
    t->n[0] = (struct fnode){
        .name = 0, .parent = UINT32_MAX, .first_child = UINT32_MAX, .next_sibling = UINT32_MAX};
    if (flame_build(t, p, col, max_nodes))
        return -ENOMEM;
    h.v = malloc((size_t)t->count * sizeof(*h.v));
    f->sel = malloc((size_t)t->count * sizeof(*f->sel));
    if (!h.v || !f->sel)
        goto out;
    for (uint32_t i = 0; i < t->count; i++)
        t->n[i].unselected = t->n[i].nchildren;
    t->n[0].selected = true;
    f->used = 1;
    f->others = t->n[0].nchildren ? 1 : 0;
    for (uint32_t c = t->n[0].first_child; c != UINT32_MAX; c = t->n[c].next_sibling)
        heap_push(&h, t, p, c);
    while (h.n) {
        uint32_t x = heap_pop(&h, t, p);
        struct fnode *par = &t->n[t->n[x].parent];
        uint64_t o2 = f->others - (par->unselected == 1 ? 1 : 0) + (t->n[x].nchildren ? 1 : 0);
        if (f->used + 1 + o2 > max_nodes) {
            f->next = x;
            break;
        }
        t->n[x].selected = true;
        par->unselected--;
        f->used++;
        f->others = o2;
        f->sel[f->nsel++] = x;
        for (uint32_t c = t->n[x].first_child; c != UINT32_MAX; c = t->n[c].next_sibling)
            heap_push(&h, t, p, c);
    }
    rc = 0;
out:
    free(h.v);
    return rc;
}

int view_flame_walk(const struct mprof *p, uint32_t col, uint32_t max_nodes,
                    const struct flame_visit *v, void *ctx)
{
    struct fsel f;
    struct ftree *t = &f.t;
    struct {
        uint32_t node, next;
    } *stk = NULL;
    int rc = -ENOMEM;

    if (flame_select(&f, p, col, max_nodes))
        goto out;
    uint32_t *sel = f.sel, nsel = f.nsel;
    if (!(stk = malloc((size_t)t->count * sizeof(*stk))))
        goto out;
    struct sel_ctx sc = {t, p};
    qsort_r(sel, nsel, sizeof(*sel), cmp_sel, &sc);
    for (uint32_t i = 0; i < nsel; i++) {
        struct fnode *par = &t->n[t->n[sel[i]].parent];
        if (par->child_count++ == 0)
            par->child_start = i;
    }
    /* When not even one "other" fits (max_nodes 1), the root keeps what
     * was cut as its own self so its total still adds up. */
    bool root_absorbs = f.used + f.others > max_nodes;
    int64_t root_self = t->n[0].self;
    if (root_absorbs)
        root_self = t->n[0].total;
    v->enter(ctx, 0, "total", root_self, t->n[0].total);
    size_t sp = 0;
    stk[sp].node = 0;
    stk[sp].next = 0;
    sp++;
    while (sp) {
        uint32_t nd = stk[sp - 1].node;
        struct fnode *fn = &t->n[nd];
        if (stk[sp - 1].next < fn->child_count) {
            uint32_t c = sel[fn->child_start + stk[sp - 1].next++];
            v->enter(ctx, (uint32_t)sp, intern_str_get(&p->str, t->n[c].name), t->n[c].self,
                     t->n[c].total);
            stk[sp].node = c;
            stk[sp].next = 0;
            sp++;
            continue;
        }
        if (fn->unselected && !(nd == 0 && root_absorbs)) {
            uint64_t ucut = (uint64_t)fn->total - (uint64_t)fn->self;
            for (uint32_t i = 0; i < fn->child_count; i++)
                ucut -= (uint64_t)t->n[sel[fn->child_start + i]].total;
            int64_t cut = (int64_t)ucut;
            v->enter(ctx, (uint32_t)sp, "other", cut, cut);
            v->leave(ctx, (uint32_t)sp);
        }
        sp--;
        v->leave(ctx, (uint32_t)sp);
    }
    rc = 0;
out:
    fsel_free(&f);
    free(stk);
    return rc;
}

/*
 * Whether the flame graph would be the same drawn from the rows. The
 * trees' nodes can be off only in sections that left out callees of
 * their parent (mprof.cpf): a node is exact when its parent is and every
 * such section of the parent kept it (pc == the parent's cs). With no
 * negative value, totals only shrink from a node to its callees and the
 * selection pops nodes in falling order, so the rows select the same
 * nodes when every node taken is exact and no call tree aggregate, the
 * node that stopped the selection is exact too, and every candidate left
 * (a child of a taken node) that could be larger than its estimate is
 * below that node for sure: an inexact child by at most its estimate plus
 * the parent's unc, a callee no tree kept by at most the parent's unc.
 * Then each taken node's values, its "other" and whether it has one are
 * the rows' too.
 */
int view_flame_proved(const struct mprof *p, uint32_t col, uint32_t max_nodes,
                      const char *aggregate)
{
    struct fsel f;
    struct ftree *t = &f.t;
    uint32_t *pc = NULL, *cs = NULL;
    int64_t *unc = NULL;
    uint8_t *ex = NULL;
    int rc = -ENOMEM;

    if (!p->ctrees)
        return 1;
    if (col != 0 || !p->cpf || p->cpf_trees != p->ctrees)
        return 0;
    for (uint32_t s = 0; s < p->nstacks; s++)
        if (p->vals[(size_t)s * p->ntypes + col] < 0)
            return 0;
    if (flame_select(&f, p, col, max_nodes))
        goto out;
    pc = calloc(t->count, sizeof(*pc));
    cs = calloc(t->count, sizeof(*cs));
    unc = calloc(t->count, sizeof(*unc));
    ex = malloc(t->count);
    if (!pc || !cs || !unc || !ex)
        goto out;
    cs[0] = p->root_cs;
    unc[0] = p->root_unc;
    for (uint32_t s = 0; s < p->nstacks; s++) {
        const struct mprof_cproof *c = &p->cpf[s];
        if (!c->pc && !c->cs && !c->unc)
            continue;
        const uint32_t *fr = mprof_stack_frames(p, s);
        uint32_t len = mprof_stack_len(p, s), node = 0;
        for (uint32_t d = 0; d < len && node != UINT32_MAX; d++)
            node = ftree_find(t, node, fr[len - 1 - d]);
        if (node != UINT32_MAX && node != 0) {
            pc[node] = c->pc;
            cs[node] = c->cs;
            unc[node] = c->unc;
        }
    }
    /* parents come before their children in the tree's array */
    uint32_t agg = intern_find(&p->str, aggregate, strlen(aggregate));
    ex[0] = 1;
    for (uint32_t i = 1; i < t->count; i++) {
        uint32_t par = t->n[i].parent;
        ex[i] = ex[par] && pc[i] == cs[par] && t->n[i].name != agg;
    }
    rc = 0;
    for (uint32_t i = 0; i < t->count; i++)
        if (t->n[i].total < 0 || unc[i] < 0) /* sums that wrapped */
            goto out;
    for (uint32_t i = 0; i < f.nsel; i++)
        if (!ex[f.sel[i]])
            goto out;
    /* a candidate may hold at most @bound - 1; none left: nothing unseen */
    int64_t bound = 1;
    if (f.next != UINT32_MAX) {
        if (!ex[f.next])
            goto out;
        bound = t->n[f.next].total;
    }
    for (uint32_t i = 0; i <= f.nsel; i++) {
        uint32_t d = i < f.nsel ? f.sel[i] : 0;
        if (unc[d] && unc[d] >= bound)
            goto out;
        for (uint32_t c = t->n[d].first_child; c != UINT32_MAX; c = t->n[c].next_sibling)
            if (!t->n[c].selected && !ex[c] && t->n[c].name != agg &&
                t->n[c].total >= bound - unc[d])
                goto out;
    }
    rc = 1;
out:
    fsel_free(&f);
    free(pc);
    free(cs);
    free(unc);
    free(ex);
    return rc;
}

struct json_visit {
    struct wbuf *out;
    bool comma;
};

static void json_enter(void *ctx, uint32_t depth, const char *name, int64_t self, int64_t total)
{
    struct json_visit *j = ctx;

    if (depth == 0)
        wb_printf(j->out, "{\"total\":%lld,\"tree\":", (long long)total);
    else if (j->comma)
        wb_bytes(j->out, ",", 1);
    wb_bytes(j->out, "{\"name\":", 8);
    wb_json_str(j->out, name);
    wb_printf(j->out, ",\"self\":%lld,\"total\":%lld,\"children\":[", (long long)self,
              (long long)total);
    j->comma = false;
}

static void json_leave(void *ctx, uint32_t depth)
{
    struct json_visit *j = ctx;

    wb_bytes(j->out, "]}", 2);
    j->comma = true;
}

int view_flame_json(const struct mprof *p, uint32_t col, uint32_t max_nodes, struct wbuf *out)
{
    static const struct flame_visit v = {json_enter, json_leave};
    struct json_visit j = {out, false};
    int rc = view_flame_walk(p, col, max_nodes, &v, &j);

    return rc ? rc : out->err;
}

/* ---- pprof export ------------------------------------------------------ */

int view_pprof_pb(const struct mprof *p, int64_t time_ms, int64_t duration_ms, uint8_t **buf,
                  size_t *len)
{
    Perftools__Profiles__Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;
    Perftools__Profiles__ValueType vt[MPROF_MAX_TYPES], *vtp[MPROF_MAX_TYPES], period_vt;
    uint32_t cols[MPROF_MAX_TYPES], ncols = 0;
    Perftools__Profiles__Function *fns = NULL, **fnp = NULL;
    Perftools__Profiles__Location *locs = NULL, **locp = NULL;
    Perftools__Profiles__Line *lines = NULL, **linep = NULL;
    Perftools__Profiles__Sample *smp = NULL, **smpp = NULL;
    uint64_t *locids = NULL;
    int64_t *values = NULL;
    uint8_t *raw = NULL;
    uint8_t *used = NULL;
    uint32_t *fid = NULL, nf = 0, ns = 0;
    uint64_t nfr = 0;
    int rc = -ENOMEM;

    for (uint32_t c = 0; c < p->ntypes; c++)
        if (p->type_type[c] != MPROF_NONE) {
            perftools__profiles__value_type__init(&vt[ncols]);
            vt[ncols].type = p->type_type[c];
            vt[ncols].unit = p->type_unit[c];
            vtp[ncols] = &vt[ncols];
            cols[ncols++] = c;
        }
    if (ncols == 0) { /* empty selection: still a valid profile */
        perftools__profiles__value_type__init(&vt[0]);
        vtp[0] = &vt[0];
        cols[0] = 0;
        ncols = 1;
    }
    pr.n_sample_type = ncols;
    pr.sample_type = vtp;
    perftools__profiles__value_type__init(&period_vt);
    if (p->period_type != MPROF_NONE) {
        period_vt.type = p->period_type;
        period_vt.unit = p->period_unit;
        pr.period_type = &period_vt;
        pr.period = p->period;
    }
    pr.time_nanos = time_ms * 1000000;
    pr.duration_nanos = duration_ms * 1000000;
    pr.n_string_table = p->str.n;
    pr.string_table = malloc(((size_t)p->str.n + 1) * sizeof(char *));
    used = calloc((size_t)p->str.n + 1, 1);
    fid = calloc((size_t)p->str.n + 1, sizeof(*fid));
    if (!pr.string_table || !used || !fid)
        goto out;
    for (uint32_t i = 0; i < p->str.n; i++)
        pr.string_table[i] = (char *)intern_str_get(&p->str, i);
    for (uint32_t s = 0; s < p->nstacks; s++)
        for (uint32_t k = 0; k < mprof_stack_len(p, s); k++)
            used[mprof_stack_frames(p, s)[k]] = 1;
    for (uint32_t i = 0; i < p->str.n; i++)
        if (used[i])
            fid[i] = ++nf;
    fns = calloc(nf + 1, sizeof(*fns));
    fnp = calloc(nf + 1, sizeof(*fnp));
    locs = calloc(nf + 1, sizeof(*locs));
    locp = calloc(nf + 1, sizeof(*locp));
    lines = calloc(nf + 1, sizeof(*lines));
    linep = calloc(nf + 1, sizeof(*linep));
    smp = calloc((size_t)p->nstacks + 1, sizeof(*smp));
    smpp = calloc((size_t)p->nstacks + 1, sizeof(*smpp));
    locids = calloc(p->nframes + 1, sizeof(*locids));
    values = calloc((size_t)p->nstacks * ncols + 1, sizeof(*values));
    if (!fns || !fnp || !locs || !locp || !lines || !linep || !smp || !smpp || !locids || !values)
        goto out;
    for (uint32_t i = 0; i < p->str.n; i++) {
        if (!used[i])
            continue;
        uint32_t k = fid[i] - 1;
        perftools__profiles__function__init(&fns[k]);
        fns[k].id = fid[i];
        fns[k].name = i;
        fns[k].system_name = i;
        fnp[k] = &fns[k];
        perftools__profiles__line__init(&lines[k]);
        lines[k].function_id = fid[i];
        linep[k] = &lines[k];
        perftools__profiles__location__init(&locs[k]);
        locs[k].id = fid[i];
        locs[k].n_line = 1;
        locs[k].line = &linep[k];
        locp[k] = &locs[k];
    }
    pr.n_function = nf;
    pr.function = fnp;
    pr.n_location = nf;
    pr.location = locp;
    for (uint32_t s = 0; s < p->nstacks; s++) {
        bool any = false;
        for (uint32_t c = 0; c < ncols; c++) {
            values[(size_t)ns * ncols + c] = p->vals[(size_t)s * p->ntypes + cols[c]];
            any |= values[(size_t)ns * ncols + c] != 0;
        }
        if (!any)
            continue;
        perftools__profiles__sample__init(&smp[ns]);
        const uint32_t *f = mprof_stack_frames(p, s);
        uint64_t *li = locids + nfr;
        for (uint32_t k = 0; k < mprof_stack_len(p, s); k++)
            li[k] = fid[f[k]];
        nfr += mprof_stack_len(p, s);
        smp[ns].n_location_id = mprof_stack_len(p, s);
        smp[ns].location_id = li;
        smp[ns].n_value = ncols;
        smp[ns].value = values + (size_t)ns * ncols;
        smpp[ns] = &smp[ns];
        ns++;
    }
    pr.n_sample = ns;
    pr.sample = smpp;
    size_t rawlen = perftools__profiles__profile__get_packed_size(&pr);
    raw = malloc(rawlen + 1);
    if (!raw)
        goto out;
    perftools__profiles__profile__pack(&pr, raw);
    *buf = raw;
    *len = rawlen;
    raw = NULL;
    rc = 0;
out:
    free(pr.string_table);
    free(used);
    free(fid);
    free(fns);
    free(fnp);
    free(locs);
    free(locp);
    free(lines);
    free(linep);
    free(smp);
    free(smpp);
    free(locids);
    free(values);
    free(raw);
    return rc;
}

int view_pprof(const struct mprof *p, int64_t time_ms, int64_t duration_ms, uint8_t **buf,
               size_t *len)
{
    uint8_t *raw;
    size_t rawlen;
    int rc = view_pprof_pb(p, time_ms, duration_ms, &raw, &rawlen);

    if (rc)
        return rc;
    rc = gzip_compress(raw, rawlen, buf, len);
    free(raw);
    return rc;
}

/* ---- DOT call graph ------------------------------------------------------ */

struct dot_fn {
    uint32_t name;
    int64_t flat, cum;
    uint32_t rank; /* 1-based node number when kept, else 0 */
};

struct dot_ctx {
    const struct mprof *p;
    struct dot_fn *fn;
};

static int cmp_dot_fn(const void *a, const void *b, void *ctx)
{
    const struct dot_ctx *d = ctx;
    const struct dot_fn *x = &d->fn[*(const uint32_t *)a], *y = &d->fn[*(const uint32_t *)b];

    if (x->cum != y->cum)
        return x->cum > y->cum ? -1 : 1;
    return strcmp(intern_str_get(&d->p->str, x->name), intern_str_get(&d->p->str, y->name));
}

static void dot_str(struct wbuf *out, const char *s)
{
    wb_bytes(out, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            wb_bytes(out, "\\", 1);
        if ((unsigned char)*s >= 0x20)
            wb_bytes(out, s, 1);
    }
    wb_bytes(out, "\"", 1);
}

int view_dot(const struct mprof *p, uint32_t col, uint32_t max_nodes, struct wbuf *out)
{
    uint32_t ns = p->str.n;
    struct dot_fn *fn = calloc((size_t)ns + 1, sizeof(*fn));
    uint32_t *seen = calloc((size_t)ns + 1, sizeof(*seen));
    uint32_t *order = malloc(((size_t)ns + 1) * sizeof(*order));
    struct intern edges = {0};
    int64_t *ew = NULL, total = 0;
    uint32_t *eseen = NULL, ecap = 0, nfn = 0;
    int rc = -ENOMEM;

    if (!fn || !seen || !order)
        goto out;
    for (uint32_t i = 0; i < ns; i++)
        fn[i].name = i;
    for (uint32_t s = 0; s < p->nstacks; s++) {
        int64_t v = p->vals[(size_t)s * p->ntypes + col];
        const uint32_t *f = mprof_stack_frames(p, s);
        uint32_t n = mprof_stack_len(p, s);
        if (v == 0 || n == 0)
            continue;
        MPROF_ADD(total, v);
        MPROF_ADD(fn[f[0]].flat, v);
        for (uint32_t k = 0; k < n; k++) {
            if (seen[f[k]] == s + 1)
                continue; /* recursion: once per stack */
            seen[f[k]] = s + 1;
            MPROF_ADD(fn[f[k]].cum, v);
        }
        /* frames are leaf first: f[k + 1] calls f[k] */
        for (uint32_t k = 0; k + 1 < n; k++) {
            uint32_t key[2] = {f[k + 1], f[k]}, id;
            if (intern_add(&edges, key, sizeof(key), &id) < 0)
                goto out;
            if (id >= ecap) {
                uint32_t cap = ecap ? ecap * 2 : 256;
                while (cap <= id)
                    cap *= 2;
                int64_t *nw = realloc(ew, cap * sizeof(*nw));
                if (nw)
                    ew = nw;
                uint32_t *nse = realloc(eseen, cap * sizeof(*nse));
                if (nse)
                    eseen = nse;
                if (!nw || !nse)
                    goto out;
                memset(ew + ecap, 0, (cap - ecap) * sizeof(*ew));
                memset(eseen + ecap, 0, (cap - ecap) * sizeof(*eseen));
                ecap = cap;
            }
            if (eseen[id] == s + 1)
                continue;
            eseen[id] = s + 1;
            MPROF_ADD(ew[id], v);
        }
    }
    for (uint32_t i = 0; i < ns; i++)
        if (fn[i].cum)
            order[nfn++] = i;
    struct dot_ctx dc = {p, fn};
    qsort_r(order, nfn, sizeof(*order), cmp_dot_fn, &dc);
    if (nfn > max_nodes)
        nfn = max_nodes;
    int64_t shown = 0;
    for (uint32_t k = 0; k < nfn; k++) {
        fn[order[k]].rank = k + 1;
        MPROF_ADD(shown, fn[order[k]].flat);
    }
    const char *type = p->ntypes && p->type_type[col] != MPROF_NONE
                           ? intern_str_get(&p->str, p->type_type[col])
                           : "value";
    wb_bytes(out, "digraph \"unnamed\" {\n", 20);
    wb_printf(out, "node [style=filled fillcolor=\"#f8f8f8\"]\n");
    wb_printf(out, "subgraph cluster_L { \"Type: ");
    for (const char *c = type; *c; c++)
        if (*c != '"' && *c != '\\' && (unsigned char)*c >= 0x20)
            wb_bytes(out, c, 1);
    wb_printf(out,
              "\" [shape=box fontsize=16 label=\"Showing nodes accounting for %" PRId64
              ", %.2f%% of %" PRId64 " total\\l\"] }\n",
              shown, total ? 100.0 * (double)shown / (double)total : 0.0, total);
    for (uint32_t k = 0; k < nfn; k++) {
        const struct dot_fn *x = &fn[order[k]];
        const char *name = intern_str_get(&p->str, x->name);
        double pc = total ? 100.0 * (double)x->cum / (double)total : 0;
        wb_printf(out, "N%u [label=", k + 1);
        dot_str(out, name);
        wb_printf(out,
                  " xlabel=\"%" PRId64 " flat, %" PRId64 " cum (%.2f%%)\" id=\"node%u\" "
                  "fontsize=%d shape=box tooltip=",
                  x->flat, x->cum, pc, k + 1, 8 + (int)(pc / 100 * 16));
        dot_str(out, name);
        wb_printf(out, "]\n");
    }
    for (uint32_t id = 0; id < edges.n; id++) {
        const uint32_t *key = intern_get(&edges, id, NULL);
        uint32_t a = fn[key[0]].rank, b = fn[key[1]].rank;
        if (!a || !b || !ew[id])
            continue;
        wb_printf(out, "N%u -> N%u [label=\" %" PRId64 "\" weight=%d]\n", a, b, ew[id],
                  1 + (int)(total ? 100 * ew[id] / total : 0));
    }
    wb_bytes(out, "}\n", 2);
    rc = out->err ? -ENOMEM : 0;
out:
    free(fn);
    free(seen);
    free(order);
    free(ew);
    free(eseen);
    intern_free(&edges);
    return rc;
}
