/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stoke-agent — the window loop.
 *
 * Every window (default 10 s) the sampler's maps are flipped and drained;
 * each {pid, kernel stack, user stack} → count row is attributed to its
 * process's service and label set, its addresses symbolized, and added to
 * that service's profile for the window. At the window's end the profiles
 * are written (pprof + folded) and the self-metrics published. SIGINT and
 * SIGTERM end the current window early, flush it, and exit.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include "agent/config.h"
#include "agent/kubelet.h"
#include "agent/label_limiter.h"
#include "common/file.h"
#include "common/labels.h"
#include "common/log.h"
#include "agent/metrics.h"
#include "agent/procinfo.h"
#include "agent/sampler.h"
#include "agent/top.h"
#include "agent/unwinder.h"
#include "bpf/profile.h"
#include "exporter/http_push.h"
#include "exporter/otlp.h"
#include "exporter/profile.h"
#include "exporter/pyroscope_push.h"
#include "exporter/segment_upload.h"
#include "common/auth.h"
#include "ingest/receiver.h"
#include "store/store.h"
#include "symbolizer/debuginfod.h"
#include "symbolizer/symbolizer.h"

#define MAX_FRAMES    (2 * 127 + 4) /* kernel + user + the frames synthetic() adds */
#define MAX_TOP_NAMES 1024

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct service_profile {
    char *name;
    struct profile *prof;
};

struct agent {
    struct agent_config cfg;
    struct symbolizer *sym;
    struct sym_dbgd *dbgd; /* NULL: debuginfod off */
    struct kubelet *kube;  /* NULL: no --kubelet-url */
    struct proc_cache *procs;
    struct relabel_rules *rules;
    struct label_limiter *limiter;
    struct metrics_server *metrics;
    struct sampler *sampler;
    struct unwinder *unwinder; /* NULL with the frame-pointer program */
    struct top *top;
    struct store *store;
    struct seg_upload *upload;
    struct receiver *rx; /* --receive; NULL: off */
    struct auth *rx_auth;
    struct store_opts rx_store; /* each receiving tenant's store */
    struct otlp_exporter *otlp;
    struct pyroscope_push *pyroscope;
    struct agent_metrics m;
    uint64_t period_ns;
    /* CPU and time at the end of the first window: start-up (BPF load, BTF,
     * kallsyms, cold symbol caches) is excluded from the steady state. */
    double cpu_after_first;
    uint64_t mono_after_first;
    /* the current window */
    uint64_t window_start_ns, window_len_ns;
    struct service_profile *svc;
    size_t nsvc, capsvc;
};

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct profile *service_profile(struct agent *a, const char *name)
{
    for (size_t i = 0; i < a->nsvc; i++)
        if (strcmp(a->svc[i].name, name) == 0)
            return a->svc[i].prof;
    if (a->nsvc == a->capsvc) {
        size_t ncap = a->capsvc ? a->capsvc * 2 : 16;
        struct service_profile *n = realloc(a->svc, ncap * sizeof(*n));
        if (!n)
            return NULL;
        a->svc = n;
        a->capsvc = ncap;
    }
    struct profile *p = profile_new(name, a->window_start_ns, a->window_len_ns, a->period_ns);
    char *dup = strdup(name);
    if (!p || !dup) {
        profile_free(p);
        free(dup);
        return NULL;
    }
    a->svc[a->nsvc++] = (struct service_profile){dup, p};
    return p;
}

/* A frame the symbolizer could not even place in a mapping. */
static void unplaced(struct sym_result *r, enum sym_kind kind, uint64_t addr)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->mapping = kind == SYM_KERNEL ? "[kernel.kallsyms]" : "[unknown]";
    r->build_id = "";
    r->file_offset = addr;
}

/*
 * A frame the profile shows instead of what could not be had: a lost stack
 * ("[lost stack: collision]"), where a user walk stopped short
 * ("[truncated: not_mapped]"), a sample with no stack at all. Each is its
 * own location in the "[stoke]" mapping (offset = @id), so totals stay
 * whole and the reason is visible in every view.
 */
static void synthetic(struct sym_result *r, uint64_t id, const char *name)
{
    memset(r, 0, sizeof(*r));
    r->kind = SYM_USER;
    r->mapping = "[stoke]";
    r->build_id = "";
    r->file_offset = id;
    r->nframes = 1;
    r->frames[0].function = name;
}

/* Names of one resolved location for the top table, innermost first. */
static size_t frame_names(const struct sym_result *r, char (*scratch)[160], const char **names,
                          size_t room)
{
    size_t n = 0;
    if (r->nframes == 0) {
        const char *base = strrchr(r->mapping, '/');
        snprintf(scratch[0], sizeof(scratch[0]), "%s+0x%llx", base ? base + 1 : r->mapping,
                 (unsigned long long)r->file_offset);
        if (room)
            names[n++] = scratch[0];
        return n;
    }
    for (uint32_t i = 0; i < r->nframes && n < room; i++) {
        snprintf(scratch[n], sizeof(scratch[0]), "%s", r->frames[i].function);
        names[n] = scratch[n];
        n++;
    }
    return n;
}

struct drain_ctx {
    struct agent *a;
    uint32_t locs[MAX_FRAMES];
    const char *names[MAX_TOP_NAMES];
    char (*scratch)[160];
};

