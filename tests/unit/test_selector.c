/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for query/engine/selector.c: parsing (good and bad, with offsets),
 * matching label sets and matching a decoded section's series. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "codec/segment.h"
#include "query/engine/selector.h"

static const struct {
    const char *text;
    size_t nmatchers;
} good[] = {
    {"", 0},
    {"{}", 0},
    {"  { }  ", 0},
    {"{service_name=\"api\"}", 1},
    {"{service_name=\"api\",}", 1},
    {"{ a = \"1\" , b != \"2\", c =~ \"x|y\", d !~ \"z.*\" }", 4},
    {"{a=\"quote \\\" backslash \\\\ newline \\n\"}", 1},
    {"{_x9=\"\"}", 1},
    {"{a=~\"a\\\\.b\"}", 1},
    {"{a=~\"(a|b)+c{2,3}\"}", 1},
};

static const struct {
    const char *text;
    const char *err; /* substring of the message */
} bad[] = {
    {"service_name=\"api\"", "expected '{' at offset 0"},
    {"{service_name}", "expected '=', '!=', '=~' or '!~' after label name at offset 13"},
    {"{service_name=api}", "expected '\"' to open the value at offset 14"},
    {"{a=\"x\"", "expected ',' or '}' at offset 6 (end of input)"},
    {"{a=\"x\",", "expected '}' at offset 7 (end of input)"},
    {"{a=\"x}", "unterminated string starting at offset 3"},
    {"{9a=\"x\"}", "expected a label name or '}' at offset 1"},
    {"{a=\"x\" b=\"y\"}", "expected ',' or '}' at offset 7"},
    {"{a=\"x\"} junk", "unexpected text after '}' at offset 8"},
    {"{a=~\"(\"}", "bad regex at offset 4"},
    {"{a=~\"a)(\"}", "bad regex at offset 4"},
    {"{a=~\"(a+)+\"}", NULL}, /* accepted: cost is small */
    {"{a=~\"a**\"}", "repeated quantifier"},
    {"{a=~\"((a{99}){99}){99}\"}", "too complex"},
    {"{a=~\"a{0,9999}\"}", "repetition count above 1000"},
    {"{a=~\"a{0,1000}\"}", NULL}, /* RE2's limit, accepted */
    {"{a=~\"(a)\\\\1\"}", "back-references"},
    {"{a=\"\x01\"}", "control character"},
    {"{a==\"x\"}", "expected '\"' to open the value at offset 3"},
};

static void test_parse_good(void **state)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct selector *s = NULL;
        char err[256] = "";
        int rc = selector_parse(good[i].text, &s, err, sizeof(err));
        if (rc)
            fail_msg("'%s': %s", good[i].text, err);
        assert_int_equal(s->n, good[i].nmatchers);
        selector_free(s);
    }
}

static void test_parse_values(void **state)
{
    struct selector *s = NULL;
    char err[256];

    assert_int_equal(selector_parse("{ a = \"1\" , b != \"2\", c =~ \"x|y\", d !~ \"z.*\" }", &s,
                                    err, sizeof(err)),
                     0);
    assert_string_equal(s->m[0].name, "a");
    assert_string_equal(s->m[0].value, "1");
    assert_int_equal(s->m[0].op, SEL_EQ);
    assert_int_equal(s->m[1].op, SEL_NE);
    assert_int_equal(s->m[2].op, SEL_RE);
    assert_int_equal(s->m[3].op, SEL_NRE);
    assert_string_equal(s->m[3].value, "z.*");
    selector_free(s);
    assert_int_equal(selector_parse("{a=\"q\\\"b\\\\n\\n\"}", &s, err, sizeof(err)), 0);
    assert_string_equal(s->m[0].value, "q\"b\\n\n");
    selector_free(s);
}

static void test_parse_bad(void **state)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct selector *s = NULL;
        char err[256] = "";
        int rc = selector_parse(bad[i].text, &s, err, sizeof(err));
        if (!bad[i].err) {
            assert_int_equal(rc, 0);
            selector_free(s);
            continue;
        }
        if (rc != -EINVAL)
            fail_msg("'%s' was accepted", bad[i].text);
        assert_null(s);
        if (!strstr(err, bad[i].err))
            fail_msg("'%s': got '%s', want '%s'", bad[i].text, err, bad[i].err);
    }
}

