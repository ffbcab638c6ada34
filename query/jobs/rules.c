/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules — see rules.h.
 */
#include "query/jobs/rules.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/intern.h"
#include "query/engine/query.h"

/* One rule's sum over one group of one flush interval. */
struct rec {
    uint32_t rule;
    int64_t t;
    int64_t sum;
    char *key; /* the group key (query_group_key_append), NUL-terminated */
    uint32_t keylen;
};

struct rule_eval {
    struct rule *const *rules;
    size_t nrules;
    int64_t interval_ms;
    struct rec *r;
    size_t n, cap;
    struct rule_eval_stats st;
};

struct rule_eval *rule_eval_new(struct rule *const *rules, size_t n, unsigned interval_s)
{
    struct rule_eval *ev = calloc(1, sizeof(*ev));
    if (ev) {
        ev->rules = rules;
        ev->nrules = n;
        ev->interval_ms = (int64_t)(interval_s ? interval_s : RULE_EVAL_INTERVAL_S) * 1000;
    }
    return ev;
}

void rule_eval_truncate(struct rule_eval *ev, size_t mark)
{
    while (ev->n > mark)
        free(ev->r[--ev->n].key);
}

void rule_eval_free(struct rule_eval *ev)
{
    if (!ev)
        return;
    rule_eval_truncate(ev, 0);
    free(ev->r);
    free(ev);
}

void rule_eval_flush_done(struct rule_eval *ev)
{
    ev->st.flushes++;
}

size_t rule_eval_mark(const struct rule_eval *ev)
{
    return ev->n;
}

void rule_eval_stats(const struct rule_eval *ev, struct rule_eval_stats *out)
{
    *out = ev->st;
}

static int add_rec(struct rule_eval *ev, uint32_t rule, int64_t t, int64_t sum, const void *key,
                   uint32_t keylen)
{
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? ev->cap * 2 : 64;
        struct rec *r = realloc(ev->r, cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        ev->r = r;
        ev->cap = cap;
    }
    char *k = malloc((size_t)keylen + 1);
    if (!k)
        return -ENOMEM;
    memcpy(k, key, keylen);
    k[keylen] = '\0';
    ev->r[ev->n++] = (struct rec){rule, t, sum, k, keylen};
    return 0;
}

static uint32_t string_id(const struct seg_section *sec, const char *s)
{
    for (uint32_t j = 1; j < sec->nstrings; j++)
        if (strcmp(sec->strings[j], s) == 0)
            return j;
    return UINT32_MAX;
}

/* smask[i] = 1 when stack i has a frame (any inlined line) of @fn. */
static int stacks_with(const struct seg_section *sec, const char *fn, uint8_t *smask)
{
    uint32_t sid = string_id(sec, fn);
    uint8_t *lmask;

    memset(smask, 0, sec->nstacks);
    if (sid == UINT32_MAX)
        return 0;
    lmask = calloc(sec->nlocations + 1, 1);
    if (!lmask)
        return -ENOMEM;
    for (uint32_t l = 0; l < sec->nlocations; l++) {
        const struct seg_location *loc = &sec->locations[l];
        for (uint32_t k = 0; k < loc->nlines && !lmask[l]; k++)
            lmask[l] = sec->functions[sec->lines[loc->line_off + k].function].name == sid;
    }
    for (uint32_t s = 0; s < sec->nstacks; s++)
        for (uint32_t k = sec->stack_off[s]; k < sec->stack_off[s + 1] && !smask[s]; k++)
            smask[s] = lmask[sec->stack_locs[k]];
    free(lmask);
    return 0;
}

/* The value of label @name_id (a string id, UINT32_MAX = absent) of series
 * @i, or NULL. */
static const char *series_label(const struct seg_section *sec, uint32_t i, uint32_t name_id)
{
    const uint32_t *lab = sec->series_labels + 2 * (size_t)sec->series_off[i];
    uint32_t nl = sec->series_off[i + 1] - sec->series_off[i];
    if (name_id == UINT32_MAX)
        return NULL;
    for (uint32_t j = 0; j < nl; j++)
        if (lab[2 * j] == name_id)
            return sec->strings[lab[2 * j + 1]];
    return NULL;
}

/* One (group, interval) cell of a section's evaluation: its intern key. */
struct cell {
    uint32_t group;
    uint32_t pad;
    int64_t t;
};

