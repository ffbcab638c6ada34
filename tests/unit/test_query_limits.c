/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for what bounds a query worker's work: the one time-range
 * check every API applies (overflowing and out-of-range times refused,
 * naming the parameter), the cancellation of a query (deadline, client
 * gone, stop; the first reason sticks), the connection guard (phase
 * deadlines that trickled bytes do not extend, eviction of the oldest
 * reader, with the default timeouts), the work pool (bounded, 429 when
 * full, closing runs what is queued), the limits' defaults, and the memory
 * budgets' accounting (query/engine/qmem.h: per query and worker-wide,
 * refusals not kept, everything given back, exact under threads).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "query/engine/cancel.h"
#include "query/serve/connguard.h"
#include "query/serve/http.h"
#include "query/engine/plan.h"
#include "query/engine/qmem.h"
#include "query/serve/workpool.h"

#define DAY 86400000LL

static void test_range_check(void **state)
{
    static const struct {
        int64_t from, until;
        const char *msg; /* NULL = accepted */
    } cases[] = {
        {1700000000000LL, 1700000060000LL, NULL},
        {0, 1, NULL},
        {0, 31 * DAY, NULL},
        {QUERY_MAX_TIME_MS - 31 * DAY, QUERY_MAX_TIME_MS, NULL},
        /* until - from overflows int64: these wrapped to a small
         * positive range before and passed the 31-day check */
        {-9000000000000000000LL, 9000000000000000000LL, "from: -9000000000000000000 is out"},
        {INT64_MIN, INT64_MAX, "from: -9223372036854775808 is out"},
        {INT64_MIN, 0, "from: -9223372036854775808 is out"},
        {0, INT64_MAX, "until: 9223372036854775807 is out"},
        {INT64_MAX - 1, INT64_MAX, "from: 9223372036854775806 is out"},
        {-1, 1, "from: -1 is out of range"},
        {QUERY_MAX_TIME_MS, QUERY_MAX_TIME_MS + 1, "until: 253402300800000 is out"},
        {5, 5, "from: must be before until (5 >= 5)"},
        {6, 5, "from: must be before until"},
        {0, 31 * DAY + 1, "until: the range from from is longer than 31 days"},
    };
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        int rc = plan_range_check(cases[i].from, cases[i].until, "from", "until", err, sizeof(err));
        if (!cases[i].msg) {
            if (rc)
                fail_msg("[%lld, %lld): %s", (long long)cases[i].from, (long long)cases[i].until,
                         err);
            continue;
        }
        if (rc != -EINVAL || !strstr(err, cases[i].msg))
            fail_msg("[%lld, %lld): rc %d, '%s', want '%s'", (long long)cases[i].from,
                     (long long)cases[i].until, rc, err, cases[i].msg);
    }
    /* The parameter names are the caller's. */
    assert_int_equal(plan_range_check(0, INT64_MAX, "left_from", "left_until", err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "left_until: "));
}

/* A planner given any range either refuses it or touches at most
 * PLAN_MAX_DAYS days (an empty store: only the day listing runs). */
static void test_plan_bounded(void **state)
{
    char dir[64] = "/tmp/stoke-ql-XXXXXX", err[256], cmd[128];
    assert_non_null(mkdtemp(dir));
    struct store_opts so = {.url = dir};
    struct store *st = store_open(&so, err, sizeof(err));
    assert_non_null(st);
    static const int64_t r[][2] = {{-9000000000000000000LL, 9000000000000000000LL},
                                   {INT64_MIN, INT64_MAX},
                                   {0, 31 * DAY},
                                   {QUERY_MAX_TIME_MS - 31 * DAY, QUERY_MAX_TIME_MS}};
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        struct plan_req pr = {.tenant = "default", .from = r[i][0], .until = r[i][1]};
        struct plan *p = NULL;
        int rc = plan_build(st, NULL, &pr, &p, err, sizeof(err));
        if (i < 2) {
            assert_int_equal(rc, -EINVAL);
            assert_null(p);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(p->n, 0);
            plan_free(p);
        }
    }
    store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int gone_calls;
static bool gone_after_two(void *ctx)
{
    return ++gone_calls > 2;
}

