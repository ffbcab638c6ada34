/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procinfo — see procinfo.h.
 *
 * All files of one process are read through one directory fd on
 * /proc/PID: if the pid dies and is reused midway, openat() on the old fd
 * fails (ESRCH) instead of silently mixing two processes' data.
 *
 * The cache is an open-addressing table (linear probing, backward-shift
 * deletion) of pointers to heap entries, so a proc_info stays put while the
 * table grows. An entry replaced because its pid was reused is parked on a
 * retired list until the next sweep, keeping pointers handed out during the
 * current window valid.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/procinfo.h"
#include "agent/kubelet.h"
#include "common/file.h"
#include "common/hex.h"
#include "symbolizer/symbolizer.h"

#define PF_KTHREAD 0x00200000u

#define STAT_MAX    4096
#define CGROUP_MAX  (16 * 1024)
#define ENVIRON_MAX (64 * 1024)
#define SERVICE_MAX 255 /* longer names are cut: they are label values */

/* ---- parsers ------------------------------------------------------------ */

int procinfo_parse_stat_ex(const char *buf, size_t len, char comm[17], uint64_t *start_time,
                           uint64_t *flags)
{
    const char *open_p, *close_p = NULL, *p, *end;
    uint64_t fields[20]; /* fields 3..22; only numeric ones are kept */
    size_t clen;
    int idx;

    if (!buf)
        return -EINVAL;
    end = buf + len;
    open_p = memchr(buf, '(', len);
    if (!open_p)
        return -EINVAL;
    /* comm may contain ')' itself: the last one closes it. */
    for (p = end; p > open_p;) {
        p--;
        if (*p == ')') {
            close_p = p;
            break;
        }
    }
    if (!close_p)
        return -EINVAL;
    clen = (size_t)(close_p - open_p - 1);
    if (clen > 16)
        clen = 16;
    memcpy(comm, open_p + 1, clen);
    comm[clen] = '\0';

    /* Fields after comm: " S ppid pgrp ..." — token 0 is field 3 (state). */
    p = close_p + 1;
    for (idx = 0; idx < 20; idx++) {
        uint64_t v = 0;
        bool digits = false;

        if (p >= end || *p != ' ')
            return -EINVAL;
        p++;
        if (idx == 0) {
            /* state: one letter */
            if (p >= end || *p == ' ')
                return -EINVAL;
            while (p < end && *p != ' ')
                p++;
            continue;
        }
        if (p < end && *p == '-') /* tty_nr, priority, nice may be negative */
            p++;
        while (p < end && *p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p - '0');
            if (v > (UINT64_MAX - d) / 10)
                return -EINVAL;
            v = v * 10 + d;
            digits = true;
            p++;
        }
        if (!digits || (p < end && *p != ' ' && *p != '\n'))
            return -EINVAL;
        fields[idx] = v;
    }
    if (start_time)
        *start_time = fields[19]; /* field 22 */
    if (flags)
        *flags = fields[6]; /* field 9 */
    return 0;
}

int procinfo_parse_stat(const char *buf, size_t len, char comm[17], uint64_t *start_time)
{
    return procinfo_parse_stat_ex(buf, len, comm, start_time, NULL);
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_hex(s[i]))
            return false;
    return true;
}

static bool has_prefix(const char *s, size_t n, const char *pfx)
{
    size_t pl = strlen(pfx);
    return n >= pl && memcmp(s, pfx, pl) == 0;
}

static bool has_suffix(const char *s, size_t n, const char *sfx)
{
    size_t sl = strlen(sfx);
    return n >= sl && memcmp(s + n - sl, sfx, sl) == 0;
}

static char *lower_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[n] = '\0';
    return d;
}

/*
 * A path component naming a container: the bare id (cgroupfs drivers:
 * /docker/<id>, /kubepods/.../pod<uid>/<id>) or "<runtime>-<id>.scope"
 * (systemd drivers). conmon scopes belong to the runtime, not the container.
 */
