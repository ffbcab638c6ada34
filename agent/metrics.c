/* SPDX-License-Identifier: Apache-2.0 */
/* metrics — see metrics.h. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "agent/metrics.h"
#include "ingest/receiver.h"

struct metrics_server {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    struct agent_metrics snap;
    struct receiver *rx; /* read at each scrape; NULL: no receiver */
};

struct buf {
    char *p;
    size_t n, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0)
            return;
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *np = realloc(b->p, ncap);
        if (!np)
            return;
        b->p = np;
        b->cap = ncap;
    }
}

static void counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
    bprintf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
            (unsigned long long)v);
}

static void gauge(struct buf *b, const char *name, const char *help, double v)
{
    bprintf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.6g\n", name, help, name, name, v);
}

/* One counter family with an exporter="otlp"|"pyroscope" label. */
static void export_counter(struct buf *b, const char *name, const char *help, uint64_t otlp,
                           uint64_t pyro, bool is_gauge)
{
    bprintf(
        b,
        "# HELP %s %s\n# TYPE %s %s\n%s{exporter=\"otlp\"} %llu\n%s{exporter=\"pyroscope\"} %llu\n",
        name, help, name, is_gauge ? "gauge" : "counter", name, (unsigned long long)otlp, name,
        (unsigned long long)pyro);
}

/* The user-stack walker (docs/architecture.md, "How a PC becomes a frame"). */
static void unwind_metrics(struct buf *b, const struct agent_metrics *s)
{
    const struct unwinder_stats *u = &s->unwind;

    counter(b, "stoke_unwind_frames_total", "User frames walked in BPF.", s->sampler.frames);
    counter(b, "stoke_unwind_frames_table_total", "User frames unwound by an unwind-table row.",
            s->sampler.frames_table);
    counter(b, "stoke_unwind_frames_fp_total",
            "User frames unwound by frame pointers (no table covered them).", s->sampler.frames_fp);
    bprintf(b, "# HELP stoke_unwind_walks_total User-stack walks by how they ended.\n"
               "# TYPE stoke_unwind_walks_total counter\n");
    for (unsigned i = 0; i < SAMPLER_WALK_ENDS; i++)
        bprintf(b, "stoke_unwind_walks_total{end=\"%s\"} %llu\n", sampler_walk_end_name(i),
                (unsigned long long)s->sampler.walk_end[i]);
    counter(b, "stoke_unwind_requests_total",
            "Requests from the BPF program to load a process's mappings.", s->sampler.events);
    counter(b, "stoke_unwind_requests_lost_total", "Requests the ring buffer had no room for.",
            s->sampler.events_lost);
    gauge(b, "stoke_unwind_processes", "Processes whose mappings the BPF walker has.",
          (double)u->procs_tracked);
    counter(b, "stoke_unwind_processes_loaded_total", "Process mappings written for the walker.",
            u->procs_loaded);
    counter(b, "stoke_unwind_processes_failed_total",
            "Processes whose mappings could not be read (most had exited).", u->procs_failed);
    counter(b, "stoke_unwind_mappings_capped_total",
            "Executable mappings left out: over 256 in one process.", u->mappings_capped);
    gauge(b, "stoke_unwind_tables", "Unwind tables in BPF maps.", (double)u->tables_live);
    gauge(b, "stoke_unwind_table_bytes", "Bytes of unwind tables in BPF maps.",
          (double)u->table_bytes);
    gauge(b, "stoke_unwind_table_rows", "Rows of unwind tables in BPF maps.",
          (double)u->table_rows);
    counter(b, "stoke_unwind_tables_built_total",
            "Unwind tables built from .eh_frame/.debug_frame.", u->tables_built);
    counter(b, "stoke_unwind_tables_failed_total",
            "Binaries without a usable table (walked by frame pointers).", u->tables_failed);
    counter(b, "stoke_unwind_tables_sorted_total",
            "Unwind tables whose rows were held and sorted in the agent's heap (not in address "
            "order as parsed); the others are streamed into their map.",
            u->tables_sorted);
    counter(b, "stoke_unwind_tables_evicted_total", "Unwind tables evicted (byte cap).",
            u->tables_evicted);
    counter(b, "stoke_unwind_tables_over_cap_total",
            "Unwind tables refused: the byte cap was reached by tables in use.", u->over_cap);
    counter(b, "stoke_unwind_unsupported_rows_total",
            "Table rows with a rule the walker cannot run (the walk stops there).",
            u->unsupported_rows);
    gauge(b, "stoke_unwind_table_build_seconds", "CPU time spent building unwind tables.",
          (double)u->build_ns / 1e9);
    gauge(b, "stoke_python_processes", "Processes running a CPython the walker reads.",
          (double)u->py_procs);
    counter(b, "stoke_python_unknown_versions_total",
            "Processes running a CPython of a version the agent does not know.", u->py_unknown);
    counter(b, "stoke_python_samples_total", "User walks that recorded CPython frames.",
            s->sampler.py_samples);
    counter(b, "stoke_python_frames_total", "CPython frames recorded.", s->sampler.py_frames);
    counter(b, "stoke_python_no_thread_total",
            "Walks through CPython's eval loop without the thread's frames (no thread state).",
            s->sampler.py_no_thread);
    counter(b, "stoke_python_read_faults_total",
            "CPython frames not recorded: interpreter memory unreadable mid-walk.",
            s->sampler.py_fault);
    counter(b, "stoke_python_frames_named_total", "CPython frames named by their code object.",
            s->sym.py_named);
    counter(b, "stoke_python_frames_unnamed_total",
            "CPython frames left unnamed (process gone, memory unreadable, version unknown).",
            s->sym.py_unnamed);
}

