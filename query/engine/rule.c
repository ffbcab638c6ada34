/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rule — see rule.h.
 */
#include "query/engine/rule.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/engine/query.h"

bool rule_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 64)
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* A Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool metric_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RULE_MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:") == n;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Parses every selector of @matchers and joins their matchers into one
 * selector (ANDed). 0, -EINVAL with @err, -ENOMEM. */
static int parse_matchers(char *const *matchers, size_t n, struct selector **out, char *err,
                          size_t errlen)
{
    struct selector *all = calloc(1, sizeof(*all));
    char e[256];
    int rc = 0;

    if (!all)
        return -ENOMEM;
    if (n == 0) {
        free(all);
        return fail(err, errlen, "matchers: empty (at least {__profile_type__=\"...\"})");
    }
    for (size_t i = 0; i < n && !rc; i++) {
        struct selector *s = NULL;
        if (!matchers[i] || !*matchers[i]) {
            rc = fail(err, errlen, "matchers[%zu]: empty", i);
            break;
        }
        rc = selector_parse(matchers[i], &s, e, sizeof(e));
        if (rc) {
            if (rc == -EINVAL)
                fail(err, errlen, "matchers[%zu]: %s", i, e);
            break;
        }
        if (all->n + s->n > SELECTOR_MAX_MATCHERS) {
            selector_free(s);
            rc = fail(err, errlen, "matchers: more than %d in all", SELECTOR_MAX_MATCHERS);
            break;
        }
        struct sel_matcher *m = realloc(all->m, (all->n + s->n + 1) * sizeof(*m));
        if (!m) {
            selector_free(s);
            rc = -ENOMEM;
            break;
        }
        all->m = m;
        if (s->n) /* "{}" has no matchers, and no array */
            memcpy(all->m + all->n, s->m, s->n * sizeof(*s->m)); /* moved: s owns none now */
        all->n += s->n;
        free(s->m);
        free(s);
    }
    if (rc) {
        selector_free(all);
        return rc;
    }
    *out = all;
    return 0;
}

/* Moves the __profile_type__ and __name__ matchers of @s past s->n and
 * checks them: exactly one __profile_type__, an equality on a valid id,
 * written into @type; __name__ must accept the id's name. */
static int split_special(struct selector *s, char *type, size_t len, char *err, size_t errlen)
{
    size_t k = 0, ntype = 0;
    const struct sel_matcher *tm = NULL;

    for (size_t i = 0; i < s->n; i++) {
        bool special =
            strcmp(s->m[i].name, "__profile_type__") == 0 || strcmp(s->m[i].name, "__name__") == 0;
        if (!special) {
            struct sel_matcher t = s->m[k];
            s->m[k++] = s->m[i];
            s->m[i] = t;
        }
    }
    for (size_t i = k; i < s->n; i++)
        if (strcmp(s->m[i].name, "__profile_type__") == 0) {
            ntype++;
            tm = &s->m[i];
        }
    size_t all = s->n;
    s->n = k;
    if (ntype != 1)
        return fail(err, errlen,
                    "matchers: need exactly one __profile_type__=\"<id>\" matcher, found %zu",
                    ntype);
    if (tm->op != SEL_EQ)
        return fail(err, errlen,
                    "matchers: __profile_type__ must be matched with =, not a regex "
                    "or a negation");
    if (!query_profile_type_valid(tm->value) || strlen(tm->value) >= len)
        return fail(err, errlen,
                    "matchers: __profile_type__ '%.128s' is not a profile type id "
                    "(name:sample_type:sample_unit:period_type:period_unit)",
                    tm->value);
    snprintf(type, len, "%s", tm->value);
    char name[128];
    size_t nl = strcspn(type, ":");
    snprintf(name, sizeof(name), "%.*s", (int)nl, type);
    for (size_t i = k; i < all; i++)
        if (strcmp(s->m[i].name, "__name__") == 0 && !sel_matcher_match(&s->m[i], name))
            return fail(err, errlen, "matchers: __name__ never matches profile type '%s'", type);
    return 0;
}

