/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stoke-query — the stateless query worker (docs/api.md), and its offline
 * subcommands: import (pprof files into a store), compact (hours into
 * blocks, retention) and generate (a synthetic fleet for benchmarks).
 *
 * One table lists every option once: its name, the subcommands that take
 * it, its kind and bounds, where it is stored, and its help line; the
 * command-line parser and --help both read it, so they cannot disagree
 * (as agent/config.c does for the agent). The store options are one block
 * every subcommand shares.
 */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"
#include "query/engine/cache.h"
#include "query/engine/dsym.h"
#include "query/engine/engine.h"
#include "query/engine/plan.h"
#include "query/jobs/compact.h"
#include "query/jobs/lease.h"
#include "query/jobs/remote_write.h"
#include "query/jobs/rules.h"
#include "query/jobs/generate.h"
#include "query/jobs/import.h"
#include "common/auth.h"
#include "query/serve/http.h"
#include "store/store.h"
#include "symbolizer/debuginfod.h"

enum cmd {
    CMD_SERVE = 1 << 0,
    CMD_IMPORT = 1 << 1,
    CMD_COMPACT = 1 << 2,
    CMD_GENERATE = 1 << 3,
    CMD_DEBUGINFO = 1 << 4,
    CMD_ALL = CMD_SERVE | CMD_IMPORT | CMD_COMPACT | CMD_GENERATE | CMD_DEBUGINFO,
};

/* Every value any subcommand takes; the table below says which. */
struct cli {
    /* the store, every subcommand */
    const char *store, *s3_endpoint, *s3_region, *s3_access_key_file, *s3_secret_key_file,
        *s3_ca_file;
    bool s3_path_style;
    const char *tenant;
    /* serve */
    const char *peers_dns, *peers_self;
    unsigned peers_dns_refresh_ms;
    const char *listen, *peers, *cache_dir, *web_dir, *auth_token_file;
    unsigned threads, cache_mb;
    unsigned query_timeout_ms, read_timeout_ms, write_timeout_ms;
    unsigned max_connections, max_per_ip, max_queries;
    uint64_t query_memory, total_query_memory;
    const char *debuginfod_urls, *debuginfod_cache_dir;
    unsigned debuginfod_timeout_s, debuginfo_recheck_ms;
    /* serve and debuginfo */
    unsigned debuginfo_max_mb;
    /* import */
    const char *service, *host;
    int64_t time_ms;
    /* compact */
    unsigned retention_days, delay_s, every_s, passes;
    bool open_hours, continuous;
    unsigned span_s, grace_s, lease_ttl_s;
    const char *replica_id;
    int64_t now_ms;
    const char *remote_write_url;
    unsigned remote_write_retries, remote_write_timeout_ms, rule_interval_s;
    /* generate */
    unsigned hosts, services, hours, flush_s, first_host, model_rows, model_services;
    const char *model;
    int64_t start_ms, seed;
    bool compacted;
    bool entries;
};

enum okind {
    O_STR,  /* const char * */
    O_BOOL, /* bool, no argument */
    O_UINT, /* unsigned in [min, max] */
    O_I64,  /* int64_t in [min, max] */
    O_DUR,  /* unsigned milliseconds: 30, 30s, 500ms, 2m; 1 ms to 24 h */
    O_SIZE, /* uint64_t bytes: 64M, 512K, 2G; a bare number is MiB; [min, max] */
};

struct opt {
    const char *name;
    unsigned cmds; /* the subcommands that take it */
    enum okind kind;
    size_t off;
    int64_t min, max;
    const char *arg; /* metavariable for --help */
    const char *help;
};

#define OFF(f)     offsetof(struct cli, f)
#define SECRET_MAX (64u << 10) /* bytes of a credentials file */

