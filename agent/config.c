/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config — see config.h. One table lists every option once: its name, kind,
 * where it is stored, and its help line; the file parser, the command-line
 * parser and --help all read that table, so they cannot disagree.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "common/file.h"

#define STOKE_VERSION "0.1.0"

enum opt_kind { OPT_UINT, OPT_STR, OPT_BOOL, OPT_LIST };

struct opt_def {
    const char *name;
    enum opt_kind kind;
    size_t off;
    unsigned min, max; /* OPT_UINT bounds */
    const char *arg;   /* metavariable for --help */
    const char *help;
};

#define OFF(f) offsetof(struct agent_config, f)

static const struct opt_def opts[] = {
    {"frequency", OPT_UINT, OFF(frequency), 1, 1000, "HZ",
     "samples per second per CPU (default 19, at most 1000)"},
    {"window", OPT_UINT, OFF(window_s), 1, 3600, "SEC",
     "aggregation window: maps are drained and profiles cut every SEC (default 10)"},
    {"duration", OPT_UINT, OFF(duration_s), 0, UINT_MAX, "SEC",
     "stop after SEC seconds (default 0: run until SIGINT/SIGTERM)"},
    {"output-dir", OPT_STR, OFF(output_dir), 0, 0, "DIR",
     "write DIR/<service>/<window start ns>.pb.gz (pprof) and .folded per window"},
    {"top", OPT_UINT, OFF(top), 0, 100000, "N", "print the N hottest functions at exit"},
    {"pid", OPT_UINT, OFF(pid), 0, UINT_MAX, "PID", "profile only this process"},
    {"include-idle", OPT_BOOL, OFF(include_idle), 0, 0, NULL, "count the idle task's samples"},
    {"per-thread", OPT_BOOL, OFF(per_thread), 0, 0, NULL, "add a thread_id label"},
    {"per-cpu", OPT_BOOL, OFF(per_cpu), 0, 0, NULL, "add a cpu label"},
    {"debug-dir", OPT_STR, OFF(debug_dirs), 0, 0, "DIRS",
     "colon-separated roots of separate debug files (default /usr/lib/debug)"},
    {"no-dwarf", OPT_BOOL, OFF(no_dwarf), 0, 0, NULL,
     "symbol tables only: no file:line, no inlined frames"},
    {"unwind", OPT_STR, OFF(unwind), 0, 0, "MODE",
     "user stacks: 'auto' walks .eh_frame tables in BPF (frame pointers where a binary has "
     "none; the kernel's frame-pointer walker before 5.17), 'fp' frame pointers only"},
    {"unwind-table-mb", OPT_UINT, OFF(unwind_table_mb), 1, 65536, "MB",
     "cap of the unwind tables in BPF maps (default 64)"},
    {"host-name", OPT_STR, OFF(host_name), 0, 0, "NAME", "host_name label (default: hostname)"},
    {"relabel", OPT_LIST, OFF(relabel), 0, 0, "RULE",
     "relabel rule, repeatable: keep:L=RE drop:L=RE replace:L=RE:T=REPL labeldrop:RE "
     "labelkeep:RE"},
    {"max-label-values", OPT_UINT, OFF(max_label_values), 1, 1000000, "N",
     "distinct values per label name before '_overflow_' (default 1000)"},
    {"symbol-cache-mb", OPT_UINT, OFF(symbol_cache_mb), 4, 65536, "MB",
     "memory cap of the symbol caches (default 12)"},
    {"dwarf-scratch-dir", OPT_STR, OFF(dwarf_scratch_dir), 0, 0, "DIR",
     "inflate compressed debug sections into unlinked files here, not the heap "
     "(default /var/tmp; 'off': the heap)"},
    {"dwarf-scratch-mb", OPT_UINT, OFF(dwarf_scratch_mb), 1, 1048576, "MB",
     "disk cap of those inflated copies (default 1024)"},
    {"debuginfod-urls", OPT_STR, OFF(debuginfod_urls), 0, 0, "URLS",
     "ask these debuginfod servers (space-separated) for debug files this host lacks; "
     "build-ids leave the host (default: $DEBUGINFOD_URLS if set, else off; 'off': never)"},
    {"debuginfod-cache-dir", OPT_STR, OFF(debuginfod_cache_dir), 0, 0, "DIR",
     "where fetched debug files are kept (default /var/lib/stoke/debuginfod)"},
    {"debuginfod-cache-mb", OPT_UINT, OFF(debuginfod_cache_mb), 1, 1048576, "MB",
     "disk cap of that cache, least recently used files evicted first (default 2048)"},
    {"debuginfod-max-mb", OPT_UINT, OFF(debuginfod_max_mb), 1, 1048576, "MB",
     "largest debug file fetched (default 512)"},
    {"debuginfod-timeout", OPT_UINT, OFF(debuginfod_timeout_s), 1, 600, "SEC",
     "per server: to connect, and the longest stall of a transfer (default 10)"},
    {"debuginfod-negative-ttl", OPT_UINT, OFF(debuginfod_negative_s), 1, 30 * 86400, "SEC",
     "a build-id the servers lack (or a failed fetch) is not asked again for SEC (default 3600)"},
    {"metrics-addr", OPT_STR, OFF(metrics_addr), 0, 0, "ADDR:PORT",
     "serve /metrics and /healthz here (default 127.0.0.1:9465; 'off' disables)"},
    {"log-level", OPT_STR, OFF(log_level), 0, 0, "LEVEL", "error, warn, info or debug"},
    {"store", OPT_STR, OFF(store), 0, 0, "URL",
     "write segments to object storage: a directory or s3://bucket/prefix"},
    {"tenant", OPT_STR, OFF(tenant), 0, 0, "NAME", "key prefix in the store (default 'default')"},
    {"flush", OPT_UINT, OFF(flush_s), 10, 3600, "SEC", "one segment object per SEC (default 60)"},
    {"buffer-mb", OPT_UINT, OFF(buffer_mb), 1, 65536, "MB",
     "memory for objects waiting while the store is down (default 64)"},
    {"spill-dir", OPT_STR, OFF(spill_dir), 0, 0, "DIR",
     "spill pending objects here when the memory buffer is full"},
    {"spill-mb", OPT_UINT, OFF(spill_mb), 1, 1048576, "MB", "disk cap of --spill-dir (256)"},
    {"s3-endpoint", OPT_STR, OFF(s3_endpoint), 0, 0, "URL",
     "S3-compatible endpoint (default: AWS; or AWS_ENDPOINT_URL)"},
    {"s3-region", OPT_STR, OFF(s3_region), 0, 0, "REGION", "S3 region (default us-east-1)"},
    {"s3-access-key", OPT_STR, OFF(s3_access_key), 0, 0, "KEY",
     "S3 access key id (better: AWS_ACCESS_KEY_ID or the credentials file)"},
    {"s3-secret-key", OPT_STR, OFF(s3_secret_key), 0, 0, "SECRET",
     "S3 secret key (config file only is wise: command lines are visible in ps)"},
    {"s3-path-style", OPT_BOOL, OFF(s3_path_style), 0, 0, NULL,
     "path-style S3 URLs (default: virtual-hosted for AWS, path-style for custom endpoints)"},
    {"s3-ca-file", OPT_STR, OFF(s3_ca_file), 0, 0, "FILE", "extra CA bundle for TLS to S3"},
    {"otlp-endpoint", OPT_STR, OFF(otlp_endpoint), 0, 0, "URL",
     "push OTLP profiles (POST URL/v1development/profiles, protobuf + gzip) every window"},
    {"otlp-protocol", OPT_STR, OFF(otlp_protocol), 0, 0, "PROTO",
     "'http/protobuf' (default) or 'grpc': ProfilesService/Export over HTTP/2 to URL "
     "(h2c for http://, TLS for https://; OTLP/gRPC's port is 4317)"},
    {"otlp-header", OPT_LIST, OFF(otlp_headers), 0, 0, "NAME=VALUE",
     "extra HTTP header for --otlp-endpoint, repeatable (e.g. Authorization=Bearer ...)"},
    {"otlp-timeout", OPT_UINT, OFF(otlp_timeout_s), 1, 600, "SEC",
     "timeout of one push request, OTLP and Pyroscope (default 10)"},
    {"pyroscope-url", OPT_STR, OFF(pyroscope_url), 0, 0, "URL",
     "push each window's pprof to Pyroscope's URL/ingest"},
    {"pyroscope-org-id", OPT_STR, OFF(pyroscope_org_id), 0, 0, "TENANT",
     "X-Scope-OrgID header for --pyroscope-url"},
    {"pyroscope-basic-auth-user", OPT_STR, OFF(pyroscope_user), 0, 0, "USER",
     "basic auth user for --pyroscope-url (password: the file below or "
     "$PYROSCOPE_BASIC_AUTH_PASSWORD)"},
    {"pyroscope-basic-auth-password-file", OPT_STR, OFF(pyroscope_password_file), 0, 0, "FILE",
     "file holding the basic auth password"},
    {"pyroscope-bearer-token-file", OPT_STR, OFF(pyroscope_token_file), 0, 0, "FILE",
     "file holding a bearer token (or $PYROSCOPE_AUTH_TOKEN)"},
    {"receive", OPT_STR, OFF(receive_addr), 0, 0, "ADDR:PORT",
     "receive OTLP profiles (POST /v1development/profiles) and Pyroscope /ingest pushes into "
     "the store (off by default; needs --store)"},
    {"receive-grpc", OPT_STR, OFF(receive_grpc_addr), 0, 0, "ADDR:PORT",
     "receive OTLP profiles over gRPC (ProfilesService/Export, HTTP/2 cleartext; 4317 is "
     "OTLP/gRPC's port) into the store, with --receive's limits (off by default; needs --store)"},
    {"no-sampling", OPT_BOOL, OFF(no_sampling), 0, 0, NULL,
     "do not sample this host: a stateless receiver (with --receive or --receive-grpc)"},
    {"receive-max-body-mb", OPT_UINT, OFF(receive_max_body_mb), 1, 1024, "MB",
     "largest request body on the wire (16; 413 past it)"},
    {"receive-pending-mb", OPT_UINT, OFF(receive_pending_mb), 1, 65536, "MB",
     "request bodies held at once (64; 429 with Retry-After past it)"},
    {"receive-max-tenants", OPT_UINT, OFF(receive_max_tenants), 1, 10000, "N",
     "distinct X-Scope-OrgID tenants written (16)"},
    {"receive-auth-token-file", OPT_STR, OFF(receive_auth_file), 0, 0, "FILE",
     "tokens (one a line) a pusher must send as Bearer or basic-auth password"},
    {"kubelet-url", OPT_STR, OFF(kubelet_url), 0, 0, "URL",
     "name processes in pods from this kubelet's /pods (e.g. https://$(NODE_IP):10250, or the "
     "read-only http://$(NODE_IP):10255): namespace, pod, container and pod_label_* labels, "
     "service name <namespace>/<app.kubernetes.io/name or app> (off by default)"},
    {"kubelet-token-file", OPT_STR, OFF(kubelet_token_file), 0, 0, "FILE",
     "bearer token for the kubelet, re-read on each request (default for https: "
     "/var/run/secrets/kubernetes.io/serviceaccount/token)"},
    {"kubelet-ca-file", OPT_STR, OFF(kubelet_ca_file), 0, 0, "FILE",
     "CA bundle that signed the kubelet's serving certificate (default: the system's)"},
    {"kubelet-insecure-tls", OPT_BOOL, OFF(kubelet_insecure_tls), 0, 0, NULL,
     "do not verify the kubelet's certificate (self-signed kubelet certificates)"},
    {"kubelet-refresh", OPT_UINT, OFF(kubelet_refresh_s), 1, 3600, "SEC",
     "fetch the pod list every SEC (default 15)"},
    {"kubelet-timeout", OPT_UINT, OFF(kubelet_timeout_s), 1, 600, "SEC",
     "one request, connecting included (default 10)"},
    {"kubelet-max-mb", OPT_UINT, OFF(kubelet_max_mb), 1, 1024, "MB",
     "largest pod list taken (default 16)"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

void config_defaults(struct agent_config *c)
{
    memset(c, 0, sizeof(*c));
    c->frequency = 19;
    c->window_s = 10;
    c->max_label_values = 1000;
    c->symbol_cache_mb = 12;
    c->dwarf_scratch_dir = strdup("/var/tmp");
    c->dwarf_scratch_mb = 1024;
    c->unwind = strdup("auto");
    c->unwind_table_mb = 64;
    c->debuginfod_cache_dir = strdup("/var/lib/stoke/debuginfod");
    c->debuginfod_cache_mb = 2048;
    c->debuginfod_max_mb = 512;
    c->debuginfod_timeout_s = 10;
    c->debuginfod_negative_s = 3600;
    c->metrics_addr = strdup("127.0.0.1:9465");
    c->log_level = strdup("info");
    c->flush_s = 60;
    c->buffer_mb = 64;
    c->spill_mb = 256;
    c->otlp_timeout_s = 10;
    c->otlp_protocol = strdup("http/protobuf");
    c->kubelet_refresh_s = 15;
    c->kubelet_timeout_s = 10;
    c->kubelet_max_mb = 16;
}

void config_free(struct agent_config *c)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].kind == OPT_STR)
            free(*(char **)((char *)c + opts[i].off));
    }
    for (size_t i = 0; i < c->nrelabel; i++)
        free(c->relabel[i]);
    for (size_t i = 0; i < c->notlp_headers; i++)
        free(c->otlp_headers[i]);
    memset(c, 0, sizeof(*c));
}

