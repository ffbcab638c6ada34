/* SPDX-License-Identifier: Apache-2.0 */
/*
 * selector — Prometheus-style label selectors ({name="v", name!="v",
 * name=~"re", name!~"re"}) and their matching against label sets.
 *
 * Owns the parsed matchers and their compiled regexes. Regexes are POSIX
 * extended, anchored at both ends (^(...)$), and screened before regcomp for
 * patterns whose compiled size explodes (nested or stacked repetitions,
 * back-references), so a hostile query costs bounded memory and time.
 * A missing label matches as the empty string, as in Prometheus.
 *
 * Matching against a decoded section is one pass over its series, with each
 * distinct (matcher, value string id) evaluated at most once.
 */
#ifndef STOKE_QUERY_SELECTOR_H
#define STOKE_QUERY_SELECTOR_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct seg_section;

#define SELECTOR_MAX_LEN      4096
#define SELECTOR_MAX_MATCHERS 32

enum sel_op { SEL_EQ, SEL_NE, SEL_RE, SEL_NRE };

struct sel_matcher {
    char *name;
    char *value;
    enum sel_op op;
    bool has_re;
    regex_t re;
};

struct selector {
    struct sel_matcher *m;
    size_t n;
};

/* Parses @text (NULL or "" mean "{}"). Allocates *out (selector_free).
 * Returns 0, -EINVAL with a message naming the offset in @err, or -ENOMEM. */
int selector_parse(const char *text, struct selector **out, char *err, size_t errlen);
void selector_free(struct selector *s);

/* Does @value (NULL = label missing = "") satisfy @m? */
bool sel_matcher_match(const struct sel_matcher *m, const char *value);

/* The matcher on label @name, or NULL. */
const struct sel_matcher *selector_find(const struct selector *s, const char *name);

/* Does the label set (parallel name/value arrays) match every matcher? */
bool selector_match_labels(const struct selector *s, const char *const *names,
                           const char *const *values, size_t n);

/*
 * Sets mask[i] = 1 for every series i of @sec that matches, 0 otherwise.
 * Series without service_name / host_name labels take @service / @host
 * (the section's and the object's) for them. @mask has sec->nseries bytes.
 * Returns the number of matching series, or -ENOMEM.
 */
long selector_match_section(const struct selector *s, const struct seg_section *sec,
                            const char *service, const char *host, uint8_t *mask);

#endif
