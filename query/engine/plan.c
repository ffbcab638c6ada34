/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "common/intern.h"

#define HOUR_MS 3600000LL
#define DAY_MS  86400000LL

uint64_t plan_key_hash(const char *key)
{
    /* FNV-1a's low bits are weak (bit 0 is the parity of the bytes' low
     * bits), and shards are hash % (peers + 1): 24 hourly blocks split 6/18
     * between two workers. A 64-bit finalizer (MurmurHash3's fmix64)
     * spreads every input bit over the low ones. */
    return hash64(hash_str(key));
}

int plan_time_check(int64_t t, const char *name, char *err, size_t errlen)
{
    if (t < 0 || t > QUERY_MAX_TIME_MS) {
        snprintf(err, errlen,
                 "%s: %" PRId64 " is out of range (Unix milliseconds from 0 to %lld, "
                 "9999-12-31)",
                 name, t, QUERY_MAX_TIME_MS);
        return -EINVAL;
    }
    return 0;
}

int plan_range_check(int64_t from, int64_t until, const char *fname, const char *uname, char *err,
                     size_t errlen)
{
    if (plan_time_check(from, fname, err, errlen) || plan_time_check(until, uname, err, errlen))
        return -EINVAL;
    /* Both are in [0, QUERY_MAX_TIME_MS] now: the difference cannot overflow. */
    if (from >= until) {
        snprintf(err, errlen, "%s: must be before %s (%" PRId64 " >= %" PRId64 ")", fname, uname,
                 from, until);
        return -EINVAL;
    }
    if (until - from > QUERY_MAX_RANGE_MS) {
        snprintf(err, errlen, "%s: the range from %s is longer than 31 days", uname, fname);
        return -EINVAL;
    }
    return 0;
}