/* HotSpot: what the walker met and how the frames were named. */
static void jvm_metrics(struct buf *b, const struct agent_metrics *s)
{
    const struct unwinder_stats *u = &s->unwind;

    gauge(b, "stoke_jvm_processes",
          "Processes running a HotSpot JVM whose code cache the walker reads.",
          (double)u->jvm_procs);
    counter(b, "stoke_jvm_unsupported_total",
            "Processes running a HotSpot JVM the walker cannot read (version, tables).",
            u->jvm_unsupported);
    counter(b, "stoke_jvm_samples_total", "User walks that met HotSpot's code cache.",
            s->sampler.jvm_samples);
    counter(b, "stoke_jvm_frames_total", "HotSpot frames recorded.", s->sampler.jvm_frames);
    counter(b, "stoke_jvm_no_blob_total", "Walks ended at a pc in the code cache in no code blob.",
            s->sampler.jvm_no_blob);
    counter(b, "stoke_jvm_bad_frames_total",
            "Walks ended at a HotSpot frame that could not be read or did not add up.",
            s->sampler.jvm_fault);
    counter(b, "stoke_jvm_frames_named_total", "HotSpot frames named by their method.",
            s->sym.jvm_named);
    counter(b, "stoke_jvm_frames_stale_total",
            "HotSpot frames unnamed: compiled code freed or replaced before they were named.",
            s->sym.jvm_stale);
    counter(b, "stoke_jvm_frames_unnamed_total",
            "HotSpot frames unnamed otherwise (process gone, memory that holds no method).",
            s->sym.jvm_unnamed);
}

