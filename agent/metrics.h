/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics — the agent's self-observability page: /metrics in the Prometheus
 * text format and /healthz, served on a localhost address by libmicrohttpd's
 * own thread.
 *
 * Owns: a snapshot of counters that the window loop publishes once per
 * window (metrics_publish) under a mutex; the HTTP thread only reads it.
 * The receiver's counters (--receive) are read from it at each scrape
 * instead (receiver_get_stats): a receive-only agent has no windows.
 */
#ifndef STOKE_METRICS_H
#define STOKE_METRICS_H

#include <stdint.h>

#include "agent/kubelet.h"
#include "agent/sampler.h"
#include "agent/unwinder.h"
#include "symbolizer/debuginfod.h"
#include "symbolizer/symbolizer.h"

/* One push exporter's counters (exporter/http_push.h). */
struct export_metrics {
    uint64_t sent, failed_attempts, dropped, rejected, bad_responses, queued;
};

struct agent_metrics {
    struct sampler_stats sampler;
    struct unwinder_stats unwind;
    struct sym_stats sym;
    bool dbgd_on; /* debuginfod in use: its counters below */
    struct sym_dbgd_stats dbgd;
    uint64_t samples_lost_stack; /* samples under a [lost stack: ...] frame */
    uint64_t windows;
    uint64_t profiles_written;
    uint64_t write_errors;
    uint64_t series_dropped;  /* dropped by relabel rules */
    uint64_t label_overflows; /* values replaced by _overflow_ */
    uint64_t unknown_process; /* rows whose process had exited before the drain */
    uint64_t processes_cached;
    double cpu_seconds; /* user + system of the agent */
    uint64_t rss_bytes;
    uint64_t peak_rss_bytes;
    double last_drain_seconds; /* wall time of the last drain + symbolize + write */
    uint64_t objects_uploaded, bytes_uploaded, objects_pending, objects_dropped;
    uint64_t objects_spilled, upload_errors;
    uint64_t objects_cut_early;            /* segments cut at the writer's memory cap */
    struct export_metrics otlp, pyroscope; /* push exporters (all zero when off) */
    uint64_t export_errors;                /* profiles that could not be encoded/queued */
    bool kube_on;                          /* --kubelet-url: its counters below */
    struct kubelet_stats kube;
};

struct metrics_server;

/* Starts serving on @addr ("HOST:PORT"). NULL with a logged warning when the
 * address cannot be bound: the agent runs on without its page. */
struct metrics_server *metrics_start(const char *addr);
void metrics_stop(struct metrics_server *m);
void metrics_publish(struct metrics_server *m, const struct agent_metrics *snap);

/* Renders @snap as Prometheus text into a malloc'd string. */
char *metrics_render(const struct agent_metrics *snap);

struct receiver;
/* Scrapes add @rx's counters (stoke_receiver_*); NULL: none. Set before
 * the receiver is freed (metrics_stop comes first). */
void metrics_set_receiver(struct metrics_server *m, struct receiver *rx);
/* Appends @rx's counters to @page (malloc'd, taken; NULL is empty) and
 * returns the page; @page as it is when @rx is NULL. */
char *metrics_render_receiver(char *page, struct receiver *rx);

#endif
