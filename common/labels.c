/* SPDX-License-Identifier: Apache-2.0 */
/*
 * labels — see labels.h. Label sets are tiny (fewer than ten pairs), so a
 * sorted array with binary search beats any hash table; relabel rules keep
 * their compiled regex.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "common/errmsg.h"
#include "common/hash.h"

/* ---- label_set ---------------------------------------------------------- */

/* Index of @name, or -(insertion point) - 1. */
static long ls_find(const struct label_set *ls, const char *name)
{
    size_t lo = 0, hi = ls->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ls->v[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

int label_set_put(struct label_set *ls, const char *name, const char *value)
{
    long i = ls_find(ls, name);
    char *v = strdup(value);

    if (!v)
        return -ENOMEM;
    if (i >= 0) {
        free(ls->v[i].value);
        ls->v[i].value = v;
        return 0;
    }
    size_t at = (size_t)(-i - 1);
    char *n = strdup(name);
    if (!n) {
        free(v);
        return -ENOMEM;
    }
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 8;
        struct label *nv = realloc(ls->v, cap * sizeof(*nv));
        if (!nv) {
            free(n);
            free(v);
            return -ENOMEM;
        }
        ls->v = nv;
        ls->cap = cap;
    }
    memmove(&ls->v[at + 1], &ls->v[at], (ls->n - at) * sizeof(*ls->v));
    ls->v[at].name = n;
    ls->v[at].value = v;
    ls->n++;
    return 0;
}

const char *label_set_get(const struct label_set *ls, const char *name)
{
    long i = ls_find(ls, name);

    return i >= 0 ? ls->v[i].value : NULL;
}

static void ls_remove_at(struct label_set *ls, size_t i)
{
    free(ls->v[i].name);
    free(ls->v[i].value);
    memmove(&ls->v[i], &ls->v[i + 1], (ls->n - i - 1) * sizeof(*ls->v));
    ls->n--;
}

void label_set_del(struct label_set *ls, const char *name)
{
    long i = ls_find(ls, name);

    if (i >= 0)
        ls_remove_at(ls, (size_t)i);
}

int label_set_copy(struct label_set *dst, const struct label_set *src)
{
    if (src->n == 0)
        return 0;
    dst->v = calloc(src->n, sizeof(*dst->v));
    if (!dst->v)
        return -ENOMEM;
    dst->cap = src->n;
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].name = strdup(src->v[i].name);
        dst->v[i].value = strdup(src->v[i].value);
        dst->n++;
        if (!dst->v[i].name || !dst->v[i].value) {
            label_set_clear(dst);
            return -ENOMEM;
        }
    }
    return 0;
}

void label_set_clear(struct label_set *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        free(ls->v[i].name);
        free(ls->v[i].value);
    }
    free(ls->v);
    ls->v = NULL;
    ls->n = ls->cap = 0;
}

uint64_t label_set_hash(const struct label_set *ls)
{
    uint64_t h = FNV64_OFFSET;

    /* Each string with its terminating NUL, which separates fields: no
     * string contains one, so {"ab","c"} and {"a","bc"} hash differently. */
    for (size_t i = 0; i < ls->n; i++) {
        h = hash_fnv1a(h, ls->v[i].name, strlen(ls->v[i].name) + 1);
        h = hash_fnv1a(h, ls->v[i].value, strlen(ls->v[i].value) + 1);
    }
    return h;
}

bool label_set_equal(const struct label_set *a, const struct label_set *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].name, b->v[i].name) || strcmp(a->v[i].value, b->v[i].value))
            return false;
    return true;
}

/* ---- relabel rules ------------------------------------------------------ */

enum relabel_action { RL_KEEP, RL_DROP, RL_REPLACE, RL_LABELDROP, RL_LABELKEEP };

static const char *const action_names[] = {
    [RL_KEEP] = "keep",           [RL_DROP] = "drop",           [RL_REPLACE] = "replace",
    [RL_LABELDROP] = "labeldrop", [RL_LABELKEEP] = "labelkeep",
};

struct relabel_rule {
    enum relabel_action action;
    char *source; /* keep/drop/replace */
    char *target; /* replace */
    char *replacement;
    regex_t re; /* ^(REGEX)$ */
};

struct relabel_rules {
    struct relabel_rule *v;
    size_t n, cap;
};

/* Long enough for any sane rule; bounds regcomp's work on hostile configs. */
#define RELABEL_MAX_SPEC 4096

struct relabel_rules *relabel_rules_new(void)
{
    return calloc(1, sizeof(struct relabel_rules));
}