static const struct opt_def *find_opt(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

static int parse_bool(const char *v, bool *out)
{
    if (!v || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off"))
        *out = false;
    else
        return -EINVAL;
    return 0;
}

int config_set(struct agent_config *c, const char *name, const char *value, char *err,
               size_t errlen)
{
    const struct opt_def *o = find_opt(name);
    void *field;

    if (!o) {
        snprintf(err, errlen, "unknown option '%s'", name);
        return -EINVAL;
    }
    field = (char *)c + o->off;
    switch (o->kind) {
    case OPT_UINT: {
        char *end;
        errno = 0;
        unsigned long long v = value ? strtoull(value, &end, 10) : 0;
        if (!value || !*value || *end || errno || value[0] == '-' || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: '%s' is not a number from %u to %u", name,
                     value ? value : "", o->min, o->max);
            return -EINVAL;
        }
        if (o->off == OFF(top))
            *(int *)field = (int)v;
        else
            *(unsigned *)field = (unsigned)v;
        return 0;
    }
    case OPT_BOOL:
        if (parse_bool(value, (bool *)field) != 0) {
            snprintf(err, errlen, "%s: '%s' is not true or false", name, value);
            return -EINVAL;
        }
        return 0;
    case OPT_STR: {
        char *dup = strdup(value ? value : "");
        if (!dup)
            return -ENOMEM;
        free(*(char **)field);
        *(char **)field = dup;
        return 0;
    }
    case OPT_LIST:
        if (o->off == OFF(otlp_headers)) {
            if (!value || !strchr(value, '=') || value[0] == '=') {
                snprintf(err, errlen, "%s: '%s' is not NAME=VALUE", name, value ? value : "");
                return -EINVAL;
            }
            if (c->notlp_headers >= CONFIG_MAX_HEADERS) {
                snprintf(err, errlen, "%s: at most %d headers", name, CONFIG_MAX_HEADERS);
                return -EINVAL;
            }
            c->otlp_headers[c->notlp_headers] = strdup(value);
            if (!c->otlp_headers[c->notlp_headers])
                return -ENOMEM;
            c->notlp_headers++;
            return 0;
        }
        if (c->nrelabel >= CONFIG_MAX_RELABEL) {
            snprintf(err, errlen, "%s: at most %d rules", name, CONFIG_MAX_RELABEL);
            return -EINVAL;
        }
        c->relabel[c->nrelabel] = strdup(value ? value : "");
        if (!c->relabel[c->nrelabel])
            return -ENOMEM;
        c->nrelabel++;
        return 0;
    }
    return -EINVAL;
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    *end = '\0';
    return s;
}

int config_parse_text(struct agent_config *c, const char *text, size_t len, char *err,
                      size_t errlen)
{
    char *copy = malloc(len + 1), *line, *next;
    unsigned lineno = 0;
    int ret = 0;

    if (!copy)
        return -ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    for (line = copy; line && ret == 0; line = next) {
        char *nl = strchr(line, '\n'), *eq, *hash;
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        lineno++;
        if (strlen(line) != (size_t)((nl ? nl : copy + len) - line)) {
            snprintf(err, errlen, "line %u: NUL byte", lineno);
            ret = -EINVAL;
            break;
        }
        hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *l = trim(line, line + strlen(line));
        if (!*l)
            continue;
        eq = strchr(l, '=');
        char *name, *value;
        if (eq) {
            *eq = '\0';
            name = trim(l, eq);
            value = trim(eq + 1, eq + 1 + strlen(eq + 1));
        } else {
            name = l;
            value = NULL; /* a bare boolean option means true */
        }
        const struct opt_def *o = find_opt(name);
        if (o && o->kind != OPT_BOOL && !value) {
            snprintf(err, errlen, "line %u: '%s' needs '= value'", lineno, name);
            ret = -EINVAL;
            break;
        }
        char sub[256];
        ret = config_set(c, name, value, sub, sizeof(sub));
        if (ret)
            snprintf(err, errlen, "line %u: %s", lineno, sub);
    }
    free(copy);
    return ret;
}

#define CONFIG_FILE_MAX (1u << 20)

static int load_file(struct agent_config *c, const char *path)
{
    char err[512], *buf;
    size_t n;
    int ret = read_file(path, CONFIG_FILE_MAX, &buf, &n);

    if (ret == -EFBIG) {
        fprintf(stderr, "stoke-agent: config file %s is larger than 1 MiB\n", path);
        return -EINVAL;
    }
    if (ret == -ENOMEM)
        return ret;
    if (ret) {
        fprintf(stderr, "stoke-agent: cannot open config file %s: %s\n", path, strerror(-ret));
        return -EINVAL;
    }
    ret = config_parse_text(c, buf, n, err, sizeof(err));
    free(buf);
    if (ret)
        fprintf(stderr, "stoke-agent: %s: %s\n", path, err);
    return ret;
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: stoke-agent [OPTIONS]\n"
                 "Samples the CPU stacks of every process with eBPF and writes per-service "
                 "profiles.\n\n"
                 "  --config FILE            read options from FILE (name = value lines)\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
                 opts[i].arg ? opts[i].arg : "");
        fprintf(out, "  %-24s %s\n", left, opts[i].help);
    }
    fprintf(out, "  --help, --version\n\nSee docs/configuration.md.\n");
}

