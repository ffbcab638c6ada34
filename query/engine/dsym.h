/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dsym — deferred symbolization: names, at read time, the frames an agent
 * stored unnamed (a mapping's build-id and a file offset, docs/format.md
 * §4), from debug files in the object store (<tenant>/debuginfo/<build-id>,
 * uploaded with `stoke-query debuginfo upload` or POST
 * /api/v1/debuginfo/<build-id>) or, when the worker is given servers, from
 * debuginfod (symbolizer/debuginfod.h: its disk cache, timeouts and
 * negative caching). The names are symbolizer/offline.h's, the agent's
 * own rules, so a frame named here reads as if named on the host.
 *
 * Owns: the debug files open in memory (least recently used closed first
 * past max_bytes), what the store lacks (looked for again after
 * recheck_ms; an upload through this worker forgets it at once), and the
 * answers per (tenant, build-id, file offset, return address or not), at
 * most max_names of them (the table is emptied and counted when full).
 *
 * Thread-safe: one mutex over everything, held while a debug file is read
 * from the store (a query's decode threads wait for the one reading it;
 * answers already cached wait only for the lock). The merge kernel asks
 * once per unnamed location per section.
 */
#ifndef STOKE_QUERY_DSYM_H
#define STOKE_QUERY_DSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct sym_dbgd;

#define DSYM_DEFAULT_MAX_FILE (1ull << 30) /* largest debug file read or uploaded */
#define DSYM_DEFAULT_MAX_MB   512          /* heap of the open debug files */
#define DSYM_DEFAULT_NAMES    (1u << 20)   /* answers cached */
#define DSYM_DEFAULT_RECHECK  30000        /* ms before the store is asked again */
#define DSYM_NAMES_MAX        16           /* names of one frame (inlines + function) */

struct dsym_opts {
    struct store *store;
    struct sym_dbgd *dbgd;   /* NULL: no debuginfod; not owned */
    const char *scratch_dir; /* inflated debug sections; NULL = $TMPDIR or /var/tmp */
    uint64_t max_file_bytes; /* 0 = DSYM_DEFAULT_MAX_FILE */
    uint64_t max_bytes;      /* 0 = DSYM_DEFAULT_MAX_MB MiB */
    uint32_t max_names;      /* 0 = DSYM_DEFAULT_NAMES */
    unsigned recheck_ms;     /* 0 = DSYM_DEFAULT_RECHECK */
};

struct dsym_stats {
    uint64_t lookups;       /* frames asked for */
    uint64_t cache_hits;    /* answered from the cache */
    uint64_t named;         /* lookups answered with a name */
    uint64_t files_loaded;  /* debug files opened (store or debuginfod) */
    uint64_t files_evicted; /* closed to stay under max_bytes */
    uint64_t store_misses;  /* build-ids the store had no debug file for */
    uint64_t bad_files;     /* objects refused: not ELF, wrong build-id, too large */
    uint64_t dbgd_files;    /* of the files loaded, from debuginfod */
    uint64_t dbgd_pending;  /* lookups while debuginfod was fetching */
    uint64_t cache_clears;  /* answer table emptied, full */
    uint64_t ns;            /* wall time inside dsym_names, lock waits and loads included */
    uint64_t files_open, bytes_open, names_cached; /* now */
};

struct dsym;

/* NULL on allocation failure. */
struct dsym *dsym_new(const struct dsym_opts *o);
void dsym_free(struct dsym *d);

/*
 * The names of file offset @off of the binary @build_id for @tenant,
 * innermost first (sym_offline_names), NUL-separated in @buf and pointed
 * to by @names. @is_return: not the stack's user leaf. Returns how many
 * (0: unknown, the frame stays unnamed; never an error).
 */
int dsym_names(struct dsym *d, const char *tenant, const char *build_id, uint64_t off,
               bool is_return, char *buf, size_t buflen, const char **names, int max);

/* Whether a debug file for @tenant's @build_id is open, loading it first
 * as dsym_names would (so it answers what a lookup would meet now). A
 * query for function totals reads a section's rows instead of its totals
 * frame when this is true for one of its unnamed frames' build-ids. */
bool dsym_has_file(struct dsym *d, const char *tenant, const char *build_id);

/* The store's answer for @tenant's @build_id is no longer known: asked
 * again at the next lookup (after an upload). */
void dsym_forget(struct dsym *d, const char *tenant, const char *build_id);

void dsym_get_stats(struct dsym *d, struct dsym_stats *out);

/* A build-id as a key may hold it: 2 to 40 lowercase hex digits, even. */
bool dsym_build_id_valid(const char *s);

/* The object key of @tenant's debug file for @build_id. 0 or -ENAMETOOLONG. */
int dsym_key(char *buf, size_t len, const char *tenant, const char *build_id);

/*
 * Stores the debug file @buf for @tenant under its own build-id (written to
 * @bid), after checking it: an ELF file (-ENOEXEC), with a build-id
 * (-ENODATA), the one @want names when not NULL (-EXDEV), at most
 * @max_bytes (-EFBIG; 0 = DSYM_DEFAULT_MAX_FILE). An object already there
 * is not written again (*@existed). Other errors are the store's. @err
 * says why.
 */
int dsym_upload(struct store *st, const char *tenant, const void *buf, size_t len, const char *want,
                uint64_t max_bytes, char bid[41], bool *existed, char *err, size_t errlen);

#endif
