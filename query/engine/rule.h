/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rule — recording rules (metrics from profiles): Pyroscope's
 * settings.v1.RecordingRule (proto/pyroscope/settings.proto), validated,
 * compiled, and kept as objects in the bucket. The Connect service that
 * edits them is query/serve/rules_api.c; the compaction job evaluates them
 * over every flush it merges (query/jobs/rules.c).
 *
 * A rule is valid when: metric_name starts with "profiles_recorded_" and is
 * a Prometheus metric name; its matchers (Prometheus selectors, ANDed) hold
 * exactly one __profile_type__="<id>" matcher naming a profile type (any
 * __name__ matcher must agree with it), the rest being the engine's;
 * group_by names are label names, distinct, not "__"-prefixed, at most
 * QUERY_MAX_GROUP_BY; external labels are distinct label names that neither
 * clash with group_by nor are __name__, with non-empty values; the function
 * filter, when set, names a function. Every refusal has a message naming
 * the field.
 *
 * Keys (docs/format.md, Recording rules): <tenant>/rules/<id>.rule, one
 * packed RecordingRule each (at most RULE_MAX_OBJECT bytes). A rule object
 * that does not decode or validate is skipped and counted, never fatal.
 */
#ifndef STOKE_QUERY_RULE_H
#define STOKE_QUERY_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyroscope/settings.pb-c.h"
#include "query/engine/selector.h"
#include "store/store.h"

#define RULE_METRIC_PREFIX "profiles_recorded_"
#define RULE_MAX_OBJECT    (64 * 1024)
#define RULE_MAX_RULES     1000 /* per tenant */
#define RULE_MAX_NAME      200  /* metric and label names, ids, function names */

struct rule {
    char *id, *metric_name, *profile_type;
    struct selector *sel; /* without the __profile_type__ and __name__ matchers */
    size_t sel_all;       /* matchers sel owns (some past sel->n) */
    char **group_by;
    size_t ngroup;
    char **ext_names, **ext_values; /* sorted by name */
    size_t next;
    char *function_name; /* NULL: every sample */
    int64_t generation;
};

/* [A-Za-z0-9_-]{1,64}: a rule id (also a key component). */
bool rule_id_valid(const char *id);

/* Validates @m (id and generation are copied, not checked) and compiles
 * it. Allocates *out (rule_free). 0, -EINVAL with a message naming the
 * field in @err, or -ENOMEM. */
int rule_compile(const Settings__V1__RecordingRule *m, struct rule **out, char *err, size_t errlen);
void rule_free(struct rule *r);

/* A rule object read back from the bucket: decodes and compiles it.
 * *msg (may be NULL) receives the decoded message
 * (settings__v1__recording_rule__free_unpacked). 0, -EBADMSG (does not
 * decode, too large), -EINVAL (does not validate), with @err; -ENOMEM. */
int rule_decode(const uint8_t *buf, size_t len, struct rule **out,
                Settings__V1__RecordingRule **msg, char *err, size_t errlen);

/* <tenant>/rules/<id>.rule; the prefix alone with @id NULL. The length
 * or -ENAMETOOLONG. */
int rule_key(char *buf, size_t len, const char *tenant, const char *id);

/* Every valid rule of @tenant, sorted by id. Objects that do not decode or
 * validate are skipped, counted in *bad, each reported to @on_bad (may be
 * NULL) as "KEY: WHY". Allocates *out (rules_free). 0 or the store's errno
 * (-ENOENT, no rules, is 0 with none). */
int rules_load(struct store *st, const char *tenant, struct rule ***out, size_t *n, unsigned *bad,
               void (*on_bad)(const char *msg, void *arg), void *arg);
void rules_free(struct rule **r, size_t n);
/* The same, with the decoded messages: (*msgs)[i] is the object of
 * (*out)[i]; free them with rule_msgs_free. @msgs may be NULL. */
int rules_load_msgs(struct store *st, const char *tenant, struct rule ***out,
                    Settings__V1__RecordingRule ***msgs, size_t *n, unsigned *bad,
                    void (*on_bad)(const char *msg, void *arg), void *arg);
void rule_msgs_free(Settings__V1__RecordingRule **m, size_t n);

/*
 * What the compaction job leaves for the query workers' /metrics (pull):
 * <tenant>/recorded/latest.prom, Prometheus text: the newest sample of
 * each recorded series of its last pass with rules (with timestamps), and
 * the job's counters, cumulative over passes (RULE_COUNTER_SENT,
 * RULE_COUNTER_DROPPED). At most RULE_MAX_RECORDED bytes.
 */
#define RULE_MAX_RECORDED    (4u << 20)
#define RULE_COUNTER_SENT    "stoke_recording_rules_samples_sent_total"
#define RULE_COUNTER_DROPPED "stoke_recording_rules_samples_dropped_total"
int rule_recorded_key(char *buf, size_t len, const char *tenant);
/* The value of the counter line "@name VALUE" in the text @buf (@len
 * bytes, need not be NUL-terminated), or 0 when there is none or it does
 * not parse. */
uint64_t rule_recorded_counter(const char *buf, size_t len, const char *name);

#endif
