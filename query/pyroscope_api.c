/* SPDX-License-Identifier: Apache-2.0 */
#include "query/pyroscope_api.h"

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
#include "query/connect.h"
#include "query/import.h"
#include "query/plan.h"
#include "query/views.h"

#define HOUR_MS 3600000LL

/* ---- names and levels ---------------------------------------------------- */

static void mstr_release(struct mstr *t)
{
    free(t->arena);
    free(t->off);
    free(t->len);
    free(t->slots);
}

/* Copies the string table into a malloc'd char *[] (each strdup'd). */
static int names_out(const struct mstr *t, char ***names, size_t *n)
{
    *n = 0;
    *names = calloc(t->n + 1, sizeof(**names));
    if (!*names)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->n; i++) {
        if (!((*names)[i] = strdup(mstr_get(t, i))))
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
    struct mstr names;
    int64_t max_self;
};

static void fg_enter(void *ctx, uint32_t depth, const char *name, int64_t self, int64_t total)
{
    struct fg_build *b = ctx;
    /* depth + 1 first: growing the array moves it, and would leave a
     * pointer to level depth taken before dangling. */
    struct level *next = level_at(&b->ls, depth + 1), *l = level_at(&b->ls, depth);
    uint32_t id = mstr_intern(&b->names, name, strlen(name));

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
    mstr_release(&b.names);
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
    struct mstr names;
};