static bool component_container_id(const char *s, size_t n, const char **id)
{
    static const char *const prefixes[] = {"docker-", "cri-containerd-", "crio-", "libpod-",
                                           "containerd-"};

    if (n == 64 && all_hex(s, 64)) {
        *id = s;
        return true;
    }
    if (!has_suffix(s, n, ".scope"))
        return false;
    n -= strlen(".scope");
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i]);
        if (has_prefix(s, n, prefixes[i]) && n - pl == 64 && all_hex(s + pl, 64)) {
            *id = s + pl;
            return true;
        }
    }
    return false;
}

/* "pod<uid>" or "kubepods[-<qos>]-pod<uid_with_underscores>.slice".
 * Returns 1 and a malloc'd uid in *out, 0 when not a pod, or -ENOMEM. */
static int component_pod_uid(const char *s, size_t n, char **out)
{
    const char *u;
    size_t ul;

    if (has_suffix(s, n, ".slice")) {
        n -= strlen(".slice");
        const char *p = NULL;
        for (size_t i = 0; i + 4 <= n; i++)
            if (memcmp(s + i, "-pod", 4) == 0)
                p = s + i + 1;
        if (!p || !has_prefix(s, n, "kubepods"))
            return 0;
        n -= (size_t)(p - s);
        s = p;
    }
    if (!has_prefix(s, n, "pod"))
        return 0;
    u = s + 3;
    ul = n - 3;
    if (ul == 32 && all_hex(u, 32)) {
        /* static pods: the uid is a config hash without dashes */
    } else if (ul == 36) {
        for (size_t i = 0; i < 36; i++) {
            bool sep = i == 8 || i == 13 || i == 18 || i == 23;
            if (sep ? (u[i] != '-' && u[i] != '_') : !is_hex(u[i]))
                return 0;
        }
    } else {
        return 0;
    }
    *out = lower_dup(u, ul);
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < ul; i++)
        if ((*out)[i] == '_')
            (*out)[i] = '-';
    return 1;
}

struct cgroup_found {
    const char *cid; /* points into the buffer; 64 chars */
    char *pod;
    const char *unit;
    size_t unit_len;
};

/* Walks the components of one path; later (deeper) matches win. */
static int scan_path(const char *path, size_t n, struct cgroup_found *f, bool want_unit)
{
    size_t i = 0;

    while (i < n) {
        while (i < n && path[i] == '/')
            i++;
        size_t start = i;
        while (i < n && path[i] != '/')
            i++;
        const char *c = path + start;
        size_t cl = i - start;
        const char *id;
        if (cl == 0)
            continue;
        if (component_container_id(c, cl, &id))
            f->cid = id;
        char *pod = NULL;
        int rc = component_pod_uid(c, cl, &pod);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            free(f->pod);
            f->pod = pod;
        }
        if (want_unit && cl > strlen(".service") && has_suffix(c, cl, ".service")) {
            f->unit = c;
            f->unit_len = cl;
        }
    }
    return 0;
}

/* Priority of a cgroup line's path for the "cgroup" field and unit search. */
enum { PRIO_NONE, PRIO_CPU, PRIO_SYSTEMD, PRIO_V2 };

