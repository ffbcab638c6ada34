/* SPDX-License-Identifier: Apache-2.0 */
/*
 * debuginfod — fetches the separate debug files a host lacks from
 * debuginfod servers (elfutils' libdebuginfod), by build-id, in the
 * background, into a disk cache of bounded size.
 *
 * Owns: one worker thread and its bounded queue of build-ids, the cache
 * directory (<build-id>.debug files, least recently used evicted first
 * once they exceed the cap; <build-id>.miss files, the servers' "not
 * found", kept for the negative time) and libdebuginfod's own download
 * area under it (client/), and the counters of /metrics.
 *
 * Invariants:
 *  - sym_dbgd_open() never waits on the network: it answers from the disk
 *    or queues the build-id and says -EAGAIN. Completed fetches bump the
 *    generation, so a caller knows when asking again may help.
 *  - A build-id is fetched at most once per negative time: after a file
 *    arrives it is in the cache (and on the next start too); after "not
 *    found" or a failure it is not asked again until the time has passed.
 *  - A kept file is an ELF file whose build-id is the one asked for and
 *    whose size is at most max_file_bytes; anything else is refused and
 *    counted.
 *  - A server that hangs holds the worker at most timeout_s without
 *    progress (and max_time_s in all), and sym_dbgd_free() returns within
 *    about a second whatever the servers do.
 * Thread-safe: the symbolizer asks from the window loop, the worker
 * answers.
 */
#ifndef STOKE_SYM_DEBUGINFOD_H
#define STOKE_SYM_DEBUGINFOD_H

#include <stdbool.h>
#include <stdint.h>

struct sym_dbgd;

struct sym_dbgd_opts {
    const char *urls;         /* space-separated server URLs (required) */
    const char *cache_dir;    /* created (0700) when missing (required) */
    uint64_t cache_max_bytes; /* 0 = 2 GiB */
    uint64_t max_file_bytes;  /* largest download kept; 0 = 512 MiB; at most the cache cap */
    unsigned timeout_s;       /* per server: connecting, and any 1 s without data; 0 = 10 */
    unsigned max_time_s;      /* one fetch in all; 0 = 120 */
    unsigned negative_s;      /* a miss or failure is not asked again for this; 0 = 3600 */
    unsigned queue_max;       /* build-ids waiting; 0 = 256 */
    bool no_worker;           /* tests: queue, but never fetch */
};

/* Why a fetch was not kept (the reason label of the failures counter). */
enum sym_dbgd_fail {
    DBGD_FAIL_TIMEOUT,     /* a server too slow or hanging */
    DBGD_FAIL_UNREACHABLE, /* connection refused, no route, name not resolved */
    DBGD_FAIL_TOO_LARGE,   /* over max_file_bytes */
    DBGD_FAIL_MISMATCH,    /* an ELF file with another build-id */
    DBGD_FAIL_BAD_FILE,    /* not an ELF file */
    DBGD_FAIL_QUEUE_FULL,  /* not queued: queue_max waiting */
    DBGD_FAIL_OTHER,
    DBGD_FAIL_N
};

extern const char *const sym_dbgd_fail_names[DBGD_FAIL_N];

struct sym_dbgd_stats {
    uint64_t requests;      /* build-ids queued for a fetch */
    uint64_t cache_hits;    /* opens answered from the disk cache */
    uint64_t negative_hits; /* opens not queued: known missing or failed recently */
    uint64_t fetches;       /* queries sent to the servers */
    uint64_t fetched;       /* debug files downloaded and kept */
    uint64_t misses;        /* the servers do not have it */
    uint64_t failures[DBGD_FAIL_N];
    uint64_t bytes;                    /* downloaded and kept */
    uint64_t evictions;                /* files evicted from the cache */
    uint64_t cache_bytes, cache_files; /* now */
    uint64_t queued;                   /* waiting or in flight, now */
};

/* Allocates and starts the worker; free with sym_dbgd_free(). Sets the
 * DEBUGINFOD_* environment variables libdebuginfod reads: call it before
 * other threads start. NULL with @err set (a negative errno). */
struct sym_dbgd *sym_dbgd_new(const struct sym_dbgd_opts *opts, int *err);
/* Tells the worker to stop and returns at once: an in-flight fetch is
 * abandoned within about a second, while the caller stops other things.
 * NULL is a no-op. */
void sym_dbgd_stop(struct sym_dbgd *d);
/* Stops the worker (waiting for it) and frees. NULL is a no-op. */
void sym_dbgd_free(struct sym_dbgd *d);

/*
 * The debug file of @build_id (lowercase hex): an fd (the caller closes
 * it), -EAGAIN when it is queued or being fetched (ask again after the
 * generation changes), -ENOENT when the servers lack it or the last fetch
 * failed within the negative time, -EBUSY when the queue is full (ask
 * again later), -EINVAL for a malformed build-id.
 */
int sym_dbgd_open(struct sym_dbgd *d, const char *build_id);

/* Bumped each time a fetch ends, whatever its outcome. */
uint64_t sym_dbgd_generation(struct sym_dbgd *d);

void sym_dbgd_get_stats(struct sym_dbgd *d, struct sym_dbgd_stats *out);

/* Checks the downloaded file @fd (at @path) against @build_id and moves it
 * into the cache as <build-id>.debug, then trims the cache. The file at
 * @path is gone afterwards either way; @fd stays the caller's. Returns 0,
 * -EFBIG, -EBADMSG (another build-id), -ENOEXEC (not ELF), or an errno of
 * the rename. The worker's step after a download, exposed for tests. */
int sym_dbgd_cache_add(struct sym_dbgd *d, const char *build_id, int fd, const char *path);

/* Evicts least recently used debug files until the cache is under its cap,
 * and removes expired .miss files. Returns the bytes left. */
uint64_t sym_dbgd_cache_trim(struct sym_dbgd *d);

#endif
