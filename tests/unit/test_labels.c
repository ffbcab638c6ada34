/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for common/labels.c (label sets, relabel rules) and
 * agent/label_limiter.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/label_limiter.h"
#include "common/labels.h"

/* Builds a set from "a=1,b=2" (test helper; no commas in values). */
static void set_from(struct label_set *ls, const char *spec)
{
    char *dup = strdup(spec), *save = NULL;

    assert_non_null(dup);
    for (char *kv = strtok_r(dup, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = '\0';
        assert_int_equal(label_set_put(ls, kv, eq + 1), 0);
    }
    free(dup);
}

/* Renders a set as "a=1,b=2" into @out. */
static const char *set_str(const struct label_set *ls, char *out, size_t len)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < ls->n; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s=%s", i ? "," : "", ls->v[i].name,
                              ls->v[i].value);
    return out;
}

static void test_set_sorted_unique(void **state)
{
    struct label_set ls = {0};
    char buf[256];

    set_from(&ls, "zeta=1,alpha=2,mid=3,alpha=4");
    assert_string_equal(set_str(&ls, buf, sizeof(buf)), "alpha=4,mid=3,zeta=1");
    assert_string_equal(label_set_get(&ls, "mid"), "3");
    assert_null(label_set_get(&ls, "nope"));
    label_set_del(&ls, "mid");
    label_set_del(&ls, "nope");
    assert_string_equal(set_str(&ls, buf, sizeof(buf)), "alpha=4,zeta=1");
    for (int i = 0; i < 40; i++) { /* forces several reallocs */
        char n[16];
        snprintf(n, sizeof(n), "k%02d", 39 - i);
        assert_int_equal(label_set_put(&ls, n, "v"), 0);
    }
    assert_int_equal(ls.n, 42);
    for (size_t i = 1; i < ls.n; i++)
        assert_true(strcmp(ls.v[i - 1].name, ls.v[i].name) < 0);
    label_set_clear(&ls);
    assert_int_equal(ls.n, 0);
    assert_null(ls.v);
}

static void test_set_copy_hash_equal(void **state)
{
    struct label_set a = {0}, b = {0}, c = {0}, d = {0};

    set_from(&a, "service_name=api,host_name=h1");
    assert_int_equal(label_set_copy(&b, &a), 0);
    assert_true(label_set_equal(&a, &b));
    assert_int_equal(label_set_hash(&a), label_set_hash(&b));
    /* Field boundaries matter: {ab=c} and {a=bc} differ. */
    set_from(&c, "ab=c");
    set_from(&d, "a=bc");
    assert_false(label_set_equal(&c, &d));
    assert_int_not_equal(label_set_hash(&c), label_set_hash(&d));
    label_set_put(&b, "host_name", "h2");
    assert_false(label_set_equal(&a, &b));
    assert_int_not_equal(label_set_hash(&a), label_set_hash(&b));
    /* copy of an empty set */
    label_set_clear(&c);
    label_set_clear(&d);
    assert_int_equal(label_set_copy(&d, &c), 0);
    assert_int_equal(d.n, 0);
    label_set_clear(&a);
    label_set_clear(&b);
}

struct relabel_case {
    const char *rules[3];
    const char *in;
    bool keep;
    const char *out; /* when kept */
};

