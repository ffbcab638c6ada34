/* SPDX-License-Identifier: Apache-2.0 */
#include "query/serve/pyroscope_api.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "profile.pb-c.h"
#include "common/hash.h"
#include "query/serve/connect.h"
#include "query/engine/ctree.h"
#include "query/engine/heatmap.h"
#include "query/engine/plan.h"
#include "query/engine/views.h"

#define HOUR_MS 3600000LL

/* ---- names and levels ---------------------------------------------------- */

/* Copies the string table into a malloc'd char *[] (each strdup'd). */
static int names_out(const struct intern *t, char ***names, size_t *n)
{
    *n = 0;
    *names = calloc(t->n + 1, sizeof(**names));
    if (!*names)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->n; i++) {
        if (!((*names)[i] = strdup(intern_str_get(t, i))))
            return -ENOMEM;
        (*n)++;
    }
    return 0;
}

struct level {
    int64_t *v;
    size_t n, cap;
    int64_t end[2]; /* where the last node on this level ends (left, right) */
    int64_t cur[2]; /* where the next child of the current parent starts */
};

struct levels {
    struct level *l;
    size_t n, cap;
    bool oom;
};

static struct level *level_at(struct levels *ls, size_t d)
{
    while (ls->n <= d) {
        if (ls->n == ls->cap) {
            size_t cap = ls->cap ? ls->cap * 2 : 16;
            struct level *nl = realloc(ls->l, cap * sizeof(*nl));
            if (!nl) {
                ls->oom = true;
                return NULL;
            }
            ls->l = nl;
            ls->cap = cap;
        }
        ls->l[ls->n++] = (struct level){0};
    }
    return &ls->l[d];
}

static void level_push(struct levels *ls, struct level *l, const int64_t *v, size_t n)
{
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        while (cap < l->n + n)
            cap *= 2;
        int64_t *nv = realloc(l->v, cap * sizeof(*nv));
        if (!nv) {
            ls->oom = true;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    memcpy(l->v + l->n, v, n * sizeof(*v));
    l->n += n;
}

/* Moves the levels into Level messages; frees @ls's arrays either way. */
static int levels_out(struct levels *ls, Querier__V1__Level ***out, size_t *n)
{
    int rc = ls->oom ? -ENOMEM : 0;

    *n = 0;
    *out = rc ? NULL : calloc(ls->n + 1, sizeof(**out));
    if (!*out)
        rc = -ENOMEM;
    for (size_t i = 0; i < ls->n; i++) {
        if (!rc) {
            Querier__V1__Level *lv = malloc(sizeof(*lv));
            if (lv) {
                querier__v1__level__init(lv);
                lv->values = ls->l[i].v;
                lv->n_values = ls->l[i].n;
                ls->l[i].v = NULL;
                (*out)[(*n)++] = lv;
            } else {
                rc = -ENOMEM;
            }
        }
        free(ls->l[i].v);
    }
    free(ls->l);
    ls->l = NULL;
    return rc;
}

/* ---- flame graph --------------------------------------------------------- */

struct fg_build {
    struct levels ls;
    struct intern names;
    int64_t max_self;
};

static void fg_enter(void *ctx, uint32_t depth, const char *name, int64_t self, int64_t total)
{
    struct fg_build *b = ctx;
    /* One lookup: growing the array moves it, so level depth is the one
     * before depth + 1 rather than a pointer taken before the move. */
    struct level *next = level_at(&b->ls, (size_t)depth + 1), *l = next ? next - 1 : NULL;
    uint32_t id = intern_strn(&b->names, name, strlen(name));

    if (!l || !next || id == MPROF_NONE) {
        b->ls.oom = true;
        return;
    }
    /* Pyroscope's layout: children start after their parent's self. */
    int64_t x = depth ? l->cur[0] : 0;
    int64_t v[4] = {x - l->end[0], total, self, id};
    level_push(&b->ls, l, v, 4);
    l->end[0] = l->cur[0] = x + total;
    next->cur[0] = x + self;
    if (depth && self > b->max_self)
        b->max_self = self;
}

static void fg_leave(void *ctx, uint32_t depth)
{
}

int pyroscope_flamegraph(const struct mprof *p, uint32_t col, uint32_t max_nodes,
                         Querier__V1__FlameGraph **out)
{
    static const struct flame_visit v = {fg_enter, fg_leave};
    struct fg_build b = {0};
    Querier__V1__FlameGraph *fg = malloc(sizeof(*fg));
    int rc;

    if (!fg)
        return -ENOMEM;
    querier__v1__flame_graph__init(fg);
    rc = view_flame_walk(p, col, max_nodes, &v, &b);
    /* The walk gives an empty profile a lone root; levels drop the empty
     * level the last node opened. */
    while (b.ls.n && b.ls.l[b.ls.n - 1].n == 0)
        free(b.ls.l[--b.ls.n].v);
    if (!rc && b.ls.n && b.ls.l[0].n >= 2)
        fg->total = b.ls.l[0].v[1];
    fg->max_self = b.max_self;
    if (!rc)
        rc = b.ls.oom ? -ENOMEM : 0;
    int rc2 = levels_out(&b.ls, &fg->levels, &fg->n_levels);
    if (!rc)
        rc = rc2;
    if (!rc)
        rc = names_out(&b.names, &fg->names, &fg->n_names);
    intern_free(&b.names);
    if (rc) {
        querier__v1__flame_graph__free_unpacked(fg, NULL);
        return rc;
    }
    *out = fg;
    return 0;
}

/* ---- diff tree ----------------------------------------------------------- */

struct dnode {
    uint32_t name, parent, first_child, next_sibling;
    int64_t total[2], self[2];
    bool keep;
};

struct dtree {
    struct dnode *n;
    uint32_t count, cap;
    uint32_t *slots;
    uint32_t nslots;
    struct intern names;
};

static uint32_t dtree_child(struct dtree *t, uint32_t parent, uint32_t name)
{
    uint32_t j;

    if ((uint64_t)(t->count + 1) * 2 > t->nslots) {
        uint32_t ns = t->nslots ? t->nslots * 2 : 1024;
        uint32_t *sl = malloc((size_t)ns * sizeof(*sl));
        if (!sl)
            return UINT32_MAX;
        memset(sl, 0xff, (size_t)ns * sizeof(*sl));
        for (uint32_t i = 1; i < t->count; i++) {
            for (j = (uint32_t)hash_pair32(t->n[i].parent, t->n[i].name) & (ns - 1);
                 sl[j] != UINT32_MAX; j = (j + 1) & (ns - 1))
                ;
            sl[j] = i;
        }
        free(t->slots);
        t->slots = sl;
        t->nslots = ns;
    }
    for (j = (uint32_t)hash_pair32(parent, name) & (t->nslots - 1); t->slots[j] != UINT32_MAX;
         j = (j + 1) & (t->nslots - 1)) {
        struct dnode *c = &t->n[t->slots[j]];
        if (c->parent == parent && c->name == name)
            return t->slots[j];
    }
    if (t->count == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 1024;
        struct dnode *nn = realloc(t->n, (size_t)cap * sizeof(*nn));
        if (!nn)
            return UINT32_MAX;
        t->n = nn;
        t->cap = cap;
    }
    uint32_t id = t->count++;
    t->n[id] = (struct dnode){.name = name,
                              .parent = parent,
                              .first_child = UINT32_MAX,
                              .next_sibling = t->n[parent].first_child};
    t->n[parent].first_child = id;
    t->slots[j] = id;
    return id;
}

/*
 * Interns the frame names of @p's stacks (those with a value in column 0)
 * into t->names in the order the stack-by-stack build meets them (stack by
 * stack, root first), so the names table and its ids do not depend on how
 * much of the tree is built. map[string id of @p] = name id (UINT32_MAX
 * until seen). Adds |value| to *sum and clears *prune on a negative value
 * or when *sum passes INT64_MAX. 0 or -ENOMEM.
 */
static int dtree_names(struct dtree *t, const struct mprof *p, uint32_t *map, uint64_t *sum,
                       bool *prune)
{
    for (uint32_t s = 0; s < p->nstacks; s++) {
        int64_t v = p->vals[(size_t)s * p->ntypes];
        const uint32_t *f = mprof_stack_frames(p, s);
        if (v == 0)
            continue;
        uint64_t a = v < 0 ? -(uint64_t)v : (uint64_t)v;
        if (v < 0 || __builtin_add_overflow(*sum, a, sum) || *sum > INT64_MAX)
            *prune = false;
        for (uint32_t k = mprof_stack_len(p, s); k-- > 0;) {
            if (map[f[k]] != UINT32_MAX)
                continue;
            const char *nm = intern_str_get(&p->str, f[k]);
            if ((map[f[k]] = intern_strn(&t->names, nm, strlen(nm))) == MPROF_NONE)
                return -ENOMEM;
        }
    }
    return 0;
}

/* The whole tree, stack by stack (values < 0, or no cut to bound it). */
static int dtree_add(struct dtree *t, const struct mprof *p, const uint32_t *map, int side)
{
    for (uint32_t s = 0; s < p->nstacks; s++) {
        int64_t v = p->vals[(size_t)s * p->ntypes];
        const uint32_t *f = mprof_stack_frames(p, s);
        uint32_t node = 0;
        if (v == 0)
            continue;
        MPROF_ADD(t->n[0].total[side], v);
        for (uint32_t k = mprof_stack_len(p, s); k-- > 0;) {
            if ((node = dtree_child(t, node, map[f[k]])) == UINT32_MAX)
                return -ENOMEM;
            MPROF_ADD(t->n[node].total[side], v);
        }
        MPROF_ADD(t->n[node].self[side], v);
    }
    return 0;
}

static int64_t dsum(const struct dnode *x)
{
    return x->total[0] + x->total[1];
}

/*
 * The tree of @p[0] (left) and @p[1] (right), level by level from the
 * root, as view_flame_walk's: the cut below keeps nodes of dsum at least
 * the max_nodes-th largest of the tree, and only under kept nodes, so a
 * node under the (max_nodes + 1)-th largest dsum of the levels built so far
 * (view_topk) is made, as its parent's child, but nothing under it. Stacks
 * are moved left then right, each in order, so every parent's children are
 * made in the order dtree_add makes them: the answer is byte for byte the
 * whole tree's. Needs values >= 0 (dsums that only shrink towards the
 * leaves). 0 or -ENOMEM.
 */
static int dtree_levels(struct dtree *t, const struct mprof *const p[2], uint32_t *const map[2],
                        uint32_t max_nodes)
{
    struct {
        uint32_t stack, node, side;
    } *live = NULL;
    size_t nlive = 0, cap = (size_t)p[0]->nstacks + p[1]->nstacks;
    struct view_topk top = {.k = max_nodes + 1};
    int rc = -ENOMEM;

    if ((cap && !(live = malloc(cap * sizeof(*live)))) ||
        !(top.v = malloc((size_t)top.k * sizeof(*top.v))))
        goto out;
    for (uint32_t side = 0; side < 2; side++)
        for (uint32_t s = 0; s < p[side]->nstacks; s++) {
            int64_t v = p[side]->vals[(size_t)s * p[side]->ntypes];
            if (v == 0)
                continue;
            MPROF_ADD(t->n[0].total[side], v);
            live[nlive].stack = s;
            live[nlive].node = 0;
            live[nlive].side = side;
            nlive++;
        }
    for (uint32_t d = 0; nlive; d++) {
        /* nodes below the bound (exact sums: their level is done) stop */
        int64_t bound = view_topk_min(&top);
        uint32_t first_new = t->count;
        size_t w = 0;
        for (size_t i = 0; i < nlive; i++) {
            const struct mprof *q = p[live[i].side];
            uint32_t s = live[i].stack, node = live[i].node, len = mprof_stack_len(q, s);
            int64_t v = q->vals[(size_t)s * q->ntypes];
            if (dsum(&t->n[node]) < bound)
                continue;
            if (d == len) {
                MPROF_ADD(t->n[node].self[live[i].side], v);
                continue;
            }
            /* frames are leaf first: depth d's is len - 1 - d */
            uint32_t c =
                dtree_child(t, node, map[live[i].side][mprof_stack_frames(q, s)[len - 1 - d]]);
            if (c == UINT32_MAX)
                goto out;
            MPROF_ADD(t->n[c].total[live[i].side], v);
            live[w] = live[i];
            live[w].node = c;
            w++;
        }
        nlive = w;
        for (uint32_t c = first_new; c < t->count; c++)
            view_topk_add(&top, dsum(&t->n[c]));
    }
    rc = 0;
out:
    free(live);
    free(top.v);
    return rc;
}

static int cmp_i64_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

struct dsort_ctx {
    const struct dtree *t;
};

static int cmp_dchild(const void *a, const void *b, void *ctx)
{
    const struct dtree *t = ctx;
    const struct dnode *x = &t->n[*(const uint32_t *)a], *y = &t->n[*(const uint32_t *)b];
    int64_t sx = x->total[0] + x->total[1], sy = y->total[0] + y->total[1];
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return strcmp(intern_str_get(&t->names, x->name), intern_str_get(&t->names, y->name));
}

int pyroscope_flamegraph_diff(const struct mprof *left, const struct mprof *right,
                              uint32_t max_nodes, Querier__V1__FlameGraphDiff **out)
{
    return pyroscope_flamegraph_diff_build(left, right, max_nodes, true, out);
}

int pyroscope_flamegraph_diff_build(const struct mprof *left, const struct mprof *right,
                                    uint32_t max_nodes, bool prune,
                                    Querier__V1__FlameGraphDiff **out)
{
    const struct mprof *const p[2] = {left, right};
    uint32_t *map[2] = {NULL, NULL};
    uint64_t sum = 0;
    struct dtree t = {0};
    struct levels ls = {0};
    uint32_t *kids = NULL, *stk = NULL;
    int64_t *sums = NULL;
    Querier__V1__FlameGraphDiff *fg = malloc(sizeof(*fg));
    int rc = -ENOMEM;

    if (!fg)
        return -ENOMEM;
    querier__v1__flame_graph_diff__init(fg);
    t.cap = 1024;
    t.n = malloc(t.cap * sizeof(*t.n));
    if (!t.n || intern_strn(&t.names, "total", 5) != 0)
        goto out;
    t.count = 1;
    t.n[0] =
        (struct dnode){.parent = UINT32_MAX, .first_child = UINT32_MAX, .next_sibling = UINT32_MAX};
    /* (callers cap max_nodes far below this; past it, no bound) */
    if (max_nodes >= (1u << 24))
        prune = false;
    for (int side = 0; side < 2; side++) {
        if (!(map[side] = malloc(((size_t)p[side]->str.n + 1) * sizeof(*map[side]))))
            goto out;
        memset(map[side], 0xff, ((size_t)p[side]->str.n + 1) * sizeof(*map[side]));
        if (dtree_names(&t, p[side], map[side], &sum, &prune))
            goto out;
    }
    if (prune ? dtree_levels(&t, p, map, max_nodes)
              : dtree_add(&t, left, map[0], 0) || dtree_add(&t, right, map[1], 1))
        goto out;
    /* Keep the max_nodes largest nodes (left + right); a cut node's values
     * stay in its parent's self, so totals still add up. (dtree_levels'
     * tree holds every node of the whole tree at or over the threshold,
     * so the threshold is the whole tree's.) */
    int64_t threshold = INT64_MIN;
    if (t.count > max_nodes) {
        sums = malloc((size_t)t.count * sizeof(*sums));
        if (!sums)
            goto out;
        for (uint32_t i = 0; i < t.count; i++)
            sums[i] = t.n[i].total[0] + t.n[i].total[1];
        qsort(sums, t.count, sizeof(*sums), cmp_i64_desc);
        threshold = sums[max_nodes ? max_nodes - 1 : 0];
    }
    kids = malloc((size_t)t.count * sizeof(*kids));
    stk = malloc((size_t)t.count * 2 * sizeof(*stk));
    if (!kids || !stk)
        goto out;
    /* Depth-first, iteratively: stk holds (node, depth) pairs, children
     * pushed in reverse sort order so the largest is visited first. */
    size_t sp = 0;
    stk[sp++] = 0;
    stk[sp++] = 0;
    while (sp) {
        uint32_t depth = stk[--sp], nd = stk[--sp];
        struct dnode *x = &t.n[nd];
        uint32_t nk = 0;
        for (uint32_t c = x->first_child; c != UINT32_MAX; c = t.n[c].next_sibling) {
            if (t.n[c].total[0] + t.n[c].total[1] >= threshold && nk < max_nodes) {
                kids[nk++] = c;
            } else {
                MPROF_ADD(x->self[0], t.n[c].total[0]);
                MPROF_ADD(x->self[1], t.n[c].total[1]);
            }
        }
        struct level *next = level_at(&ls, depth + 1), *l = level_at(&ls, depth); /* see above */
        if (!l || !next)
            goto out;
        int64_t v[7];
        for (int side = 0; side < 2; side++) {
            int64_t xs = depth ? l->cur[side] : 0;
            v[side * 3] = xs - l->end[side];
            v[side * 3 + 1] = x->total[side];
            v[side * 3 + 2] = x->self[side];
            l->end[side] = l->cur[side] = xs + x->total[side];
            next->cur[side] = xs + x->self[side];
            if (depth && x->self[side] > fg->max_self)
                fg->max_self = x->self[side];
        }
        v[6] = x->name;
        level_push(&ls, l, v, 7);
        qsort_r(kids, nk, sizeof(*kids), cmp_dchild, &t);
        for (uint32_t k = nk; k-- > 0;) {
            stk[sp++] = kids[k];
            stk[sp++] = depth + 1;
        }
    }
    while (ls.n && ls.l[ls.n - 1].n == 0)
        free(ls.l[--ls.n].v);
    fg->leftticks = t.n[0].total[0];
    fg->rightticks = t.n[0].total[1];
    fg->total = fg->leftticks + fg->rightticks;
    rc = levels_out(&ls, &fg->levels, &fg->n_levels);
    if (!rc)
        rc = names_out(&t.names, &fg->names, &fg->n_names);
out:
    for (size_t i = 0; ls.l && i < ls.n; i++)
        free(ls.l[i].v);
    free(ls.l);
    free(t.n);
    free(t.slots);
    intern_free(&t.names);
    free(kids);
    free(stk);
    free(sums);
    free(map[0]);
    free(map[1]);
    if (rc) {
        querier__v1__flame_graph_diff__free_unpacked(fg, NULL);
        return rc;
    }
    *out = fg;
    return 0;
}

/* ---- selections ---------------------------------------------------------- */

struct call;
static void oom(struct call *c);

/* One request's context. */
struct call {
    const struct pyroscope_api *a;
    const char *tenant;
    enum connect_codec codec;
    struct http_response *r;
};

/* A parsed label selector split in two: the matchers on the pseudo labels
 * __name__ (the profile type's first field) and __profile_type__ (the whole
 * id), matched here, and the rest (the engine's), with the rest written
 * back as text for peers. */
struct selection {
    struct selector *parsed;
    struct selector rest; /* shallow: matchers borrowed from parsed */
    const struct sel_matcher *name_m, *type_m;
    char *rest_text;
    int64_t from, until;
};

static void selection_free(struct selection *s)
{
    selector_free(s->parsed);
    free(s->rest.m);
    free(s->rest_text);
    memset(s, 0, sizeof(*s));
}

static const char *op_text(enum sel_op op)
{
    switch (op) {
    case SEL_EQ:
        return "=";
    case SEL_NE:
        return "!=";
    case SEL_RE:
        return "=~";
    case SEL_NRE:
        return "!~";
    }
    return "=";
}

/* Parses @text and [start, end) (0 = now / end - 1h). 0, or -EINVAL with a
 * Connect invalid_argument already in c->r, or -ENOMEM likewise. */
static int selection_parse(struct call *c, const char *what, const char *text, int64_t start,
                           int64_t end, struct selection *s)
{
    char err[256];
    struct wbuf b = {0};
    int rc;

    memset(s, 0, sizeof(*s));
    s->until = end ? end : http_now_ms();
    /* Without a start, end is checked first: the default is computed from it. */
    if (start ? plan_range_check(start, s->until, "start", "end", err, sizeof(err))
              : plan_time_check(s->until, "end", err, sizeof(err)) ||
                    plan_range_check(s->until - HOUR_MS, s->until, "start", "end", err,
                                     sizeof(err))) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "%s%s", what, err);
        return -EINVAL;
    }
    s->from = start ? start : s->until - HOUR_MS;
    rc = selector_parse(text, &s->parsed, err, sizeof(err));
    if (rc) {
        connect_error(c->r, 0,
                      rc == -ENOMEM ? CONNECT_RESOURCE_EXHAUSTED : CONNECT_INVALID_ARGUMENT,
                      "%slabel_selector: %s", what, err);
        return rc;
    }
    s->rest.m = calloc(s->parsed->n + 1, sizeof(*s->rest.m));
    if (!s->rest.m)
        goto oom;
    wb_bytes(&b, "{", 1);
    for (size_t i = 0; i < s->parsed->n; i++) {
        const struct sel_matcher *m = &s->parsed->m[i];
        if (strcmp(m->name, "__name__") == 0) {
            s->name_m = m;
            continue;
        }
        if (strcmp(m->name, "__profile_type__") == 0) {
            s->type_m = m;
            continue;
        }
        if (s->rest.n)
            wb_bytes(&b, ",", 1);
        wb_printf(&b, "%s%s", m->name, op_text(m->op));
        wb_json_str(&b, m->value); /* JSON escapes are a superset of the selector's */
        s->rest.m[s->rest.n++] = *m;
    }
    wb_bytes(&b, "}", 1);
    if (b.err)
        goto oom;
    s->rest_text = b.s;
    return 0;
