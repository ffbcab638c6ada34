/* SPDX-License-Identifier: Apache-2.0 */
/*
 * segment — the codec of Stoke's storage objects, shared by the writer (the
 * agent's exporter, compaction, the fleet generator) and the readers (query
 * workers). docs/format.md specifies every byte; this header is its API.
 *
 * A segment object holds one section per service. A section is a profile
 * of that service over the flush: a dictionary (strings, mappings,
 * functions, locations, stacks) deduplicated across every process and
 * window added to it, the series (label sets), and the samples
 * (series, stack, time, one value per sample type). Sections are zstd
 * compressed independently and indexed by a footer, so a reader fetches
 * the footer with one range read and then only the sections it needs.
 *
 * Writers feed pprof messages (the agent's windows, imported profiles);
 * readers get a decoded section with dense integer ids throughout. The
 * writer is codec/segment_write.c, the reader codec/segment_read.c, the
 * footer codec/footer.c.
 */
#ifndef STOKE_SEGMENT_H
#define STOKE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.pb-c.h"

#define SEG_VERSION 1

struct seg_label {
    const char *name;
    const char *value;
};

/* What the footer (and the manifest) says about one section. */
struct seg_section_info {
    char *service;
    uint64_t offset;            /* from the start of the object */
    uint64_t length;            /* compressed bytes */
    uint64_t raw_length;        /* after decompression */
    uint32_t crc32c;            /* of the compressed bytes */
    int64_t t_min_ms, t_max_ms; /* sample time range, inclusive */
    uint64_t nsamples;          /* sample rows */
    uint64_t total[4];          /* sum of each sample type's values (first 4 types) */
    char **profile_types;       /* Pyroscope ids, e.g.
                                   "process_cpu:cpu:nanoseconds:cpu:nanoseconds" */
    size_t nprofile_types;
    /* Label summary: every label name, with up to SEG_MAX_SUMMARY_VALUES
     * distinct values each (values_truncated set when there were more). */
    struct seg_label_summary {
        char *name;
        char **values;
        size_t nvalues;
        bool values_truncated;
    } * labels;
    size_t nlabels;
    /* Function totals (docs/format.md §3.5, codec/topsum.h): compaction's
     * per-function self and total of the whole section, a zstd frame of
     * its own; top_length 0 = none (every flush, and older blocks). */
    uint64_t top_offset, top_length, top_raw;
    uint32_t top_crc;
    /* Call tree (docs/format.md §3.6, codec/calltree.h): compaction's
     * merged, possibly cut, call tree of the whole section, a zstd frame
     * after the totals frames; tree_length 0 = none. */
    uint64_t tree_offset, tree_length, tree_raw;
    uint32_t tree_crc;
};
#define SEG_MAX_SUMMARY_VALUES 64

struct seg_footer {
    uint32_t version;
    char *tenant;
    char *host;
    int64_t t_min_ms, t_max_ms;
    uint64_t object_length;
    struct seg_section_info *sections;
    size_t nsections;
};

/* ---- writing ---------------------------------------------------------- */

struct seg_writer;

/* Allocates a writer for one object of @tenant written by @host. */
struct seg_writer *seg_writer_new(const char *tenant, const char *host);
void seg_writer_free(struct seg_writer *w);

/*
 * Adds the samples of @p to the section of @service (created on first
 * use). Every sample gets the labels @labels (service_name, host_name, ...)
 * merged with its own pprof string labels (the sample's own win on a
 * clash). @time_ms is the samples' timestamp; 0 means p->time_nanos / 1e6.
 * A section's sample types are fixed by its first profile: a later profile
 * with other types returns -EINVAL. Copies what it needs; @p may be freed.
 * A malformed profile (seg_pprof_check) returns -EINVAL and adds nothing.
 * Returns 0 or a negative errno.
 */
int seg_writer_add_pprof(struct seg_writer *w, const char *service,
                         const Perftools__Profiles__Profile *p, const struct seg_label *labels,
                         size_t nlabels, int64_t time_ms);

/* False when seg_writer_add_pprof(@w, @service, @p, ...) would refuse @p
 * for its sample or period types: the writer's section of @service was
 * started by a profile with other types (a Go SDK's cpu and memory
 * profiles of one application; JFR's lock and park profiles, whose sample
 * types are the same and whose period types, mutex and block, are not).
 * Adds nothing. */