/* Adds @r's location to the row's stack and its names to the top table. */
static size_t add_loc(struct drain_ctx *d, struct profile *p, const struct sym_result *r,
                      size_t nlocs, size_t *nnames)
{
    if (nlocs >= MAX_FRAMES)
        return nlocs;
    d->locs[nlocs++] = profile_location(p, r);
    if (d->a->top)
        *nnames +=
            frame_names(r, d->scratch + *nnames, d->names + *nnames, MAX_TOP_NAMES - *nnames);
    return nlocs;
}

static void on_row(const struct sample_row *row, void *ctx)
{
    struct drain_ctx *d = ctx;
    struct agent *a = d->a;
    /* pid 0 is the idle task (only with --include-idle): no /proc entry. */
    const struct proc_info *pi = row->pid ? proc_cache_get(a->procs, row->pid) : NULL;
    struct label_set ls = {0};
    struct sym_result r;
    struct profile *p;
    size_t nlocs = 0, nnames = 0;
    const char *service;
    char buf[64];

    if (row->pid == 0) {
        label_set_put(&ls, "service_name", "kernel");
        label_set_put(&ls, "host_name", a->cfg.host_name);
        label_set_put(&ls, "process_executable_name", "swapper");
    } else if (!pi) {
        /* The process exited before this drain: its samples still count,
         * under the name the BPF program remembered (service rule 5, the
         * executable name), so totals stay whole. Its user frames stay
         * unresolved addresses: its mappings are gone. No pid label: a
         * fork-heavy script would otherwise make one series per process. */
        char comm[17];
        bool named = sampler_comm(a->sampler, row->pid, comm) == 0;
        a->m.unknown_process += row->count;
        label_set_put(&ls, "service_name", named ? comm : "unknown");
        if (a->cfg.host_name)
            label_set_put(&ls, "host_name", a->cfg.host_name);
        if (named)
            label_set_put(&ls, "process_executable_name", comm);
    } else if (label_set_copy(&ls, &pi->labels) != 0) {
        return;
    }
    if (a->cfg.per_thread) {
        snprintf(buf, sizeof(buf), "%u", row->tid);
        label_set_put(&ls, "thread_id", buf);
    }
    if (a->cfg.per_cpu) {
        snprintf(buf, sizeof(buf), "%u", row->cpu);
        label_set_put(&ls, "cpu", buf);
    }
    if (a->rules && !relabel_apply(a->rules, &ls)) {
        a->m.series_dropped += row->count;
        label_set_clear(&ls);
        return;
    }
    label_limiter_apply(a->limiter, &ls);
    service = label_set_get(&ls, "service_name");
    p = service_profile(a, service ? service : "unknown");
    if (!p) {
        label_set_clear(&ls);
        return;
    }

    for (uint32_t i = 0; i < row->nk && nlocs < MAX_FRAMES; i++) {
        if (symbolizer_kernel(a->sym, row->kstack[i], &r) != 0)
            unplaced(&r, SYM_KERNEL, row->kstack[i]);
        nlocs = add_loc(d, p, &r, nlocs, &nnames);
    }
    if (row->klost) {
        snprintf(buf, sizeof(buf), "[lost kernel stack: %s]", sampler_lost_name(row->klost));
        synthetic(&r, 0x100 + row->klost, buf);
        nlocs = add_loc(d, p, &r, nlocs, &nnames);
    }
    for (uint32_t i = 0; i < row->nu && nlocs < MAX_FRAMES; i++) {
        int ret = pi ? symbolizer_user(a->sym, row->pid, pi->start_time, row->ustack[i], i > 0, &r)
                     : -ESRCH;
        if (ret != 0)
            unplaced(&r, SYM_USER, row->ustack[i]);
        nlocs = add_loc(d, p, &r, nlocs, &nnames);
    }
    if (row->ulost) {
        snprintf(buf, sizeof(buf), "[lost stack: %s]", sampler_lost_name(row->ulost));
        synthetic(&r, 0x200 + row->ulost, buf);
        nlocs = add_loc(d, p, &r, nlocs, &nnames);
    } else if (row->nu && row->uend != STOKE_END_ENTRY && row->uend != STOKE_END_FP) {
        /* the walk stopped before the outermost frame: say why, at the root */
        snprintf(buf, sizeof(buf), "[truncated: %s]", sampler_walk_end_name(row->uend));
        synthetic(&r, 0x300 + row->uend, buf);
        nlocs = add_loc(d, p, &r, nlocs, &nnames);
    }
    if (row->klost || row->ulost)
        a->m.samples_lost_stack += row->count;
    if (nlocs == 0) {
        synthetic(&r, 0x400, "[no stack]");
        nlocs = add_loc(d, p, &r, nlocs, &nnames);
    }
    /* profile_location returns 0 only when out of memory. */
    size_t k = 0;
    for (size_t i = 0; i < nlocs; i++)
        if (d->locs[i])
            d->locs[k++] = d->locs[i];
    if (k)
        profile_add(p, d->locs, k, &ls, row->count);
    if (a->top && nnames)
        top_add(a->top, d->names, nnames, row->count);
    label_set_clear(&ls);
}

/* Directory names come from service names, which come from processes:
 * keep them to a safe alphabet. */