static int eval_rule(struct rule_eval *ev, uint32_t ri, const struct seg_section *sec,
                     const char *host)
{
    const struct rule *r = ev->rules[ri];
    const int64_t step = ev->interval_ms;
    uint32_t col = UINT32_MAX, gid[QUERY_MAX_GROUP_BY];
    char id[512];
    uint8_t *mask = NULL, *smask = NULL;
    uint32_t *group = NULL; /* per series: its group + 1, 0 = not yet known */
    int64_t *sums = NULL;
    size_t nsums = 0;
    struct intern groups = {0}, cells = {0};
    struct wbuf key = {0};
    int rc = -ENOMEM;

    for (uint32_t t = 0; t < sec->ntypes && col == UINT32_MAX; t++)
        if (seg_profile_type_id(sec, t, id, sizeof(id)) == 0 && strcmp(id, r->profile_type) == 0)
            col = t;
    if (col == UINT32_MAX || sec->nseries == 0)
        return 0;
    mask = malloc(sec->nseries);
    group = calloc(sec->nseries, sizeof(*group));
    if (!mask || !group)
        goto out;
    long matched = selector_match_section(r->sel, sec, sec->service, host, mask);
    if (matched < 0)
        goto out;
    if (matched == 0) {
        rc = 0;
        goto out;
    }
    if (r->function_name) {
        if (!(smask = malloc(sec->nstacks + 1)) || stacks_with(sec, r->function_name, smask))
            goto out;
    }
    for (size_t k = 0; k < r->ngroup; k++)
        gid[k] = string_id(sec, r->group_by[k]);
    for (uint64_t i = 0; i < sec->nsamples; i++) {
        uint32_t s = sec->sample_series[i], c;
        if (!mask[s])
            continue;
        if (!group[s]) {
            uint32_t g;
            key.len = 0;
            for (size_t k = 0; k < r->ngroup; k++) {
                const char *v = series_label(sec, s, gid[k]);
                if (!v && strcmp(r->group_by[k], "service_name") == 0)
                    v = sec->service;
                else if (!v && strcmp(r->group_by[k], "host_name") == 0)
                    v = host;
                query_group_key_append(&key, v ? v : "", k == 0);
            }
            if (key.err ||
                intern_add(&groups, key.len ? key.p : (const uint8_t *)"", key.len, &g) < 0)
                goto out;
            group[s] = g + 1;
        }
        /* the interval the sample was taken in, aligned to the step */
        int64_t t = sec->sample_time_ms[i];
        struct cell cl = {group[s] - 1, 0, t - ((t % step) + step) % step};
        if (intern_add(&cells, &cl, sizeof(cl), &c) < 0)
            goto out;
        if (c >= nsums) {
            size_t n = nsums ? nsums * 2 : 16;
            int64_t *v = realloc(sums, n * sizeof(*v));
            if (!v)
                goto out;
            memset(v + nsums, 0, (n - nsums) * sizeof(*v));
            sums = v;
            nsums = n;
        }
        /* a matching sample outside the filter still makes its cell (0) */
        if (!smask || smask[sec->sample_stack[i]])
            sums[c] += sec->sample_values[i * sec->ntypes + col];
    }
    ev->st.rows += sec->nsamples;
    for (uint32_t c = 0; c < cells.n; c++) {
        struct cell cl;
        uint32_t kl;
        memcpy(&cl, intern_get(&cells, c, NULL), sizeof(cl));
        if (cl.group >= groups.n || c >= nsums) /* cannot be: every cell has a group and a sum */
            goto out;
        const void *k = intern_get(&groups, cl.group, &kl);
        if (add_rec(ev, ri, cl.t, sums[c], k, kl))
            goto out;
    }
    rc = 0;
out:
    free(mask);
    free(group);
    free(sums);
    free(smask);
    wb_free(&key);
    intern_free(&groups);
    intern_free(&cells);
    return rc;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int rule_eval_section(struct rule_eval *ev, const struct seg_section *sec, const char *host,
                      uint64_t bytes)
{
    uint64_t t0 = cpu_ns();
    size_t mark = ev->n;
    int rc = 0;

    for (size_t i = 0; i < ev->nrules && !rc; i++)
        rc = eval_rule(ev, (uint32_t)i, sec, host ? host : "");
    if (rc) {
        rule_eval_truncate(ev, mark); /* a section counts whole or not at all */
        ev->st.errors++;
    }
    ev->st.sections++;
    ev->st.bytes += bytes;
    ev->st.ns += cpu_ns() - t0;
    return rc;
}

/* ---- results ------------------------------------------------------------ */

static const struct rule *const *sort_rules; /* qsort has no context argument */

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    int c = strcmp(sort_rules[x->rule]->metric_name, sort_rules[y->rule]->metric_name);
    if (c)
        return c;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    if (x->keylen != y->keylen || (c = memcmp(x->key, y->key, x->keylen)))
        return c ? c : x->keylen < y->keylen ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}

void rec_series_free(struct rec_series *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        for (size_t k = 0; k < s[i].nlabels; k++) {
            free(s[i].names[k]);
            free(s[i].values[k]);
        }
        free(s[i].names);
        free(s[i].values);
        free(s[i].t);
        free(s[i].v);
    }
    free(s);
}

