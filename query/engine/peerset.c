/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/peerset.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SELF_MAX 64

enum state { ST_NONE, ST_PEERS, ST_EMPTY, ST_FAILING };

struct peerset {
    struct peerset_opts o;
    char name[256];
    unsigned port;
    char self[SELF_MAX][64];
    size_t nself;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping, started;
    pthread_t tid;
    /* under lock */
    char list[PEERSET_MAX][80];
    size_t n;
    struct peerset_stats st;
    enum state state;
    size_t state_n;
};

/* getaddrinfo: every A and AAAA record of @name, numeric, deduplicated. */
static int resolve_gai(const char *name, char addrs[][64], size_t max, void *ctx)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    size_t n = 0;
    int rc;

    (void)ctx;
    rc = getaddrinfo(name, NULL, &hints, &ai);
    if (rc)
        return rc == EAI_NONAME
#ifdef EAI_NODATA
                       || rc == EAI_NODATA
#endif
                   ? -ENOENT
                   : rc == EAI_MEMORY ? -ENOMEM : -EAGAIN;
    for (struct addrinfo *p = ai; p && n < max; p = p->ai_next) {
        char host[64];
        if (getnameinfo(p->ai_addr, p->ai_addrlen, host, sizeof(host), NULL, 0, NI_NUMERICHOST))
            continue;
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(addrs[i], host) == 0;
        if (!dup)
            snprintf(addrs[n++], 64, "%s", host);
    }
    freeaddrinfo(ai);
    return (int)n;
}

static void add_self(struct peerset *ps, const char *a)
{
    if (!a || !*a || ps->nself == SELF_MAX)
        return;
    for (size_t i = 0; i < ps->nself; i++)
        if (strcmp(ps->self[i], a) == 0)
            return;
    snprintf(ps->self[ps->nself++], 64, "%s", a);
}

static void add_local_addrs(struct peerset *ps)
{
    struct ifaddrs *ifs = NULL;
    char host[256], addrs[16][64];

    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *p = ifs; p; p = p->ifa_next) {
            if (!p->ifa_addr ||
                (p->ifa_addr->sa_family != AF_INET && p->ifa_addr->sa_family != AF_INET6))
                continue;
            socklen_t l = p->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                            : sizeof(struct sockaddr_in6);
            char a[64];
            if (getnameinfo(p->ifa_addr, l, a, sizeof(a), NULL, 0, NI_NUMERICHOST) == 0)
                add_self(ps, a);
        }
        freeifaddrs(ifs);
    }
    /* A pod's host name is its name, resolving to its IP. */
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        int n = resolve_gai(host, addrs, 16, NULL);
        for (int i = 0; i < n; i++)
            add_self(ps, addrs[i]);
    }
}

struct peerset *peerset_new(const struct peerset_opts *o, int *err)
{
    struct peerset *ps = calloc(1, sizeof(*ps));

    *err = 0;
    if (!ps) {
        *err = -ENOMEM;
        return NULL;
    }
    ps->o = *o;
    if (!ps->o.refresh_ms)
        ps->o.refresh_ms = 10000;
    if (o->npeers > PEERSET_MAX) {
        free(ps);
        *err = -EINVAL;
        return NULL;
    }
    if (o->dns) {
        const char *colon = strrchr(o->dns, ':');
        size_t nl = colon ? (size_t)(colon - o->dns) : strlen(o->dns);
        unsigned long port = o->default_port;
        if (colon) {
            char *end;
            errno = 0;
            port = strtoul(colon + 1, &end, 10);
            if (errno || end == colon + 1 || *end)
                port = 0;
        }
        if (nl == 0 || nl >= sizeof(ps->name) || port == 0 || port > 65535 ||
            memchr(o->dns, '/', nl)) {
            free(ps);
            *err = -EINVAL;
            return NULL;
        }
        memcpy(ps->name, o->dns, nl);
        ps->port = (unsigned)port;
        for (size_t i = 0; i < o->nself; i++)
            add_self(ps, o->self[i]);
        if (!o->no_local_addrs)
            add_local_addrs(ps);
    }
    pthread_mutex_init(&ps->lock, NULL);
    pthread_cond_init(&ps->wake, NULL);
    for (size_t i = 0; i < o->npeers; i++)
        snprintf(ps->list[ps->n++], sizeof(ps->list[0]), "%s", o->peers[i]);
    ps->st.peers = ps->n;
    if (o->dns)
        peerset_refresh(ps);
    return ps;
}

static bool is_self(const struct peerset *ps, const char *a)
{
    for (size_t i = 0; i < ps->nself; i++)
        if (strcmp(ps->self[i], a) == 0)
            return true;
    return false;
}

static int cmp_addr(const void *a, const void *b)
{
    return strcmp(a, b);
}

