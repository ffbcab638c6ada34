/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workpool — a fixed set of threads running jobs from a bounded FIFO: how
 * stoke-query bounds the queries it runs at once (and so their memory)
 * while its HTTP loop keeps serving other connections.
 *
 * Submitting to a full queue fails at once (the caller answers 429) rather
 * than waiting. Closing refuses new jobs, runs the ones already queued and
 * waits for all of them: jobs must finish promptly once their owner asks
 * them to (stoke-query cancels its queries before closing).
 */
#ifndef STOKE_QUERY_WORKPOOL_H
#define STOKE_QUERY_WORKPOOL_H

struct workpool;

/* @threads workers (at least 1), at most @queue jobs waiting (0 = none:
 * a job is taken only when a worker is free). NULL when out of memory or
 * threads. */
struct workpool *workpool_new(unsigned threads, unsigned queue, void (*run)(void *job));

/* Queues @job. 0, -EAGAIN when every worker is busy and the queue is full,
 * -ESHUTDOWN once the pool is closing. */
int workpool_submit(struct workpool *p, void *job);

/* Refuses new jobs, runs the queued ones, joins the threads. Idempotent. */
void workpool_close(struct workpool *p);

/* workpool_close, then frees. */
void workpool_free(struct workpool *p);

#endif
