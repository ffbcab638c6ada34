/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mprof — a merged profile: what a query worker builds from the sections of
 * a selection, merges with its threads' and its peers' partials, and turns
 * into views (top, flame graph, series, diff, pprof).
 *
 * Owns one string table (function names, label names and values, types),
 * one stack table (sequences of name ids, leaf first) and one set of label
 * pairs, all common/intern.h tables, so every later step works on dense
 * integer ids:
 * values are a dense array [stack * ntypes + type]. Series points are dense
 * [group * nbuckets + bucket] arrays with a presence bit. Invariant: ids are
 * stable once handed out; every array is sized to its table.
 *
 * The wire encoding (mprof_encode/mprof_decode) is what peers return from
 * /internal/v1/select; the decoder bounds-checks every count and id. It
 * leaves out the individual profiles (ind, ex, id_found): queries that
 * need them are not sent to peers (engine.h).
 */
#ifndef STOKE_QUERY_MPROF_H
#define STOKE_QUERY_MPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/intern.h"

#define MPROF_NONE         UINT32_MAX /* == INTERN_NONE */
#define MPROF_MAX_TYPES    16
#define MPROF_MAX_WARNINGS 20

/* One individual profile (query.h): its id (time, hash), its value of the
 * query's profile type, and its label set (an id in mprof.lsets). */
struct mprof_ind {
    int64_t time;
    uint64_t hash;
    int64_t value;
    uint32_t lset; /* MPROF_NONE: none (an empty exemplar slot) */
};
/* Individual profiles one query may collect (32 bytes each). */
#define MPROF_MAX_INDIVIDUAL (2u << 20)

struct qstats {
    uint64_t objects, sections, bytes_read, cache_hits, skipped;
};

/* One node path's call tree proof sums (mprof.cpf). */
struct mprof_cproof {
    uint32_t pc, cs;
    int64_t unc;
};

struct mprof {
    struct intern str;
    /* stacks: u32 sequences of string ids */
    struct intern stk;
    uint32_t nstacks; /* stk.n */
    uint64_t nframes; /* frames of all stacks */
    /* values */
    uint32_t ntypes;
    uint32_t type_type[MPROF_MAX_TYPES], type_unit[MPROF_MAX_TYPES]; /* string ids */
    uint32_t period_type, period_unit;
    int64_t period;
    int64_t *vals; /* vals_cap * ntypes */
    uint32_t vals_cap;
    /* series */
    int64_t from, step;
    uint32_t nbuckets;
    uint32_t *group_val; /* string id of each group's label value */
    uint32_t ngroups, groups_cap;
    int64_t *points;  /* groups_cap * nbuckets */
    uint8_t *present; /* groups_cap * nbuckets */
    /* label pairs seen: u64 keys name id << 32 | value id */
    struct intern pairs;
    /* Individual profiles. lsets: label sets, each a u32 sequence of
     * (name id, value id) pairs sorted by name. ind: Q_INDIVIDUAL's list
     * (unordered). ex: with want_ex, each series point's exemplar
     * [group * nbuckets + bucket], the largest (then smallest id) wins.
     * id_found: one flag per id of a Q_PROFILE by ids. */
    struct intern lsets;
    struct mprof_ind *ind;
    size_t nind, ind_cap;
    bool want_ex, ind_full;
    struct mprof_ind *ex;
    uint8_t *id_found;
    uint32_t nids;
    /* Function totals (Q_TOP; and the section totals compaction writes,
     * codec/topsum.h): when `top`, the profile holds per string id its self
     * and total [name * ntypes + type] (recursion counted once a stack) and
     * each column's sum, instead of stacks. */
    bool top;
    int64_t *fself, *ftotal;
    uint32_t fcap;
    int64_t fsum[MPROF_MAX_TYPES];
    /* Call tree summaries (ctree.h): how many sections came from their
     * cut trees, and per column the sum of their cuts, which bounds how far
     * any node of a flame graph drawn from @p may be off. */
    uint32_t ctrees;
    int64_t cut[MPROF_MAX_TYPES];
    /* What shows whether a flame graph of column 0 drawn from trees is
     * exact (views.h view_flame_proved), summed over the cpf_trees tree
     * sections that recorded it (ctree_merge; peers' answers do not carry
     * it). Per stack, for the tree node whose path it is: cpf[s].pc, the
     * sections that kept the node below a parent with callees left out;
     * .cs, the sections that left out callees of the node itself; .unc,
     * the most those callees can hold, sum of min(left out, the section's
     * cut). The root's cs and unc in root_cs, root_unc. NULL until a
     * tree is merged; then vals_cap entries. */
    struct mprof_cproof *cpf;
    uint32_t cpf_trees, root_cs;
    int64_t root_unc;
    /* bookkeeping */
    struct qstats stats;
    char *warnings[MPROF_MAX_WARNINGS];
    uint32_t nwarnings;
    uint64_t warnings_dropped;
};

