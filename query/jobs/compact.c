/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compact — see compact.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/manifest.h"
#include "codec/segment.h"
#include "codec/wire.h"
#include "common/intern.h"
#include "query/engine/ctree.h"
#include "query/engine/merge.h"
#include "query/engine/plan.h"
#include "query/jobs/compact.h"
#include "query/jobs/lease.h"
#include "query/jobs/rules.h"

#define HOUR_MS 3600000LL
/* Level-1 spans are whole minutes dividing the hour: at most 60. */
#define MAX_SPANS 60

/* One pass: what it reports to. */
struct pass {
    const struct compact_opts *o;
    struct compact_stats *s;
    int64_t now;     /* the pass's clock at its start: what it merges */
    int64_t t0;      /* CLOCK_MONOTONIC ms at its start */
    unsigned ttl_ms; /* of its leases */
    /* The lease of the hour being compacted (replicas), else NULL; when
     * it was taken or last renewed (pass_clock); set when it was lost. */
    struct lease *lease;
    int64_t lease_at;
    bool lease_lost;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The clock as leases see it: the pass's start plus the time since, so a
 * lease taken or renewed late in a long pass runs its full TTL. */
static int64_t pass_clock(const struct pass *p)
{
    return p->now + (mono_ms() - p->t0);
}

/*
 * Before a costly step (reading an object, writing a block, committing)
 * of an hour under a lease: once more than half the TTL has passed since
 * the lease was taken or last renewed, renews it (lease_renew, the same
 * create-only put). True when the hour is to be left now, *ret set: 0
 * when another replica took the lease over meanwhile (counted in
 * leases_lost; the hour is abandoned without its commit, the other
 * replica does it), else the store's errno.
 */
static bool lease_gone(struct store *st, struct pass *p, int *ret)
{
    if (!p->lease)
        return false;
    int64_t t = pass_clock(p);
    if ((t - p->lease_at) * 2 <= (int64_t)p->ttl_ms)
        return false;
    *ret = lease_renew(st, p->lease, t, p->ttl_ms);
    if (*ret == 0) {
        p->lease_at = t;
        p->s->leases_renewed++;
        return false;
    }
    if (*ret == -EBUSY) {
        p->s->leases_lost++;
        p->lease_lost = true;
        *ret = 0;
    }
    return true;
}

/* The fault-injection hook of the tests (compact_opts.fault). */
static void step_done(struct pass *p, const char *step)
{
    if (p->o->fault)
        p->o->fault(step, p->o->fault_arg);
}

/* The span of the hour starting at @hour_ms that a flush starting at @t
 * belongs to at @level, or -1 when it is not to be merged now: at level 1
 * a flush is merged once its span has ended grace_s ago (its hosts have
 * written it), at level 2 the whole hour is one span. */
static int span_of(const struct pass *p, int level, int64_t hour_ms, int64_t t)
{
    if (level == 2)
        return 0;
    int64_t span = (int64_t)compact_span_s(p->o) * 1000;
    if (t < hour_ms || t >= hour_ms + HOUR_MS)
        return -1; /* not a key of ours to place: the hourly pass merges it */
    int64_t i = (t - hour_ms) / span;
    if (hour_ms + (i + 1) * span + (int64_t)compact_grace_s(p->o) * 1000 > p->now)
        return -1;
    return (int)i;
}

/* The flush start of an entry manifest of the old layout (its segment's
 * key prefix ends "<start ms>-"), or -1. */
static int64_t entry_start(const char *entry_key)
{
    char sp[1024];
    int n = manifest_entry_segment_prefix(entry_key, sp, sizeof(sp));
    int64_t t = 0;
    if (n < 14 || sp[n - 1] != '-')
        return -1;
    for (int i = n - 14; i < n - 1; i++) {
        if (sp[i] < '0' || sp[i] > '9')
            return -1;
        t = t * 10 + (sp[i] - '0');
    }
    return t;
}

unsigned compact_span_s(const struct compact_opts *o)
{
    unsigned v = o->span_s ? o->span_s : 300;
    return v < 60 || v > 3600 || 3600 % v ? 300 : v;
}

unsigned compact_grace_s(const struct compact_opts *o)
{
    return o->grace_s ? o->grace_s : 90;
}

/* "WHAT KEY: WHY", each part cut to fit last_error; every one goes to the
 * caller's on_error too. */
static void note_error(struct pass *p, const char *what, const char *key, const char *why)
{
    p->s->errors++;
    snprintf(p->s->last_error, sizeof(p->s->last_error), "%.20s %.120s: %.100s", what, key, why);
    if (p->o->on_error) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s %s: %s", what, key, why);
        p->o->on_error(msg, p->o->on_error_arg);
    }
}