oom:
    free(b.p);
    selection_free(s);
    connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
    return -ENOMEM;
}

/* Does the profile type @id pass the selection's __name__ and
 * __profile_type__ matchers? */
static bool name_matches(const struct selection *s, const char *id)
{
    char name[128];
    size_t n = strcspn(id, ":");

    if (s->type_m && !sel_matcher_match(s->type_m, id))
        return false;
    if (!s->name_m)
        return true;
    if (n >= sizeof(name))
        return false;
    memcpy(name, id, n);
    name[n] = '\0';
    return sel_matcher_match(s->name_m, name);
}

/* The engine query for a parsed selection: tenant, the selector without its
 * __name__ matcher, the time range; the caller adds mode-specific fields. */
static struct query selection_query(const struct call *c, const struct selection *s,
                                    const char *profile_type, enum qmode mode)
{
    return (struct query){.tenant = c->tenant,
                          .sel = &s->rest,
                          .selector_text = s->rest_text,
                          .from = s->from,
                          .until = s->until,
                          .profile_type = profile_type,
                          .mode = mode};
}

/* Fills c->r with the Connect error of a query that failed with @rc. */
static void query_error(struct call *c, int rc, const char *what, const char *err)
{
    /* Past a memory budget (query/engine/qmem.h): resource_exhausted, the
     * message says whether the query or the worker is over. */
    enum connect_code code = rc == -ENOMEM || rc == -E2BIG || rc == -ENOBUFS
                                 ? CONNECT_RESOURCE_EXHAUSTED
                             : rc == -ETIMEDOUT ? CONNECT_DEADLINE_EXCEEDED
                             : rc == -ECANCELED ? CONNECT_CANCELED
                             : rc == -EINVAL    ? CONNECT_INVALID_ARGUMENT
                                                : CONNECT_UNAVAILABLE;

    connect_error(c->r, 0, code, "%s: %s", what, err[0] ? err : strerror(-rc));
}

static int run(struct call *c, const struct query *q, struct mprof **out)
{
    char err[512] = "";
    struct query qq = *q;

    qq.cancel = c->a->cancel;
    int rc = engine_query(c->a->engine, &qq, out, err, sizeof(err));
    if (rc) {
        query_error(c, rc, "query failed", err);
        return rc;
    }
    c->r->queried = true;
    c->r->skipped += (*out)->stats.skipped;
    return 0;
}

/* Runs the flame graph query @q (its graph cut to @max_nodes) from the
 * blocks' call trees where they apply (ctree.h, query.flame), and from the
 * rows again when the graph the trees give cannot be shown to be the
 * rows' (view_flame_proved): Pyroscope's clients get the exact graph, and
 * have no field for an error bound. 0, or an error in c->r. */
static int run_flame(struct call *c, const struct query *q, uint32_t max_nodes, struct mprof **out)
{
    struct query qq = *q;

    qq.flame = !q->nids && max_nodes <= CTREE_MAX_NODES;
    int rc = run(c, &qq, out);
    if (rc)
        return rc;
    int proved = view_flame_proved(*out, 0, max_nodes, CTREE_OTHER);
    if (proved == 1)
        return 0;
    c->r->skipped -= (*out)->stats.skipped; /* counted again below */
    mprof_free(*out);
    *out = NULL;
    if (proved < 0) {
        connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
        return proved;
    }
    qq.flame = false;
    return run(c, &qq, out);
}

