/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for agent/procinfo.c: the stat/cgroup/environ parsers on tables
 * of real-world and hostile inputs, the cache on a fake /proc tree built in a
 * temp dir (PID reuse, vanishing processes, sweep), and real child processes
 * read through the real /proc.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/procinfo.h"

#define CID  "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899"
#define CIDU "3F4E5D6C7B8A99887766554433221100FFEEDDCCBBAA00112233445566778899"
#define UID  "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
#define UIDU "0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0"

/* ---- stat ---------------------------------------------------------------- */

static int mkstat(char *buf, size_t len, unsigned pid, const char *comm, unsigned long long flags,
                  unsigned long long start)
{
    return snprintf(buf, len,
                    "%u (%s) S 1 %u %u 0 -1 %llu 12 0 0 0 3 4 0 0 20 0 1 0 %llu 8392704 200 "
                    "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
                    pid, comm, pid, pid, flags, start);
}

struct stat_case {
    const char *comm_in;
    const char *comm_out;
};

static const struct stat_case stat_cases[] = {
    {"bash", "bash"},
    {"a) b", "a) b"},         /* the (a) b) case: last ')' closes comm */
    {"(sd-pam)", "(sd-pam)"}, /* real systemd comm */
    {"Web Content", "Web Content"},
    {"kworker/0:1H", "kworker/0:1H"},
    {"x) S 1 2 3 4 (", "x) S 1 2 3 4 (" /* 14 bytes: fits */},
    {"0123456789abcdefXYZ", "0123456789abcdef"}, /* garbage-long: cut at 16 */
    {"", ""},
};

static void test_stat_table(void **state)
{
    char buf[512], comm[17];
    uint64_t st, flags;

    for (size_t i = 0; i < sizeof(stat_cases) / sizeof(stat_cases[0]); i++) {
        int n = mkstat(buf, sizeof(buf), 4242, stat_cases[i].comm_in, 0x400040, 987654321);
        memset(comm, 'Z', sizeof(comm));
        st = 0;
        if (procinfo_parse_stat_ex(buf, (size_t)n, comm, &st, &flags) != 0)
            fail_msg("case %zu: '%s' rejected", i, buf);
        assert_string_equal(comm, stat_cases[i].comm_out);
        assert_int_equal(st, 987654321);
        assert_int_equal(flags, 0x400040);
        /* the short form agrees */
        assert_int_equal(procinfo_parse_stat(buf, (size_t)n, comm, &st), 0);
        assert_int_equal(st, 987654321);
    }
    /* a kernel thread's flags */
    int n = mkstat(buf, sizeof(buf), 2, "kthreadd", 0x208040, 1);
    assert_int_equal(procinfo_parse_stat_ex(buf, (size_t)n, comm, &st, &flags), 0);
    assert_true(flags & 0x00200000);
    /* no trailing newline, stops right after field 22 */
    const char *minimal = "7 (m) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77";
    assert_int_equal(procinfo_parse_stat(minimal, strlen(minimal), comm, &st), 0);
    assert_int_equal(st, 77);
}

static const char *const bad_stats[] = {
    "",
    "1234",
    "1234 (bash",
    "1234 bash) S 1",
    "1234 (bash) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18",   /* stops before 22 */
    "1234 (bash) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x", /* non-numeric 22 */
    "1234 (bash) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999 1",
    "1234 (bash)  S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 1", /* double space */
    "1234 (bash) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5x 1",
    "1234 (bash)S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 1",
    ")(",
};

static void test_stat_bad(void **state)
{
    char comm[17];
    uint64_t st;

    for (size_t i = 0; i < sizeof(bad_stats) / sizeof(bad_stats[0]); i++) {
        /* exact-size heap copy: an overread trips ASan */
        size_t len = strlen(bad_stats[i]);
        char *b = malloc(len ? len : 1);
        memcpy(b, bad_stats[i], len);
        if (procinfo_parse_stat(b, len, comm, &st) != -EINVAL)
            fail_msg("accepted bad stat '%s'", bad_stats[i]);
        free(b);
    }
    /* a NUL inside comm and a truncated read: the length rules, not the NUL */
    char buf[256];
    int n = mkstat(buf, sizeof(buf), 1, "a\001b", 0, 5);
    buf[4] = '\0';
    assert_int_equal(procinfo_parse_stat(buf, (size_t)n, comm, &st), 0);
    assert_int_equal(st, 5);
    assert_int_equal(procinfo_parse_stat(buf, 40, comm, &st), -EINVAL);
    assert_int_equal(procinfo_parse_stat(NULL, 0, comm, &st), -EINVAL);
}

/* ---- cgroup --------------------------------------------------------------- */

struct cgroup_case {
    const char *name;
    const char *in;
    int rc;
    const char *path, *cid, *pod, *unit;
};

