/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stoke-query — the stateless query worker (docs/api.md), and
 * `stoke-query import`, which writes pprof files into a store.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "query/auth.h"
#include "query/cache.h"
#include "query/compact.h"
#include "query/generate.h"
#include "query/engine.h"
#include "query/http.h"
#include "query/import.h"
#include "store/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: stoke-query --store DIR|s3://BUCKET/PREFIX [--listen ADDR] [options]\n"
               "       stoke-query import --store URL --service NAME [--tenant T] [--host H]\n"
               "                          [--time MS] FILE.pb.gz...\n"
               "       stoke-query compact --store URL [--tenant T] [--retention-days N]\n"
               "                          [--delay SEC] [--open-hours] [--every SEC] [S3 options]\n"
               "       stoke-query generate --store DIR --hosts N --services M --hours T\n"
               "                          [--compacted] [--flush SEC] [--start MS] FILE.pb.gz...\n"
               "\n"
               "Serves the query API (docs/api.md) and the web page.\n"
               "\n"
               "  --store URL         directory or s3://bucket/prefix (required)\n"
               "  --listen ADDR       HOST:PORT to listen on (default 127.0.0.1:4040)\n"
               "  --tenant T          default tenant (default \"default\")\n"
               "  --peers A:P,B:P     other workers to share large queries with\n"
               "  --threads N         decode threads per query (default 2)\n"
               "  --cache-mb N        memory cache size (default 256; 0 disables)\n"
               "  --cache-dir DIR     disk cache directory (default none)\n"
               "  --web-dir DIR       serve DIR/index.html instead of the embedded page\n"
               "  --query-timeout T   a request's queries stop after T (default 60s; 500ms,\n"
               "                      10s, 2m); Connect clients may ask for less\n"
               "  --read-timeout T    a request (head and body) must arrive within T of its\n"
               "                      first byte, or of the previous answer (default 10s)\n"
               "  --write-timeout T   an answer must be taken within T (default 60s)\n"
               "  --max-connections N open connections (default 1024, at most the\n"
               "                      descriptor limit less 64); 3/4 may be reading requests\n"
               "  --max-connections-per-ip N  per client address (default: no limit)\n"
               "  --max-queries N     queries running at once (default 8); 4N more wait,\n"
               "                      beyond that 429\n"
               "  --auth-token-file F require \"Authorization: Bearer TOKEN\" (or Basic auth\n"
               "                      with TOKEN as password) on every request but /healthz\n"
               "                      and the page; F holds one or more tokens, one per\n"
               "                      line; the first is sent to --peers\n"
               "  --s3-endpoint URL   S3 endpoint (default AWS_ENDPOINT_URL or AWS)\n"
               "  --s3-region R       S3 region (default AWS_REGION or us-east-1)\n"
               "  --s3-access-key-file F, --s3-secret-key-file F\n"
               "                      read credentials from files (default: environment,\n"
               "                      then ~/.aws/credentials)\n"
               "  --s3-path-style     use path-style S3 URLs\n"
               "  -h, --help          this text\n");
}

/* "30", "30s", "500ms", "2m" into milliseconds in [1, 86400000]. */
static int parse_duration_ms(const char *s, unsigned *out)
{
    char *end;
    unsigned long long mult = 1000;

    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || s[0] == '-')
        return -EINVAL;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (*end && strcmp(end, "s") != 0)
        return -EINVAL;
    if (v == 0 || v > 86400000ULL / mult)
        return -EINVAL;
    *out = (unsigned)(v * mult);
    return 0;
}