static int profile_type_check(struct call *c, const char *what, const char *id)
{
    if (!id || !*id) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "%sprofile_typeID: missing (e.g. %s)",
                      what, DEFAULT_PROFILE_TYPE);
        return -EINVAL;
    }
    if (!query_profile_type_valid(id)) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT,
                      "%sprofile_typeID: '%.128s' is not a profile type id "
                      "(name:sample_type:sample_unit:period_type:period_unit, e.g. %s)",
                      what, id, DEFAULT_PROFILE_TYPE);
        return -EINVAL;
    }
    return 0;
}

static bool stack_selector_set(const Types__V1__StackTraceSelector *s)
{
    return s && (s->n_call_site || s->go_pgo);
}

/* Checks a stack trace selector Stoke applies after the merge: call_site
 * yes (at most 1024 frames), go_pgo no (501). 0 or -EINVAL with the
 * error in c->r. */
static int stack_selector_check(struct call *c, const char *what,
                                const Types__V1__StackTraceSelector *s)
{
    if (s && s->go_pgo) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "%sstack_trace_selector.go_pgo is not implemented", what);
        return -EINVAL;
    }
    if (s && s->n_call_site > 1024) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT,
                      "%sstack_trace_selector.call_site: more than 1024 frames", what);
        return -EINVAL;
    }
    return 0;
}

/* Keeps the stacks of @mp under the selector's call site (root first). */
static int stack_selector_apply(struct call *c, const Types__V1__StackTraceSelector *s,
                                struct mprof *mp)
{
    if (!s || !s->n_call_site)
        return 0;
    const char **names = calloc(s->n_call_site, sizeof(*names));
    if (!names) {
        oom(c);
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n_call_site; i++)
        names[i] = s->call_site[i]->name ? s->call_site[i]->name : "";
    mprof_keep_call_site(mp, names, s->n_call_site);
    free(names);
    return 0;
}

/* ---- individual profiles ---------------------------------------------------- */

/* Parses a profile_id_selector: *ids sorted (free it). 0; -EINVAL with
 * invalid_argument for what is not a UUID or not_found for a UUID no
 * worker writes, in c->r; -ENOMEM. */
static int id_selection(struct call *c, const char *what, char *const *v, size_t n,
                        struct prof_id **ids, uint32_t *nids)
{
    *ids = NULL;
    *nids = 0;
    if (n == 0)
        return 0;
    if (n > QUERY_MAX_PROFILE_IDS) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "%sprofile_id_selector: more than %d ids",
                      what, QUERY_MAX_PROFILE_IDS);
        return -EINVAL;
    }
    if (!(*ids = calloc(n, sizeof(**ids)))) {
        oom(c);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = prof_id_parse(v[i], &(*ids)[i]);
        if (rc) {
            connect_error(c->r, 0, rc == -ENOENT ? CONNECT_NOT_FOUND : CONNECT_INVALID_ARGUMENT,
                          rc == -ENOENT ? "%sprofile_id_selector: no profile %.64s"
                                        : "%sprofile_id_selector: '%.64s' is not a profile id (a "
                                          "UUID)",
                          what, v[i]);
            free(*ids);
            *ids = NULL;
            return -EINVAL;
        }
    }
    *nids = (uint32_t)n;
    prof_ids_sort(*ids, nids);
    return 0;
}

/* The ids' own range when the request names none (start and end 0). */
static void id_range(const struct prof_id *ids, uint32_t n, int64_t *start, int64_t *end)
{
    if (n && !*start && !*end) {
        *start = ids[0].time_ms;
        *end = ids[n - 1].time_ms + 1;
    }
}

/* not_found naming the first id @mp did not see (-ENOENT); 0 when it saw
 * them all. */
static int ids_found(struct call *c, const char *what, const struct mprof *mp,
                     const struct prof_id *ids, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++)
        if (!mp->id_found || k >= mp->nids || !mp->id_found[k]) {
            char id[PROF_ID_LEN + 1];
            prof_id_format(&ids[k], id);
            connect_error(c->r, 0, CONNECT_NOT_FOUND,
                          "%sprofile_id_selector: no profile %s in this selection and range", what,
                          id);
            return -ENOENT;
        }
    return 0;
}

/* Allocations of one answer, freed together. */
struct pool {
    void **p;
    size_t n, cap;
    bool oom;
};

static void *pool_alloc(struct pool *pl, size_t n)
{
    void *v;

    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 64;
        void **np = realloc(pl->p, cap * sizeof(*np));
        if (!np) {
            pl->oom = true;
            return NULL;
        }
        pl->p = np;
        pl->cap = cap;
    }
    if (!(v = calloc(1, n ? n : 1))) {
        pl->oom = true;
        return NULL;
    }
    return pl->p[pl->n++] = v;
}

static void pool_free(struct pool *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        free(pl->p[i]);
    free(pl->p);
}

/* The Exemplar of individual profile @v of @mp: its labels but the
 * ','-separated @skip (the series' own, as Pyroscope leaves them out).
 * Strings point into @mp. NULL when out of memory. */
static Types__V1__Exemplar *exemplar_msg(struct pool *pl, const struct mprof *mp,
                                         const struct mprof_ind *v, const char *skip)
{
    Types__V1__Exemplar *e = pool_alloc(pl, sizeof(*e));
    char *id = pool_alloc(pl, PROF_ID_LEN + 1);
    struct prof_id pid = {v->time, v->hash};
    uint32_t n = 0;
    const uint32_t *l = v->lset == MPROF_NONE ? NULL : mprof_lset(mp, v->lset, &n);

    if (!e || !id)
        return NULL;
    types__v1__exemplar__init(e);
    prof_id_format(&pid, id);
    e->profile_id = id;
    e->timestamp = v->time;
    e->value = v->value;
    e->labels = pool_alloc(pl, (n + 1) * sizeof(*e->labels));
    if (!e->labels)
        return NULL;
    for (uint32_t k = 0; k < n; k++) {
        const char *name = intern_str_get(&mp->str, l[2 * k]);
        size_t nl = strlen(name);
        bool skipped = false;
        for (const char *q = skip; q && *q; q += strcspn(q, ",") + (q[strcspn(q, ",")] != 0))
            skipped |= strcspn(q, ",") == nl && strncmp(q, name, nl) == 0;
        if (skipped)
            continue;
        Types__V1__LabelPair *lp = pool_alloc(pl, sizeof(*lp));
        if (!lp)
            return NULL;
        types__v1__label_pair__init(lp);
        lp->name = (char *)name;
        lp->value = (char *)intern_str_get(&mp->str, l[2 * k + 1]);
        e->labels[e->n_labels++] = lp;
    }
    return e;
}

/* The merged profile of one stack trace request (column 0 = the type). */
static int select_stacks(struct call *c, const char *what,
                         const Querier__V1__SelectMergeStacktracesRequest *m, bool flame,
                         struct mprof **out, uint32_t *max_nodes)
{
    struct selection s;

    if (profile_type_check(c, what, m->profile_typeid))
        return -EINVAL;
    if (m->_max_nodes_case == QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST___MAX_NODES_MAX_NODES &&
        m->max_nodes < 0) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "%smax_nodes: %" PRId64 " is negative",
                      what, m->max_nodes);
        return -EINVAL;
    }
    *max_nodes = m->max_nodes <= 0                             ? PYROSCOPE_DEFAULT_NODES
                 : m->max_nodes > (int64_t)PYROSCOPE_MAX_NODES ? PYROSCOPE_MAX_NODES
                                                               : (uint32_t)m->max_nodes;
    if (m->n_span_selector && m->n_trace_id_selector) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT,
                      "%sspan_selector and trace_id_selector cannot be combined", what);
        return -EINVAL;
    }
    if (m->n_span_selector || m->n_trace_id_selector) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "%s%s is not implemented: Stoke's samples carry no span or trace ids", what,
                      m->n_span_selector ? "span_selector" : "trace_id_selector");
        return -EINVAL;
    }
    if (stack_selector_check(c, what, m->stack_trace_selector))
        return -EINVAL;
    struct prof_id *ids;
    uint32_t nids;
    int64_t start = m->start, end = m->end;
    if (id_selection(c, what, m->profile_id_selector, m->n_profile_id_selector, &ids, &nids))
        return -EINVAL;
    id_range(ids, nids, &start, &end);
    if (selection_parse(c, what, m->label_selector, start, end, &s)) {
        free(ids);
        return -EINVAL;
    }
    if (!name_matches(&s, m->profile_typeid)) {
        selection_free(&s);
        *out = mprof_new(1);
        if (*out && nids && ids_found(c, what, *out, ids, nids)) {
            mprof_free(*out);
            *out = NULL;
            free(ids);
            return -ENOENT;
        }
        free(ids);
        if (!*out)
            connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
        return *out ? 0 : -ENOMEM;
    }
    struct query q = selection_query(c, &s, m->profile_typeid, Q_PROFILE);
    q.ids = ids;
    q.nids = nids;
    /* a flame graph or tree, of whole stacks: from call trees if exact */
    int rc =
        flame && !m->stack_trace_selector ? run_flame(c, &q, *max_nodes, out) : run(c, &q, out);
    selection_free(&s);
    if (!rc && (rc = ids_found(c, what, *out, ids, nids))) {
        mprof_free(*out);
        *out = NULL;
    }
    free(ids);
    if (!rc && (rc = stack_selector_apply(c, m->stack_trace_selector, *out))) {
        mprof_free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- methods ------------------------------------------------------------- */

static void oom(struct call *c)
{
    connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
}

static char *field_dup(const char *id, int field)
{
    const char *p = id;

    for (int i = 0; i < field && p; i++)
        p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL;
    return p ? strndup(p, strcspn(p, ":")) : strdup("");
}

/* The profile types of @s's selection (NULL = all), filtered by __name__. */
static int types_of(struct call *c, const struct selection *s, char ***types, size_t *n)
{
    char err[256] = "";
    struct mprof *notes = NULL;
    int rc = engine_profile_types(c->a->engine, c->tenant, s->parsed ? &s->rest : NULL, s->from,
                                  s->until, c->a->cancel, types, n, &notes, err, sizeof(err));

    if (rc) {
        query_error(c, rc, "profile types", err);
        return rc;
    }
    c->r->queried = true;
    c->r->skipped += notes->stats.skipped;
    mprof_free(notes);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if (name_matches(s, (*types)[i]))
            (*types)[k++] = (*types)[i];
        else
            free((*types)[i]);
    }
    *n = k;
    return 0;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void m_profile_types(struct call *c, const ProtobufCMessage *req)
{
    const Querier__V1__ProfileTypesRequest *m = (const void *)req;
    Querier__V1__ProfileTypesResponse resp = QUERIER__V1__PROFILE_TYPES_RESPONSE__INIT;
    struct selection s;
    char **types = NULL;
    size_t n = 0;

    if (selection_parse(c, "", "{}", m->start, m->end, &s))
        return;
    if (types_of(c, &s, &types, &n)) {
        selection_free(&s);
        return;
    }
    selection_free(&s);
    Types__V1__ProfileType *pt = calloc(n + 1, sizeof(*pt));
    Types__V1__ProfileType **ptv = calloc(n + 1, sizeof(*ptv));
    bool failed = !pt || !ptv;
    for (size_t i = 0; !failed && i < n; i++) {
        types__v1__profile_type__init(&pt[i]);
        pt[i].id = types[i];
        failed |= !(pt[i].name = field_dup(types[i], 0)) ||
                  !(pt[i].sample_type = field_dup(types[i], 1)) ||
                  !(pt[i].sample_unit = field_dup(types[i], 2)) ||
                  !(pt[i].period_type = field_dup(types[i], 3)) ||
                  !(pt[i].period_unit = field_dup(types[i], 4));
        ptv[i] = &pt[i];
    }
    resp.profile_types = ptv;
    resp.n_profile_types = n;
    if (failed)
        oom(c);
    else
        connect_respond(c->r, c->codec, &resp.base);
    for (size_t i = 0; pt && i < n; i++) {
        free(pt[i].name);
        free(pt[i].sample_type);
        free(pt[i].sample_unit);
        free(pt[i].period_type);
        free(pt[i].period_unit);
    }
    free(pt);
    free(ptv);
    free_strv(types, n);
}

/* Is @name one of the pseudo labels the profile type id answers? */
static bool pseudo_label(const char *name)
{
    return name && (strcmp(name, "__name__") == 0 || strcmp(name, "__profile_type__") == 0);
}

/* The label pairs of @s's series (mode Q_LABELS) into *out: of every type
 * when the selection names none, else of each type in @types only, so
 * {__profile_type__="..."} lists that type's labels. The skips of the
 * queries (which read the same sections) count once. */
static int label_pairs(struct call *c, const struct selection *s, char **types, size_t n,
                       const char *labels_of, struct mprof **out)
{
    bool typed = s->name_m || s->type_m;
    uint64_t skipped0 = c->r->skipped, most = 0;
    int rc = 0;

    *out = NULL;
    for (size_t i = 0; i < (typed ? n : 1) && !rc; i++) {
        struct mprof *mp = NULL;
        struct query q = selection_query(c, s, typed ? types[i] : NULL, Q_LABELS);
        q.labels_of = labels_of;
        if ((rc = run(c, &q, &mp)))
            break;
        if (mp->stats.skipped > most)
            most = mp->stats.skipped;
        if (!*out) {
            *out = mp;
        } else {
            rc = mprof_merge(*out, mp);
            mprof_free(mp);
            if (rc)
                oom(c);
        }
    }
    c->r->skipped = skipped0 + most;
    if (rc) {
        mprof_free(*out);
        *out = NULL;
    }
    return rc;
}

/* LabelNames (@name NULL) or LabelValues of @name over the union of
 * @matchers (none = everything). */
static void labels(struct call *c, const char *name, char *const *matchers, size_t nmatchers,
                   int64_t start, int64_t end)
{
    struct intern out = {0};
    const char **sorted = NULL;
    bool nomem = false;

    if (name && !(pseudo_label(name) || query_label_name_valid(name))) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "name: '%.64s' is not a label name", name);
        return;
    }
    for (size_t k = 0; k < (nmatchers ? nmatchers : 1); k++) {
        struct selection s;
        char **types = NULL;
        size_t n = 0;
        if (selection_parse(c, "", nmatchers ? matchers[k] : "{}", start, end, &s))
            goto fail;
        /* The pseudo labels come from the profile types, the rest from
         * the engine. Both read the same selection: its skips count once. */
        uint64_t skipped0 = c->r->skipped;
        if (types_of(c, &s, &types, &n)) {
            selection_free(&s);
            goto fail;
        }
        uint64_t skipped_types = c->r->skipped - skipped0;
        if (n && !name) {
            nomem |= intern_str(&out, "__name__") == INTERN_NONE;
            nomem |= intern_str(&out, "__profile_type__") == INTERN_NONE;
        }
        if (n && name && strcmp(name, "__name__") == 0)
            for (size_t i = 0; i < n; i++)
                nomem |= intern_strn(&out, types[i], strcspn(types[i], ":")) == INTERN_NONE;
        if (n && name && strcmp(name, "__profile_type__") == 0)
            for (size_t i = 0; i < n; i++)
                nomem |= intern_str(&out, types[i]) == INTERN_NONE;
        if (n && !pseudo_label(name)) {
            struct mprof *mp = NULL;
            c->r->skipped = skipped0;
            if (label_pairs(c, &s, types, n, name ? name : "", &mp)) {
                free_strv(types, n);
                selection_free(&s);
                goto fail;
            }
            if (c->r->skipped - skipped0 < skipped_types)
                c->r->skipped = skipped0 + skipped_types;
            nomem |= view_label_strings(mp, name, &out) != 0;
            mprof_free(mp);
        }
        free_strv(types, n);
        selection_free(&s);
    }
    if (nomem || view_sorted_strings(&out, &sorted)) {
        oom(c);
        goto fail;
    }
    /* protobuf-c's string arrays are char **; the message only reads them */
    if (name) {
        Types__V1__LabelValuesResponse resp = TYPES__V1__LABEL_VALUES_RESPONSE__INIT;
        resp.names = (char **)sorted;
        resp.n_names = out.n;
        connect_respond(c->r, c->codec, &resp.base);
    } else {
        Types__V1__LabelNamesResponse resp = TYPES__V1__LABEL_NAMES_RESPONSE__INIT;
        resp.names = (char **)sorted;
        resp.n_names = out.n;
        connect_respond(c->r, c->codec, &resp.base);
    }