/* "<tenant>/<kind>/<YYYY-MM-DD>/<HH>/..." → the hour's start, or -1. */
static int64_t key_hour(const char *key, size_t tenant_len)
{
    const char *p = strchr(key + tenant_len + 1, '/');
    struct tm tm = {0};
    char tail;

    if (!p)
        return -1;
    if (sscanf(p + 1, "%4d-%2d-%2d/%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tail) != 5 ||
        tail != '/' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000;
}

static int get_all(struct store *st, const char *key, struct store_buf *b)
{
    return store_get(st, key, 0, 0, b);
}

/* Reads and decodes a manifest. A store failure is returned as it is; a
 * manifest that does not decode (-EBADMSG, -EPROTO) is counted. */
static int load_manifest(struct store *st, const char *key, struct manifest **m, struct pass *p)
{
    struct store_buf b = {0};
    char err[256];
    int ret = get_all(st, key, &b);

    *m = NULL;
    if (ret)
        return ret;
    ret = manifest_decode(b.data, b.len, m, err, sizeof(err));
    free(b.data);
    if (ret == -EBADMSG || ret == -EPROTO)
        note_error(p, "manifest", key, err);
    return ret;
}

/* True when @key is in @set (the replaces of the hour manifest in force:
 * 600,000 keys at the end of an hour of 10,000 hosts, looked up for every
 * key listed, so a hash set, not a scan). */
static bool in_set(const struct intern *set, const char *key)
{
    return intern_find(set, key, strlen(key)) != MPROF_NONE;
}

/* The decoded sections of one or more objects that go into the block
 * together or not at all. */
struct batch {
    struct seg_section **secs;
    size_t n, cap;
};

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        seg_section_free(b->secs[i]);
    free(b->secs);
    memset(b, 0, sizeof(*b));
}

static bool same_types(const struct seg_section *a, const struct seg_section *b)
{
    if (a->ntypes != b->ntypes)
        return false;
    for (uint32_t t = 0; t < a->ntypes; t++)
        if (strcmp(a->strings[a->types[t].type], b->strings[b->types[t].type]) ||
            strcmp(a->strings[a->types[t].unit], b->strings[b->types[t].unit]))
            return false;
    return true;
}

/*
 * Reads and decodes every section of the object @key (described by @f)
 * into @b, and checks that each can go into @w next to what @w and @b
 * already hold. Adds nothing to @w. The sections come from @obj (the
 * whole object, @obj_len bytes) when given, else from one ranged read
 * covering them all: one GET per object, not one per section
 * (docs/storage.md, cost model). Returns 0; -EBADMSG (corrupt or
 * truncated) or -EINVAL (sample types other than the block's), counted;
 * or the store's errno, or -ENOMEM.
 */
static int batch_load(struct store *st, const struct seg_writer *w, const char *key,
                      const struct seg_footer *f, const uint8_t *obj, uint64_t obj_len,
                      struct batch *b, struct pass *p)
{
    struct compact_stats *s = p->s;
    struct store_buf buf = {0};
    uint64_t lo = UINT64_MAX, hi = 0, base_off = 0;
    char err[256];
    int ret = 0;

    if (!key || !f) {
        note_error(p, "manifest entry", key ? key : "", "no key or no footer");
        return -EBADMSG;
    }
    if (f->nsections == 0)
        return 0;
    for (size_t i = 0; i < f->nsections; i++) {
        const struct seg_section_info *info = &f->sections[i];
        if (info->offset < lo)
            lo = info->offset;
        if (info->offset + info->length > hi)
            hi = info->offset + info->length;
    }
    if (!obj) {
        if ((ret = store_get(st, key, lo, hi - lo, &buf))) {
            note_error(p, "reading", key, st->err);
            return ret;
        }
        s->bytes_in += buf.len;
        obj = buf.data;
        obj_len = buf.len;
        base_off = lo;
    }
    for (size_t i = 0; i < f->nsections; i++) {
        const struct seg_section_info *info = &f->sections[i];
        struct seg_section *sec = NULL;
        if (info->offset + info->length - base_off > obj_len) {
            note_error(p, "section of", key, "beyond the object's end");
            ret = -EBADMSG;
            goto out;
        }
        ret = seg_section_decode(obj + (info->offset - base_off), info->length, info, &sec, err,
                                 sizeof(err));
        if (ret) {
            if (ret == -EBADMSG)
                note_error(p, "section of", key, err);
            goto out;
        }
        bool fits = seg_writer_check_section(w, sec) == 0;
        for (size_t j = 0; j < b->n && fits; j++)
            fits = strcmp(b->secs[j]->service, sec->service) || same_types(b->secs[j], sec);
        if (!fits) {
            snprintf(err, sizeof(err), "section %.64s: sample types differ from the block's",
                     sec->service);
            note_error(p, "merging", key, err);
            seg_section_free(sec);
            ret = -EINVAL;
            goto out;
        }
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 8;
            struct seg_section **v = realloc(b->secs, cap * sizeof(*v));
            if (!v) {
                seg_section_free(sec);
                ret = -ENOMEM;
                goto out;
            }
            b->secs = v;
            b->cap = cap;
        }
        b->secs[b->n++] = sec;
    }
out:
    free(buf.data);
    return ret;
}

/* The largest segment read whole, in one GET; a larger one (none an agent
 * writes) has its footer read by suffix and its sections by one range. */
#define WHOLE_MAX (64u << 20)

/*
 * The footer of the segment @key (@size bytes from the listing, 0 when
 * unknown) into *f and, when it is read whole, the object into *whole
 * (else whole->data stays NULL and batch_load reads the sections): one GET
 * for a flush's segment, footer and sections together. 0 or a negative
 * errno, with a message in @err.
 */
static int segment_read(struct store *st, const char *key, uint64_t size, struct store_buf *whole,
                        struct seg_footer **f, struct pass *p, char *err, size_t errlen)
{
    uint64_t need = 0;
    int ret;

    *f = NULL;
    if (size == 0 || size > WHOLE_MAX)
        return plan_footer_fetch(st, NULL, key, size, f, NULL, err, errlen);
    if ((ret = store_get(st, key, 0, 0, whole))) {
        snprintf(err, errlen, "%.200s", st->err[0] ? st->err : strerror(-ret));
        return ret;
    }
    p->s->bytes_in += whole->len;
    ret = seg_footer_parse(whole->data, whole->len, whole->len, f, &need, err, errlen);
    if (ret == -EAGAIN) { /* cannot be: the tail is the whole object */
        snprintf(err, errlen, "footer starts before the object");
        ret = -EBADMSG;
    }
    if (ret) {
        free(whole->data);
        whole->data = NULL;
        whole->len = 0;
    }
    return ret;
}