static const struct relabel_case relabel_cases[] = {
    {{"keep:service_name=api|web"}, "service_name=api,x=1", true, "service_name=api,x=1"},
    /* anchored: "api2" does not match "api" */
    {{"keep:service_name=api"}, "service_name=api2", false, NULL},
    {{"drop:service_name=kernel"}, "service_name=kernel", false, NULL},
    {{"drop:service_name=kernel"}, "service_name=kernelx", true, "service_name=kernelx"},
    /* missing label matches as "" */
    {{"drop:container_id="}, "service_name=a", false, NULL},
    {{"keep:container_id=.+"}, "service_name=a", false, NULL},
    {{"keep:container_id=.+"}, "container_id=abc", true, "container_id=abc"},
    {{"replace:systemd_unit=(.*)\\.service:unit=$1"},
     "systemd_unit=nginx.service",
     true,
     "systemd_unit=nginx.service,unit=nginx"},
    /* no match: unchanged */
    {{"replace:systemd_unit=(.*)\\.service:unit=$1"},
     "systemd_unit=a.scope",
     true,
     "systemd_unit=a.scope"},
    /* replacement with ':' '=' '$$' and two groups; overwrite target */
    {{"replace:pod=([a-z]+)-([0-9]+):pod=$2:$1=$$x"}, "pod=web-42", true, "pod=42:web=$x"},
    /* $0 is the whole match; missing source = "" matches ".*" */
    {{"replace:nope=.*:t=[$0]"}, "a=1", true, "a=1,t=[]"},
    /* empty expansion deletes the target */
    {{"replace:a=(x?):b=$1"}, "a=,b=old", true, "a="},
    {{"labeldrop:pod_uid|container_id"},
     "container_id=c,pod_uid=p,service_name=s",
     true,
     "service_name=s"},
    {{"labelkeep:service_name|host_name"},
     "host_name=h,pod_uid=p,x=1,service_name=s",
     true,
     "host_name=h,service_name=s"},
    /* rules apply in order: the replace feeds the keep */
    {{"replace:service_name=(.*)-canary:track=canary", "keep:track=canary"},
     "service_name=api-canary",
     true,
     "service_name=api-canary,track=canary"},
    {{"replace:service_name=(.*)-canary:track=canary", "keep:track=canary"},
     "service_name=api",
     false,
     NULL},
    /* bounded repetition, bracket classes with ']' and '[:alpha:]' stay usable */
    {{"keep:x=[[:alpha:]]+[0-9]{1,3}-[]a]{2}[^]]?"}, "x=ab12-]a", true, "x=ab12-]a"},
    {{"keep:container_id=[0-9a-f]{64}"},
     "container_id="
     "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899",
     true,
     "container_id="
     "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"},
    {{"keep:x=a{2,}"}, "x=a", false, NULL},
    /* a ':' inside the regex is fine when not followed by name= */
    {{"replace:addr=([^:]+):([0-9]+):port=$2"}, "addr=h:80", true, "addr=h:80,port=80"},
};

static void test_relabel_table(void **state)
{
    char err[256], buf[512];

    for (size_t i = 0; i < sizeof(relabel_cases) / sizeof(relabel_cases[0]); i++) {
        const struct relabel_case *tc = &relabel_cases[i];
        struct relabel_rules *r = relabel_rules_new();
        struct label_set ls = {0};
        size_t n = 0;

        assert_non_null(r);
        for (; n < 3 && tc->rules[n]; n++) {
            int rc = relabel_rules_add(r, tc->rules[n], err, sizeof(err));
            if (rc != 0)
                fail_msg("case %zu rule '%s': %s", i, tc->rules[n], err);
        }
        assert_int_equal(relabel_rules_count(r), n);
        set_from(&ls, tc->in);
        bool keep = relabel_apply(r, &ls);
        if (keep != tc->keep)
            fail_msg("case %zu: keep=%d, want %d", i, keep, tc->keep);
        if (keep && strcmp(set_str(&ls, buf, sizeof(buf)), tc->out) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, buf, tc->out);
        label_set_clear(&ls);
        relabel_rules_free(r);
    }
}

struct bad_spec {
    const char *spec;
    const char *msg_part;
};

static const struct bad_spec bad_specs[] = {
    {"frobnicate:a=b", "unknown action 'frobnicate'"},
    {"", "unknown action ''"},
    {"keep", "missing ':' after action 'keep'"},
    {"keep:service_name", "keep needs NAME=REGEX"},
    {"drop:=x", "bad label name ''"},
    {"keep:9abc=x", "bad label name '9abc'"},
    {"keep:a-b=x", "bad label name 'a-b'"},
    {"keep:a=(unclosed", "bad regex '(unclosed'"},
    {"keep:a=[z-a]", "bad regex '[z-a]'"},
    {"labeldrop:*x", "bad regex"},
    /* would close the ^( wrapper early if accepted */
    {"keep:a=x)|(y", "bad regex"},
    {"replace:a=b", "replace needs SRC=REGEX:TARGET=REPLACEMENT"},
    {"replace:a=(b):9t=x", "replace needs SRC=REGEX:TARGET=REPLACEMENT"},
    {"replace:a=(b):t=$2", "replacement refers to $2 but the regex has 1 group(s)"},
    {"replace:a=b:t=$1", "replacement refers to $1 but the regex has 0 group(s)"},
    /* glibc regcomp would take gigabytes on these (found by fuzz_relabel) */
    {"drop:a=k++++++++++++++++++++++++++++++", "repeated quantifier"},
    {"drop:a=x*{2}", "repeated quantifier"},
    {"drop:a=(((((((((((((((((x+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)", "too complex"},
    {"keep:a=((a{99}){99}){99}", "too complex"},
    {"keep:a=(((((x+)+)+)+)+){999}", "too complex"},
    /* quadratic, not exponential: seconds in regcomp (found by fuzz_selector) */
    {"keep:a=x{0,9999}", "repetition count above 1000"},
    {"keep:a=x{1001}", "repetition count above 1000"},
    {"keep:a=(x)\\1", "back-references are not supported"},
    {"keep:a=((((((((((((((((((((((((((((((((x))))))))))))))))))))))))))))))))", "too deeply"},
};

