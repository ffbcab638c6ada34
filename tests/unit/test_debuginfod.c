/* SPDX-License-Identifier: Apache-2.0 */
/* symbolizer/debuginfod: the disk cache (size bound, least recently used
 * evicted first, files checked against the build-id asked for), the
 * negative cache (a miss is not asked again until its time has passed),
 * the bounded queue, and a worker that a refusing or silent server cannot
 * hold: failures counted, freeing returns promptly. No debuginfod server
 * here: tests/integration/test_debuginfod.sh runs a real one. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/file.h"
#include "symbolizer/build_id.h"
#include "symbolizer/debuginfod.h"

/* LeakSanitizer: libdebuginfod writes its cache settings with dprintf(),
 * whose stream buffer glibc 2.36 does not free (8 KiB per fetch, in
 * __vdprintf_internal; not this code's). glibc has no frame pointers:
 * the slow unwinder is what sees libdebuginfod on that stack. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libdebuginfod.so\n";
}
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}

struct fix {
    char dir[64], cache[96];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/stoke-test-dbgd-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cache, sizeof(f->cache), "%s/cache", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct sym_dbgd *open_cache(struct fix *f, uint64_t cap, unsigned queue, bool worker,
                                   const char *urls, unsigned timeout_s)
{
    struct sym_dbgd_opts o = {
        .urls = urls ? urls : "http://127.0.0.1:1",
        .cache_dir = f->cache,
        .cache_max_bytes = cap,
        .negative_s = 100,
        .queue_max = queue,
        .timeout_s = timeout_s,
        .no_worker = !worker,
    };
    int err = 0;
    struct sym_dbgd *d = sym_dbgd_new(&o, &err);
    assert_non_null(d);
    return d;
}

/* <cache>/<bid>.<ext> of @size bytes, last used @age seconds ago. */
static void put(struct fix *f, const char *bid, const char *ext, size_t size, time_t age)
{
    char path[256], *buf = calloc(1, size + 1);
    snprintf(path, sizeof(path), "%s/%s.%s", f->cache, bid, ext);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, buf, size), 0);
    close(fd);
    free(buf);
    struct timespec ts[2] = {{time(NULL) - age, 0}, {time(NULL) - age, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static bool exists(struct fix *f, const char *bid, const char *ext)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.%s", f->cache, bid, ext);
    return access(path, F_OK) == 0;
}

#define BID(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static void test_cache_size_bound_lru(void **state)
{
    struct fix *f = *state;
    struct sym_dbgd_stats st;

    struct sym_dbgd *d = open_cache(f, 10000, 0, false, NULL, 0);
    /* five files of 3000 bytes, a the oldest, e the newest: 15000 > 10000 */
    put(f, BID("a"), "debug", 3000, 50);
    put(f, BID("b"), "debug", 3000, 40);
    put(f, BID("c"), "debug", 3000, 30);
    put(f, BID("d"), "debug", 3000, 20);
    put(f, BID("e"), "debug", 3000, 10);
    put(f, "README", "txt", 50000, 100); /* not the cache's: never counted or removed */
    /* opening it made a the most recently used */
    int fd = sym_dbgd_open(d, BID("a"));
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(sym_dbgd_cache_trim(d), 9000);
    assert_true(exists(f, BID("a"), "debug"));
    assert_false(exists(f, BID("b"), "debug"));
    assert_false(exists(f, BID("c"), "debug"));
    assert_true(exists(f, BID("d"), "debug"));
    assert_true(exists(f, BID("e"), "debug"));
    assert_true(exists(f, "README", "txt"));
    sym_dbgd_get_stats(d, &st);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(st.cache_files, 3);
    assert_int_equal(st.cache_bytes, 9000);
    assert_int_equal(st.cache_hits, 1);
    /* an evicted file is fetched again: queued, not an error */
    assert_int_equal(sym_dbgd_open(d, BID("b")), -EAGAIN);
    sym_dbgd_free(d);
}

static void test_negative_cache(void **state)
{
    struct fix *f = *state;
    struct sym_dbgd_stats st;

    assert_int_equal(mkdir_p(f->cache, 0700), 0);
    put(f, BID("1"), "miss", 0, 5);   /* missed 5 s ago: within the 100 s */
    put(f, BID("2"), "miss", 0, 500); /* long ago: ask again */
    struct sym_dbgd *d = open_cache(f, 1 << 20, 0, false, NULL, 0);
    assert_int_equal(sym_dbgd_open(d, BID("1")), -ENOENT);
    assert_int_equal(sym_dbgd_open(d, BID("1")), -ENOENT);
    assert_int_equal(sym_dbgd_open(d, BID("2")), -EAGAIN);
    assert_false(exists(f, BID("2"), "miss")); /* expired: removed at start */
    assert_int_equal(sym_dbgd_open(d, BID("3")), -EAGAIN);
    assert_int_equal(sym_dbgd_open(d, BID("3")), -EAGAIN); /* queued once */
    sym_dbgd_get_stats(d, &st);
    assert_int_equal(st.negative_hits, 2);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.queued, 2);
    /* not a build-id: refused, never a path */
    assert_int_equal(sym_dbgd_open(d, "../../etc/passwd"), -EINVAL);
    assert_int_equal(sym_dbgd_open(d, "ABCDEF0123"), -EINVAL);
    assert_int_equal(sym_dbgd_open(d, "abc"), -EINVAL);
    assert_int_equal(sym_dbgd_open(d, BID("a") "00"), -EINVAL); /* 42 digits */
    sym_dbgd_free(d);
}