/* batch_load of one flush's object, with the recording rules fed its
 * sections as they go into the block (query/jobs/rules.h): no read of
 * their own. */
static int flush_load(struct store *st, const struct seg_writer *w, const char *key,
                      const struct seg_footer *f, const uint8_t *obj, uint64_t obj_len,
                      struct batch *b, struct pass *p)
{
    struct rule_eval *rules = p->o->rules;
    size_t n0 = b->n;
    int lr = batch_load(st, w, key, f, obj, obj_len, b, p);

    for (size_t i = n0; rules && !lr && i < b->n; i++)
        rule_eval_section(rules, b->secs[i], f->host, f->sections[i - n0].length);
    if (rules && !lr)
        rule_eval_flush_done(rules);
    return lr;
}

/* Adds every section of @b to @w. Checked by batch_load, so only memory
 * can fail here; then @w holds part of the batch and must not be written. */
static int batch_add(struct seg_writer *w, const struct batch *b, struct compact_stats *s)
{
    for (size_t i = 0; i < b->n; i++) {
        int ret = seg_writer_add_section(w, b->secs[i]);
        if (ret)
            return ret;
        s->sections_merged++;
    }
    return 0;
}

/* Level 2: <gen>-<hash>.blk; level 1: <gen>-l1-<span>-<hash>.blk. */
static int block_key(char *buf, size_t len, const char *tenant, int64_t hour_ms, unsigned gen,
                     int level, unsigned span, uint64_t hash)
{
    char date[11], hour[3], lv[16] = "";
    if (utc_date_hour(hour_ms, date, hour))
        return -EINVAL;
    if (level == 1)
        snprintf(lv, sizeof(lv), "l1-%02u-", span);
    int n = snprintf(buf, len, "%s/blocks/%s/%s/%06u-%s%016llx.blk", tenant, date, hour, gen, lv,
                     (unsigned long long)hash);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

struct todo {
    char **keys;
    size_t n, cap;
};

static int todo_add(struct todo *t, const char *key)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **k = realloc(t->keys, cap * sizeof(*k));
        if (!k)
            return -ENOMEM;
        t->keys = k;
        t->cap = cap;
    }
    if (!(t->keys[t->n] = strdup(key)))
        return -ENOMEM;
    t->n++;
    return 0;
}

static void todo_free(struct todo *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->keys[i]);
    free(t->keys);
}

/* The generation of an hour manifest named @base ("hour-NNNNNN.man"), or
 * -1. */
static long gen_of(const char *base)
{
    unsigned g;
    if (strlen(base) != 15 || sscanf(base, "hour-%6u.man", &g) != 1)
        return -1;
    return (long)g;
}

/* The generation of an hour manifest key under @prefix, or -1. */
static long hour_gen(const char *key, const char *prefix)
{
    return gen_of(key + strlen(prefix));
}

/* True when an hour manifest newer than @gen is under @prefix now: another
 * compactor has moved the hour on since we listed it. */
static bool moved_on(struct store *st, const char *prefix, long gen)
{
    struct store_list l = {0};
    bool moved = false;
    if (store_list(st, prefix, &l))
        return true; /* cannot tell: assume the worst and leave the hour */
    for (size_t i = 0; i < l.n && !moved; i++)
        moved = hour_gen(l.keys[i], prefix) > gen;
    store_list_free(&l);
    return moved;
}

/* True unless the manifest @man_key surely does not list @obj_key (it
 * does not exist, or decodes without it): when in doubt, keep. */
static bool listed_by(struct store *st, const char *man_key, const char *obj_key)
{
    struct store_buf b = {0};
    struct manifest *m = NULL;
    int ret = get_all(st, man_key, &b);
    if (ret)
        return ret != -ENOENT;
    ret = manifest_decode(b.data, b.len, &m, NULL, 0);
    free(b.data);
    if (ret)
        return true;
    bool listed = false;
    for (size_t i = 0; i < m->nentries && !listed; i++)
        listed = m->entries[i].key && strcmp(m->entries[i].key, obj_key) == 0;
    manifest_free(m);
    return listed;
}

/* The generation in a block's name "<gen>-...blk" (@base), or -1. */
static long block_gen(const char *base)
{
    long g = 0;
    for (int i = 0; i < 6; i++) {
        if (base[i] < '0' || base[i] > '9')
            return -1;
        g = g * 10 + (base[i] - '0');
    }
    return base[6] == '-' ? g : -1;
}

/*
 * The blocks of the hour that @hm does not list. With @gen < 0: counted
 * (blocks_orphaned). With @gen >= 0, the generation of @hm, the hour
 * manifest in force: those of generation @gen are deleted
 * (orphans_deleted), the others left alone. Such a block was written for
 * the commit of hour-<gen>.man by a pass whose commit did not happen (it
 * crashed, or lost the create-only put to the pass whose hour-<gen>.man
 * this is): no manifest lists it, and none ever will, since each
 * generation's manifest is written once and later ones list only blocks
 * of their own or their predecessor's entries. A block of another
 * generation may be a live pass's work in progress (gen + 1), or the
 * only copy of data an unreadable manifest listed (docs/format.md §13.2):
 * those stay.
 */
