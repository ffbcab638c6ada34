/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sampler: the drain of synthetic rows (sampler_fill_for_bench, the hook
 * bench/micro.c times). Loads the real BPF program, so it needs root (or
 * CAP_BPF + CAP_PERFMON) and a kernel with BTF; skipped otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/sampler.h"

struct seen {
    uint64_t ours, other, count;
};

static void cb(const struct sample_row *row, void *ctx)
{
    struct seen *s = ctx;
    if (row->pid >= SAMPLER_FILL_PID0) {
        s->ours++;
        s->count += row->count;
    } else {
        s->other++;
    }
}

static void test_fill_and_drain(void **state)
{
    /* Sample only this (mostly sleeping) process, so the program itself
     * adds few rows. */
    struct sampler_opts o = {.frequency = 19, .pid = (uint32_t)getpid()};
    struct sampler *s;
    struct seen seen = {0};
    struct sampler_stats st;
    char err[512];

    if (sampler_preflight(err, sizeof(err)) != 0 || !(s = sampler_new(&o, err, sizeof(err)))) {
        printf("skipped: %s\n", err);
        skip();
        return;
    }
    assert_int_equal(sampler_fill_for_bench(s, 300), 300);
    int n = sampler_drain(s, cb, &seen);
    assert_true(n >= 300);
    assert_int_equal(seen.ours, 300);
    assert_int_equal(seen.count, 300);
    sampler_get_stats(s, &st);
    assert_true(st.rows >= 300);

    /* Drained rows are deleted: neither set holds them any more. */
    seen = (struct seen){0};
    assert_true(sampler_drain(s, cb, &seen) >= 0);
    assert_true(sampler_drain(s, cb, &seen) >= 0);
    assert_int_equal(seen.ours, 0);
    sampler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_and_drain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