static const struct cgroup_case cgroup_cases[] = {
    {"docker cgroupfs v1", "12:cpu,cpuacct:/docker/" CID "\n11:memory:/docker/" CID "\n", 0,
     "/docker/" CID, CID, NULL, NULL},
    {"docker systemd driver, hybrid",
     "1:name=systemd:/system.slice/docker-" CID ".scope\n0::/system.slice/docker-" CID ".scope\n",
     0, "/system.slice/docker-" CID ".scope", CID, NULL, NULL},
    {"docker v2, upper-case id is normalised", "0::/system.slice/docker-" CIDU ".scope\n", 0,
     "/system.slice/docker-" CIDU ".scope", CID, NULL, NULL},
    {"containerd cgroupfs (kubepods)", "0::/kubepods/burstable/pod" UID "/" CID "\n", 0,
     "/kubepods/burstable/pod" UID "/" CID, CID, UID, NULL},
    {"containerd systemd driver",
     "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU
     ".slice/cri-containerd-" CID ".scope\n",
     0,
     "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU
     ".slice/cri-containerd-" CID ".scope",
     CID, UID, NULL},
    {"guaranteed qos pod (no qos slice)",
     "0::/kubepods.slice/kubepods-pod" UIDU ".slice/cri-containerd-" CID ".scope", 0,
     "/kubepods.slice/kubepods-pod" UIDU ".slice/cri-containerd-" CID ".scope", CID, UID, NULL},
    {"cri-o",
     "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU ".slice/crio-" CID
     ".scope\n",
     0,
     "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UIDU ".slice/crio-" CID
     ".scope",
     CID, UID, NULL},
    {"cri-o conmon is not the container",
     "0::/kubepods.slice/kubepods-pod" UIDU ".slice/crio-conmon-" CID ".scope\n", 0,
     "/kubepods.slice/kubepods-pod" UIDU ".slice/crio-conmon-" CID ".scope", NULL, UID, NULL},
    {"podman rootful", "0::/machine.slice/libpod-" CID ".scope/container\n", 0,
     "/machine.slice/libpod-" CID ".scope/container", CID, NULL, NULL},
    {"podman rootless",
     "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" CID ".scope\n", 0,
     "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" CID ".scope", CID, NULL,
     "user@1000.service"},
    {"systemd service v2", "0::/system.slice/nginx.service\n", 0, "/system.slice/nginx.service",
     NULL, NULL, "nginx.service"},
    {"systemd service hybrid: name=systemd beats cpu",
     "4:cpu,cpuacct:/\n1:name=systemd:/system.slice/cron.service\n", 0,
     "/system.slice/cron.service", NULL, NULL, "cron.service"},
    {"v2 beats name=systemd",
     "1:name=systemd:/system.slice/old.service\n0::/system.slice/new.service\n", 0,
     "/system.slice/new.service", NULL, NULL, "new.service"},
    {"user service: innermost .service wins",
     "0::/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service\n", 0,
     "/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", NULL, NULL,
     "foo.service"},
    {"templated unit", "0::/system.slice/system-getty.slice/getty@tty1.service\n", 0,
     "/system.slice/system-getty.slice/getty@tty1.service", NULL, NULL, "getty@tty1.service"},
    {"plain user session", "0::/user.slice/user-1000.slice/session-3.scope\n", 0,
     "/user.slice/user-1000.slice/session-3.scope", NULL, NULL, NULL},
    {"root cgroup (kernel thread)", "0::/\n", 0, "/", NULL, NULL, NULL},
    {"v1 only cpu line", "3:cpuacct,cpu:/docker/" CID, 0, "/docker/" CID, CID, NULL, NULL},
    {"static pod uid (32 hex)",
     "0::/kubepods/besteffort/pod0123456789abcdef0123456789abcdef/" CID "\n", 0,
     "/kubepods/besteffort/pod0123456789abcdef0123456789abcdef/" CID, CID,
     "0123456789abcdef0123456789abcdef", NULL},
    {"path with ':'", "0::/odd:path/x.service\n", 0, "/odd:path/x.service", NULL, NULL,
     "x.service"},
    {"63 hex is not an id",
     "0::/docker/"
     "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa0011223344556677889",
     0, "/docker/3f4e5d6c7b8a99887766554433221100ffeeddccbbaa0011223344556677889", NULL, NULL,
     NULL},
    {"non-hex id",
     "0::/docker-"
     "3g4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899.scope",
     0, "/docker-3g4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899.scope", NULL,
     NULL, NULL},
    {"bad pod uid", "0::/kubepods/pod1234/" CID, 0, "/kubepods/pod1234/" CID, CID, NULL, NULL},
    {"only '.service'", "0::/.service\n", 0, "/.service", NULL, NULL, NULL},
    {"garbage", "hello world\n\n::\n", -EINVAL, NULL, NULL, NULL, NULL},
    {"empty", "", -EINVAL, NULL, NULL, NULL, NULL},
    {"non-numeric hierarchy", "x::/system.slice/a.service\n", -EINVAL, NULL, NULL, NULL, NULL},
    {"relative path", "0::system.slice/a.service\n", -EINVAL, NULL, NULL, NULL, NULL},
    {"garbage then valid", "\xff\xfe:\n0::/system.slice/b.service", 0, "/system.slice/b.service",
     NULL, NULL, "b.service"},
};

static void check_str(const char *what, const char *name, const char *got, const char *want)
{
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
        fail_msg("%s: %s = '%s', want '%s'", name, what, got ? got : "(null)",
                 want ? want : "(null)");
}