static void test_cancel(void **state)
{
    struct qcancel c;
    atomic_bool stop = false;

    /* None of the three: never cancelled. */
    assert_int_equal(qcancel_check(NULL), 0);
    qcancel_init(&c, 0, &stop, NULL, NULL);
    assert_int_equal(qcancel_check(&c), 0);
    assert_int_equal(qcancel_left_ms(&c), -1);

    /* The deadline. */
    qcancel_init(&c, 20, NULL, NULL, NULL);
    assert_int_equal(qcancel_check(&c), 0);
    assert_true(qcancel_left_ms(&c) > 0 && qcancel_left_ms(&c) <= 20);
    usleep(30000);
    assert_int_equal(qcancel_left_ms(&c), 0);
    assert_int_equal(qcancel_check(&c), -ETIMEDOUT);

    /* Stopping, and the first reason sticks. */
    qcancel_init(&c, 20, &stop, NULL, NULL);
    stop = true;
    assert_int_equal(qcancel_check(&c), -ECANCELED);
    usleep(30000);
    assert_int_equal(qcancel_check(&c), -ECANCELED);
    stop = false;

    /* The client: asked at most every QCANCEL_POLL_MS. */
    gone_calls = 0;
    qcancel_init(&c, 0, &stop, gone_after_two, NULL);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(qcancel_check(&c), 0);
    assert_int_equal(gone_calls, 0);
    int rc = 0;
    for (int i = 0; i < 100 && !rc; i++) {
        usleep(QCANCEL_POLL_MS * 1000 + 5000);
        rc = qcancel_check(&c);
    }
    assert_int_equal(rc, -ECANCELED);
    assert_int_equal(gone_calls, 3);

    /* A huge timeout is no deadline, not an overflow. */
    qcancel_init(&c, UINT64_MAX, NULL, NULL, NULL);
    assert_int_equal(qcancel_left_ms(&c), -1);
    assert_int_equal(qcancel_check(&c), 0);
}

static void test_socket_gone(void **state)
{
    int sv[2];
    char b[4];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_false(qcancel_socket_gone(sv[0]));
    /* a pipelined request waiting: not gone */
    assert_int_equal(write(sv[1], "GET", 3), 3);
    assert_false(qcancel_socket_gone(sv[0]));
    assert_int_equal(read(sv[0], b, 3), 3);
    close(sv[1]);
    assert_true(qcancel_socket_gone(sv[0]));
    close(sv[0]);
}

/* Was @fd cut (the peer end @peer sees end of file)? */
static bool was_cut(int peer)
{
    char b;
    return recv(peer, &b, 1, MSG_DONTWAIT) == 0;
}

