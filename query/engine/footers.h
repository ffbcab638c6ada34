/* SPDX-License-Identifier: Apache-2.0 */
/*
 * footers — label queries answered from segment footers alone.
 *
 * A label query (Q_LABELS: label names, label values) needs each matching
 * series' labels, which every section's footer record already summarises:
 * every label name with its distinct values (up to 64, or marked
 * truncated), beside the section's service and the object's host. When
 * that summary answers exactly — no name truncated whose values are wanted
 * (query.labels_of: for label names only, none are), a selector naming no
 * label but service_name, and service_name/host_name summaries that can
 * only hold the section's service and the object's host — the engine skips
 * reading the sections. Granularity is the section's (one flush): a series
 * whose samples all fall just outside the range but inside an overlapping
 * flush is listed, as Pyroscope's index lists a block's series.
 */
#ifndef STOKE_QUERY_FOOTERS_H
#define STOKE_QUERY_FOOTERS_H

#include "query/engine/mprof.h"
#include "query/engine/plan.h"
#include "query/engine/query.h"

/* Adds to @res the label pairs of @plan's sections that match @q (mode
 * Q_LABELS). 0; -EAGAIN when the footers cannot answer exactly (nothing
 * added); -ENOMEM. */
int footers_labels(const struct plan *plan, const struct query *q, struct mprof *res);

#endif
