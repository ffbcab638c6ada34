/* Unit tests: agent/top.c — self/total accounting and ordering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/top.h"

static char *print(struct top *t, size_t n)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    top_print(t, f, n, 10000000);
    long len = ftell(f);
    char *buf = calloc(1, (size_t)len + 1);
    rewind(f);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    return buf;
}

/* Offset of @needle in @hay, or SIZE_MAX. */
static size_t pos(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    return p ? (size_t)(p - hay) : SIZE_MAX;
}

static void test_self_total_recursion(void **state)
{
    struct top *t = top_new();
    const char *s1[] = {"leaf", "mid", "main"};
    const char *s2[] = {"mid", "main"};
    const char *s3[] = {"rec", "rec", "rec", "main"}; /* recursion counts once in total */
    assert_int_equal(top_add(t, s1, 3, 5), 0);
    assert_int_equal(top_add(t, s2, 2, 3), 0);
    assert_int_equal(top_add(t, s3, 4, 2), 0);
    assert_int_equal(top_total(t), 10);
    char *out = print(t, 10);
    /* rows sorted by self: leaf 5, mid 3, rec 2, main 0 */
    size_t leaf = pos(out, "leaf"), mid = pos(out, "mid"), rec = pos(out, "rec"),
           m = pos(out, "main");
    assert_true(leaf < mid && mid < rec && rec < m && m < strlen(out));
    assert_non_null(strstr(out, "         2  20.00%          2  20.00%      0.02  rec"));
    assert_non_null(strstr(out, "         0   0.00%         10 100.00%      0.00  main"));
    assert_non_null(strstr(out, "10 samples in all"));
    free(out);
    top_free(t);
}

static void test_many_names_grow(void **state)
{
    struct top *t = top_new();
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "fn%d", i);
        const char *s[] = {name};
        assert_int_equal(top_add(t, s, 1, (uint64_t)i + 1), 0);
    }
    char *out = print(t, 1);
    assert_non_null(strstr(out, "fn4999"));
    assert_null(strstr(out, "fn4998"));
    free(out);
    top_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_total_recursion),
        cmocka_unit_test(test_many_names_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