static void test_connguard(void **state)
{
    struct http_opts ho = {0};
    struct http_limits lim;
    int sv[6][2];

    http_limits(&ho, 1 << 20, &lim);
    /* The default deadlines, swept by hand. */
    struct connguard_opts go = {.read_timeout_ms = lim.read_timeout_ms,
                                .write_timeout_ms = lim.write_timeout_ms,
                                .max_reading = 4,
                                .manual = true};
    struct connguard *g = connguard_new(&go);
    assert_non_null(g);
    for (int i = 0; i < 6; i++)
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
    int64_t t0 = qcancel_now_us();
    struct connguard_conn *c0 = connguard_open(g, sv[0][0]);
    struct connguard_conn *c1 = connguard_open(g, sv[1][0]);
    struct connguard_conn *c2 = connguard_open(g, sv[2][0]);
    assert_non_null(c0);
    /* c1 got its request: working, then sending; c2 kept alive (reading
     * its next request from now). */
    connguard_working(g, c1);
    int64_t t1 = qcancel_now_us();
    int64_t rt = (int64_t)lim.read_timeout_ms * 1000, wt = (int64_t)lim.write_timeout_ms * 1000;
    /* Bytes trickling in do not matter: only the phase's start does. */
    assert_int_equal(connguard_sweep(g, t0 + rt - 1000000), 0);
    assert_false(was_cut(sv[0][1]));
    /* t2 before the phase starts, so that c1's deadline is at least t2 + wt
     * however long the call takes (after it, a busy machine made the sweep
     * at t2 + wt - 1 cut c1); and 2 ms after t1, so that c2's new phase
     * starts after t1 (in the same microsecond, the sweep at t1 + rt cut
     * c2 too: seen once in CI) */
    usleep(2000);
    int64_t t2 = qcancel_now_us();
    connguard_sending(g, c1);
    connguard_reading(g, c2);
    int64_t t3 = qcancel_now_us();
    assert_int_equal(connguard_sweep(g, t1 + rt), 1); /* c0, reading since t0 <= t1 */
    assert_true(was_cut(sv[0][1]));
    assert_false(was_cut(sv[1][1]));
    assert_false(was_cut(sv[2][1]));
    assert_int_equal(connguard_sweep(g, t3 + rt), 1); /* c2 */
    assert_true(was_cut(sv[2][1]));
    assert_false(was_cut(sv[1][1]));
    assert_int_equal(connguard_sweep(g, t2 + wt - 1), 0); /* c1 sending */
    assert_int_equal(connguard_sweep(g, t2 + wt + 1000000), 1);
    assert_true(was_cut(sv[1][1]));
    /* A cut connection stays cut. */
    connguard_reading(g, c0);
    assert_int_equal(connguard_sweep(g, INT64_MAX / 2), 0);

    struct connguard_stats gs;
    connguard_stats(g, &gs);
    assert_int_equal(gs.cut_reading, 2);
    assert_int_equal(gs.cut_sending, 1);
    assert_int_equal(gs.open, 3);
    connguard_close(g, c0);
    connguard_close(g, c1);
    connguard_close(g, c2);

    /* Eviction: at most 4 reading; the oldest reader goes, a working one
     * never. */
    struct connguard_conn *c[6];
    c[0] = connguard_open(g, sv[3][0]);
    connguard_working(g, c[0]);
    c[1] = connguard_open(g, sv[4][0]);
    for (int i = 2; i < 5; i++)
        c[i] = connguard_open(g, sv[5][0]); /* the same socket: only counts */
    assert_false(was_cut(sv[4][1]));
    c[5] = connguard_open(g, sv[5][0]);
    connguard_stats(g, &gs);
    assert_int_equal(gs.evicted, 1);
    assert_int_equal(gs.reading, 4);
    assert_true(was_cut(sv[4][1]));
    assert_false(was_cut(sv[3][1]));
    for (int i = 0; i < 6; i++)
        connguard_close(g, c[i]);
    connguard_stats(g, &gs);
    assert_int_equal(gs.open, 0);
    connguard_free(g);
    for (int i = 0; i < 6; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
}

/* The sweeping thread cuts a slow reader on its own. */
static void test_connguard_thread(void **state)
{
    struct connguard_opts go = {.read_timeout_ms = 150};
    struct connguard *g = connguard_new(&go);
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct connguard_conn *c = connguard_open(g, sv[0]);
    usleep(100000);
    assert_false(was_cut(sv[1]));
    usleep(100000 + CONNGUARD_SWEEP_MS * 1000);
    assert_true(was_cut(sv[1]));
    connguard_close(g, c);
    connguard_free(g);
    close(sv[0]);
    close(sv[1]);
}

static void test_limits(void **state)
{
    struct http_opts ho = {0};
    struct http_limits l;

    http_limits(&ho, 1 << 20, &l);
    assert_int_equal(l.query_timeout_ms, HTTP_DEFAULT_QUERY_TIMEOUT_MS);
    assert_int_equal(l.read_timeout_ms, HTTP_DEFAULT_READ_TIMEOUT_MS);
    assert_int_equal(l.write_timeout_ms, HTTP_DEFAULT_WRITE_TIMEOUT_MS);
    assert_int_equal(l.max_connections, HTTP_DEFAULT_MAX_CONNECTIONS);
    assert_int_equal(l.max_reading, HTTP_DEFAULT_MAX_CONNECTIONS * 3 / 4);
    assert_int_equal(l.max_queries, HTTP_DEFAULT_MAX_QUERIES);
    assert_int_equal(l.max_waiting, 4 * HTTP_DEFAULT_MAX_QUERIES);
    assert_int_equal(l.max_per_ip, 0);
    assert_int_equal(l.query_memory, (uint64_t)QMEM_DEFAULT_QUERY_MB << 20);
    assert_int_equal(l.total_query_memory, (uint64_t)QMEM_DEFAULT_TOTAL_MB << 20);
    /* The defaults hold the 300 slow clients and leave room. */
    assert_true(l.max_reading > 300);
    assert_true(l.read_timeout_ms <= 10000);
    /* A soft descriptor limit of 1024 caps the connections. */
    http_limits(&ho, 1024, &l);
    assert_int_equal(l.max_connections, 1024 - HTTP_FD_RESERVE);
    assert_int_equal(l.max_reading, (1024 - HTTP_FD_RESERVE) * 3 / 4);
    ho = (struct http_opts){.max_connections = 2, .max_queries = 1, .query_timeout_ms = 5};
    http_limits(&ho, 1 << 20, &l);
    assert_int_equal(l.max_connections, 2);
    assert_int_equal(l.max_reading, 1);
    assert_int_equal(l.query_timeout_ms, 5);
    assert_int_equal(l.max_waiting, 4);
    /* A query may never have more than all queries together. */
    ho = (struct http_opts){.query_memory = 64 << 20, .total_query_memory = 8 << 20};
    http_limits(&ho, 1 << 20, &l);
    assert_int_equal(l.query_memory, 8 << 20);
    assert_int_equal(l.total_query_memory, 8 << 20);
}

struct job {
    pthread_mutex_t *gate;
    int *ran;
};

static pthread_mutex_t ran_lock = PTHREAD_MUTEX_INITIALIZER;

static void run_job(void *arg)
{
    struct job *j = arg;
    pthread_mutex_lock(j->gate);
    pthread_mutex_unlock(j->gate);
    pthread_mutex_lock(&ran_lock);
    (*j->ran)++;
    pthread_mutex_unlock(&ran_lock);
}

static void test_workpool(void **state)
{
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    int ran = 0;
    struct job j = {&gate, &ran};
    struct workpool *p = workpool_new(2, 3, run_job);

    assert_non_null(p);
    pthread_mutex_lock(&gate); /* every job blocks until the gate opens */
    int ok = 0, full = 0;
    for (int i = 0; i < 10; i++) {
        int rc = workpool_submit(p, &j);
        if (rc == 0)
            ok++;
        else if (rc == -EAGAIN)
            full++;
        else
            fail_msg("submit: %d", rc);
    }
    /* 2 running + 3 waiting. */
    assert_int_equal(ok, 5);
    assert_int_equal(full, 5);
    pthread_mutex_unlock(&gate);
    workpool_close(p); /* runs the queued ones too */
    assert_int_equal(ran, 5);
    assert_int_equal(workpool_submit(p, &j), -ESHUTDOWN);
    workpool_free(p);
}

static void test_qmem(void **state)
{
    struct qmem_pool pool;
    struct qmem a, b;
    /* Steps on two queries of one pool: who, +charge / -release, the
     * expected answer, then both queries' and the pool's use. */
    static const struct {
        int who;
        int64_t n;
        int rc;
        uint64_t a, b, pool;
    } steps[] = {
        {0, 600, 0, 600, 0, 600},
        {0, 401, -E2BIG, 600, 0, 600}, /* a's limit is 1000 */
        {0, 400, 0, 1000, 0, 1000},    /* exactly the limit is fine */
        {1, 900, 0, 1000, 900, 1900},
        {1, 101, -ENOBUFS, 1000, 900, 1900}, /* b's limit is 1500, the pool's 2000 */
        {1, 100, 0, 1000, 1000, 2000},
        {0, -300, 0, 700, 1000, 1700},
        {1, 501, -E2BIG, 700, 1000, 1700},
        {0, 300, 0, 1000, 1000, 2000},
        {0, -5000, 0, 0, 1000, 1000}, /* over-release: never below zero */
        {1, -1000, 0, 0, 0, 0},
        {0, INT64_MAX, -E2BIG, 0, 0, 0}, /* huge: refused, no wrap */
    };

    qmem_pool_init(&pool, 2000);
    qmem_init(&a, &pool, 1000);
    qmem_init(&b, &pool, 1500);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct qmem *m = steps[i].who ? &b : &a;
        int rc = 0;
        if (steps[i].n >= 0)
            rc = qmem_charge(m, (uint64_t)steps[i].n);
        else
            qmem_release(m, (uint64_t)-steps[i].n);
        if (rc != steps[i].rc || atomic_load(&a.used) != steps[i].a ||
            atomic_load(&b.used) != steps[i].b || atomic_load(&pool.used) != steps[i].pool)
            fail_msg("step %zu: rc %d, a %" PRIu64 ", b %" PRIu64 ", pool %" PRIu64, i, rc,
                     (uint64_t)atomic_load(&a.used), (uint64_t)atomic_load(&b.used),
                     (uint64_t)atomic_load(&pool.used));
    }
    assert_int_equal(atomic_load(&pool.peak), 2000);
    assert_int_equal(atomic_load(&a.peak), 1000);
    assert_int_equal(atomic_load(&pool.over_query), 3);
    assert_int_equal(atomic_load(&pool.over_worker), 1);
    /* Admission: full when less than @need is left. */
    assert_false(qmem_pool_full(&pool, 2000));
    assert_int_equal(qmem_charge(&a, 900), 0);
    assert_true(qmem_pool_full(&pool, 1101));
    assert_false(qmem_pool_full(&pool, 1100));
    /* The end of a query gives back what it still holds. */
    qmem_end(&a);
    assert_int_equal(atomic_load(&pool.used), 0);
    assert_int_equal(qmem_resize(&a, 0, 500), 0);
    assert_int_equal(qmem_resize(&a, 500, 1001), -E2BIG);
    assert_int_equal(qmem_resize(&a, 500, 200), 0);
    assert_int_equal(atomic_load(&pool.used), 200);
    qmem_end(&a);
    /* No limits: anything goes; a NULL budget always succeeds. */
    qmem_pool_init(&pool, 0);
    qmem_init(&a, &pool, 0);
    assert_int_equal(qmem_charge(&a, UINT64_MAX / 2), 0);
    assert_false(qmem_pool_full(&pool, UINT64_MAX));
    qmem_end(&a);
    assert_int_equal(qmem_charge(NULL, 1), 0);
    char msg[256];
    qmem_init(&a, &pool, 3u << 20);
    assert_non_null(
        strstr(qmem_error(&a, -E2BIG, msg, sizeof(msg)), "query needs more than 3 MiB of memory"));
    qmem_pool_init(&pool, 96u << 20);
    assert_non_null(strstr(qmem_error(&a, -ENOBUFS, msg, sizeof(msg)), "96 MiB"));
}