static const struct opt opts[] = {
    /* the store: every subcommand */
    {"store", CMD_ALL, O_STR, OFF(store), 0, 0, "URL",
     "directory or s3://bucket/prefix (required)"},
    {"s3-endpoint", CMD_ALL, O_STR, OFF(s3_endpoint), 0, 0, "URL",
     "S3 endpoint (default AWS_ENDPOINT_URL or AWS)"},
    {"s3-region", CMD_ALL, O_STR, OFF(s3_region), 0, 0, "R",
     "S3 region (default AWS_REGION or us-east-1)"},
    {"s3-access-key-file", CMD_ALL, O_STR, OFF(s3_access_key_file), 0, 0, "F",
     "read the access key from F (default: environment, then ~/.aws/credentials)"},
    {"s3-secret-key-file", CMD_ALL, O_STR, OFF(s3_secret_key_file), 0, 0, "F",
     "read the secret key from F"},
    {"s3-path-style", CMD_ALL, O_BOOL, OFF(s3_path_style), 0, 0, NULL, "use path-style S3 URLs"},
    {"s3-ca-file", CMD_ALL, O_STR, OFF(s3_ca_file), 0, 0, "F",
     "extra CA bundle for TLS to S3 (default AWS_CA_BUNDLE, else the system's)"},
    {"tenant", CMD_ALL, O_STR, OFF(tenant), 0, 0, "T", "tenant (default \"default\")"},
    /* serve */
    {"listen", CMD_SERVE, O_STR, OFF(listen), 0, 0, "ADDR",
     "HOST:PORT to listen on (default 127.0.0.1:4040)"},
    {"peers", CMD_SERVE, O_STR, OFF(peers), 0, 0, "A:P,B:P",
     "other workers to share large queries with (at most 64)"},
    {"peers-dns", CMD_SERVE, O_STR, OFF(peers_dns), 0, 0, "NAME[:PORT]",
     "also every address NAME resolves to (a Kubernetes headless Service), looked up again "
     "every --peers-dns-refresh; PORT defaults to --listen's; this worker's own addresses are "
     "left out"},
    {"peers-dns-refresh", CMD_SERVE, O_DUR, OFF(peers_dns_refresh_ms), 0, 0, "T",
     "how often --peers-dns is looked up (default 10s)"},
    {"peers-self", CMD_SERVE, O_STR, OFF(peers_self), 0, 0, "A,B",
     "this worker's addresses, left out of --peers-dns answers (besides --listen's host, the "
     "interfaces' addresses and the host name's; e.g. $(POD_IP))"},
    {"threads", CMD_SERVE, O_UINT, OFF(threads), 1, 8, "N", "decode threads per query (default 2)"},
    {"cache-mb", CMD_SERVE, O_UINT, OFF(cache_mb), 0, 1 << 20, "N",
     "memory cache size (default 256; 0 disables)"},
    {"cache-dir", CMD_SERVE, O_STR, OFF(cache_dir), 0, 0, "DIR",
     "disk cache directory (default none)"},
    {"web-dir", CMD_SERVE, O_STR, OFF(web_dir), 0, 0, "DIR",
     "serve DIR/index.html instead of the embedded page"},
    {"query-timeout", CMD_SERVE, O_DUR, OFF(query_timeout_ms), 0, 0, "T",
     "a request's queries stop after T (default 60s; 500ms, 10s, 2m); Connect clients may ask "
     "for less"},
    {"read-timeout", CMD_SERVE, O_DUR, OFF(read_timeout_ms), 0, 0, "T",
     "a request (head and body) must arrive within T of its first byte, or of the previous "
     "answer (default 10s)"},
    {"write-timeout", CMD_SERVE, O_DUR, OFF(write_timeout_ms), 0, 0, "T",
     "an answer must be taken within T (default 60s)"},
    {"max-connections", CMD_SERVE, O_UINT, OFF(max_connections), 1, 1000000, "N",
     "open connections (default 1024, at most the descriptor limit less 64); 3/4 may be reading "
     "requests"},
    {"max-connections-per-ip", CMD_SERVE, O_UINT, OFF(max_per_ip), 1, 1000000, "N",
     "per client address (default: no limit)"},
    {"max-queries", CMD_SERVE, O_UINT, OFF(max_queries), 1, 256, "N",
     "queries running at once (default 8); 4N more wait, beyond that 429"},
    {"query-memory-limit", CMD_SERVE, O_SIZE, OFF(query_memory), 4096, 1LL << 40, "SIZE",
     "memory one query may hold: its footers, the sections it is decoding, its merge tables "
     "and its answer (default 64M; K, M, G; a bare number is MiB); a query that needs more "
     "stops with 422"},
    {"total-query-memory-limit", CMD_SERVE, O_SIZE, OFF(total_query_memory), 4096, 1LL << 40,
     "SIZE",
     "memory all running queries may hold together (default 96M; the cache comes on top); a "
     "query that finds it full stops, and new ones are refused, with 429 and Retry-After"},
    {"auth-token-file", CMD_SERVE, O_STR, OFF(auth_token_file), 0, 0, "F",
     "require \"Authorization: Bearer TOKEN\" (or Basic auth with TOKEN as password) on every "
     "request but /healthz and the page; F holds one or more tokens, one per line; the first is "
     "sent to --peers"},
    {"debuginfod-urls", CMD_SERVE, O_STR, OFF(debuginfod_urls), 0, 0, "URLS",
     "name frames stored unnamed from these debuginfod servers (space-separated; default "
     "DEBUGINFOD_URLS, \"off\" for none) when the store has no debug file: each build-id asked "
     "for tells the servers what the fleet runs"},
    {"debuginfod-cache-dir", CMD_SERVE, O_STR, OFF(debuginfod_cache_dir), 0, 0, "DIR",
     "where debug files fetched from debuginfod are kept (default "
     "/var/cache/stoke-query/debuginfod)"},
    {"debuginfod-timeout", CMD_SERVE, O_UINT, OFF(debuginfod_timeout_s), 1, 600, "SEC",
     "per server: connecting, and any second without data (default 10)"},
    {"debuginfo-recheck", CMD_SERVE, O_DUR, OFF(debuginfo_recheck_ms), 0, 0, "T",
     "a build-id the store had no debug file for is looked for again after T (default 30s; an "
     "upload to this worker makes it at once)"},
    {"debuginfo-max-mb", CMD_SERVE | CMD_DEBUGINFO, O_UINT, OFF(debuginfo_max_mb), 1, 1 << 16, "MB",
     "largest debug file uploaded or read (default 1024)"},
    /* import */
    {"service", CMD_IMPORT, O_STR, OFF(service), 0, 0, "NAME", "service name (required)"},
    {"host", CMD_IMPORT, O_STR, OFF(host), 0, 0, "H", "host name (default \"import\")"},
    {"time", CMD_IMPORT, O_I64, OFF(time_ms), 0, QUERY_MAX_TIME_MS, "MS",
     "time of the first file, Unix ms (default: the profile's, else now); the next files one "
     "second apart"},
    /* compact */
    {"retention-days", CMD_COMPACT, O_UINT, OFF(retention_days), 0, 100000, "N",
     "delete hours older than N days (default 0: keep)"},
    {"delay", CMD_COMPACT, O_UINT, OFF(delay_s), 0, 100000, "SEC",
     "an hour is closed SEC after it ends (default 600)"},
    {"open-hours", CMD_COMPACT, O_BOOL, OFF(open_hours), 0, 0, NULL,
     "also compact the current, still open hour"},
    {"every", CMD_COMPACT, O_UINT, OFF(every_s), 0, 100000, "SEC",
     "run again every SEC until SIGINT/SIGTERM (default: once; 60 with --continuous)"},
    {"continuous", CMD_COMPACT, O_BOOL, OFF(continuous), 0, 0, NULL,
     "also merge the open hour's flushes, span by span (level 1), under leases shared with "
     "other replicas; closed hours get one block each (level 2)"},
    {"span", CMD_COMPACT, O_UINT, OFF(span_s), 60, 3600, "SEC",
     "level-1 span, a divisor of 3600 (default 300)"},
    {"grace", CMD_COMPACT, O_UINT, OFF(grace_s), 1, 3600, "SEC",
     "a span is merged SEC after it ends, once its hosts have flushed it (default 90)"},
    {"lease-ttl", CMD_COMPACT, O_UINT, OFF(lease_ttl_s), 10, 86400, "SEC",
     "an hour's lease lapses SEC after it was taken: a crashed replica's hours are taken "
     "over then (default 120)"},
    {"replica-id", CMD_COMPACT, O_STR, OFF(replica_id), 0, 0, "ID",
     "this replica's name in its leases (default HOST-PID)"},
    /* Hidden: the clock of the passes, for the tests. */
    {"now", CMD_COMPACT, O_I64, OFF(now_ms), 0, QUERY_MAX_TIME_MS, "MS", NULL},
    /* Hidden: stop after N passes (0: until a signal), for the benchmarks. */
    {"passes", CMD_COMPACT, O_UINT, OFF(passes), 0, 1000000, "N", NULL},
    {"rule-interval", CMD_COMPACT, O_UINT, OFF(rule_interval_s), 1, 3600, "SEC",
     "the recording rules' samples: one per SEC, aligned to it (default 60, the agent's "
     "flush)"},
    {"remote-write-url", CMD_COMPACT, O_STR, OFF(remote_write_url), 0, 0, "URL",
     "send the recording rules' samples to this Prometheus remote-write receiver "
     "(default: none; /metrics of the workers shows them either way)"},
    {"remote-write-retries", CMD_COMPACT, O_UINT, OFF(remote_write_retries), 0, 20, "N",
     "retries of a failed remote-write request, with back-off from 200 ms doubling to 5 s "
     "(default 5); then its samples are dropped and counted"},
    {"remote-write-timeout", CMD_COMPACT, O_DUR, OFF(remote_write_timeout_ms), 0, 0, "T",
     "one remote-write request's timeout (default 10s)"},
    /* generate */
    {"hosts", CMD_GENERATE, O_UINT, OFF(hosts), 0, UINT_MAX, "N",
     "hosts (required, as are the next two)"},
    {"services", CMD_GENERATE, O_UINT, OFF(services), 0, UINT_MAX, "M", "services per host"},
    {"hours", CMD_GENERATE, O_UINT, OFF(hours), 0, UINT_MAX, "T", "hours of data"},
    {"flush", CMD_GENERATE, O_UINT, OFF(flush_s), 0, UINT_MAX, "SEC",
     "one segment per host per SEC (default 60)"},
    {"start", CMD_GENERATE, O_I64, OFF(start_ms), 0, INT64_MAX, "MS",
     "first hour, Unix ms (default: now - hours)"},
    {"seed", CMD_GENERATE, O_I64, OFF(seed), 0, INT64_MAX, "N", "variation seed"},
    {"compacted", CMD_GENERATE, O_BOOL, OFF(compacted), 0, 0, NULL,
     "write compacted hours (blocks and hour manifests)"},
    {"model", CMD_GENERATE, O_STR, OFF(model), 0, 0, "NAME",
     "'calibrated': no source files; every host's stacks, weights, depths and churn drawn "
     "from what the agent measured on a busy host (docs/storage.md); --services is then the "
     "fleet's services, of which each host runs some"},
    {"rows", CMD_GENERATE, O_UINT, OFF(model_rows), 1, 1u << 20, "N",
     "with --model: rows per host per 10 s window (default: the calibrated figure)"},
    {"services-per-host", CMD_GENERATE, O_UINT, OFF(model_services), 1, 1u << 16, "N",
     "with --model: services each host runs (default: the calibrated figure)"},
    {"first-host", CMD_GENERATE, O_UINT, OFF(first_host), 0, UINT_MAX / 2, "N",
     "name the hosts from host-N on (to write one fleet with several processes)"},
    /* Hidden (no help): the layout of stores written before one object per
     * flush, a manifest entry beside every segment, for the tests and
     * benchmarks of reading such stores. */
    {"entries", CMD_GENERATE, O_BOOL, OFF(entries), 0, 0, NULL, NULL},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const struct {
    const char *name;
    enum cmd cmd;
    const char *usage;
} cmds[] = {
    {NULL, CMD_SERVE, "stoke-query --store URL [--listen ADDR] [options]"},
    {"import", CMD_IMPORT, "stoke-query import --store URL --service NAME [options] FILE.pb.gz..."},
    {"compact", CMD_COMPACT, "stoke-query compact --store URL [options]"},
    {"generate", CMD_GENERATE,
     "stoke-query generate --store URL --hosts N --services M --hours T [options] "
     "FILE.pb.gz..."},
    {"debuginfo", CMD_DEBUGINFO, "stoke-query debuginfo upload --store URL [options] FILE..."},
};

#define HELP_WIDTH 51 /* 80 columns less the option column */

static void usage(FILE *f)
{
    static const struct {
        unsigned cmds;
        const char *title;
    } groups[] = {
        {CMD_ALL, "every subcommand (the store)"},
        {CMD_SERVE, "stoke-query (serving)"},
        {CMD_IMPORT, "stoke-query import"},
        {CMD_COMPACT, "stoke-query compact"},
        {CMD_GENERATE, "stoke-query generate"},
        {CMD_SERVE | CMD_DEBUGINFO, "stoke-query (serving) and stoke-query debuginfo"},
    };

    fprintf(f, "usage:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(f, "  %s\n", cmds[i].usage);
    fprintf(f, "\nServes the query API (docs/api.md) and the web page; imports pprof files,\n"
               "compacts closed hours and applies retention (docs/storage.md), writes a\n"
               "synthetic fleet for benchmarks, or uploads debug files that name the frames\n"
               "agents stored unnamed (docs/api.md, Deferred symbolization).\n");
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        fprintf(f, "\n%s:\n", groups[g].title);
        for (size_t k = 0; k < NOPTS; k++) {
            const struct opt *o = &opts[k];
            const char *h = o->help;
            char left[64];
            if (o->cmds != groups[g].cmds || !h)
                continue;
            snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
            fprintf(f, "  %-26s ", left);
            /* the help wrapped at 80 columns, continued under itself */
            while (strlen(h) > HELP_WIDTH) {
                int cut = HELP_WIDTH;
                while (cut > 0 && h[cut] != ' ')
                    cut--;
                if (cut == 0)
                    break;
                fprintf(f, "%.*s\n%29s", cut, h, "");
                h += cut + 1;
            }
            fprintf(f, "%s\n", h);
        }
    }
    fprintf(f, "\n  -h, --help                 this text\n");
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

/* Stores @val for option @o into @c. 0, or -EINVAL after saying why. */
static int set_opt(struct cli *c, const struct opt *o, const char *val, const char *prog)
{
    char *field = (char *)c + o->off, *end;

    switch (o->kind) {
    case O_STR:
        *(const char **)field = val;
        return 0;
    case O_BOOL:
        *(bool *)field = true;
        return 0;
    case O_DUR:
        if (parse_duration_ms(val, (unsigned *)field)) {
            fprintf(stderr,
                    "%s: --%s: '%s' is not a duration from 1ms to 24h (e.g. 30s, 500ms, 2m)\n",
                    prog, o->name, val);
            return -EINVAL;
        }
        return 0;
    case O_SIZE: {
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10), unit = 1ull << 20;
        if (*end && !end[1])
            switch (*end | 0x20) {
            case 'k':
                unit = 1ull << 10, end++;
                break;
            case 'm':
                unit = 1ull << 20, end++;
                break;
            case 'g':
                unit = 1ull << 30, end++;
                break;
            }
        if (!*val || *val == '-' || *end || errno || v > (unsigned long long)o->max / unit ||
            v * unit < (unsigned long long)o->min) {
            fprintf(stderr, "%s: --%s: '%s' is not a size from %lldK to %lldG (e.g. 64M, 512K)\n",
                    prog, o->name, val, (long long)o->min >> 10, (long long)o->max >> 30);
            return -EINVAL;
        }
        *(uint64_t *)field = v * unit;
        return 0;
    }
    case O_UINT:
    case O_I64: {
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (!*val || *end || errno || v < o->min || v > o->max) {
            fprintf(stderr, "%s: --%s: '%s' is not a number from %lld to %lld\n", prog, o->name,
                    val, (long long)o->min, (long long)o->max);
            return -EINVAL;
        }
        if (o->kind == O_UINT)
            *(unsigned *)field = (unsigned)v;
        else
            *(int64_t *)field = v;
        return 0;
    }
    }
    return -EINVAL;
}

/* Parses the options of subcommand @cmd (argv[0] is its name). 0, 1 when
 * --help was printed, or 2 after saying what is wrong. */
static int parse(struct cli *c, enum cmd cmd, const char *prog, int argc, char **argv)
{
    struct option lopts[NOPTS + 2];
    size_t n = 0;
    int ch;

    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].cmds & cmd)
            lopts[n++] = (struct option){opts[i].name,
                                         opts[i].kind == O_BOOL ? no_argument : required_argument,
                                         NULL, 1000 + (int)i};
    lopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    lopts[n] = (struct option){0};
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return 1;
        }
        if (ch < 1000) {
            usage(stderr);
            return 2;
        }
        if (set_opt(c, &opts[ch - 1000], optarg, prog))
            return 2;
    }
    return 0;
}