int peerset_refresh(struct peerset *ps)
{
    char addrs[PEERSET_MAX][64];
    char found[PEERSET_MAX][80];
    size_t nf = 0;
    int rc;

    if (!ps->name[0])
        return 0;
    rc = (ps->o.resolve ? ps->o.resolve : resolve_gai)(ps->name, addrs, PEERSET_MAX,
                                                       ps->o.resolve_ctx);
    for (int i = 0; i < rc && i < PEERSET_MAX; i++) {
        addrs[i][63] = '\0';
        if (!addrs[i][0] || is_self(ps, addrs[i]))
            continue;
        snprintf(found[nf++], sizeof(found[0]), strchr(addrs[i], ':') ? "[%s]:%u" : "%s:%u",
                 addrs[i], ps->port);
    }
    /* Sorted: the same set of workers gives the same list, in any order the
     * server answers. */
    qsort(found, nf, sizeof(found[0]), cmp_addr);

    pthread_mutex_lock(&ps->lock);
    ps->st.lookups++;
    enum state ns = rc < 0 ? ST_FAILING : nf ? ST_PEERS : ST_EMPTY;
    if (rc < 0)
        ps->st.failures++;
    else if (!nf)
        ps->st.empty++;
    /* static peers first, then the resolved ones not already listed */
    ps->n = ps->o.npeers;
    for (size_t i = 0; i < nf && ps->n < PEERSET_MAX; i++) {
        bool dup = false;
        for (size_t j = 0; j < ps->n && !dup; j++)
            dup = strcmp(ps->list[j], found[i]) == 0;
        if (!dup)
            memcpy(ps->list[ps->n++], found[i], sizeof(found[0]));
    }
    ps->st.peers = ps->n;
    bool changed = ns != ps->state || (ns == ST_PEERS && nf != ps->state_n);
    ps->state = ns;
    ps->state_n = nf;
    pthread_mutex_unlock(&ps->lock);

    if (changed) {
        if (ns == ST_FAILING)
            fprintf(stderr,
                    "stoke-query: --peers-dns %s: lookup failing (%s): answering with %zu static "
                    "peers\n",
                    ps->name, strerror(-rc), ps->o.npeers);
        else if (ns == ST_EMPTY)
            fprintf(stderr,
                    "stoke-query: --peers-dns %s: no other worker found: answering with %zu static "
                    "peers\n",
                    ps->name, ps->o.npeers);
        else
            fprintf(stderr, "stoke-query: --peers-dns %s: %zu peers\n", ps->name, nf);
    }
    return rc < 0 ? rc : 0;
}

static void *refresh_main(void *arg)
{
    struct peerset *ps = arg;

    pthread_mutex_lock(&ps->lock);
    while (!ps->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ps->o.refresh_ms / 1000;
        ts.tv_nsec += (long)(ps->o.refresh_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!ps->stopping && pthread_cond_timedwait(&ps->wake, &ps->lock, &ts) == 0)
            ;
        if (ps->stopping)
            break;
        pthread_mutex_unlock(&ps->lock);
        peerset_refresh(ps);
        pthread_mutex_lock(&ps->lock);
    }
    pthread_mutex_unlock(&ps->lock);
    return NULL;
}

int peerset_start(struct peerset *ps)
{
    if (!ps->name[0] || ps->started)
        return 0;
    int rc = pthread_create(&ps->tid, NULL, refresh_main, ps);
    if (rc)
        return -rc;
    ps->started = true;
    return 0;
}

void peerset_free(struct peerset *ps)
{
    if (!ps)
        return;
    if (ps->started) {
        pthread_mutex_lock(&ps->lock);
        ps->stopping = true;
        pthread_cond_broadcast(&ps->wake);
        pthread_mutex_unlock(&ps->lock);
        pthread_join(ps->tid, NULL);
    }
    pthread_mutex_destroy(&ps->lock);
    pthread_cond_destroy(&ps->wake);
    free(ps);
}

int peerset_snapshot(struct peerset *ps, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&ps->lock);
    size_t bytes = ps->n * sizeof(char *);
    for (size_t i = 0; i < ps->n; i++)
        bytes += strlen(ps->list[i]) + 1;
    char **v = ps->n ? malloc(bytes) : NULL;
    if (ps->n && !v) {
        pthread_mutex_unlock(&ps->lock);
        return -ENOMEM;
    }
    char *s = (char *)(v + ps->n);
    for (size_t i = 0; i < ps->n; i++) {
        size_t l = strlen(ps->list[i]) + 1;
        memcpy(s, ps->list[i], l);
        v[i] = s;
        s += l;
    }
    *out = v;
    *n = ps->n;
    pthread_mutex_unlock(&ps->lock);
    return 0;
}

void peerset_stats(struct peerset *ps, struct peerset_stats *out)
{
    pthread_mutex_lock(&ps->lock);
    *out = ps->st;
    pthread_mutex_unlock(&ps->lock);
}