static void test_relabel_bad_specs(void **state)
{
    struct relabel_rules *r = relabel_rules_new();
    char err[256];

    assert_non_null(r);
    for (size_t i = 0; i < sizeof(bad_specs) / sizeof(bad_specs[0]); i++) {
        err[0] = 'X';
        int rc = relabel_rules_add(r, bad_specs[i].spec, err, sizeof(err));
        if (rc != -EINVAL)
            fail_msg("'%s': rc %d, want -EINVAL", bad_specs[i].spec, rc);
        if (!strstr(err, bad_specs[i].msg_part))
            fail_msg("'%s': message '%s' lacks '%s'", bad_specs[i].spec, err,
                     bad_specs[i].msg_part);
    }
    assert_int_equal(relabel_rules_count(r), 0);
    /* the message is cut to errlen and stays terminated */
    char tiny[8];
    assert_int_equal(relabel_rules_add(r, "frobnicate:x", tiny, sizeof(tiny)), -EINVAL);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    /* errlen 0 / NULL err are allowed */
    assert_int_equal(relabel_rules_add(r, "nope", NULL, 0), -EINVAL);
    /* oversized spec */
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    memcpy(big, "keep:a=", 7);
    assert_int_equal(relabel_rules_add(r, big, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "longer than"));
    free(big);
    relabel_rules_free(r);
    /* NULL rules keep everything */
    struct label_set ls = {0};
    set_from(&ls, "a=1");
    assert_true(relabel_apply(NULL, &ls));
    label_set_clear(&ls);
}

static void test_limiter_overflow(void **state)
{
    struct label_limiter *l = label_limiter_new(3);
    char v[32];

    assert_non_null(l);
    for (int i = 0; i < 10; i++) {
        struct label_set ls = {0};
        snprintf(v, sizeof(v), "c%d", i);
        label_set_put(&ls, "container_id", v);
        label_set_put(&ls, "service_name", v); /* never capped */
        label_set_put(&ls, "host_name", v);    /* never capped */
        label_limiter_apply(l, &ls);
        assert_string_equal(label_set_get(&ls, "container_id"), i < 3 ? v : "_overflow_");
        assert_string_equal(label_set_get(&ls, "service_name"), v);
        assert_string_equal(label_set_get(&ls, "host_name"), v);
        label_set_clear(&ls);
    }
    assert_int_equal(label_limiter_overflows(l), 7);
    /* values admitted before the cap keep passing */
    for (int i = 0; i < 3; i++) {
        struct label_set ls = {0};
        snprintf(v, sizeof(v), "c%d", i);
        label_set_put(&ls, "container_id", v);
        label_limiter_apply(l, &ls);
        assert_string_equal(label_set_get(&ls, "container_id"), v);
        label_set_clear(&ls);
    }
    /* each name has its own budget */
    struct label_set ls = {0};
    label_set_put(&ls, "pod_uid", "p-new");
    label_limiter_apply(l, &ls);
    assert_string_equal(label_set_get(&ls, "pod_uid"), "p-new");
    label_set_clear(&ls);
    assert_int_equal(label_limiter_overflows(l), 7);
    label_limiter_free(l);

    /* many distinct values: the internal table grows without losing any */
    l = label_limiter_new(500);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 600; i++) {
            struct label_set s = {0};
            snprintf(v, sizeof(v), "v%d", i);
            label_set_put(&s, "x", v);
            label_limiter_apply(l, &s);
            assert_string_equal(label_set_get(&s, "x"), i < 500 ? v : "_overflow_");
            label_set_clear(&s);
        }
    assert_int_equal(label_limiter_overflows(l), 200);
    label_limiter_free(l);
    label_limiter_apply(NULL, &ls);
    label_limiter_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_sorted_unique), cmocka_unit_test(test_set_copy_hash_equal),
        cmocka_unit_test(test_relabel_table),     cmocka_unit_test(test_relabel_bad_specs),
        cmocka_unit_test(test_limiter_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