static void test_too_long(void **state)
{
    char big[SELECTOR_MAX_LEN + 64];
    struct selector *s = NULL;
    char err[256];

    memset(big, 'a', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(selector_parse(big, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "longer than"));
    /* too many matchers */
    char many[2048] = "{";
    for (int i = 0; i < SELECTOR_MAX_MATCHERS + 1; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "a%d=\"x\",", i);
    strcat(many, "}");
    assert_int_equal(selector_parse(many, &s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "more than"));
}

static bool matches(const char *sel, const char *labels)
{
    const char *names[8], *values[8];
    char buf[256], *save = NULL;
    size_t n = 0;
    struct selector *s = NULL;
    char err[256];

    snprintf(buf, sizeof(buf), "%s", labels);
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        *eq = '\0';
        names[n] = kv;
        values[n++] = eq + 1;
    }
    if (selector_parse(sel, &s, err, sizeof(err)))
        fail_msg("%s: %s", sel, err);
    bool r = selector_match_labels(s, names, values, n);
    selector_free(s);
    return r;
}

static void test_match_labels(void **state)
{
    assert_true(matches("{}", "a=1"));
    assert_true(matches("{a=\"1\"}", "a=1,b=2"));
    assert_false(matches("{a=\"1\"}", "a=12"));
    assert_false(matches("{a=\"1\"}", "b=1"));
    assert_true(matches("{a!=\"1\"}", "b=1")); /* missing = "" */
    assert_true(matches("{a=\"\"}", "b=1"));
    assert_true(matches("{a=~\"x|y\"}", "a=y"));
    assert_false(matches("{a=~\"x|y\"}", "a=xy")); /* anchored */
    assert_false(matches("{a=~\"x\"}", "a=axb"));
    assert_true(matches("{a=~\"x.*\"}", "a=xzz"));
    assert_false(matches("{a!~\"x.*\"}", "a=xzz"));
    assert_true(matches("{a!~\"x.*\"}", "a=zx"));
    assert_true(matches("{a=~\".*\"}", "b=1"));
    assert_false(matches("{a=~\".+\"}", "b=1"));
    assert_true(matches("{a=\"1\",b=~\"2|3\"}", "a=1,b=3"));
    assert_false(matches("{a=\"1\",b=~\"2|3\"}", "a=1,b=4"));
}

/* A hand-built section: 4 series over strings. */
static void test_match_section(void **state)
{
    const char *strings[] = {"",   "service_name", "api", "web", "host_name",
                             "h1", "h2",           "pod", "p1"};
    /* series: {service_name=api,host_name=h1}, {service_name=web,host_name=h2},
     * {pod=p1} (no service_name), {service_name=api,host_name=h2,pod=p1} */
    uint32_t labels[] = {4, 5, 1, 2, /**/ 4, 6, 1, 3, /**/ 7, 8, /**/ 4, 6, 7, 8, 1, 2};
    uint32_t off[] = {0, 2, 4, 5, 8};
    struct seg_section sec = {.service = "api",
                              .strings = strings,
                              .nstrings = 9,
                              .series_off = off,
                              .series_labels = labels,
                              .nseries = 4};
    struct {
        const char *sel;
        uint8_t want[4];
        long n;
    } cases[] = {
        {"{}", {1, 1, 1, 1}, 4},
        {"{service_name=\"api\"}", {1, 0, 1, 1}, 3}, /* series 2 defaults to the section's */
        {"{service_name=\"web\"}", {0, 1, 0, 0}, 1},
        {"{host_name=\"h9\"}", {0, 0, 1, 0}, 1}, /* series 2 takes the object's host h9 */
        {"{host_name=~\"h1|h2\"}", {1, 1, 0, 1}, 3},
        {"{pod!=\"p1\"}", {1, 1, 0, 0}, 2},
        {"{pod=\"p1\",host_name=\"h2\"}", {0, 0, 0, 1}, 1},
        {"{nosuch=\"x\"}", {0, 0, 0, 0}, 0},
        {"{nosuch!~\"x\"}", {1, 1, 1, 1}, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct selector *s = NULL;
        uint8_t mask[4];
        char err[128];
        assert_int_equal(selector_parse(cases[i].sel, &s, err, sizeof(err)), 0);
        long n = selector_match_section(s, &sec, "api", "h9", mask);
        if (n != cases[i].n || memcmp(mask, cases[i].want, 4))
            fail_msg("%s: n=%ld mask=%d%d%d%d", cases[i].sel, n, mask[0], mask[1], mask[2],
                     mask[3]);
        selector_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),   cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_parse_bad),    cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_match_labels), cmocka_unit_test(test_match_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
