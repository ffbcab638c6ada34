/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peerset — the workers a query worker shares large queries with: the
 * static --peers list plus, with --peers-dns NAME[:PORT], every address
 * NAME resolves to (A and AAAA, as a Kubernetes headless Service answers:
 * one record per ready pod), looked up again every refresh period by a
 * background thread.
 *
 * Owns: the current list under a mutex. A query takes a snapshot
 * (peerset_snapshot) and keeps it to its end, so a refresh never changes
 * the shards of a query already running (the coordinator alone assigns
 * them; peers read the shard they are told). The worker's own addresses
 * (its --listen host, its interfaces' addresses, its host name's
 * addresses, and any given with --peers-self) are left out.
 *
 * A lookup that fails or finds no other worker leaves a list of the static
 * peers only: the worker answers alone. Each change between "N peers",
 * "no peers" and "lookup failing" is logged once, and lookups, failures
 * and empty answers are counted (peerset_stats, /metrics).
 *
 * The resolver is injectable (tests); NULL means getaddrinfo().
 */
#ifndef STOKE_QUERY_PEERSET_H
#define STOKE_QUERY_PEERSET_H

#include <stddef.h>
#include <stdint.h>

#define PEERSET_MAX 64 /* peers in one list, static and resolved together */

/* Resolves @name to numeric addresses ("10.0.0.5", "fd00::5"): fills
 * @addrs (each at most 63 bytes) with up to @max of them and returns how
 * many, or a negative errno (-ENOENT: the name does not exist, -EAGAIN: a
 * temporary failure). */
typedef int (*peerset_resolve_fn)(const char *name, char addrs[][64], size_t max, void *ctx);

struct peerset_opts {
    char **peers; /* static "host:port" list */
    size_t npeers;
    const char *dns;            /* "NAME[:PORT]"; NULL = no lookups */
    unsigned default_port;      /* when @dns has none: the worker's own port */
    char **self;                /* own addresses to leave out (numeric) */
    size_t nself;               /* in addition to the interfaces' and the host name's */
    unsigned refresh_ms;        /* 0 = 10000 */
    peerset_resolve_fn resolve; /* NULL = getaddrinfo */
    void *resolve_ctx;
    int no_local_addrs; /* tests: do not add the interfaces' addresses to self */
};

struct peerset_stats {
    uint64_t lookups, failures, empty; /* DNS lookups; failed; found no other worker */
    uint64_t peers;                    /* in the current list (static included) */
};

struct peerset;

/* Allocates and, with @o->dns, does the first lookup (its failure is not
 * an error: the list is the static peers). NULL with -EINVAL (a bad
 * "NAME:PORT") or -ENOMEM in *err. Does not start the refresh thread. */
struct peerset *peerset_new(const struct peerset_opts *o, int *err);
/* Starts the thread that looks @dns up every refresh period. 0 or -errno;
 * nothing to do (0) without --peers-dns. */
int peerset_start(struct peerset *ps);
/* Stops the thread and frees. NULL is fine. */
void peerset_free(struct peerset *ps);
/* One lookup now (what the thread does each period): 0, or the resolver's
 * negative errno (the list then holds the static peers only). */
int peerset_refresh(struct peerset *ps);
/* A copy of the current list: *out is one malloc'd block (free()) of *n
 * pointers followed by the strings; *out is NULL when the list is empty.
 * 0 or -ENOMEM. */
int peerset_snapshot(struct peerset *ps, char ***out, size_t *n);
void peerset_stats(struct peerset *ps, struct peerset_stats *out);

#endif