static void orphans(struct store *st, const char *tenant, const char *date, const char *hour,
                    const struct manifest *hm, long gen, struct compact_stats *s)
{
    char prefix[512];
    struct store_list l = {0};
    snprintf(prefix, sizeof(prefix), "%s/blocks/%s/%s/", tenant, date, hour);
    if (store_list(st, prefix, &l))
        return;
    for (size_t i = 0; i < l.n; i++) {
        bool listed = false;
        for (size_t j = 0; hm && j < hm->nentries && !listed; j++)
            listed = strcmp(hm->entries[j].key, l.keys[i]) == 0;
        if (listed)
            continue;
        if (gen < 0)
            s->blocks_orphaned++;
        else if (block_gen(l.keys[i] + strlen(prefix)) == gen && store_del(st, l.keys[i]) == 0)
            s->orphans_deleted++;
    }
    store_list_free(&l);
}

/*
 * Compacts one hour. Returns 0 when the hour is done or left as it is
 * (what could not be read is counted in @s), or a negative errno when the
 * store or memory failed: the pass stops, and nothing was deleted that the
 * hour manifest in force does not cover.
 */
static int compact_hour(struct store *st, const char *tenant, int64_t hour_ms, int level,
                        unsigned blocks_seen, struct pass *p)
{
    struct compact_stats *s = p->s;
    char prefix[512], sprefix[512], date[11], hour[3], key[1024] = "";
    struct store_list l = {0}, sl = {0};
    /* segment keys that entries read now name; flush prefixes of entries
     * that could not be read (which segment they name is unknown); flush
     * prefixes the hour manifest in force replaces (plan_replaced_flushes) */
    struct intern named = {0}, unknown_flush = {0}, replaced_flush = {0}, old_rep = {0};
    uint64_t nflushes = 0;
    struct manifest *old = NULL, *hm = NULL;
    /* one block per span: level 1 by span of the hour, level 2 one */
    struct seg_writer *ws[MAX_SPANS] = {0};
    struct ctree_cache *caches[MAX_SPANS] = {0};
    size_t nin[MAX_SPANS] = {0};
    struct todo merged = {0}, del = {0}, garbage = {0}, written = {0};
    struct batch b = {0};
    const char *old_key = NULL;
    long max_gen = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    struct rule_eval *rules = p->o->rules;
    size_t hour_mark = rules ? rule_eval_mark(rules) : 0;
    bool committed = false;
    int ret;

    if (utc_date_hour(hour_ms, date, hour))
        return -EINVAL;
    snprintf(prefix, sizeof(prefix), "%s/manifest/%s/%s/", tenant, date, hour);
    snprintf(sprefix, sizeof(sprefix), "%s/segments/%s/%s/", tenant, date, hour);
    ret = store_list(st, prefix, &l);
    if (ret && ret != -ENOENT) /* -ENOENT: no manifest yet, segments alone */
        return ret;

    /* The newest hour manifest that decodes is the one in force, as for
     * the query planner; newer ones that do not decode are skipped (and
     * replaced below), never a reason to stop. */
    for (size_t i = 0; i < l.n; i++) {
        long g = hour_gen(l.keys[i], prefix);
        if (g > max_gen)
            max_gen = g;
    }
    if (max_gen >= 999999) {
        note_error(p, "hour of", prefix, "no generation left after 999999");
        ret = 0;
        goto out;
    }
    for (long g = max_gen; g >= 0 && !old; g--) {
        const char *k = NULL;
        for (size_t i = 0; i < l.n && !k; i++)
            if (hour_gen(l.keys[i], prefix) == g)
                k = l.keys[i];
        if (!k)
            continue;
        ret = load_manifest(st, k, &old, p);
        if (ret == 0) {
            old_key = k;
        } else if (ret == -EBADMSG) {
            if ((ret = todo_add(&garbage, k)))
                goto out;
        } else {
            /* -EPROTO: a newer version's, not ours to replace; -ENOENT:
             * another compactor moved the hour on since the listing */
            if (ret == -EPROTO || ret == -ENOENT)
                ret = 0;
            goto out;
        }
    }

    for (size_t i = 0; old && i < old->nreplaces; i++)
        if (intern_str(&old_rep, old->replaces[i]) == MPROF_NONE) {
            ret = -ENOMEM;
            goto out;
        }
    /* Hour manifests of older generations that the one in force replaces
     * are left over by a pass that stopped before its deletes: they go. */
    long old_gen = old_key ? hour_gen(old_key, prefix) : -1;
    for (size_t i = 0; old && i < l.n; i++) {
        long g = hour_gen(l.keys[i], prefix);
        if (g >= 0 && g < old_gen && in_set(&old_rep, l.keys[i]) &&
            (ret = todo_add(&del, l.keys[i])))
            goto out;
    }
    /* Blocks of the generation in force that it does not list: what a
     * pass that crashed or lost its commit left. Listed only when the day
     * listing held more blocks than the manifest names. */
    if (old && blocks_seen > old->nentries)
        orphans(st, tenant, date, hour, old, old_gen, s);
    for (int i = 0; i < (level == 1 ? MAX_SPANS : 1); i++) {
        if (!(ws[i] = seg_writer_new(tenant, "compacted"))) {
            ret = -ENOMEM;
            goto out;
        }
        /* every block section carries its function totals, so a top
         * query reads those instead of the rows (docs/format.md §3.5) */
        /* and its call tree, cut to its largest nodes, so a flame graph
         * reads that (§3.6): both from one merge of the section */
        if (!(caches[i] = ctree_cache_new())) {
            ret = -ENOMEM;
            goto out;
        }
        seg_writer_set_topsum(ws[i], engine_summaries_top, caches[i]);
        seg_writer_set_calltree(ws[i], engine_summaries_tree, caches[i]);
    }
    hm = calloc(1, sizeof(*hm));
    if (!hm) {
        ret = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        const char *k = l.keys[i];
        size_t kl = strlen(k);
        if (strncmp(k + strlen(prefix), "entries/", 8) != 0 || kl < 4 ||
            strcmp(k + kl - 4, ".man") != 0)
            continue;
        int sp = span_of(p, level, hour_ms, entry_start(k));
        if (sp < 0) {
            /* not yet: its segment stays with it, not merged alone */
            char fp[1024];
            int n = manifest_entry_segment_prefix(k, fp, sizeof(fp));
            if (n > 0 && intern_strn(&unknown_flush, fp, (size_t)n) == MPROF_NONE) {
                ret = -ENOMEM;
                goto out;
            }
            continue;
        }
        struct seg_writer *w = ws[sp];
        struct manifest *e = NULL;
        if (lease_gone(st, p, &ret))
            goto out;
        if ((ret = load_manifest(st, k, &e, p)) != 0) {
            char fp[1024];
            int n = manifest_entry_segment_prefix(k, fp, sizeof(fp));
            if (ret != -ENOMEM && n > 0 && intern_strn(&unknown_flush, fp, (size_t)n) == MPROF_NONE)
                ret = -ENOMEM;
            if (ret == -ENOMEM)
                goto out;
            if (ret == -ENOENT && moved_on(st, prefix, max_gen)) {
                ret = 0; /* another compactor is at this hour: leave it */
                goto out;
            }
            if (ret != -EBADMSG && ret != -EPROTO && ret != -ENOENT)
                note_error(p, "reading", k, st->err);
            continue; /* left in place: readers skip it with a warning */
        }
        for (size_t j = 0; j < e->nentries; j++) /* a decoded entry has a key */
            if (intern_strn(&named, e->entries[j].key, strlen(e->entries[j].key)) == MPROF_NONE) {
                manifest_free(e);
                ret = -ENOMEM;
                goto out;
            }
        bool gone = e->nentries > 0;
        for (size_t j = 0; old && j < e->nentries && gone; j++)
            gone = in_set(&old_rep, e->entries[j].key);
        /* Replaced: the entry itself, or every segment it names (merged
         * alone before the entry was written: its writer's order). */
        if (old && (gone || in_set(&old_rep, k))) {
            /* An entry re-uploaded after an earlier compaction replaced it
             * (an agent's retry) is deleted again with its segment. */
            for (size_t j = 0; j < e->nentries && !ret; j++)
                ret = todo_add(&del, e->entries[j].key);
            if (!ret)
                ret = todo_add(&del, k);
            manifest_free(e);
            if (ret)
                goto out;
            continue;
        }
        /* The entry's objects go into the block whole or not at all: a
         * section added before a later one failed would count twice, once
         * in the block and once through the entry that stays. */
        int lr = 0;
        size_t emark = rules ? rule_eval_mark(rules) : 0;
        for (size_t j = 0; j < e->nentries && !lr; j++)
            lr = e->entries[j].footer
                     ? flush_load(st, w, e->entries[j].key, e->entries[j].footer, NULL, 0, &b, p)
                     : batch_load(st, w, e->entries[j].key, NULL, NULL, 0, &b, p);
        if (lr == 0 && (ret = batch_add(w, &b, s)) == 0) {
            nin[sp] += b.n;
            s->segments_read += e->nentries;
            nflushes++;
            /* replaced: the entry and its segments, so readers that list
             * segments skip them without asking the entry */
            for (size_t j = 0; j < e->nentries && !ret; j++)
                if (!(ret = todo_add(&del, e->entries[j].key)))
                    ret = todo_add(&merged, e->entries[j].key);
            if (!ret)
                ret = todo_add(&del, k);
            if (!ret)
                ret = todo_add(&merged, k);
        } else if (lr == -ENOENT && moved_on(st, prefix, max_gen)) {
            /* Deleted under us by another compactor that has written the
             * next generation: writing ours too would put a manifest
             * without those objects over the one that holds them. */
            batch_free(&b);
            manifest_free(e);
            ret = 0;
            goto out;
        } else if (lr) {
            s->objects_kept++; /* stays an entry: queries read it as before */
            if (lr == -ENOMEM)
                ret = lr;
        }
        if ((lr || ret) && rules)
            rule_eval_truncate(rules, emark);
        batch_free(&b);
        manifest_free(e);
        if (ret)
            goto out;
    }
    /* Segments of flushes that wrote no entry (one object per flush): each
     * footer by one suffix read, then as an entry's objects above. A
     * segment of a listed entry's flush is the entry's to merge; one that
     * the hour manifest in force replaces (by key, or by its entry's key
     * in stores of the old layout) is in a block already: an agent's retry,
     * deleted again. */
    if ((ret = store_list(st, sprefix, &sl)) == -ENOENT)
        ret = 0;
    if (ret)
        goto out;
    if (old && (ret = plan_replaced_flushes(old, &replaced_flush)))
        goto out;
    for (size_t i = 0; i < sl.n; i++) {
        const char *k = sl.keys[i];
        size_t kl = strlen(k);
        const char *dash = strrchr(k, '-');
        size_t fl = dash ? (size_t)(dash - k) + 1 : 0;
        if (kl < 4 || strcmp(k + kl - 4, ".seg") != 0 || !fl)
            continue;
        if (intern_find(&named, k, kl) != MPROF_NONE ||
            intern_find(&unknown_flush, k, fl) != MPROF_NONE)
            continue;
        if ((old && in_set(&old_rep, k)) || intern_find(&replaced_flush, k, fl) != MPROF_NONE) {
            if ((ret = todo_add(&del, k)))
                goto out;
            continue;
        }
        int sp = span_of(p, level, hour_ms, plan_seg_key_start(k));
        if (sp < 0)
            continue; /* its span is still open: the next pass */
        struct seg_writer *w = ws[sp];
        struct seg_footer *f = NULL;
        struct store_buf whole = {0};
        char err[256] = "";
        if (lease_gone(st, p, &ret))
            goto out;
        int lr = segment_read(st, k, sl.sizes ? sl.sizes[i] : 0, &whole, &f, p, err, sizeof(err));
        if (lr == -ENOMEM) {
            ret = lr;
            goto out;
        }
        if (lr == -ENOENT && moved_on(st, prefix, max_gen)) {
            ret = 0; /* another compactor merged it since our listing */
            goto out;
        }
        size_t emark = rules ? rule_eval_mark(rules) : 0;
        if (lr) {
            note_error(p, "footer of", k, err);
        } else {
            lr = flush_load(st, w, k, f, whole.data, whole.len, &b, p);
            if (lr == 0 && (ret = batch_add(w, &b, s)) == 0) {
                nin[sp] += b.n;
                s->segments_read++;
                nflushes++;
                if (!(ret = todo_add(&del, k)))
                    ret = todo_add(&merged, k);
            }
        }
        seg_footer_free(f);
        free(whole.data);
        batch_free(&b);
        if ((lr || ret) && rules)
            rule_eval_truncate(rules, emark);
        if (lr == -ENOENT && moved_on(st, prefix, max_gen)) {
            ret = 0;
            goto out;
        }
        if (lr && !ret) {
            s->objects_kept++; /* stays a segment: queries read it as before */
            if (lr == -ENOMEM)
                ret = lr;
        }
        if (ret)
            goto out;
    }
    /* Level 2 also merges an hour of several blocks (level 1's) into one. */
    bool remerge = level == 2 && (merged.n || (old && old->nentries > 1));
    if (merged.n == 0 && garbage.n == 0 && !remerge) {
        /* Nothing new, but re-uploaded replaced entries still go. */
        for (size_t i = 0; i < del.n; i++)
            if (store_del(st, del.keys[i]) == 0)
                s->objects_deleted++;
        ret = 0;
        goto out;
    }
    /* The previous generation's blocks are merged in too, one block per
     * hour keeping a query of the hour at one range read per service; a
     * block that cannot be read whole stays as it is, listed again. With
     * nothing new (only unreadable manifests to replace), they are listed
     * again as they are. */
    for (size_t i = 0; old && i < old->nentries; i++) {
        const struct manifest_entry *oe = &old->entries[i];
        if (remerge && lease_gone(st, p, &ret))
            goto out;
        int lr = remerge ? batch_load(st, ws[0], oe->key, oe->footer, NULL, 0, &b, p) : 1;
        if (lr == 0) {
            nin[0] += b.n;
            ret = batch_add(ws[0], &b, s);
            batch_free(&b);
            if (ret || (ret = todo_add(&del, oe->key)))
                goto out;
            continue;
        }
        batch_free(&b);
        if (lr == -ENOENT && moved_on(st, prefix, max_gen)) {
            ret = 0; /* another compactor deleted it after replacing it */
            goto out;
        }
        if (lr < 0 && lr != -EBADMSG && lr != -EINVAL && lr != -ENOENT) {
            ret = lr; /* never write over what we cannot read */
            goto out;
        }
        if (lr < 0)
            s->objects_kept++;
        if ((ret = manifest_add(hm, oe->key, oe->footer)))
            goto out;
    }

    unsigned gen = (unsigned)max_gen + 1;
    if ((ret = manifest_hour_key(key, sizeof(key), tenant, hour_ms, gen)) < 0)
        goto out;
    for (int i = 0; i < (level == 1 ? MAX_SPANS : 1); i++) {
        struct seg_footer *bf = NULL;
        char block[1024];
        if (!nin[i])
            continue;
        if (lease_gone(st, p, &ret))
            goto out;
        free(buf);
        buf = NULL;
        ret = seg_writer_finish(ws[i], &buf, &len, &bf);
        if (ret)
            goto out;
        ret = block_key(block, sizeof(block), tenant, hour_ms, gen, level, (unsigned)i,
                        seg_hash64(buf, len));
        if (ret >= 0)
            ret = store_put(st, block, buf, len);
        if (ret == 0 && (ret = todo_add(&written, block)) == 0)
            ret = manifest_add(hm, block, bf);
        seg_footer_free(bf);
        if (ret)
            goto out;
        s->blocks_written++;
        s->bytes_out += len;
        if (level == 1)
            s->spans_compacted++;
        step_done(p, "block");
    }

    /* replaces: everything the previous generation replaced, the entries
     * merged now, the previous hour manifest and the unreadable ones. */
    size_t nrep = (old ? old->nreplaces : 0) + merged.n + (old_key ? 1 : 0) + garbage.n;
    hm->replaces = calloc(nrep ? nrep : 1, sizeof(char *));
    if (!hm->replaces) {
        ret = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; old && i < old->nreplaces; i++)
        hm->replaces[hm->nreplaces++] = strdup(old->replaces[i]);
    for (size_t i = 0; i < merged.n; i++)
        hm->replaces[hm->nreplaces++] = strdup(merged.keys[i]);
    if (old_key)
        hm->replaces[hm->nreplaces++] = strdup(old_key);
    for (size_t i = 0; i < garbage.n; i++)
        hm->replaces[hm->nreplaces++] = strdup(garbage.keys[i]);
    for (size_t i = 0; i < hm->nreplaces; i++)
        if (!hm->replaces[i]) {
            ret = -ENOMEM;
            goto out;
        }
    free(buf);
    buf = NULL;
    ret = manifest_encode(hm, &buf, &len);
    if (ret || lease_gone(st, p, &ret))
        goto out;
    /* The commit: a create-only put. Another compactor that wrote this
     * generation since our listing wins; ours would overwrite it, and what
     * it deleted may not be in ours. */
    if ((ret = store_put_new(st, key, buf, len))) {
        if (ret == -EEXIST) {
            s->commits_lost++;
            ret = 0;
        }
        goto out;
    }
    committed = true;
    if (level == 2)
        s->hours_compacted++;
    s->entries_merged += nflushes;
    step_done(p, "manifest");
    /* Its index: the entries without `replaces`, what a reader of a
     * caught-up hour reads instead (docs/format.md §13.1). Written only by
     * the pass whose commit won, so it always says what the manifest says;
     * a pass that stops before it leaves readers the manifest itself. */
    char ikey[1024];
    if (manifest_index_key(ikey, sizeof(ikey), key) > 0) {
        uint8_t *ibuf = NULL;
        size_t ilen = 0, nrep = hm->nreplaces;
        hm->nreplaces = 0;
        if (manifest_encode(hm, &ibuf, &ilen) == 0 && store_put(st, ikey, ibuf, ilen) == 0)
            s->indexes_written++;
        hm->nreplaces = nrep;
        free(ibuf);
    }

    /* Only now, with the new generation visible, the old objects go. */
    if (old_key && (ret = todo_add(&del, old_key)))
        goto out;
    if (old_key && manifest_index_key(ikey, sizeof(ikey), old_key) > 0 &&
        (ret = todo_add(&del, ikey)))
        goto out;
    for (size_t i = 0; i < garbage.n && !ret; i++)
        ret = todo_add(&del, garbage.keys[i]);
    if (ret)
        goto out;
    for (size_t i = 0; i < del.n; i++)
        if (store_del(st, del.keys[i]) == 0 && ++s->objects_deleted && i == 0)
            step_done(p, "delete");
    /* An unreadable hour manifest may have listed a block no manifest
     * names now: it stays (its data may be nowhere else), and is counted. */
    if (garbage.n)
        orphans(st, tenant, date, hour, hm, -1, s);
    ret = 0;
out:
    /* Rule results count once the hour manifest that merged their flushes
     * is in force; otherwise the next pass evaluates those flushes. */
    if (rules && !committed)
        rule_eval_truncate(rules, hour_mark);
    /* A block written but listed by no manifest is read by nobody: it goes,
     * unless the manifest put failed only in appearance or another
     * compactor's manifest of this generation lists the same block. */
    for (size_t i = 0; !committed && i < written.n; i++)
        if (!listed_by(st, key, written.keys[i]))
            store_del(st, written.keys[i]);
    batch_free(&b);
    free(buf);
    for (int i = 0; i < MAX_SPANS; i++) {
        seg_writer_free(ws[i]);
        ctree_cache_free(caches[i]);
    }
    todo_free(&written);
    manifest_free(old);
    manifest_free(hm);
    todo_free(&merged);
    todo_free(&del);
    todo_free(&garbage);
    store_list_free(&l);
    store_list_free(&sl);
    intern_free(&named);
    intern_free(&unknown_flush);
    intern_free(&replaced_flush);
    intern_free(&old_rep);
    return ret;
}