/* A count in [1, max]. */
static int parse_count(const char *s, unsigned long max, unsigned *out)
{
    char *end;

    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v < 1 || v > max)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* Raises the soft descriptor limit to the hard one: each client
 * connection holds a descriptor (Go's runtime does the same at start). */
static void raise_nofile(void)
{
    struct rlimit r;

    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

/* Stopping waits for running queries, which stop at their next check; one
 * stuck in a store read (an S3 request has its own 30 s timeout) must not
 * hold the exit: after STOP_GRACE_S the process exits anyway. */
#define STOP_GRACE_S 5
static void *stop_watchdog(void *arg)
{
    (void)arg;
    sleep(STOP_GRACE_S);
    fprintf(stderr,
            "stoke-query: still stopping after %d s (a query blocked in the store); "
            "exiting without waiting\n",
            STOP_GRACE_S);
    _exit(1);
    return NULL;
}

/* Reads the first line of @path into a malloc'd string (credentials are
 * never passed on the command line, where ps would show them). */
static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[1024];

    if (!f)
        return NULL;
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

/*
 * `stoke-query compact`: merges closed hours into blocks + hour manifests
 * and applies retention (query/compact.h); once, or every --every SEC
 * until SIGINT/SIGTERM.
 */
static volatile sig_atomic_t compact_stop;
static void on_compact_error(const char *msg, void *arg)
{
    (void)arg;
    fprintf(stderr, "stoke-query compact: skipped: %s\n", msg);
}

static void on_compact_signal(int sig)
{
    (void)sig;
    compact_stop = 1;
}

static int cmd_compact(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"tenant", required_argument, 0, 't'},
                                         {"retention-days", required_argument, 0, 'r'},
                                         {"delay", required_argument, 0, 'd'},
                                         {"open-hours", no_argument, 0, 'o'},
                                         {"every", required_argument, 0, 'e'},
                                         {"s3-endpoint", required_argument, 0, 'E'},
                                         {"s3-region", required_argument, 0, 'R'},
                                         {"s3-path-style", no_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct store_opts so = {.path_style = -1};
    struct compact_opts co = {.on_error = on_compact_error};
    unsigned every = 0;
    char err[512];
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        unsigned long v = 0;
        if (c == 'r' || c == 'd' || c == 'e') {
            v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || v > 100000) {
                fprintf(stderr, "stoke-query compact: --%s: '%s' is not a number\n",
                        c == 'r'   ? "retention-days"
                        : c == 'd' ? "delay"
                                   : "every",
                        optarg);
                return 2;
            }
        }
        switch (c) {
        case 's':
            so.url = optarg;
            break;
        case 't':
            co.tenant = optarg;
            break;
        case 'r':
            co.retention_h = (unsigned)v * 24;
            break;
        case 'd':
            co.delay_s = (unsigned)v;
            break;
        case 'o':
            co.open_hours = 1;
            break;
        case 'e':
            every = (unsigned)v;
            break;
        case 'E':
            so.endpoint = optarg;
            break;
        case 'R':
            so.region = optarg;
            break;
        case 'P':
            so.path_style = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!so.url) {
        fprintf(stderr, "stoke-query compact: --store is required\n");
        return 2;
    }
    struct store *st = store_open(&so, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "stoke-query compact: %s\n", err);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_compact_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int ret;
    do {
        struct compact_stats cs;
        ret = compact_run(st, &co, &cs);
        printf("compact: %llu hours compacted (%llu entries, %llu sections merged, %llu blocks, "
               "%llu bytes read, %llu written), %llu objects deleted, %llu hours expired, "
               "%llu objects kept as they are, %llu orphan blocks, %llu errors%s%s\n",
               (unsigned long long)cs.hours_compacted, (unsigned long long)cs.entries_merged,
               (unsigned long long)cs.sections_merged, (unsigned long long)cs.blocks_written,
               (unsigned long long)cs.bytes_in, (unsigned long long)cs.bytes_out,
               (unsigned long long)cs.objects_deleted, (unsigned long long)cs.hours_expired,
               (unsigned long long)cs.objects_kept, (unsigned long long)cs.blocks_orphaned,
               (unsigned long long)cs.errors, cs.last_error[0] ? ": " : "", cs.last_error);
        fflush(stdout);
        if (ret)
            fprintf(stderr, "stoke-query compact: %s\n", st->err[0] ? st->err : strerror(-ret));
        for (unsigned i = 0; every && i < every * 10 && !compact_stop; i++) {
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
        }
    } while (every && !compact_stop);
    store_close(st);
    return ret ? 1 : 0;
}

/* `stoke-query generate`: the fleet generator (query/generate.h). */
static int cmd_generate(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"tenant", required_argument, 0, 't'},
                                         {"hosts", required_argument, 0, 'H'},
                                         {"services", required_argument, 0, 'S'},
                                         {"hours", required_argument, 0, 'T'},
                                         {"flush", required_argument, 0, 'f'},
                                         {"start", required_argument, 0, 'b'},
                                         {"seed", required_argument, 0, 'r'},
                                         {"compacted", no_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct store_opts so = {.path_style = -1};
    struct generate_opts go = {0};
    char err[512];
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        long long v = 0;
        if (c != 's' && c != 't' && c != 'c' && c != 'h' && c != '?') {
            v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 0) {
                fprintf(stderr, "stoke-query generate: '%s' is not a number\n", optarg);
                return 2;
            }
        }
        switch (c) {
        case 's':
            so.url = optarg;
            break;
        case 't':
            go.tenant = optarg;
            break;
        case 'H':
            go.hosts = (unsigned)v;
            break;
        case 'S':
            go.services = (unsigned)v;
            break;
        case 'T':
            go.hours = (unsigned)v;
            break;
        case 'f':
            go.flush_s = (unsigned)v;
            break;
        case 'b':
            go.start_ms = v;
            break;
        case 'r':
            go.seed = (uint64_t)v;
            break;
        case 'c':
            go.compacted = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!so.url || optind >= argc) {
        fprintf(stderr, "stoke-query generate: --store and at least one pprof FILE are required\n");
        return 2;
    }
    go.files = (const char *const *)&argv[optind];
    go.nfiles = (size_t)(argc - optind);
    struct store *st = store_open(&so, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "stoke-query generate: %s\n", err);
        return 1;
    }
    struct generate_stats gs;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int ret = fleet_generate(st, &go, &gs, err, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    store_close(st);
    if (ret) {
        fprintf(stderr, "stoke-query generate: %s\n", err);
        return 1;
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("generate: %llu objects, %llu bytes (%llu in segments/blocks), %llu samples in %llu "
           "rows, %.2f bytes/sample, %.1f s\n",
           (unsigned long long)gs.objects, (unsigned long long)gs.bytes,
           (unsigned long long)gs.segment_bytes, (unsigned long long)gs.samples,
           (unsigned long long)gs.rows, gs.samples ? (double)gs.bytes / (double)gs.samples : 0,
           secs);
    return 0;
}

static int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"service", required_argument, 0, 'S'},
                                         {"tenant", required_argument, 0, 't'},
                                         {"host", required_argument, 0, 'H'},
                                         {"time", required_argument, 0, 'T'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct import_opts io = {0};
    struct store_opts so = {0};
    char err[512];
    int c, rc = 0;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            so.url = optarg;
            break;
        case 'S':
            io.service = optarg;
            break;
        case 't':
            io.tenant = optarg;
            break;
        case 'H':
            io.host = optarg;
            break;
        case 'T':
            io.time_ms = strtoll(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!so.url || !io.service || optind >= argc) {
        fprintf(stderr, "stoke-query import: --store, --service and at least one FILE are "
                        "required\n");
        return 2;
    }
    struct store *st = store_open(&so, err, sizeof(err));
    if (!st) {
        fprintf(stderr, "stoke-query import: %s\n", err);
        return 1;
    }
    for (int i = optind; i < argc; i++) {
        char key[1024], warn[512];
        struct import_opts one = io;
        /* Several files of one service: one second apart, as windows. */
        if (io.time_ms)
            one.time_ms = io.time_ms + (int64_t)(i - optind) * 1000;
        if (query_import_file(st, &one, argv[i], key, sizeof(key), warn, sizeof(warn), err,
                              sizeof(err))) {
            fprintf(stderr, "stoke-query import: %s\n", err);
            rc = 1;
            continue;
        }
        if (warn[0])
            fprintf(stderr, "stoke-query import: warning: %s\n", warn);
        printf("%s\n", key);
    }
    store_close(st);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"store", required_argument, 0, 's'},
                                         {"listen", required_argument, 0, 'l'},
                                         {"tenant", required_argument, 0, 't'},
                                         {"peers", required_argument, 0, 'p'},
                                         {"threads", required_argument, 0, 'n'},
                                         {"cache-mb", required_argument, 0, 'c'},
                                         {"cache-dir", required_argument, 0, 'C'},
                                         {"web-dir", required_argument, 0, 'w'},
                                         {"auth-token-file", required_argument, 0, 'T'},
                                         {"s3-endpoint", required_argument, 0, 'E'},
                                         {"s3-region", required_argument, 0, 'R'},
                                         {"s3-access-key-file", required_argument, 0, 'A'},
                                         {"s3-secret-key-file", required_argument, 0, 'K'},
                                         {"s3-path-style", no_argument, 0, 'P'},
                                         {"query-timeout", required_argument, 0, 'Q'},
                                         {"read-timeout", required_argument, 0, 'r'},
                                         {"write-timeout", required_argument, 0, 'W'},
                                         {"max-connections", required_argument, 0, 'M'},
                                         {"max-connections-per-ip", required_argument, 0, 'I'},
                                         {"max-queries", required_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct store_opts so = {.path_style = -1};
    struct http_opts ho = {0};
    const char *listen = "127.0.0.1:4040", *tenant = "default", *cache_dir = NULL, *web_dir = NULL,
               *peers_arg = NULL, *token_file = NULL;
    struct auth *auth = NULL;
    char *ak = NULL, *sk = NULL, *peers_buf = NULL, *peers[64];
    size_t npeers = 0;
    long cache_mb = 256, threads = 2;
    char err[512];
    int c, rc = 1;

    if (argc > 1 && strcmp(argv[1], "import") == 0)
        return cmd_import(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "compact") == 0)
        return cmd_compact(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "generate") == 0)
        return cmd_generate(argc - 1, argv + 1);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's':
            so.url = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 't':
            tenant = optarg;
            break;
        case 'p':
            peers_arg = optarg;
            break;
        case 'n':
            threads = strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > 8) {
                fprintf(stderr, "stoke-query: --threads must be 1..8\n");
                return 2;
            }
            break;
        case 'c':
            cache_mb = strtol(optarg, &end, 10);
            if (*end || cache_mb < 0 || cache_mb > 1 << 20) {
                fprintf(stderr, "stoke-query: --cache-mb must be 0..1048576\n");
                return 2;
            }
            break;
        case 'C':
            cache_dir = optarg;
            break;
        case 'w':
            web_dir = optarg;
            break;
        case 'T':
            token_file = optarg;
            break;
        case 'E':
            so.endpoint = optarg;
            break;
        case 'R':
            so.region = optarg;
            break;
        case 'A':
            if (!(ak = read_secret(optarg))) {
                fprintf(stderr, "stoke-query: cannot read %s\n", optarg);
                return 2;
            }
            so.access_key = ak;
            break;
        case 'K':
            if (!(sk = read_secret(optarg))) {
                fprintf(stderr, "stoke-query: cannot read %s\n", optarg);
                return 2;
            }
            so.secret_key = sk;
            break;
        case 'P':
            so.path_style = 1;
            break;
        case 'Q':
        case 'r':
        case 'W':
            if (parse_duration_ms(optarg, c == 'Q'   ? &ho.query_timeout_ms
                                          : c == 'r' ? &ho.read_timeout_ms
                                                     : &ho.write_timeout_ms)) {
                fprintf(stderr,
                        "stoke-query: --%s: '%s' is not a duration from 1ms to 24h (e.g. 30s, "
                        "500ms, 2m)\n",
                        c == 'Q'   ? "query-timeout"
                        : c == 'r' ? "read-timeout"
                                   : "write-timeout",
                        optarg);
                return 2;
            }
            break;
        case 'M':
        case 'I':
        case 'q':
            if (parse_count(optarg, c == 'q' ? 256 : 1000000,
                            c == 'M'   ? &ho.max_connections
                            : c == 'I' ? &ho.max_per_ip
                                       : &ho.max_queries)) {
                fprintf(stderr, "stoke-query: --%s: '%s' is not a number from 1 to %lu\n",
                        c == 'M'   ? "max-connections"
                        : c == 'I' ? "max-connections-per-ip"
                                   : "max-queries",
                        optarg, c == 'q' ? 256UL : 1000000UL);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!so.url || optind != argc) {
        fprintf(stderr, "stoke-query: %s\n",
                so.url ? "unexpected arguments" : "--store is required");
        usage(stderr);
        return 2;
    }
    if (token_file && auth_load(token_file, &auth, err, sizeof(err))) {
        fprintf(stderr, "stoke-query: --auth-token-file %s\n", err);
        free(ak);
        free(sk);
        return 2;
    }
    if (peers_arg && *peers_arg) {
        peers_buf = strdup(peers_arg);
        for (char *save = NULL, *tok = strtok_r(peers_buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (npeers == 64 || !strchr(tok, ':')) {
                fprintf(stderr, "stoke-query: --peers: expected HOST:PORT,... (at most 64)\n");
                free(peers_buf);
                auth_free(auth);
                return 2;
            }
            peers[npeers++] = tok;
        }
    }
    /* Block the stop signals before any thread starts so they all inherit
     * the mask and main alone receives them through sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    struct store *st = store_open(&so, err, sizeof(err));
    struct cache *cache = NULL;
    struct engine *eng = NULL;
    struct http_server *srv = NULL;
    if (!st) {
        fprintf(stderr, "stoke-query: --store %s: %s\n", so.url, err);
        goto out;
    }
    if (cache_mb || cache_dir) {
        cache = cache_new((size_t)cache_mb << 20, cache_dir);
        if (!cache) {
            fprintf(stderr, "stoke-query: --cache-dir %s: cannot create\n",
                    cache_dir ? cache_dir : "");
            goto out;
        }
    }
    struct engine_opts eo = {.store = st,
                             .cache = cache,
                             .peers = peers,
                             .npeers = npeers,
                             .threads = (unsigned)threads,
                             .peer_token = auth_first(auth)};
    eng = engine_new(&eo);
    if (!eng) {
        fprintf(stderr, "stoke-query: out of memory\n");
        goto out;
    }
    ho.listen = listen;
    ho.engine = eng;
    ho.cache = cache;
    ho.tenant = tenant;
    ho.web_dir = web_dir;
    ho.auth = auth;
    srv = http_start(&ho, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "stoke-query: %s\n", err);
        goto out;
    }
    const struct http_limits *lim = http_server_limits(srv);
    fprintf(stderr,
            "stoke-query: serving %s on port %u (store %s, %zu peers, %s; %u connections, "
            "%u queries at once, query timeout %u ms, read timeout %u ms)\n",
            listen, http_port(srv), so.url, npeers, auth ? "token auth on" : "no auth",
            lim->max_connections, lim->max_queries, lim->query_timeout_ms, lim->read_timeout_ms);
    if (ho.max_connections && lim->max_connections < ho.max_connections)
        fprintf(stderr,
                "stoke-query: --max-connections %u lowered to %u: the descriptor limit "
                "(ulimit -n) leaves no more\n",
                ho.max_connections, lim->max_connections);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "stoke-query: %s, stopping\n", strsignal(sig));
    pthread_t wd;
    if (pthread_create(&wd, NULL, stop_watchdog, NULL) == 0)
        pthread_detach(wd);
    rc = 0;
out:
    http_stop(srv);
    engine_free(eng);
    cache_free(cache);
    if (st)
        store_close(st);
    free(peers_buf);
    auth_free(auth);
    free(ak);
    free(sk);
    return rc;
}