bool plan_tenant_valid(const char *t)
{
    size_t n = 0;

    if (!t || !*t || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return false;
    for (; t[n]; n++) {
        char c = t[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n <= 64;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nmans; i++)
        manifest_free(p->mans[i]);
    free(p->mans);
    free(p->items);
    mprof_free(p->notes);
    qcancel_release(p->charged_to, p->bytes);
    free(p);
}

/* Heap bytes of a malloc'd string, with the allocator's per-block cost. */
#define STR_BYTES(s) ((s) ? strlen(s) + 1 + 16 : 0)

/* The heap bytes a decoded footer holds (footer_decode's blocks). */
static uint64_t footer_bytes(const struct seg_footer *f)
{
    uint64_t n;

    if (!f)
        return 0;
    n = sizeof(*f) + STR_BYTES(f->tenant) + STR_BYTES(f->host) +
        f->nsections * sizeof(*f->sections);
    for (size_t i = 0; i < f->nsections; i++) {
        const struct seg_section_info *si = &f->sections[i];
        n += STR_BYTES(si->service) + si->nprofile_types * sizeof(char *) +
             si->nlabels * sizeof(*si->labels);
        for (size_t t = 0; t < si->nprofile_types; t++)
            n += STR_BYTES(si->profile_types[t]);
        for (size_t l = 0; l < si->nlabels; l++) {
            n += STR_BYTES(si->labels[l].name) + si->labels[l].nvalues * sizeof(char *);
            for (size_t v = 0; v < si->labels[l].nvalues; v++)
                n += STR_BYTES(si->labels[l].values[v]);
        }
    }
    return n;
}

/* Charges @n more bytes of @p to its request's budget. */
static int plan_charge(struct plan *p, uint64_t n)
{
    int rc = qcancel_charge(p->charged_to, n);

    if (!rc)
        p->bytes += n;
    return rc;
}

static bool summary_may_match(const struct sel_matcher *m, const struct seg_label_summary *ls)
{
    if (ls->values_truncated)
        return true;
    /* A series may lack the label (matches as ""), unless it is one the
     * writer puts on every series; treating "" as possible is the safe side. */
    if (sel_matcher_match(m, ""))
        return true;
    for (size_t i = 0; i < ls->nvalues; i++)
        if (sel_matcher_match(m, ls->values[i]))
            return true;
    return false;
}

/* The summary of label @name in @info, or NULL: no series has it. */
static const struct seg_label_summary *label_summary(const struct seg_section_info *info,
                                                     const char *name)
{
    for (size_t j = 0; j < info->nlabels; j++)
        if (strcmp(info->labels[j].name, name) == 0)
            return &info->labels[j];
    return NULL;
}

/* What a series without label @name reads: "" (NULL), except the two the
 * engine defaults from the section and the object. */
static const char *label_default(const struct seg_section_info *info, const char *name,
                                 const char *host)
{
    if (strcmp(name, "service_name") == 0)
        return info->service;
    if (strcmp(name, "host_name") == 0)
        return host;
    return NULL;
}

bool plan_section_may_match(const struct selector *sel, const struct seg_section_info *info,
                            const char *host)
{
    for (size_t k = 0; k < sel->n; k++) {
        const struct sel_matcher *m = &sel->m[k];
        const struct seg_label_summary *ls = label_summary(info, m->name);

        if (ls) {
            if (!summary_may_match(m, ls))
                return false;
            continue;
        }
        if (!sel_matcher_match(m, label_default(info, m->name, host)))
            return false;
    }
    return true;
}

bool plan_section_must_match(const struct selector *sel, const struct seg_section_info *info,
                             const char *host)
{
    for (size_t k = 0; sel && k < sel->n; k++) {
        const struct sel_matcher *m = &sel->m[k];
        const struct seg_label_summary *ls = label_summary(info, m->name);

        if (ls && ls->values_truncated)
            return false;
        /* The summary does not say whether some series lack the label: a
         * series without it reads the default, so that must match too. */
        if (!sel_matcher_match(m, label_default(info, m->name, host)))
            return false;
        for (size_t j = 0; ls && j < ls->nvalues; j++)
            if (!sel_matcher_match(m, ls->values[j]))
                return false;
    }
    return true;
}

static int add_manifest(struct plan *p, struct manifest *m)
{
    uint64_t n = sizeof(*m) + m->nentries * sizeof(*m->entries) + m->nreplaces * sizeof(char *);
    int rc;

    for (size_t i = 0; i < m->nentries; i++)
        n += STR_BYTES(m->entries[i].key) + footer_bytes(m->entries[i].footer);
    for (size_t i = 0; i < m->nreplaces; i++)
        n += STR_BYTES(m->replaces[i]);
    if ((rc = plan_charge(p, n)))
        return rc;
    if (p->nmans == p->mans_cap) {
        size_t cap = p->mans_cap ? p->mans_cap * 2 : 16;
        struct manifest **nm = realloc(p->mans, cap * sizeof(*nm));
        if (!nm)
            return -ENOMEM;
        p->mans = nm;
        p->mans_cap = cap;
    }
    p->mans[p->nmans++] = m;
    return 0;
}

static int add_item(struct plan *p, const struct plan_item *it)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        int rc = plan_charge(p, (cap - p->cap) * sizeof(*p->items));
        if (rc)
            return rc;
        struct plan_item *ni = realloc(p->items, cap * sizeof(*ni));
        if (!ni)
            return -ENOMEM;
        p->items = ni;
        p->cap = cap;
    }
    p->items[p->n++] = *it;
    return 0;
}

/* load_manifest's flag beside MANIFEST_NO_REPLACES: the manifest is large
 * enough (PLAN_INDEX_MIN_BYTES) that its index is worth a try. */
#define PLAN_TRY_INDEX       (1u << 16)
#define PLAN_INDEX_MIN_BYTES (64u << 10)

/* The index of hour manifest @key (its entries without `replaces`,
 * docs/format.md §13.1), when there is a readable one; else NULL, and the
 * caller reads the manifest. */
static struct manifest *load_index(struct plan *p, struct store *st, struct cache *c,
                                   const char *key)
{
    struct store_buf b = {0};
    struct manifest *m = NULL;
    char ikey[1024], err[256];
    bool hit = false;

    if (manifest_index_key(ikey, sizeof(ikey), key) <= 0 ||
        cache_fetch(c, st, ikey, 0, 0, &b, &hit))
        return NULL;
    if (hit)
        p->notes->stats.cache_hits++;
    else
        p->notes->stats.bytes_read += b.len;
    if (manifest_decode_flags(b.data, b.len, MANIFEST_NO_REPLACES, &m, err, sizeof(err)))
        m = NULL; /* the manifest itself still answers */
    free(b.data);
    if (m)
        p->manifests++;
    return m;
}