fail:
    free(sorted);
    intern_free(&out);
}

static void m_label_names(struct call *c, const ProtobufCMessage *req)
{
    const Types__V1__LabelNamesRequest *m = (const void *)req;
    labels(c, NULL, m->matchers, m->n_matchers, m->start, m->end);
}

static void m_label_values(struct call *c, const ProtobufCMessage *req)
{
    const Types__V1__LabelValuesRequest *m = (const void *)req;
    if (!m->name || !*m->name) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "name: missing");
        return;
    }
    labels(c, m->name, m->matchers, m->n_matchers, m->start, m->end);
}

/* ---- Pyroscope tree bytes ------------------------------------------------- */

struct tree_build {
    struct intern names;
    uint32_t *name, *depth;
    int64_t *self;
    size_t n, cap;
    bool oom;
};

static void tree_enter(void *ctx, uint32_t depth, const char *name, int64_t self, int64_t total)
{
    struct tree_build *t = ctx;

    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        uint32_t *nm = realloc(t->name, cap * sizeof(*nm));
        if (nm)
            t->name = nm;
        uint32_t *dp = realloc(t->depth, cap * sizeof(*dp));
        if (dp)
            t->depth = dp;
        int64_t *sf = realloc(t->self, cap * sizeof(*sf));
        if (sf)
            t->self = sf;
        if (!nm || !dp || !sf) {
            t->oom = true;
            return;
        }
        t->cap = cap;
    }
    uint32_t id = intern_str(&t->names, name);
    if (id == INTERN_NONE) {
        t->oom = true;
        return;
    }
    t->name[t->n] = id;
    t->depth[t->n] = depth;
    t->self[t->n] = self;
    t->n++;
}

static void wb_uvarint(struct wbuf *b, uint64_t v)
{
    uint8_t x[10];
    size_t n = 0;

    do {
        x[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            x[n] |= 0x80;
        n++;
    } while (v);
    wb_bytes(b, x, n);
}

/* The flame graph tree of @p cut to @max_nodes in Pyroscope's tree bytes
 * (pkg/model: per node, preorder, uvarint name length, name, uvarint self,
 * uvarint number of children; the root is a nameless virtual node). The
 * cut nodes are the walk's "other" nodes, as Pyroscope names them. */
static int pyroscope_tree(const struct mprof *p, uint32_t col, uint32_t max_nodes, struct wbuf *out)
{
    static const struct flame_visit v = {tree_enter, fg_leave};
    struct tree_build t = {0};
    uint32_t *kids = NULL, *stk = NULL;
    int rc = view_flame_walk(p, col, max_nodes, &v, &t);

    if (!rc && t.oom)
        rc = -ENOMEM;
    if (!rc && t.n && !((kids = calloc(t.n, sizeof(*kids))) && (stk = malloc(t.n * sizeof(*stk)))))
        rc = -ENOMEM;
    /* children counts: a node's parent is the nearest earlier node one level up */
    size_t sp = 0;
    for (size_t i = 0; !rc && i < t.n; i++) {
        while (sp && t.depth[stk[sp - 1]] >= t.depth[i])
            sp--;
        if (sp)
            kids[stk[sp - 1]]++;
        stk[sp++] = (uint32_t)i;
    }
    for (size_t i = 0; !rc && t.n > 1 && i < t.n; i++) { /* empty: no bytes */
        const char *nm = i ? intern_str_get(&t.names, t.name[i]) : "";
        wb_uvarint(out, strlen(nm));
        wb_bytes(out, nm, strlen(nm));
        wb_uvarint(out, i && t.self[i] > 0 ? (uint64_t)t.self[i] : 0);
        wb_uvarint(out, kids[i]);
    }
    if (!rc && out->err)
        rc = -ENOMEM;
    free(kids);
    free(stk);
    free(t.name);
    free(t.depth);
    free(t.self);
    intern_free(&t.names);
    return rc;
}

static void m_select_merge_stacktraces(struct call *c, const ProtobufCMessage *req)
{
    const Querier__V1__SelectMergeStacktracesRequest *m = (const void *)req;
    Querier__V1__SelectMergeStacktracesResponse resp =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;
    Querier__V1__PprofProfile pp = QUERIER__V1__PPROF_PROFILE__INIT;
    struct mprof *mp = NULL;
    struct wbuf b = {0};
    uint32_t max_nodes;
    int rc = 0;

    bool flame = m->format != QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_DOT &&
                 m->format != QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_PPROF;
    if (select_stacks(c, "", m, flame, &mp, &max_nodes))
        return;
    switch (m->format) {
    case QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE:
        if (!(rc = pyroscope_tree(mp, 0, max_nodes, &b)) && b.len > 1) {
            resp.tree.data = b.p;
            resp.tree.len = b.len;
        }
        break;
    case QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_DOT: {
        /* Pyroscope draws 100 nodes unless max_nodes says otherwise; an
         * empty selection answers an empty message. */
        uint32_t dn = m->_max_nodes_case && m->max_nodes > 0 ? max_nodes : 100;
        int64_t any = 0;
        for (uint32_t s = 0; s < mp->nstacks && !any; s++)
            any = mp->vals[(size_t)s * mp->ntypes];
        if (any && !(rc = view_dot(mp, 0, dn, &b)))
            resp.dot = b.s;
        break;
    }
    case QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_PPROF: {
        uint8_t *raw = NULL;
        size_t rawlen = 0;
        int64_t until = m->end ? m->end : http_now_ms();
        int64_t from = m->start ? m->start : until - HOUR_MS;
        if (!(rc = view_pprof_pb(mp, from, until - from, &raw, &rawlen))) {
            pp.profile = perftools__profiles__profile__unpack(NULL, rawlen, raw);
            rc = pp.profile ? 0 : -ENOMEM;
            resp.pprof = &pp;
        }
        free(raw);
        break;
    }
    default: /* FLAMEGRAPH, UNSPECIFIED and numbers from newer clients */
        rc = pyroscope_flamegraph(mp, 0, max_nodes, &resp.flamegraph);
        break;
    }
    if (rc)
        connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED, "%s", strerror(-rc));
    else
        connect_respond(c->r, c->codec, &resp.base);
    if (resp.flamegraph)
        querier__v1__flame_graph__free_unpacked(resp.flamegraph, NULL);
    if (pp.profile)
        perftools__profiles__profile__free_unpacked(pp.profile, NULL);
    free(b.p);
    mprof_free(mp);
}

static void m_diff(struct call *c, const ProtobufCMessage *req)
{
    const Querier__V1__DiffRequest *m = (const void *)req;
    Querier__V1__DiffResponse resp = QUERIER__V1__DIFF_RESPONSE__INIT;
    struct mprof *l = NULL, *r = NULL;
    uint32_t ln, rn;

    if (!m->left || !m->right) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "%s: missing", m->left ? "right" : "left");
        return;
    }
    if (select_stacks(c, "left.", m->left, false, &l, &ln))
        return;
    if (select_stacks(c, "right.", m->right, false, &r, &rn)) {
        mprof_free(l);
        return;
    }
    if (pyroscope_flamegraph_diff(l, r, ln > rn ? ln : rn, &resp.flamegraph)) {
        oom(c);
    } else {
        connect_respond(c->r, c->codec, &resp.base);
        querier__v1__flame_graph_diff__free_unpacked(resp.flamegraph, NULL);
    }
    mprof_free(l);
    mprof_free(r);
}