static void rule_free(struct relabel_rule *r)
{
    free(r->source);
    free(r->target);
    free(r->replacement);
    regfree(&r->re);
}

void relabel_rules_free(struct relabel_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        rule_free(&r->v[i]);
    free(r->v);
    free(r);
}

size_t relabel_rules_count(const struct relabel_rules *r)
{
    return r ? r->n : 0;
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Length of the label name at @s (0 when @s does not start with one). */
static size_t name_len(const char *s, size_t max)
{
    size_t i = 0;

    if (max == 0 || !is_name_start(s[0]))
        return 0;
    while (i < max && is_name_char(s[i]))
        i++;
    return i;
}

static bool valid_name(const char *s, size_t len)
{
    return len > 0 && name_len(s, len) == len;
}

/*
 * glibc's regcomp duplicates the parse tree for every repetition ("a+" is
 * "aa*", "a{3}" is "aaa"), so stacked or nested repetitions cost memory
 * exponentially: "k+++++..." or "((a{99}){99}){99}" can take gigabytes. This
 * estimates the expanded size and rejects what would blow up. A bound's
 * optional part is worse still: "a{0,m}" becomes m nested optional groups
 * whose epsilon closures cost time quadratic in m ("a{0,9999}" takes seconds),
 * so counts above 1000 are refused, as RE2 refuses them. Back-references
 * are rejected too: they make matching exponential in time (and RE2, which
 * Prometheus uses, has none either).
 */
#define REGEX_MAX_COST  10000
#define REGEX_MAX_DEPTH 32
#define REGEX_MAX_COUNT 1000

const char *label_regex_too_costly(const char *re, size_t len)
{
    uint64_t sum[REGEX_MAX_DEPTH];
    uint64_t last = 0; /* cost of the item a quantifier would repeat */
    int depth = 0;
    bool prev_quant = false;

    sum[0] = 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t atom = 1, mult = 1;
        bool is_atom = true, quant = false;

        switch (re[i]) {
        case '\\':
            if (i + 1 < len && re[i + 1] >= '1' && re[i + 1] <= '9')
                return "back-references are not supported";
            i++;
            break;
        case '[': {
            size_t j = i + 1;
            if (j < len && re[j] == '^')
                j++;
            if (j < len && re[j] == ']')
                j++;
            while (j < len && re[j] != ']') {
                if (re[j] == '[' && j + 1 < len &&
                    (re[j + 1] == ':' || re[j + 1] == '.' || re[j + 1] == '=')) {
                    char cl = re[j + 1];
                    j += 2;
                    while (j + 1 < len && !(re[j] == cl && re[j + 1] == ']'))
                        j++;
                    j++;
                }
                j++;
            }
            i = j;
            break;
        }
        case '(':
            if (depth + 1 >= REGEX_MAX_DEPTH)
                return "too deeply nested";
            sum[++depth] = 0;
            last = 0;
            is_atom = false;
            break;
        case ')':
            if (depth > 0)
                atom = sum[depth--] + 1;
            break;
        case '|':
            last = 0;
            is_atom = false;
            break;
        case '+':
        case '*':
        case '?':
            /* '*' and '?' copy nothing but add epsilon paths that regcomp
             * closes over: counted like '+' to bound nesting. */
            mult = 2;
            is_atom = false;
            quant = true;
            break;
        case '{': {
            size_t j = i + 1;
            uint64_t n = 0, m = 0;
            bool comma = false, m_digits = false;
            while (j < len && re[j] >= '0' && re[j] <= '9' && n < 100000)
                n = n * 10 + (uint64_t)(re[j++] - '0');
            if (j < len && re[j] == ',') {
                comma = true;
                j++;
                while (j < len && re[j] >= '0' && re[j] <= '9' && m < 100000) {
                    m = m * 10 + (uint64_t)(re[j++] - '0');
                    m_digits = true;
                }
            }
            if (j >= len || re[j] != '}')
                break; /* not a bound: a literal '{' */
            if (n > REGEX_MAX_COUNT || m > REGEX_MAX_COUNT)
                return "repetition count above 1000";
            i = j;
            /* "{n,}" is n copies plus a star */
            mult = comma && m_digits ? m : n + (comma ? 1 : 0);
            if (mult == 0)
                mult = 1;
            is_atom = false;
            quant = true;
            break;
        }
        default:
            break;
        }
        /* "a*+", "a+{3}": undefined in POSIX, and glibc's cost explodes. */
        if (quant && prev_quant)
            return "repeated quantifier";
        prev_quant = quant;
        if (is_atom) {
            sum[depth] += atom;
            last = atom;
        } else if (mult > 1) {
            sum[depth] -= last;
            last *= mult;
            sum[depth] += last;
        }
        if (last > REGEX_MAX_COST || sum[depth] > REGEX_MAX_COST)
            return "too complex (nested or stacked repetitions)";
    }
    return NULL;
}