static int expire(struct store *st, const char *tenant, int64_t cutoff_ms, struct compact_stats *s)
{
    static const char *const kinds[] = {"segments", "blocks", "manifest", "index", "leases"};
    char prefix[512];
    int64_t last_hour = -1;

    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        struct store_list l = {0};
        snprintf(prefix, sizeof(prefix), "%s/%s/", tenant, kinds[k]);
        int ret = store_list(st, prefix, &l);
        if (ret && ret != -ENOENT)
            return ret;
        for (size_t i = 0; i < l.n; i++) {
            int64_t h = key_hour(l.keys[i], strlen(tenant));
            if (h < 0 || h + HOUR_MS > cutoff_ms)
                continue;
            if (store_del(st, l.keys[i]) == 0) {
                s->objects_deleted++;
                if (h != last_hour) {
                    s->hours_expired++;
                    last_hour = h;
                }
            }
        }
        store_list_free(&l);
    }
    return 0;
}

/* The level an hour starting at @h gets at @now: 2 once it is closed
 * (@delay_s after its end) or without continuous (open_hours), else 1. */
static int hour_level(const struct compact_opts *o, int64_t h, int64_t now, unsigned delay_s)
{
    bool closed = h + HOUR_MS + (int64_t)delay_s * 1000 <= now;
    return closed || !o->continuous ? 2 : 1;
}

