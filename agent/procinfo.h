/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procinfo — what the agent knows about each sampled process.
 *
 * Owns: a cache of proc_info keyed by pid and guarded by the process start
 * time (PID reuse), filled from /proc/PID/{stat,comm,exe,cgroup,environ}:
 * executable path and build-id, cgroup path → container id → Kubernetes pod
 * uid, systemd unit, and the service name by the rules of DESIGN.md §3:
 *   1. OTEL_SERVICE_NAME, then PYROSCOPE_APPLICATION_NAME in the environment
 *   2. service.name in OTEL_RESOURCE_ATTRIBUTES
 *   3. Kubernetes label app.kubernetes.io/name (or app) + namespace:
 *      "<namespace>/<app>", from the kubelet's pod list when the agent has
 *      one (proc_cache_set_kubelet, agent/kubelet.h), which also adds the
 *      labels namespace, pod, container and pod_label_*. A process in a
 *      container its list does not know yet is read again when a newer
 *      list arrives.
 *   4. the systemd unit (without ".service")
 *   5. the executable name: the file's name when /proc/PID/exe is a file;
 *      otherwise (a memfd, an unlinked O_TMPFILE, no readable link) comm as
 *      perf and OpenTelemetry name processes, or argv[0] when comm is only
 *      the kernel's name for the fd that fexecve() ran (procinfo_exe_name)
 *
 * Every /proc read tolerates the process vanishing midway and files that
 * are truncated, oversized or full of garbage.
 *
 * Kernel threads (PF_KTHREAD in /proc/PID/stat) have no executable or
 * environment: all of them share service_name "kernel" (source
 * "kernel_thread") so they form one service instead of hundreds, and are
 * told apart by process_executable_name = comm ("kworker/0:1", "ksoftirqd/1").
 *
 * Cost: a cached pid costs one /proc/PID/stat read the first time it is
 * looked up in a window (the PID-reuse check), nothing after that; a pid
 * reused within one window keeps the first process's info until the next.
 * An execve() keeps pid and start time: a new comm in that read tells it,
 * and the process is read again (a shell's `exec java …`). A process whose
 * environment reads empty (caught between execve() naming it and setting up
 * its environment) is read again in the next few windows.
 * Not thread-safe.
 */
#ifndef STOKE_PROCINFO_H
#define STOKE_PROCINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/labels.h"

struct proc_info {
    uint32_t pid;
    uint64_t start_time; /* field 22 of /proc/PID/stat (clock ticks after boot) */
    char comm[17];
    char *exe_path; /* readlink of /proc/PID/exe, " (deleted)" removed; NULL for kernel threads */
    char *exe_name; /* basename of exe_path, or comm, or argv[0] (procinfo_exe_name) */
    char build_id[41];          /* of the executable; "" when unknown */
    char *cgroup;               /* the v2 ("0::") path, else the name=systemd path; NULL if none */
    char *container_id;         /* 64 hex digits (docker, containerd, cri-o, podman), or NULL */
    char *pod_uid;              /* Kubernetes pod uid (dashes restored), or NULL */
    char *systemd_unit;         /* e.g. "nginx.service", or NULL */
    char *service_name;         /* never NULL */
    const char *service_source; /* which rule named it: "OTEL_SERVICE_NAME",
                                   "PYROSCOPE_APPLICATION_NAME",
                                   "OTEL_RESOURCE_ATTRIBUTES",
                                   "kubernetes_label", "systemd_unit",
                                   "executable", "comm", "cmdline" (the last
                                   three: procinfo_exe_name) or "kernel_thread" */
    bool kernel_thread;
    struct label_set labels; /* service_name, host_name, process_executable_name,
                                container_id, pod_uid, systemd_unit (those known);
                                namespace, pod, container, pod_label_* (kubelet) */
    uint64_t last_seen;      /* window number of the last proc_cache_get */
};

struct proc_cache;

/* Allocates; @proc_root NULL = "/proc"; @host_name goes into every label set. */
struct proc_cache *proc_cache_new(const char *proc_root, const char *host_name);
void proc_cache_free(struct proc_cache *c);
/* Names processes in pods from @k's list (not owned; NULL = none). */
struct kubelet;
void proc_cache_set_kubelet(struct proc_cache *c, struct kubelet *k);

/*
 * Returns the info of @pid, reading /proc when not cached or when the cached
 * entry's start time differs from the process's current one (PID reuse).
 * Returns NULL when the process is gone and nothing is cached (errno set).
 * The pointer stays valid until proc_cache_sweep() removes the entry.
 */
const struct proc_info *proc_cache_get(struct proc_cache *c, uint32_t pid);

/* Marks the start of window @window; entries not used for 2 windows whose
 * process has exited are freed (last_seen + 2 < @window, and /proc/PID is
 * gone or has another start time), entries not used for 6 windows whatever
 * their process does (the cache holds what was sampled in the last minute,
 * not every process that ever ran), and entries replaced by PID reuse
 * during the previous window. Returns how many were freed. */
size_t proc_cache_sweep(struct proc_cache *c, uint64_t window);

size_t proc_cache_size(const struct proc_cache *c);

/* Parsers exposed for tests and fuzz targets. Each takes untrusted bytes. */

/* Extracts the service name from an environ block (NUL-separated; the last
 * entry may lack its NUL). Returns a malloc'd name and sets *source, or NULL.
 * Values are trimmed of spaces, cut at 255 bytes, control bytes become '_';
 * a Pyroscope tag suffix ("app.cpu{env=prod}") is dropped; empty values fall
 * through to the next rule. */
char *procinfo_service_from_environ(const char *buf, size_t len, const char **source);
/* Fills container_id / pod_uid / systemd_unit (malloc'd, or NULL) from the
 * contents of /proc/PID/cgroup. Returns 0 or -EINVAL. */
int procinfo_parse_cgroup(const char *buf, size_t len, char **cgroup_path, char **container_id,
                          char **pod_uid, char **systemd_unit);
/*
 * Names a process's executable. @link is the target of /proc/PID/exe (NULL
 * when unreadable), @comm the task's name, @cmdline the first @cmdline_len
 * bytes of /proc/PID/cmdline (may be NULL). A link to a file gives the
 * file's name, " (deleted)" aside ("executable"). A link to no file — a
 * memfd ("/memfd:NAME (deleted)"), an O_TMPFILE never linked ("/tmp/#123
 * (deleted)"), "anon_inode:..." — or no link gives comm ("comm"), except
 * when comm is what the kernel made of the fd fexecve() ran (the fd number,
 * or since Linux 6.14 a prefix of the file's name, e.g. "memfd:sealed-91"):
 * then the last component of argv[0] ("cmdline"), cleaned like a service
 * name, if there is one. Returns a malloc'd name (never NULL but on ENOMEM)
 * and sets *source.
 */
char *procinfo_exe_name(const char *link, const char *comm, const char *cmdline, size_t cmdline_len,
                        const char **source);
/* Parses /proc/PID/stat: comm and start time. 0 or -EINVAL. */
int procinfo_parse_stat(const char *buf, size_t len, char comm[17], uint64_t *start_time);
/* The same, also returning the task flags (field 9; PF_KTHREAD = 0x00200000).
 * Any of @start_time, @flags may be NULL. comm is cut at 16 bytes. */
int procinfo_parse_stat_ex(const char *buf, size_t len, char comm[17], uint64_t *start_time,
                           uint64_t *flags);

#endif