int procinfo_parse_cgroup(const char *buf, size_t len, char **cgroup_path, char **container_id,
                          char **pod_uid, char **systemd_unit)
{
    struct cgroup_found f = {0};
    const char *best = NULL, *end, *line = buf;
    size_t best_len = 0;
    int best_prio = PRIO_NONE, nlines = 0, ret = 0;

    *cgroup_path = *container_id = *pod_uid = *systemd_unit = NULL;
    if (!buf)
        return -EINVAL;
    end = buf + len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        const char *c1 = memchr(line, ':', (size_t)(le - line));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(le - c1 - 1)) : NULL;
        const char *next = nl ? nl + 1 : end;

        if (!c2 || c1 == line || c2 + 1 >= le || c2[1] != '/' ||
            memchr(line, '\0', (size_t)(le - line))) {
            line = next;
            continue;
        }
        bool numeric = true;
        for (const char *p = line; p < c1; p++)
            if (*p < '0' || *p > '9')
                numeric = false;
        if (!numeric) {
            line = next;
            continue;
        }
        nlines++;
        const char *ctl = c1 + 1, *path = c2 + 1;
        size_t ctl_len = (size_t)(c2 - ctl), path_len = (size_t)(le - path);
        int prio = PRIO_NONE;
        if (ctl_len == 0 && c1 - line == 1 && line[0] == '0')
            prio = PRIO_V2;
        else if (ctl_len == strlen("name=systemd") && !memcmp(ctl, "name=systemd", ctl_len))
            prio = PRIO_SYSTEMD;
        else if (memmem(ctl, ctl_len, "cpu", 3))
            prio = PRIO_CPU;
        if (prio > best_prio) {
            best = path;
            best_len = path_len;
            best_prio = prio;
        }
        /* Container ids and pod uids: from any controller, since on v1 or
         * hybrid hosts the runtime may only have set some hierarchies. */
        if (!f.cid || !f.pod) {
            struct cgroup_found g = {0};
            ret = scan_path(path, path_len, &g, false);
            if (ret < 0) {
                free(g.pod);
                goto out;
            }
            if (!f.cid)
                f.cid = g.cid;
            if (!f.pod)
                f.pod = g.pod;
            else
                free(g.pod);
        }
        line = next;
    }
    if (nlines == 0)
        return -EINVAL;
    if (best && best_prio >= PRIO_SYSTEMD) {
        struct cgroup_found g = {0};
        ret = scan_path(best, best_len, &g, true);
        free(g.pod);
        if (ret < 0)
            goto out;
        f.unit = g.unit;
        f.unit_len = g.unit_len;
        /* The v2/systemd path is authoritative where it names a container. */
        if (g.cid)
            f.cid = g.cid;
    }
    if (best && (*cgroup_path = strndup(best, best_len)) == NULL)
        goto nomem;
    if (f.cid && (*container_id = lower_dup(f.cid, 64)) == NULL)
        goto nomem;
    if (f.unit && (*systemd_unit = strndup(f.unit, f.unit_len)) == NULL)
        goto nomem;
    *pod_uid = f.pod;
    return 0;
nomem:
    ret = -ENOMEM;
out:
    free(f.pod);
    free(*cgroup_path);
    free(*container_id);
    free(*systemd_unit);
    *cgroup_path = *container_id = *pod_uid = *systemd_unit = NULL;
    return ret;
}

/* Copies [s, s+n) trimmed of spaces/tabs, optionally %XX-decoded, with
 * control bytes made '_' (label values must be printable) and capped.
 * Returns NULL when empty or out of memory. */