/* V8 (Node.js): JavaScript frames read and named. */
/* Only when debuginfod is on (--debuginfod-urls, DEBUGINFOD_URLS). */
static void debuginfod_metrics(struct buf *b, const struct agent_metrics *s)
{
    const struct sym_dbgd_stats *d = &s->dbgd;

    if (!s->dbgd_on)
        return;
    counter(b, "stoke_debuginfod_requests_total",
            "Build-ids queued for a fetch (debug file in no debug root nor the cache).",
            d->requests);
    counter(b, "stoke_debuginfod_fetches_total", "Queries sent to the debuginfod servers.",
            d->fetches);
    counter(b, "stoke_debuginfod_fetched_total", "Debug files downloaded and kept.", d->fetched);
    counter(b, "stoke_debuginfod_cache_hits_total", "Debug files opened from the disk cache.",
            d->cache_hits);
    counter(b, "stoke_debuginfod_misses_total", "Build-ids the servers do not have.", d->misses);
    counter(b, "stoke_debuginfod_negative_hits_total",
            "Build-ids not asked for: missing or failed within the negative time.",
            d->negative_hits);
    bprintf(b, "# HELP stoke_debuginfod_failures_total Fetches that failed or were refused, by "
               "reason.\n# TYPE stoke_debuginfod_failures_total counter\n");
    for (int i = 0; i < DBGD_FAIL_N; i++)
        bprintf(b, "stoke_debuginfod_failures_total{reason=\"%s\"} %llu\n", sym_dbgd_fail_names[i],
                (unsigned long long)d->failures[i]);
    counter(b, "stoke_debuginfod_bytes_total", "Bytes of debug files downloaded and kept.",
            d->bytes);
    counter(b, "stoke_debuginfod_evictions_total", "Debug files evicted from the disk cache.",
            d->evictions);
    gauge(b, "stoke_debuginfod_cache_bytes", "Disk held by the debuginfod cache.",
          (double)d->cache_bytes);
    gauge(b, "stoke_debuginfod_cache_files", "Debug files in the debuginfod cache.",
          (double)d->cache_files);
    gauge(b, "stoke_debuginfod_queued", "Build-ids waiting or being fetched.", (double)d->queued);
    counter(b, "stoke_debuginfod_reloads_total",
            "Binaries reloaded because their debug file arrived.", s->sym.dbgd_reloads);
}

/* Only with --kubelet-url. */
static void kubelet_metrics(struct buf *b, const struct agent_metrics *s)
{
    const struct kubelet_stats *k = &s->kube;

    if (!s->kube_on)
        return;
    counter(b, "stoke_kubelet_fetches_total", "Pod list requests made to the kubelet.", k->fetches);
    counter(b, "stoke_kubelet_fetch_errors_total",
            "Pod list requests that failed: unreachable, timed out, TLS, HTTP status, too large.",
            k->fetch_errors);
    counter(b, "stoke_kubelet_parse_errors_total",
            "Kubelet answers that were not a PodList (the last good list stays in use).",
            k->parse_errors);
    gauge(b, "stoke_kubelet_pods", "Pods in the list in use.", (double)k->pods);
    gauge(b, "stoke_kubelet_containers", "Containers with a runtime id in the list in use.",
          (double)k->containers);
    gauge(b, "stoke_kubelet_up", "1 when the last request gave a pod list.", k->ok ? 1 : 0);
}

static void v8_metrics(struct buf *b, const struct agent_metrics *s)
{
    const struct unwinder_stats *u = &s->unwind;

    gauge(b, "stoke_v8_processes", "Processes running a V8 (Node.js) the walker reads.",
          (double)u->v8_procs);
    counter(b, "stoke_v8_unknown_layouts_total",
            "Processes running a V8 whose layout the agent cannot read.", u->v8_unknown);
    counter(b, "stoke_v8_samples_total", "User walks that recorded JavaScript frames.",
            s->sampler.v8_samples);
    counter(b, "stoke_v8_frames_total", "JavaScript frames recorded.", s->sampler.v8_frames);
    counter(b, "stoke_v8_marker_frames_total",
            "V8 frames with a type marker (entry, exit, stub, builtin): native pc kept.",
            s->sampler.v8_markers);
    counter(b, "stoke_v8_not_js_frames_total",
            "Frame-pointer frames of V8 processes that hold no JSFunction: native pc kept.",
            s->sampler.v8_not_js);
    counter(b, "stoke_v8_frames_named_total",
            "JavaScript frames named by their SharedFunctionInfo.", s->sym.v8_named);
    counter(b, "stoke_v8_frames_unnamed_total",
            "JavaScript frames left unnamed (process gone, function moved by the collector, "
            "memory unreadable).",
            s->sym.v8_unnamed);
}