/* The store options every subcommand shares, credentials read from their
 * files. The secrets are the caller's to free. 0, or 2 after saying why. */
static int store_opts_of(const struct cli *c, const char *prog, struct store_opts *so, char **ak,
                         char **sk)
{
    *so = (struct store_opts){.url = c->store,
                              .endpoint = c->s3_endpoint,
                              .region = c->s3_region,
                              .path_style = c->s3_path_style ? 1 : -1,
                              .ca_file = c->s3_ca_file};
    *ak = *sk = NULL;
    /* Credentials come from files, never the command line, where ps would
     * show them. */
    if (c->s3_access_key_file && read_first_line(c->s3_access_key_file, SECRET_MAX, ak)) {
        fprintf(stderr, "%s: cannot read %s\n", prog, c->s3_access_key_file);
        return 2;
    }
    if (c->s3_secret_key_file && read_first_line(c->s3_secret_key_file, SECRET_MAX, sk)) {
        fprintf(stderr, "%s: cannot read %s\n", prog, c->s3_secret_key_file);
        free(*ak);
        *ak = NULL;
        return 2;
    }
    so->access_key = *ak;
    so->secret_key = *sk;
    return 0;
}

/* Opens the store of @c into *@st. 0, 2 when a credentials file cannot be
 * read, 1 when the store cannot be opened (after saying why). */