static void test_cgroup_table(void **state)
{
    for (size_t i = 0; i < sizeof(cgroup_cases) / sizeof(cgroup_cases[0]); i++) {
        const struct cgroup_case *tc = &cgroup_cases[i];
        char *path, *cid, *pod, *unit;
        size_t len = strlen(tc->in);
        char *in = malloc(len ? len : 1);
        memcpy(in, tc->in, len);
        int rc = procinfo_parse_cgroup(in, len, &path, &cid, &pod, &unit);
        free(in);
        if (rc != tc->rc)
            fail_msg("%s: rc %d, want %d", tc->name, rc, tc->rc);
        check_str("path", tc->name, path, tc->path);
        check_str("container_id", tc->name, cid, tc->cid);
        check_str("pod_uid", tc->name, pod, tc->pod);
        check_str("systemd_unit", tc->name, unit, tc->unit);
        free(path);
        free(cid);
        free(pod);
        free(unit);
    }
}

/* ---- environ -------------------------------------------------------------- */

struct env_case {
    const char *name;
    const char *env; /* entries separated by '|', turned into NULs */
    bool final_nul;
    const char *service, *source;
};

static const struct env_case env_cases[] = {
    {"otel", "PATH=/bin|OTEL_SERVICE_NAME=checkout|HOME=/", true, "checkout", "OTEL_SERVICE_NAME"},
    {"pyroscope", "PYROSCOPE_APPLICATION_NAME=ride-sharing", true, "ride-sharing",
     "PYROSCOPE_APPLICATION_NAME"},
    {"pyroscope tags dropped", "PYROSCOPE_APPLICATION_NAME=app.cpu{env=prod,region=eu}", true,
     "app.cpu", "PYROSCOPE_APPLICATION_NAME"},
    {"resource attrs", "OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod,service.name=cart",
     true, "cart", "OTEL_RESOURCE_ATTRIBUTES"},
    {"resource attrs: spaces and percent-encoding",
     "OTEL_RESOURCE_ATTRIBUTES= a=b , service.name = my%20svc%2Cv2 ,c=d", true, "my svc,v2",
     "OTEL_RESOURCE_ATTRIBUTES"},
    {"resource attrs: bad escapes kept literally",
     "OTEL_RESOURCE_ATTRIBUTES=service.name=100%25%zz%4", true, "100%%zz%4",
     "OTEL_RESOURCE_ATTRIBUTES"},
    {"resource attrs: %00 and control bytes sanitised",
     "OTEL_RESOURCE_ATTRIBUTES=service.name=a%00b%0Ac", true, "a_b_c", "OTEL_RESOURCE_ATTRIBUTES"},
    {"resource attrs: value may contain '='", "OTEL_RESOURCE_ATTRIBUTES=service.name=a=b", true,
     "a=b", "OTEL_RESOURCE_ATTRIBUTES"},
    {"resource attrs without service.name", "OTEL_RESOURCE_ATTRIBUTES=service.namespace=x,a=b",
     true, NULL, NULL},
    {"otel beats pyroscope and attrs",
     "OTEL_RESOURCE_ATTRIBUTES=service.name=c|PYROSCOPE_APPLICATION_NAME=b|OTEL_SERVICE_NAME=a",
     true, "a", "OTEL_SERVICE_NAME"},
    {"pyroscope beats attrs",
     "OTEL_RESOURCE_ATTRIBUTES=service.name=c|PYROSCOPE_APPLICATION_NAME=b", true, "b",
     "PYROSCOPE_APPLICATION_NAME"},
    {"empty otel falls through", "OTEL_SERVICE_NAME=|OTEL_RESOURCE_ATTRIBUTES=service.name=c", true,
     "c", "OTEL_RESOURCE_ATTRIBUTES"},
    {"blank otel falls through", "OTEL_SERVICE_NAME=   |PYROSCOPE_APPLICATION_NAME=b", true, "b",
     "PYROSCOPE_APPLICATION_NAME"},
    {"otel trimmed", "OTEL_SERVICE_NAME=  api  ", true, "api", "OTEL_SERVICE_NAME"},
    {"first occurrence wins", "OTEL_SERVICE_NAME=first|OTEL_SERVICE_NAME=second", true, "first",
     "OTEL_SERVICE_NAME"},
    {"prefix is not the variable", "OTEL_SERVICE_NAMEX=no|XOTEL_SERVICE_NAME=no", true, NULL, NULL},
    {"no '='", "OTEL_SERVICE_NAME", true, NULL, NULL},
    {"truncated, no final NUL", "PATH=/bin|OTEL_SERVICE_NAME=trunc", false, "trunc",
     "OTEL_SERVICE_NAME"},
    {"truncated mid-name", "PATH=/bin|OTEL_SERV", false, NULL, NULL},
    {"empty block", "", false, NULL, NULL},
    {"only NULs", "|||", true, NULL, NULL},
};

static void test_environ_table(void **state)
{
    for (size_t i = 0; i < sizeof(env_cases) / sizeof(env_cases[0]); i++) {
        const struct env_case *tc = &env_cases[i];
        size_t len = strlen(tc->env) + (tc->final_nul ? 1 : 0);
        char *buf = malloc(len ? len : 1);
        const char *src = "unset";

        memcpy(buf, tc->env, len);
        for (size_t j = 0; j < len; j++)
            if (buf[j] == '|')
                buf[j] = '\0';
        char *got = procinfo_service_from_environ(buf, len, &src);
        free(buf);
        check_str("service", tc->name, got, tc->service);
        check_str("source", tc->name, got ? src : NULL, tc->source);
        free(got);
    }
    /* an over-long name is cut at 255 bytes */
    char big[600] = "OTEL_SERVICE_NAME=";
    memset(big + 18, 'x', 500);
    big[518] = '\0';
    char *got = procinfo_service_from_environ(big, 519, NULL);
    assert_non_null(got);
    assert_int_equal(strlen(got), 255);
    free(got);
    assert_null(procinfo_service_from_environ(NULL, 10, NULL));
}