static void safe_name(const char *in, char *out, size_t outlen)
{
    size_t i = 0;
    for (; in[i] && i + 1 < outlen; i++) {
        char c = in[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || (c == '.' && i > 0);
        out[i] = ok ? c : '_';
    }
    out[i] = '\0';
    if (i == 0)
        snprintf(out, outlen, "_");
}

/* The push exporters only encode and queue here: sending is on their
 * threads, so a slow or dead endpoint never holds up the window loop. */
static void push_window(struct agent *a)
{
    struct otlp_batch *b = a->otlp ? otlp_batch_new() : NULL;
    int r;

    if (a->otlp && !b)
        a->m.export_errors += a->nsvc;
    for (size_t i = 0; i < a->nsvc; i++) {
        struct service_profile *s = &a->svc[i];
        if (profile_total_samples(s->prof) == 0)
            continue;
        if (b && (r = otlp_batch_add(b, s->prof)) != 0) {
            log_error("otlp: encoding %s: %s", s->name, strerror(-r));
            a->m.export_errors++;
        }
        if (a->pyroscope && (r = pyroscope_push_add(a->pyroscope, s->prof)) != 0) {
            log_error("pyroscope: encoding %s: %s", s->name, strerror(-r));
            a->m.export_errors++;
        }
    }
    if (b && (r = otlp_exporter_send(a->otlp, b)) != 0) {
        log_error("otlp: encoding the window: %s", strerror(-r));
        a->m.export_errors += otlp_batch_nprofiles(b);
    }
    otlp_batch_free(b);
}

static void export_stats(struct export_metrics *m, const struct http_push_stats *st)
{
    m->sent = st->sent;
    m->failed_attempts = st->failed_attempts;
    m->dropped = st->dropped;
    m->rejected = st->rejected;
    m->bad_responses = st->bad_responses;
    m->queued = st->queued;
}

/* The push exporters' counts into the metrics. */
static void push_stats(struct agent *a)
{
    struct http_push_stats st;

    if (a->otlp) {
        otlp_exporter_get_stats(a->otlp, &st);
        export_stats(&a->m.otlp, &st);
    }
    if (a->pyroscope) {
        pyroscope_push_get_stats(a->pyroscope, &st);
        export_stats(&a->m.pyroscope, &st);
    }
}

static void write_window(struct agent *a)
{
    char dir[PATH_MAX], path[PATH_MAX + 64], name[128];

    push_window(a);
    for (size_t i = 0; i < a->nsvc; i++) {
        struct service_profile *s = &a->svc[i];
        if (a->upload && profile_total_samples(s->prof) > 0) {
            /* the receiver's thread writes into the same object */
            if (a->rx)
                receiver_lock(a->rx);
            int r = seg_upload_add(a->upload, s->name, s->prof, a->window_start_ns);
            if (a->rx)
                receiver_unlock(a->rx);
            if (r) {
                log_error("adding %s to the segment: %s", s->name, strerror(-r));
                a->m.write_errors++;
            }
        }
        if (a->cfg.output_dir && profile_total_samples(s->prof) > 0) {
            safe_name(s->name, name, sizeof(name));
            snprintf(dir, sizeof(dir), "%s/%s", a->cfg.output_dir, name);
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                log_error("cannot create %s: %s", dir, strerror(errno));
                a->m.write_errors++;
            } else {
                int r1, r2;
                snprintf(path, sizeof(path), "%s/%llu.pb.gz", dir,
                         (unsigned long long)a->window_start_ns);
                r1 = profile_write_pprof_gz(s->prof, path);
                snprintf(path, sizeof(path), "%s/%llu.folded", dir,
                         (unsigned long long)a->window_start_ns);
                r2 = profile_write_folded(s->prof, path);
                if (r1 || r2) {
                    log_error("writing %s/%llu.*: %s", dir, (unsigned long long)a->window_start_ns,
                              strerror(-(r1 ? r1 : r2)));
                    a->m.write_errors++;
                } else {
                    a->m.profiles_written++;
                }
            }
        }
        profile_free(s->prof);
        free(s->name);
    }
    a->nsvc = 0;
}

static void self_usage(struct agent *a)
{
    struct rusage ru;
    long pages = 0;
    FILE *f;

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        a->m.cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        a->m.peak_rss_bytes = (uint64_t)ru.ru_maxrss * 1024;
    }
    f = fopen("/proc/self/statm", "re");
    if (f) {
        long size;
        if (fscanf(f, "%ld %ld", &size, &pages) == 2)
            a->m.rss_bytes = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
        fclose(f);
    }
}

