/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backoff — the retry delay shared by the exporters that talk to the network
 * (segment_upload.c for object storage, http_push.c for OTLP and Pyroscope):
 * exponential from @min_ms, capped at @max_ms, with full jitter so a fleet
 * coming back after an outage does not retry in step.
 */
#ifndef STOKE_EXPORTER_BACKOFF_H
#define STOKE_EXPORTER_BACKOFF_H

#include <stdlib.h>

/* Doubles *@backoff (0 = first failure: @min_ms), caps it at @max_ms and
 * returns the wait: @min_ms / 2 plus a random part below *@backoff. */
static inline unsigned backoff_next(unsigned *backoff, unsigned min_ms, unsigned max_ms)
{
    *backoff = *backoff ? *backoff * 2 : min_ms;
    if (*backoff > max_ms)
        *backoff = max_ms;
    return min_ms / 2 + (unsigned)rand() % *backoff;
}

#endif
