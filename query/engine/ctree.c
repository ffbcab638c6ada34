/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/ctree.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/segment.h"
#include "codec/topsum.h"
#include "common/intern.h"
#include "query/engine/merge.h"
#include "query/engine/query.h"

/* ---- building a section's tree (compaction) ----------------------------- */

/* The whole tree while it is built: node i's parent code (0 for the root,
 * k for node k - 1) and name id; values [node * nt + type]. */
struct tbuild {
    uint32_t nt, n, cap;
    uint32_t *parent, *name;
    int64_t *total, *self;
};

static int tb_grow(struct tbuild *b)
{
    uint32_t cap = b->cap ? b->cap * 2 : 4096;
    uint32_t *p = realloc(b->parent, (size_t)cap * sizeof(*p));
    if (p)
        b->parent = p;
    uint32_t *nm = realloc(b->name, (size_t)cap * sizeof(*nm));
    if (nm)
        b->name = nm;
    int64_t *t = realloc(b->total, (size_t)cap * b->nt * sizeof(*t));
    if (t)
        b->total = t;
    int64_t *s = realloc(b->self, (size_t)cap * b->nt * sizeof(*s));
    if (s)
        b->self = s;
    if (!p || !nm || !t || !s)
        return -ENOMEM;
    b->cap = cap;
    return 0;
}

/* Adds stack @f[0..n) (leaf first) with values @v to the tree. Stacks
 * come sorted root first, so the nodes this one shares with any stack
 * before it are those it shares with the one just before (root first:
 * names @pf, nodes @pn, *@pl of them), and the rest are new. */
static int tb_add(struct tbuild *b, const uint32_t *f, uint32_t n, const int64_t *v, uint32_t *pf,
                  uint32_t *pn, uint32_t *pl)
{
    uint32_t d = 0;

    while (d < n && d < *pl && pf[d] == f[n - 1 - d])
        d++;
    for (uint32_t k = d; k < n; k++) {
        if (b->n == b->cap && tb_grow(b))
            return -ENOMEM;
        uint32_t id = b->n++;
        b->parent[id] = k ? pn[k - 1] + 1 : 0;
        b->name[id] = pf[k] = f[n - 1 - k];
        memset(b->total + (size_t)id * b->nt, 0, b->nt * sizeof(*b->total));
        memset(b->self + (size_t)id * b->nt, 0, b->nt * sizeof(*b->self));
        pn[k] = id;
    }
    *pl = n;
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t t = 0; t < b->nt; t++)
            MPROF_ADD(b->total[(size_t)pn[k] * b->nt + t], v[t]);
    if (n)
        for (uint32_t t = 0; t < b->nt; t++)
            MPROF_ADD(b->self[(size_t)pn[n - 1] * b->nt + t], v[t]);
    return 0;
}

/* Orders stack ids by their frames root first (a stack before those it is
 * a prefix of). */
static int stack_cmp(const void *a, const void *b, void *ctx)
{
    const struct mprof *mp = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uint32_t nx = mprof_stack_len(mp, x), ny = mprof_stack_len(mp, y);
    const uint32_t *fx = mprof_stack_frames(mp, x), *fy = mprof_stack_frames(mp, y);

    for (uint32_t k = 1; k <= nx && k <= ny; k++)
        if (fx[nx - k] != fy[ny - k])
            return fx[nx - k] < fy[ny - k] ? -1 : 1;
    return nx < ny ? -1 : nx > ny;
}

/* A candidate node while the tree is cut: the largest share of its type's
 * sum it has in any type, ties to the node first seen. */
struct cand {
    double score;
    uint32_t node;
};

static bool cand_before(const struct cand *a, const struct cand *b)
{
    return a->score > b->score || (a->score == b->score && a->node < b->node);
}