/* A refused charge stops the query like a deadline: the reason sticks. */
static void test_qmem_cancel(void **state)
{
    struct qmem_pool pool;
    struct qmem m;
    struct qcancel c;
    uint64_t charged = 0;

    qmem_pool_init(&pool, 1 << 20);
    qmem_init(&m, &pool, 100);
    qcancel_init(&c, 0, NULL, NULL, NULL);
    assert_int_equal(qcancel_charge(&c, 1000), 0); /* no budget set: free */
    c.mem = &m;
    assert_int_equal(qcancel_recharge(&c, &charged, 60), 0);
    assert_int_equal(charged, 60);
    assert_int_equal(qcancel_check(&c), 0);
    assert_int_equal(qcancel_recharge(&c, &charged, 101), -E2BIG);
    assert_int_equal(charged, 60); /* a refusal keeps the old charge */
    assert_int_equal(qcancel_check(&c), -E2BIG);
    assert_int_equal(qcancel_charge(&c, 1), -E2BIG); /* the first reason sticks */
    qcancel_release(&c, 60);
    assert_int_equal(atomic_load(&pool.used), 0);
    assert_int_equal(qcancel_charge(NULL, 5), 0);
}

#define QMEM_THREADS 4
#define QMEM_ROUNDS  20000

static void *qmem_thread(void *arg)
{
    struct qmem *m = arg;

    for (int i = 0; i < QMEM_ROUNDS; i++) {
        uint64_t n = (uint64_t)(i % 97) * 13 + 1;
        if (qmem_charge(m, n) == 0)
            qmem_release(m, n);
    }
    return NULL;
}

