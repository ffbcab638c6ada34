/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent/kubelet.c: the kubelet's /pods answer (tests/data/kubelet/pods.json,
 * a PodList of five pods as the kubelet answers: a Deployment's pod with two
 * containerd containers, CoreDNS under cri-o, a StatefulSet's pod under
 * docker with an init container, a Pending pod whose container has no id
 * yet, a static pod) parsed and matched to processes whose
 * /proc/PID/cgroup has each layout the runtimes write
 * (tests/data/kubelet/cgroup/: cgroup v2 systemd slices for containerd and
 * cri-o, cgroup v1 and v2 cgroupfs); service-name rule 3 and its labels;
 * garbage answers refused; an unreachable kubelet counted.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/kubelet.h"
#include "agent/procinfo.h"
#include "common/file.h"

#define DATA       "tests/data/kubelet/"
#define C_FRONTEND "3f2a9c1b7e5d4a60b8c2e91f0d7a6b5c4e3d2f1a0b9c8d7e6f5a4b3c2d1e0f9a"
#define C_ENVOY    "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define C_COREDNS  "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
#define C_REDIS    "5d41402abc4b2a76b9719d911017c592ae2b1f0c8d7e6a5b4c3d2e1f0a9b8c7d"
#define C_REDIS_I  "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d"
#define C_PROXY    "7b52009b64fd0a2a49e6d8a939753077792b0554d2e1f0a9b8c7d6e5f4a3b2c1"
#define U_FRONTEND "6f1c5d2e-8a3b-4c7d-9e0f-1a2b3c4d5e6f"

static struct kube_pods *parse_file(const char *name)
{
    char *buf = NULL, err[256];
    size_t len = 0;
    struct kube_pods *p = NULL;

    assert_int_equal(read_file(name, 1 << 20, &buf, &len), 0);
    int rc = kube_pods_parse(buf, len, &p, err, sizeof(err));
    if (rc)
        fail_msg("%s: %s", name, err);
    free(buf);
    return p;
}

struct want {
    const char *cid, *pod_uid; /* looked up by */
    const char *ns, *pod, *container, *service;
};

static const struct want wants[] = {
    {C_FRONTEND, NULL, "shop", "frontend-7d4b9cf5d6-x2kqz", "frontend", "shop/frontend"},
    {C_ENVOY, NULL, "shop", "frontend-7d4b9cf5d6-x2kqz", "envoy", "shop/frontend"},
    /* k8s-app only: no app label, no service name from the pod */
    {C_COREDNS, NULL, "kube-system", "coredns-76f75df574-9wq8d", "coredns", NULL},
    {C_REDIS, NULL, "shop", "redis-0", "redis", "shop/redis"},
    {C_REDIS_I, NULL, "shop", "redis-0", "init-config", "shop/redis"},
    {C_PROXY, NULL, "kube-system", "kube-proxy-node-1", "kube-proxy", NULL},
    /* a container the list does not know, in a pod it knows */
    {"ee00000000000000000000000000000000000000000000000000000000000000", U_FRONTEND, "shop",
     "frontend-7d4b9cf5d6-x2kqz", NULL, "shop/frontend"},
    /* the Pending pod: by its uid only (its container has no id yet) */
    {NULL, "e8f0a1b2-c3d4-4e5f-a6b7-c8d9e0f1a2b3", "batch", "report-28911840-q7v2m", NULL,
     "batch/report"},
};