char *metrics_render(const struct agent_metrics *s)
{
    struct buf b = {0};

    counter(&b, "stoke_samples_total", "Samples seen by the BPF program (idle included).",
            s->sampler.samples);
    counter(&b, "stoke_samples_idle_total", "Idle samples skipped.", s->sampler.idle);
    counter(&b, "stoke_samples_drained_total", "Samples drained from the BPF maps.",
            s->sampler.drained);
    counter(&b, "stoke_sample_rows_total", "Distinct {pid, stacks} rows drained.", s->sampler.rows);
    counter(&b, "stoke_stack_collisions_total", "Stacks lost to stack-map hash collisions.",
            s->sampler.stack_collisions);
    counter(&b, "stoke_stack_errors_total", "Stacks lost to other errors (stack map full).",
            s->sampler.stack_errors);
    counter(&b, "stoke_samples_dropped_map_full_total", "Samples dropped: counts map full.",
            s->sampler.map_full);
    counter(&b, "stoke_stacks_lost_total", "Stacks that were gone at drain time.",
            s->sampler.lost_stacks);
    counter(&b, "stoke_samples_lost_stack_total",
            "Samples kept under a [lost stack: ...] frame (collision, map full, error).",
            s->samples_lost_stack);
    unwind_metrics(&b, s);
    jvm_metrics(&b, s);
    v8_metrics(&b, s);
    debuginfod_metrics(&b, s);
    kubelet_metrics(&b, s);
    gauge(&b, "stoke_cpus_sampled", "CPUs with an attached sampler.", s->sampler.cpus);
    counter(&b, "stoke_bpf_run_nanoseconds_total",
            "Nanoseconds spent in the BPF sampler (needs kernel.bpf_stats_enabled=1).",
            s->sampler.bpf_run_ns);
    counter(&b, "stoke_symbol_lookups_total", "Addresses symbolized.", s->sym.lookups);
    counter(&b, "stoke_symbol_kernel_lookups_total", "Kernel addresses (kallsyms, not cached).",
            s->sym.kernel_lookups);
    counter(&b, "stoke_symbol_cache_hits_total", "Addresses answered from the cache.",
            s->sym.cache_hits);
    counter(&b, "stoke_symbol_resolved_total", "Addresses resolved to a function.",
            s->sym.resolved);
    counter(&b, "stoke_symbol_unresolved_total", "Addresses left as build-id + offset.",
            s->sym.unresolved);
    counter(&b, "stoke_binaries_loaded_total", "Binaries parsed.", s->sym.binaries_loaded);
    counter(&b, "stoke_binaries_evicted_total", "Binaries evicted from the cache.",
            s->sym.binaries_evicted);
    counter(&b, "stoke_bad_binaries_total", "Malformed ELF/DWARF files rejected.",
            s->sym.bad_binaries);
    gauge(&b, "stoke_dwarf_scratch_bytes",
          "Disk held by inflated copies of compressed debug sections (page cache, not heap).",
          (double)s->sym.scratch_bytes);
    counter(&b, "stoke_dwarf_heap_inflated_total",
            "DWARF opens that inflated compressed sections in the heap (no scratch directory).",
            s->sym.dwarf_heap_inflated);
    gauge(&b, "stoke_symbol_cache_bytes", "Estimated symbol cache footprint.",
          (double)s->sym.bytes_used);
    counter(&b, "stoke_windows_total", "Windows drained.", s->windows);
    counter(&b, "stoke_profiles_written_total", "Per-service profiles written.",
            s->profiles_written);
    counter(&b, "stoke_write_errors_total", "Profile writes that failed.", s->write_errors);
    counter(&b, "stoke_series_dropped_total", "Series dropped by relabel rules.",
            s->series_dropped);
    counter(&b, "stoke_label_overflows_total", "Label values replaced by _overflow_.",
            s->label_overflows);
    counter(&b, "stoke_rows_unknown_process_total", "Rows whose process had exited.",
            s->unknown_process);
    gauge(&b, "stoke_processes_cached", "Processes in the metadata cache.",
          (double)s->processes_cached);
    gauge(&b, "stoke_cpu_seconds", "CPU time of the agent (user + system).", s->cpu_seconds);
    gauge(&b, "stoke_rss_bytes", "Resident set size of the agent.", (double)s->rss_bytes);
    gauge(&b, "stoke_peak_rss_bytes", "Peak resident set size of the agent.",
          (double)s->peak_rss_bytes);
    gauge(&b, "stoke_last_drain_seconds", "Wall time of the last window's drain and writes.",
          s->last_drain_seconds);
    counter(&b, "stoke_objects_uploaded_total", "Segment objects stored.", s->objects_uploaded);
    counter(&b, "stoke_bytes_uploaded_total", "Bytes stored (segments + manifest entries).",
            s->bytes_uploaded);
    gauge(&b, "stoke_objects_pending", "Objects waiting for the store.",
          (double)s->objects_pending);
    counter(&b, "stoke_objects_dropped_total", "Objects dropped: buffer full, store down.",
            s->objects_dropped);
    counter(&b, "stoke_objects_spilled_total", "Objects spilled to disk.", s->objects_spilled);
    counter(&b, "stoke_objects_cut_early_total",
            "Segments cut before --flush: the one being filled reached its 4 MiB memory cap.",
            s->objects_cut_early);
    counter(&b, "stoke_upload_errors_total", "Failed upload attempts (retried).", s->upload_errors);
    export_counter(&b, "stoke_export_requests_sent_total", "Push requests accepted (2xx).",
                   s->otlp.sent, s->pyroscope.sent, false);
    export_counter(&b, "stoke_export_failed_attempts_total",
                   "Push attempts that failed (HTTP error, refused, timeout).",
                   s->otlp.failed_attempts, s->pyroscope.failed_attempts, false);
    export_counter(&b, "stoke_export_requests_dropped_total",
                   "Push requests given up: 413, 4xx, retries exhausted, queue full, shutdown.",
                   s->otlp.dropped, s->pyroscope.dropped, false);
    export_counter(&b, "stoke_export_profiles_rejected_total",
                   "Profiles the endpoint rejected in a partial success.", s->otlp.rejected,
                   s->pyroscope.rejected, false);
    export_counter(&b, "stoke_export_bad_responses_total", "2xx answers whose body was unreadable.",
                   s->otlp.bad_responses, s->pyroscope.bad_responses, false);
    export_counter(&b, "stoke_export_requests_queued", "Push requests waiting to be sent.",
                   s->otlp.queued, s->pyroscope.queued, true);
    counter(&b, "stoke_export_errors_total", "Profiles that could not be encoded for a push.",
            s->export_errors);
    return b.p;
}