static int open_store(const struct cli *c, const char *prog, struct store **st, char **ak,
                      char **sk)
{
    struct store_opts so;
    char err[512];
    int rc = store_opts_of(c, prog, &so, ak, sk);

    *st = NULL;
    if (rc)
        return rc;
    *st = store_open(&so, err, sizeof(err));
    if (!*st) {
        fprintf(stderr, "%s: --store %s: %s\n", prog, c->store, err);
        return 1;
    }
    return 0;
}

/*
 * `stoke-query compact`: merges closed hours into blocks + hour manifests
 * and applies retention (query/jobs/compact.h); once, or every --every SEC
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

static void on_bad_rule(const char *msg, void *arg)
{
    (void)arg;
    fprintf(stderr, "stoke-query compact: recording rule skipped: %s\n", msg);
}

/* After a pass: the recorded samples go to the remote-write receiver and,
 * with the cumulative counters, to the object the workers' /metrics shows
 * (query/engine/rule.h). Nothing here fails the pass. */
static void record(const struct cli *c, struct store *st, struct rule_eval *ev, size_t nrules,
                   unsigned bad)
{
    const char *tenant = c->tenant ? c->tenant : "default";
    struct rec_series *s = NULL;
    struct rule_eval_stats es;
    struct rw_stats rs = {0};
    size_t ns = 0, nsamp = 0;
    char key[512];

    rule_eval_stats(ev, &es);
    if (rule_eval_series(ev, &s, &ns)) {
        fprintf(stderr, "stoke-query compact: recording rules: out of memory\n");
        return;
    }
    for (size_t i = 0; i < ns; i++)
        nsamp += s[i].n;
    if (nsamp && c->remote_write_url) {
        struct rw_opts ro = {.url = c->remote_write_url,
                             .retries = c->remote_write_retries,
                             .timeout_ms = c->remote_write_timeout_ms};
        rw_send(&ro, s, ns, &rs);
    }
    if (nsamp && rule_recorded_key(key, sizeof(key), tenant) >= 0) {
        struct store_buf old = {0};
        uint64_t sent = 0, dropped = 0, size = 0;
        struct wbuf b = {0};
        if (store_head(st, key, &size) == 0 && size <= RULE_MAX_RECORDED &&
            store_get(st, key, 0, 0, &old) == 0) {
            sent = rule_recorded_counter((const char *)old.data, old.len, RULE_COUNTER_SENT);
            dropped = rule_recorded_counter((const char *)old.data, old.len, RULE_COUNTER_DROPPED);
        }
        free(old.data);
        wb_printf(&b,
                  "# TYPE " RULE_COUNTER_SENT " counter\n" RULE_COUNTER_SENT " %llu\n"
                  "# TYPE " RULE_COUNTER_DROPPED " counter\n" RULE_COUNTER_DROPPED " %llu\n",
                  (unsigned long long)(sent + rs.samples_sent),
                  (unsigned long long)(dropped + rs.samples_dropped));
        rec_series_expose(s, ns, &b);
        if (b.err || b.len > RULE_MAX_RECORDED || store_put(st, key, b.p, b.len))
            fprintf(stderr, "stoke-query compact: recording rules: %s not written: %s\n", key,
                    b.err ? "out of memory" : st->err);
        wb_free(&b);
    }
    printf("rules: %zu rules (%u unreadable), %llu flushes, %llu sections evaluated in %.3f ms CPU "
           "over %llu bytes compaction had read (none read again), %zu series, %zu samples; "
           "remote write: %llu sent, %llu dropped, %llu requests, %llu retries%s%s\n",
           nrules, bad, (unsigned long long)es.flushes, (unsigned long long)es.sections,
           (double)es.ns / 1e6, (unsigned long long)es.bytes, ns, nsamp,
           (unsigned long long)rs.samples_sent, (unsigned long long)rs.samples_dropped,
           (unsigned long long)rs.requests, (unsigned long long)rs.retries,
           rs.last_error[0] ? ": " : "", rs.last_error);
    rec_series_free(s, ns);
}