static void test_recorded_podlist(void **state)
{
    (void)state;
    struct kube_pods *p = parse_file(DATA "pods.json");

    assert_int_equal(p->npods, 5);
    assert_int_equal(p->nctrs, 6); /* the Pending pod's container has no id */
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
        const struct want *w = &wants[i];
        const char *cn = "x";
        const struct kube_pod *pod = kube_pods_find(p, w->cid, w->pod_uid, &cn);
        assert_non_null(pod);
        struct label_set ls = {0};
        char *svc = (char *)1;
        assert_int_equal(kube_pod_labels(pod, cn, &ls, &svc), 0);
        assert_string_equal(label_set_get(&ls, "namespace"), w->ns);
        assert_string_equal(label_set_get(&ls, "pod"), w->pod);
        if (w->container)
            assert_string_equal(label_set_get(&ls, "container"), w->container);
        else
            assert_null(label_set_get(&ls, "container"));
        if (w->service)
            assert_string_equal(svc, w->service);
        else
            assert_null(svc);
        free(svc);
        label_set_clear(&ls);
    }
    const char *cn;
    assert_null(kube_pods_find(
        p, "ff2a9c1b7e5d4a60b8c2e91f0d7a6b5c4e3d2f1a0b9c8d7e6f5a4b3c2d1e0f9a", NULL, &cn));
    assert_null(kube_pods_find(p, NULL, "00000000-0000-0000-0000-000000000000", &cn));
    assert_null(kube_pods_find(p, NULL, NULL, &cn));

    /* Pod labels: sanitized names, the per-revision hashes left out. */
    const struct kube_pod *fe = kube_pods_find(p, C_FRONTEND, NULL, &cn);
    struct label_set ls = {0};
    char *svc;
    assert_int_equal(kube_pod_labels(fe, cn, &ls, &svc), 0);
    assert_string_equal(label_set_get(&ls, "pod_label_app_kubernetes_io_name"), "frontend");
    assert_string_equal(label_set_get(&ls, "pod_label_app_kubernetes_io_part_of"), "shop");
    assert_string_equal(label_set_get(&ls, "pod_label_tier"), "web");
    assert_null(label_set_get(&ls, "pod_label_pod_template_hash"));
    assert_int_equal(ls.n, 3 + 3);
    free(svc);
    label_set_clear(&ls);
    const struct kube_pod *redis = kube_pods_find(p, C_REDIS, NULL, &cn);
    assert_int_equal(redis->nlabels, 1); /* app; the three StatefulSet labels left out */
    /* app.kubernetes.io/name wins over app */
    const struct kube_pod *rep =
        kube_pods_find(p, NULL, "e8f0a1b2-c3d4-4e5f-a6b7-c8d9e0f1a2b3", &cn);
    assert_string_equal(rep->app, "report");
    kube_pods_free(p);
}

struct bad_case {
    const char *json;
    const char *err; /* a part of the message */
};

static const struct bad_case bad_cases[] = {
    {"", "not JSON"},
    {"<html><body>404 page not found</body></html>", "not JSON"},
    {"{\"kind\":\"PodList\",\"items\":", "not JSON"},
    {"[]", "not a PodList"},
    {"{\"kind\":\"PodList\"}", "not a PodList"},
    {"{\"kind\":\"PodList\",\"items\":{}}", "not a PodList"},
    {"{\"kind\":\"NodeList\",\"items\":[]}", "not a PodList"},
    {"{\"kind\":7,\"items\":[]}", "not a PodList"},
    {"\"PodList\"", "not a PodList"},
};

static void test_garbage(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct kube_pods *p = (struct kube_pods *)1;
        char err[256] = "";
        int rc =
            kube_pods_parse(bad_cases[i].json, strlen(bad_cases[i].json), &p, err, sizeof(err));
        assert_int_equal(rc, -EINVAL);
        assert_null(p);
        if (!strstr(err, bad_cases[i].err))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad_cases[i].err);
    }
    const char *files[] = {DATA "forbidden.json", DATA "truncated.json"};
    for (size_t i = 0; i < 2; i++) {
        char *buf, err[256];
        size_t len;
        struct kube_pods *p;
        assert_int_equal(read_file(files[i], 1 << 20, &buf, &len), 0);
        assert_int_equal(kube_pods_parse(buf, len, &p, err, sizeof(err)), -EINVAL);
        free(buf);
    }
    /* Too many pods. */
    size_t n = KUBE_MAX_PODS + 1, cap = n * 3 + 64, o = 0;
    char *big = malloc(cap), err[256];
    struct kube_pods *p;
    o += (size_t)snprintf(big + o, cap - o, "{\"kind\":\"PodList\",\"items\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(big + o, cap - o, "%s{}", i ? "," : "");
    o += (size_t)snprintf(big + o, cap - o, "]}");
    assert_int_equal(kube_pods_parse(big, o, &p, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "more than"));
    free(big);
}