/* What the day listings show of one hour of the pass's window. */
struct hour_look {
    int level;
    bool flushes;    /* a segment or entry that compact_hour would merge now */
    unsigned hours;  /* hour manifests (generations) */
    unsigned blocks; /* block objects */
};

/* True when compact_hour may have something to do for the hour @h: a
 * flush to merge at its level, more than one hour manifest (older
 * generations a crashed pass left, or unreadable ones to replace), or, at
 * level 2, an hour manifest and several blocks (level 1's to merge into
 * one). An hour with none of these is left as compact_hour would leave
 * it, without a lease or a listing of its own. */
static bool hour_has_work(const struct hour_look *h)
{
    return h->flushes || h->hours > 1 || (h->level == 2 && h->hours && h->blocks > 1);
}

/* Classifies the key @k of the hour @hs (segments/, manifest/ or blocks/:
 * @kind 0, 1, 2; @rest: the key after "<date>/<HH>/") into @h, as
 * compact_hour would see it. */
static void look_key(struct pass *p, struct hour_look *h, int64_t hs, int kind, const char *k,
                     const char *rest)
{
    size_t kl = strlen(k);
    if (kind == 2) {
        h->blocks++;
    } else if (kind == 0) {
        if (kl >= 4 && strcmp(k + kl - 4, ".seg") == 0 && strrchr(k, '-') &&
            span_of(p, h->level, hs, plan_seg_key_start(k)) >= 0)
            h->flushes = true;
    } else if (strncmp(rest, "entries/", 8) == 0) {
        if (kl >= 4 && strcmp(k + kl - 4, ".man") == 0 &&
            span_of(p, h->level, hs, entry_start(k)) >= 0)
            h->flushes = true;
    } else {
        h->hours += gen_of(rest) >= 0;
    }
}

