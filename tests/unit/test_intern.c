/* SPDX-License-Identifier: Apache-2.0 */
/* common/intern: dense first-seen ids, stability across index growth; and
 * common/hash.h's hash_bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/hash.h"
#include "common/intern.h"

static void test_strtab_ids(void **state)
{
    struct intern t = {0};
    char buf[32];

    assert_int_equal(intern_str(&t, ""), 0);
    assert_int_equal(t.n, 1);
    assert_string_equal(intern_str_get(&t, 0), "");
    assert_int_equal(intern_str(&t, ""), 0);
    assert_int_equal(intern_str(&t, NULL), 0);
    assert_int_equal(intern_str(&t, "a"), 1);
    assert_int_equal(intern_str(&t, "b"), 2);
    assert_int_equal(intern_str(&t, "a"), 1);
    /* length-bounded: a prefix is its own string, NUL-terminated in the pool */
    assert_int_equal(intern_strn(&t, "abc", 2), 3);
    assert_string_equal(intern_str_get(&t, 3), "ab");
    /* 100k strings force many index and pool reallocations */
    for (unsigned i = 0; i < 100000; i++) {
        snprintf(buf, sizeof(buf), "s%u", i);
        assert_int_equal(intern_str(&t, buf), 4 + i);
    }
    for (unsigned i = 0; i < 100000; i += 997) {
        snprintf(buf, sizeof(buf), "s%u", i);
        assert_int_equal(intern_str(&t, buf), 4 + i);
        assert_string_equal(intern_str_get(&t, 4 + i), buf);
    }
    assert_int_equal(t.n, 100004);
    intern_free(&t);
}

