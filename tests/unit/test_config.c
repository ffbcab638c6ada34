/* Unit tests: agent/config.c — flags, config file text, bounds, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/config.h"

static void test_defaults(void **state)
{
    struct agent_config c;
    config_defaults(&c);
    assert_int_equal(c.frequency, 19);
    assert_int_equal(c.window_s, 10);
    assert_int_equal(c.duration_s, 0);
    assert_null(c.output_dir);
    assert_string_equal(c.metrics_addr, "127.0.0.1:9465");
    config_free(&c);
}

static void test_flags(void **state)
{
    struct agent_config c;
    char *argv[] = {"stoke-agent", "--frequency", "99",         "--output-dir",
                    "/tmp/x",      "--top=5",     "--duration", "3",
                    "--relabel",   "drop:a=b",    "--relabel",  "labeldrop:x",
                    "--no-dwarf",  NULL};
    config_defaults(&c);
    assert_int_equal(config_parse(&c, 13, argv), 0);
    assert_int_equal(c.frequency, 99);
    assert_string_equal(c.output_dir, "/tmp/x");
    assert_int_equal(c.top, 5);
    assert_int_equal(c.duration_s, 3);
    assert_int_equal(c.nrelabel, 2);
    assert_string_equal(c.relabel[1], "labeldrop:x");
    assert_true(c.no_dwarf);
    config_free(&c);
}

static void test_top_default(void **state)
{
    struct agent_config c;
    char *argv[] = {"stoke-agent", "--top", NULL};
    config_defaults(&c);
    assert_int_equal(config_parse(&c, 2, argv), 0);
    assert_int_equal(c.top, 20);
    config_free(&c);
}

static void test_bad_values(void **state)
{
    static const struct {
        const char *name, *value, *want;
    } cases[] = {
        {"frequency", "0", "from 1 to 1000"},
        {"frequency", "1001", "from 1 to 1000"},
        {"frequency", "-5", "not a number"},
        {"frequency", "12abc", "not a number"},
        {"frequency", "", "not a number"},
        {"window", "99999999999999999999", "not a number"},
        {"include-idle", "maybe", "not true or false"},
        {"no-such-option", "1", "unknown option"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agent_config c;
        char err[256] = "";
        config_defaults(&c);
        assert_int_equal(config_set(&c, cases[i].name, cases[i].value, err, sizeof(err)), -EINVAL);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
        assert_int_equal(c.frequency, 19);
        config_free(&c);
    }
}

static void test_file_text(void **state)
{
    const char *text = "# Stoke agent\n"
                       "frequency = 49\n"
                       "  window=5   # short windows\n"
                       "\n"
                       "include-idle\n"
                       "relabel = keep:service_name=api|web\n"
                       "host-name = node-1\r\n";
    struct agent_config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_parse_text(&c, text, strlen(text), err, sizeof(err)), 0);
    assert_int_equal(c.frequency, 49);
    assert_int_equal(c.window_s, 5);
    assert_true(c.include_idle);
    assert_int_equal(c.nrelabel, 1);
    assert_string_equal(c.relabel[0], "keep:service_name=api|web");
    assert_string_equal(c.host_name, "node-1");
    config_free(&c);
}

static void test_file_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"frequency = 10\nbogus = 1\n", "line 2: unknown option 'bogus'"},
        {"frequency\n", "line 1: 'frequency' needs '= value'"},
        {"window = x\n", "line 1: window"},
        {"a\0b = 1\n", "NUL byte"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct agent_config c;
        char err[256] = "";
        size_t len = i == 3 ? 8 : strlen(cases[i].text);
        config_defaults(&c);
        assert_int_equal(config_parse_text(&c, cases[i].text, len, err, sizeof(err)), -EINVAL);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
        config_free(&c);
    }
}

static void test_flags_override_file(void **state)
{
    char path[] = "/tmp/stoke-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("frequency = 49\nwindow = 7\n", f);
    fclose(f);
    char *argv[] = {"stoke-agent", "--frequency", "99", "--config", path, NULL};
    struct agent_config c;
    config_defaults(&c);
    assert_int_equal(config_parse(&c, 5, argv), 0);
    assert_int_equal(c.frequency, 99); /* the flag wins even though it comes first */
    assert_int_equal(c.window_s, 7);
    config_free(&c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_top_default),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_file_text),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_flags_override_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
