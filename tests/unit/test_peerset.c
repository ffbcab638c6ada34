/* SPDX-License-Identifier: Apache-2.0 */
/* query/engine/peerset.c: the peers a worker finds through --peers-dns, with
 * an injected resolver: own addresses left out, static peers kept, the list
 * changing with the answers, failures and empty answers leaving the worker
 * alone (and counted), the refresh thread picking up a change. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "query/engine/peerset.h"

/* What the fake DNS answers: up to 8 addresses, or an error. */
struct fake_dns {
    const char *addrs[8];
    int err; /* negative errno instead of addresses */
    int calls;
    char last_name[256];
};

static int fake_resolve(const char *name, char addrs[][64], size_t max, void *ctx)
{
    struct fake_dns *d = ctx;
    size_t n = 0;

    __atomic_add_fetch(&d->calls, 1, __ATOMIC_SEQ_CST);
    snprintf(d->last_name, sizeof(d->last_name), "%s", name);
    if (d->err)
        return d->err;
    for (; n < 8 && n < max && d->addrs[n]; n++)
        snprintf(addrs[n], 64, "%s", d->addrs[n]);
    return (int)n;
}

/* The list as one comma-joined string (static buffer). */
static const char *list(struct peerset *ps)
{
    static char out[1024];
    char **v;
    size_t n, o = 0;

    assert_int_equal(peerset_snapshot(ps, &v, &n), 0);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", i ? "," : "", v[i]);
    free(v);
    return out;
}

static struct peerset *make(struct fake_dns *d, const char *dns, char **stat, size_t nstat,
                            char **self, size_t nself)
{
    struct peerset_opts o = {.peers = stat,
                             .npeers = nstat,
                             .dns = dns,
                             .default_port = 4040,
                             .self = self,
                             .nself = nself,
                             .resolve = fake_resolve,
                             .resolve_ctx = d,
                             .no_local_addrs = 1};
    int err = 1;
    struct peerset *ps = peerset_new(&o, &err);
    assert_non_null(ps);
    assert_int_equal(err, 0);
    return ps;
}

static void test_self_left_out(void **state)
{
    (void)state;
    struct fake_dns d = {.addrs = {"10.0.0.7", "10.0.0.5", "10.0.0.6", "fd00::9"}};
    char *self[] = {"10.0.0.6"};
    struct peerset *ps =
        make(&d, "stoke-query-peers.stoke.svc.cluster.local:4041", NULL, 0, self, 1);
    struct peerset_stats st;

    /* The first lookup is done by peerset_new: sorted, self gone, IPv6 in
     * brackets, the port from the name. */
    assert_string_equal(d.last_name, "stoke-query-peers.stoke.svc.cluster.local");
    assert_string_equal(list(ps), "10.0.0.5:4041,10.0.0.7:4041,[fd00::9]:4041");
    peerset_stats(ps, &st);
    assert_int_equal(st.lookups, 1);
    assert_int_equal(st.peers, 3);
    assert_int_equal(st.failures + st.empty, 0);
    peerset_free(ps);
}

static void test_changes_and_failures(void **state)
{
    (void)state;
    struct fake_dns d = {.addrs = {"10.0.0.5", "10.0.0.6"}};
    char *stat[] = {"static-a:4040"};
    char *self[] = {"10.0.0.5"};
    struct peerset *ps = make(&d, "peers", stat, 1, self, 1);
    struct peerset_stats st;

    /* Default port: the worker's own (4040). Static first. */
    assert_string_equal(list(ps), "static-a:4040,10.0.0.6:4040");
    /* A scale-up: two more pods. */
    d.addrs[2] = "10.0.0.8";
    d.addrs[3] = "10.0.0.7";
    assert_int_equal(peerset_refresh(ps), 0);
    assert_string_equal(list(ps), "static-a:4040,10.0.0.6:4040,10.0.0.7:4040,10.0.0.8:4040");
    /* DNS fails: the static peers only, the failure counted. */
    d.err = -EAGAIN;
    assert_int_equal(peerset_refresh(ps), -EAGAIN);
    assert_string_equal(list(ps), "static-a:4040");
    /* Only this worker is left: answers alone, counted as empty. */
    d.err = 0;
    d.addrs[0] = "10.0.0.5";
    d.addrs[1] = NULL;
    assert_int_equal(peerset_refresh(ps), 0);
    assert_string_equal(list(ps), "static-a:4040");
    /* A resolved address already among the static peers is listed once. */
    d.addrs[1] = "static-a";
    d.addrs[2] = NULL;
    assert_int_equal(peerset_refresh(ps), 0);
    assert_string_equal(list(ps), "static-a:4040");
    peerset_stats(ps, &st);
    assert_int_equal(st.lookups, 5);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.empty, 1);
    assert_int_equal(st.peers, 1);
    peerset_free(ps);
}

static void test_alone(void **state)
{
    (void)state;
    struct fake_dns d = {.err = -ENOENT};
    struct peerset *ps = make(&d, "nobody", NULL, 0, NULL, 0);
    char **v = (char **)1;
    size_t n = 9;

    assert_int_equal(peerset_snapshot(ps, &v, &n), 0);
    assert_null(v);
    assert_int_equal(n, 0);
    peerset_free(ps);
}

static void test_bad_names(void **state)
{
    (void)state;
    const char *bad[] = {":4040", "name:", "name:0", "name:70000", "name:12x", "a/b:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct peerset_opts o = {.dns = bad[i], .default_port = 4040, .no_local_addrs = 1};
        int err = 0;
        assert_null(peerset_new(&o, &err));
        assert_int_equal(err, -EINVAL);
    }
    /* No port and no default either. */
    struct peerset_opts o = {.dns = "name", .no_local_addrs = 1};
    int err = 0;
    assert_null(peerset_new(&o, &err));
    assert_int_equal(err, -EINVAL);
}

static void test_thread_refreshes(void **state)
{
    (void)state;
    struct fake_dns d = {.addrs = {"10.0.0.1"}};
    struct peerset_opts o = {.dns = "peers:4040",
                             .refresh_ms = 20,
                             .resolve = fake_resolve,
                             .resolve_ctx = &d,
                             .no_local_addrs = 1};
    int err = 0;
    struct peerset *ps = peerset_new(&o, &err);
    assert_non_null(ps);
    assert_string_equal(list(ps), "10.0.0.1:4040");
    d.addrs[1] = "10.0.0.2";
    assert_int_equal(peerset_start(ps), 0);
    for (int i = 0; i < 200 && strcmp(list(ps), "10.0.0.1:4040,10.0.0.2:4040"); i++)
        usleep(10000);
    assert_string_equal(list(ps), "10.0.0.1:4040,10.0.0.2:4040");
    assert_true(__atomic_load_n(&d.calls, __ATOMIC_SEQ_CST) >= 2);
    peerset_free(ps); /* joins the thread */
}

/* The real resolver: "localhost" is this machine, so with the local
 * addresses left out nothing remains. */
static void test_getaddrinfo_self(void **state)
{
    (void)state;
    struct peerset_opts o = {.dns = "localhost:4040"};
    int err = 0;
    struct peerset *ps = peerset_new(&o, &err);
    struct peerset_stats st;
    assert_non_null(ps);
    assert_string_equal(list(ps), "");
    peerset_stats(ps, &st);
    assert_int_equal(st.empty + st.failures, 1);
    peerset_free(ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_left_out),
        cmocka_unit_test(test_changes_and_failures),
        cmocka_unit_test(test_alone),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_thread_refreshes),
        cmocka_unit_test(test_getaddrinfo_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