static void m_select_merge_profile(struct call *c, const ProtobufCMessage *req)
{
    const Querier__V1__SelectMergeProfileRequest *m = (const void *)req;
    struct selection s;
    struct mprof *mp = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;

    if (profile_type_check(c, "", m->profile_typeid))
        return;
    if (m->n_trace_id_selector) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "trace_id_selector is not implemented: Stoke's samples carry no span or "
                      "trace ids");
        return;
    }
    if (stack_selector_check(c, "", m->stack_trace_selector))
        return;
    struct prof_id *ids;
    uint32_t nids;
    int64_t start = m->start, end = m->end;
    if (id_selection(c, "", m->profile_id_selector, m->n_profile_id_selector, &ids, &nids))
        return;
    id_range(ids, nids, &start, &end);
    if (selection_parse(c, "", m->label_selector, start, end, &s)) {
        free(ids);
        return;
    }
    struct query q = selection_query(c, &s, m->profile_typeid, Q_PROFILE);
    q.ids = ids;
    q.nids = nids;
    int rc =
        name_matches(&s, m->profile_typeid) ? run(c, &q, &mp) : ((mp = mprof_new(1)) ? 0 : -ENOMEM);
    int64_t from = s.from, until = s.until;
    selection_free(&s);
    if (!rc)
        rc = ids_found(c, "", mp, ids, nids);
    free(ids);
    if (rc) {
        if (rc == -ENOMEM && !mp && !c->r->body)
            oom(c);
        mprof_free(mp);
        return;
    }
    if (stack_selector_apply(c, m->stack_trace_selector, mp)) {
        mprof_free(mp);
        return;
    }
    rc = view_pprof_pb(mp, from, until - from, &raw, &rawlen);
    mprof_free(mp);
    if (rc) {
        connect_error(c->r, 0, CONNECT_INTERNAL, "pprof encoding failed: %s", strerror(-rc));
        return;
    }
    connect_respond_packed(c->r, c->codec, &perftools__profiles__profile__descriptor, raw, rawlen);
}

/* Joins @n group_by labels into the engine's list ("a,b"); each must be a
 * label name (pseudo labels cannot group: every series of one type shares
 * them). *out is malloc'd (NULL when @n is 0). 0, or -EINVAL / -ENOMEM
 * with the Connect error in c->r. */
static int group_by_join(struct call *c, char *const *names, size_t n, char **out, uint32_t *count)
{
    struct wbuf b = {0};

    *out = NULL;
    *count = 0;
    if (n > QUERY_MAX_GROUP_BY) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "group_by: more than %d labels",
                      QUERY_MAX_GROUP_BY);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!query_label_name_valid(names[i])) {
            connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT,
                          "group_by: '%.64s' is not a label name", names[i]);
            free(b.p);
            return -EINVAL;
        }
        wb_printf(&b, "%s%s", i ? "," : "", names[i]);
    }
    if (b.err) {
        oom(c);
        return -ENOMEM;
    }
    *out = b.s;
    *count = (uint32_t)n;
    return 0;
}

/* The parameters SelectSeries and SelectHeatmap share: @step_s (seconds;
 * 0 = the default), the limit, group_by and the selection. 0 with *@gb,
 * *@ngb, *@s and *@step (ms) set, or -EINVAL with the error answered. */
static int grid_params(struct call *c, double step_s, bool has_limit, int64_t limit,
                       char **group_by, size_t ngroup_by, const char *selector, int64_t start,
                       int64_t end, char **gb, uint32_t *ngb, struct selection *s, int64_t *step)
{
    if (!isfinite(step_s) || step_s < 0 || step_s > (double)QUERY_MAX_RANGE_MS / 1000) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "step: %g is not a step in seconds",
                      step_s);
        return -EINVAL;
    }
    if (has_limit && limit < 0) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "limit: negative");
        return -EINVAL;
    }
    if (group_by_join(c, group_by, ngroup_by, gb, ngb))
        return -EINVAL;
    if (selection_parse(c, "", selector, start, end, s)) {
        free(*gb);
        *gb = NULL;
        return -EINVAL;
    }
    *step = (int64_t)llround(step_s * 1000);
    if (step_s > 0 && *step < 1)
        *step = 1;
    return 0;
}

/* Runs the grid query @q of SelectSeries or SelectHeatmap over @s (freed
 * here): 400 when @step_s makes more than SERIES_MAX_POINTS @unit, the
 * empty answer @empty when @profile_type is not the selection's. 0 with
 * *@mp, else nonzero with the call answered. */
static int grid_run(struct call *c, struct query *q, struct selection *s, double step_s,
                    const char *unit, const char *profile_type, const ProtobufCMessage *empty,
                    struct mprof **mp)
{
    int64_t st;
    uint32_t nb;
    int rc = 1;

    if (query_series_grid(q, &st, &nb))
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT,
                      "step: %g s gives more than %d %s over the range", step_s, SERIES_MAX_POINTS,
                      unit);
    else if (!name_matches(s, profile_type))
        connect_respond(c->r, c->codec, empty);
    else
        rc = run(c, q, mp);
    selection_free(s);
    return rc;
}

static void m_select_series(struct call *c, const ProtobufCMessage *req)
{
    const Querier__V1__SelectSeriesRequest *m = (const void *)req;
    Querier__V1__SelectSeriesResponse resp = QUERIER__V1__SELECT_SERIES_RESPONSE__INIT;
    struct selection s;
    struct mprof *mp = NULL;
    char *gb = NULL, ***vals = NULL;
    uint32_t ngb = 0;

    if (profile_type_check(c, "", m->profile_typeid))
        return;
    if (m->_aggregation_case == QUERIER__V1__SELECT_SERIES_REQUEST___AGGREGATION_AGGREGATION &&
        m->aggregation !=
            TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_SUM) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "aggregation: only TIME_SERIES_AGGREGATION_TYPE_SUM is implemented");
        return;
    }
    if (stack_selector_set(m->stack_trace_selector)) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED, "stack_trace_selector is not implemented");
        return;
    }
    if (m->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_SPAN) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "exemplar_type: EXEMPLAR_TYPE_SPAN is not implemented: Stoke's samples "
                      "carry no span ids");
        return;
    }
    int64_t step;
    if (grid_params(c, m->step, m->_limit_case == QUERIER__V1__SELECT_SERIES_REQUEST___LIMIT_LIMIT,
                    m->limit, m->group_by, m->n_group_by, m->label_selector, m->start, m->end, &gb,
                    &ngb, &s, &step))
        return;
    struct query q = selection_query(c, &s, m->profile_typeid, Q_SERIES);
    q.step = step;
    q.group_by = gb;
    q.exemplars = m->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_INDIVIDUAL;
    struct pool pl = {0};
    if (grid_run(c, &q, &s, m->step, "points", m->profile_typeid, &resp.base, &mp)) {
        free(gb);
        return;
    }
    bool limited = m->_limit_case == QUERIER__V1__SELECT_SERIES_REQUEST___LIMIT_LIMIT &&
                   m->limit > 0 && (uint64_t)m->limit < mp->ngroups;
    uint32_t ng = mp->ngroups, *order = NULL;
    int orc = view_series_order(mp, limited ? (uint32_t)m->limit : 0, &order, &ng);
    Types__V1__Series *ser = calloc((size_t)ng + 1, sizeof(*ser));
    Types__V1__Series **serv = calloc((size_t)ng + 1, sizeof(*serv));
    Types__V1__LabelPair *lp = calloc((size_t)ng * (ngb ? ngb : 1) + 1, sizeof(*lp));
    Types__V1__LabelPair **lpv = calloc((size_t)ng * (ngb ? ngb : 1) + 1, sizeof(*lpv));
    if (ngb > 1)
        vals = calloc((size_t)ng + 1, sizeof(*vals));
    Types__V1__Point *pts = calloc((size_t)ng * mp->nbuckets + 1, sizeof(*pts));
    Types__V1__Point **ptv = calloc((size_t)ng * mp->nbuckets + 1, sizeof(*ptv));
    if (orc || !ser || !serv || !lp || !lpv || !pts || !ptv || (ngb > 1 && !vals)) {
        oom(c);
        goto out;
    }
    size_t np = 0, nl = 0;
    for (uint32_t k = 0; k < ng; k++) {
        uint32_t g = order[k];
        const char *key = intern_str_get(&mp->str, mp->group_val[g]);
        types__v1__series__init(&ser[k]);
        ser[k].labels = &lpv[nl];
        if (ngb > 1 && query_group_key_split(key, ngb, &vals[k])) {
            connect_error(c->r, 0, CONNECT_INTERNAL, "series %u: malformed group key", k);
            goto out;
        }
        /* A label the series lacks is left out, as Pyroscope does. */
        const char *name = gb;
        for (uint32_t j = 0; j < ngb; j++, name += strcspn(name, ",") + 1) {
            const char *v = ngb > 1 ? vals[k][j] : key;
            if (!*v)
                continue;
            types__v1__label_pair__init(&lp[nl]);
            lp[nl].name = strndup(name, strcspn(name, ","));
            lp[nl].value = (char *)v;
            if (!lp[nl].name) {
                oom(c);
                goto out;
            }
            lpv[nl] = &lp[nl];
            nl++;
            ser[k].n_labels++;
        }
        ser[k].points = &ptv[np];
        for (uint32_t bk = 0; bk < mp->nbuckets; bk++) {
            size_t i = (size_t)g * mp->nbuckets + bk;
            if (!mp->present[i])
                continue;
            types__v1__point__init(&pts[np]);
            pts[np].value = (double)mp->points[i];
            pts[np].timestamp = mp->from + (int64_t)bk * mp->step;
            if (mp->ex && mp->ex[i].lset != MPROF_NONE) {
                pts[np].exemplars = pool_alloc(&pl, sizeof(*pts[np].exemplars));
                if (!pts[np].exemplars ||
                    !(pts[np].exemplars[0] = exemplar_msg(&pl, mp, &mp->ex[i], gb))) {
                    oom(c);
                    goto out;
                }
                pts[np].n_exemplars = 1;
            }
            ptv[np] = &pts[np];
            np++;
            ser[k].n_points++;
        }
        serv[k] = &ser[k];
    }
    resp.series = serv;
    resp.n_series = ng;
    connect_respond(c->r, c->codec, &resp.base);
out:
    for (size_t i = 0; lp && i < (size_t)ng * (ngb ? ngb : 1); i++)
        free(lp[i].name);
    for (uint32_t k = 0; vals && k < ng; k++)
        free(vals[k]);
    free(vals);
    free(gb);
    free(order);
    free(ser);
    free(serv);
    free(lp);
    free(lpv);
    free(pts);
    free(ptv);
    pool_free(&pl);
    mprof_free(mp);
}

/* SelectHeatmap (query_type INDIVIDUAL): heatmap.h's heatmap of the
 * selection's individual profiles, a series per group_by values (the
 * limit largest by count when limit is set), exemplars when asked. */