/* Compiles ^(@re)$ into @out. The bare expression is compiled first so an
 * unbalanced ")" cannot close the wrapper's group and change the anchoring. */
int label_regex_compile(const char *re, regex_t *out, char *why, size_t whylen)
{
    const char *costly = label_regex_too_costly(re, strlen(re));
    regex_t bare;
    size_t nsub;
    char *w;
    int rc;

    if (costly) {
        snprintf(why, whylen, "%s", costly);
        return -EINVAL;
    }
    rc = regcomp(&bare, re, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, &bare, why, whylen);
        return -EINVAL;
    }
    nsub = bare.re_nsub;
    regfree(&bare);
    if (asprintf(&w, "^(%s)$", re) < 0)
        return -ENOMEM;
    rc = regcomp(out, w, REG_EXTENDED);
    free(w);
    if (rc != 0 || out->re_nsub != nsub + 1) {
        if (rc == 0)
            regfree(out);
        snprintf(why, whylen, "unbalanced parentheses");
        return -EINVAL;
    }
    return 0;
}

/* label_regex_compile of @re[0..len), its refusal said in @err. */
static int compile_anchored(const char *re, size_t len, regex_t *out, char *err, size_t errlen)
{
    char why[128];
    char *s = strndup(re, len);
    int rc;

    if (!s)
        return -ENOMEM;
    rc = label_regex_compile(s, out, why, sizeof(why));
    if (rc == -EINVAL)
        errmsg(err, errlen, "bad regex '%s': %s", s, why);
    free(s);
    return rc;
}

/* Highest $N used in @repl, or -1. */
static int max_group_ref(const char *repl)
{
    int max = -1;

    for (const char *p = repl; *p; p++) {
        if (*p != '$')
            continue;
        if (p[1] == '$') {
            p++;
        } else if (p[1] >= '0' && p[1] <= '9') {
            if (p[1] - '0' > max)
                max = p[1] - '0';
            p++;
        }
    }
    return max;
}

/*
 * "SRC=REGEX:TARGET=REPL": the REGEX/TARGET boundary is the first ':' that is
 * followed by a label name and '='. Regexes rarely contain ":name=", and this
 * leaves REPL free to contain anything (":", "=", "$1:$2").
 */
static const char *find_target(const char *s)
{
    for (const char *p = strchr(s, ':'); p; p = strchr(p + 1, ':')) {
        size_t n = name_len(p + 1, strlen(p + 1));
        if (n && p[1 + n] == '=')
            return p;
    }
    return NULL;
}