static void test_seqtab_ids(void **state)
{
    struct intern t = {0};
    uint32_t a[] = {1, 2, 3}, b[] = {1, 2}, c[] = {3, 2, 1}, v[2];
    size_t n;
    const uint32_t *got;

    assert_int_equal(intern_seq(&t, a, 3), 0);
    assert_int_equal(intern_seq(&t, b, 2), 1); /* a prefix is distinct */
    assert_int_equal(intern_seq(&t, c, 3), 2); /* order matters */
    assert_int_equal(intern_seq(&t, NULL, 0), 3);
    assert_int_equal(intern_seq(&t, a, 0), 3); /* every empty sequence is one */
    assert_int_equal(intern_seq(&t, a, 3), 0);
    got = intern_seq_get(&t, 2, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(got, c, sizeof(c));
    intern_seq_get(&t, 3, &n);
    assert_int_equal(n, 0);
    for (uint32_t i = 0; i < 50000; i++) {
        v[0] = i;
        v[1] = i * 7;
        assert_int_equal(intern_seq(&t, v, 2), 4 + i);
    }
    v[0] = 1234;
    v[1] = 1234 * 7;
    assert_int_equal(intern_seq(&t, v, 2), 4 + 1234);
    got = intern_seq_get(&t, 4 + 49999, &n);
    assert_int_equal(n, 2);
    assert_int_equal(got[0], 49999);
    assert_int_equal(got[1], 49999 * 7);
    intern_free(&t);
}

/* Raw keys: added or found, found without adding, read in place. */
static void test_keys(void **state)
{
    struct intern t = {0};
    uint64_t k = 0x0102030405060708ULL;
    uint32_t id, len;

    assert_int_equal(intern_find(&t, &k, sizeof(k)), INTERN_NONE); /* empty table */
    assert_int_equal(intern_add(&t, "abc", 3, &id), 1);
    assert_int_equal(id, 0);
    assert_int_equal(intern_add(&t, &k, sizeof(k), &id), 1);
    assert_int_equal(id, 1);
    assert_int_equal(intern_add(&t, &k, sizeof(k), &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(intern_find(&t, "abc", 3), 0);
    assert_int_equal(intern_find(&t, "ab", 2), INTERN_NONE);
    assert_int_equal(t.n, 2);
    /* 8-aligned in the pool, a NUL after each key */
    const uint8_t *p = intern_get(&t, 1, &len);
    assert_int_equal(len, sizeof(k));
    assert_int_equal((uintptr_t)p % 8, 0);
    assert_int_equal(*(const uint64_t *)p, k);
    assert_int_equal(p[len], 0);
    assert_string_equal(intern_str_get(&t, 0), "abc");
    intern_free(&t);
    assert_int_equal(t.n, 0);
}

/* A reserved table holds its keys without regrowing, before or after adds,
 * and keeps the ids it gave. */
static void test_reserve(void **state)
{
    struct intern t = {0};
    uint32_t id, k;

    assert_int_equal(intern_reserve(&t, 1000), 0);
    assert_true(t.mask + 1 >= 2000);
    assert_true(t.cap >= 1000);
    const uint32_t *slots = t.slots;
    const struct intern_entry *e = t.e;
    for (k = 0; k < 1000; k++) {
        assert_int_equal(intern_add(&t, &k, sizeof(k), &id), 1);
        assert_int_equal(id, k);
    }
    assert_ptr_equal(t.slots, slots); /* no regrowth */
    assert_ptr_equal(t.e, e);
    assert_int_equal(intern_reserve(&t, 5000), 0); /* rehashes what is there */
    for (k = 0; k < 1000; k++)
        assert_int_equal(intern_find(&t, &k, sizeof(k)), k);
    assert_int_equal(intern_reserve(&t, 10), 0); /* never shrinks */
    assert_true(t.mask + 1 >= 10000);
    intern_free(&t);
}

/* Pool, entries and index past INTERN_BIG move to mappings of their own
 * and grow there (mremap): every key and id survives each move, new index
 * slots start empty, and reserving a big table up front works the same. */
static void test_big_tables(void **state)
{
    struct intern t = {0}, r = {0};
    enum { N = 200000, LEN = 16 };
    uint32_t key[LEN];
    size_t n;

    for (uint32_t i = 0; i < N; i++) {
        for (uint32_t k = 0; k < LEN; k++)
            key[k] = i * 31 + k;
        assert_int_equal(intern_seq(&t, key, LEN), i);
    }
    /* all three arrays are past the threshold */
    assert_true(t.pool_cap >= INTERN_BIG);
    assert_true((size_t)t.cap * sizeof(*t.e) >= INTERN_BIG);
    assert_true((t.mask + 1) * sizeof(*t.slots) >= INTERN_BIG);
    assert_true(intern_bytes(&t) >= 3 * (size_t)INTERN_BIG);
    for (uint32_t i = 0; i < N; i += 7) {
        const uint32_t *got = intern_seq_get(&t, i, &n);
        assert_int_equal(n, LEN);
        for (uint32_t k = 0; k < LEN; k++)
            assert_int_equal(got[k], i * 31 + k);
        assert_int_equal(intern_find(&t, got, LEN * sizeof(uint32_t)), i);
        assert_int_equal(intern_seq(&t, got, LEN), i);
    }
    key[0] = UINT32_MAX;
    assert_int_equal(intern_find(&t, key, sizeof(key)), INTERN_NONE);
    assert_int_equal(t.n, N);
    intern_free(&t);
    assert_null(t.pool);
    assert_int_equal(t.n, 0);

    /* reserved big, then grown past the reservation */
    assert_int_equal(intern_reserve(&r, N), 0);
    assert_true((size_t)r.cap * sizeof(*r.e) >= INTERN_BIG);
    for (uint32_t i = 0; i < 2 * N; i++)
        assert_int_equal(intern_seq(&r, &i, 1), i);
    for (uint32_t i = 0; i < 2 * N; i += 101) {
        assert_int_equal(*intern_seq_get(&r, i, &n), i);
        assert_int_equal(intern_seq(&r, &i, 1), i);
    }
    intern_free(&r);
}

static void test_hash_spreads(void **state)
{
    /* inputs differing in one byte, or only in length, hash apart */
    const char z[16] = {0};
    assert_int_not_equal(hash_bytes("abcdefgh1", 9), hash_bytes("abcdefgh2", 9));
    assert_int_not_equal(hash_bytes(z, 3), hash_bytes(z, 4));
    assert_int_not_equal(hash_bytes(z, 8), hash_bytes(z, 16));
    assert_int_equal(hash_bytes("same", 4), hash_bytes("same", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strtab_ids),   cmocka_unit_test(test_seqtab_ids),
        cmocka_unit_test(test_keys),         cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_hash_spreads), cmocka_unit_test(test_big_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