static void heap_push(struct cand *h, uint32_t *n, struct cand c)
{
    uint32_t i = (*n)++;
    while (i && cand_before(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static struct cand heap_pop(struct cand *h, uint32_t *n)
{
    struct cand top = h[0], last = h[--(*n)];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && cand_before(&h[c + 1], &h[c]))
            c++;
        if (!cand_before(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

static double node_score(const struct tbuild *b, uint32_t i, const int64_t *sum)
{
    double s = 0;
    for (uint32_t t = 0; t < b->nt; t++) {
        int64_t v = b->total[(size_t)i * b->nt + t];
        if (sum[t] > 0 && v > 0 && (double)v / (double)sum[t] > s)
            s = (double)v / (double)sum[t];
    }
    return s;
}

/* Keeps the @max largest nodes of @b, each with its parent (a child is
 * never larger than its parent: they are taken largest first from the
 * children of what is kept), in keep[]; each type's largest total of a
 * node left out in @cut. 0 or -ENOMEM. */
static int tb_cut(const struct tbuild *b, uint32_t max, const int64_t *sum, uint8_t *keep,
                  int64_t *cut)
{
    uint32_t *first = calloc((size_t)b->n + 2, sizeof(*first)), *kids = NULL, nh = 0;
    struct cand *h = malloc(((size_t)b->n + 1) * sizeof(*h));
    int rc = -ENOMEM;

    if (!first || !h)
        goto out;
    /* children by parent code (0 = root), in first-seen order */
    for (uint32_t i = 0; i < b->n; i++)
        first[b->parent[i] + 1]++;
    for (uint32_t c = 1; c <= b->n + 1; c++)
        first[c] += first[c - 1];
    if (!(kids = calloc((size_t)b->n + 1, sizeof(*kids))))
        goto out;
    for (uint32_t i = 0; i < b->n; i++)
        kids[first[b->parent[i]]++] = i;
    for (uint32_t c = b->n + 1; c > 0; c--) /* back to the starts */
        first[c] = first[c - 1];
    first[0] = 0;
    for (uint32_t k = first[0]; k < first[1]; k++)
        heap_push(h, &nh, (struct cand){node_score(b, kids[k], sum), kids[k]});
    for (uint32_t kept = 0; nh && kept < max; kept++) {
        uint32_t i = heap_pop(h, &nh).node;
        keep[i] = 1;
        for (uint32_t k = first[i + 1]; k < first[i + 2]; k++)
            heap_push(h, &nh, (struct cand){node_score(b, kids[k], sum), kids[k]});
    }
    /* what is left in the heap bounds everything left out below it */
    for (uint32_t t = 0; t < b->nt; t++)
        cut[t] = 0;
    for (uint32_t k = 0; k < nh; k++)
        for (uint32_t t = 0; t < b->nt; t++) {
            int64_t v = b->total[(size_t)h[k].node * b->nt + t];
            v = v < 0 ? -v : v;
            if (v > cut[t])
                cut[t] = v;
        }
    rc = 0;
out:
    free(first);
    free(kids);
    free(h);
    return rc;
}

/* The function totals frame (codec/topsum.h) from the whole, uncut tree
 * @b, whose nodes are in preorder (built from sorted stacks): a function's
 * self is its nodes' selves, its total the totals of its nodes with no
 * ancestor of the same name (a stack counted once however often it
 * recurses: what engine_top_summary counts). 0 or -ENOMEM. */
static int totals_from_tree(const struct tbuild *b, const struct mprof *mp, const int64_t *sum,
                            const char **bids, uint32_t nbids, struct wbuf *out)
{
    uint32_t nt = b->nt, ns = mp->str.n, sp = 0, k = 0;
    int64_t *fself = calloc((size_t)ns * nt + 1, sizeof(*fself));
    int64_t *ftotal = calloc((size_t)ns * nt + 1, sizeof(*ftotal));
    uint32_t *onpath = calloc((size_t)ns + 1, sizeof(*onpath));
    uint32_t *stk = malloc(((size_t)b->n + 1) * sizeof(*stk));
    struct seg_topsum t = {.ntypes = nt, .build_ids = bids, .nbuild_ids = nbids};
    int rc = -ENOMEM;

    if (!fself || !ftotal || !onpath || !stk)
        goto out;
    for (uint32_t i = 0; i < b->n; i++) {
        /* back up to the parent: preorder keeps it on the path */
        while (sp && stk[sp - 1] + 1 != b->parent[i])
            onpath[b->name[stk[--sp]]]--;
        uint32_t f = b->name[i];
        for (uint32_t ty = 0; ty < nt; ty++) {
            MPROF_ADD(fself[(size_t)f * nt + ty], b->self[(size_t)i * nt + ty]);
            if (!onpath[f])
                MPROF_ADD(ftotal[(size_t)f * nt + ty], b->total[(size_t)i * nt + ty]);
        }
        onpath[f]++;
        stk[sp++] = i;
    }
    t.names = malloc(((size_t)ns + 1) * sizeof(*t.names));
    t.self = malloc(((size_t)ns * nt + 1) * sizeof(*t.self));
    t.total = malloc(((size_t)ns * nt + 1) * sizeof(*t.total));
    if (!t.names || !t.self || !t.total)
        goto out;
    /* the functions with a value in any type, in string id order */
    for (uint32_t f = 0; f < ns; f++) {
        bool any = false;
        for (uint32_t ty = 0; ty < nt; ty++)
            any |= fself[(size_t)f * nt + ty] || ftotal[(size_t)f * nt + ty];
        if (any)
            stk[k++] = f, t.names[k - 1] = intern_str_get(&mp->str, f);
    }
    t.nfuncs = k;
    for (uint32_t ty = 0; ty < nt; ty++) {
        t.sum[ty] = sum[ty];
        for (uint32_t j = 0; j < k; j++) {
            t.self[(size_t)ty * k + j] = fself[(size_t)stk[j] * nt + ty];
            t.total[(size_t)ty * k + j] = ftotal[(size_t)stk[j] * nt + ty];
        }
    }
    rc = seg_topsum_encode(out, &t);
out:
    free(fself);
    free(ftotal);
    free(onpath);
    free(stk);
    free(t.names);
    free(t.self);
    free(t.total);
    return rc;
}

/* Both summaries of a section from one merge and one tree: the call tree
 * cut to @max nodes into *@raw, and, with @top_raw, the function totals
 * into *@top_raw. A section with two types alike gets neither (*@raw and
 * *@top_raw NULL): callers fall back to engine_top_summary for its
 * totals. */
static int summaries(const uint8_t *bytes, size_t len, const struct seg_section_info *info,
                     uint32_t max, uint8_t **top_raw, size_t *top_len, uint8_t **raw,
                     size_t *rawlen)
{
    struct seg_section *sec = NULL;
    struct mprof *mp = NULL;
    struct tbuild b = {0};
    struct intern bids = {0};
    struct seg_calltree t = {0};
    struct wbuf out = {0};
    uint8_t *keep = NULL;
    uint32_t *nmap = NULL, *newid = NULL, *pf = NULL, *pn = NULL, *order = NULL;
    char err[256];
    int rc;

    *raw = NULL;
    *rawlen = 0;
    if (top_raw) {
        *top_raw = NULL;
        *top_len = 0;
    }
    if ((rc = seg_section_decode(bytes, len, info, &sec, err, sizeof(err))))
        return rc;
    rc = 0;
    if (sec->ntypes == 0 || sec->ntypes > MPROF_MAX_TYPES)
        goto out; /* nothing a query could ask of it */
    for (uint32_t a = 0; a < sec->ntypes; a++)
        for (uint32_t c = 0; c < a; c++)
            if (!strcmp(sec->strings[sec->types[a].type], sec->strings[sec->types[c].type]) &&
                !strcmp(sec->strings[sec->types[a].unit], sec->strings[sec->types[c].unit]))
                goto out; /* two alike: their columns would merge */
    rc = -ENOMEM;
    /* every type at once: the fresh profile's columns are the section's
     * types in order (none alike) */
    if (!(mp = mprof_new(sec->ntypes)) || engine_merge_whole_section(mp, sec))
        goto out;
    uint32_t nt = b.nt = sec->ntypes;
    int64_t sum[MPROF_MAX_TYPES] = {0};
    uint32_t maxlen = 0, pl = 0;
    for (uint32_t s = 0; s < mp->nstacks; s++)
        if (mprof_stack_len(mp, s) > maxlen)
            maxlen = mprof_stack_len(mp, s);
    pf = malloc(((size_t)maxlen + 1) * sizeof(*pf));
    pn = malloc(((size_t)maxlen + 1) * sizeof(*pn));
    order = malloc(((size_t)mp->nstacks + 1) * sizeof(*order));
    if (!pf || !pn || !order)
        goto out;
    uint32_t ns = 0;
    for (uint32_t s = 0; s < mp->nstacks; s++) {
        const int64_t *v = mp->vals + (size_t)s * mp->ntypes;
        bool any = false;
        for (uint32_t ty = 0; ty < nt; ty++) {
            MPROF_ADD(sum[ty], v[ty]);
            any |= v[ty] != 0;
        }
        if (any)
            order[ns++] = s;
    }
    qsort_r(order, ns, sizeof(*order), stack_cmp, mp);
    for (uint32_t k = 0; k < ns; k++) {
        uint32_t s = order[k];
        if (tb_add(&b, mprof_stack_frames(mp, s), mprof_stack_len(mp, s),
                   mp->vals + (size_t)s * mp->ntypes, pf, pn, &pl))
            goto out;
    }
    keep = calloc((size_t)b.n + 1, 1);
    newid = malloc(((size_t)b.n + 1) * sizeof(*newid));
    nmap = malloc(((size_t)mp->str.n + 1) * sizeof(*nmap));
    if (!keep || !newid || !nmap || tb_cut(&b, max, sum, keep, t.cut))
        goto out;
    memset(nmap, 0xff, (size_t)mp->str.n * sizeof(*nmap));
    uint32_t k = 0, nn = 0;
    for (uint32_t i = 0; i < b.n; i++)
        k += keep[i];
    t.ntypes = nt;
    memcpy(t.sum, sum, sizeof(t.sum));
    t.parent = malloc(((size_t)k + 1) * sizeof(*t.parent));
    t.name = malloc(((size_t)k + 1) * sizeof(*t.name));
    t.names = malloc(((size_t)k + 1) * sizeof(*t.names));
    t.total = malloc(((size_t)k * nt + 1) * sizeof(*t.total));
    t.self = malloc(((size_t)k * nt + 1) * sizeof(*t.self));
    if (!t.parent || !t.name || !t.names || !t.total || !t.self)
        goto out;
    /* nodes in the order built (root first, stacks sorted): parents first */
    for (uint32_t i = 0; i < b.n; i++) {
        if (!keep[i])
            continue;
        uint32_t j = t.nnodes++;
        newid[i] = j;
        t.parent[j] = b.parent[i] ? newid[b.parent[i] - 1] + 1 : 0;
        if (nmap[b.name[i]] == UINT32_MAX) {
            nmap[b.name[i]] = nn;
            t.names[nn++] = intern_str_get(&mp->str, b.name[i]);
        }
        t.name[j] = nmap[b.name[i]];
        for (uint32_t ty = 0; ty < nt; ty++) {
            t.total[(size_t)ty * k + j] = b.total[(size_t)i * nt + ty];
            t.self[(size_t)ty * k + j] = b.self[(size_t)i * nt + ty];
        }
    }
    t.nnames = nn;
    if (engine_unnamed_build_ids(sec, &bids, &t.build_ids, &t.nbuild_ids))
        goto out;
    if (top_raw) {
        struct wbuf tw = {0};
        if ((rc = totals_from_tree(&b, mp, sum, t.build_ids, t.nbuild_ids, &tw))) {
            wb_free(&tw);
            goto out;
        }
        *top_raw = tw.p;
        *top_len = tw.len;
    }
    if ((rc = seg_calltree_encode(&out, &t))) {
        if (top_raw) {
            free(*top_raw);
            *top_raw = NULL;
        }
        goto out;
    }
    *raw = out.p;
    *rawlen = out.len;
    out.p = NULL;
    rc = 0;
out:
    free(t.parent);
    free(t.name);
    free(t.names);
    free(t.total);
    free(t.self);
    free(t.build_ids);
    free(keep);
    free(pf);
    free(pn);
    free(order);
    free(newid);
    free(nmap);
    free(b.parent);
    free(b.name);
    free(b.total);
    free(b.self);
    wb_free(&out);
    intern_free(&bids);
    mprof_free(mp);
    seg_section_free(sec);
    return rc;
}

int engine_calltree_summary(void *ctx, const uint8_t *bytes, size_t len,
                            const struct seg_section_info *info, uint8_t **raw, size_t *rawlen)
{
    return summaries(bytes, len, info, ctx ? *(const uint32_t *)ctx : CTREE_MAX_NODES, NULL, NULL,
                     raw, rawlen);
}

/* What the totals hook built for the tree hook: the raw tree of each
 * section, by its offset in the object being written. */
struct ctree_cache {
    struct {
        uint64_t offset;
        uint8_t *raw;
        size_t len;
    } * e;
    size_t n, cap;
};

struct ctree_cache *ctree_cache_new(void)
{
    return calloc(1, sizeof(struct ctree_cache));
}

void ctree_cache_free(struct ctree_cache *c)
{
    for (size_t i = 0; c && i < c->n; i++)
        free(c->e[i].raw);
    if (c)
        free(c->e);
    free(c);
}

int engine_summaries_top(void *ctx, const uint8_t *bytes, size_t len,
                         const struct seg_section_info *info, uint8_t **raw, size_t *rawlen)
{
    struct ctree_cache *c = ctx;
    uint8_t *tree = NULL;
    size_t tlen = 0;
    int rc = summaries(bytes, len, info, CTREE_MAX_NODES, raw, rawlen, &tree, &tlen);

    if (rc)
        return rc;
    if (!*raw) /* no tree: two types alike (or none) */
        return engine_top_summary(NULL, bytes, len, info, raw, rawlen);
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        void *e = realloc(c->e, cap * sizeof(*c->e));
        if (!e) {
            free(tree);
            free(*raw);
            *raw = NULL;
            return -ENOMEM;
        }
        c->e = e;
        c->cap = cap;
    }
    c->e[c->n].offset = info->offset;
    c->e[c->n].raw = tree;
    c->e[c->n].len = tlen;
    c->n++;
    return 0;
}

int engine_summaries_tree(void *ctx, const uint8_t *bytes, size_t len,
                          const struct seg_section_info *info, uint8_t **raw, size_t *rawlen)
{
    struct ctree_cache *c = ctx;

    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].raw && c->e[i].offset == info->offset) {
            *raw = c->e[i].raw;
            *rawlen = c->e[i].len;
            c->e[i].raw = NULL;
            return 0;
        }
    return engine_calltree_summary(NULL, bytes, len, info, raw, rawlen);
}

/* ---- adding a tree to a query's profile ---------------------------------- */

/* The most one callee a section left out of a node can hold: what the
 * node's callees left out (@o), at most the section's @cut. */
static int64_t unseen_bound(int64_t o, int64_t cut)
{
    return o <= 0 ? 0 : o < cut ? o : cut;
}

int ctree_merge(struct mprof *mp, const struct seg_calltree *t, uint32_t col, const char *type,
                const char *unit)
{
    uint32_t n = t->nnodes, depth = 0;
    int64_t *other = malloc(((size_t)n + 1) * sizeof(*other));
    uint32_t *nm = malloc(((size_t)t->nnames + 2) * sizeof(*nm));
    uint32_t *path = malloc((SEG_CALLTREE_MAX_DEPTH + 2) * sizeof(*path));
    const int64_t *tot = t->total + (size_t)col * n, *self = t->self + (size_t)col * n;
    int64_t root_other = t->sum[col];
    int rc = -ENOMEM;

    if (!other || !nm || !path || col >= t->ntypes)
        goto out;
    if (mp->type_type[0] == MPROF_NONE) {
        mp->type_type[0] = intern_str(&mp->str, type);
        mp->type_unit[0] = intern_str(&mp->str, unit);
    }
    for (uint32_t k = 0; k < t->nnames; k++)
        if ((nm[k] = intern_str(&mp->str, t->names[k])) == MPROF_NONE)
            goto out;
    if ((nm[t->nnames] = intern_str(&mp->str, CTREE_OTHER)) == MPROF_NONE)
        goto out;
    /* what each node's kept children and self do not account for */
    for (uint32_t i = 0; i < n; i++)
        other[i] = (int64_t)((uint64_t)tot[i] - (uint64_t)self[i]);
    for (uint32_t i = 0; i < n; i++) {
        int64_t *o = t->parent[i] ? &other[t->parent[i] - 1] : &root_other;
        *o = (int64_t)((uint64_t)*o - (uint64_t)tot[i]);
    }
    if (mprof_cproof_init(mp))
        goto out;
    int64_t cut = t->cut[col];
    for (uint32_t i = 0; i <= n; i++) {
        bool root = i == n;
        int64_t s = root ? 0 : self[i], o = root ? root_other : other[i];
        /* whether the parent left callees out here: proof below */
        bool pcut = !root && (t->parent[i] ? other[t->parent[i] - 1] : root_other) > 0;
        if (root) {
            mp->root_cs += o > 0;
            MPROF_ADD(mp->root_unc, unseen_bound(o, cut));
        }
        if (!s && !o && !pcut)
            continue;
        /* the path leaf first, one slot ahead for the left-out callees */
        depth = 0;
        for (uint32_t p = root ? 0 : i + 1; p; p = t->parent[p - 1])
            path[1 + depth++] = nm[t->name[p - 1]];
        uint32_t g;
        if (!root) {
            if ((g = mprof_stack(mp, path + 1, depth)) == MPROF_NONE)
                goto out;
            MPROF_ADD(mp->vals[(size_t)g * mp->ntypes], s);
            /* view_flame_proved: which sections knew all of the node's
             * value, and how much its unseen callees may hold */
            mp->cpf[g].pc += pcut;
            mp->cpf[g].cs += o > 0;
            MPROF_ADD(mp->cpf[g].unc, unseen_bound(o, cut));
        }
        if (o) {
            path[0] = nm[t->nnames];
            if ((g = mprof_stack(mp, path, depth + 1)) == MPROF_NONE)
                goto out;
            MPROF_ADD(mp->vals[(size_t)g * mp->ntypes], o);
        }
    }
    MPROF_ADD(mp->cut[0], t->cut[col]);
    mp->ctrees++;
    mp->cpf_trees++;
    rc = 0;
out:
    free(other);
    free(nm);
    free(path);
    return rc;
}