static void m_select_heatmap(struct call *c, const ProtobufCMessage *req)
{
    const Querier__V1__SelectHeatmapRequest *m = (const void *)req;
    Querier__V1__SelectHeatmapResponse resp = QUERIER__V1__SELECT_HEATMAP_RESPONSE__INIT;
    struct selection s;
    struct mprof *mp = NULL;
    struct heatmap h = {0};
    struct pool pl = {0};
    char *gb = NULL;
    uint32_t ngb = 0;
    uint64_t *gcount = NULL;
    uint32_t *gorder = NULL;

    if (profile_type_check(c, "", m->profile_typeid))
        return;
    if (m->query_type == QUERIER__V1__HEATMAP_QUERY_TYPE__HEATMAP_QUERY_TYPE_SPAN ||
        m->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_SPAN) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "%s: span heatmaps are not implemented: Stoke's samples carry no span ids",
                      m->query_type == QUERIER__V1__HEATMAP_QUERY_TYPE__HEATMAP_QUERY_TYPE_SPAN
                          ? "query_type"
                          : "exemplar_type");
        return;
    }
    int64_t step;
    if (grid_params(c, m->step, m->_limit_case == QUERIER__V1__SELECT_HEATMAP_REQUEST___LIMIT_LIMIT,
                    m->limit, m->group_by, m->n_group_by, m->label_selector, m->start, m->end, &gb,
                    &ngb, &s, &step))
        return;
    struct query q = selection_query(c, &s, m->profile_typeid, Q_INDIVIDUAL);
    q.step = step;
    if (grid_run(c, &q, &s, m->step, "slots", m->profile_typeid, &resp.base, &mp)) {
        free(gb);
        return;
    }
    if (mp->ind_full) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT,
                      "more than %u individual profiles in the range; narrow the selector or the "
                      "range",
                      MPROF_MAX_INDIVIDUAL);
        goto out;
    }
    if (individual_dedup(mp) || heatmap_build(mp, q.from, q.until, step, gb, &h)) {
        oom(c);
        goto out;
    }
    bool ex = m->exemplar_type == TYPES__V1__EXEMPLAR_TYPE__EXEMPLAR_TYPE_INDIVIDUAL;
    gcount = calloc((size_t)h.ngroups + 1, sizeof(*gcount));
    gorder = calloc((size_t)h.ngroups + 1, sizeof(*gorder));
    resp.series = pool_alloc(&pl, ((size_t)h.ngroups + 1) * sizeof(*resp.series));
    if (!gcount || !gorder || !resp.series) {
        oom(c);
        goto out;
    }
    for (size_t i = 0; i < h.ncells; i++)
        gcount[h.cells[i].group] += h.cells[i].count;
    /* limit: the groups with the most profiles (ties: the first). */
    if (m->_limit_case == QUERIER__V1__SELECT_HEATMAP_REQUEST___LIMIT_LIMIT && m->limit > 0 &&
        (uint64_t)m->limit < h.ngroups) {
        for (uint32_t k = 0; k < (uint32_t)m->limit; k++) {
            uint32_t best = UINT32_MAX;
            for (uint32_t g = 0; g < h.ngroups; g++)
                if (!gorder[g] && (best == UINT32_MAX || gcount[g] > gcount[best]))
                    best = g;
            gorder[best] = 1;
        }
    } else {
        for (uint32_t g = 0; g < h.ngroups; g++)
            gorder[g] = 1;
    }
    Types__V1__HeatmapSeries *ser = NULL;
    Types__V1__HeatmapSlot *slot = NULL;
    for (size_t i = 0; i < h.ncells; i++) {
        const struct heatmap_cell *e = &h.cells[i];
        if (!gorder[e->group])
            continue;
        if (!ser || i == 0 || h.cells[i - 1].group != e->group) {
            /* a new series: its labels are the group_by values */
            ser = pool_alloc(&pl, sizeof(*ser));
            if (!ser)
                break;
            types__v1__heatmap_series__init(ser);
            ser->labels = pool_alloc(&pl, ((size_t)ngb + 1) * sizeof(*ser->labels));
            ser->slots = pool_alloc(&pl, (h.ncells - i + 1) * sizeof(*ser->slots));
            if (!ser->labels || !ser->slots)
                break;
            const char *name = gb;
            for (uint32_t j = 0; j < ngb; j++, name += strcspn(name, ",") + 1) {
                char *nm = pool_alloc(&pl, strcspn(name, ",") + 1);
                Types__V1__LabelPair *lp = pool_alloc(&pl, sizeof(*lp));
                if (!nm || !lp)
                    break;
                memcpy(nm, name, strcspn(name, ","));
                const char *v = mprof_lset_value(mp, mp->ind[h.group_rep[e->group]].lset, nm);
                if (!v)
                    continue;
                types__v1__label_pair__init(lp);
                lp->name = nm;
                lp->value = (char *)v;
                ser->labels[ser->n_labels++] = lp;
            }
            resp.series[resp.n_series++] = ser;
            slot = NULL;
        }
        if (!slot || i == 0 || h.cells[i - 1].slot != e->slot || h.cells[i - 1].group != e->group) {
            slot = pool_alloc(&pl, sizeof(*slot));
            if (!slot)
                break;
            types__v1__heatmap_slot__init(slot);
            slot->timestamp = h.from + ((int64_t)e->slot + 1) * h.step;
            slot->n_y_min = slot->n_counts = HEATMAP_BUCKETS;
            slot->y_min = pool_alloc(&pl, HEATMAP_BUCKETS * sizeof(*slot->y_min));
            slot->counts = pool_alloc(&pl, HEATMAP_BUCKETS * sizeof(*slot->counts));
            slot->exemplars = pool_alloc(&pl, HEATMAP_BUCKETS * sizeof(*slot->exemplars));
            if (!slot->y_min || !slot->counts || !slot->exemplars)
                break;
            for (int k = 0; k < HEATMAP_BUCKETS; k++)
                slot->y_min[k] = (double)h.y_min[k];
            ser->slots[ser->n_slots++] = slot;
        }
        slot->counts[e->bucket] = (int32_t)e->count;
        /* Exemplars in bucket order, one per non-empty cell. */
        if (ex &&
            !(slot->exemplars[slot->n_exemplars++] = exemplar_msg(&pl, mp, &mp->ind[e->best], gb)))
            break;
    }
    if (pl.oom)
        oom(c);
    else
        connect_respond(c->r, c->codec, &resp.base);
out:
    free(gcount);
    free(gorder);
    heatmap_free(&h);
    pool_free(&pl);
    free(gb);
    mprof_free(mp);
}

/* ---- Series and GetProfileStats ------------------------------------------ */

struct label_sets {
    Types__V1__Labels **v;
    size_t n, cap;
    struct intern seen; /* each set's text form, to answer it once */
};

static void labels_msg_free(Types__V1__Labels *l)
{
    for (size_t k = 0; l && l->labels && k < l->n_labels && l->labels[k]; k++) {
        free(l->labels[k]->name);
        free(l->labels[k]->value);
        free(l->labels[k]);
    }
    if (l)
        free(l->labels);
    free(l);
}

static void label_sets_free(struct label_sets *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        labels_msg_free(ls->v[i]);
    free(ls->v);
    intern_free(&ls->seen);
}

static int cmp_pair(const void *a, const void *b)
{
    const Types__V1__LabelPair *x = *(Types__V1__LabelPair *const *)a,
                               *y = *(Types__V1__LabelPair *const *)b;
    return strcmp(x->name, y->name);
}

/* Adds the set of @n pairs (@names/@vals; empty values left out), sorted
 * by name, unless it is there already. 0 or -ENOMEM. */
static int label_sets_add(struct label_sets *ls, const char *const *names, const char *const *vals,
                          size_t n)
{
    Types__V1__Labels *l = calloc(1, sizeof(*l));
    Types__V1__LabelPair **pv = calloc(n + 1, sizeof(*pv));
    struct wbuf key = {0};
    uint32_t id;
    int rc;

    if (!l || !pv) {
        free(l);
        free(pv);
        return -ENOMEM;
    }
    types__v1__labels__init(l);
    l->labels = pv;
    for (size_t i = 0; i < n; i++) {
        if (!vals[i] || !*vals[i])
            continue;
        Types__V1__LabelPair *p = malloc(sizeof(*p));
        if (!p)
            goto fail;
        types__v1__label_pair__init(p);
        p->name = strdup(names[i]);
        p->value = strdup(vals[i]);
        l->labels[l->n_labels++] = p;
        if (!p->name || !p->value)
            goto fail;
    }
    qsort(l->labels, l->n_labels, sizeof(*l->labels), cmp_pair);
    for (size_t i = 0; i < l->n_labels; i++) {
        query_group_key_append(&key, l->labels[i]->name, i == 0);
        query_group_key_append(&key, l->labels[i]->value, false);
    }
    if (key.err)
        goto fail;
    rc = intern_add(&ls->seen, key.p ? key.p : (const uint8_t *)"", key.len, &id);
    free(key.p);
    key.p = NULL;
    if (rc < 0)
        goto fail;
    if (rc == 0) { /* listed already */
        labels_msg_free(l);
        return 0;
    }
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 64;
        Types__V1__Labels **nv = realloc(ls->v, cap * sizeof(*nv));
        if (!nv)
            goto fail;
        ls->v = nv;
        ls->cap = cap;
    }
    ls->v[ls->n++] = l;
    return 0;
fail:
    free(key.p);
    labels_msg_free(l);
    return -ENOMEM;
}

/* The five fields of a profile type id as pseudo labels, Pyroscope's names. */
static const char *const type_labels[] = {"__name__", "__type__", "__unit__", "__period_type__",
                                          "__period_unit__"};

/* Does the Series request ask for label @name (all of them when it names
 * none)? */
static bool series_wants(const Querier__V1__SeriesRequest *m, const char *name)
{
    if (m->n_label_names == 0)
        return true;
    for (size_t i = 0; i < m->n_label_names; i++)
        if (strcmp(m->label_names[i], name) == 0)
            return true;
    return false;
}

/* Appends to @ln/@lv (at @nl) the profile-type labels of @type that @m
 * asks for: the five fields (copies in @fields, freed by the caller) and
 * __profile_type__. Returns the new count (at most @nl + 6). */
static size_t type_labels_add(const Querier__V1__SeriesRequest *m, const char *type,
                              const char **ln, const char **lv, size_t nl, char *fields[5])
{
    for (int f = 0; f < 5; f++)
        if (series_wants(m, type_labels[f]) && (fields[f] = field_dup(type, f))) {
            ln[nl] = type_labels[f];
            lv[nl++] = fields[f];
        }
    if (series_wants(m, "__profile_type__")) {
        ln[nl] = "__profile_type__";
        lv[nl++] = type;
    }
    return nl;
}

/* Can Series be answered from the footers for @s? When every label name
 * asked for is service_name or a profile-type label, and the selector
 * names no label but service_name: a section is one service, and its
 * footer record lists its profile types, so no section is read. This is
 * what Grafana's Profiles Drilldown asks on load (service_name and
 * __profile_type__ over every series). */
static bool series_from_footers(const Querier__V1__SeriesRequest *m, const struct selection *s)
{
    if (m->n_label_names == 0)
        return false;
    for (size_t i = 0; i < m->n_label_names; i++) {
        bool ok = strcmp(m->label_names[i], "service_name") == 0 ||
                  strcmp(m->label_names[i], "__profile_type__") == 0;
        for (int f = 0; f < 5 && !ok; f++)
            ok = strcmp(m->label_names[i], type_labels[f]) == 0;
        if (!ok)
            return false;
    }
    for (size_t i = 0; i < s->rest.n; i++)
        if (strcmp(s->rest.m[i].name, "service_name") != 0)
            return false;
    return true;
}

/* Series from the footers (series_from_footers): one label set per
 * (service, profile type) of the sections overlapping the range. */
static int series_footers(struct call *c, const Querier__V1__SeriesRequest *m,
                          const struct selection *s, struct label_sets *ls)
{
    struct plan_req pr = {.tenant = c->tenant,
                          .sel = &s->rest,
                          .from = s->from,
                          .until = s->until,
                          .cancel = c->a->cancel};
    struct plan *plan = NULL;
    char err[256] = "";
    int rc = engine_plan(c->a->engine, &pr, &plan, err, sizeof(err));

    if (rc) {
        query_error(c, rc, "Series", err);
        return rc;
    }
    c->r->queried = true;
    c->r->skipped += plan->skipped;
    for (size_t i = 0; !rc && i < plan->n; i++) {
        const struct seg_section_info *si = plan->items[i].info;
        const char *sn[1] = {"service_name"}, *sv[1] = {si->service};
        if (si->nsamples == 0 || !selector_match_labels(&s->rest, sn, sv, 1))
            continue;
        for (size_t t = 0; !rc && t < si->nprofile_types; t++) {
            const char *type = si->profile_types[t];
            const char *ln[7], *lv[7];
            char *fields[5] = {0};
            size_t nl = 0;
            if (!name_matches(s, type))
                continue;
            if (series_wants(m, "service_name")) {
                ln[nl] = "service_name";
                lv[nl++] = si->service;
            }
            nl = type_labels_add(m, type, ln, lv, nl, fields);
            rc = label_sets_add(ls, ln, lv, nl);
            for (int f = 0; f < 5; f++)
                free(fields[f]);
        }
    }
    plan_free(plan);
    if (rc == -ENOMEM)
        oom(c);
    return rc;
}

/* Series: the label sets of the series matching any of @matchers that
 * have samples in the range, restricted to label_names when given. Each
 * selection is one engine label-set query (Q_SERIES with all_types: one
 * bucket, grouped by the names and the profile type, no values read), so
 * a set is listed once whatever its sample count. */