/* The labels of (rule @r, group key @key), sorted by name. */
static int series_labels(const struct rule *r, const char *key, struct rec_series *o)
{
    char **vals = NULL;
    size_t cap = 1 + r->ngroup + r->next;

    if (r->ngroup && query_group_key_split(key, (uint32_t)r->ngroup, &vals))
        return -ENOMEM;
    o->names = calloc(cap, sizeof(char *));
    o->values = calloc(cap, sizeof(char *));
    if (!o->names || !o->values) {
        free(vals);
        return -ENOMEM;
    }
    const char *n[1 + QUERY_MAX_GROUP_BY + 32], *v[1 + QUERY_MAX_GROUP_BY + 32];
    size_t k = 0;
    n[k] = "__name__";
    v[k++] = r->metric_name;
    for (size_t i = 0; i < r->ngroup; i++)
        if (vals[i][0]) {
            n[k] = r->group_by[i];
            v[k++] = vals[i];
        }
    for (size_t i = 0; i < r->next; i++) {
        n[k] = r->ext_names[i];
        v[k++] = r->ext_values[i];
    }
    for (size_t i = 1; i < k; i++) /* insertion sort: a handful of labels */
        for (size_t j = i; j > 0 && strcmp(n[j - 1], n[j]) > 0; j--) {
            const char *tn = n[j], *tv = v[j];
            n[j] = n[j - 1];
            v[j] = v[j - 1];
            n[j - 1] = tn;
            v[j - 1] = tv;
        }
    int rc = 0;
    for (size_t i = 0; i < k; i++) {
        o->names[i] = strdup(n[i]);
        o->values[i] = strdup(v[i]);
        o->nlabels = i + 1;
        if (!o->names[i] || !o->values[i])
            rc = -ENOMEM;
    }
    free(vals);
    return rc;
}

int rule_eval_series(const struct rule_eval *ev, struct rec_series **out, size_t *nout)
{
    struct rec *r = NULL;
    struct rec_series *s = NULL;
    size_t n = ev->n, ns = 0;
    int rc = -ENOMEM;

    *out = NULL;
    *nout = 0;
    if (n == 0)
        return 0;
    if (!(r = malloc(n * sizeof(*r))) || !(s = calloc(n, sizeof(*s))))
        goto out;
    memcpy(r, ev->r, n * sizeof(*r)); /* keys shared with ev, not freed here */
    sort_rules = (const struct rule *const *)ev->rules;
    qsort(r, n, sizeof(*r), rec_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && r[j].rule == r[i].rule && r[j].keylen == r[i].keylen &&
               memcmp(r[j].key, r[i].key, r[i].keylen) == 0)
            j++;
        struct rec_series *o = &s[ns++];
        if (series_labels(ev->rules[r[i].rule], r[i].key, o) ||
            !(o->t = malloc((j - i) * sizeof(*o->t))) || !(o->v = malloc((j - i) * sizeof(*o->v))))
            goto out;
        for (size_t k = i; k < j; k++) {
            if (o->n && o->t[o->n - 1] == r[k].t) {
                o->v[o->n - 1] += (double)r[k].sum; /* flushes of one interval */
                continue;
            }
            o->t[o->n] = r[k].t;
            o->v[o->n++] = (double)r[k].sum;
        }
        i = j;
    }
    rc = 0;
    *out = s;
    *nout = ns;
    s = NULL;
out:
    rec_series_free(s, ns);
    free(r);
    return rc;
}

/* A label value in the text format: \, " and newline escaped. */
static void text_value(struct wbuf *b, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            wb_printf(b, "\\%c", *v);
        else if (*v == '\n')
            wb_bytes(b, "\\n", 2);
        else
            wb_bytes(b, v, 1);
    }
}

void rec_series_expose(const struct rec_series *s, size_t n, struct wbuf *out)
{
    const char *prev = NULL;

    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        bool first = true;
        if (s[i].n == 0)
            continue;
        for (size_t k = 0; k < s[i].nlabels && !name; k++)
            if (strcmp(s[i].names[k], "__name__") == 0)
                name = s[i].values[k];
        if (!name)
            continue;
        if (!prev || strcmp(prev, name) != 0)
            wb_printf(out, "# TYPE %s gauge\n", name);
        prev = name;
        wb_printf(out, "%s", name);
        for (size_t k = 0; k < s[i].nlabels; k++) {
            if (strcmp(s[i].names[k], "__name__") == 0)
                continue;
            wb_printf(out, "%s%s=\"", first ? "{" : ",", s[i].names[k]);
            text_value(out, s[i].values[k]);
            wb_bytes(out, "\"", 1);
            first = false;
        }
        wb_printf(out, "%s %.17g %" PRId64 "\n", first ? "" : "}", s[i].v[s[i].n - 1],
                  s[i].t[s[i].n - 1]);
    }
}
