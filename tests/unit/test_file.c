/* SPDX-License-Identifier: Apache-2.0 */
/* common/file: the errors read_file and read_first_line return (always
 * negative, the output left NULL) and neg_errno, which they return them
 * through. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/file.h"

static void test_neg_errno(void **state)
{
    errno = ENOENT;
    assert_int_equal(neg_errno(), -ENOENT);
    errno = EISDIR;
    assert_int_equal(neg_errno(), -EISDIR);
    /* a call that failed without saying why still reads as a failure */
    errno = 0;
    assert_int_equal(neg_errno(), -EIO);
}

static void test_read_errors(void **state)
{
    char dir[] = "/tmp/stoke-test-file-XXXXXX", path[64];
    char *buf = (char *)1, *line = (char *)1;
    size_t len = 1;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/missing", dir);
    assert_int_equal(read_file(path, 1024, &buf, &len), -ENOENT);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_int_equal(read_first_line(path, 1024, &line), -ENOENT);
    assert_null(line);
    /* a directory opens but does not read: the read error, not 0 */
    buf = (char *)1;
    assert_int_equal(read_file(dir, 1024, &buf, &len), -EISDIR);
    assert_null(buf);
    line = (char *)1;
    assert_int_equal(read_first_line(dir, 1024, &line), -EISDIR);
    assert_null(line);
    assert_int_equal(rmdir(dir), 0);
}

static void test_read_first_line(void **state)
{
    char path[] = "/tmp/stoke-test-file-XXXXXX";
    int fd = mkstemp(path);
    char *line = NULL, *buf = NULL;
    size_t len = 0;

    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, "key\r\nrest\n", 10), 0);
    close(fd);
    assert_int_equal(read_first_line(path, 1024, &line), 0);
    assert_string_equal(line, "key");
    free(line);
    assert_int_equal(read_file(path, 1024, &buf, &len), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "key\r\nrest\n", 11);
    free(buf);
    assert_int_equal(read_file(path, 4, &buf, &len), -EFBIG);
    assert_null(buf);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_neg_errno),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_read_first_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