static void m_series(struct call *c, const ProtobufCMessage *req)
{
    const Querier__V1__SeriesRequest *m = (const void *)req;
    Querier__V1__SeriesResponse resp = QUERIER__V1__SERIES_RESPONSE__INIT;
    struct label_sets ls = {0};
    bool all = m->n_label_names == 0;

    for (size_t i = 0; i < m->n_label_names; i++)
        if (!pseudo_label(m->label_names[i]) && !query_label_name_valid(m->label_names[i])) {
            connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT,
                          "label_names: '%.64s' is not a label name", m->label_names[i]);
            return;
        }
    for (size_t k = 0; k < (m->n_matchers ? m->n_matchers : 1); k++) {
        struct selection s;
        char **types = NULL, *gb = NULL;
        size_t n = 0;
        struct intern names = {0};
        const char **sorted = NULL;
        int rc = 0;
        if (selection_parse(c, "", m->n_matchers ? m->matchers[k] : "{}", m->start, m->end, &s))
            goto fail;
        if (series_from_footers(m, &s)) {
            int frc = series_footers(c, m, &s, &ls);
            selection_free(&s);
            if (frc)
                goto fail;
            continue;
        }
        if (types_of(c, &s, &types, &n)) {
            selection_free(&s);
            goto fail;
        }
        /* The names to group by: those asked for, or every label name. */
        if (all && n) {
            struct mprof *mp = NULL;
            if (!(rc = label_pairs(c, &s, types, n, "", &mp)))
                rc = view_label_strings(mp, NULL, &names);
            mprof_free(mp);
        }
        for (size_t i = 0; !rc && i < m->n_label_names; i++)
            if (!pseudo_label(m->label_names[i]) &&
                intern_str(&names, m->label_names[i]) == INTERN_NONE)
                rc = -ENOMEM;
        if (!rc && (rc = view_sorted_strings(&names, &sorted)) == 0 && names.n) {
            if (names.n > QUERY_MAX_GROUP_BY) {
                connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                              "Series: the series have %u label names, more than the %d Stoke "
                              "lists at once; pass label_names",
                              names.n, QUERY_MAX_GROUP_BY);
                rc = -E2BIG;
            } else {
                char *const *nv = (char *const *)sorted;
                uint32_t ngb;
                rc = group_by_join(c, nv, names.n, &gb, &ngb);
            }
        }
        /* One pass over every type: groups of (names' values, type id). */
        struct mprof *mp = NULL;
        struct query q = selection_query(c, &s, NULL, Q_SERIES);
        q.step = s.until - s.from;
        q.group_by = gb;
        q.all_types = true;
        if (!rc && n)
            rc = run(c, &q, &mp);
        for (uint32_t g = 0; !rc && mp && g < mp->ngroups; g++) {
            const char *key = intern_str_get(&mp->str, mp->group_val[g]);
            const char *ln[QUERY_MAX_GROUP_BY + 6], *lv[QUERY_MAX_GROUP_BY + 6];
            char **vals = NULL, *fields[5] = {0};
            size_t nl = 0;
            if ((rc = query_group_key_split(key, names.n + 1, &vals)))
                break;
            const char *type = vals[names.n];
            if (!name_matches(&s, type)) { /* the pseudo label matchers */
                free(vals);
                continue;
            }
            for (uint32_t j = 0; j < names.n; j++) {
                ln[nl] = sorted[j];
                lv[nl++] = vals[j];
            }
            nl = type_labels_add(m, type, ln, lv, nl, fields);
            rc = label_sets_add(&ls, ln, lv, nl);
            for (int f = 0; f < 5; f++)
                free(fields[f]);
            free(vals);
        }
        mprof_free(mp);
        if (rc == -ENOMEM)
            oom(c);
        else if (rc && !c->r->body) /* every failure answers */
            connect_error(c->r, 0, CONNECT_INTERNAL, "Series: %s", strerror(-rc));
        free(gb);
        free(sorted);
        intern_free(&names);
        free_strv(types, n);
        selection_free(&s);
        if (rc)
            goto fail;
    }
    resp.labels_set = ls.v;
    resp.n_labels_set = ls.n;
    connect_respond(c->r, c->codec, &resp.base);
fail:
    label_sets_free(&ls);
}

static void m_get_profile_stats(struct call *c, const ProtobufCMessage *req)
{
    Types__V1__GetProfileStatsResponse resp = TYPES__V1__GET_PROFILE_STATS_RESPONSE__INIT;
    struct profile_stats st;
    char err[256] = "";
    int rc = engine_profile_stats(c->a->engine, c->tenant, c->a->cancel, &st, err, sizeof(err));

    if (rc) {
        query_error(c, rc, "profile stats", err);
        return;
    }
    c->r->queried = true;
    c->r->skipped += st.skipped;
    resp.data_ingested = st.ingested;
    resp.oldest_profile_time = st.oldest_ms;
    resp.newest_profile_time = st.newest_ms;
    connect_respond(c->r, c->codec, &resp.base);
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct method {
    const char *name;
    const ProtobufCMessageDescriptor *req;
    void (*fn)(struct call *c, const ProtobufCMessage *req);
    const char *why_not; /* not implemented: the reason */
} methods[] = {
    {"ProfileTypes", &querier__v1__profile_types_request__descriptor, m_profile_types, NULL},
    {"LabelNames", &types__v1__label_names_request__descriptor, m_label_names, NULL},
    {"LabelValues", &types__v1__label_values_request__descriptor, m_label_values, NULL},
    {"SelectMergeStacktraces", &querier__v1__select_merge_stacktraces_request__descriptor,
     m_select_merge_stacktraces, NULL},
    {"SelectMergeProfile", &querier__v1__select_merge_profile_request__descriptor,
     m_select_merge_profile, NULL},
    {"SelectSeries", &querier__v1__select_series_request__descriptor, m_select_series, NULL},
    {"Diff", &querier__v1__diff_request__descriptor, m_diff, NULL},
    {"Series", &querier__v1__series_request__descriptor, m_series, NULL},
    {"SelectMergeSpanProfile", NULL, NULL,
     "SelectMergeSpanProfile is not implemented: Stoke's samples carry no span ids"},
    {"SelectHeatmap", &querier__v1__select_heatmap_request__descriptor, m_select_heatmap, NULL},
    {"GetProfileStats", &types__v1__get_profile_stats_request__descriptor, m_get_profile_stats,
     NULL},
    {"AnalyzeQuery", NULL, NULL, "AnalyzeQuery is not implemented (internal scope)"},
};

bool pyroscope_path(const char *path)
{
    return strncmp(path, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) == 0 ||
           strcmp(path, PYROSCOPE_RENDER_PATH) == 0 ||
           strcmp(path, PYROSCOPE_RENDER_DIFF_PATH) == 0 ||
           strcmp(path, PYROSCOPE_LABEL_VALUES_PATH) == 0;
}

static void render(const struct pyroscope_api *a, const char *tenant, http_param_fn param,
                   void *ctx, struct http_response *out);
static void render_diff(const struct pyroscope_api *a, const char *tenant, http_param_fn param,
                        void *ctx, struct http_response *out);
static void label_values_get(const struct pyroscope_api *a, const char *tenant, http_param_fn param,
                             void *ctx, struct http_response *out);

void pyroscope_route(const struct pyroscope_api *a, const char *method, const char *path,
                     http_param_fn param, http_param_fn header, void *ctx, const uint8_t *body,
                     size_t len, struct http_response *out)
{
    struct call c = {.a = a, .tenant = a->tenant, .r = out};
    const struct method *m = NULL;
    char err[512];

    memset(out, 0, sizeof(*out));
    if (connect_tenant(header, ctx, &c.tenant, out))
        return;
    if (strncmp(path, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) != 0) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            connect_error(out, 405, CONNECT_INVALID_ARGUMENT, "%s: method %s not allowed (use GET)",
                          path, method);
            return;
        }
        if (strcmp(path, PYROSCOPE_RENDER_PATH) == 0)
            render(a, c.tenant, param, ctx, out);
        else if (strcmp(path, PYROSCOPE_RENDER_DIFF_PATH) == 0)
            render_diff(a, c.tenant, param, ctx, out);
        else
            label_values_get(a, c.tenant, param, ctx, out);
        return;
    }
    const char *name = path + strlen(PYROSCOPE_SERVICE_PREFIX);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(name, methods[i].name) == 0)
            m = &methods[i];
    if (!m) {
        /* What a Connect client reads from an unknown procedure's 404. */
        connect_error(out, 404, CONNECT_UNIMPLEMENTED, "%.200s: no such procedure", path);
        return;
    }
    if (strcmp(method, "POST") != 0) {
        connect_error(out, 405, CONNECT_UNIMPLEMENTED,
                      "%s: method %s not allowed (Connect unary calls are POST)", path, method);
        return;
    }
    if (connect_codec_of(header(ctx, "Content-Type"), &c.codec)) {
        const char *ct = header(ctx, "Content-Type");
        connect_error(out, 415, CONNECT_UNIMPLEMENTED,
                      "Content-Type '%.64s' is not supported (use application/json or "
                      "application/proto)",
                      ct ? ct : "");
        return;
    }
    const char *ce = header(ctx, "Content-Encoding");
    if (ce && *ce && strcmp(ce, "identity") != 0) {
        connect_error(out, 0, CONNECT_UNIMPLEMENTED,
                      "Content-Encoding '%.32s' is not supported (send identity)", ce);
        return;
    }
    if (!m->fn) {
        connect_error(out, 0, CONNECT_UNIMPLEMENTED, "%s", m->why_not);
        return;
    }
    ProtobufCMessage *req = NULL;
    int rc = connect_decode(c.codec, m->req, body, len, &req, err, sizeof(err));
    if (rc) {
        connect_error(out, 0, rc == -ENOMEM ? CONNECT_RESOURCE_EXHAUSTED : CONNECT_INVALID_ARGUMENT,
                      "%s", rc == -ENOMEM ? "out of memory" : err);
        return;
    }
    m->fn(&c, req);
    protobuf_c_message_free_unpacked(req, NULL);
}

/* ---- render (flamebearer JSON) ------------------------------------------- */

/* Pyroscope's render times: now, now-1h, or a Unix time in seconds (10
 * digits), milliseconds (13) or nanoseconds (19). */
static const char *render_time(const char *s, int64_t now, int64_t *out)
{
    size_t n = strspn(s, "0123456789");

    if (n && !s[n]) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || v > (unsigned long long)INT64_MAX)
            return "not a time";
        *out = v < 100000000000ULL      ? (int64_t)v * 1000
               : v < 100000000000000ULL ? (int64_t)v
                                        : (int64_t)(v / 1000000);
        return NULL;
    }
    return http_parse_time(s, now, out);
}

/* One render selection from the query parameters @qn (type{selector}),
 * @fn and @un (times), maxNodes / max-nodes. 0, or -EINVAL with the 400
 * already in @out. */
struct render_sel {
    const char *query;
    char type[512];
    size_t tl; /* where the selector starts in query */
    int64_t from, until;
    long long max_nodes;
};

static int render_parse(http_param_fn param, void *ctx, const char *qn, const char *fn,
                        const char *un, struct render_sel *r, struct http_response *out)
{
    const char *query = param(ctx, qn), *fs = param(ctx, fn), *us = param(ctx, un);
    const char *mn = param(ctx, "maxNodes"), *why;
    int64_t now = http_now_ms();

    r->max_nodes = PYROSCOPE_DEFAULT_NODES;
    if (!mn)
        mn = param(ctx, "max-nodes");
    if (!query || !*query) {
        http_error_json(out, 400, "%s: missing (e.g. %s{service_name=\"api\"})", qn,
                        DEFAULT_PROFILE_TYPE);
        return -EINVAL;
    }
    r->query = query;
    r->tl = strcspn(query, "{");
    if (r->tl >= sizeof(r->type)) {
        http_error_json(out, 400, "%s: profile type too long", qn);
        return -EINVAL;
    }
    memcpy(r->type, query, r->tl);
    r->type[r->tl] = '\0';
    if (!query_profile_type_valid(r->type)) {
        http_error_json(out, 400,
                        "%s: '%.128s' is not a profile type id "
                        "(name:sample_type:sample_unit:period_type:period_unit)",
                        qn, r->type);
        return -EINVAL;
    }
    if ((why = render_time(fs ? fs : "now-1h", now, &r->from))) {
        http_error_json(out, 400, "%s: %s", fn, why);
        return -EINVAL;
    }
    if ((why = render_time(us ? us : "now", now, &r->until))) {
        http_error_json(out, 400, "%s: %s", un, why);
        return -EINVAL;
    }
    if (mn) {
        char *end;
        errno = 0;
        r->max_nodes = strtoll(mn, &end, 10);
        if (!*mn || *end || errno || r->max_nodes < 1) {
            http_error_json(out, 400, "maxNodes: '%.32s' is not a positive integer", mn);
            return -EINVAL;
        }
        if (r->max_nodes > (long long)PYROSCOPE_MAX_NODES)
            r->max_nodes = PYROSCOPE_MAX_NODES;
    }
    char err[256];
    if (plan_range_check(r->from, r->until, fn, un, err, sizeof(err))) {
        http_error_json(out, 400, "%s", err);
        return -EINVAL;
    }
    return 0;
}

/* Re-words the Connect error in @out for the plain JSON endpoints. */
static void render_reword(struct http_response *out)
{
    char msg[512] = "bad query";
    cJSON *j = cJSON_ParseWithLength((const char *)out->body, out->len);
    if (j && cJSON_IsString(cJSON_GetObjectItem(j, "message")))
        snprintf(msg, sizeof(msg), "%s", cJSON_GetObjectItem(j, "message")->valuestring);
    cJSON_Delete(j);
    free(out->body);
    memset(out, 0, sizeof(*out));
    http_error_json(out, 400, "%s", msg);
}