/* Threads charging one pool (two per query, as a query's decode threads
 * do): it never goes past its limit and comes back to zero. */
static void test_qmem_threads(void **state)
{
    struct qmem_pool pool;
    struct qmem m[QMEM_THREADS / 2];
    pthread_t t[QMEM_THREADS];

    qmem_pool_init(&pool, 2000);
    for (int i = 0; i < QMEM_THREADS / 2; i++)
        qmem_init(&m[i], &pool, 1500);
    for (int i = 0; i < QMEM_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, qmem_thread, &m[i / 2]), 0);
    for (int i = 0; i < QMEM_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&pool.used), 0);
    assert_true(atomic_load(&pool.peak) <= 2000);
    for (int i = 0; i < QMEM_THREADS / 2; i++) {
        assert_int_equal(atomic_load(&m[i].used), 0);
        assert_true(atomic_load(&m[i].peak) <= 1500);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_check),  cmocka_unit_test(test_plan_bounded),
        cmocka_unit_test(test_cancel),       cmocka_unit_test(test_socket_gone),
        cmocka_unit_test(test_connguard),    cmocka_unit_test(test_connguard_thread),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_workpool),
        cmocka_unit_test(test_qmem),         cmocka_unit_test(test_qmem_cancel),
        cmocka_unit_test(test_qmem_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
