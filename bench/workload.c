/*
 * workload.c - the steady workload mix `make bench` profiles (bench/run.sh).
 *
 * Starts and keeps running until SIGTERM/SIGINT (or --seconds):
 *   - FIXTURES/hot_c      as comm/service "bhot_c"       (2 CPU-bound threads:
 *                         work_a/work_b/work_c at 50:30:20)
 *   - FIXTURES/hot_syscall as comm/service "bhot_syscall" (2 threads read()ing
 *                         /dev/zero: kernel-heavy)
 *   - a churn process "bchurn" that fork+execs /bin/true RATE times a second
 *     (--churn-rate max: as fast as it can; --churners N such processes)
 *   - IDLE sleeping processes "bidle" (pause())
 * The fixtures are exec'd through symlinks in --dir so that their comm is
 * distinct from other hot_c runs on the machine (perf, bpftrace and bcc filter
 * by comm; the agent's service name comes from OTEL_SERVICE_NAME).
 * Every second it rewrites --stats FILE with "elapsed_s spawned idle_alive".
 * All children die with it (PR_SET_PDEATHSIG) and are killed on exit.
 *
 * --no-hot leaves out the two fixtures (a churn-only or idle-only host).
 *
 * Usage: stoke-bench-workload --fixtures DIR --dir DIR [--idle N] [--churn-rate R|max]
 *            [--churners N] [--no-hot] [--stats FILE] [--seconds S]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_IDLE 4096

static volatile sig_atomic_t stop;
static pid_t idle_pids[MAX_IDLE];
static int n_idle;
static pid_t hot_pids[2 + 64];
static int n_hot;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In a fresh child: die with the parent, default signals. */
static void child_setup(const char *name)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(0);
    if (name)
        prctl(PR_SET_NAME, name);
}

static pid_t start_fixture(const char *fixtures, const char *dir, const char *bin,
                           const char *alias, const char *secs)
{
    char target[4096], link[4096];
    snprintf(target, sizeof target, "%s/%s", fixtures, bin);
    snprintf(link, sizeof link, "%s/%s", dir, alias);
    if (access(target, X_OK) != 0) {
        fprintf(stderr, "workload: %s: %s\n", target, strerror(errno));
        exit(2);
    }
    unlink(link);
    if (symlink(target, link) != 0) {
        fprintf(stderr, "workload: symlink %s: %s\n", link, strerror(errno));
        exit(2);
    }
    pid_t p = fork();
    if (p == 0) {
        child_setup(NULL);
        setenv("OTEL_SERVICE_NAME", alias, 1);
        execl(link, alias, secs, (char *)NULL);
        _exit(127);
    }
    return p;
}

/* Every churner's spawn count, shared across their fork()s. */
static unsigned long *spawned_total;

/* fork+exec /bin/true `rate` times a second (rate 0: as fast as it can),
 * reaping as it goes. Churner 0 writes the stats file with every churner's
 * spawns. */
static void churn(double rate, int index, const char *stats)
{
    child_setup("bchurn");
    double period = rate > 0 ? 1.0 / rate : 0, next = now(), t0 = next, last_stats = 0;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.churn.tmp", stats ? stats : "");
    for (;;) {
        pid_t p = fork();
        if (p == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (p > 0)
            __atomic_add_fetch(spawned_total, 1, __ATOMIC_RELAXED);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        double t = now();
        if (stats && index == 0 && t - last_stats >= 1.0) {
            FILE *f = fopen(tmp, "w");
            if (f) {
                fprintf(f, "%.3f %lu\n", t - t0, __atomic_load_n(spawned_total, __ATOMIC_RELAXED));
                fclose(f);
                char dst[4096];
                snprintf(dst, sizeof dst, "%s.churn", stats);
                rename(tmp, dst);
            }
            last_stats = t;
        }
        if (period == 0) {
            if (p < 0) /* out of processes: let the reaper catch up */
                usleep(1000);
            continue;
        }
        next += period;
        if (next < t - 1.0) /* fell far behind (busy machine): do not burst */
            next = t;
        struct timespec ts = {(time_t)next, (long)((next - (time_t)next) * 1e9)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
}

int main(int argc, char **argv)
{
    const char *fixtures = NULL, *dir = NULL, *stats = NULL;
    int idle = 500, churners = 1, hot = 1;
    double rate = 100, seconds = 1200;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-hot")) {
            hot = 0;
            continue;
        }
        if (!v) {
            fprintf(stderr, "workload: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--fixtures"))
            fixtures = v;
        else if (!strcmp(a, "--dir"))
            dir = v;
        else if (!strcmp(a, "--stats"))
            stats = v;
        else if (!strcmp(a, "--idle"))
            idle = atoi(v);
        else if (!strcmp(a, "--churn-rate"))
            rate = strcmp(v, "max") == 0 ? -1 : atof(v);
        else if (!strcmp(a, "--churners"))
            churners = atoi(v);
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else {
            fprintf(stderr, "workload: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (!fixtures || !dir || idle < 0 || idle > MAX_IDLE || (rate < 0 && rate != -1) ||
        churners < 1 || churners > 64 || seconds <= 0) {
        fprintf(stderr,
                "usage: %s --fixtures DIR --dir DIR [--idle N<=%d] [--churn-rate R|max] "
                "[--churners N<=64] [--no-hot] [--stats FILE] [--seconds S]\n",
                argv[0], MAX_IDLE);
        return 2;
    }
    mkdir(dir, 0755);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    char secs[32];
    snprintf(secs, sizeof secs, "%.0f", seconds + 5);
    if (hot) {
        hot_pids[n_hot++] = start_fixture(fixtures, dir, "hot_c", "bhot_c", secs);
        hot_pids[n_hot++] = start_fixture(fixtures, dir, "hot_syscall", "bhot_syscall", secs);
    }
    spawned_total = mmap(NULL, sizeof(*spawned_total), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (spawned_total == MAP_FAILED) {
        perror("workload: mmap");
        return 1;
    }
    for (int i = 0; rate != 0 && i < churners; i++) {
        pid_t p = fork();
        if (p == 0)
            churn(rate < 0 ? 0 : rate, i, stats);
        hot_pids[n_hot++] = p;
    }
    for (int i = 0; i < idle; i++) {
        pid_t p = fork();
        if (p == 0) {
            child_setup("bidle");
            for (;;)
                pause();
        }
        if (p > 0)
            idle_pids[n_idle++] = p;
    }

    double t0 = now();
    while (!stop && now() - t0 < seconds) {
        int alive = 0;
        for (int i = 0; i < n_idle; i++)
            alive += kill(idle_pids[i], 0) == 0;
        if (stats) {
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.tmp", stats);
            FILE *f = fopen(tmp, "w");
            if (f) {
                fprintf(f, "%.3f %d %d %d %d\n", now() - t0, alive, hot ? (int)hot_pids[0] : 0,
                        hot ? (int)hot_pids[1] : 0, (int)getpid());
                fclose(f);
                rename(tmp, stats);
            }
        }
        sleep(1);
    }
    for (int i = 0; i < n_hot; i++)
        kill(hot_pids[i], SIGKILL);
    for (int i = 0; i < n_idle; i++)
        kill(idle_pids[i], SIGKILL);
    while (wait(NULL) > 0 || errno == EINTR)
        ;
    return 0;
}