/* The merged profile of one render selection (an empty one when the
 * selector's pseudo labels exclude the type). 0, or an error in c->r. */
static int render_select(struct call *c, const struct render_sel *r, struct mprof **mp)
{
    struct selection s;

    if (selection_parse(c, "", r->query[r->tl] ? r->query + r->tl : "{}", r->from, r->until, &s)) {
        render_reword(c->r);
        return -EINVAL;
    }
    struct query q = selection_query(c, &s, r->type, Q_PROFILE);
    int rc = name_matches(&s, r->type) ? run(c, &q, mp) : ((*mp = mprof_new(1)) ? 0 : -ENOMEM);
    selection_free(&s);
    if (rc == -ENOMEM && !c->r->body)
        http_error_json(c->r, 500, "out of memory");
    return rc;
}

/* The flamebearer fields Pyroscope's ExportToFlamebearer writes: names,
 * levels, numTicks, maxSelf (no closing brace of "flamebearer"). */
static void flamebearer_levels(struct wbuf *b, char **names, size_t nn, Querier__V1__Level **lv,
                               size_t nl, int64_t total, int64_t max_self)
{
    wb_bytes(b, "\"flamebearer\":{\"names\":[", 24);
    for (size_t i = 0; i < nn; i++) {
        if (i)
            wb_bytes(b, ",", 1);
        wb_json_str(b, names[i]);
    }
    wb_bytes(b, "],\"levels\":[", 12);
    for (size_t i = 0; i < nl; i++) {
        wb_bytes(b, i ? ",[" : "[", i ? 2 : 1);
        for (size_t k = 0; k < lv[i]->n_values; k++)
            wb_printf(b, "%s%" PRId64, k ? "," : "", lv[i]->values[k]);
        wb_bytes(b, "]", 1);
    }
    wb_printf(b, "],\"numTicks\":%" PRId64 ",\"maxSelf\":%" PRId64 "}", total, max_self);
}

/* GET /pyroscope/render-diff: the Diff of leftQuery/leftFrom/leftUntil and
 * rightQuery/rightFrom/rightUntil as flamebearer JSON of format "double"
 * with leftTicks and rightTicks (Pyroscope's ExportDiffToFlamebearer). */
static void render_diff(const struct pyroscope_api *a, const char *tenant, http_param_fn param,
                        void *ctx, struct http_response *out)
{
    struct call c = {.a = a, .tenant = tenant, .r = out};
    struct render_sel l, r;
    struct mprof *lm = NULL, *rm = NULL;
    Querier__V1__FlameGraphDiff *fd = NULL;
    struct wbuf b = {0};

    if (render_parse(param, ctx, "leftQuery", "leftFrom", "leftUntil", &l, out) ||
        render_parse(param, ctx, "rightQuery", "rightFrom", "rightUntil", &r, out))
        return;
    if (strcmp(l.type, r.type) != 0) {
        http_error_json(out, 400, "profile types must match ('%.128s' and '%.128s')", l.type,
                        r.type);
        return;
    }
    if (render_select(&c, &l, &lm) || render_select(&c, &r, &rm))
        goto out;
    if (pyroscope_flamegraph_diff(lm, rm, (uint32_t)l.max_nodes, &fd)) {
        http_error_json(out, 500, "out of memory");
        goto out;
    }
    char *unit = field_dup(l.type, 2), *stype = field_dup(l.type, 1);
    bool cpu = stype && strcmp(stype, "cpu") == 0;
    wb_printf(&b, "{\"version\":1,");
    flamebearer_levels(&b, fd->names, fd->n_names, fd->levels, fd->n_levels, fd->total,
                       fd->max_self);
    wb_printf(&b,
              ",\"metadata\":{\"format\":\"double\",\"spyName\":\"\",\"sampleRate\":%s,"
              "\"units\":\"%s\",\"name\":",
              cpu ? "1000000000" : "100",
              cpu                                  ? "samples"
              : unit && strcmp(unit, "bytes") == 0 ? "bytes"
                                                   : "objects");
    wb_json_str(&b, stype ? stype : "");
    wb_printf(&b,
              "},\"timeline\":null,\"groups\":null,\"heatmap\":null,\"leftTicks\":%" PRId64
              ",\"rightTicks\":%" PRId64 "}",
              fd->leftticks, fd->rightticks);
    free(unit);
    free(stype);
    if (b.err) {
        free(b.p);
        http_error_json(out, 500, "out of memory");
        goto out;
    }
    out->skipped = lm->stats.skipped + rm->stats.skipped;
    out->status = 200;
    out->content_type = "application/json";
    out->body = b.p;
    out->len = b.len;
out:
    if (fd)
        querier__v1__flame_graph_diff__free_unpacked(fd, NULL);
    mprof_free(lm);
    mprof_free(rm);
}

/* GET /pyroscope/label-values?label=NAME: a JSON array; for __name__ the
 * profile type ids (as Pyroscope answers it), else the label's values,
 * over from/until (default the last hour). */
static void label_values_get(const struct pyroscope_api *a, const char *tenant, http_param_fn param,
                             void *ctx, struct http_response *out)
{
    struct call c = {.a = a, .tenant = tenant, .codec = CONNECT_JSON, .r = out};
    const char *label = param(ctx, "label"), *fs = param(ctx, "from"), *us = param(ctx, "until");
    const char *why;
    int64_t now = http_now_ms(), from, until;

    if (!label || !*label) {
        connect_error(out, 0, CONNECT_INVALID_ARGUMENT, "label parameter is required");
        return;
    }
    if ((why = render_time(fs ? fs : "now-1h", now, &from)) ||
        (why = render_time(us ? us : "now", now, &until))) {
        connect_error(out, 0, CONNECT_INVALID_ARGUMENT, "%s: %s", fs && why ? "from" : "until",
                      why);
        return;
    }
    labels(&c, strcmp(label, "__name__") == 0 ? "__profile_type__" : label, NULL, 0, from, until);
    if (out->status != 200)
        return;
    /* The LabelValuesResponse's JSON {"names":[...]} becomes the bare array. */
    cJSON *j = cJSON_ParseWithLength((const char *)out->body, out->len);
    cJSON *names = j ? cJSON_DetachItemFromObject(j, "names") : NULL;
    char *txt = cJSON_PrintUnformatted(names ? names : cJSON_CreateArray());
    cJSON_Delete(j);
    cJSON_Delete(names);
    free(out->body);
    if (!txt) {
        memset(out, 0, sizeof(*out));
        http_error_json(out, 500, "out of memory");
        return;
    }
    out->body = (uint8_t *)txt;
    out->len = strlen(txt);
    out->content_type = "application/json";
}

static void render(const struct pyroscope_api *a, const char *tenant, http_param_fn param,
                   void *ctx, struct http_response *out)
{
    struct call c = {.a = a, .tenant = tenant, .r = out};
    const char *format = param(ctx, "format");
    struct render_sel rs;

    if (format && strcmp(format, "json") != 0 && strcmp(format, "dot") != 0) {
        http_error_json(out, 400, "format: only json and dot are supported");
        return;
    }
    if (render_parse(param, ctx, "query", "from", "until", &rs, out))
        return;
    const char *query = rs.query, *type = rs.type;
    size_t tl = rs.tl;
    int64_t from = rs.from, until = rs.until;
    long long max_nodes = rs.max_nodes;
    if (format && strcmp(format, "dot") == 0) {
        /* As Pyroscope: 100 nodes unless maxNodes says; text/plain, empty
         * when nothing matched. */
        struct mprof *mp = NULL;
        struct wbuf b = {0};
        bool given = param(ctx, "maxNodes") || param(ctx, "max-nodes");
        if (render_select(&c, &rs, &mp))
            return;
        int64_t any = 0;
        for (uint32_t i = 0; i < mp->nstacks && !any; i++)
            any = mp->vals[(size_t)i * mp->ntypes];
        int rc = any ? view_dot(mp, 0, given ? (uint32_t)max_nodes : 100, &b) : 0;
        out->skipped = mp->stats.skipped;
        mprof_free(mp);
        if (rc) {
            free(b.p);
            http_error_json(out, 500, "out of memory");
            return;
        }
        out->status = 200;
        out->content_type = "text/plain";
        out->body = b.p ? b.p : (uint8_t *)strdup("");
        out->len = b.len;
        return;
    }
    struct selection s;
    if (selection_parse(&c, "", query[tl] ? query + tl : "{}", from, until, &s)) {
        render_reword(out);
        return;
    }
    struct query q = selection_query(&c, &s, type, Q_PROFILE);
    struct query qs = q;
    struct mprof *mp = NULL, *ts = NULL;
    Querier__V1__FlameGraph *fg = NULL;
    int64_t st;
    uint32_t nb;
    bool match = name_matches(&s, type);
    qs.mode = Q_SERIES;
    query_series_grid(&qs, &st, &nb);
    if (!match) {
        mp = mprof_new(1);
        ts = NULL;
    } else if (run_flame(&c, &q, (uint32_t)max_nodes, &mp) || run(&c, &qs, &ts)) {
        selection_free(&s);
        mprof_free(mp);
        return; /* run left a Connect error (same JSON shape plus a code) */
    }
    selection_free(&s);
    /* The timeline read the flame graph's sections again: count them once. */
    if (mp)
        out->skipped = mp->stats.skipped;
    struct wbuf b = {0};
    if (!mp || pyroscope_flamegraph(mp, 0, (uint32_t)max_nodes, &fg)) {
        mprof_free(mp);
        mprof_free(ts);
        http_error_json(out, 500, "out of memory");
        return;
    }
    char *unit = field_dup(type, 2), *name = field_dup(type, 0);
    bool ns = unit && strcmp(unit, "nanoseconds") == 0;
    const char *units = unit && strcmp(unit, "bytes") == 0 ? "bytes" : "samples";
    wb_bytes(&b, "{\"version\":1,\"flamebearer\":{\"names\":[", 37);
    for (size_t i = 0; i < fg->n_names; i++) {
        if (i)
            wb_bytes(&b, ",", 1);
        wb_json_str(&b, fg->names[i]);
    }
    wb_bytes(&b, "],\"levels\":[", 12);
    for (size_t i = 0; i < fg->n_levels; i++) {
        wb_bytes(&b, i ? ",[" : "[", i ? 2 : 1);
        for (size_t k = 0; k < fg->levels[i]->n_values; k++)
            wb_printf(&b, "%s%" PRId64, k ? "," : "", fg->levels[i]->values[k]);
        wb_bytes(&b, "]", 1);
    }
    wb_printf(&b, "],\"numTicks\":%" PRId64 ",\"maxSelf\":%" PRId64 "}", fg->total, fg->max_self);
    /* Nanosecond values are shown as time by a sample rate of 1e9 per second. */
    wb_printf(&b,
              ",\"metadata\":{\"format\":\"single\",\"spyName\":\"\",\"sampleRate\":%s,"
              "\"units\":\"%s\",\"name\":",
              ns ? "1000000000" : "100", units);
    wb_json_str(&b, query);
    wb_bytes(&b, ",\"appName\":", 11);
    wb_json_str(&b, name ? name : "");
    wb_printf(&b, ",\"startTime\":%" PRId64 ",\"endTime\":%" PRId64 ",\"maxNodes\":%lld}",
              from / 1000, until / 1000, max_nodes);
    int64_t step = ts ? ts->step : st;
    wb_printf(&b, ",\"timeline\":{\"startTime\":%" PRId64 ",\"samples\":[",
              (ts ? ts->from : from) / 1000);
    uint32_t nbk = ts ? ts->nbuckets : nb;
    for (uint32_t bk = 0; bk < nbk; bk++) {
        int64_t v = 0;
        for (uint32_t g = 0; ts && g < ts->ngroups; g++)
            MPROF_ADD(v, ts->points[(size_t)g * ts->nbuckets + bk]);
        wb_printf(&b, "%s%" PRId64, bk ? "," : "", v);
    }
    wb_printf(&b, "],\"durationDelta\":%" PRId64 "}", step / 1000 > 0 ? step / 1000 : 1);
    /* What the flame graph read and skipped, as the native API says it. */
    http_finish_json(&b, mp);
    free(unit);
    free(name);
    querier__v1__flame_graph__free_unpacked(fg, NULL);
    mprof_free(mp);
    mprof_free(ts);
    if (b.err) {
        free(b.p);
        http_error_json(out, 500, "out of memory");
        return;
    }
    out->status = 200;
    out->content_type = "application/json";
    out->body = b.p;
    out->len = b.len;
}
