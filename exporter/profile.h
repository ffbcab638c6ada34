/* SPDX-License-Identifier: Apache-2.0 */
/*
 * profile — one service's profile for one window, built up sample by sample
 * and written out as gzip pprof and as folded stacks.
 *
 * Owns: a dictionary deduplicated across every process of the service
 * (strings, mappings keyed by build-id or path, functions keyed by
 * name+file, locations keyed by mapping + file offset, so the same code in
 * two processes is one location despite ASLR), and the samples keyed by
 * {location list, label set}.
 *
 * pprof layout: sample types [samples/count, cpu/nanoseconds] (cpu is the
 * default), period_type cpu/nanoseconds, period = the sampling period;
 * mappings carry build_id and have memory_start = 0 so Location.address is
 * the file offset (kernel: the kernel address); every label of a sample's
 * label set is a pprof string label.
 *
 * Folded: one line per distinct stack, root first, frames joined by ';',
 * then a space and the sample count — the input of flamegraph.pl. Inlined
 * frames are frames of their own. Unresolved frames read
 * "<mapping basename>+0x<file offset>"; kernel frames get no suffix.
 */
#ifndef STOKE_PROFILE_H
#define STOKE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/frame.h"
#include "common/labels.h"
#include "profile.pb-c.h"

struct profile;

/* Allocates; @period_ns is the sampling period (1e9 / frequency). */
struct profile *profile_new(const char *service_name, uint64_t start_ns, uint64_t duration_ns,
                            uint64_t period_ns);
void profile_free(struct profile *p);

/* Interns the location for one resolved address (copies every string).
 * Returns a location id > 0, or 0 on allocation failure. */
uint32_t profile_location(struct profile *p, const struct sym_result *r);

/* Adds @count samples of the stack @locs (leaf first, as pprof orders
 * Sample.location_id) with the labels @labels (copied; may be NULL).
 * Samples with the same stack and labels are merged. 0 or -ENOMEM. */
int profile_add(struct profile *p, const uint32_t *locs, size_t nlocs,
                const struct label_set *labels, uint64_t count);

uint64_t profile_total_samples(const struct profile *p);
size_t profile_nsamples(const struct profile *p); /* distinct sample rows */

/* Puts into @out the labels that every sample carries with the same value
 * (service_name, host_name, and the process labels when the service is one
 * process): what the push exporters send as the resource / application
 * labels. 0 or -ENOMEM. */
int profile_common_labels(const struct profile *p, struct label_set *out);

/* The window and sampling period the profile was created with. */
void profile_times(const struct profile *p, uint64_t *start_ns, uint64_t *duration_ns,
                   uint64_t *period_ns);

/* Encodes as pprof (protobuf-c) and gzips into a malloc'd buffer.
 * 0 or a negative errno. */
int profile_encode_pprof_gz(const struct profile *p, uint8_t **out, size_t *outlen);

/* The profile as an in-memory pprof message (no encoding), for writers
 * that re-encode it (the segment codec). Allocates; free with
 * profile_pprof_free(). The message points into @p's strings: free it
 * before @p. 0 or a negative errno. */
struct profile_pprof;
int profile_to_pprof(const struct profile *p, struct profile_pprof **out);
const Perftools__Profiles__Profile *profile_pprof_msg(const struct profile_pprof *pp);
void profile_pprof_free(struct profile_pprof *pp);

/* Writes files atomically (temp file + rename). 0 or a negative errno. */
int profile_write_pprof_gz(const struct profile *p, const char *path);
int profile_write_folded(const struct profile *p, const char *path);

#endif