bool seg_writer_accepts(const struct seg_writer *w, const char *service,
                        const Perftools__Profiles__Profile *p);

/*
 * What seg_writer_add_pprof checks before it adds anything, with a message:
 * string indexes in range, 1..SEG_MAX_TYPES sample types, function ids
 * unique and non-zero, every line naming a defined function (a frame is
 * never stored without its name) and every sample's locations defined.
 * One known producer bug is repaired instead: when every function has id
 * 0, function_id k names the k-th function (docs/format.md §4).
 * Returns 0, SEG_PPROF_REPAIRED with @msg saying what was repaired,
 * -EINVAL with @msg naming the first problem, or -ENOMEM.
 */
#define SEG_PPROF_REPAIRED 1
int seg_pprof_check(const Perftools__Profiles__Profile *p, char *msg, size_t msglen);

/* zstd level for the sections and footer (1..19; 3 by default). */
int seg_writer_set_level(struct seg_writer *w, int level);

/*
 * Asks seg_writer_finish for each section's function totals
 * (docs/format.md §3.5): after the sections are encoded, @fn gets each
 * one's compressed bytes and footer record and returns the raw totals
 * frame (codec/topsum.h) in *raw (malloc'd; NULL = none for that
 * section), which the writer compresses and places after the sections.
 * The codec cannot name functions as queries do, so compaction passes the
 * query engine's builder. @fn's error fails the finish.
 */
typedef int (*seg_topsum_fn)(void *ctx, const uint8_t *sec, size_t len,
                             const struct seg_section_info *info, uint8_t **raw, size_t *rawlen);
void seg_writer_set_topsum(struct seg_writer *w, seg_topsum_fn fn, void *ctx);
/* The same for each section's call tree frame (docs/format.md §3.6,
 * codec/calltree.h), placed after the totals frames. */
void seg_writer_set_calltree(struct seg_writer *w, seg_topsum_fn fn, void *ctx);

/*
 * Adds every sample of a decoded section (from any object, any host) to
 * the writer's section of the same service, deduplicating its dictionary
 * against what is there: compaction merges an hour's sections this way.
 * The sample types must match the section's (-EINVAL otherwise); rows
 * with the same series, stack and time are summed. 0 or a negative errno.
 */
struct seg_section;
int seg_writer_add_section(struct seg_writer *w, const struct seg_section *sec);

/* 0 when seg_writer_add_section(@w, @sec) would take @sec; -EINVAL when the
 * writer's section of that service has other sample types (or @sec is not
 * a section). Adds nothing: compaction checks a whole object first. */
int seg_writer_check_section(const struct seg_writer *w, const struct seg_section *sec);

/* True when nothing was added. */
bool seg_writer_empty(const struct seg_writer *w);
/* Heap the writer holds (its tables, with their growth slack). */
size_t seg_writer_bytes(const struct seg_writer *w);

/* Encodes the whole object into a malloc'd buffer. The writer stays valid
 * (and can be finished again, giving the same bytes). @footer, when not
 * NULL, receives a copy of the index (free with seg_footer_free). */
int seg_writer_finish(struct seg_writer *w, uint8_t **buf, size_t *len, struct seg_footer **footer);

/* ---- reading ---------------------------------------------------------- */

/*
 * Parses the footer from the last @tail_len bytes of an object of
 * @object_len bytes. When the footer starts before the tail, returns
 * -EAGAIN with *need_from set to the offset to read from. Corrupt, truncated
 * or wrong-version data returns -EBADMSG / -EPROTO (version) with a message
 * in @err.
 */
int seg_footer_parse(const uint8_t *tail, size_t tail_len, uint64_t object_len,
                     struct seg_footer **out, uint64_t *need_from, char *err, size_t errlen);
void seg_footer_free(struct seg_footer *f);

/* The suffix a reader that knows only an object's length (from a listing)
 * fetches first: the trailer and, for every segment measured
 * (docs/format.md §3.2), the whole footer. */
#define SEG_FOOTER_TAIL 4096
/* The largest compressed footer seg_footer_read fetches (the second read). */
#define SEG_MAX_FOOTER (16u << 20)

/* Reads @len bytes at @off of the object into a malloc'd *out; *outlen is
 * what was read. 0 or a negative errno. */