/* ---- the executable's name ----------------------------------------------- */

struct exe_case {
    const char *name;
    const char *link; /* NULL: no readable exe link */
    const char *comm;
    const char *cmdline; /* '|' stands for NUL; NULL: not read */
    const char *want, *source;
};

static const struct exe_case exe_cases[] = {
    {"a file", "/usr/sbin/nginx", "nginx", NULL, "nginx", "executable"},
    {"a file's name beats a longer comm", "/opt/app/bin/billing-service-main", "billing-service",
     NULL, "billing-service-main", "executable"},
    {"a deleted file keeps its name", "/usr/sbin/nginx (deleted)", "nginx", NULL, "nginx",
     "executable"},
    {"a file named like a memfd elsewhere", "/srv/memfd:x", "memfd:x", NULL, "memfd:x",
     "executable"},
    {"a file named like a tmpfile, linked", "/tmp/#123", "#123", NULL, "#123", "executable"},
    {"a file named '#' and letters, deleted", "/tmp/#abc (deleted)", "x", NULL, "#abc",
     "executable"},
    /* Linux >= 6.14: fexecve() names the task after the memfd */
    {"sealed memfd, comm from the memfd", "/memfd:sealed-91173221a7ea (deleted)", "memfd:sealed-91",
     "/usr/bin/worker|--serve|", "worker", "cmdline"},
    {"memfd whose name holds '/'", "/memfd:runc_cloned:/proc/self/exe (deleted)", "memfd:runc_clon",
     "runc|init|", "runc", "cmdline"},
    /* Linux < 6.14: fexecve() names the task after /dev/fd/N */
    {"memfd, comm from the fd number", "/memfd:sealed-91173221a7ea (deleted)", "3", "worker|",
     "worker", "cmdline"},
    {"memfd, a comm the program set", "/memfd:runc_cloned:/proc/self/exe (deleted)",
     "runc:[2:INIT]", "runc|init|", "runc:[2:INIT]", "comm"},
    {"memfd, no cmdline", "/memfd:x (deleted)", "memfd:x", NULL, "memfd:x", "comm"},
    {"memfd, empty argv[0]", "/memfd:x (deleted)", "memfd:x", "|", "memfd:x", "comm"},
    {"memfd, argv[0] ends in '/'", "/memfd:x (deleted)", "memfd:x", "bin/|", "memfd:x", "comm"},
    {"memfd, argv[0] without NUL", "/memfd:x (deleted)", "3", "/bin/tool", "tool", "cmdline"},
    {"memfd, argv[0] with a control byte", "/memfd:x (deleted)", "3",
     "a\tb\x01"
     "c|",
     "a_b_c", "cmdline"},
    {"O_TMPFILE never linked", "/tmp/#1234567 (deleted)", "#1234567", "./job|", "job", "cmdline"},
    {"O_TMPFILE, comm set by the program", "/tmp/#1234567 (deleted)", "job", "x|", "job", "comm"},
    {"not a path", "anon_inode:[memfd]", "worker", NULL, "worker", "comm"},
    {"the root", "/", "init", NULL, "init", "comm"},
    {"no link (zombie, no permission)", NULL, "zombie", "zombie|", "zombie", "comm"},
    {"no link, no comm", NULL, "", NULL, "", "comm"},
};

static void test_exe_name_table(void **state)
{
    for (size_t i = 0; i < sizeof(exe_cases) / sizeof(exe_cases[0]); i++) {
        const struct exe_case *tc = &exe_cases[i];
        char *cmd = tc->cmdline ? strdup(tc->cmdline) : NULL;
        size_t len = cmd ? strlen(cmd) : 0;
        const char *src = NULL;

        for (size_t j = 0; j < len; j++)
            if (cmd[j] == '|')
                cmd[j] = '\0';
        char *got = procinfo_exe_name(tc->link, tc->comm, cmd, len, &src);
        free(cmd);
        check_str("name", tc->name, got, tc->want);
        check_str("source", tc->name, src, tc->source);
        free(got);
    }
}

/* ---- a fake /proc tree ---------------------------------------------------- */

struct fake {
    char root[256];
};

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Creates @root/@pid with the given files; @exe NULL = no link, @env entries
 * separated by '|'. */
static void fake_proc(const char *root, unsigned pid, const char *comm, unsigned long long flags,
                      unsigned long long start, const char *exe, const char *cgroup,
                      const char *env)
{
    char dir[PATH_MAX], buf[1024], p[PATH_MAX + 16];
    int n;

    snprintf(dir, sizeof(dir), "%s/%u", root, pid);
    mkdir(dir, 0755);
    n = mkstat(buf, sizeof(buf), pid, comm, flags, start);
    write_file(dir, "stat", buf, (size_t)n);
    write_file(dir, "cgroup", cgroup, strlen(cgroup));
    size_t el = strlen(env);
    char *e = strdup(env);
    for (size_t i = 0; i < el; i++)
        if (e[i] == '|')
            e[i] = '\0';
    write_file(dir, "environ", e, el ? el + 1 : 0);
    free(e);
    snprintf(p, sizeof(p), "%s/exe", dir);
    unlink(p);
    if (exe)
        assert_int_equal(symlink(exe, p), 0);
}