static uint64_t dhash(uint32_t a, uint32_t b)
{
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 31);
}

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
            for (j = (uint32_t)dhash(t->n[i].parent, t->n[i].name) & (ns - 1); sl[j] != UINT32_MAX;
                 j = (j + 1) & (ns - 1))
                ;
            sl[j] = i;
        }
        free(t->slots);
        t->slots = sl;
        t->nslots = ns;
    }
    for (j = (uint32_t)dhash(parent, name) & (t->nslots - 1); t->slots[j] != UINT32_MAX;
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

static int dtree_add(struct dtree *t, const struct mprof *p, int side)
{
    for (uint32_t s = 0; s < p->nstacks; s++) {
        int64_t v = p->vals[(size_t)s * p->ntypes];
        const uint32_t *f = mprof_stack_frames(p, s);
        uint32_t node = 0;
        if (v == 0)
            continue;
        MPROF_ADD(t->n[0].total[side], v);
        for (uint32_t k = mprof_stack_len(p, s); k-- > 0;) {
            const char *nm = mstr_get(&p->str, f[k]);
            uint32_t id = mstr_intern(&t->names, nm, strlen(nm));
            if (id == MPROF_NONE || (node = dtree_child(t, node, id)) == UINT32_MAX)
                return -ENOMEM;
            MPROF_ADD(t->n[node].total[side], v);
        }
        MPROF_ADD(t->n[node].self[side], v);
    }
    return 0;
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
    return strcmp(mstr_get(&t->names, x->name), mstr_get(&t->names, y->name));
}

int pyroscope_flamegraph_diff(const struct mprof *left, const struct mprof *right,
                              uint32_t max_nodes, Querier__V1__FlameGraphDiff **out)
{
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
    if (!t.n || mstr_intern(&t.names, "total", 5) != 0)
        goto out;
    t.count = 1;
    t.n[0] =
        (struct dnode){.parent = UINT32_MAX, .first_child = UINT32_MAX, .next_sibling = UINT32_MAX};
    if (dtree_add(&t, left, 0) || dtree_add(&t, right, 1))
        goto out;
    /* Keep the max_nodes largest nodes (left + right); a cut node's values
     * stay in its parent's self, so totals still add up. */
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
    mstr_release(&t.names);
    free(kids);
    free(stk);
    free(sums);
    if (rc) {
        querier__v1__flame_graph_diff__free_unpacked(fg, NULL);
        return rc;
    }
    *out = fg;
    return 0;
}

/* ---- selections ---------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One request's context. */
struct call {
    const struct pyroscope_api *a;
    const char *tenant;
    enum connect_codec codec;
    struct http_response *r;
};

/* A parsed label selector split in two: the __name__ matcher (the profile
 * type's first field, matched here) and the rest (the engine's), with the
 * rest written back as text for peers. */
struct selection {
    struct selector *parsed;
    struct selector rest; /* shallow: matchers borrowed from parsed */
    const struct sel_matcher *name_m;
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
    struct sbuf b = {0};
    int rc;

    memset(s, 0, sizeof(*s));
    s->until = end ? end : now_ms();
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
    sbuf_put(&b, "{", 1);
    for (size_t i = 0; i < s->parsed->n; i++) {
        const struct sel_matcher *m = &s->parsed->m[i];
        if (strcmp(m->name, "__name__") == 0) {
            s->name_m = m;
            continue;
        }
        if (s->rest.n)
            sbuf_put(&b, ",", 1);
        sbuf_printf(&b, "%s%s", m->name, op_text(m->op));
        sbuf_json_str(&b, m->value); /* JSON escapes are a superset of the selector's */
        s->rest.m[s->rest.n++] = *m;
    }
    sbuf_put(&b, "}", 1);
    if (b.oom)
        goto oom;
    s->rest_text = b.p;
    return 0;
oom:
    free(b.p);
    selection_free(s);
    connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
    return -ENOMEM;
}

/* Does the profile type @id pass the selection's __name__ matcher? */
static bool name_matches(const struct selection *s, const char *id)
{
    char name[128];
    size_t n = strcspn(id, ":");

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
    enum connect_code code = rc == -ENOMEM      ? CONNECT_RESOURCE_EXHAUSTED
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

static int profile_type_check(struct call *c, const char *what, const char *id)
{
    if (!id || !*id) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "%sprofile_typeID: missing (e.g. %s)",
                      what, DEFAULT_PROFILE_TYPE);
        return -EINVAL;
    }
    if (!http_profile_type_valid(id)) {
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

/* The merged profile of one stack trace request (column 0 = the type). */
static int select_stacks(struct call *c, const char *what,
                         const Querier__V1__SelectMergeStacktracesRequest *m, struct mprof **out,
                         uint32_t *max_nodes)
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
    if (m->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "%sformat: PROFILE_FORMAT_TREE is not implemented (use "
                      "PROFILE_FORMAT_FLAMEGRAPH)",
                      what);
        return -EINVAL;
    }
    if (stack_selector_set(m->stack_trace_selector) || m->n_profile_id_selector) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "%sstack_trace_selector and profile_id_selector are not implemented", what);
        return -EINVAL;
    }
    if (selection_parse(c, what, m->label_selector, m->start, m->end, &s))
        return -EINVAL;
    if (!name_matches(&s, m->profile_typeid)) {
        selection_free(&s);
        *out = mprof_new(1);
        if (!*out)
            connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
        return *out ? 0 : -ENOMEM;
    }
    struct query q = selection_query(c, &s, m->profile_typeid, Q_PROFILE);
    int rc = run(c, &q, out);
    selection_free(&s);
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

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A sorted, distinct string list built from many sources. */
struct strset {
    char **v;
    size_t n, cap;
    bool oom;
};

static void strset_add(struct strset *s, const char *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **nv = realloc(s->v, cap * sizeof(*nv));
        if (!nv) {
            s->oom = true;
            return;
        }
        s->v = nv;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(x)))
        s->oom = true;
    else
        s->n++;
}

