/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batch — what one received request turns into: pprof messages, each with
 * its service, labels and time, ready for seg_upload_add_pprof.
 *
 * Owns every byte of them: an arena for what the parsers build (strings,
 * pprof tables), and the protobuf-c messages they unpacked (whose strings
 * the built messages may point into). A parser fills a batch completely
 * or fails; the receiver writes a batch only once it is whole, so a bad
 * request writes nothing. Every format (OTLP, pprof, folded, later JFR)
 * is one function from a body to a batch.
 */
#ifndef STOKE_INGEST_BATCH_H
#define STOKE_INGEST_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "codec/segment.h"
#include "profile.pb-c.h"

struct ingest_profile {
    const char *service;
    struct seg_label *labels;
    size_t nlabels;
    Perftools__Profiles__Profile *p; /* the batch's own: the check may edit it */
    int64_t time_ms;
    uint64_t nrows; /* sample rows, for the drop counters */
};

struct arena_chunk;

struct ingest_batch {
    struct ingest_profile *v;
    size_t n, cap;
    int64_t rejected;       /* OTLP profiles left out (partial success) */
    char why_rejected[256]; /* the first reason */
    /* owned */
    struct arena_chunk *chunks;
    size_t arena_bytes;
    void **unpacked; /* protobuf-c messages, freed with protobuf_c_message_free_unpacked */
    size_t nunpacked, capunpacked;
    /* samples whose labels the check moved out of n_label: the count to
     * give back before protobuf-c frees them */
    struct label_fix {
        Perftools__Profiles__Sample *s;
        size_t n_label;
    } * fixes;
    size_t nfixes, capfixes;
};

/* Zeroed memory from the batch's arena (freed with the batch); NULL when
 * out of memory or past INGEST_MAX_ARENA. */
#define INGEST_MAX_ARENA (512u << 20)
void *ingest_alloc(struct ingest_batch *b, size_t n, size_t size);
char *ingest_strdup(struct ingest_batch *b, const char *s);
char *ingest_strndup(struct ingest_batch *b, const char *s, size_t n);
/* Takes @msg (a ProtobufCMessage *): freed with the batch. 0 or -ENOMEM
 * (then @msg is freed at once). */
int ingest_keep(struct ingest_batch *b, void *msg);
/* Appends a copy of @ip. 0 or -ENOMEM. */
int ingest_push(struct ingest_batch *b, const struct ingest_profile *ip);
void ingest_batch_free(struct ingest_batch *b);

/* Runs seg_pprof_check on every profile: -EINVAL with @err naming the
 * profile and the problem, so a request is refused whole. Then drops the
 * samples' own service_name labels: the request's service names the
 * section and the series (a pushed pprof of another service would
 * otherwise be stored under a service_name its section does not have). */
int ingest_batch_check(struct ingest_batch *b, char *err, size_t errlen);

/*
 * A pprof message built from folded stacks: one function and one location
 * per distinct frame name, sample types @types (1 or 2 pairs of type, unit
 * strings; a second type is the first times @period: samples and cpu
 * nanoseconds), period type @ptype/@punit and @period. Lines "a;b;c N"
 * (root first, N > 0 decimal; blank lines skipped, a CR before the newline
 * allowed). Returns 0, -EINVAL with @err naming the line, or -ENOMEM.
 */
#define FOLDED_MAX_DEPTH 1024
#define FOLDED_MAX_LINE  (1u << 20)
struct folded_types {
    const char *type, *unit;   /* the counted value */
    const char *type2, *unit2; /* NULL, or the scaled value (x period) */
    const char *ptype, *punit;
    int64_t period;
};
int ingest_folded(struct ingest_batch *b, const char *text, size_t len,
                  const struct folded_types *t, Perftools__Profiles__Profile **out, uint64_t *nrows,
                  char *err, size_t errlen);

#endif