typedef int (*seg_read_fn)(void *ctx, uint64_t off, uint64_t len, uint8_t **out, size_t *outlen);

/*
 * The footer of an object of @object_len bytes through @rd: one read of the
 * last SEG_FOOTER_TAIL bytes (the whole object when smaller), and a second
 * read of the bytes before that tail only when the footer starts before it
 * (at most SEG_MAX_FOOTER of them). *nreads (may be NULL) gets 1 or 2. A
 * short read, a damaged or truncated tail, or a footer larger than
 * SEG_MAX_FOOTER returns -EBADMSG (-EPROTO: another major version) with a
 * message in @err; @rd's errors are returned as they are.
 */
int seg_footer_read(seg_read_fn rd, void *ctx, uint64_t object_len, struct seg_footer **out,
                    unsigned *nreads, char *err, size_t errlen);

struct seg_sample_type {
    uint32_t type, unit; /* string ids */
};

struct seg_mapping {
    uint32_t build_id, filename; /* string ids */
};

struct seg_function {
    uint32_t name, filename; /* string ids */
};

struct seg_line {
    uint32_t function; /* index into functions */
    uint32_t line;
};

struct seg_location {
    uint32_t mapping; /* index into mappings, UINT32_MAX = none */
    uint64_t address;
    uint32_t line_off, nlines; /* into lines; innermost first, as pprof */
};

/* A decoded section: everything is dense ids into the arrays below. */
struct seg_section {
    char *service;
    const char **strings; /* strings[0] == "" */
    uint32_t nstrings;
    struct seg_sample_type *types;
    uint32_t ntypes;
    struct seg_sample_type period_type;
    int64_t period;
    struct seg_mapping *mappings;
    uint32_t nmappings;
    struct seg_function *functions;
    uint32_t nfunctions;
    struct seg_location *locations;
    uint32_t nlocations;
    struct seg_line *lines;
    uint32_t nlines;
    /* stack i = stack_locs[stack_off[i] .. stack_off[i + 1]), leaf first */
    uint32_t *stack_off;
    uint32_t *stack_locs;
    uint32_t nstacks;
    /* series i = label pairs series_labels[2*series_off[i] ..
     * 2*series_off[i + 1]) as (name, value) string ids, sorted by name */
    uint32_t *series_off;
    uint32_t *series_labels;
    uint32_t nseries;
    /* samples, sorted by (series, time, stack) */
    uint64_t nsamples;
    uint32_t *sample_series;
    uint32_t *sample_stack;
    int64_t *sample_time_ms;
    int64_t *sample_values; /* nsamples * ntypes, row-major */
};

/*
 * Decodes one section from its compressed bytes (exactly info->length of
 * them). Checks the CRC, the decompressed size, every id against its
 * table, and every count against the bytes left. Returns 0, -EBADMSG with
 * @err on corrupt data, or -ENOMEM.
 */
int seg_section_decode(const uint8_t *buf, size_t len, const struct seg_section_info *info,
                       struct seg_section **out, char *err, size_t errlen);
void seg_section_free(struct seg_section *s);

/* The Pyroscope profile type id of sample type @i of @s:
 * "<name>:<type>:<unit>:<period type>:<period unit>" with name
 * "process_cpu" for cpu/samples types. Writes into @buf. */
int seg_profile_type_id(const struct seg_section *s, uint32_t i, char *buf, size_t len);
/* The same from the names: sample type and unit, period type and unit.
 * 0 or -ENOSPC. */
int seg_type_id(char *buf, size_t len, const char *type, const char *unit, const char *ptype,
                const char *punit);

/* ---- keys ------------------------------------------------------------- */

/*
 * The object key of a segment:
 *   <tenant>/segments/<YYYY-MM-DD>/<HH>/<host>/<start ms, 13 digits>-<hash16>.seg
 * @hash is a content hash (the same bytes always give the same key, so a
 * retried upload is idempotent). Returns the length or -ENAMETOOLONG.
 * Tenant and host must be safe path components ([A-Za-z0-9._-]).
 */
int seg_object_key(char *buf, size_t len, const char *tenant, const char *host, int64_t start_ms,
                   uint64_t hash);

/* 64-bit content hash used in keys (xxhash-like, stable across versions). */
uint64_t seg_hash64(const void *data, size_t len);

#endif