int relabel_rules_add(struct relabel_rules *r, const char *spec, char *err, size_t errlen)
{
    struct relabel_rule rule = {0};
    const char *colon, *body, *eq, *re, *tgt;
    size_t alen, re_len;
    int i, rc;

    if (err && errlen)
        err[0] = '\0';
    if (!r || !spec)
        return fail_einval(err, errlen, "no rule");
    if (strlen(spec) > RELABEL_MAX_SPEC)
        return fail_einval(err, errlen, "rule longer than %d bytes", RELABEL_MAX_SPEC);
    colon = strchr(spec, ':');
    alen = colon ? (size_t)(colon - spec) : strlen(spec);
    for (i = 0; i < (int)(sizeof(action_names) / sizeof(action_names[0])); i++)
        if (strlen(action_names[i]) == alen && strncmp(spec, action_names[i], alen) == 0)
            break;
    if (i == (int)(sizeof(action_names) / sizeof(action_names[0])))
        return fail_einval(err, errlen,
                           "unknown action '%.*s' (expected keep, drop, replace, labeldrop or "
                           "labelkeep)",
                           (int)(alen > 64 ? 64 : alen), spec);
    if (!colon)
        return fail_einval(err, errlen, "missing ':' after action '%s'", action_names[i]);
    rule.action = (enum relabel_action)i;
    body = colon + 1;

    if (rule.action == RL_LABELDROP || rule.action == RL_LABELKEEP) {
        re = body;
        re_len = strlen(body);
    } else {
        eq = strchr(body, '=');
        if (!eq)
            return fail_einval(err, errlen, "%s needs NAME=REGEX", action_names[i]);
        if (!valid_name(body, (size_t)(eq - body)))
            return fail_einval(err, errlen, "bad label name '%.*s'", (int)(eq - body), body);
        re = eq + 1;
        re_len = strlen(re);
        if (rule.action == RL_REPLACE) {
            tgt = find_target(re);
            if (!tgt)
                return fail_einval(err, errlen, "replace needs SRC=REGEX:TARGET=REPLACEMENT");
            re_len = (size_t)(tgt - re);
            size_t tn = name_len(tgt + 1, strlen(tgt + 1));
            rule.target = strndup(tgt + 1, tn);
            rule.replacement = strdup(tgt + 1 + tn + 1);
            if (!rule.target || !rule.replacement)
                goto nomem;
        }
        rule.source = strndup(body, (size_t)(eq - body));
        if (!rule.source)
            goto nomem;
    }
    rc = compile_anchored(re, re_len, &rule.re, err, errlen);
    if (rc < 0) {
        free(rule.source);
        free(rule.target);
        free(rule.replacement);
        return rc;
    }
    if (rule.replacement) {
        int g = max_group_ref(rule.replacement);
        /* Our wrapper adds one group: user group k is submatch k + 1. */
        if (g > (int)rule.re.re_nsub - 1) {
            rc =
                fail_einval(err, errlen, "replacement refers to $%d but the regex has %zu group(s)",
                            g, rule.re.re_nsub - 1);
            rule_free(&rule);
            return rc;
        }
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        struct relabel_rule *nv = realloc(r->v, cap * sizeof(*nv));
        if (!nv) {
            rule_free(&rule);
            errmsg(err, errlen, "out of memory");
            return -ENOMEM;
        }
        r->v = nv;
        r->cap = cap;
    }
    r->v[r->n++] = rule;
    return 0;
nomem:
    free(rule.source);
    free(rule.target);
    free(rule.replacement);
    errmsg(err, errlen, "out of memory");
    return -ENOMEM;
}

/* Expands $0..$9 and $$ in @repl from the submatches of @value. */
static char *expand(const char *repl, const char *value, const regmatch_t *m, size_t nm)
{
    size_t len = 0, cap = 64;
    char *out = malloc(cap);

    if (!out)
        return NULL;
    for (const char *p = repl; *p; p++) {
        const char *src = p;
        size_t n = 1;
        if (p[0] == '$' && p[1] == '$') {
            p++;
        } else if (p[0] == '$' && p[1] >= '0' && p[1] <= '9') {
            size_t g = (size_t)(p[1] - '0') + 1;
            p++;
            n = 0;
            if (g < nm && m[g].rm_so >= 0) {
                src = value + m[g].rm_so;
                n = (size_t)(m[g].rm_eo - m[g].rm_so);
            }
        }
        if (len + n + 1 > cap) {
            while (len + n + 1 > cap)
                cap *= 2;
            char *no = realloc(out, cap);
            if (!no) {
                free(out);
                return NULL;
            }
            out = no;
        }
        memcpy(out + len, src, n);
        len += n;
    }
    out[len] = '\0';
    return out;
}

static bool rule_matches(const struct relabel_rule *rule, const char *value, regmatch_t *m,
                         size_t nm)
{
    return regexec(&rule->re, value, nm, m, 0) == 0;
}

bool relabel_apply(const struct relabel_rules *r, struct label_set *ls)
{
    regmatch_t m[11];

    if (!r)
        return true;
    for (size_t i = 0; i < r->n; i++) {
        const struct relabel_rule *rule = &r->v[i];
        const char *v;

        switch (rule->action) {
        case RL_KEEP:
        case RL_DROP:
            v = label_set_get(ls, rule->source);
            if (rule_matches(rule, v ? v : "", NULL, 0) != (rule->action == RL_KEEP))
                return false;
            break;
        case RL_REPLACE: {
            v = label_set_get(ls, rule->source);
            if (!v)
                v = "";
            if (!rule_matches(rule, v, m, 11))
                break;
            char *nv = expand(rule->replacement, v, m, 11);
            if (!nv)
                break; /* out of memory: leave the set as it was */
            /* Prometheus semantics: an empty value is an absent label. */
            if (nv[0] == '\0')
                label_set_del(ls, rule->target);
            else
                label_set_put(ls, rule->target, nv);
            free(nv);
            break;
        }
        case RL_LABELDROP:
        case RL_LABELKEEP:
            for (size_t j = 0; j < ls->n;) {
                bool match = rule_matches(rule, ls->v[j].name, NULL, 0);
                if (match == (rule->action == RL_LABELDROP))
                    ls_remove_at(ls, j);
                else
                    j++;
            }
            break;
        }
    }
    return true;
}