static char *clean_value(const char *s, size_t n, bool percent)
{
    char *out, *o;

    while (n && (s[0] == ' ' || s[0] == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    out = malloc(n + 1);
    if (!out)
        return NULL;
    o = out;
    for (size_t i = 0; i < n && (size_t)(o - out) < SERVICE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (percent && c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (unsigned char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        *o++ = (c < 0x20 || c == 0x7f) ? '_' : (char)c;
    }
    *o = '\0';
    /* A decoded value may be all spaces ("%20"). */
    while (o > out && o[-1] == ' ')
        *--o = '\0';
    if (out[0] == '\0') {
        free(out);
        return NULL;
    }
    return out;
}

/* service.name from "k1=v1,k2=v2" (values percent-encoded). */
static char *service_from_resource_attrs(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t start = i;
        while (i < n && s[i] != ',')
            i++;
        const char *kv = s + start;
        size_t kvl = i - start;
        i++; /* skip ',' */
        const char *eq = memchr(kv, '=', kvl);
        if (!eq)
            continue;
        const char *k = kv;
        size_t kl = (size_t)(eq - kv);
        while (kl && (*k == ' ' || *k == '\t'))
            k++, kl--;
        while (kl && (k[kl - 1] == ' ' || k[kl - 1] == '\t'))
            kl--;
        if (kl != strlen("service.name") || memcmp(k, "service.name", kl) != 0)
            continue;
        char *v = clean_value(eq + 1, kvl - (size_t)(eq - kv) - 1, true);
        if (v)
            return v;
    }
    return NULL;
}

char *procinfo_service_from_environ(const char *buf, size_t len, const char **source)
{
    /* First occurrence of each variable, as getenv() would see it. */
    const char *otel = NULL, *pyro = NULL, *attrs = NULL;
    size_t otel_len = 0, pyro_len = 0, attrs_len = 0;
    size_t i = 0;
    char *name;

    if (source)
        *source = NULL;
    if (!buf)
        return NULL;
    while (i < len) {
        const char *e = buf + i;
        const char *nul = memchr(e, '\0', len - i);
        size_t el = nul ? (size_t)(nul - e) : len - i;
        i += el + 1;
#define MATCH(VAR, ptr, plen)                                                                      \
    if (!(ptr) && el >= sizeof(VAR) && memcmp(e, VAR "=", sizeof(VAR)) == 0) {                     \
        (ptr) = e + sizeof(VAR);                                                                   \
        (plen) = el - sizeof(VAR);                                                                 \
        continue;                                                                                  \
    }
        MATCH("OTEL_SERVICE_NAME", otel, otel_len)
        MATCH("PYROSCOPE_APPLICATION_NAME", pyro, pyro_len)
        MATCH("OTEL_RESOURCE_ATTRIBUTES", attrs, attrs_len)
#undef MATCH
    }
    if (otel && (name = clean_value(otel, otel_len, false))) {
        if (source)
            *source = "OTEL_SERVICE_NAME";
        return name;
    }
    if (pyro) {
        /* Pyroscope names may carry tags: "app.cpu{env=prod}" — the name is
         * what precedes them. */
        const char *brace = memchr(pyro, '{', pyro_len);
        if ((name = clean_value(pyro, brace ? (size_t)(brace - pyro) : pyro_len, false))) {
            if (source)
                *source = "PYROSCOPE_APPLICATION_NAME";
            return name;
        }
    }
    if (attrs && (name = service_from_resource_attrs(attrs, attrs_len))) {
        if (source)
            *source = "OTEL_RESOURCE_ATTRIBUTES";
        return name;
    }
    return NULL;
}

/* ---- the executable's name ---------------------------------------------- */

#define DELETED     " (deleted)"
#define CMDLINE_MAX 4096 /* argv[0] is all that is read from it */

/* Length of @link without the " (deleted)" the kernel appends to the path
 * of an unlinked file. */
static size_t undeleted_len(const char *link, bool *deleted)
{
    size_t n = strlen(link), dl = strlen(DELETED);

    *deleted = n > dl && memcmp(link + n - dl, DELETED, dl) == 0;
    return *deleted ? n - dl : n;
}

/*
 * Whether @link (an exe link target) names a file a path reaches, and where
 * its last component starts. Not files: a memfd ("/memfd:NAME (deleted)",
 * NAME may hold '/'), an O_TMPFILE never linked ("/tmp/#12345 (deleted)"),
 * anything not absolute ("anon_inode:...", a path outside our root).
 */
static bool exe_link_file(const char *link, const char **base, size_t *base_len)
{
    bool deleted;
    size_t n = undeleted_len(link, &deleted);
    const char *slash = memrchr(link, '/', n);

    if (link[0] != '/' || has_prefix(link, n, "/memfd:"))
        return false;
    *base = slash + 1;
    *base_len = (size_t)(link + n - *base);
    if (*base_len == 0)
        return false;
    if (deleted && (*base)[0] == '#' && *base_len > 1) {
        for (size_t i = 1; i < *base_len; i++)
            if ((*base)[i] < '0' || (*base)[i] > '9')
                return true;
        return false;
    }
    return true;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

char *procinfo_exe_name(const char *link, const char *comm, const char *cmdline, size_t cmdline_len,
                        const char **source)
{
    const char *base;
    size_t base_len;
    char *name;

    if (link && exe_link_file(link, &base, &base_len)) {
        *source = "executable";
        return strndup(base, base_len);
    }
    /* fexecve() of a file that is not one: since Linux 6.14 the kernel names
     * the task after the fd's file ("memfd:sealed-91" for a memfd), before
     * that after the fd number ("3" for /dev/fd/3). Such a comm names the
     * fd, not the program: the program's own argv[0] does. */
    if (link && cmdline && (all_digits(comm) || (comm[0] && strstr(link, comm)))) {
        size_t al = strnlen(cmdline, cmdline_len);
        const char *slash = memrchr(cmdline, '/', al);
        const char *a = slash ? slash + 1 : cmdline;

        name = clean_value(a, al - (size_t)(a - cmdline), false);
        if (name) {
            *source = "cmdline";
            return name;
        }
    }
    *source = "comm";
    return strdup(comm);
}

/* ---- reading /proc ------------------------------------------------------ */

/*
 * Reads at most @cap bytes of @name under @dirfd into a malloc'd,
 * NUL-terminated buffer. *truncated tells whether the file had more.
 * NULL with errno on failure (ENOENT/ESRCH when the process is gone).
 */
static char *read_capped(int dirfd, const char *name, size_t cap, size_t *len, bool *truncated)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    size_t n = 0;
    char *buf;

    if (fd < 0)
        return NULL;
    buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    /* /proc files hand out data in pieces: read until EOF or the cap. */
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (truncated) {
        char c;
        *truncated = n == cap && read(fd, &c, 1) == 1;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int open_pid_dir(const char *root, uint32_t pid)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof(path), "%s/%u", root, pid) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Start time and flags of the process behind @dirfd. */
static int read_stat(int dirfd, char comm[17], uint64_t *start_time, uint64_t *flags)
{
    size_t len;
    char *buf = read_capped(dirfd, "stat", STAT_MAX, &len, NULL);
    int ret;

    if (!buf)
        return neg_errno();
    ret = procinfo_parse_stat_ex(buf, len, comm, start_time, flags);
    free(buf);
    return ret;
}

/* ---- the cache ---------------------------------------------------------- */

/* Windows an entry may go unused while its process lives (6 = a minute). */
#define PROC_IDLE_WINDOWS 6

/* Windows in which a process whose environment read empty is read again:
 * caught between execve() naming the task and setting up its new
 * environment, it would otherwise keep its executable's name for good. */
#define EMPTY_ENV_RECHECKS 3

struct proc_entry {
    struct proc_info info; /* first: callers get &entry->info */
    struct proc_entry *next_retired;
    uint8_t recheck;   /* reads left while the environment reads empty */
    bool kube_found;   /* its pod was in the kubelet's list */
    uint64_t kube_gen; /* the list generation looked in */
};

struct proc_cache {
    char *root;
    char *host_name;
    struct proc_entry **slots; /* NULL = empty; power-of-two size */
    size_t cap, n;
    struct proc_entry *retired;
    uint64_t window;
    struct kubelet *kube; /* NULL: no pod metadata */
};

static void entry_free(struct proc_entry *e)
{
    if (!e)
        return;
    free(e->info.exe_path);
    free(e->info.exe_name);
    free(e->info.cgroup);
    free(e->info.container_id);
    free(e->info.pod_uid);
    free(e->info.systemd_unit);
    free(e->info.service_name);
    label_set_clear(&e->info.labels);
    free(e);
}

struct proc_cache *proc_cache_new(const char *proc_root, const char *host_name)
{
    struct proc_cache *c = calloc(1, sizeof(*c));
    char hn[256];

    if (!c)
        return NULL;
    if (!host_name) {
        if (gethostname(hn, sizeof(hn)) != 0)
            snprintf(hn, sizeof(hn), "unknown");
        hn[sizeof(hn) - 1] = '\0';
        host_name = hn;
    }
    c->root = strdup(proc_root ? proc_root : "/proc");
    c->host_name = strdup(host_name);
    c->cap = 256;
    c->slots = calloc(c->cap, sizeof(*c->slots));
    if (!c->root || !c->host_name || !c->slots) {
        proc_cache_free(c);
        return NULL;
    }
    return c;
}

void proc_cache_free(struct proc_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->slots && i < c->cap; i++)
        entry_free(c->slots[i]);
    while (c->retired) {
        struct proc_entry *e = c->retired;
        c->retired = e->next_retired;
        entry_free(e);
    }
    free(c->slots);
    free(c->root);
    free(c->host_name);
    free(c);
}

size_t proc_cache_size(const struct proc_cache *c)
{
    return c ? c->n : 0;
}

static size_t pid_hash(uint32_t pid, size_t cap)
{
    /* Fibonacci hashing: consecutive pids spread across the table. */
    return (size_t)(((uint64_t)pid * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

static size_t slot_of(const struct proc_cache *c, uint32_t pid)
{
    size_t i = pid_hash(pid, c->cap);

    while (c->slots[i] && c->slots[i]->info.pid != pid)
        i = (i + 1) & (c->cap - 1);
    return i;
}

static int grow(struct proc_cache *c)
{
    size_t ncap = c->cap * 2;
    struct proc_entry **ns = calloc(ncap, sizeof(*ns));
    struct proc_cache tmp = {.slots = ns, .cap = ncap};

    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i])
            ns[slot_of(&tmp, c->slots[i]->info.pid)] = c->slots[i];
    free(c->slots);
    c->slots = ns;
    c->cap = ncap;
    return 0;
}

/* Backward-shift deletion keeps probe chains unbroken without tombstones. */
static void remove_slot(struct proc_cache *c, size_t i)
{
    size_t j = i;

    c->slots[i] = NULL;
    c->n--;
    for (;;) {
        j = (j + 1) & (c->cap - 1);
        if (!c->slots[j])
            return;
        size_t home = pid_hash(c->slots[j]->info.pid, c->cap);
        /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            c->slots[i] = c->slots[j];
            c->slots[j] = NULL;
            i = j;
        }
    }
}

static int set_labels(struct proc_info *pi, const char *host_name)
{
    struct label_set *ls = &pi->labels;
    int ret = 0;

    ret |= label_set_put(ls, "service_name", pi->service_name);
    ret |= label_set_put(ls, "host_name", host_name);
    ret |= label_set_put(ls, "process_executable_name", pi->exe_name);
    if (pi->container_id)
        ret |= label_set_put(ls, "container_id", pi->container_id);
    if (pi->pod_uid)
        ret |= label_set_put(ls, "pod_uid", pi->pod_uid);
    if (pi->systemd_unit)
        ret |= label_set_put(ls, "systemd_unit", pi->systemd_unit);
    return ret ? -ENOMEM : 0;
}

/* Builds a fresh entry from /proc/PID. NULL with errno when the process is
 * gone (ENOENT/ESRCH), unreadable, or out of memory. */
static struct proc_entry *load(struct proc_cache *c, uint32_t pid)
{
    struct proc_entry *e = NULL;
    struct proc_info *pi;
    char path[PATH_MAX], link[PATH_MAX];
    char *buf = NULL;
    size_t len;
    uint64_t flags = 0;
    ssize_t ll;
    bool truncated;
    const char *exe_source;
    int dirfd, ret, err = ENOMEM;

    dirfd = open_pid_dir(c->root, pid);
    if (dirfd < 0)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        goto fail;
    pi = &e->info;
    pi->pid = pid;
    pi->last_seen = c->window;
    ret = read_stat(dirfd, pi->comm, &pi->start_time, &flags);
    if (ret < 0) {
        err = -ret;
        goto fail;
    }
    pi->kernel_thread = (flags & PF_KTHREAD) != 0;

    if (pi->kernel_thread) {
        /* Kernel threads have no executable, environment or useful cgroup:
         * they all go into one "kernel" service, told apart by comm. */
        pi->exe_name = strdup(pi->comm);
        pi->service_name = strdup("kernel");
        pi->service_source = "kernel_thread";
        if (!pi->exe_name || !pi->service_name)
            goto fail;
        goto labels;
    }

    ll = readlinkat(dirfd, "exe", link, sizeof(link) - 1);
    if (ll > 0) {
        const char *base;
        size_t base_len;
        bool deleted;

        link[ll] = '\0';
        pi->exe_path = strndup(link, undeleted_len(link, &deleted));
        if (!pi->exe_path)
            goto fail;
        /* Through /proc/PID/exe, not exe_path: it reaches binaries inside
         * other mount namespaces and binaries deleted since. */
        if (snprintf(path, sizeof(path), "%s/%u/exe", c->root, pid) < (int)sizeof(path))
            sym_read_build_id(path, pi->build_id);
        /* argv[0] may name an executable that is not a file (memfd). */
        if (!exe_link_file(link, &base, &base_len)) {
            buf = read_capped(dirfd, "cmdline", CMDLINE_MAX, &len, NULL);
            if (!buf && (errno == ESRCH || errno == ENOMEM)) {
                err = errno;
                goto fail;
            }
        }
    } else if (errno == ESRCH) {
        err = ESRCH;
        goto fail;
    }
    /* Otherwise (zombie, no permission): comm names it. */
    pi->exe_name =
        procinfo_exe_name(ll > 0 ? link : NULL, pi->comm, buf, buf ? len : 0, &exe_source);
    free(buf);
    buf = NULL;
    if (!pi->exe_name)
        goto fail;

    buf = read_capped(dirfd, "cgroup", CGROUP_MAX, &len, NULL);
    if (buf) {
        ret = procinfo_parse_cgroup(buf, len, &pi->cgroup, &pi->container_id, &pi->pod_uid,
                                    &pi->systemd_unit);
        free(buf);
        buf = NULL;
        if (ret == -ENOMEM)
            goto fail;
    } else if (errno == ESRCH || errno == ENOMEM) {
        err = errno;
        goto fail;
    }

    buf = read_capped(dirfd, "environ", ENVIRON_MAX, &len, &truncated);
    if (buf) {
        /* An entry cut by the cap could be a cut service name: drop it. */
        if (truncated) {
            while (len && buf[len - 1] != '\0')
                len--;
        }
        pi->service_name = procinfo_service_from_environ(buf, len, &pi->service_source);
        e->recheck = len == 0 ? EMPTY_ENV_RECHECKS : 0;
        free(buf);
        buf = NULL;
    } else if (errno == ESRCH || errno == ENOMEM) {
        err = errno;
        goto fail;
    }

    /* Rule 3: the pod's app label, from the kubelet's list. */
    if (c->kube && (pi->container_id || pi->pod_uid)) {
        char *ks = NULL;
        e->kube_gen = kubelet_generation(c->kube);
        ret = kubelet_lookup(c->kube, pi->container_id, pi->pod_uid, &pi->labels, &ks);
        if (ret < 0)
            goto fail;
        e->kube_found = ret > 0;
        if (!pi->service_name && ks) {
            pi->service_name = ks;
            pi->service_source = "kubernetes_label";
        } else {
            free(ks);
        }
    }
    if (!pi->service_name && pi->systemd_unit) {
        size_t ul = strlen(pi->systemd_unit) - strlen(".service");
        pi->service_name = strndup(pi->systemd_unit, ul);
        pi->service_source = "systemd_unit";
    } else if (!pi->service_name) {
        pi->service_name = strdup(pi->exe_name[0] ? pi->exe_name : "unknown");
        pi->service_source = exe_source;
    }
    if (!pi->service_name)
        goto fail;

labels:
    if (set_labels(pi, c->host_name) < 0)
        goto fail;
    close(dirfd);
    return e;
fail:
    free(buf);
    entry_free(e);
    close(dirfd);
    errno = err;
    return NULL;
}

/* Reads only the start time: the cheap liveness and PID-reuse check. */
static int current_stat(struct proc_cache *c, uint32_t pid, uint64_t *start_time, char comm[17])
{
    int dirfd = open_pid_dir(c->root, pid);
    int ret;

    if (dirfd < 0)
        return neg_errno();
    ret = read_stat(dirfd, comm, start_time, NULL);
    close(dirfd);
    return ret;
}

void proc_cache_set_kubelet(struct proc_cache *c, struct kubelet *k)
{
    c->kube = k;
}

/* A process in a container whose pod was not in the kubelet's list is
 * looked up again once a newer list arrives (a pod just started). */
static bool kube_stale(struct proc_cache *c, const struct proc_entry *e)
{
    return c->kube && !e->kube_found && (e->info.container_id || e->info.pod_uid) &&
           e->kube_gen != kubelet_generation(c->kube);
}

const struct proc_info *proc_cache_get(struct proc_cache *c, uint32_t pid)
{
    struct proc_entry *e, *ne;
    uint64_t st;
    char comm[17];
    size_t i;

    if (!c) {
        errno = EINVAL;
        return NULL;
    }
    i = slot_of(c, pid);
    e = c->slots[i];
    /* Checked once per window: a pid reused within a window is attributed to
     * the first process for the rest of that window. */
    if (e && e->info.last_seen == c->window)
        return &e->info;
    if (e) {
        int rc = current_stat(c, pid, &st, comm);
        if (rc < 0 || (st == e->info.start_time && strcmp(comm, e->info.comm) == 0 &&
                       e->recheck == 0 && !kube_stale(c, e))) {
            /* Unchanged, or exited: samples drained after the exit still
             * belong to the process we knew. Another start time is another
             * process; another comm, the same one after an execve() (a
             * shell's or a launcher's `exec`): both are read again. */
            e->info.last_seen = c->window;
            return &e->info;
        }
    }
    ne = load(c, pid);
    if (ne && e && ne->recheck && ne->info.start_time == e->info.start_time &&
        strcmp(ne->info.comm, e->info.comm) == 0)
        ne->recheck = e->recheck - 1; /* still empty: fewer reads left */
    if (!ne) {
        if (e) {
            e->info.last_seen = c->window;
            return &e->info;
        }
        return NULL;
    }
    if (e) {
        e->next_retired = c->retired;
        c->retired = e;
        c->slots[i] = ne;
        return &ne->info;
    }
    if ((c->n + 1) * 2 > c->cap) {
        if (grow(c) < 0) {
            entry_free(ne);
            errno = ENOMEM;
            return NULL;
        }
        i = slot_of(c, pid);
    }
    c->slots[i] = ne;
    c->n++;
    return &ne->info;
}

size_t proc_cache_sweep(struct proc_cache *c, uint64_t window)
{
    size_t freed = 0;
    uint64_t st;
    char comm[17];

    if (!c)
        return 0;
    c->window = window;
    while (c->retired) {
        struct proc_entry *e = c->retired;
        c->retired = e->next_retired;
        entry_free(e);
        freed++;
    }
    for (size_t i = 0; i < c->cap;) {
        struct proc_entry *e = c->slots[i];
        if (!e || e->info.last_seen + 2 >= window) {
            i++;
            continue;
        }
        /* A live process idle for PROC_IDLE_WINDOWS goes too: a host with
         * thousands of sleeping processes, each sampled once when it
         * started, would otherwise keep them all. Coming back costs one
         * read of its /proc files. */
        if (e->info.last_seen + PROC_IDLE_WINDOWS >= window &&
            current_stat(c, e->info.pid, &st, comm) == 0 && st == e->info.start_time) {
            i++;
            continue;
        }
        remove_slot(c, i);
        entry_free(e);
        freed++;
        /* Slot i may now hold a shifted entry: look at it again. */
    }
    return freed;
}