static int drain_window(struct agent *a, uint64_t end_ns)
{
    struct drain_ctx d = {.a = a};
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    int ret;

    d.scratch = calloc(MAX_TOP_NAMES, sizeof(*d.scratch));
    if (!d.scratch)
        return -ENOMEM;
    a->window_len_ns = end_ns - a->window_start_ns;
    proc_cache_sweep(a->procs, a->m.windows);
    ret = sampler_drain(a->sampler, on_row, &d);
    free(d.scratch);
    if (ret < 0)
        return ret;
    write_window(a);
    symbolizer_new_window(a->sym);
    /* A window's profiles are freed by now: hand the pages back, so the
     * steady-state RSS is what the caches hold, not the last peak. */
    malloc_trim(0);
    a->m.windows++;
    sampler_get_stats(a->sampler, &a->m.sampler);
    if (a->unwinder)
        unwinder_get_stats(a->unwinder, &a->m.unwind);
    symbolizer_get_stats(a->sym, &a->m.sym);
    if (a->kube) {
        a->m.kube_on = true;
        kubelet_get_stats(a->kube, &a->m.kube);
    }
    if (a->dbgd) {
        a->m.dbgd_on = true;
        sym_dbgd_get_stats(a->dbgd, &a->m.dbgd);
    }
    a->m.processes_cached = proc_cache_size(a->procs);
    a->m.label_overflows = label_limiter_overflows(a->limiter);
    if (a->upload) {
        struct seg_upload_stats us;
        seg_upload_get_stats(a->upload, &us);
        a->m.objects_uploaded = us.objects_uploaded;
        a->m.bytes_uploaded = us.bytes_uploaded;
        a->m.objects_pending = us.objects_pending;
        a->m.objects_dropped = us.objects_dropped;
        a->m.objects_spilled = us.objects_spilled;
        a->m.objects_cut_early = us.objects_cut_early;
        a->m.upload_errors = us.upload_errors;
    }
    push_stats(a);
    a->m.last_drain_seconds = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    self_usage(a);
    if (a->m.windows == 1) {
        a->cpu_after_first = a->m.cpu_seconds;
        a->mono_after_first = now_ns(CLOCK_MONOTONIC);
    }
    metrics_publish(a->metrics, &a->m);
    log_debug("window %llu: %d rows, %.3f s to drain and write", (unsigned long long)a->m.windows,
              ret, a->m.last_drain_seconds);
    return 0;
}

/* Sleeps until @deadline (CLOCK_MONOTONIC ns) or a signal; the receiver's
 * writers are flushed on time meanwhile. */