void rule_free(struct rule *r)
{
    if (!r)
        return;
    if (r->sel) {
        r->sel->n = r->sel_all;
        selector_free(r->sel);
    }
    for (size_t i = 0; i < r->ngroup; i++)
        free(r->group_by[i]);
    for (size_t i = 0; i < r->next; i++) {
        free(r->ext_names[i]);
        free(r->ext_values[i]);
    }
    free(r->group_by);
    free(r->ext_names);
    free(r->ext_values);
    free(r->id);
    free(r->metric_name);
    free(r->profile_type);
    free(r->function_name);
    free(r);
}

static bool label_ok(const char *name)
{
    return query_label_name_valid(name) && strncmp(name, "__", 2) != 0;
}

int rule_compile(const Settings__V1__RecordingRule *m, struct rule **out, char *err, size_t errlen)
{
    struct rule *r = calloc(1, sizeof(*r));
    char type[512];
    int rc;

    if (!r)
        return -ENOMEM;
    const char *mn = m->metric_name ? m->metric_name : "";
    if (strncmp(mn, RULE_METRIC_PREFIX, strlen(RULE_METRIC_PREFIX)) != 0) {
        rc =
            fail(err, errlen, "metric_name: '%.128s' must start with '%s'", mn, RULE_METRIC_PREFIX);
        goto out;
    }
    if (!metric_name_valid(mn) || strlen(mn) == strlen(RULE_METRIC_PREFIX)) {
        rc = fail(err, errlen,
                  "metric_name: '%.128s' is not a Prometheus metric name "
                  "([a-zA-Z_:][a-zA-Z0-9_:]*, at most %d bytes, something after the prefix)",
                  mn, RULE_MAX_NAME);
        goto out;
    }
    if ((rc = parse_matchers(m->matchers, m->n_matchers, &r->sel, err, errlen)) || !r->sel)
        goto out;
    r->sel_all = r->sel->n;
    if ((rc = split_special(r->sel, type, sizeof(type), err, errlen)))
        goto out;
    if (m->n_group_by > QUERY_MAX_GROUP_BY) {
        rc = fail(err, errlen, "group_by: %zu labels, at most %d", m->n_group_by,
                  QUERY_MAX_GROUP_BY);
        goto out;
    }
    for (size_t i = 0; i < m->n_group_by; i++) {
        const char *g = m->group_by[i];
        if (!g) {
            rc = fail(err, errlen, "group_by[%zu]: missing", i);
            goto out;
        }
        if (!label_ok(g) || strlen(g) > RULE_MAX_NAME) {
            rc = fail(err, errlen,
                      "group_by[%zu]: '%.128s' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, "
                      "not starting with __)",
                      i, g);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->group_by[j], g) == 0) {
                rc = fail(err, errlen, "group_by: '%s' given twice", g);
                goto out;
            }
    }
    if (m->n_external_labels > 32) {
        rc = fail(err, errlen, "external_labels: %zu, at most 32", m->n_external_labels);
        goto out;
    }
    for (size_t i = 0; i < m->n_external_labels; i++) {
        const Types__V1__LabelPair *lp = m->external_labels[i];
        if (!lp || !lp->name || !lp->value) {
            rc = fail(err, errlen, "external_labels[%zu]: missing", i);
            goto out;
        }
        const char *n = lp->name, *v = lp->value;
        if (!label_ok(n) || strlen(n) > RULE_MAX_NAME) {
            rc = fail(err, errlen, "external_labels[%zu]: '%.128s' is not a label name", i, n);
            goto out;
        }
        if (!*v || strlen(v) > 1024) {
            rc = fail(err, errlen, "external_labels[%zu]: %s's value is empty or over 1024 bytes",
                      i, n);
            goto out;
        }
        for (size_t j = 0; j < m->n_group_by; j++)
            if (strcmp(m->group_by[j], n) == 0) {
                rc = fail(err, errlen, "external_labels[%zu]: '%s' is also a group_by label", i, n);
                goto out;
            }
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->external_labels[j]->name, n) == 0) {
                rc = fail(err, errlen, "external_labels: '%s' given twice", n);
                goto out;
            }
    }
    const char *fn = NULL;
    if (m->stacktrace_filter && m->stacktrace_filter->function_name) {
        fn = m->stacktrace_filter->function_name->function_name;
        if (!fn || !*fn || strlen(fn) > 4096) {
            rc = fail(err, errlen, "stacktrace_filter.function_name: empty or over 4096 bytes");
            goto out;
        }
        if (m->stacktrace_filter->function_name->metric_type != SETTINGS__V1__METRIC_TYPE__TOTAL) {
            rc = fail(err, errlen, "stacktrace_filter.function_name.metric_type: only TOTAL");
            goto out;
        }
    }

    rc = -ENOMEM;
    r->id = strdup(m->id ? m->id : "");
    r->metric_name = strdup(mn);
    r->profile_type = strdup(type);
    r->function_name = fn ? strdup(fn) : NULL;
    r->generation = m->generation;
    r->group_by = calloc(m->n_group_by + 1, sizeof(char *));
    r->ext_names = calloc(m->n_external_labels + 1, sizeof(char *));
    r->ext_values = calloc(m->n_external_labels + 1, sizeof(char *));
    if (!r->id || !r->metric_name || !r->profile_type || (fn && !r->function_name) ||
        !r->group_by || !r->ext_names || !r->ext_values)
        goto out;
    for (; r->ngroup < m->n_group_by; r->ngroup++)
        if (!(r->group_by[r->ngroup] = strdup(m->group_by[r->ngroup])))
            goto out;
    for (size_t i = 0; i < m->n_external_labels; i++) {
        /* sorted by name on the way in: series labels go out sorted */
        const Types__V1__LabelPair *lp = m->external_labels[i];
        size_t at = r->next;
        while (at > 0 && strcmp(r->ext_names[at - 1], lp->name) > 0)
            at--;
        char *n = strdup(lp->name), *v = strdup(lp->value);
        if (!n || !v) {
            free(n);
            free(v);
            goto out;
        }
        memmove(r->ext_names + at + 1, r->ext_names + at, (r->next - at) * sizeof(char *));
        memmove(r->ext_values + at + 1, r->ext_values + at, (r->next - at) * sizeof(char *));
        r->ext_names[at] = n;
        r->ext_values[at] = v;
        r->next++;
    }
    rc = 0;