/*
 * Fills @look[i] for the hour newest - i hours, i < @n, from one listing
 * per day of the window of each of segments/, manifest/ and blocks/ (three
 * per day: nine for the 48 hours of a pass, where one listing per prefix
 * per hour and a lease took 145 LISTs and 96 PUTs). 0 or the store's
 * errno.
 */
static int look_days(struct store *st, const char *tenant, int64_t newest, unsigned n,
                     struct pass *p, struct hour_look *look)
{
    static const char *const kinds[] = {"segments", "manifest", "blocks"};
    size_t tlen = strlen(tenant);
    char last[11] = "";
    int ret = 0;

    for (unsigned i = 0; i < n && !ret; i++) {
        char date[11], hour[3];
        if (utc_date_hour(newest - (int64_t)i * HOUR_MS, date, hour))
            return -EINVAL;
        if (strcmp(date, last) == 0)
            continue;
        memcpy(last, date, sizeof(last));
        for (int kind = 0; kind < 3 && !ret; kind++) {
            struct store_list l = {0};
            char prefix[512];
            snprintf(prefix, sizeof(prefix), "%s/%s/%s/", tenant, kinds[kind], date);
            ret = store_list(st, prefix, &l);
            if (ret == -ENOENT)
                ret = 0;
            size_t plen = strlen(prefix);
            for (size_t j = 0; !ret && j < l.n; j++) {
                const char *hh = l.keys[j] + plen; /* "HH/..." */
                int64_t hs = key_hour(l.keys[j], tlen);
                if (hs < 0 || hs > newest || (newest - hs) / HOUR_MS >= n || hh[0] < '0' ||
                    hh[0] > '9' || hh[1] < '0' || hh[1] > '9' || hh[2] != '/')
                    continue;
                look_key(p, &look[(newest - hs) / HOUR_MS], hs, kind, l.keys[j], hh + 3);
            }
            store_list_free(&l);
        }
    }
    return ret;
}