/* Odd but valid: what is unusable is skipped, the rest kept. */
static void test_odd_pods(void **state)
{
    (void)state;
    const char *json =
        "{\"kind\":\"PodList\",\"items\":["
        "{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"}},"           /* no uid */
        "{\"metadata\":{\"name\":\"b\",\"namespace\":\"n\",\"uid\":7}}," /* uid no string */
        "{\"metadata\":[],\"status\":{}},"                               /* metadata no object */
        "7,"                                                             /* not an object */
        "{\"metadata\":{\"name\":\"c\",\"namespace\":\"n\",\"uid\":\"u-c\","
        "\"labels\":{\"app\":7,\"x\":\"1\",\"\":\"empty\",\"app.kubernetes.io/name\":\"\"}},"
        "\"status\":{\"containerStatuses\":["
        "{\"name\":\"k\",\"containerID\":\"containerd://" C_PROXY "\"},"  /* fine */
        "{\"name\":\"s\",\"containerID\":\"containerd://abc\"},"          /* short */
        "{\"name\":\"h\",\"containerID\":\"containerd://" C_PROXY "0\"}," /* long */
        "{\"name\":\"g\",\"containerID\":\"docker://zz" C_PROXY "\"},"    /* not hex */
        "{\"name\":\"i\",\"containerID\":\"" C_PROXY "\"},"               /* no scheme */
        "{\"name\":\"u\",\"containerID\":\"cri-o://"
        "7B52009B64FD0A2A49E6D8A939753077792B0554D2E1F0A9B8C7D6E5F4A3B2C2"
        "\"},"
        "{\"containerID\":null}, 5, []]}}"
        "]}";
    struct kube_pods *p;
    char err[256];
    const char *cn;

    assert_int_equal(kube_pods_parse(json, strlen(json), &p, err, sizeof(err)), 0);
    assert_int_equal(p->npods, 1);
    assert_int_equal(p->nctrs, 2);
    assert_string_equal(p->pods[0].name, "c");
    assert_null(p->pods[0].app);             /* app no string, app.kubernetes.io/name empty */
    assert_int_equal(p->pods[0].nlabels, 1); /* x: no name, no value, no string are skipped */
    /* upper-case hex is taken, lower-cased */
    assert_non_null(kube_pods_find(
        p, "7b52009b64fd0a2a49e6d8a939753077792b0554d2e1f0a9b8c7d6e5f4a3b2c2", NULL, &cn));
    assert_string_equal(cn, "u");
    kube_pods_free(p);
}

/* ---- processes named on a fake /proc tree --------------------------------- */

static void put(const char *dir, const char *name, const char *data, size_t len)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* @root/@pid with a stat, the cgroup file @cgroup_fixture, @env ('|'
 * separates entries) and an exe link to /usr/bin/@comm. */
static void fake_proc(const char *root, unsigned pid, const char *comm, const char *cgroup_fixture,
                      const char *env)
{
    char dir[PATH_MAX], buf[512], p[PATH_MAX + 16], exe[64], *cg;
    size_t len;

    snprintf(dir, sizeof(dir), "%s/%u", root, pid);
    mkdir(dir, 0755);
    int n = snprintf(buf, sizeof(buf),
                     "%u (%s) S 1 %u %u 0 -1 4194560 12 0 0 0 3 4 0 0 20 0 1 0 %u 8392704 200 "
                     "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
                     pid, comm, pid, pid, 1000 + pid);
    put(dir, "stat", buf, (size_t)n);
    snprintf(p, sizeof(p), DATA "cgroup/%s", cgroup_fixture);
    assert_int_equal(read_file(p, 1 << 16, &cg, &len), 0);
    put(dir, "cgroup", cg, len);
    free(cg);
    char *e = strdup(env);
    size_t el = strlen(e);
    for (size_t i = 0; i < el; i++)
        if (e[i] == '|')
            e[i] = '\0';
    put(dir, "environ", e, el ? el + 1 : 0);
    free(e);
    snprintf(p, sizeof(p), "%s/exe", dir);
    snprintf(exe, sizeof(exe), "/usr/bin/%s", comm);
    unlink(p);
    assert_int_equal(symlink(exe, p), 0);
}

struct proc_want {
    unsigned pid;
    const char *comm, *cgroup, *env;
    const char *service, *source, *ns, *pod, *container;
};

static const struct proc_want procs[] = {
    {101, "frontend", "containerd-v2-systemd", "PATH=/bin", "shop/frontend", "kubernetes_label",
     "shop", "frontend-7d4b9cf5d6-x2kqz", "frontend"},
    {102, "coredns", "crio-v2-systemd", "", "coredns", "executable", "kube-system",
     "coredns-76f75df574-9wq8d", "coredns"},
    {103, "redis-server", "docker-v1-cgroupfs", "HOME=/data", "shop/redis", "kubernetes_label",
     "shop", "redis-0", "redis"},
    {104, "kube-proxy", "containerd-v2-cgroupfs", "", "kube-proxy", "executable", "kube-system",
     "kube-proxy-node-1", "kube-proxy"},
    /* the environment wins over the pod's label (rule 1 before rule 3) */
    {105, "frontend", "containerd-v2-systemd", "OTEL_SERVICE_NAME=checkout", "checkout",
     "OTEL_SERVICE_NAME", "shop", "frontend-7d4b9cf5d6-x2kqz", "frontend"},
    /* its container unknown, its pod known */
    {106, "sidecar", "pod-only-v2-systemd", "", "shop/frontend", "kubernetes_label", "shop",
     "frontend-7d4b9cf5d6-x2kqz", NULL},
};

