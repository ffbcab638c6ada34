/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config — the agent's options, from a configuration file and the command
 * line (the command line wins). Every option is documented in
 * docs/configuration.md; the file takes the long option names without the
 * dashes, one `name = value` per line, `#` comments.
 */
#ifndef STOKE_CONFIG_H
#define STOKE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_RELABEL 64
#define CONFIG_MAX_HEADERS 16

struct agent_config {
    unsigned frequency;  /* Hz per CPU (19) */
    unsigned window_s;   /* drain window (10) */
    unsigned duration_s; /* 0 = until SIGINT/SIGTERM */
    char *output_dir;    /* pprof + folded per window and service; NULL = none */
    int top;             /* print the N top functions at exit; 0 = off */
    unsigned pid;        /* 0 = every process */
    bool include_idle;
    bool per_thread;  /* thread_id label */
    bool per_cpu;     /* cpu label */
    char *debug_dirs; /* colon-separated debug roots (/usr/lib/debug) */
    bool no_dwarf;
    char *unwind;             /* user stacks: "auto" (tables) or "fp" */
    unsigned unwind_table_mb; /* cap of unwind tables in BPF maps (64) */
    char *host_name;          /* NULL = gethostname() */
    char *relabel[CONFIG_MAX_RELABEL];
    size_t nrelabel;
    unsigned max_label_values; /* per label name (1000) */
    unsigned symbol_cache_mb;  /* (12) */
    char *dwarf_scratch_dir;   /* inflated debug sections ("/var/tmp"); "off" = heap */
    unsigned dwarf_scratch_mb; /* disk cap of those (1024) */
    /* debuginfod (off unless URLs are given: a build-id leaves the host) */
    char *debuginfod_urls;          /* NULL = $DEBUGINFOD_URLS; "off" = never */
    char *debuginfod_cache_dir;     /* ("/var/lib/stoke/debuginfod") */
    unsigned debuginfod_cache_mb;   /* disk cap of the cache (2048) */
    unsigned debuginfod_max_mb;     /* largest file fetched (512) */
    unsigned debuginfod_timeout_s;  /* per server, connect and stall (10) */
    unsigned debuginfod_negative_s; /* not asked again after a miss or failure (3600) */
    char *metrics_addr;             /* "127.0.0.1:9465"; "" or "off" disables */
    char *log_level;                /* error, warn, info, debug */
    /* object storage */
    char *store;        /* DIR or s3://bucket/prefix; NULL = none */
    char *tenant;       /* key prefix ("default") */
    unsigned flush_s;   /* one object per flush (60) */
    unsigned buffer_mb; /* pending upload memory cap (64) */
    char *spill_dir;    /* disk spill for pending uploads; NULL = none */
    unsigned spill_mb;  /* (256) */
    char *s3_endpoint;  /* e.g. http://127.0.0.1:4568; NULL = AWS */
    char *s3_region;
    char *s3_access_key; /* prefer the environment or a credentials file */
    char *s3_secret_key;
    bool s3_path_style;
    char *s3_ca_file;
    /* push exporters */
    char *otlp_endpoint;                    /* OTLP base URL; NULL = off */
    char *otlp_protocol;                    /* "http/protobuf" (default) or "grpc" */
    char *otlp_headers[CONFIG_MAX_HEADERS]; /* "Name=value" */
    size_t notlp_headers;
    unsigned otlp_timeout_s;       /* per request (10) */
    char *pyroscope_url;           /* NULL = off */
    char *pyroscope_org_id;        /* X-Scope-OrgID */
    char *pyroscope_user;          /* basic auth user */
    char *pyroscope_password_file; /* else $PYROSCOPE_BASIC_AUTH_PASSWORD */
    char *pyroscope_token_file;    /* bearer token; else $PYROSCOPE_AUTH_TOKEN */
    /* the receiver (ingest/receiver.h) */
    char *receive_addr;                                                    /* NULL = off */
    char *receive_grpc_addr;                                               /* NULL = off */
    bool no_sampling;                                                      /* receive only */
    unsigned receive_max_body_mb, receive_pending_mb, receive_max_tenants; /* 0 = defaults */
    char *receive_auth_file;
    /* Kubernetes pod metadata (agent/kubelet.h) */
    char *kubelet_url;        /* NULL = off */
    char *kubelet_token_file; /* default: the service account's, for https */
    char *kubelet_ca_file;    /* NULL = the system's CAs */
    bool kubelet_insecure_tls;
    unsigned kubelet_refresh_s, kubelet_timeout_s, kubelet_max_mb; /* 15, 10, 16 */
};

/* Fills @c with the defaults. */
void config_defaults(struct agent_config *c);
void config_free(struct agent_config *c);

/*
 * Parses argv (and, when --config FILE is given, the file first). Returns 0,
 * 1 when --help or --version was printed (the caller exits 0), or -EINVAL
 * after printing what is wrong to stderr.
 */
int config_parse(struct agent_config *c, int argc, char **argv);

/* Applies one `name = value` setting (file syntax). @err gets a message.
 * 0 or -EINVAL. Exposed for tests and the fuzz target. */
int config_set(struct agent_config *c, const char *name, const char *value, char *err,
               size_t errlen);

/* Parses a whole configuration file's text. 0 or -EINVAL with the line
 * number in @err. */
int config_parse_text(struct agent_config *c, const char *text, size_t len, char *err,
                      size_t errlen);

#endif
