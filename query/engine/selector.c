/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/selector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/segment.h"
#include "common/errmsg.h"
#include "common/labels.h"

/* Regexes are screened by label_regex_too_costly (common/labels.h), the same
 * screen relabel rules get, before regcomp sees them. */
#define REGEX_MAX_LEN 1024

/* Compiles ^(@re)$ (label_regex_compile, which relabel rules use too). */
static int compile_anchored(const char *re, regex_t *out, size_t off, char *err, size_t errlen)
{
    char why[128];
    int rc;

    if (strlen(re) > REGEX_MAX_LEN)
        return fail_einval(err, errlen, "regex at offset %zu longer than %d bytes", off,
                           REGEX_MAX_LEN);
    rc = label_regex_compile(re, out, why, sizeof(why));
    if (rc == -EINVAL)
        errmsg(err, errlen, "bad regex at offset %zu: %s", off, why);
    return rc;
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static void skip_ws(const char *s, size_t *i)
{
    while (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r')
        (*i)++;
}

void selector_free(struct selector *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->m[i].name);
        free(s->m[i].value);
        if (s->m[i].has_re)
            regfree(&s->m[i].re);
    }
    free(s->m);
    free(s);
}

/* Parses a double-quoted string at s[*i] into a malloc'd *out. */
static int parse_string(const char *s, size_t *i, char **out, char *err, size_t errlen)
{
    size_t start = *i, n = 0;
    char *v;

    if (s[*i] != '"')
        return fail_einval(err, errlen, "expected '\"' to open the value at offset %zu", *i);
    v = malloc(strlen(s + *i) + 1);
    if (!v)
        return -ENOMEM;
    (*i)++;
    for (;;) {
        char c = s[*i];
        if (c == '\0') {
            free(v);
            return fail_einval(err, errlen, "unterminated string starting at offset %zu", start);
        }
        if (c == '"')
            break;
        if (c == '\\') {
            char e = s[*i + 1];
            if (e == '"' || e == '\\')
                v[n++] = e;
            else if (e == 'n')
                v[n++] = '\n';
            else if (e == 't')
                v[n++] = '\t';
            else {
                /* Keep other escapes verbatim so regexes like "a\.b" read
                 * the way users write them in Prometheus. */
                if (e == '\0') {
                    free(v);
                    return fail_einval(err, errlen, "unterminated string starting at offset %zu",
                                       start);
                }
                v[n++] = '\\';
                v[n++] = e;
            }
            *i += 2;
            continue;
        }
        if ((unsigned char)c < 0x20 && c != '\t') {
            free(v);
            return fail_einval(err, errlen, "control character in string at offset %zu", *i);
        }
        v[n++] = c;
        (*i)++;
    }
    (*i)++;
    v[n] = '\0';
    *out = v;
    return 0;
}

int selector_parse(const char *text, struct selector **out, char *err, size_t errlen)
{
    struct selector *sel;
    size_t i = 0;
    int rc;

    *out = NULL;
    if (!text)
        text = "";
    if (strlen(text) > SELECTOR_MAX_LEN)
        return fail_einval(err, errlen, "longer than %d bytes", SELECTOR_MAX_LEN);
    sel = calloc(1, sizeof(*sel));
    if (!sel)
        return -ENOMEM;
    skip_ws(text, &i);
    if (text[i] == '\0') {
        *out = sel;
        return 0;
    }
    if (text[i] != '{') {
        rc = fail_einval(err, errlen, "expected '{' at offset %zu", i);
        goto bad;
    }
    i++;
    for (;;) {
        struct sel_matcher m = {0};
        size_t name_at, val_at;

        skip_ws(text, &i);
        if (text[i] == '}') {
            i++;
            break;
        }
        if (!is_name_start(text[i])) {
            rc = text[i] ? fail_einval(err, errlen, "expected a label name or '}' at offset %zu", i)
                         : fail_einval(err, errlen, "expected '}' at offset %zu (end of input)", i);
            goto bad;
        }
        if (sel->n == SELECTOR_MAX_MATCHERS) {
            rc = fail_einval(err, errlen, "more than %d matchers at offset %zu",
                             SELECTOR_MAX_MATCHERS, i);
            goto bad;
        }
        name_at = i;
        while (is_name_char(text[i]))
            i++;
        skip_ws(text, &i);
        if (text[i] == '=' && text[i + 1] == '~') {
            m.op = SEL_RE;
            i += 2;
        } else if (text[i] == '!' && text[i + 1] == '~') {
            m.op = SEL_NRE;
            i += 2;
        } else if (text[i] == '!' && text[i + 1] == '=') {
            m.op = SEL_NE;
            i += 2;
        } else if (text[i] == '=') {
            m.op = SEL_EQ;
            i += 1;
        } else {
            rc = fail_einval(err, errlen,
                             "expected '=', '!=', '=~' or '!~' after label name at offset %zu", i);
            goto bad;
        }
        skip_ws(text, &i);
        val_at = i;
        /* Reserve the slot first so everything parsed is freed on error. */
        struct sel_matcher *nm = realloc(sel->m, (sel->n + 1) * sizeof(*nm));
        if (!nm) {
            rc = -ENOMEM;
            goto bad;
        }
        sel->m = nm;
        sel->m[sel->n] = m;
        struct sel_matcher *cur = &sel->m[sel->n++];
        size_t nl = name_at;
        while (is_name_char(text[nl]))
            nl++;
        cur->name = strndup(text + name_at, nl - name_at);
        if (!cur->name) {
            rc = -ENOMEM;
            goto bad;
        }
        rc = parse_string(text, &i, &cur->value, err, errlen);
        if (rc)
            goto bad;
        if (cur->op == SEL_RE || cur->op == SEL_NRE) {
            rc = compile_anchored(cur->value, &cur->re, val_at, err, errlen);
            if (rc)
                goto bad;
            cur->has_re = true;
        }
        skip_ws(text, &i);
        if (text[i] == ',') {
            i++;
            continue;
        }
        if (text[i] == '}') {
            i++;
            break;
        }
        rc = fail_einval(err, errlen, "expected ',' or '}' at offset %zu%s", i,
                         text[i] ? "" : " (end of input)");
        goto bad;
    }
    skip_ws(text, &i);
    if (text[i] != '\0') {
        rc = fail_einval(err, errlen, "unexpected text after '}' at offset %zu", i);
        goto bad;
    }
    *out = sel;
    return 0;
bad:
    selector_free(sel);
    return rc;
}