/* Reads and decodes one manifest object; NULL (counted, warned) if it is
 * unreadable. With MANIFEST_NO_REPLACES, its index when there is one. */
static struct manifest *load_manifest(struct plan *p, struct store *st, struct cache *c,
                                      const char *key, unsigned flags)
{
    struct store_buf b = {0};
    struct manifest *m = NULL;
    char err[256] = "";
    bool hit = false;
    int rc;

    if ((flags & MANIFEST_NO_REPLACES) && (flags & PLAN_TRY_INDEX) &&
        (m = load_index(p, st, c, key)))
        return m;
    flags &= ~PLAN_TRY_INDEX;
    rc = cache_fetch(c, st, key, 0, 0, &b, &hit);
    if (rc) {
        p->skipped++;
        mprof_warn(p->notes, "manifest %s: %s", key, strerror(-rc));
        return NULL;
    }
    if (hit)
        p->notes->stats.cache_hits++;
    else
        p->notes->stats.bytes_read += b.len;
    rc = manifest_decode_flags(b.data, b.len, flags, &m, err, sizeof(err));
    free(b.data);
    if (rc) {
        p->skipped++;
        mprof_warn(p->notes, "manifest %s: %s", key, err[0] ? err : strerror(-rc));
        return NULL;
    }
    p->manifests++;
    return m;
}

struct fetch_ctx {
    struct store *st;
    struct cache *c;
    const char *key;
    uint64_t bytes; /* fetched from the store (not the cache) */
    unsigned hits;
};

static int fetch_range(void *ctx, uint64_t off, uint64_t len, uint8_t **out, size_t *outlen)
{
    struct fetch_ctx *f = ctx;
    struct store_buf b = {0};
    bool hit = false;
    int rc = cache_fetch(f->c, f->st, f->key, off, len, &b, &hit);

    if (rc)
        return rc;
    if (hit)
        f->hits++;
    else
        f->bytes += b.len;
    *out = b.data;
    *outlen = b.len;
    return 0;
}

int plan_footer_fetch(struct store *st, struct cache *c, const char *key, uint64_t object_len,
                      struct seg_footer **out, struct plan_fetch_stats *fs, char *err,
                      size_t errlen)
{
    struct fetch_ctx f = {.st = st, .c = c, .key = key};
    unsigned reads = 0;
    int rc;

    if (object_len == 0 && (rc = store_head(st, key, &object_len))) {
        snprintf(err, errlen, "%s", strerror(-rc));
        return rc;
    }
    rc = seg_footer_read(fetch_range, &f, object_len, out, &reads, err, errlen);
    if (rc && err && errlen && !err[0])
        snprintf(err, errlen, "%s", st->err[0] ? st->err : strerror(-rc));
    if (fs) {
        fs->reads += reads;
        fs->bytes += f.bytes;
        fs->cache_hits += f.hits;
        fs->second_reads += reads > 1;
    }
    return rc;
}

/* The footer of the segment @key (of @len bytes, from the listing) as a
 * one-entry manifest, as an entry object of the old layout would hold;
 * NULL (counted, warned) if it is unreadable. */
static struct manifest *load_footer(struct plan *p, struct store *st, struct cache *c,
                                    const char *key, uint64_t len)
{
    struct plan_fetch_stats fs = {0};
    struct seg_footer *f = NULL;
    struct manifest *m = NULL;
    char err[256] = "";
    int rc = plan_footer_fetch(st, c, key, len, &f, &fs, err, sizeof(err));

    p->notes->stats.bytes_read += fs.bytes;
    p->notes->stats.cache_hits += fs.cache_hits;
    if (rc) {
        p->skipped++;
        mprof_warn(p->notes, "segment %s: %s", key, err[0] ? err : strerror(-rc));
        return NULL;
    }
    p->footers++;
    m = calloc(1, sizeof(*m));
    if (m && (m->entries = calloc(1, sizeof(*m->entries))) && (m->entries[0].key = strdup(key))) {
        m->entries[0].footer = f;
        m->nentries = 1;
        return m;
    }
    seg_footer_free(f);
    manifest_free(m);
    return NULL;
}