static void strset_finish(struct strset *s)
{
    size_t k = 0;

    if (s->n)
        qsort(s->v, s->n, sizeof(*s->v), cmp_cstr);
    for (size_t i = 0; i < s->n; i++) {
        if (k && strcmp(s->v[k - 1], s->v[i]) == 0)
            free(s->v[i]);
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
}

/* LabelNames (@name NULL) or LabelValues of @name over the union of
 * @matchers (none = everything). */
static void labels(struct call *c, const char *name, char *const *matchers, size_t nmatchers,
                   int64_t start, int64_t end)
{
    struct strset out = {0};

    if (name && !(strcmp(name, "__name__") == 0 || http_label_name_valid(name))) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "name: '%.64s' is not a label name", name);
        return;
    }
    for (size_t k = 0; k < (nmatchers ? nmatchers : 1); k++) {
        struct selection s;
        char **types = NULL;
        size_t n = 0;
        if (selection_parse(c, "", nmatchers ? matchers[k] : "{}", start, end, &s))
            goto fail;
        /* __name__ comes from the profile types, the rest from the engine.
         * Both read the same selection: its skips count once. */
        uint64_t skipped0 = c->r->skipped;
        if (types_of(c, &s, &types, &n)) {
            selection_free(&s);
            goto fail;
        }
        uint64_t skipped_types = c->r->skipped - skipped0;
        if (n && !name)
            strset_add(&out, "__name__");
        if (n && name && strcmp(name, "__name__") == 0)
            for (size_t i = 0; i < n; i++) {
                types[i][strcspn(types[i], ":")] = '\0';
                strset_add(&out, types[i]);
            }
        bool any = n > 0;
        free_strv(types, n);
        if (any && !(name && strcmp(name, "__name__") == 0)) {
            struct mprof *mp = NULL;
            struct query q = selection_query(c, &s, NULL, Q_LABELS);
            if (run(c, &q, &mp)) {
                selection_free(&s);
                goto fail;
            }
            if (mp->stats.skipped > skipped_types)
                skipped_types = mp->stats.skipped;
            c->r->skipped = skipped0 + skipped_types;
            uint32_t want = name ? mstr_find(&mp->str, name, strlen(name)) : MPROF_NONE;
            for (uint32_t i = 0; i < mp->npairs; i++) {
                uint32_t a = (uint32_t)(mp->pairs[i] >> 32), v = (uint32_t)mp->pairs[i];
                if (!name)
                    strset_add(&out, mstr_get(&mp->str, a));
                else if (a == want)
                    strset_add(&out, mstr_get(&mp->str, v));
            }
            mprof_free(mp);
        }
        selection_free(&s);
    }
    if (out.oom) {
        oom(c);
        goto fail;
    }
    strset_finish(&out);
    if (name) {
        Types__V1__LabelValuesResponse resp = TYPES__V1__LABEL_VALUES_RESPONSE__INIT;
        resp.names = out.v;
        resp.n_names = out.n;
        connect_respond(c->r, c->codec, &resp.base);
    } else {
        Types__V1__LabelNamesResponse resp = TYPES__V1__LABEL_NAMES_RESPONSE__INIT;
        resp.names = out.v;
        resp.n_names = out.n;
        connect_respond(c->r, c->codec, &resp.base);
    }
fail:
    free_strv(out.v, out.n);
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

static void m_select_merge_stacktraces(struct call *c, const ProtobufCMessage *req)
{
    const Querier__V1__SelectMergeStacktracesRequest *m = (const void *)req;
    Querier__V1__SelectMergeStacktracesResponse resp =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;
    struct mprof *mp = NULL;
    uint32_t max_nodes;

    if (select_stacks(c, "", m, &mp, &max_nodes))
        return;
    if (pyroscope_flamegraph(mp, 0, max_nodes, &resp.flamegraph)) {
        oom(c);
    } else {
        connect_respond(c->r, c->codec, &resp.base);
        querier__v1__flame_graph__free_unpacked(resp.flamegraph, NULL);
    }
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
    if (select_stacks(c, "left.", m->left, &l, &ln))
        return;
    if (select_stacks(c, "right.", m->right, &r, &rn)) {
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
    uint8_t *gz = NULL, *raw = NULL;
    size_t gzlen = 0, rawlen = 0;

    if (profile_type_check(c, "", m->profile_typeid))
        return;
    if (stack_selector_set(m->stack_trace_selector) || m->n_profile_id_selector) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "stack_trace_selector and profile_id_selector are not implemented");
        return;
    }
    if (selection_parse(c, "", m->label_selector, m->start, m->end, &s))
        return;
    struct query q = selection_query(c, &s, m->profile_typeid, Q_PROFILE);
    int rc =
        name_matches(&s, m->profile_typeid) ? run(c, &q, &mp) : ((mp = mprof_new(1)) ? 0 : -ENOMEM);
    int64_t from = s.from, until = s.until;
    selection_free(&s);
    if (rc) {
        if (rc == -ENOMEM && !mp && !c->r->body)
            oom(c);
        return;
    }
    rc = view_pprof(mp, from, until - from, &gz, &gzlen);
    mprof_free(mp);
    if (!rc)
        rc = query_gunzip(gz, gzlen, &raw, &rawlen);
    free(gz);
    if (rc) {
        connect_error(c->r, 0, CONNECT_INTERNAL, "pprof encoding failed: %s", strerror(-rc));
        return;
    }
    connect_respond_packed(c->r, c->codec, &perftools__profiles__profile__descriptor, raw, rawlen);
}

