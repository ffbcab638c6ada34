/* SPDX-License-Identifier: Apache-2.0 */
/*
 * labels — the label sets attached to every series and the relabel rules
 * that rewrite them: the vocabulary the agent, the exporters and the query
 * workers' selectors share (the agent's cardinality cap is
 * agent/label_limiter.h).
 *
 * Owns: label_set (a small sorted array of name=value pairs) and the parsed
 * relabel rules from the configuration.
 *
 * Label names follow the Pyroscope/OpenTelemetry conventions: service_name,
 * host_name, process_executable_name, container_id, pod_uid, systemd_unit...
 */
#ifndef STOKE_COMMON_LABELS_H
#define STOKE_COMMON_LABELS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct label {
    char *name;
    char *value;
};

/* Sorted by name, names unique. Owns its strings. */
struct label_set {
    struct label *v;
    size_t n;
    size_t cap;
};

/* Sets @name to @value (copies both); replaces an existing value. 0 or -ENOMEM. */
int label_set_put(struct label_set *ls, const char *name, const char *value);
/* Returns the value of @name or NULL. */
const char *label_set_get(const struct label_set *ls, const char *name);
/* Removes @name if present. */
void label_set_del(struct label_set *ls, const char *name);
/* Deep copy into @dst (which must be empty). 0 or -ENOMEM. */
int label_set_copy(struct label_set *dst, const struct label_set *src);
void label_set_clear(struct label_set *ls);
/* Stable 64-bit hash of the whole set, for interning series. */
uint64_t label_set_hash(const struct label_set *ls);
bool label_set_equal(const struct label_set *a, const struct label_set *b);

/*
 * Relabel rules, applied in order, Prometheus-style:
 *   keep:NAME=REGEX          keep the series only if label NAME matches REGEX
 *   drop:NAME=REGEX          drop the series if label NAME matches REGEX
 *   replace:SRC=REGEX:TARGET=REPLACEMENT
 *                            if SRC matches REGEX (anchored), set TARGET to
 *                            REPLACEMENT with $1..$9 substituted
 *   labeldrop:REGEX          remove every label whose name matches
 *   labelkeep:REGEX          remove every label whose name does not match
 * Regexes are POSIX extended and anchored at both ends. A missing label
 * matches as the empty string. In replace, REGEX ends at the first ':' that
 * is followed by a label name and '=' (so REPLACEMENT may hold ':' and '=');
 * $0 is the whole match, $$ a literal '$'; a replacement that expands to ""
 * removes TARGET. Rules referring to groups the regex lacks are rejected.
 */
/*
 * glibc's regcomp expands repetitions, so stacked or nested ones cost memory
 * exponentially ("k+++…", "((a{99}){99}){99}"); back-references make matching
 * exponential in time. Returns why @re (of @len bytes) is refused, or NULL
 * when it is safe to regcomp. Shared by relabel rules and query selectors.
 */
const char *label_regex_too_costly(const char *re, size_t len);

/* Compiles ^(@re)$ (POSIX extended) into @out, after the screen above. The
 * bare expression is compiled first so an unbalanced ")" cannot close the
 * wrapper's group and change the anchoring. 0, -EINVAL with why @re is
 * refused in @why, or -ENOMEM. Free @out with regfree. */
int label_regex_compile(const char *re, regex_t *out, char *why, size_t whylen);

struct relabel_rules;

/* Parses one rule and appends it. Returns 0, or -EINVAL with a message of at
 * most @errlen bytes in @err naming what is wrong. */
int relabel_rules_add(struct relabel_rules *r, const char *spec, char *err, size_t errlen);
struct relabel_rules *relabel_rules_new(void);
void relabel_rules_free(struct relabel_rules *r);
size_t relabel_rules_count(const struct relabel_rules *r);

/* Applies the rules to @ls in place. Returns true to keep the series, false
 * when a keep/drop rule dropped it. */
bool relabel_apply(const struct relabel_rules *r, struct label_set *ls);

#endif
