/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jfr — JDK Flight Recorder files to pprof profiles, as Pyroscope converts
 * them on /ingest?format=jfr (grafana/jfr-parser's pprof package): the
 * recordings async-profiler writes (Pyroscope's Java agent) and the ones
 * the JDK's own recorder writes. docs/format.md ("JFR input") says what is
 * converted and where Stoke differs from Pyroscope.
 *
 * Owns the whole conversion: gunzip, the chunk walk (several chunks may
 * follow each other), each chunk's metadata (every type and field), its
 * constant pools (classes, methods, symbols, stack traces, thread states,
 * strings), the events, and the optional labels part (Pyroscope's
 * LabelsSnapshot, proto/pyroscope/jfr_labels.proto: contextId -> labels).
 * The input is untrusted: every count and size is checked against the
 * bytes left, nesting is bounded, constant-pool chains must move backwards
 * without overlapping, so a corrupt or truncated file gives -EBADMSG and a
 * message, never a crash, a hang or an allocation larger than a small
 * multiple of the input.
 *
 * Output: one pprof per kind of event found (the builders of Pyroscope):
 * CPU, wall, allocations in new TLABs, outside TLABs, the JDK's allocation
 * samples, monitor locks, thread parks, live objects, native mallocs, each
 * with the sample types Pyroscope gives it. Frames are "class.method" with
 * the class's internal name (java/lang/Thread.run) after Pyroscope's
 * merging of JVM-generated names (Foo$$Lambda$12/0x... -> Foo$$Lambda_);
 * each sample carries the labels of its contextId (plus profile_id and
 * span_name when set), which is what Pyroscope splits series by.
 */
#ifndef STOKE_CODEC_JFR_H
#define STOKE_CODEC_JFR_H

#include <stddef.h>
#include <stdint.h>

#include "profile.pb-c.h"

enum jfr_kind {
    JFR_CPU,                /* jdk.ExecutionSample (not sleeping); wall-mode samples that ran */
    JFR_WALL,               /* profiler.WallClockSample; execution samples in wall mode */
    JFR_ALLOC_IN_TLAB,      /* jdk.ObjectAllocationInNewTLAB */
    JFR_ALLOC_OUTSIDE_TLAB, /* jdk.ObjectAllocationOutsideTLAB */
    JFR_LOCK,               /* jdk.JavaMonitorEnter */
    JFR_PARK,               /* jdk.ThreadPark */
    JFR_LIVE,               /* profiler.LiveObject */
    JFR_ALLOC_SAMPLE,       /* jdk.ObjectAllocationSample (the JDK's own) */
    JFR_MALLOC,             /* profiler.Malloc */
    JFR_NKINDS
};

struct jfr_profile {
    enum jfr_kind kind;
    const char *name; /* Pyroscope's __name__: process_cpu, wall, memory, mutex, block */
    Perftools__Profiles__Profile *pprof; /* free with ..._profile__free_unpacked(p, NULL) */
};

struct jfr_result {
    struct jfr_profile *profiles; /* in enum jfr_kind order, only kinds with samples */
    size_t n;
    char event[32]; /* async-profiler's "event" setting (cpu, itimer, wall...), or "" */
    struct jfr_stats {
        uint64_t chunks, events;
        uint64_t stack_missing; /* events whose stack trace is in no pool */
        uint64_t frame_missing; /* frames whose method or class is in no pool (dropped) */
    } stats;
};

struct jfr_opts {
    /* Samples per second of CPU and wall samples: each is worth
     * 1e9 / sample_rate nanoseconds (/ingest's sampleRate). 0: 100, the
     * Java agent's default. */
    int64_t sample_rate;
    /* Cap on the decompressed recording and labels; 0: 256 MiB. */
    size_t max_bytes;
};

/*
 * Converts the JFR file @jfr[0..len) (gzip or raw) with the optional labels
 * part @labels[0..labels_len) (gzip or raw LabelsSnapshot; NULL for none)
 * into *out, allocated (free with jfr_result_free). @o may be NULL.
 * Returns 0; -EBADMSG with @err naming the problem for a corrupt,
 * truncated or unsupported file or labels; -EFBIG past max_bytes; -ENOMEM.
 */
int jfr_convert(const uint8_t *jfr, size_t len, const uint8_t *labels, size_t labels_len,
                const struct jfr_opts *o, struct jfr_result **out, char *err, size_t errlen);
void jfr_result_free(struct jfr_result *r);

/* The Pyroscope profile type id of sample type @i of @p, e.g.
 * "memory:alloc_in_new_tlab_bytes:bytes:space:bytes". 0, -EINVAL, -ENOSPC. */
int jfr_profile_type_id(const struct jfr_profile *p, size_t i, char *buf, size_t len);

#endif