struct series_order {
    const struct mprof *mp;
    const int64_t *sum;
};

static int cmp_group(const void *a, const void *b, void *ctx)
{
    const struct series_order *o = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return strcmp(mstr_get(&o->mp->str, o->mp->group_val[x]),
                  mstr_get(&o->mp->str, o->mp->group_val[y]));
}

static int cmp_group_sum(const void *a, const void *b, void *ctx)
{
    const struct series_order *o = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (o->sum[x] != o->sum[y])
        return o->sum[x] > o->sum[y] ? -1 : 1;
    return cmp_group(a, b, ctx);
}

static void m_select_series(struct call *c, const ProtobufCMessage *req)
{
    const Querier__V1__SelectSeriesRequest *m = (const void *)req;
    Querier__V1__SelectSeriesResponse resp = QUERIER__V1__SELECT_SERIES_RESPONSE__INIT;
    struct selection s;
    struct mprof *mp = NULL;
    const char *gb = m->n_group_by ? m->group_by[0] : NULL;

    if (profile_type_check(c, "", m->profile_typeid))
        return;
    if (m->n_group_by > 1) {
        connect_error(c->r, 0, CONNECT_UNIMPLEMENTED,
                      "group_by: grouping by more than one label is not implemented");
        return;
    }
    if (gb && !http_label_name_valid(gb)) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "group_by: '%.64s' is not a label name",
                      gb);
        return;
    }
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
    if (!isfinite(m->step) || m->step < 0 || m->step > (double)QUERY_MAX_RANGE_MS / 1000) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "step: %g is not a step in seconds",
                      m->step);
        return;
    }
    if (m->_limit_case == QUERIER__V1__SELECT_SERIES_REQUEST___LIMIT_LIMIT && m->limit < 0) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "limit: negative");
        return;
    }
    if (selection_parse(c, "", m->label_selector, m->start, m->end, &s))
        return;
    int64_t step = (int64_t)llround(m->step * 1000);
    if (m->step > 0 && step < 1)
        step = 1;
    struct query q = selection_query(c, &s, m->profile_typeid, Q_SERIES);
    q.step = step;
    q.group_by = gb;
    int64_t st;
    uint32_t nb;
    if (engine_series_grid(&q, &st, &nb)) {
        selection_free(&s);
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT,
                      "step: %g s gives more than %d points over the range", m->step,
                      SERIES_MAX_POINTS);
        return;
    }
    if (!name_matches(&s, m->profile_typeid)) {
        selection_free(&s);
        connect_respond(c->r, c->codec, &resp.base);
        return;
    }
    int rc = run(c, &q, &mp);
    selection_free(&s);
    if (rc)
        return;
    uint32_t ng = mp->ngroups;
    uint32_t *order = malloc(((size_t)ng + 1) * sizeof(*order));
    int64_t *sum = calloc((size_t)ng + 1, sizeof(*sum));
    Types__V1__Series *ser = calloc((size_t)ng + 1, sizeof(*ser));
    Types__V1__Series **serv = calloc((size_t)ng + 1, sizeof(*serv));
    Types__V1__LabelPair *lp = calloc((size_t)ng + 1, sizeof(*lp));
    Types__V1__LabelPair **lpv = calloc((size_t)ng + 1, sizeof(*lpv));
    Types__V1__Point *pts = calloc((size_t)ng * mp->nbuckets + 1, sizeof(*pts));
    Types__V1__Point **ptv = calloc((size_t)ng * mp->nbuckets + 1, sizeof(*ptv));
    if (!order || !sum || !ser || !serv || !lp || !lpv || !pts || !ptv) {
        oom(c);
        goto out;
    }
    for (uint32_t g = 0; g < ng; g++) {
        order[g] = g;
        for (uint32_t bk = 0; bk < mp->nbuckets; bk++)
            MPROF_ADD(sum[g], mp->points[(size_t)g * mp->nbuckets + bk]);
    }
    struct series_order so = {mp, sum};
    bool limited = m->_limit_case == QUERIER__V1__SELECT_SERIES_REQUEST___LIMIT_LIMIT &&
                   m->limit > 0 && (uint64_t)m->limit < ng;
    if (limited) {
        qsort_r(order, ng, sizeof(*order), cmp_group_sum, &so);
        ng = (uint32_t)m->limit;
    }
    qsort_r(order, ng, sizeof(*order), cmp_group, &so);
    size_t np = 0;
    for (uint32_t k = 0; k < ng; k++) {
        uint32_t g = order[k];
        types__v1__series__init(&ser[k]);
        if (gb) {
            types__v1__label_pair__init(&lp[k]);
            lp[k].name = (char *)gb;
            lp[k].value = (char *)mstr_get(&mp->str, mp->group_val[g]);
            lpv[k] = &lp[k];
            ser[k].labels = &lpv[k];
            ser[k].n_labels = 1;
        }
        ser[k].points = &ptv[np];
        for (uint32_t bk = 0; bk < mp->nbuckets; bk++) {
            size_t i = (size_t)g * mp->nbuckets + bk;
            if (!mp->present[i])
                continue;
            types__v1__point__init(&pts[np]);
            pts[np].value = (double)mp->points[i];
            pts[np].timestamp = mp->from + (int64_t)bk * mp->step;
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
    free(order);
    free(sum);
    free(ser);
    free(serv);
    free(lp);
    free(lpv);
    free(pts);
    free(ptv);
    mprof_free(mp);
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
    {"Series", NULL, NULL,
     "Series (label sets of the series) is not implemented: the engine keeps label pairs, "
     "not whole label sets; use LabelNames and LabelValues"},
    {"SelectMergeSpanProfile", NULL, NULL,
     "SelectMergeSpanProfile is not implemented: Stoke's samples carry no span ids"},
    {"SelectHeatmap", NULL, NULL,
     "SelectHeatmap is not implemented: Stoke keeps per-step sums, not individual profiles"},
    {"GetProfileStats", NULL, NULL, "GetProfileStats is not implemented (internal scope)"},
    {"AnalyzeQuery", NULL, NULL, "AnalyzeQuery is not implemented (internal scope)"},
};

bool pyroscope_path(const char *path)
{
    return strncmp(path, PYROSCOPE_SERVICE_PREFIX, strlen(PYROSCOPE_SERVICE_PREFIX)) == 0 ||
           strcmp(path, PYROSCOPE_RENDER_PATH) == 0;
}

static void render(const struct pyroscope_api *a, const char *tenant, http_param_fn param,
                   void *ctx, struct http_response *out);

void pyroscope_route(const struct pyroscope_api *a, const char *method, const char *path,
                     http_param_fn param, http_param_fn header, void *ctx, const uint8_t *body,
                     size_t len, struct http_response *out)
{
    struct call c = {.a = a, .tenant = a->tenant, .r = out};
    const char *org = header(ctx, "X-Scope-OrgID");
    const struct method *m = NULL;
    char err[512];

    memset(out, 0, sizeof(*out));
    if (org && *org) {
        if (!plan_tenant_valid(org)) {
            connect_error(
                out, 0, CONNECT_INVALID_ARGUMENT,
                "X-Scope-OrgID: '%.64s' is not a valid tenant name ([A-Za-z0-9._-]{1,64})", org);
            return;
        }
        c.tenant = org;
    }
    if (strcmp(path, PYROSCOPE_RENDER_PATH) == 0) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            connect_error(out, 405, CONNECT_INVALID_ARGUMENT, "%s: method %s not allowed (use GET)",
                          path, method);
            return;
        }
        render(a, c.tenant, param, ctx, out);
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

static void render(const struct pyroscope_api *a, const char *tenant, http_param_fn param,
                   void *ctx, struct http_response *out)
{
    struct call c = {.a = a, .tenant = tenant, .r = out};
    const char *query = param(ctx, "query"), *fs = param(ctx, "from"), *us = param(ctx, "until");
    const char *format = param(ctx, "format"), *mn = param(ctx, "maxNodes"), *why;
    char type[512];
    int64_t now = now_ms(), from, until;
    long long max_nodes = PYROSCOPE_DEFAULT_NODES;

    if (!mn)
        mn = param(ctx, "max-nodes");
    if (format && strcmp(format, "json") != 0) {
        http_error_json(out, 400, "format: only json is supported");
        return;
    }
    if (!query || !*query) {
        http_error_json(out, 400, "query: missing (e.g. %s{service_name=\"api\"})",
                        DEFAULT_PROFILE_TYPE);
        return;
    }
    size_t tl = strcspn(query, "{");
    if (tl >= sizeof(type)) {
        http_error_json(out, 400, "query: profile type too long");
        return;
    }
    memcpy(type, query, tl);
    type[tl] = '\0';
    if (!http_profile_type_valid(type)) {
        http_error_json(out, 400,
                        "query: '%.128s' is not a profile type id "
                        "(name:sample_type:sample_unit:period_type:period_unit)",
                        type);
        return;
    }
    if ((why = render_time(fs ? fs : "now-1h", now, &from))) {
        http_error_json(out, 400, "from: %s", why);
        return;
    }
    if ((why = render_time(us ? us : "now", now, &until))) {
        http_error_json(out, 400, "until: %s", why);
        return;
    }
    if (mn) {
        char *end;
        errno = 0;
        max_nodes = strtoll(mn, &end, 10);
        if (!*mn || *end || errno || max_nodes < 1) {
            http_error_json(out, 400, "maxNodes: '%.32s' is not a positive integer", mn);
            return;
        }
        if (max_nodes > (long long)PYROSCOPE_MAX_NODES)
            max_nodes = PYROSCOPE_MAX_NODES;
    }
    char err[256];
    if (plan_range_check(from, until, "from", "until", err, sizeof(err))) {
        http_error_json(out, 400, "%s", err);
        return;
    }
    struct selection s;
    if (selection_parse(&c, "", query[tl] ? query + tl : "{}", from, until, &s)) {
        /* Re-word the Connect error for this plain JSON endpoint. */
        char msg[512] = "bad query";
        cJSON *j = cJSON_ParseWithLength((const char *)out->body, out->len);
        if (j && cJSON_IsString(cJSON_GetObjectItem(j, "message")))
            snprintf(msg, sizeof(msg), "%s", cJSON_GetObjectItem(j, "message")->valuestring);
        cJSON_Delete(j);
        free(out->body);
        memset(out, 0, sizeof(*out));
        http_error_json(out, 400, "%s", msg);
        return;
    }
    struct query q = {.tenant = tenant,
                      .sel = &s.rest,
                      .selector_text = s.rest_text,
                      .from = s.from,
                      .until = s.until,
                      .profile_type = type,
                      .mode = Q_PROFILE};
    struct query qs = q;
    struct mprof *mp = NULL, *ts = NULL;
    Querier__V1__FlameGraph *fg = NULL;
    int64_t st;
    uint32_t nb;
    bool match = name_matches(&s, type);
    qs.mode = Q_SERIES;
    engine_series_grid(&qs, &st, &nb);
    if (!match) {
        mp = mprof_new(1);
        ts = NULL;
    } else if (run(&c, &q, &mp) || run(&c, &qs, &ts)) {
        selection_free(&s);
        mprof_free(mp);
        return; /* run left a Connect error (same JSON shape plus a code) */
    }
    selection_free(&s);
    /* The timeline read the flame graph's sections again: count them once. */
    if (mp)
        out->skipped = mp->stats.skipped;
    struct sbuf b = {0};
    if (!mp || pyroscope_flamegraph(mp, 0, (uint32_t)max_nodes, &fg)) {
        mprof_free(mp);
        mprof_free(ts);
        http_error_json(out, 500, "out of memory");
        return;
    }
    char *unit = field_dup(type, 2), *name = field_dup(type, 0);
    bool ns = unit && strcmp(unit, "nanoseconds") == 0;
    const char *units = unit && strcmp(unit, "bytes") == 0 ? "bytes" : "samples";
    sbuf_put(&b, "{\"version\":1,\"flamebearer\":{\"names\":[", 37);
    for (size_t i = 0; i < fg->n_names; i++) {
        if (i)
            sbuf_put(&b, ",", 1);
        sbuf_json_str(&b, fg->names[i]);
    }
    sbuf_put(&b, "],\"levels\":[", 12);
    for (size_t i = 0; i < fg->n_levels; i++) {
        sbuf_put(&b, i ? ",[" : "[", i ? 2 : 1);
        for (size_t k = 0; k < fg->levels[i]->n_values; k++)
            sbuf_printf(&b, "%s%" PRId64, k ? "," : "", fg->levels[i]->values[k]);
        sbuf_put(&b, "]", 1);
    }
    sbuf_printf(&b, "],\"numTicks\":%" PRId64 ",\"maxSelf\":%" PRId64 "}", fg->total, fg->max_self);
    /* Nanosecond values are shown as time by a sample rate of 1e9 per second. */
    sbuf_printf(&b,
                ",\"metadata\":{\"format\":\"single\",\"spyName\":\"\",\"sampleRate\":%s,"
                "\"units\":\"%s\",\"name\":",
                ns ? "1000000000" : "100", units);
    sbuf_json_str(&b, query);
    sbuf_put(&b, ",\"appName\":", 11);
    sbuf_json_str(&b, name ? name : "");
    sbuf_printf(&b, ",\"startTime\":%" PRId64 ",\"endTime\":%" PRId64 ",\"maxNodes\":%lld}",
                from / 1000, until / 1000, max_nodes);
    int64_t step = ts ? ts->step : st;
    sbuf_printf(&b, ",\"timeline\":{\"startTime\":%" PRId64 ",\"samples\":[",
                (ts ? ts->from : from) / 1000);
    uint32_t nbk = ts ? ts->nbuckets : nb;
    for (uint32_t bk = 0; bk < nbk; bk++) {
        int64_t v = 0;
        for (uint32_t g = 0; ts && g < ts->ngroups; g++)
            MPROF_ADD(v, ts->points[(size_t)g * ts->nbuckets + bk]);
        sbuf_printf(&b, "%s%" PRId64, bk ? "," : "", v);
    }
    sbuf_printf(&b, "],\"durationDelta\":%" PRId64 "}", step / 1000 > 0 ? step / 1000 : 1);
    /* What the flame graph read and skipped, as the native API says it. */
    http_finish_json(&b, mp);
    free(unit);
    free(name);
    querier__v1__flame_graph__free_unpacked(fg, NULL);
    mprof_free(mp);
    mprof_free(ts);
    if (b.oom) {
        free(b.p);
        http_error_json(out, 500, "out of memory");
        return;
    }
    out->status = 200;
    out->content_type = "application/json";
    out->body = (uint8_t *)b.p;
    out->len = b.len;
}