bool sel_matcher_match(const struct sel_matcher *m, const char *value)
{
    if (!value)
        value = "";
    switch (m->op) {
    case SEL_EQ:
        return strcmp(value, m->value) == 0;
    case SEL_NE:
        return strcmp(value, m->value) != 0;
    case SEL_RE:
        return regexec(&m->re, value, 0, NULL, 0) == 0;
    case SEL_NRE:
        return regexec(&m->re, value, 0, NULL, 0) != 0;
    }
    return false;
}

const struct sel_matcher *selector_find(const struct selector *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->m[i].name, name) == 0)
            return &s->m[i];
    return NULL;
}

bool selector_match_labels(const struct selector *s, const char *const *names,
                           const char *const *values, size_t n)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *v = NULL;
        for (size_t j = 0; j < n; j++)
            if (strcmp(names[j], s->m[i].name) == 0) {
                v = values[j];
                break;
            }
        if (!sel_matcher_match(&s->m[i], v))
            return false;
    }
    return true;
}

long selector_match_section(const struct selector *s, const struct seg_section *sec,
                            const char *service, const char *host, uint8_t *mask)
{
    long matched = 0;
    uint32_t *name_id;
    int8_t *memo; /* per (matcher, string id): -1 unknown, 0/1 known */
    int8_t *missing;

    if (s->n == 0) {
        memset(mask, 1, sec->nseries);
        return (long)sec->nseries;
    }
    name_id = malloc(s->n * sizeof(*name_id));
    missing = malloc(s->n);
    memo = malloc((size_t)s->n * sec->nstrings);
    if (!name_id || !memo || !missing) {
        free(name_id);
        free(memo);
        free(missing);
        return -ENOMEM;
    }
    memset(memo, -1, (size_t)s->n * sec->nstrings);
    for (size_t k = 0; k < s->n; k++) {
        const char *dflt = NULL;
        name_id[k] = UINT32_MAX;
        for (uint32_t j = 1; j < sec->nstrings; j++)
            if (strcmp(sec->strings[j], s->m[k].name) == 0) {
                name_id[k] = j;
                break;
            }
        if (strcmp(s->m[k].name, "service_name") == 0)
            dflt = service;
        else if (strcmp(s->m[k].name, "host_name") == 0)
            dflt = host;
        missing[k] = (int8_t)sel_matcher_match(&s->m[k], dflt);
    }
    for (uint32_t i = 0; i < sec->nseries; i++) {
        const uint32_t *lab = sec->series_labels + 2 * (size_t)sec->series_off[i];
        uint32_t nl = sec->series_off[i + 1] - sec->series_off[i];
        bool ok = true;

        for (size_t k = 0; k < s->n && ok; k++) {
            uint32_t v = UINT32_MAX;
            if (name_id[k] != UINT32_MAX)
                for (uint32_t j = 0; j < nl; j++)
                    if (lab[2 * j] == name_id[k]) {
                        v = lab[2 * j + 1];
                        break;
                    }
            if (v == UINT32_MAX) {
                ok = missing[k];
                continue;
            }
            int8_t *r = &memo[k * sec->nstrings + v];
            if (*r < 0)
                *r = (int8_t)sel_matcher_match(&s->m[k], sec->strings[v]);
            ok = *r;
        }
        mask[i] = ok;
        matched += ok;
    }
    free(name_id);
    free(memo);
    free(missing);
    return matched;
}