/* Values come from segments and peers, which may be hostile: sums wrap
 * (two's complement) instead of being undefined behaviour. */
#define MPROF_ADD(dst, v) ((dst) = (int64_t)((uint64_t)(dst) + (uint64_t)(v)))

/* Allocates an empty profile of @ntypes value columns (0 < ntypes <=
 * MPROF_MAX_TYPES; the types' names are set with mprof_set_types). */
struct mprof *mprof_new(uint32_t ntypes);
void mprof_free(struct mprof *p);

/* The heap bytes @p holds (its tables and arrays, as allocated): what a
 * query's memory budget is charged for it (query/engine/qmem.h). */
size_t mprof_bytes(const struct mprof *p);

/* Interns the stack @f[0..n) (name ids, leaf first); MPROF_NONE on ENOMEM.
 * Grows vals (zeroed) with the table. */
uint32_t mprof_stack(struct mprof *p, const uint32_t *f, uint32_t n);
/* Makes room for @extra more stacks (table, index and values) in one step,
 * at least doubling what is there, so a merge of a known size does not
 * rebuild the index several times on the way. 0 or -ENOMEM (nothing is
 * lost: the table then grows one stack at a time). */
int mprof_reserve(struct mprof *p, uint32_t extra);
/* The same with the key's hash, intern_hash(f, n * 4), computed by the
 * caller (who hashes a few stacks ahead and intern_prefetch()es them). */
uint32_t mprof_stack_hashed(struct mprof *p, const uint32_t *f, uint32_t n, uint32_t hash);
static inline uint32_t mprof_stack_len(const struct mprof *p, uint32_t s)
{
    return p->stk.e[s].len / (uint32_t)sizeof(uint32_t);
}
static inline const uint32_t *mprof_stack_frames(const struct mprof *p, uint32_t s)
{
    return (const uint32_t *)intern_get(&p->stk, s, NULL);
}

/* Allocates p->cpf (zeroed) if it is not yet. 0 or -ENOMEM. */
int mprof_cproof_init(struct mprof *p);

/* Adds @self and @total to function name @name (a string id) in column
 * @col, growing the arrays; makes @p a function totals profile (top).
 * 0 or -ENOMEM. */
int mprof_top_add(struct mprof *p, uint32_t name, uint32_t col, int64_t self, int64_t total);
/* Series: sets the bucket grid (before any point is added). */
int mprof_series_init(struct mprof *p, int64_t from, int64_t step, uint32_t nbuckets);
/* Group id for label value string id @val, created on first use. */
uint32_t mprof_group(struct mprof *p, uint32_t val);

/* Keeps only the stacks whose outermost frames are @names[0..n) (root
 * first: Pyroscope's stack trace selector call_site): the values of every
 * other stack become 0 in every column. n = 0 keeps everything. */
void mprof_keep_call_site(struct mprof *p, const char *const *names, size_t n);

/* Appends @v to p->ind (0; -E2BIG past MPROF_MAX_INDIVIDUAL, which also
 * sets ind_full; -ENOMEM). */
int mprof_ind_add(struct mprof *p, const struct mprof_ind *v);
/* Keeps @v in exemplar slot @i when it beats what is there. */
void mprof_ex_offer(struct mprof *p, size_t i, const struct mprof_ind *v);
/* Label set @l's pairs: *n pairs at the returned pointer (name, value, ...). */
static inline const uint32_t *mprof_lset(const struct mprof *p, uint32_t l, uint32_t *n)
{
    uint32_t len;
    const uint32_t *v = intern_get(&p->lsets, l, &len);

    *n = len / (2 * (uint32_t)sizeof(uint32_t));
    return v;
}

/* Records that label pair (name, value) (string ids) was seen. 0 or -ENOMEM. */
int mprof_pair(struct mprof *p, uint32_t name, uint32_t value);
/* The pairs seen, in first-seen order: i < p->pairs.n. */
static inline void mprof_pair_get(const struct mprof *p, uint32_t i, uint32_t *name,
                                  uint32_t *value)
{
    uint64_t k = *(const uint64_t *)intern_get(&p->pairs, i, NULL);

    *name = (uint32_t)(k >> 32);
    *value = (uint32_t)k;
}

/* Appends a warning (copied; at most MPROF_MAX_WARNINGS kept, the rest
 * counted). */
void mprof_warn(struct mprof *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Adds @src into @dst: strings, stacks, values, series, pairs, stats and
 * warnings. Types are matched by (type, unit) name; @dst takes @src's types
 * when it has none named yet. 0 or -ENOMEM / -EINVAL (grid mismatch). */
int mprof_merge(struct mprof *dst, const struct mprof *src);

/* Wire encoding for peers. */
int mprof_encode(const struct mprof *p, uint8_t **buf, size_t *len);
int mprof_decode(const uint8_t *buf, size_t len, struct mprof **out);

#endif