/* The receiver's counters (ingest/receiver.h), as they are at the scrape:
 * a stateless receiver publishes no windows. */
static void receiver_metrics(struct buf *b, struct receiver *rx)
{
    struct receiver_stats s;
    struct receiver_tenant_stats *ts = NULL;
    static const char *const classes[RX_CLASSES] = {"2xx", "4xx", "5xx"};
    size_t nt, cap = 0;

    receiver_get_stats(rx, &s);
    bprintf(b, "# HELP stoke_receiver_requests_total Requests answered by the receiver, by "
               "protocol and status class.\n# TYPE stoke_receiver_requests_total counter\n");
    for (int p = 0; p < RX_PROTOCOLS; p++)
        for (int c = 0; c < RX_CLASSES; c++)
            bprintf(b, "stoke_receiver_requests_total{protocol=\"%s\",code=\"%s\"} %llu\n",
                    rx_protocol_names[p], classes[c], (unsigned long long)s.answers[p][c]);
    bprintf(b, "# HELP stoke_receiver_bytes_total Request body bytes received (as sent: before "
               "gunzip), by protocol.\n# TYPE stoke_receiver_bytes_total counter\n");
    for (int p = 0; p < RX_PROTOCOLS; p++)
        bprintf(b, "stoke_receiver_bytes_total{protocol=\"%s\"} %llu\n", rx_protocol_names[p],
                (unsigned long long)s.bytes_received[p]);
    bprintf(b, "# HELP stoke_receiver_rejected_total Requests refused, by reason.\n"
               "# TYPE stoke_receiver_rejected_total counter\n");
    for (int r = 0; r < RX_REASONS; r++)
        bprintf(b, "stoke_receiver_rejected_total{reason=\"%s\"} %llu\n", rx_reason_names[r],
                (unsigned long long)s.refused[r]);
    counter(b, "stoke_receiver_profiles_written_total", "Received profiles written.", s.profiles);
    counter(b, "stoke_receiver_samples_written_total", "Sample rows of the profiles written.",
            s.samples);
    counter(b, "stoke_receiver_profiles_rejected_total",
            "OTLP profiles left out of an accepted request (partial success).",
            s.rejected_profiles);
    gauge(b, "stoke_receiver_tenants", "Tenants the receiver writes for.", (double)s.tenants);
    /* the tenants are few (--receive-max-tenants): one series each */
    for (;;) {
        nt = receiver_get_tenant_stats(rx, ts, cap);
        if (nt <= cap)
            break;
        free(ts);
        cap = nt;
        if (!(ts = calloc(cap, sizeof(*ts))))
            return;
    }
    bprintf(b, "# HELP stoke_receiver_tenant_requests_total Accepted requests, by tenant.\n"
               "# TYPE stoke_receiver_tenant_requests_total counter\n");
    for (size_t i = 0; i < nt; i++)
        bprintf(b, "stoke_receiver_tenant_requests_total{tenant=\"%s\"} %llu\n", ts[i].name,
                (unsigned long long)ts[i].requests);
    bprintf(b, "# HELP stoke_receiver_tenant_profiles_total Profiles written, by tenant.\n"
               "# TYPE stoke_receiver_tenant_profiles_total counter\n");
    for (size_t i = 0; i < nt; i++)
        bprintf(b, "stoke_receiver_tenant_profiles_total{tenant=\"%s\"} %llu\n", ts[i].name,
                (unsigned long long)ts[i].profiles);
    bprintf(b, "# HELP stoke_receiver_tenant_samples_total Sample rows written, by tenant.\n"
               "# TYPE stoke_receiver_tenant_samples_total counter\n");
    for (size_t i = 0; i < nt; i++)
        bprintf(b, "stoke_receiver_tenant_samples_total{tenant=\"%s\"} %llu\n", ts[i].name,
                (unsigned long long)ts[i].samples);
    free(ts);
}