out:
    if (rc) {
        rule_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int rule_decode(const uint8_t *buf, size_t len, struct rule **out,
                Settings__V1__RecordingRule **msg, char *err, size_t errlen)
{
    Settings__V1__RecordingRule *m;
    int rc;

    if (msg)
        *msg = NULL;
    if (len > RULE_MAX_OBJECT) {
        snprintf(err, errlen, "%zu bytes, more than a rule's %d", len, RULE_MAX_OBJECT);
        return -EBADMSG;
    }
    m = settings__v1__recording_rule__unpack(NULL, len, len ? buf : (const uint8_t *)"");
    if (!m) {
        snprintf(err, errlen, "not a RecordingRule protobuf message");
        return -EBADMSG;
    }
    if (!m->id || !rule_id_valid(m->id)) {
        snprintf(err, errlen, "id: '%.64s' is not a rule id ([A-Za-z0-9_-]{1,64})",
                 m->id ? m->id : "");
        rc = -EINVAL;
    } else {
        rc = rule_compile(m, out, err, errlen);
    }
    if (rc || !msg)
        settings__v1__recording_rule__free_unpacked(m, NULL);
    else
        *msg = m;
    return rc;
}

int rule_key(char *buf, size_t len, const char *tenant, const char *id)
{
    int n = id ? snprintf(buf, len, "%s/rules/%s.rule", tenant, id)
               : snprintf(buf, len, "%s/rules/", tenant);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

void rules_free(struct rule **r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rule_free(r[i]);
    free(r);
}

void rule_msgs_free(Settings__V1__RecordingRule **m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        settings__v1__recording_rule__free_unpacked(m[i], NULL);
    free(m);
}

int rules_load(struct store *st, const char *tenant, struct rule ***out, size_t *n, unsigned *bad,
               void (*on_bad)(const char *msg, void *arg), void *arg)
{
    return rules_load_msgs(st, tenant, out, NULL, n, bad, on_bad, arg);
}

int rules_load_msgs(struct store *st, const char *tenant, struct rule ***out,
                    Settings__V1__RecordingRule ***msgs, size_t *n, unsigned *bad,
                    void (*on_bad)(const char *msg, void *arg), void *arg)
{
    struct store_list l = {0};
    struct rule **v = NULL;
    Settings__V1__RecordingRule **mv = NULL;
    char prefix[512], msg[1024], err[512];
    size_t k = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (msgs)
        *msgs = NULL;
    if (rule_key(prefix, sizeof(prefix), tenant, NULL) < 0)
        return -ENAMETOOLONG;
    rc = store_list(st, prefix, &l);
    if (rc)
        return rc == -ENOENT ? 0 : rc;
    v = calloc(l.n + 1, sizeof(*v));
    mv = calloc(l.n + 1, sizeof(*mv));
    if (!v || !mv) {
        free(v);
        free(mv);
        store_list_free(&l);
        return -ENOMEM;
    }
    for (size_t i = 0; i < l.n && k < RULE_MAX_RULES; i++) {
        size_t kl = strlen(l.keys[i]);
        if (kl < 5 || strcmp(l.keys[i] + kl - 5, ".rule") != 0)
            continue;
        struct store_buf b = {0};
        struct rule *r = NULL;
        Settings__V1__RecordingRule *m = NULL;
        if (l.sizes && l.sizes[i] > RULE_MAX_OBJECT) {
            snprintf(err, sizeof(err), "%llu bytes, more than a rule's %d",
                     (unsigned long long)l.sizes[i], RULE_MAX_OBJECT);
            rc = -EBADMSG;
        } else {
            rc = store_get(st, l.keys[i], 0, 0, &b);
            if (rc == -ENOENT) /* deleted since the listing */
                continue;
            if (rc == -ENOMEM)
                break;
            if (rc)
                snprintf(err, sizeof(err), "%s", st->err);
            else
                rc = rule_decode(b.data, b.len, &r, &m, err, sizeof(err));
            free(b.data);
        }
        if (rc == 0 && !r)
            rc = -ENOMEM;
        if (rc == -ENOMEM)
            break;
        char want[512];
        if (rc == 0 && (rule_key(want, sizeof(want), tenant, r->id ? r->id : "") < 0 ||
                        strcmp(want, l.keys[i]) != 0)) {
            snprintf(err, sizeof(err), "holds the rule '%.64s', not its key's", r->id);
            rule_free(r);
            settings__v1__recording_rule__free_unpacked(m, NULL);
            rc = -EINVAL;
        }
        if (rc) {
            (*bad)++;
            if (on_bad) {
                snprintf(msg, sizeof(msg), "%s: %s", l.keys[i], err);
                on_bad(msg, arg);
            }
            rc = 0;
            continue;
        }
        mv[k] = m;
        v[k++] = r;
    }
    store_list_free(&l);
    if (rc == -ENOMEM) {
        rules_free(v, k);
        rule_msgs_free(mv, k);
        return rc;
    }
    *out = v;
    *n = k;
    if (msgs)
        *msgs = mv;
    else
        rule_msgs_free(mv, k);
    return 0;
}

int rule_recorded_key(char *buf, size_t len, const char *tenant)
{
    int n = snprintf(buf, len, "%s/recorded/latest.prom", tenant);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

uint64_t rule_recorded_counter(const char *buf, size_t len, const char *name)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i < len;) {
        const char *line = buf + i;
        const char *nlp = memchr(line, '\n', len - i);
        size_t ll = nlp ? (size_t)(nlp - line) : len - i;
        i += ll + 1;
        if (ll <= nl + 1 || memcmp(line, name, nl) != 0 || line[nl] != ' ')
            continue;
        uint64_t v = 0;
        size_t k = nl + 1;
        if (k >= ll || line[k] < '0' || line[k] > '9')
            return 0;
        for (; k < ll && line[k] >= '0' && line[k] <= '9'; k++) {
            if (v > (UINT64_MAX - 9) / 10)
                return 0;
            v = v * 10 + (uint64_t)(line[k] - '0');
        }
        return k == ll ? v : 0;
    }
    return 0;
}