int64_t plan_seg_key_start(const char *key)
{
    const char *base = strrchr(key, '/');
    int64_t t = 0;

    if (!base || strlen(base + 1) != 13 + 1 + 16 + 4 || base[14] != '-')
        return -1;
    for (int i = 1; i <= 13; i++) {
        if (base[i] < '0' || base[i] > '9')
            return -1;
        t = t * 10 + (base[i] - '0');
    }
    return t;
}

/* Length of a segment key up to its hash ("...<start ms>-"): what
 * manifest_entry_segment_prefix gives for the entry of the same flush. */
static size_t seg_key_flush_len(const char *key)
{
    const char *dash = strrchr(key, '-');
    return dash ? (size_t)(dash - key) + 1 : 0;
}

int plan_replaced_flushes(const struct manifest *m, struct intern *out)
{
    struct intern named = {0};
    bool entries = false;
    int rc = 0;

    /* Hour manifests of one object per flush replace segments only: then
     * there is nothing to add, and the segments' flush prefixes (600,000
     * at the end of an hour of 10,000 hosts) are not worth a table. */
    for (size_t i = 0; i < m->nreplaces && !entries; i++)
        entries = strstr(m->replaces[i], "/entries/") != NULL;
    if (!entries)
        return 0;
    for (size_t i = 0; i < m->nreplaces && !rc; i++) {
        const char *k = m->replaces[i];
        size_t fl = seg_key_flush_len(k);
        if (strstr(k, "/segments/") && fl && intern_strn(&named, k, fl) == MPROF_NONE)
            rc = -ENOMEM;
    }
    for (size_t i = 0; i < m->nreplaces && !rc; i++) {
        char sp[1024];
        int n = manifest_entry_segment_prefix(m->replaces[i], sp, sizeof(sp));
        if (n > 0 && intern_find(&named, sp, (size_t)n) == MPROF_NONE &&
            intern_strn(out, sp, (size_t)n) == MPROF_NONE)
            rc = -ENOMEM;
    }
    intern_free(&named);
    return rc;
}

