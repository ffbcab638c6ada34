/* SPDX-License-Identifier: Apache-2.0 */
/*
 * segment_upload — the agent's writer into object storage.
 *
 * Owns: the segment being filled (one seg_writer per flush: every window's
 * per-service profile goes into its service's section), and the queue of
 * finished objects waiting for upload, drained by one uploader thread.
 *
 * For each flush (default 60 s; at the next UTC hour, since the key
 * carries the flush start's hour; or earlier when the segment being filled
 * holds more than writer_bytes: a churning host has many services and
 * stacks) the object goes to
 * <tenant>/segments/<date>/<hour>/<host>/<start>-<hash>.seg: one object
 * (one PUT) per flush. Readers find it by listing the segments and reading
 * its footer, which holds its index (docs/format.md §3.2). Keys carry a
 * content hash, so a retried upload rewrites the same bytes under the same
 * key. (Agents before that also wrote a manifest entry per flush; a spill
 * file of theirs still uploads both.)
 *
 * When the store is down, objects wait in the queue (retried with
 * exponential back-off and jitter, 1 s to 60 s) up to a memory cap; past it
 * the oldest objects go to the spill directory when one is configured, else
 * they are dropped and counted. Spilled objects are uploaded first when the
 * store comes back, also after a restart.
 */
#ifndef STOKE_SEGMENT_UPLOAD_H
#define STOKE_SEGMENT_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/segment.h"
#include "exporter/profile.h"
#include "store/store.h"

struct seg_upload_opts {
    struct store *store; /* owned by the caller, used only by the uploader thread */
    const char *tenant;  /* "default" when NULL */
    const char *host;
    unsigned flush_s;      /* 60 when 0 */
    size_t writer_bytes;   /* cut the object early past this much heap; 4 MiB when 0 */
    size_t buffer_bytes;   /* pending memory cap; 64 MiB when 0 */
    const char *spill_dir; /* NULL: no disk spill */
    size_t spill_bytes;    /* disk cap of the spill directory; 256 MiB when 0 */
};

struct seg_upload_stats {
    uint64_t objects_uploaded, bytes_uploaded;
    uint64_t entries_uploaded; /* old-layout entries, from old spill files only */
    uint64_t objects_pending, bytes_pending;
    uint64_t objects_spilled, objects_dropped, samples_dropped;
    uint64_t upload_errors; /* failed attempts (each retried) */
    uint64_t encode_errors;
    uint64_t objects_cut_early; /* cut before flush_s: the writer reached writer_bytes */
    char last_error[256];
};

struct seg_upload;

/* Starts the uploader thread. NULL with a message in @err. */
struct seg_upload *seg_upload_new(const struct seg_upload_opts *opts, char *err, size_t errlen);

/* Adds one window's profile of @service (main thread). Cuts and queues
 * the current object when its flush interval has passed. 0 or -errno. */
int seg_upload_add(struct seg_upload *u, const char *service, const struct profile *p,
                   uint64_t window_start_ns);

/*
 * Adds a decoded pprof message of @service (what a receiver took in), its
 * samples labelled @labels (merged as seg_writer_add_pprof does) at
 * @time_ms; @nsamples counts them for the drop counters. The same writer
 * as seg_upload_add; a profile of another UTC hour than the open object's
 * start, or arriving after flush_s of wall clock, cuts it first. A
 * profile whose sample or period types clash with its service's section goes into
 * a second object of the same flush (at most SEG_UPLOAD_MAX_WRITERS).
 * Not thread-safe, like seg_upload_add: one writing thread at a time.
 * 0, -EINVAL (seg_pprof_check refused @p: nothing added) or -errno.
 */
#define SEG_UPLOAD_MAX_WRITERS 8
int seg_upload_add_pprof(struct seg_upload *u, const char *service,
                         const Perftools__Profiles__Profile *p, const struct seg_label *labels,
                         size_t nlabels, int64_t time_ms, uint64_t nsamples);

/* Cuts the open object when flush_s of wall clock has passed since it was
 * opened: a receiver that gets nothing new still flushes. 0 or -errno. */
int seg_upload_tick(struct seg_upload *u);

/* Heap of the objects being filled (the writing side). */
size_t seg_upload_writer_bytes(const struct seg_upload *u);

/* True when the upload queue holds three quarters of buffer_bytes: a
 * receiver answers 429 then rather than let the queue drop objects. */
bool seg_upload_full(struct seg_upload *u);

/* Cuts and queues the current object now (shutdown, or a test). */
int seg_upload_flush(struct seg_upload *u);

/* Waits up to @timeout_ms for the queue to empty. Returns the number of
 * objects still pending. */
size_t seg_upload_drain(struct seg_upload *u, unsigned timeout_ms);

void seg_upload_get_stats(struct seg_upload *u, struct seg_upload_stats *out);

/* Flushes, waits up to @timeout_ms for the uploads, spills what is left
 * when a spill directory is set, stops the thread and frees. */
void seg_upload_free(struct seg_upload *u, unsigned timeout_ms);

#endif