static void sleep_until(struct agent *a, uint64_t deadline)
{
    while (!stop_requested) {
        if (a->rx)
            receiver_tick(a->rx);
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        if (now >= deadline)
            return;
        uint64_t left = deadline - now;
        if (left > 200000000ull)
            left = 200000000ull;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000000000ull),
                              .tv_nsec = (long)(left % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
}

/* A secret from a file (first line) or the environment; malloc'd or NULL. */
static char *read_secret(const char *file, const char *env, int *err)
{
    char *s;
    *err = 0;
    if (file) {
        *err = read_first_line(file, 64u << 10, &s);
        if (*err) {
            log_error("cannot read %s: %s", file, strerror(-*err));
            return NULL;
        }
        return s;
    }
    const char *v = getenv(env);
    return v && *v ? strdup(v) : NULL;
}

static int setup_push(struct agent *a)
{
    char err[512];
    int r;

    bool grpc = !strcmp(a->cfg.otlp_protocol, "grpc");
    if (!grpc && strcmp(a->cfg.otlp_protocol, "http/protobuf") != 0) {
        log_error("--otlp-protocol must be 'http/protobuf' or 'grpc', not '%s'",
                  a->cfg.otlp_protocol);
        return -EINVAL;
    }
    if (a->cfg.otlp_endpoint) {
        char *hdrs[CONFIG_MAX_HEADERS];
        size_t n = 0;
        for (; n < a->cfg.notlp_headers; n++) {
            const char *kv = a->cfg.otlp_headers[n], *eq = strchr(kv, '=');
            if (asprintf(&hdrs[n], "%.*s: %s", (int)(eq - kv), kv, eq + 1) < 0)
                break;
        }
        struct otlp_exporter_opts oo = {
            .endpoint = a->cfg.otlp_endpoint,
            .grpc = grpc,
            .headers = (const char *const *)hdrs,
            .nheaders = n,
            .timeout_ms = a->cfg.otlp_timeout_s * 1000,
        };
        a->otlp = n == a->cfg.notlp_headers ? otlp_exporter_new(&oo, err, sizeof(err)) : NULL;
        for (size_t i = 0; i < n; i++) {
            explicit_bzero(hdrs[i], strlen(hdrs[i]));
            free(hdrs[i]);
        }
        if (!a->otlp) {
            log_error("%s", err);
            return -EINVAL;
        }
    }
    if (a->cfg.pyroscope_url) {
        char *password =
            read_secret(a->cfg.pyroscope_password_file, "PYROSCOPE_BASIC_AUTH_PASSWORD", &r);
        char *token =
            r ? NULL : read_secret(a->cfg.pyroscope_token_file, "PYROSCOPE_AUTH_TOKEN", &r);
        struct pyroscope_push_opts po = {
            .url = a->cfg.pyroscope_url,
            .org_id = a->cfg.pyroscope_org_id,
            .user = a->cfg.pyroscope_user,
            .password = password,
            .bearer = a->cfg.pyroscope_user ? NULL : token,
            .timeout_ms = a->cfg.otlp_timeout_s * 1000,
            .sample_rate = a->cfg.frequency,
        };
        a->pyroscope = r ? NULL : pyroscope_push_new(&po, err, sizeof(err));
        if (password)
            explicit_bzero(password, strlen(password));
        if (token)
            explicit_bzero(token, strlen(token));
        free(password);
        free(token);
        if (!a->pyroscope) {
            if (!r)
                log_error("%s", err);
            return -EINVAL;
        }
    }
    return 0;
}

/* debuginfod is off unless servers are named, by --debuginfod-urls or
 * DEBUGINFOD_URLS (elfutils' convention, which Debian sets only when the
 * administrator said yes): each build-id asked for tells the servers what
 * this host runs. Called before any thread starts (it sets the
 * environment libdebuginfod reads). */
static int setup_debuginfod(struct agent *a)
{
    const char *urls = a->cfg.debuginfod_urls;
    int err = 0;

    if (!urls)
        urls = getenv("DEBUGINFOD_URLS");
    if (!urls || !*urls || strcmp(urls, "off") == 0 || a->cfg.no_dwarf)
        return 0;
    struct sym_dbgd_opts o = {
        .urls = urls,
        .cache_dir = a->cfg.debuginfod_cache_dir,
        .cache_max_bytes = (uint64_t)a->cfg.debuginfod_cache_mb << 20,
        .max_file_bytes = (uint64_t)a->cfg.debuginfod_max_mb << 20,
        .timeout_s = a->cfg.debuginfod_timeout_s,
        .negative_s = a->cfg.debuginfod_negative_s,
    };
    a->dbgd = sym_dbgd_new(&o, &err);
    if (!a->dbgd) {
        log_error("debuginfod: cache directory %s: %s", o.cache_dir ? o.cache_dir : "(none)",
                  strerror(-err));
        return err;
    }
    log_info("debuginfod: asking %s for the debug files this host lacks (cache %s, %u MB)", urls,
             o.cache_dir, a->cfg.debuginfod_cache_mb);
    return 0;
}

static int setup_output(struct agent *a);

#define SA_TOKEN "/var/run/secrets/kubernetes.io/serviceaccount/token"

/* Pod metadata from the node's kubelet (service-name rule 3), fetched by
 * its own thread: the window loop only reads the last list. */
static int setup_kubelet(struct agent *a)
{
    const struct agent_config *c = &a->cfg;
    int err = 0;

    if (!c->kubelet_url || !*c->kubelet_url)
        return 0;
    const char *token = c->kubelet_token_file;
    if (!token && strncmp(c->kubelet_url, "https://", 8) == 0 && access(SA_TOKEN, R_OK) == 0)
        token = SA_TOKEN;
    struct kubelet_opts o = {.url = c->kubelet_url,
                             .token_file = token,
                             .ca_file = c->kubelet_ca_file,
                             .insecure = c->kubelet_insecure_tls,
                             .refresh_s = c->kubelet_refresh_s,
                             .timeout_s = c->kubelet_timeout_s,
                             .max_bytes = (size_t)c->kubelet_max_mb << 20};
    a->kube = kubelet_new(&o, &err);
    if (!a->kube) {
        log_error("--kubelet-url %s: %s", c->kubelet_url,
                  err == -EINVAL ? "expected an http:// or https:// URL" : strerror(-err));
        return err;
    }
    proc_cache_set_kubelet(a->procs, a->kube);
    if ((err = kubelet_start(a->kube))) {
        log_error("kubelet: cannot start a thread: %s", strerror(-err));
        return err;
    }
    log_info("kubelet: pod metadata from %s/pods every %u s%s", c->kubelet_url,
             c->kubelet_refresh_s, token ? " (bearer token)" : "");
    return 0;
}

/* --host-name, else the machine's name. */
static void default_host_name(struct agent *a)
{
    if (!a->cfg.host_name) {
        char hn[256] = "localhost";
        gethostname(hn, sizeof(hn) - 1);
        hn[sizeof(hn) - 1] = '\0';
        a->cfg.host_name = strdup(hn);
    }
}

/* The store the configuration names (the agent's own, and each receiving
 * tenant's). */
static struct store_opts store_opts_of(const struct agent_config *c)
{
    return (struct store_opts){
        .url = c->store,
        .endpoint = c->s3_endpoint,
        .region = c->s3_region,
        .access_key = c->s3_access_key,
        .secret_key = c->s3_secret_key,
        .path_style = c->s3_path_style ? 1 : -1,
        .ca_file = c->s3_ca_file,
    };
}

static int setup_receiver(struct agent *a)
{
    char err[512];

    if (!a->cfg.store) {
        log_error("--receive needs --store: what is received is written into segments");
        return -EINVAL;
    }
    if (a->cfg.receive_auth_file &&
        auth_load(a->cfg.receive_auth_file, &a->rx_auth, err, sizeof(err)) != 0) {
        log_error("--receive-auth-token-file: %s", err);
        return -EINVAL;
    }
    a->rx_store = store_opts_of(&a->cfg);
    struct receiver_opts ro = {
        .listen = a->cfg.receive_addr,
        .listen_grpc = a->cfg.receive_grpc_addr,
        .max_body = (size_t)a->cfg.receive_max_body_mb << 20,
        .pending_bytes = (size_t)a->cfg.receive_pending_mb << 20,
        .max_tenants = a->cfg.receive_max_tenants,
        .auth = a->rx_auth,
        .upload = {.tenant = a->cfg.tenant,
                   .host = a->cfg.host_name,
                   .flush_s = a->cfg.flush_s,
                   .buffer_bytes = (size_t)a->cfg.buffer_mb << 20},
        .store = &a->rx_store, /* lives as long as the receiver */
        .own = a->upload,
    };
    a->rx = receiver_new(&ro, err, sizeof(err));
    if (!a->rx) {
        log_error("%s", err);
        return -EINVAL;
    }
    if (a->cfg.receive_addr)
        log_info("receiving OTLP profiles and Pyroscope /ingest on port %u%s", receiver_port(a->rx),
                 a->rx_auth ? " (token required)" : "");
    if (a->cfg.receive_grpc_addr)
        log_info("receiving OTLP profiles over gRPC (h2c) on grpc port %u%s",
                 receiver_grpc_port(a->rx), a->rx_auth ? " (token required)" : "");
    return 0;
}

static int setup(struct agent *a)
{
    char err[512];

    if (a->cfg.no_sampling) {
        if (!a->cfg.receive_addr && !a->cfg.receive_grpc_addr) {
            log_error("--no-sampling makes sense only with --receive ADDR or --receive-grpc ADDR");
            return -EINVAL;
        }
        default_host_name(a);
        return setup_output(a);
    }
    if (sampler_preflight(err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -EPERM;
    }
    default_host_name(a);
    if (a->cfg.output_dir && mkdir(a->cfg.output_dir, 0755) != 0 && errno != EEXIST) {
        log_error("cannot create output directory %s: %s", a->cfg.output_dir, strerror(errno));
        return -errno;
    }
    if (a->cfg.nrelabel) {
        a->rules = relabel_rules_new();
        if (!a->rules)
            return -ENOMEM;
        for (size_t i = 0; i < a->cfg.nrelabel; i++) {
            if (relabel_rules_add(a->rules, a->cfg.relabel[i], err, sizeof(err)) != 0) {
                log_error("relabel rule '%s': %s", a->cfg.relabel[i], err);
                return -EINVAL;
            }
        }
    }
    if (setup_debuginfod(a) != 0)
        return -EINVAL;
    struct symbolizer_opts so = {
        .max_bytes = (size_t)a->cfg.symbol_cache_mb << 20,
        .debug_dirs = a->cfg.debug_dirs,
        .no_dwarf = a->cfg.no_dwarf,
        .scratch_dir = a->cfg.dwarf_scratch_dir && *a->cfg.dwarf_scratch_dir &&
                               strcmp(a->cfg.dwarf_scratch_dir, "off") != 0
                           ? a->cfg.dwarf_scratch_dir
                           : NULL,
        .scratch_max_bytes = (size_t)a->cfg.dwarf_scratch_mb << 20,
        .dbgd = a->dbgd,
    };
    a->sym = symbolizer_new(&so);
    a->procs = proc_cache_new(NULL, a->cfg.host_name);
    if (a->procs && setup_kubelet(a) != 0)
        return -EINVAL;
    a->limiter = label_limiter_new(a->cfg.max_label_values);
    if (a->cfg.top)
        a->top = top_new();
    if (!a->sym || !a->procs || !a->limiter || (a->cfg.top && !a->top))
        return -ENOMEM;
    if (strcmp(a->cfg.unwind, "auto") != 0 && strcmp(a->cfg.unwind, "fp") != 0) {
        log_error("--unwind must be 'auto' or 'fp', not '%s'", a->cfg.unwind);
        return -EINVAL;
    }
    struct sampler_opts sopts = {
        .frequency = a->cfg.frequency,
        .window_s = a->cfg.window_s,
        .include_idle = a->cfg.include_idle,
        .per_thread = a->cfg.per_thread,
        .per_cpu = a->cfg.per_cpu,
        .pid = a->cfg.pid,
        .unwind = strcmp(a->cfg.unwind, "fp") == 0 ? SAMPLER_UNWIND_FP : SAMPLER_UNWIND_AUTO,
        .defer_attach = true,
    };
    a->sampler = sampler_new(&sopts, err, sizeof(err));
    if (!a->sampler) {
        log_error("%s", err);
        return -EIO;
    }
    struct sampler_unwind_maps um;
    if (sampler_unwind_maps(a->sampler, &um) == 0) {
        struct unwinder_opts uo = {
            .tables_fd = um.tables,
            .procs_fd = um.procs,
            .files_fd = um.files,
            .py_procs_fd = um.py_procs,
            .jvm_procs_fd = um.jvm_procs,
            .v8_procs_fd = um.v8_procs,
            .max_bytes = (size_t)a->cfg.unwind_table_mb << 20,
        };
        a->unwinder = unwinder_new(&uo);
        if (!a->unwinder)
            return -ENOMEM;
        if (a->cfg.pid)
            unwinder_load_pid(a->unwinder, a->cfg.pid);
        else
            unwinder_load_running(a->unwinder);
        int r = unwinder_start(a->unwinder, a->sampler, a->cfg.window_s * 1000);
        if (r) {
            log_error("starting the unwinder thread: %s", strerror(-r));
            return r;
        }
    }
    if (sampler_attach(a->sampler, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -EIO;
    }
    return setup_output(a);
}

/* The store, its writer, the receiver, the push exporters and /metrics:
 * what a receive-only agent (--no-sampling) sets up too. */
static int setup_output(struct agent *a)
{
    char err[512];

    if (a->cfg.store) {
        struct store_opts so = store_opts_of(&a->cfg);
        a->store = store_open(&so, err, sizeof(err));
        if (!a->store) {
            log_error("store %s: %s", a->cfg.store, err);
            return -EINVAL;
        }
        struct seg_upload_opts uo = {
            .store = a->store,
            .tenant = a->cfg.tenant,
            .host = a->cfg.host_name,
            .flush_s = a->cfg.flush_s,
            .buffer_bytes = (size_t)a->cfg.buffer_mb << 20,
            .spill_dir = a->cfg.spill_dir,
            .spill_bytes = (size_t)a->cfg.spill_mb << 20,
        };
        a->upload = seg_upload_new(&uo, err, sizeof(err));
        if (!a->upload) {
            log_error("%s", err);
            return -EINVAL;
        }
    }
    if ((a->cfg.receive_addr || a->cfg.receive_grpc_addr) && setup_receiver(a) != 0)
        return -EINVAL;
    if (setup_push(a) != 0)
        return -EINVAL;
    a->metrics = metrics_start(a->cfg.metrics_addr);
    metrics_set_receiver(a->metrics, a->rx);
    a->period_ns = 1000000000ull / a->cfg.frequency;
    return 0;
}

static void teardown(struct agent *a)
{
    /* a fetch in flight is abandoned while the rest stops */
    sym_dbgd_stop(a->dbgd);
    metrics_stop(a->metrics);
    if (a->rx) {
        struct receiver_stats rs;
        receiver_get_stats(a->rx, &rs);
        /* stops taking requests; flushes the other tenants' writers */
        receiver_free(a->rx, 10000);
        a->rx = NULL;
        log_info("receiver: %llu requests, %llu profiles written (%llu bytes), %llu profiles "
                 "rejected, %llu answered 4xx, %llu 413, %llu 429, %llu 5xx, %llu tenants",
                 (unsigned long long)rs.requests, (unsigned long long)rs.profiles,
                 (unsigned long long)rs.bytes, (unsigned long long)rs.rejected_profiles,
                 (unsigned long long)rs.status_4xx, (unsigned long long)rs.status_413,
                 (unsigned long long)rs.status_429, (unsigned long long)rs.status_5xx,
                 (unsigned long long)rs.tenants);
    }
    auth_free(a->rx_auth);
    unwinder_free(a->unwinder);
    sampler_free(a->sampler);
    if (a->upload) {
        struct seg_upload_stats us;
        /* the last flush: up to 10 s to upload, then spill or drop */
        seg_upload_flush(a->upload);
        seg_upload_drain(a->upload, 10000);
        seg_upload_get_stats(a->upload, &us);
        log_info("store: %llu objects uploaded (%llu bytes), %llu pending, %llu spilled, "
                 "%llu dropped (%llu samples), %llu failed attempts%s%s",
                 (unsigned long long)us.objects_uploaded, (unsigned long long)us.bytes_uploaded,
                 (unsigned long long)us.objects_pending, (unsigned long long)us.objects_spilled,
                 (unsigned long long)us.objects_dropped, (unsigned long long)us.samples_dropped,
                 (unsigned long long)us.upload_errors, us.last_error[0] ? ", last error: " : "",
                 us.last_error);
        seg_upload_free(a->upload, 0);
    }
    store_close(a->store);
    /* the last window is queued by now: up to 5 s to send it; the counts
     * are read once it is sent (the window's were one request behind) */
    otlp_exporter_drain(a->otlp, 5000);
    pyroscope_push_drain(a->pyroscope, 5000);
    push_stats(a);
    otlp_exporter_free(a->otlp, 0);
    pyroscope_push_free(a->pyroscope, 0);
    if (a->otlp || a->pyroscope)
        log_info("push: otlp %llu sent, %llu dropped; pyroscope %llu sent, %llu dropped",
                 (unsigned long long)a->m.otlp.sent, (unsigned long long)a->m.otlp.dropped,
                 (unsigned long long)a->m.pyroscope.sent,
                 (unsigned long long)a->m.pyroscope.dropped);
    for (size_t i = 0; i < a->nsvc; i++) {
        profile_free(a->svc[i].prof);
        free(a->svc[i].name);
    }
    free(a->svc);
    top_free(a->top);
    label_limiter_free(a->limiter);
    relabel_rules_free(a->rules);
    proc_cache_free(a->procs);
    kubelet_free(a->kube);
    symbolizer_free(a->sym);
    sym_dbgd_free(a->dbgd);
    config_free(&a->cfg);
}

int main(int argc, char **argv)
{
    static struct agent a;
    struct sigaction sa = {.sa_handler = on_signal};
    enum log_level lvl;
    int ret;

    /* A fixed mmap threshold: big, short-lived buffers (a window's encode
     * buffers, the symbolizer's file reads) are mmapped and returned to the
     * kernel when freed, instead of raising glibc's dynamic threshold and
     * staying in the heap. Two arenas: the metrics thread needs no more. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_ARENA_MAX, 2);
    config_defaults(&a.cfg);
    ret = config_parse(&a.cfg, argc, argv);
    if (ret != 0) {
        config_free(&a.cfg);
        return ret > 0 ? 0 : 2;
    }
    if (log_parse_level(a.cfg.log_level, &lvl) != 0) {
        fprintf(stderr, "stoke-agent: --log-level must be error, warn, info or debug\n");
        config_free(&a.cfg);
        return 2;
    }
    log_set_level(lvl);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    ret = setup(&a);
    if (ret != 0) {
        teardown(&a);
        return 1;
    }
    if (a.cfg.no_sampling) {
        /* A stateless receiver: the receiver's thread writes; this one
         * flushes on time and waits for the end. */
        uint64_t end = a.cfg.duration_s
                           ? now_ns(CLOCK_MONOTONIC) + (uint64_t)a.cfg.duration_s * 1000000000ull
                           : UINT64_MAX;
        log_info("not sampling: receiving only");
        sleep_until(&a, end);
        teardown(&a);
        return 0;
    }
    sampler_get_stats(a.sampler, &a.m.sampler);
    log_info("sampling %u CPUs at %u Hz, %u s windows, user stacks by %s%s%s", a.m.sampler.cpus,
             a.cfg.frequency, a.cfg.window_s,
             a.m.sampler.tables ? "unwind tables" : "frame pointers",
             a.cfg.output_dir ? ", writing to " : "", a.cfg.output_dir ? a.cfg.output_dir : "");

    uint64_t mono0 = now_ns(CLOCK_MONOTONIC);
    uint64_t end = a.cfg.duration_s ? mono0 + (uint64_t)a.cfg.duration_s * 1000000000ull : 0;
    a.window_start_ns = now_ns(CLOCK_REALTIME);
    uint64_t window_deadline = mono0 + (uint64_t)a.cfg.window_s * 1000000000ull;
    while (!stop_requested) {
        uint64_t deadline = window_deadline;
        if (end && end < deadline)
            deadline = end;
        sleep_until(&a, deadline);
        uint64_t wall = now_ns(CLOCK_REALTIME);
        if (drain_window(&a, wall) != 0)
            log_error("drain failed; continuing");
        a.window_start_ns = wall;
        window_deadline += (uint64_t)a.cfg.window_s * 1000000000ull;
        if (end && now_ns(CLOCK_MONOTONIC) >= end)
            break;
    }
    if (a.top)
        top_print(a.top, stdout, (size_t)a.cfg.top, a.period_ns);
    self_usage(&a);
    const struct sampler_stats *ss = &a.m.sampler;
    const struct sym_stats *sy = &a.m.sym;
    double steady_s =
        a.mono_after_first ? (double)(now_ns(CLOCK_MONOTONIC) - a.mono_after_first) / 1e9 : 0;
    double steady_pct = steady_s > 0 ? 100.0 * (a.m.cpu_seconds - a.cpu_after_first) / steady_s : 0;
    log_info("stopped after %llu windows: %llu samples drained in %llu rows (%.1f samples/row), "
             "%llu profiles written, user symbol cache hit rate %.1f%% (%llu lookups, %llu "
             "unresolved, %llu DWARF opens of which %llu reopens, %.0f ms), agent CPU %.2f s "
             "(steady state %.3f%% of a core), "
             "peak RSS %.1f MB, "
             "BPF %.0f ns/sample",
             (unsigned long long)a.m.windows, (unsigned long long)ss->drained,
             (unsigned long long)ss->rows, ss->rows ? (double)ss->drained / (double)ss->rows : 0,
             (unsigned long long)a.m.profiles_written,
             sy->lookups > sy->kernel_lookups
                 ? 100.0 * (double)sy->cache_hits / (double)(sy->lookups - sy->kernel_lookups)
                 : 0,
             (unsigned long long)sy->lookups, (unsigned long long)sy->unresolved,
             (unsigned long long)sy->dwarf_opens, (unsigned long long)sy->dwarf_reopens,
             (double)sy->dwarf_open_ns / 1e6, a.m.cpu_seconds, steady_pct,
             (double)a.m.peak_rss_bytes / 1e6,
             ss->bpf_run_cnt ? (double)ss->bpf_run_ns / (double)ss->bpf_run_cnt : 0);
    if (a.unwinder) {
        uint64_t walks = 0;
        for (unsigned i = 0; i < SAMPLER_WALK_ENDS; i++)
            walks += ss->walk_end[i];
        const struct unwinder_stats *us = &a.m.unwind;
        log_info("unwinding: %.1f user frames per walk (%llu by tables, %llu by frame pointers), "
                 "%.1f%% of walks reached the entry, %.1f%% not loaded yet; %llu tables "
                 "(%.1f MB in BPF maps) for %llu processes, %llu binaries without one, %.0f ms "
                 "to build; %llu samples under a lost-stack frame",
                 walks ? (double)ss->frames / (double)walks : 0,
                 (unsigned long long)ss->frames_table, (unsigned long long)ss->frames_fp,
                 walks ? 100.0 * (double)ss->walk_end[STOKE_END_ENTRY] / (double)walks : 0,
                 walks ? 100.0 * (double)ss->walk_end[STOKE_END_NO_PROC] / (double)walks : 0,
                 (unsigned long long)us->tables_live, (double)us->table_bytes / 1e6,
                 (unsigned long long)us->procs_tracked, (unsigned long long)us->tables_failed,
                 (double)us->build_ns / 1e6, (unsigned long long)a.m.samples_lost_stack);
    }
    teardown(&a);
    return 0;
}
