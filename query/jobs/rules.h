/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules — evaluates recording rules (query/engine/rule.h) over the flushes
 * that compaction merges, and turns the sums into Prometheus series.
 *
 * What is new: compaction merges each per-flush manifest entry exactly
 * once (a merged entry is listed in the hour manifest's `replaces` and
 * deleted; later passes see only entries written since). It hands every
 * section of such an entry, already read and decoded for the block, to
 * rule_eval_section: rules read no byte of their own and never see a
 * flush twice. A flush's results count only once its hour manifest is in
 * force: rule_eval_mark / rule_eval_truncate drop those of an entry kept
 * out of the block, or of an hour whose pass stopped (it is evaluated again
 * when the next pass merges it).
 *
 * One sample per rule, group and flush interval: intervals are aligned
 * to the interval length (RULE_EVAL_INTERVAL_S, the agent's default flush,
 * or compact's --rule-interval), so the flushes of every host, whatever
 * second each started at, add up into one sample at the interval's start;
 * each sample row counts in the interval its own time falls in. The value
 * is the sum of the matching samples' values of the rule's profile type,
 * so sum_over_time of the metric over a range of whole intervals equals
 * the selection's total over that range, when every flush of those
 * intervals went through one pass (closed hours: one pass per hour). A
 * group exists in an interval when a matching sample row does, even if
 * the function filter leaves it 0. Groups are the group_by labels' values
 * (service_name and host_name default to the section's service and the
 * object's host, as for selectors); a group whose value for a label is
 * empty has no such label, as Prometheus would store it.
 */
#ifndef STOKE_QUERY_RULES_H
#define STOKE_QUERY_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "codec/segment.h"
#include "common/buf.h"
#include "query/engine/rule.h"

struct rule_eval;

#define RULE_EVAL_INTERVAL_S 60

struct rule_eval_stats {
    uint64_t flushes;  /* segments evaluated */
    uint64_t sections; /* sections evaluated (each rule over each) */
    uint64_t bytes;    /* compressed bytes of those sections (read once, by compaction) */
    uint64_t rows;     /* sample rows looked at, summed over rules */
    uint64_t ns;       /* CPU time in rule_eval_section */
    uint64_t errors;   /* evaluations lost to memory */
};

/* Borrows @rules (they must outlive it); @interval_s 0 is
 * RULE_EVAL_INTERVAL_S. NULL when out of memory. */
struct rule_eval *rule_eval_new(struct rule *const *rules, size_t n, unsigned interval_s);
void rule_eval_free(struct rule_eval *ev);
void rule_eval_stats(const struct rule_eval *ev, struct rule_eval_stats *out);

/* Adds every rule's sums over @sec, a section of a flush of @host; @bytes
 * is its compressed size (for the stats). 0 or -ENOMEM (counted; the
 * section then adds nothing). */
int rule_eval_section(struct rule_eval *ev, const struct seg_section *sec, const char *host,
                      uint64_t bytes);
/* Counts one flush (segment) whose sections were all given. */
void rule_eval_flush_done(struct rule_eval *ev);
/* Results so far, as a position; truncate drops what came after it. */
size_t rule_eval_mark(const struct rule_eval *ev);
void rule_eval_truncate(struct rule_eval *ev, size_t mark);

/* One recorded series: labels sorted by name (__name__ first among
 * them), samples in time order. */
struct rec_series {
    char **names, **values;
    size_t nlabels;
    int64_t *t;
    double *v;
    size_t n;
};

/* The results as series, sorted by metric name then labels. Allocates
 * *out (rec_series_free). 0 or -ENOMEM. */
int rule_eval_series(const struct rule_eval *ev, struct rec_series **out, size_t *n);
void rec_series_free(struct rec_series *s, size_t n);

/* Appends the newest sample of each series in the Prometheus text format
 * (with its timestamp, a TYPE gauge line per metric name). */
void rec_series_expose(const struct rec_series *s, size_t n, struct wbuf *out);

#endif