char *metrics_render_receiver(char *page, struct receiver *rx)
{
    struct buf b = {page, page ? strlen(page) : 0, page ? strlen(page) + 1 : 0};
    if (!rx)
        return page;
    receiver_metrics(&b, rx);
    return b.p;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    struct metrics_server *m = cls;
    struct MHD_Response *r;
    enum MHD_Result ret;
    unsigned status = MHD_HTTP_OK;
    char *body;

    if (strcmp(method, "GET") != 0) {
        body = strdup("method not allowed\n");
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") == 0) {
        struct agent_metrics snap;
        pthread_mutex_lock(&m->mu);
        snap = m->snap;
        struct receiver *rx = m->rx;
        pthread_mutex_unlock(&m->mu);
        body = metrics_render_receiver(metrics_render(&snap), rx);
    } else if (strcmp(url, "/healthz") == 0) {
        body = strdup("ok\n");
    } else {
        body = strdup("not found: try /metrics or /healthz\n");
        status = MHD_HTTP_NOT_FOUND;
    }
    if (!body)
        return MHD_NO;
    r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

struct metrics_server *metrics_start(const char *addr)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64];
    const char *colon;
    struct metrics_server *m;

    if (!addr || !*addr || strcmp(addr, "off") == 0)
        return NULL;
    colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
        log_warn("metrics-addr '%s' is not HOST:PORT; no /metrics page", addr);
        return NULL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        log_warn("metrics-addr '%s' is not an IPv4 HOST:PORT; no /metrics page", addr);
        return NULL;
    }
    sa.sin_port = htons((uint16_t)port);
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle,
                         m, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5, MHD_OPTION_END);
    if (!m->d) {
        log_warn("cannot serve /metrics on %s (port in use?); running without it", addr);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    log_info("self-metrics on http://%s/metrics", addr);
    return m;
}

void metrics_stop(struct metrics_server *m)
{
    if (!m)
        return;
    MHD_stop_daemon(m->d);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void metrics_set_receiver(struct metrics_server *m, struct receiver *rx)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->rx = rx;
    pthread_mutex_unlock(&m->mu);
}

void metrics_publish(struct metrics_server *m, const struct agent_metrics *snap)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->snap = *snap;
    pthread_mutex_unlock(&m->mu);
}