static void test_queue_bound(void **state)
{
    struct fix *f = *state;
    struct sym_dbgd_stats st;
    struct sym_dbgd *d = open_cache(f, 1 << 20, 2, false, NULL, 0);

    assert_int_equal(sym_dbgd_open(d, BID("4")), -EAGAIN);
    assert_int_equal(sym_dbgd_open(d, BID("5")), -EAGAIN);
    assert_int_equal(sym_dbgd_open(d, BID("6")), -EBUSY);
    sym_dbgd_get_stats(d, &st);
    assert_int_equal(st.failures[DBGD_FAIL_QUEUE_FULL], 1);
    assert_int_equal(st.requests, 2);
    sym_dbgd_free(d);
}

/* A copy of this test program (an ELF file with a build-id) at @path. */
static void copy_self(const char *path)
{
    char *buf;
    size_t len;
    assert_int_equal(read_file("/proc/self/exe", 64 << 20, &buf, &len), 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, buf, len), 0);
    close(fd);
    free(buf);
}

static void test_build_id_checked(void **state)
{
    struct fix *f = *state;
    char path[256], self[41];
    struct sym_dbgd *d = open_cache(f, 256 << 20, 0, false, NULL, 0);

    assert_true(sym_read_build_id("/proc/self/exe", self) > 0);
    snprintf(path, sizeof(path), "%s/download", f->dir);
    /* an ELF file whose build-id is not the one asked for */
    copy_self(path);
    int fd = open(path, O_RDONLY);
    assert_int_equal(sym_dbgd_cache_add(d, BID("7"), fd, path), -EBADMSG);
    close(fd);
    assert_false(exists(f, BID("7"), "debug"));
    assert_int_equal(access(path, F_OK), -1); /* the download is gone */
    /* not ELF at all */
    assert_int_equal(write_file_atomic(path, "<html>not found</html>", 22, 0600), 0);
    fd = open(path, O_RDONLY);
    assert_int_equal(sym_dbgd_cache_add(d, BID("7"), fd, path), -ENOEXEC);
    close(fd);
    /* the right one is kept, and opened from the cache */
    copy_self(path);
    fd = open(path, O_RDONLY);
    assert_int_equal(sym_dbgd_cache_add(d, self, fd, path), 0);
    close(fd);
    assert_true(exists(f, self, "debug"));
    fd = sym_dbgd_open(d, self);
    assert_true(fd >= 0);
    close(fd);
    sym_dbgd_free(d);
}

static void test_size_cap(void **state)
{
    struct fix *f = *state;
    char path[256], self[41];
    /* the download cap is at most the cache's: 10000 bytes here */
    struct sym_dbgd *d = open_cache(f, 10000, 0, false, NULL, 0);

    assert_true(sym_read_build_id("/proc/self/exe", self) > 0);
    snprintf(path, sizeof(path), "%s/download", f->dir);
    copy_self(path);
    int fd = open(path, O_RDONLY);
    assert_int_equal(sym_dbgd_cache_add(d, self, fd, path), -EFBIG);
    close(fd);
    assert_false(exists(f, self, "debug"));
    sym_dbgd_free(d);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits (at most 20 s) for a fetch to end. */
static void wait_gen(struct sym_dbgd *d, uint64_t from)
{
    double end = now_s() + 20;
    while (sym_dbgd_generation(d) == from && now_s() < end)
        usleep(20000);
    assert_true(sym_dbgd_generation(d) != from);
}

static void test_refused_counted_and_negative(void **state)
{
    struct fix *f = *state;
    struct sym_dbgd_stats st;
    /* port 1: nothing listens, the connection is refused at once */
    struct sym_dbgd *d = open_cache(f, 1 << 20, 0, true, "http://127.0.0.1:1", 2);

    uint64_t g = sym_dbgd_generation(d);
    assert_int_equal(sym_dbgd_open(d, BID("8")), -EAGAIN);
    wait_gen(d, g);
    sym_dbgd_get_stats(d, &st);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(st.fetched, 0);
    assert_int_equal(st.misses, 0);
    uint64_t failed = 0;
    for (int i = 0; i < DBGD_FAIL_N; i++)
        failed += st.failures[i];
    assert_int_equal(failed, 1);
    assert_int_equal(st.failures[DBGD_FAIL_UNREACHABLE], 1);
    /* not asked again within the negative time */
    assert_int_equal(sym_dbgd_open(d, BID("8")), -ENOENT);
    sym_dbgd_get_stats(d, &st);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(st.negative_hits, 1);
    sym_dbgd_free(d);
}

static void test_silent_server_cannot_hold_shutdown(void **state)
{
    struct fix *f = *state;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    char url[64];
    struct sym_dbgd_stats st;

    /* listens (the kernel completes the handshake) and never says a word */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s, 8), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", ntohs(sa.sin_port));
    struct sym_dbgd *d = open_cache(f, 1 << 20, 0, true, url, 600);

    assert_int_equal(sym_dbgd_open(d, BID("9")), -EAGAIN);
    double end = now_s() + 10;
    do {
        usleep(50000);
        sym_dbgd_get_stats(d, &st);
    } while (st.fetches == 0 && now_s() < end);
    assert_int_equal(st.fetches, 1);
    usleep(500000); /* well into the silent transfer */
    /* the asking side never waits on it */
    double t0 = now_s();
    assert_int_equal(sym_dbgd_open(d, BID("9")), -EAGAIN);
    assert_true(now_s() - t0 < 0.1);
    /* and shutting down does not wait for the 600 s timeout */
    t0 = now_s();
    sym_dbgd_free(d);
    double took = now_s() - t0;
    print_message("sym_dbgd_free took %.2f s with a fetch hanging\n", took);
    assert_true(took < 3.0);
    close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cache_size_bound_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_id_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_counted_and_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_server_cannot_hold_shutdown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