static int hour_of_key(const char *rest)
{
    /* rest = "HH/..." */
    if (rest[0] < '0' || rest[0] > '9' || rest[1] < '0' || rest[1] > '9' || rest[2] != '/')
        return -1;
    return (rest[0] - '0') * 10 + (rest[1] - '0');
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Adds to count[HH] the keys of @l under @prefix, by the "HH" after it. */
static void count_hours(uint32_t count[100], const struct store_list *l, const char *prefix,
                        size_t plen)
{
    for (size_t i = 0; i < l->n; i++) {
        int h = strncmp(l->keys[i], prefix, plen) == 0 ? hour_of_key(l->keys[i] + plen) : -1;
        if (h >= 0)
            count[h]++;
    }
}

int plan_build(struct store *st, struct cache *c, const struct plan_req *r, struct plan **out,
               char *err, size_t errlen)
{
    struct plan *p = calloc(1, sizeof(*p));
    struct intern seen = {0}, objects = {0};
    int rc = 0;

    *out = NULL;
    if (!p || !(p->notes = mprof_new(1))) {
        free(p);
        return -ENOMEM;
    }
    p->charged_to = r->cancel;
    if ((rc = plan_range_check(r->from, r->until, "from", "until", err, errlen))) {
        plan_free(p);
        return rc;
    }
    /* Both ends are in [0, QUERY_MAX_TIME_MS] and at most 31 days apart, so
     * this loop runs at most PLAN_MAX_DAYS times. */
    int64_t day0 = r->from / DAY_MS, ndays = (r->until - 1) / DAY_MS - day0 + 1;
    if (ndays < 1 || ndays > PLAN_MAX_DAYS) {
        fprintf(stderr, "plan_build: %" PRId64 " days after plan_range_check\n", ndays);
        abort();
    }
    for (int64_t day = day0; day < day0 + ndays && rc == 0; day++) {
        char prefix[256], sprefix[256], date[32];
        struct store_list l = {0}, sl = {0};
        struct intern replaced = {0}, replaced_flush = {0}, named = {0};
        time_t secs = (time_t)(day * 86400);
        struct tm tm;

        if ((rc = qcancel_check(r->cancel)))
            break;
        gmtime_r(&secs, &tm);
        strftime(date, sizeof(date), "%Y-%m-%d", &tm);
        snprintf(prefix, sizeof(prefix), "%s/manifest/%s/", r->tenant, date);
        snprintf(sprefix, sizeof(sprefix), "%s/segments/%s/", r->tenant, date);
        const char *listed = prefix;
        rc = store_list(st, prefix, &l);
        if (rc == -ENOENT)
            rc = 0;
        if (rc == 0 && (rc = store_list(st, listed = sprefix, &sl)) == -ENOENT)
            rc = 0;
        if (rc) {
            snprintf(err, errlen, "listing %s: %s", listed, strerror(-rc));
            store_list_free(&l);
            break;
        }
        size_t plen = strlen(prefix), splen = strlen(sprefix);
        size_t first_new_man = p->nmans;
        /* Keys listed per hour besides its newest manifest (older
         * generations, entries, segments): an hour with none has nothing
         * its manifest's replaces could apply to, and they are not decoded
         * (at the end of an hour of 10,000 hosts compacted by level 1:
         * 600,000 keys, some 50 MB, every query). */
        uint32_t others[100] = {0}; /* by "HH" of the key, 00 to 99 */
        count_hours(others, &l, prefix, plen);
        for (int h = 0; h < 100; h++)
            others[h] -= others[h] > 0; /* the newest hour manifest (or entry) */
        count_hours(others, &sl, sprefix, splen);
        /* Pass 0: hour manifests, which name the entries and segments they
         * replace; pass 1: entry manifests (stores written before one
         * object per flush), which name their segments. */
        for (int pass = 0; pass < 2 && rc == 0; pass++) {
            for (size_t i = 0; i < l.n && rc == 0; i++) {
                /* Newest generation first, so it can shadow older ones. */
                const char *key = l.keys[pass == 0 ? l.n - 1 - i : i];
                if (strncmp(key, prefix, plen) || !ends_with(key, ".man"))
                    continue;
                int hh = hour_of_key(key + plen);
                if (hh < 0)
                    continue;
                int64_t hs = day * DAY_MS + hh * HOUR_MS;
                if (hs + HOUR_MS <= r->from || hs >= r->until)
                    continue;
                bool is_hour = strncmp(key + plen + 3, "hour-", 5) == 0;
                bool is_entry = strncmp(key + plen + 3, "entries/", 8) == 0;
                if ((pass == 0 && !is_hour) || (pass == 1 && !is_entry))
                    continue;
                if (intern_find(&replaced, key, strlen(key)) != MPROF_NONE)
                    continue;
                if ((rc = qcancel_check(r->cancel)))
                    break;
                unsigned flags = pass == 0 && others[hh] == 0 ? MANIFEST_NO_REPLACES : 0;
                /* A manifest too small to hold many replaced keys is read
                 * as it is: its index would save less than its request. */
                size_t li = pass == 0 ? l.n - 1 - i : i;
                if (l.sizes &&
                    l.sizes[li] >= (r->index_min_bytes ? r->index_min_bytes : PLAN_INDEX_MIN_BYTES))
                    flags |= PLAN_TRY_INDEX;
                struct manifest *m = load_manifest(p, st, c, key, flags);
                if (!m)
                    continue;
                if ((rc = add_manifest(p, m))) {
                    manifest_free(m);
                    break;
                }
                if (pass == 0) {
                    if (m->nreplaces > UINT32_MAX - replaced.n ||
                        intern_reserve(&replaced, replaced.n + (uint32_t)m->nreplaces))
                        rc = -ENOMEM;
                    for (size_t k = 0; k < m->nreplaces && rc == 0; k++)
                        if (intern_strn(&replaced, m->replaces[k], strlen(m->replaces[k])) ==
                            MPROF_NONE)
                            rc = -ENOMEM;
                    if (rc == 0)
                        rc = plan_replaced_flushes(m, &replaced_flush);
                }
                for (size_t k = 0; pass == 1 && k < m->nentries && rc == 0; k++)
                    if (m->entries[k].key && intern_strn(&named, m->entries[k].key,
                                                         strlen(m->entries[k].key)) == MPROF_NONE)
                        rc = -ENOMEM;
            }
        }
        /* Pass 2: segments no manifest read so far names or replaces: one
         * suffix read of each one's footer (docs/format.md §3.2). A segment
         * whose entry an hour manifest replaces is in a block already. */
        for (size_t i = 0; i < sl.n && rc == 0; i++) {
            const char *key = sl.keys[i];
            if (strncmp(key, sprefix, splen) || !ends_with(key, ".seg"))
                continue;
            int hh = hour_of_key(key + splen);
            int64_t hs = day * DAY_MS + hh * HOUR_MS, start = plan_seg_key_start(key);
            if (hh < 0 || hs + HOUR_MS <= r->from || hs >= r->until || start >= r->until)
                continue;
            size_t kl = strlen(key), fl = seg_key_flush_len(key);
            if (intern_find(&replaced, key, kl) != MPROF_NONE ||
                intern_find(&named, key, kl) != MPROF_NONE ||
                (fl && intern_find(&replaced_flush, key, fl) != MPROF_NONE))
                continue;
            if ((rc = qcancel_check(r->cancel)))
                break;
            struct manifest *m = load_footer(p, st, c, key, sl.sizes ? sl.sizes[i] : 0);
            if (m && (rc = add_manifest(p, m)))
                manifest_free(m);
        }
        for (size_t i = first_new_man; i < p->nmans && rc == 0; i++) {
            struct manifest *m = p->mans[i];
            for (size_t e = 0; e < m->nentries && rc == 0; e++) {
                const struct manifest_entry *me = &m->entries[e];
                const struct seg_footer *f = me->footer;
                if (!me->key || !f)
                    continue;
                if (f->t_max_ms < r->from || f->t_min_ms >= r->until)
                    continue;
                if (intern_find(&seen, me->key, strlen(me->key)) != MPROF_NONE)
                    continue;
                /* An object an hour manifest replaces is in a block now,
                 * whichever manifest names it (an entry written after its
                 * segment was merged alone). */
                if (intern_find(&replaced, me->key, strlen(me->key)) != MPROF_NONE)
                    continue;
                if (intern_strn(&seen, me->key, strlen(me->key)) == MPROF_NONE) {
                    rc = -ENOMEM;
                    break;
                }
                bool any = false;
                for (size_t s = 0; s < f->nsections; s++) {
                    const struct seg_section_info *si = &f->sections[s];
                    if (si->t_max_ms < r->from || si->t_min_ms >= r->until)
                        continue;
                    if (r->profile_type) {
                        bool has = false;
                        for (size_t t = 0; t < si->nprofile_types && !has; t++)
                            has = strcmp(si->profile_types[t], r->profile_type) == 0;
                        if (!has)
                            continue;
                    }
                    if (r->sel && !plan_section_may_match(r->sel, si, f->host))
                        continue;
                    struct plan_item it = {.key = me->key,
                                           .host = f->host ? f->host : "",
                                           .info = si,
                                           .footer = f,
                                           .key_hash = plan_key_hash(me->key)};
                    if ((rc = add_item(p, &it)))
                        break;
                    any = true;
                }
                if (any && intern_strn(&objects, me->key, strlen(me->key)) == MPROF_NONE)
                    rc = -ENOMEM;
            }
        }
        intern_free(&replaced);
        intern_free(&replaced_flush);
        intern_free(&named);
        store_list_free(&l);
        store_list_free(&sl);
    }
    p->objects = objects.n;
    intern_free(&seen);
    intern_free(&objects);
    if (rc) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory planning the query");
        else if (rc == -ETIMEDOUT || rc == -ECANCELED)
            snprintf(err, errlen, "%s while planning",
                     rc == -ETIMEDOUT ? "deadline passed" : "cancelled");
        else if (rc == -E2BIG || rc == -ENOBUFS)
            qmem_error(r->cancel ? r->cancel->mem : NULL, rc, err, (unsigned)errlen);
        plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}