static int cmd_compact(const struct cli *c, struct store *st, char **files, int nfiles)
{
    struct compact_opts co = {.tenant = c->tenant,
                              .now_ms = c->now_ms,
                              .delay_s = c->delay_s,
                              .retention_h = c->retention_days * 24,
                              .open_hours = c->open_hours,
                              .continuous = c->continuous,
                              .span_s = c->span_s,
                              .grace_s = c->grace_s,
                              .lease_ttl_s = c->lease_ttl_s,
                              .on_error = on_compact_error};
    unsigned every = c->every_s ? c->every_s : c->continuous ? 60 : 0;
    char owner[LEASE_OWNER_MAX], lprefix[128];

    if (c->continuous) {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        snprintf(owner, sizeof(owner), "%s", c->replica_id ? c->replica_id : "");
        if (!c->replica_id)
            snprintf(owner, sizeof(owner), "%.64s-%d", host, (int)getpid());
        snprintf(lprefix, sizeof(lprefix), "%.64s/leases/", c->tenant ? c->tenant : "default");
        co.owner = owner;
        /* Replicas are safe only on a store that refuses a create-only put
         * of an existing key: check once, before any work. */
        int rc = lease_store_check(st, lprefix, owner);
        if (rc) {
            fprintf(stderr, "stoke-query compact --continuous: %s\n",
                    rc == -EINVAL ? "--replica-id: no spaces or control characters, at most "
                                    "127 bytes"
                    : st->err[0]  ? st->err
                                  : strerror(-rc));
            return 1;
        }
        if (compact_span_s(&co) != (c->span_s ? c->span_s : 300)) {
            fprintf(stderr, "stoke-query compact: --span %u does not divide the hour\n", c->span_s);
            return 2;
        }
    }

    struct sigaction sa = {.sa_handler = on_compact_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    unsigned npasses = 0;
    int ret;
    do {
        struct compact_stats cs;
        struct rule **rules = NULL;
        size_t nrules = 0;
        unsigned bad = 0;
        /* Rules are read again every pass: edits take effect at the next. */
        if (rules_load(st, c->tenant ? c->tenant : "default", &rules, &nrules, &bad, on_bad_rule,
                       NULL))
            fprintf(stderr, "stoke-query compact: recording rules not read: %s\n", st->err);
        co.rules = nrules ? rule_eval_new(rules, nrules, c->rule_interval_s) : NULL;
        ret = compact_run(st, &co, &cs);
        printf("compact: %llu hours compacted, %llu spans (%llu flushes, %llu sections merged, "
               "%llu blocks, %llu bytes read, %llu written), %llu objects deleted, %llu hours "
               "expired, %llu objects kept as they are, %llu orphan blocks (%llu deleted), %llu "
               "hours leased elsewhere, %llu hours with nothing to do, %llu leases renewed, %llu "
               "leases lost, %llu commits lost, %llu errors%s%s\n",
               (unsigned long long)cs.hours_compacted, (unsigned long long)cs.spans_compacted,
               (unsigned long long)cs.entries_merged, (unsigned long long)cs.sections_merged,
               (unsigned long long)cs.blocks_written, (unsigned long long)cs.bytes_in,
               (unsigned long long)cs.bytes_out, (unsigned long long)cs.objects_deleted,
               (unsigned long long)cs.hours_expired, (unsigned long long)cs.objects_kept,
               (unsigned long long)cs.blocks_orphaned, (unsigned long long)cs.orphans_deleted,
               (unsigned long long)cs.hours_busy, (unsigned long long)cs.hours_quiet,
               (unsigned long long)cs.leases_renewed, (unsigned long long)cs.leases_lost,
               (unsigned long long)cs.commits_lost, (unsigned long long)cs.errors,
               cs.last_error[0] ? ": " : "", cs.last_error);
        /* what the run asked the store: the requests S3 bills
         * (docs/storage.md, cost model) */
        printf("compact: store requests: %llu GET, %llu LIST, %llu PUT, %llu DELETE; %llu bytes "
               "got, %llu put\n",
               (unsigned long long)st->stats.gets, (unsigned long long)st->stats.lists,
               (unsigned long long)st->stats.puts, (unsigned long long)st->stats.deletes,
               (unsigned long long)st->stats.bytes_got, (unsigned long long)st->stats.bytes_put);
        if (co.rules)
            record(c, st, co.rules, nrules, bad);
        rule_eval_free(co.rules);
        co.rules = NULL;
        rules_free(rules, nrules);
        fflush(stdout);
        if (ret)
            fprintf(stderr, "stoke-query compact: %s\n", st->err[0] ? st->err : strerror(-ret));
        if (c->passes && ++npasses >= c->passes)
            break;
        for (unsigned i = 0; every && i < every * 10 && !compact_stop; i++) {
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
        }
    } while (every && !compact_stop);
    return ret ? 1 : 0;
}

/* `stoke-query generate`: the fleet generator (query/jobs/generate.h). */
static int cmd_generate(const struct cli *c, struct store *st, char **files, int nfiles)
{
    struct generate_opts go = {.tenant = c->tenant,
                               .hosts = c->hosts,
                               .services = c->services,
                               .hours = c->hours,
                               .flush_s = c->flush_s,
                               .start_ms = c->start_ms,
                               .seed = (uint64_t)c->seed,
                               .compacted = c->compacted,
                               .entries = c->entries,
                               .first_host = c->first_host,
                               .model_rows = c->model_rows,
                               .model_services = c->model_services,
                               .files = (const char *const *)files,
                               .nfiles = (size_t)nfiles};
    struct generate_stats gs;
    struct timespec t0, t1;
    char err[512];

    if (c->model) {
        if (strcmp(c->model, "calibrated") || nfiles) {
            fprintf(stderr, "stoke-query generate: --model takes 'calibrated' and no source "
                            "files\n");
            return 1;
        }
        go.model = &generate_model_calibrated;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int ret = fleet_generate(st, &go, &gs, err, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
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

/* `stoke-query import`: pprof files into the store (query/jobs/import.h). */
static int cmd_import(const struct cli *c, struct store *st, char **files, int nfiles)
{
    struct import_opts io = {
        .tenant = c->tenant, .host = c->host, .service = c->service, .time_ms = c->time_ms};
    char err[512];
    int rc = 0;

    for (int i = 0; i < nfiles; i++) {
        char key[1024], warn[512];
        struct import_opts one = io;
        /* Several files of one service: one second apart, as windows. */
        if (io.time_ms)
            one.time_ms = io.time_ms + (int64_t)i * 1000;
        if (query_import_file(st, &one, files[i], key, sizeof(key), warn, sizeof(warn), err,
                              sizeof(err))) {
            fprintf(stderr, "stoke-query import: %s\n", err);
            rc = 1;
            continue;
        }
        if (warn[0])
            fprintf(stderr, "stoke-query import: warning: %s\n", warn);
        printf("%s\n", key);
    }
    return rc;
}

/* `stoke-query debuginfo upload FILE...`: debug files into the store under
 * their build-ids (query/engine/dsym.h), each checked first; one already
 * there is not written again. */
static int cmd_debuginfo(const struct cli *c, struct store *st, char **files, int nfiles)
{
    uint64_t max = (uint64_t)(c->debuginfo_max_mb ? c->debuginfo_max_mb : 1024) << 20;
    const char *tenant = c->tenant ? c->tenant : "default";
    int rc = 0;

    for (int i = 1; i < nfiles; i++) {
        char err[512], bid[41];
        bool existed;
        char *buf = NULL;
        size_t len = 0;
        int r = read_file(files[i], max + 1, &buf, &len);
        if (r) {
            fprintf(stderr, "stoke-query debuginfo: %s: %s\n", files[i], strerror(-r));
            rc = 1;
            continue;
        }
        r = dsym_upload(st, tenant, buf, len, NULL, max, bid, &existed, err, sizeof(err));
        free(buf);
        if (r) {
            fprintf(stderr, "stoke-query debuginfo: %s: refused: %s\n", files[i], err);
            rc = 1;
            continue;
        }
        printf("%s %s %s\n", bid, existed ? "exists" : "uploaded", files[i]);
    }
    return rc;
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

/* The worker: serves until SIGINT/SIGTERM. */
static int cmd_serve(const struct cli *c, struct store *st, char **files, int nfiles)
{
    struct http_opts ho = {.listen = c->listen,
                           .tenant = c->tenant ? c->tenant : "default",
                           .web_dir = c->web_dir,
                           .query_timeout_ms = c->query_timeout_ms,
                           .read_timeout_ms = c->read_timeout_ms,
                           .write_timeout_ms = c->write_timeout_ms,
                           .max_connections = c->max_connections,
                           .max_per_ip = c->max_per_ip,
                           .max_queries = c->max_queries,
                           .query_memory = c->query_memory,
                           .total_query_memory = c->total_query_memory};
    struct auth *auth = NULL;
    char err[512], *peers_buf = NULL, *peers[64];
    size_t npeers = 0;
    struct cache *cache = NULL;
    struct engine *eng = NULL;
    struct peerset *ps = NULL;
    struct sym_dbgd *dbgd = NULL;
    struct dsym *dsym = NULL;
    struct http_server *srv = NULL;
    int rc = 1;

    if (c->auth_token_file && auth_load(c->auth_token_file, &auth, err, sizeof(err))) {
        fprintf(stderr, "stoke-query: --auth-token-file %s\n", err);
        return 2;
    }
    if (c->peers && *c->peers) {
        peers_buf = strdup(c->peers);
        for (char *save = NULL, *tok = peers_buf ? strtok_r(peers_buf, ",", &save) : NULL; tok;
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

    if (c->cache_mb || c->cache_dir) {
        cache = cache_new((size_t)c->cache_mb << 20, c->cache_dir);
        if (!cache) {
            fprintf(stderr, "stoke-query: --cache-dir %s: cannot create\n",
                    c->cache_dir ? c->cache_dir : "");
            goto out;
        }
    }
    /* debuginfod is off unless servers are named (as for the agent). */
    const char *urls = c->debuginfod_urls ? c->debuginfod_urls : getenv("DEBUGINFOD_URLS");
    if (urls && *urls && strcmp(urls, "off") != 0) {
        int derr = 0;
        struct sym_dbgd_opts dopt = {
            .urls = urls,
            .cache_dir = c->debuginfod_cache_dir ? c->debuginfod_cache_dir
                                                 : "/var/cache/stoke-query/debuginfod",
            .max_file_bytes = (uint64_t)(c->debuginfo_max_mb ? c->debuginfo_max_mb : 1024) << 20,
            .timeout_s = c->debuginfod_timeout_s,
        };
        dbgd = sym_dbgd_new(&dopt, &derr);
        if (!dbgd) {
            fprintf(stderr, "stoke-query: --debuginfod-cache-dir %s: %s\n", dopt.cache_dir,
                    strerror(-derr));
            goto out;
        }
    }
    struct dsym_opts so = {
        .store = st,
        .dbgd = dbgd,
        .max_file_bytes = (uint64_t)(c->debuginfo_max_mb ? c->debuginfo_max_mb : 1024) << 20,
        .recheck_ms = c->debuginfo_recheck_ms,
    };
    dsym = dsym_new(&so);
    if (!dsym) {
        fprintf(stderr, "stoke-query: out of memory\n");
        goto out;
    }
    if (c->peers_dns && *c->peers_dns) {
        /* The default port and an own address from --listen. */
        char lhost[256] = "", *self_buf = NULL, *self[16];
        size_t nself = 0;
        const char *lc = strrchr(c->listen, ':');
        unsigned lport = lc ? (unsigned)strtoul(lc + 1, NULL, 10) : 0;
        if (lc && (size_t)(lc - c->listen) < sizeof(lhost)) {
            memcpy(lhost, c->listen, (size_t)(lc - c->listen));
            lhost[lc - c->listen] = '\0';
            if (lhost[0] && strcmp(lhost, "0.0.0.0") && strcmp(lhost, "[::]"))
                self[nself++] = lhost;
        }
        if (c->peers_self && (self_buf = strdup(c->peers_self)))
            for (char *save = NULL, *tok = strtok_r(self_buf, ",", &save); tok && nself < 16;
                 tok = strtok_r(NULL, ",", &save))
                self[nself++] = tok;
        struct peerset_opts po = {.peers = peers,
                                  .npeers = npeers,
                                  .dns = c->peers_dns,
                                  .default_port = lport,
                                  .self = self,
                                  .nself = nself,
                                  .refresh_ms = c->peers_dns_refresh_ms};
        int perr = 0;
        ps = peerset_new(&po, &perr);
        free(self_buf);
        if (!ps) {
            fprintf(stderr, "stoke-query: --peers-dns %s: %s\n", c->peers_dns,
                    perr == -EINVAL ? "expected NAME[:PORT] (PORT, or --listen's, 1-65535)"
                                    : strerror(-perr));
            rc = 2;
            goto out;
        }
        if (peerset_start(ps)) {
            fprintf(stderr, "stoke-query: --peers-dns: cannot start a thread\n");
            goto out;
        }
    }
    struct engine_opts eo = {.store = st,
                             .peerset = ps,
                             .dsym = dsym,
                             .cache = cache,
                             .peers = peers,
                             .npeers = npeers,
                             .threads = c->threads,
                             .peer_token = auth_first(auth)};
    eng = engine_new(&eo);
    if (!eng) {
        fprintf(stderr, "stoke-query: out of memory\n");
        goto out;
    }
    ho.engine = eng;
    ho.cache = cache;
    ho.dbgd = dbgd;
    ho.debuginfo_max_bytes = so.max_file_bytes;
    ho.auth = auth;
    srv = http_start(&ho, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "stoke-query: %s\n", err);
        goto out;
    }
    const struct http_limits *lim = http_server_limits(srv);
    fprintf(stderr,
            "stoke-query: serving %s on port %u (store %s, %zu peers, %s; %u connections, "
            "%u queries at once, query timeout %u ms, read timeout %u ms, query memory %" PRIu64
            " MiB each, %" PRIu64 " MiB in all)\n",
            c->listen, http_port(srv), c->store, npeers, auth ? "token auth on" : "no auth",
            lim->max_connections, lim->max_queries, lim->query_timeout_ms, lim->read_timeout_ms,
            lim->query_memory >> 20, lim->total_query_memory >> 20);
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
    sym_dbgd_stop(dbgd);
    http_stop(srv);
    engine_free(eng);
    peerset_free(ps);
    dsym_free(dsym);
    sym_dbgd_free(dbgd);
    cache_free(cache);
    free(peers_buf);
    auth_free(auth);
    return rc;
}

int main(int argc, char **argv)
{
    static int (*const run[])(const struct cli *, struct store *, char **, int) = {
        cmd_serve, cmd_import, cmd_compact, cmd_generate, cmd_debuginfo};
    struct cli c = {
        .listen = "127.0.0.1:4040", .threads = 2, .cache_mb = 256, .remote_write_retries = 5};
    size_t k = 0;
    char prog[64], *ak = NULL, *sk = NULL;
    int rc;

    for (size_t i = 1; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            k = i;
    snprintf(prog, sizeof(prog), "stoke-query%s%s", k ? " " : "", k ? cmds[k].name : "");
    /* a subcommand's argv[0] is its name */
    rc = parse(&c, cmds[k].cmd, prog, argc - (k ? 1 : 0), argv + (k ? 1 : 0));
    if (rc)
        return rc == 1 ? 0 : rc;
    char **files = argv + (k ? 1 : 0) + optind;
    int nfiles = argc - (k ? 1 : 0) - optind;
    /* What each subcommand needs, named as before. */
    const char *missing = NULL;
    switch (cmds[k].cmd) {
    case CMD_SERVE:
        missing = !c.store ? "--store is required" : nfiles ? "unexpected arguments" : NULL;
        break;
    case CMD_IMPORT:
        if (!c.store || !c.service || nfiles < 1)
            missing = "--store, --service and at least one FILE are required";
        break;
    case CMD_COMPACT:
        missing = !c.store ? "--store is required" : nfiles ? "unexpected arguments" : NULL;
        break;
    case CMD_DEBUGINFO:
        if (!c.store || nfiles < 2 || strcmp(files[0], "upload") != 0)
            missing = "expected: debuginfo upload --store URL FILE...";
        break;
    default:
        if (!c.store || (nfiles < 1 && !(cmds[k].cmd == CMD_GENERATE && c.model)))
            missing = "--store and at least one pprof FILE (or --model) are required";
        break;
    }
    if (missing) {
        fprintf(stderr, "%s: %s\n", prog, missing);
        if (!k)
            usage(stderr);
        return 2;
    }
    struct store *st;
    rc = open_store(&c, prog, &st, &ak, &sk);
    if (!rc) {
        rc = run[k](&c, st, files, nfiles);
        store_close(st);
    }
    free(ak);
    free(sk);
    return rc;
}