static void rm_fake(const char *root, unsigned pid)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/%u'", root, pid);
    assert_int_equal(system(cmd), 0);
}

static int fake_setup(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/stoke-procinfo-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    *state = f;
    return 0;
}

static int fake_teardown(void **state)
{
    struct fake *f = *state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void test_cache_fake_tree(void **state)
{
    struct fake *f = *state;
    struct proc_cache *c = proc_cache_new(f->root, "node-1");
    const struct proc_info *pi, *again;

    assert_non_null(c);
    fake_proc(f->root, 100, "nginx", 0x400100, 5000, "/usr/sbin/nginx (deleted)",
              "1:name=systemd:/system.slice/nginx.service\n0::/system.slice/nginx.service\n",
              "PATH=/bin|LANG=C");
    fake_proc(f->root, 200, "java", 0, 6000, "/usr/lib/jvm/bin/java",
              "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UIDU
              ".slice/cri-containerd-" CID ".scope\n",
              "OTEL_RESOURCE_ATTRIBUTES=service.name=billing");
    fake_proc(f->root, 2, "kthreadd", 0x208040, 1, NULL, "0::/\n", "");
    fake_proc(f->root, 300, "zombie", 0x400000, 7000, NULL,
              "0::/user.slice/user-0.slice/session-1.scope\n", "");

    pi = proc_cache_get(c, 100);
    assert_non_null(pi);
    assert_int_equal(pi->pid, 100);
    assert_int_equal(pi->start_time, 5000);
    assert_string_equal(pi->comm, "nginx");
    assert_string_equal(pi->exe_path, "/usr/sbin/nginx");
    assert_string_equal(pi->exe_name, "nginx");
    assert_string_equal(pi->build_id, ""); /* link target does not exist */
    assert_string_equal(pi->cgroup, "/system.slice/nginx.service");
    assert_string_equal(pi->systemd_unit, "nginx.service");
    assert_null(pi->container_id);
    assert_string_equal(pi->service_name, "nginx");
    assert_string_equal(pi->service_source, "systemd_unit");
    assert_false(pi->kernel_thread);
    assert_string_equal(label_set_get(&pi->labels, "service_name"), "nginx");
    assert_string_equal(label_set_get(&pi->labels, "host_name"), "node-1");
    assert_string_equal(label_set_get(&pi->labels, "systemd_unit"), "nginx.service");
    assert_null(label_set_get(&pi->labels, "container_id"));
    assert_int_equal(pi->labels.n, 4);

    pi = proc_cache_get(c, 200);
    assert_non_null(pi);
    assert_string_equal(pi->service_name, "billing");
    assert_string_equal(pi->service_source, "OTEL_RESOURCE_ATTRIBUTES");
    assert_string_equal(pi->exe_name, "java");
    assert_string_equal(label_set_get(&pi->labels, "container_id"), CID);
    assert_string_equal(label_set_get(&pi->labels, "pod_uid"), UID);
    assert_string_equal(label_set_get(&pi->labels, "process_executable_name"), "java");

    pi = proc_cache_get(c, 2);
    assert_non_null(pi);
    assert_true(pi->kernel_thread);
    assert_null(pi->exe_path);
    assert_string_equal(pi->exe_name, "kthreadd");
    assert_string_equal(pi->service_name, "kernel");
    assert_string_equal(pi->service_source, "kernel_thread");
    assert_string_equal(label_set_get(&pi->labels, "process_executable_name"), "kthreadd");

    /* user process without a readable exe link: comm */
    pi = proc_cache_get(c, 300);
    assert_non_null(pi);
    assert_false(pi->kernel_thread);
    assert_string_equal(pi->service_name, "zombie");
    assert_string_equal(pi->service_source, "comm");

    errno = 0;
    assert_null(proc_cache_get(c, 999));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(proc_cache_size(c), 4);

    /* PID reuse: new start time and environment → re-read in the next window */
    pi = proc_cache_get(c, 200);
    fake_proc(f->root, 200, "python3", 0, 6500, "/usr/bin/python3.11", "0::/\n",
              "OTEL_SERVICE_NAME=etl");
    again = proc_cache_get(c, 200);
    assert_ptr_equal(again, pi); /* same window: not re-checked */
    assert_int_equal(proc_cache_sweep(c, 1), 0);
    again = proc_cache_get(c, 200);
    assert_non_null(again);
    assert_int_equal(again->start_time, 6500);
    assert_string_equal(again->service_name, "etl");
    assert_string_equal(again->exe_name, "python3.11");
    assert_null(label_set_get(&again->labels, "container_id"));
    /* the old entry was parked, not freed: still readable this window */
    assert_string_equal(pi->service_name, "billing");
    assert_int_equal(proc_cache_size(c), 4);

    /* unchanged start time: the cached pointer comes back */
    pi = proc_cache_get(c, 100);
    assert_int_equal(pi->last_seen, 1);
    assert_ptr_equal(proc_cache_get(c, 100), pi);

    /* exit: samples drained afterwards still get the old info */
    rm_fake(f->root, 100);
    assert_int_equal(proc_cache_sweep(c, 2), 1); /* the parked pid-200 entry */
    assert_ptr_equal(proc_cache_get(c, 100), pi);
    assert_string_equal(pi->service_name, "nginx");

    /* sweep: unused for 2 windows and gone → freed; alive → kept */
    assert_int_equal(proc_cache_sweep(c, 3), 0);
    assert_int_equal(proc_cache_sweep(c, 4), 0); /* 100 last seen in 2 */
    rm_fake(f->root, 300);
    /* 300 last seen in 0, gone; 2 last seen in 0, alive; 200 in 1, alive */
    assert_int_equal(proc_cache_sweep(c, 5), 2); /* 100 and 300 */
    assert_int_equal(proc_cache_size(c), 2);
    assert_null(proc_cache_get(c, 100));
    assert_non_null(proc_cache_get(c, 2));
    assert_non_null(proc_cache_get(c, 200));
    proc_cache_free(c);
}

/* execve() keeps the pid and the start time: a shell's or a launcher's
 * `exec` is told by the new comm, and read again; and a process caught
 * between execve() naming it and its new environment (read as empty) is
 * read again for a few windows, not named by its executable for good. */
static void test_cache_exec(void **state)
{
    struct fake *f = *state;
    struct proc_cache *c = proc_cache_new(f->root, "h");
    const struct proc_info *pi;

    assert_non_null(c);
    fake_proc(f->root, 400, "sh", 0, 7000, "/bin/dash", "0::/\n", "PATH=/bin");
    pi = proc_cache_get(c, 400);
    assert_string_equal(pi->service_name, "dash");
    fake_proc(f->root, 400, "java", 0, 7000, "/usr/lib/jvm/bin/java", "0::/\n",
              "OTEL_SERVICE_NAME=orders");
    assert_ptr_equal(proc_cache_get(c, 400), pi); /* same window */
    proc_cache_sweep(c, 1);
    pi = proc_cache_get(c, 400);
    assert_string_equal(pi->service_name, "orders");
    assert_string_equal(pi->exe_name, "java");
    assert_string_equal(pi->comm, "java");

    /* mid-exec: the new comm, no environment yet */
    fake_proc(f->root, 500, "app", 0, 8000, "/usr/bin/app", "0::/\n", "");
    pi = proc_cache_get(c, 500);
    assert_string_equal(pi->service_name, "app");
    fake_proc(f->root, 500, "app", 0, 8000, "/usr/bin/app", "0::/\n", "OTEL_SERVICE_NAME=late");
    proc_cache_sweep(c, 2);
    pi = proc_cache_get(c, 500);
    assert_string_equal(pi->service_name, "late");
    assert_string_equal(pi->service_source, "OTEL_SERVICE_NAME");

    /* an environment that stays empty (env -i): read again a few times,
     * then kept */
    fake_proc(f->root, 600, "bare", 0, 9000, "/usr/bin/bare", "0::/\n", "");
    const struct proc_info *prev = proc_cache_get(c, 600);
    size_t reads = 0;
    for (uint64_t w = 3; w < 12; w++) {
        proc_cache_sweep(c, w);
        pi = proc_cache_get(c, 600);
        assert_string_equal(pi->service_name, "bare");
        reads += pi != prev;
        prev = pi;
    }
    assert_true(reads >= 1 && reads <= 3);
    proc_cache_free(c);
}

static void test_cache_many_pids(void **state)
{
    struct fake *f = *state;
    struct proc_cache *c = proc_cache_new(f->root, NULL);
    unsigned n = 700; /* several table doublings */

    assert_non_null(c);
    for (unsigned p = 1000; p < 1000 + n; p++)
        fake_proc(f->root, p, "w", 0, p, "/bin/true", "0::/\n", "PATH=/bin");
    for (unsigned p = 1000; p < 1000 + n; p++)
        assert_non_null(proc_cache_get(c, p));
    assert_int_equal(proc_cache_size(c), n);
    /* host name defaults to the machine's */
    char hn[256];
    gethostname(hn, sizeof(hn));
    assert_string_equal(label_set_get(&proc_cache_get(c, 1000)->labels, "host_name"), hn);
    /* a build-id is read through <root>/<pid>/exe */
    assert_int_equal(strlen(proc_cache_get(c, 1000)->build_id), 40);
    /* remove every other process; sweep must find them across shifted slots */
    for (unsigned p = 1000; p < 1000 + n; p += 2)
        rm_fake(f->root, p);
    assert_int_equal(proc_cache_sweep(c, 5), n / 2);
    assert_int_equal(proc_cache_size(c), n / 2);
    for (unsigned p = 1001; p < 1000 + n; p += 2) {
        const struct proc_info *pi = proc_cache_get(c, p);
        assert_non_null(pi);
        assert_int_equal(pi->pid, p);
        assert_int_equal(pi->start_time, p);
    }
    for (unsigned p = 1000; p < 1000 + n; p += 2)
        assert_null(proc_cache_get(c, p));
    /* live but idle: kept for 6 windows (last seen in 5), then freed, so
     * thousands of sleeping processes sampled once do not stay cached */
    assert_int_equal(proc_cache_sweep(c, 11), 0);
    assert_int_equal(proc_cache_size(c), n / 2);
    assert_int_equal(proc_cache_sweep(c, 12), n / 2);
    assert_int_equal(proc_cache_size(c), 0);
    assert_non_null(proc_cache_get(c, 1001)); /* and read again when sampled */
    proc_cache_free(c);
}

static void test_cache_hostile_files(void **state)
{
    struct fake *f = *state;
    struct proc_cache *c = proc_cache_new(f->root, "h");
    char dir[PATH_MAX];

    /* huge environ: the service name past the 64 KiB cap is not seen, and
     * the read stays bounded */
    size_t big = 200 * 1024;
    char *env = malloc(big);
    memset(env, 'A', big);
    memcpy(env, "X=", 2);
    memcpy(env + big - 40, "|OTEL_SERVICE_NAME=late", 23);
    env[big - 17] = '\0';
    fake_proc(f->root, 50, "big", 0, 1, "/bin/true", "0::/\n", env);
    free(env);
    const struct proc_info *pi = proc_cache_get(c, 50);
    assert_non_null(pi);
    assert_string_equal(pi->service_source, "executable");
    assert_string_equal(pi->service_name, "true");

    /* garbage stat → the process is treated as unreadable */
    fake_proc(f->root, 51, "g", 0, 1, "/bin/true", "0::/\n", "");
    snprintf(dir, sizeof(dir), "%s/51", f->root);
    write_file(dir, "stat", "\0\0garbage", 9);
    errno = 0;
    assert_null(proc_cache_get(c, 51));
    assert_int_equal(errno, EINVAL);

    /* an executable that is no file: not "memfd:...", but argv[0] */
    fake_proc(f->root, 53, "memfd:sealed-91", 0, 1, "/memfd:sealed-91173221a7ea (deleted)",
              "0::/\n", "");
    snprintf(dir, sizeof(dir), "%s/53", f->root);
    write_file(dir, "cmdline", "/opt/w/worker\0--serve\0", 22);
    pi = proc_cache_get(c, 53);
    assert_non_null(pi);
    assert_string_equal(pi->exe_path, "/memfd:sealed-91173221a7ea");
    assert_string_equal(pi->exe_name, "worker");
    assert_string_equal(pi->service_name, "worker");
    assert_string_equal(pi->service_source, "cmdline");
    assert_string_equal(label_set_get(&pi->labels, "process_executable_name"), "worker");
    /* the same with cmdline unreadable: comm */
    fake_proc(f->root, 54, "memfd:x", 0, 1, "/memfd:x (deleted)", "0::/\n", "");
    pi = proc_cache_get(c, 54);
    assert_non_null(pi);
    assert_string_equal(pi->service_name, "memfd:x");
    assert_string_equal(pi->service_source, "comm");

    /* empty cgroup and environ, missing cgroup file */
    fake_proc(f->root, 52, "e", 0, 1, "/bin/true", "", "");
    snprintf(dir, sizeof(dir), "%s/52/cgroup", f->root);
    unlink(dir);
    pi = proc_cache_get(c, 52);
    assert_non_null(pi);
    assert_null(pi->cgroup);
    assert_string_equal(pi->service_name, "true");
    proc_cache_free(c);
}

/* ---- real processes ------------------------------------------------------- */

static pid_t spawn_sleep(char *const envp[])
{
    pid_t pid = fork();
    char path[64], comm[32];

    assert_true(pid >= 0);
    if (pid == 0) {
        char *const argv[] = {"sleep", "30", NULL};
        execve("/bin/sleep", argv, envp);
        _exit(127);
    }
    /* Until execve is done, /proc shows the parent's environment; and the
     * kernel names the task (comm) before it sets up the new environment,
     * which reads as empty in between: wait for both. */
    for (int i = 0; i < 2000; i++) {
        snprintf(path, sizeof(path), "/proc/%d/comm", pid);
        FILE *fp = fopen(path, "r");
        if (fp) {
            char *ok = fgets(comm, sizeof(comm), fp);
            fclose(fp);
            snprintf(path, sizeof(path), "/proc/%d/environ", pid);
            if (ok && strcmp(comm, "sleep\n") == 0 && (!envp[0] || (fp = fopen(path, "r")))) {
                int c = envp[0] ? fgetc(fp) : 0;
                if (envp[0])
                    fclose(fp);
                if (c != EOF)
                    return pid;
            }
        }
        usleep(1000);
    }
    fail_msg("child never became sleep");
    return -1;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

struct real_case {
    char *env[4];
    const char *service, *source;
};

static void test_real_children(void **state)
{
    static const struct real_case cases[] = {
        {{"PATH=/bin", "OTEL_SERVICE_NAME=real-otel", NULL}, "real-otel", "OTEL_SERVICE_NAME"},
        {{"OTEL_RESOURCE_ATTRIBUTES=team=perf,service.name=real%2Dattrs", "HOME=/", NULL},
         "real-attrs",
         "OTEL_RESOURCE_ATTRIBUTES"},
        {{"PATH=/bin", NULL}, NULL, NULL},
    };
    struct proc_cache *c = proc_cache_new(NULL, "real-host");

    assert_non_null(c);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pid_t pid = spawn_sleep(cases[i].env);
        const struct proc_info *pi = proc_cache_get(c, (uint32_t)pid);
        if (!pi) {
            reap(pid);
            fail_msg("case %zu: proc_cache_get: %s", i, strerror(errno));
        }
        assert_string_equal(pi->comm, "sleep");
        assert_string_equal(pi->exe_name, "sleep");
        assert_non_null(pi->exe_path);
        assert_true(pi->start_time > 0);
        assert_int_equal(strlen(pi->build_id), 40); /* Debian's coreutils has one */
        assert_false(pi->kernel_thread);
        assert_string_equal(label_set_get(&pi->labels, "process_executable_name"), "sleep");
        if (cases[i].service) {
            assert_string_equal(pi->service_name, cases[i].service);
            assert_string_equal(pi->service_source, cases[i].source);
        } else {
            /* no env rule: the unit if the test runs in a service, else "sleep" */
            if (pi->systemd_unit) {
                assert_string_equal(pi->service_source, "systemd_unit");
            } else {
                assert_string_equal(pi->service_name, "sleep");
                assert_string_equal(pi->service_source, "executable");
            }
        }
        assert_string_equal(label_set_get(&pi->labels, "service_name"), pi->service_name);
        reap(pid);
        /* exited and reaped: the cached info still answers */
        assert_ptr_equal(proc_cache_get(c, (uint32_t)pid), pi);
    }

    /* a real kernel thread: kthreadd is pid 2 unless we are in a pid namespace */
    const struct proc_info *k = proc_cache_get(c, 2);
    if (k && k->kernel_thread) {
        assert_string_equal(k->service_name, "kernel");
        assert_string_equal(k->exe_name, "kthreadd");
        assert_null(k->exe_path);
    }
    /* ourselves */
    const struct proc_info *self = proc_cache_get(c, (uint32_t)getpid());
    assert_non_null(self);
    assert_memory_equal(self->comm, "test_procinfo", 13); /* binary may have a suffix */
    proc_cache_free(c);
}

/* A real process whose executable is a sealed memfd (memfd_create +
 * fexecve, as runc and in-memory loaders do): named by argv[0], whatever
 * the kernel made its comm. */
static void test_real_memfd_exec(void **state)
{
    struct proc_cache *c = proc_cache_new(NULL, "real-host");
    char path[64], cmdpath[64], link[PATH_MAX], cmd[64];
    ssize_t ll = -1;
    bool done = false;

    assert_non_null(c);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *const argv[] = {"memfd-worker", "30", NULL};
        char *const envp[] = {"PATH=/bin", NULL};
        int src = open("/bin/sleep", O_RDONLY | O_CLOEXEC);
        int mfd = memfd_create("sealed-91173221a7ea", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        char buf[65536];
        ssize_t n;

        if (src < 0 || mfd < 0)
            _exit(126);
        while ((n = read(src, buf, sizeof(buf))) > 0)
            if (write(mfd, buf, (size_t)n) != n)
                _exit(126);
        if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE))
            _exit(126);
        fexecve(mfd, argv, envp);
        _exit(127);
    }
    /* Until fexecve is done, /proc shows this test's executable; the exe
     * link changes before the new argv is in place (cmdline reads empty). */
    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    snprintf(cmdpath, sizeof(cmdpath), "/proc/%d/cmdline", pid);
    for (int i = 0; i < 5000 && !done; i++) {
        FILE *fp = fopen(cmdpath, "r");
        size_t n = fp ? fread(cmd, 1, sizeof(cmd), fp) : 0;

        if (fp)
            fclose(fp);
        ll = readlink(path, link, sizeof(link) - 1);
        done = ll > 7 && memcmp(link, "/memfd:", 7) == 0 && n >= 13 &&
               memcmp(cmd, "memfd-worker", 13) == 0;
        if (!done)
            usleep(1000);
    }
    if (!done) {
        reap(pid);
        fail_msg("child never ran from its memfd");
    }
    const struct proc_info *pi = proc_cache_get(c, (uint32_t)pid);
    assert_non_null(pi);
    /* the premise: comm names the fd ("memfd:sealed-91" since Linux 6.14, "3" before) */
    assert_true(strncmp(pi->comm, "memfd:", 6) == 0 || strspn(pi->comm, "0123456789") > 0);
    assert_string_equal(pi->exe_path, "/memfd:sealed-91173221a7ea");
    assert_string_equal(pi->exe_name, "memfd-worker");
    assert_string_equal(label_set_get(&pi->labels, "process_executable_name"), "memfd-worker");
    if (!pi->systemd_unit) {
        assert_string_equal(pi->service_name, "memfd-worker");
        assert_string_equal(pi->service_source, "cmdline");
    }
    reap(pid);
    proc_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_table),
        cmocka_unit_test(test_stat_bad),
        cmocka_unit_test(test_cgroup_table),
        cmocka_unit_test(test_environ_table),
        cmocka_unit_test(test_exe_name_table),
        cmocka_unit_test_setup_teardown(test_cache_fake_tree, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_cache_exec, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_cache_many_pids, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_cache_hostile_files, fake_setup, fake_teardown),
        cmocka_unit_test(test_real_children),
        cmocka_unit_test(test_real_memfd_exec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
