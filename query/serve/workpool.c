/* SPDX-License-Identifier: Apache-2.0 */
#include "query/serve/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct workpool {
    void (*run)(void *job);
    pthread_mutex_t lock;
    pthread_cond_t cv;
    void **ring;           /* queued jobs, ring of cap */
    unsigned cap, head, n; /* cap = threads + queue */
    unsigned nthreads, busy;
    pthread_t *threads;
    bool closing, closed;
};

static void *worker(void *arg)
{
    struct workpool *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->n && !p->closing)
            pthread_cond_wait(&p->cv, &p->lock);
        if (!p->n)
            break; /* closing and nothing left */
        void *job = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->n--;
        p->busy++;
        pthread_mutex_unlock(&p->lock);
        p->run(job);
        pthread_mutex_lock(&p->lock);
        p->busy--;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct workpool *workpool_new(unsigned threads, unsigned queue, void (*run)(void *job))
{
    struct workpool *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    if (!threads)
        threads = 1;
    p->run = run;
    p->cap = threads + queue;
    p->ring = calloc(p->cap, sizeof(*p->ring));
    p->threads = calloc(threads, sizeof(*p->threads));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (!p->ring || !p->threads) {
        workpool_free(p);
        return NULL;
    }
    for (; p->nthreads < threads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p)) {
            workpool_free(p);
            return NULL;
        }
    return p;
}

int workpool_submit(struct workpool *p, void *job)
{
    int rc = 0;

    pthread_mutex_lock(&p->lock);
    /* Running plus queued never exceeds threads + queue. */
    if (p->closing)
        rc = -ESHUTDOWN;
    else if (p->n + p->busy >= p->cap)
        rc = -EAGAIN;
    else {
        p->ring[(p->head + p->n) % p->cap] = job;
        p->n++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void workpool_close(struct workpool *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->closed) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    p->closing = p->closed = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
}

void workpool_free(struct workpool *p)
{
    if (!p)
        return;
    workpool_close(p);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->lock);
    free(p->ring);
    free(p->threads);
    free(p);
}
