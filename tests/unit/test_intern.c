/* SPDX-License-Identifier: Apache-2.0 */
/* common/intern: dense first-seen ids, stability across index growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/intern.h"

static void test_strtab_ids(void **state)
{
    struct strtab t;
    char buf[32];

    assert_int_equal(strtab_init(&t), 0);
    assert_int_equal(t.n, 1);
    assert_string_equal(strtab_get(&t, 0), "");
    assert_int_equal(strtab_intern(&t, ""), 0);
    assert_int_equal(strtab_intern(&t, NULL), 0);
    assert_int_equal(strtab_intern(&t, "a"), 1);
    assert_int_equal(strtab_intern(&t, "b"), 2);
    assert_int_equal(strtab_intern(&t, "a"), 1);
    /* length-bounded: a prefix is its own string, NUL-terminated in the pool */
    assert_int_equal(strtab_intern_len(&t, "abc", 2), 3);
    assert_string_equal(strtab_get(&t, 3), "ab");
    /* 100k strings force many index and pool reallocations */
    for (unsigned i = 0; i < 100000; i++) {
        snprintf(buf, sizeof(buf), "s%u", i);
        assert_int_equal(strtab_intern(&t, buf), 4 + i);
    }
    for (unsigned i = 0; i < 100000; i += 997) {
        snprintf(buf, sizeof(buf), "s%u", i);
        assert_int_equal(strtab_intern(&t, buf), 4 + i);
        assert_string_equal(strtab_get(&t, 4 + i), buf);
    }
    assert_int_equal(t.n, 100004);
    strtab_free(&t);
}

static void test_seqtab_ids(void **state)
{
    struct seqtab t;
    uint32_t a[] = {1, 2, 3}, b[] = {1, 2}, c[] = {3, 2, 1}, v[2];
    size_t n;
    const uint32_t *got;

    assert_int_equal(seqtab_init(&t), 0);
    assert_int_equal(seqtab_intern(&t, a, 3), 0);
    assert_int_equal(seqtab_intern(&t, b, 2), 1); /* a prefix is distinct */
    assert_int_equal(seqtab_intern(&t, c, 3), 2); /* order matters */
    assert_int_equal(seqtab_intern(&t, NULL, 0), 3);
    assert_int_equal(seqtab_intern(&t, a, 0), 3); /* every empty sequence is one */
    assert_int_equal(seqtab_intern(&t, a, 3), 0);
    got = seqtab_get(&t, 2, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(got, c, sizeof(c));
    seqtab_get(&t, 3, &n);
    assert_int_equal(n, 0);
    for (uint32_t i = 0; i < 50000; i++) {
        v[0] = i;
        v[1] = i * 7;
        assert_int_equal(seqtab_intern(&t, v, 2), 4 + i);
    }
    v[0] = 1234;
    v[1] = 1234 * 7;
    assert_int_equal(seqtab_intern(&t, v, 2), 4 + 1234);
    got = seqtab_get(&t, 4 + 49999, &n);
    assert_int_equal(n, 2);
    assert_int_equal(got[0], 49999);
    assert_int_equal(got[1], 49999 * 7);
    seqtab_free(&t);
}

static void test_hash_spreads(void **state)
{
    /* inputs differing in one byte, or only in length, hash apart */
    const char z[16] = {0};
    assert_int_not_equal(intern_hash_bytes("abcdefgh1", 9), intern_hash_bytes("abcdefgh2", 9));
    assert_int_not_equal(intern_hash_bytes(z, 3), intern_hash_bytes(z, 4));
    assert_int_not_equal(intern_hash_bytes(z, 8), intern_hash_bytes(z, 16));
    assert_int_equal(intern_hash_bytes("same", 4), intern_hash_bytes("same", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strtab_ids),
        cmocka_unit_test(test_seqtab_ids),
        cmocka_unit_test(test_hash_spreads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