static void check_proc(const struct proc_info *pi, const struct proc_want *w)
{
    assert_non_null(pi);
    assert_string_equal(pi->service_name, w->service);
    assert_string_equal(pi->service_source, w->source);
    assert_string_equal(label_set_get(&pi->labels, "service_name"), w->service);
    assert_string_equal(label_set_get(&pi->labels, "namespace"), w->ns);
    assert_string_equal(label_set_get(&pi->labels, "pod"), w->pod);
    if (w->container)
        assert_string_equal(label_set_get(&pi->labels, "container"), w->container);
    else
        assert_null(label_set_get(&pi->labels, "container"));
}

static void test_processes(void **state)
{
    (void)state;
    char root[] = "/tmp/stoke-kubelet-XXXXXX", cmd[64];
    assert_non_null(mkdtemp(root));
    struct proc_cache *c = proc_cache_new(root, "node-1");
    struct kubelet_opts ko = {.url = "http://127.0.0.1:1"};
    int err;
    struct kubelet *k = kubelet_new(&ko, &err);
    assert_non_null(c);
    assert_non_null(k);
    proc_cache_set_kubelet(c, k);

    for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++)
        fake_proc(root, procs[i].pid, procs[i].comm, procs[i].cgroup, procs[i].env);
    /* Before any list: named by the other rules, no pod labels. */
    const struct proc_info *pi = proc_cache_get(c, 101);
    assert_non_null(pi);
    assert_string_equal(pi->service_name, "frontend");
    assert_null(label_set_get(&pi->labels, "namespace"));
    assert_string_equal(label_set_get(&pi->labels, "container_id"), C_FRONTEND);

    /* The list arrives: the next window names it again. */
    kubelet_set_pods(k, parse_file(DATA "pods.json"));
    proc_cache_sweep(c, 1);
    for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++)
        check_proc(proc_cache_get(c, procs[i].pid), &procs[i]);
    /* A found process is not read again on the next list. */
    pi = proc_cache_get(c, 101);
    kubelet_set_pods(k, NULL);
    proc_cache_sweep(c, 2);
    assert_ptr_equal(proc_cache_get(c, 101), pi);
    assert_string_equal(label_set_get(&pi->labels, "namespace"), "shop");

    /* A host process (no container) is never looked up. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/200", root);
    mkdir(dir, 0755);
    const char *st = "200 (sshd) S 1 200 200 0 -1 4194560 12 0 0 0 3 4 0 0 20 0 1 0 9 8392704 200 "
                     "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    put(dir, "stat", st, strlen(st));
    put(dir, "cgroup", "0::/system.slice/ssh.service\n", 29);
    put(dir, "environ", "", 0);
    pi = proc_cache_get(c, 200);
    assert_string_equal(pi->service_name, "ssh");
    assert_null(label_set_get(&pi->labels, "namespace"));

    proc_cache_free(c);
    kubelet_free(k);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

/* Nothing listens on port 1: counted, no list, no crash. */
static void test_unreachable(void **state)
{
    (void)state;
    struct kubelet_opts ko = {.url = "http://127.0.0.1:1/", .timeout_s = 2};
    int err;
    struct kubelet *k = kubelet_new(&ko, &err);
    struct kubelet_stats st;
    struct label_set ls = {0};
    char *svc;

    assert_non_null(k);
    assert_int_equal(kubelet_fetch(k), -EIO);
    assert_int_equal(kubelet_fetch(k), -EIO);
    kubelet_get_stats(k, &st);
    assert_int_equal(st.fetches, 2);
    assert_int_equal(st.fetch_errors, 2);
    assert_int_equal(st.parse_errors, 0);
    assert_false(st.ok);
    assert_int_equal(st.generation, 0);
    assert_int_equal(kubelet_lookup(k, C_FRONTEND, NULL, &ls, &svc), 0);
    assert_int_equal(ls.n, 0);
    kubelet_free(k);

    /* Not a URL it can use. */
    const char *bad[] = {NULL, "", "ftp://x/", "file:///etc/passwd", "127.0.0.1:10250"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kubelet_opts o = {.url = bad[i]};
        assert_null(kubelet_new(&o, &err));
        assert_int_equal(err, -EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_podlist), cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_odd_pods),         cmocka_unit_test(test_processes),
        cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