int compact_run(struct store *st, const struct compact_opts *o, struct compact_stats *out)
{
    const char *tenant = o->tenant ? o->tenant : "default";
    int64_t now = o->now_ms;
    unsigned delay = o->delay_s ? o->delay_s : 600;
    unsigned max_hours = o->max_hours ? o->max_hours : 48;
    struct pass p = {.o = o, .s = out, .t0 = mono_ms()};
    unsigned ttl = o->lease_ttl_s ? o->lease_ttl_s : 120;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (!now) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    if (o->retention_h) {
        ret = expire(st, tenant, now - (int64_t)o->retention_h * HOUR_MS, out);
        if (ret)
            return ret;
    }
    p.now = now;
    p.ttl_ms = ttl * 1000;
    int64_t newest = o->open_hours || o->continuous
                         ? now / HOUR_MS * HOUR_MS
                         : (now - (int64_t)delay * 1000) / HOUR_MS * HOUR_MS - HOUR_MS;
    unsigned nhours = 0;
    while (nhours < max_hours) {
        int64_t h = newest - (int64_t)nhours * HOUR_MS;
        if (o->retention_h && h + HOUR_MS <= now - (int64_t)o->retention_h * HOUR_MS)
            break;
        nhours++;
    }
    /* Closed hours get level 2; hours still open level 1 (continuous) or
     * level 2 (open_hours, on demand). Which have work is read from the
     * day listings first: only those are leased and listed again, under
     * the lease, so the pass works from what the store holds then. */
    struct hour_look *look = calloc(nhours ? nhours : 1, sizeof(*look));
    if (!look)
        return -ENOMEM;
    for (unsigned i = 0; i < nhours; i++)
        look[i].level = hour_level(o, newest - (int64_t)i * HOUR_MS, now, delay);
    if ((ret = look_days(st, tenant, newest, nhours, &p, look))) {
        free(look);
        return ret;
    }
    for (unsigned i = 0; i < nhours && !ret; i++) {
        int64_t h = newest - (int64_t)i * HOUR_MS;
        int level = look[i].level;
        struct lease ls;
        if (!hour_has_work(&look[i])) {
            out->hours_quiet++;
            continue;
        }
        if (o->owner) {
            char lp[512], date[11], hour[3];
            if (utc_date_hour(h, date, hour)) {
                ret = -EINVAL;
                break;
            }
            snprintf(lp, sizeof(lp), "%s/leases/%s/%s/", tenant, date, hour);
            p.lease_at = pass_clock(&p);
            ret = lease_acquire(st, lp, o->owner, p.lease_at, p.ttl_ms, &ls);
            if (ret == -EBUSY) {
                out->hours_busy++;
                ret = 0;
                continue;
            }
            if (ret)
                break;
            p.lease = &ls;
            p.lease_lost = false;
        }
        ret = compact_hour(st, tenant, h, level, look[i].blocks, &p);
        if (p.lease && !p.lease_lost)
            lease_release(st, &ls);
        p.lease = NULL;
    }
    free(look);
    return ret;
}
