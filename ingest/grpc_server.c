/* SPDX-License-Identifier: Apache-2.0 */
#include "ingest/grpc_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/listen.h"
#include "common/log.h"

#define TURN_BYTES (64u << 10) /* read, or queued for writing, per connection a turn */

struct gconn {
    int fd;
    struct grpc_conn *c;
    struct wbuf out; /* answered, not yet written */
    size_t off;
    time_t active; /* CLOCK_MONOTONIC seconds of the last byte either way */
    bool closing;  /* the peer broke the protocol: write what is queued, then close */
};

struct grpc_server {
    struct grpc_server_opts o;
    int lfd, efd;
    unsigned port;
    pthread_t th;
    bool started;
    struct gconn *v; /* max_conns slots; fd -1: free */
    size_t n;
};

static time_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static void conn_close(struct grpc_server *s, size_t i)
{
    struct gconn *g = &s->v[i];
    close(g->fd);
    grpc_conn_free(g->c);
    wb_free(&g->out);
    s->v[i] = s->v[--s->n];
}

/* Moves what the session has queued into g->out, up to a turn's worth.
 * 0 or negative errno. */
static int conn_fill(struct gconn *g)
{
    if (g->off == g->out.len) {
        g->out.len = 0;
        g->off = 0;
    }
    while (g->out.len - g->off < TURN_BYTES) {
        const uint8_t *p;
        long n = grpc_conn_pending(g->c, &p);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        wb_bytes(&g->out, p, (size_t)n);
        if (g->out.err)
            return -ENOMEM;
    }
    return 0;
}

/* Writes what is queued: 0 (all or some written), or negative errno. */
static int conn_write(struct gconn *g)
{
    while (g->off < g->out.len) {
        ssize_t w = send(g->fd, g->out.p + g->off, g->out.len - g->off, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        g->off += (size_t)w;
        g->active = mono_s();
    }
    return 0;
}

/* One turn of a connection poll() says is ready: false to close it. */
static bool conn_turn(struct gconn *g, short revents)
{
    uint8_t buf[16384];

    if (revents & POLLIN && g->off == g->out.len && !g->closing) {
        for (size_t got = 0; got < TURN_BYTES;) {
            ssize_t n = recv(g->fd, buf, sizeof(buf), 0);
            if (n == 0)
                return false;
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                return false;
            }
            got += (size_t)n;
            g->active = mono_s();
            int rc = grpc_conn_recv(g->c, buf, (size_t)n);
            if (rc == -ENOMEM)
                return false;
            if (rc) {
                g->closing = true; /* a GOAWAY may be queued: sent below */
                break;
            }
            if ((size_t)n < sizeof(buf))
                break;
        }
    } else if (revents & (POLLERR | POLLHUP) && !(revents & POLLOUT)) {
        return false;
    }
    if (conn_fill(g) || conn_write(g))
        return false;
    if (g->off < g->out.len)
        return true;
    return !g->closing && !grpc_conn_done(g->c);
}

static void accept_all(struct grpc_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a connection gone before it was taken */
        if (s->n >= s->o.max_conns) {
            log_debug("receiver: gRPC: %u connections already; one more closed", s->o.max_conns);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct gconn *g = &s->v[s->n];
        memset(g, 0, sizeof(*g));
        g->fd = fd;
        g->active = mono_s();
        g->c = grpc_conn_new(&s->o.limits, s->o.handler, s->o.ctx);
        if (!g->c || conn_fill(g) || conn_write(g)) {
            grpc_conn_free(g->c);
            wb_free(&g->out);
            close(fd);
            continue;
        }
        s->n++;
    }
}

static void *loop(void *arg)
{
    struct grpc_server *s = arg;
    struct pollfd *pf = calloc(s->o.max_conns + 2, sizeof(*pf));

    if (!pf) {
        log_error("receiver: gRPC: out of memory; not serving");
        return NULL;
    }
    for (;;) {
        pf[0] = (struct pollfd){.fd = s->efd, .events = POLLIN};
        pf[1] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        for (size_t i = 0; i < s->n; i++) {
            struct gconn *g = &s->v[i];
            /* unwritten answers first: a client that does not read is not read */
            short ev = g->off < g->out.len ? POLLOUT : POLLIN;
            pf[i + 2] = (struct pollfd){.fd = g->fd, .events = ev};
        }
        size_t n = s->n;
        int rc = poll(pf, n + 2, 1000);
        if (rc < 0 && errno != EINTR) {
            log_error("receiver: gRPC: poll: %s; not serving", strerror(errno));
            break;
        }
        if (pf[0].revents)
            break;
        time_t now = mono_s();
        /* from the end: closing moves the last slot into this one */
        for (size_t i = n; i-- > 0;) {
            struct gconn *g = &s->v[i];
            bool keep = pf[i + 2].revents ? conn_turn(g, pf[i + 2].revents)
                                          : now - g->active < (time_t)s->o.idle_s;
            if (!keep)
                conn_close(s, i);
        }
        if (pf[1].revents & POLLIN)
            accept_all(s);
    }
    free(pf);
    return NULL;
}

struct grpc_server *grpc_server_new(const struct grpc_server_opts *o, char *err, size_t errlen)
{
    struct grpc_server *s = calloc(1, sizeof(*s));
    struct addrinfo *ai = NULL;
    int one = 1;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->lfd = s->efd = -1;
    if (!s->o.max_conns)
        s->o.max_conns = 256;
    if (!s->o.idle_s)
        s->o.idle_s = 60;
    s->v = calloc(s->o.max_conns, sizeof(*s->v));
    if (!s->v) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (listen_resolve(o->listen, o->flag, &ai, err, errlen))
        goto fail;
    s->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(s->lfd, ai->ai_addr, ai->ai_addrlen) || listen(s->lfd, 128)) {
        snprintf(err, errlen, "%s %s: cannot listen: %s", o->flag, o->listen, strerror(errno));
        goto fail;
    }
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } u = {0};
    socklen_t ulen = sizeof(u);
    if (getsockname(s->lfd, &u.sa, &ulen) == 0)
        s->port = ntohs(u.sa.sa_family == AF_INET6 ? u.in6.sin6_port : u.in.sin_port);
    s->efd = eventfd(0, EFD_CLOEXEC);
    if (s->efd < 0 || pthread_create(&s->th, NULL, loop, s)) {
        snprintf(err, errlen, "%s: cannot start its thread", o->flag);
        goto fail;
    }
    s->started = true;
    freeaddrinfo(ai);
    return s;
fail:
    if (ai)
        freeaddrinfo(ai);
    grpc_server_free(s);
    return NULL;
}

unsigned grpc_server_port(const struct grpc_server *s)
{
    return s->port;
}

void grpc_server_free(struct grpc_server *s)
{
    if (!s)
        return;
    if (s->started) {
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof(one)) != sizeof(one))
            log_error("receiver: gRPC: cannot wake its thread: %s", strerror(errno));
        pthread_join(s->th, NULL);
    }
    while (s->v && s->n)
        conn_close(s, s->n - 1);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->efd >= 0)
        close(s->efd);
    free(s->v);
    free(s);
}