int config_parse(struct agent_config *c, int argc, char **argv)
{
    struct option lopts[NOPTS + 4];
    char err[512];
    size_t i;
    int ch, idx;

    for (i = 0; i < NOPTS; i++) {
        lopts[i].name = opts[i].name;
        /* --top takes an optional count (default 20). */
        lopts[i].has_arg = opts[i].kind == OPT_BOOL       ? no_argument
                           : !strcmp(opts[i].name, "top") ? optional_argument
                                                          : required_argument;
        lopts[i].flag = NULL;
        lopts[i].val = 1000 + (int)i;
    }
    lopts[i++] = (struct option){"config", required_argument, NULL, 'c'};
    lopts[i++] = (struct option){"help", no_argument, NULL, 'h'};
    lopts[i++] = (struct option){"version", no_argument, NULL, 'V'};
    lopts[i] = (struct option){0};

    /* First pass: --config, --help, --version. */
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lopts, &idx)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return 1;
        }
        if (ch == 'V') {
            printf("stoke-agent %s\n", STOKE_VERSION);
            return 1;
        }
        if (ch == 'c' && load_file(c, optarg) != 0)
            return -EINVAL;
    }
    /* Second pass: everything else, overriding the file. */
    opterr = 1;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lopts, &idx)) != -1) {
        if (ch == 'c')
            continue;
        if (ch == '?' || ch < 1000) {
            usage(stderr);
            return -EINVAL;
        }
        const struct opt_def *o = &opts[ch - 1000];
        const char *val = optarg;
        if (o->kind == OPT_BOOL)
            val = "true";
        else if (!val && !strcmp(o->name, "top"))
            val = "20";
        if (config_set(c, o->name, val, err, sizeof(err)) != 0) {
            fprintf(stderr, "stoke-agent: %s\n", err);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "stoke-agent: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    return 0;
}
