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
#include "query/compact.h"

#define HOUR_MS 3600000LL

/* "WHAT KEY: WHY", each part cut to fit last_error. */
static void note_error(struct compact_stats *s, const char *what, const char *key, const char *why)
{
    s->errors++;
    snprintf(s->last_error, sizeof(s->last_error), "%.20s %.120s: %.100s", what, key, why);
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

static int load_manifest(struct store *st, const char *key, struct manifest **m,
                         struct compact_stats *s)
{
    struct store_buf b = {0};
    char err[256];
    int ret = get_all(st, key, &b);

    *m = NULL;
    if (ret)
        return ret;
    ret = manifest_decode(b.data, b.len, m, err, sizeof(err));
    free(b.data);
    if (ret)
        note_error(s, "manifest", key, err);
    return ret;
}

static bool in_list(char **v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], key) == 0)
            return true;
    return false;
}

/* Adds every section of the object @key (described by @f) to @w. */
static int merge_object(struct store *st, struct seg_writer *w, const char *key,
                        const struct seg_footer *f, struct compact_stats *s)
{
    for (size_t i = 0; i < f->nsections; i++) {
        const struct seg_section_info *info = &f->sections[i];
        struct store_buf b = {0};
        struct seg_section *sec = NULL;
        char err[256];
        int ret = store_get(st, key, info->offset, info->length, &b);
        if (ret) {
            note_error(s, "reading", key, st->err);
            return ret;
        }
        s->bytes_in += b.len;
        ret = seg_section_decode(b.data, b.len, info, &sec, err, sizeof(err));
        free(b.data);
        if (ret) {
            note_error(s, "section of", key, err);
            return ret;
        }
        ret = seg_writer_add_section(w, sec);
        seg_section_free(sec);
        if (ret) {
            note_error(s, "merging", key, strerror(-ret));
            return ret;
        }
        s->sections_merged++;
    }
    return 0;
}

static int block_key(char *buf, size_t len, const char *tenant, int64_t hour_ms, unsigned gen,
                     uint64_t hash)
{
    char date[11], hour[3];
    if (utc_date_hour(hour_ms, date, hour))
        return -EINVAL;
    int n = snprintf(buf, len, "%s/blocks/%s/%s/%06u-%016llx.blk", tenant, date, hour, gen,
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

/* Compacts one hour. */
static int compact_hour(struct store *st, const char *tenant, int64_t hour_ms,
                        struct compact_stats *s)
{
    char prefix[512], date[11], hour[3], key[1024];
    struct store_list l = {0};
    struct manifest *old = NULL, *hm = NULL;
    struct seg_writer *w = NULL;
    struct todo merged = {0}, del = {0};
    const char *old_key = NULL;
    unsigned gen = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret;

    if (utc_date_hour(hour_ms, date, hour))
        return -EINVAL;
    snprintf(prefix, sizeof(prefix), "%s/manifest/%s/%s/", tenant, date, hour);
    ret = store_list(st, prefix, &l);
    if (ret)
        return ret == -ENOENT ? 0 : ret;

    /* The newest hour manifest is the current one. */
    for (size_t i = 0; i < l.n; i++) {
        unsigned g;
        const char *base = l.keys[i] + strlen(prefix);
        if (sscanf(base, "hour-%6u.man", &g) == 1 && strlen(base) == 15 && (!old_key || g >= gen)) {
            gen = g;
            old_key = l.keys[i];
        }
    }
    if (old_key && (ret = load_manifest(st, old_key, &old, s)) != 0)
        goto out; /* never write over what we cannot read */

    w = seg_writer_new(tenant, "compacted");
    hm = calloc(1, sizeof(*hm));
    if (!w || !hm) {
        ret = -ENOMEM;
        goto out;
    }
    size_t fresh = 0;
    for (size_t i = 0; i < l.n; i++) {
        const char *k = l.keys[i];
        size_t kl = strlen(k);
        if (strncmp(k + strlen(prefix), "entries/", 8) != 0 || kl < 4 ||
            strcmp(k + kl - 4, ".man") != 0)
            continue;
        bool replaced = old && in_list(old->replaces, old->nreplaces, k);
        struct manifest *e = NULL;
        if (load_manifest(st, k, &e, s) != 0)
            continue; /* left in place: readers skip it with a warning */
        bool ok = true;
        for (size_t j = 0; j < e->nentries && ok; j++) {
            if (!replaced) {
                ok = merge_object(st, w, e->entries[j].key, e->entries[j].footer, s) == 0;
                s->segments_read += ok;
            }
        }
        if (ok) {
            /* An entry re-uploaded after an earlier compaction replaced it
             * (an agent's retry) is deleted again with its segment. */
            for (size_t j = 0; j < e->nentries; j++)
                todo_add(&del, e->entries[j].key);
            todo_add(&del, k);
            if (!replaced) {
                todo_add(&merged, k);
                fresh++;
            }
        }
        manifest_free(e);
    }
    if (fresh == 0) {
        /* Nothing new, but re-uploaded replaced entries still go. */
        for (size_t i = 0; i < del.n; i++)
            if (store_del(st, del.keys[i]) == 0)
                s->objects_deleted++;
        ret = 0;
        goto out;
    }
    /* The previous generation's blocks are merged in too: one block per
     * hour keeps a query of the hour at one range read per service. */
    for (size_t i = 0; old && i < old->nentries; i++) {
        ret = merge_object(st, w, old->entries[i].key, old->entries[i].footer, s);
        if (ret)
            goto out; /* dropping a block would lose data: stop */
        todo_add(&del, old->entries[i].key);
    }

    struct seg_footer *bf = NULL;
    ret = seg_writer_finish(w, &buf, &len, &bf);
    if (ret)
        goto out;
    ret = block_key(key, sizeof(key), tenant, hour_ms, gen + 1, seg_hash64(buf, len));
    if (ret >= 0)
        ret = store_put(st, key, buf, len);
    if (ret == 0)
        ret = manifest_add(hm, key, bf);
    seg_footer_free(bf);
    if (ret)
        goto out;
    s->blocks_written++;
    s->bytes_out += len;

    /* replaces: everything the previous generation replaced, the entries
     * merged now, and the previous hour manifest itself. */
    size_t nrep = (old ? old->nreplaces : 0) + merged.n + (old_key ? 1 : 0);
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
    for (size_t i = 0; i < hm->nreplaces; i++)
        if (!hm->replaces[i]) {
            ret = -ENOMEM;
            goto out;
        }
    free(buf);
    buf = NULL;
    ret = manifest_encode(hm, &buf, &len);
    if (ret)
        goto out;
    ret = manifest_hour_key(key, sizeof(key), tenant, hour_ms, gen + 1);
    if (ret >= 0)
        ret = store_put(st, key, buf, len);
    if (ret)
        goto out;
    s->hours_compacted++;
    s->entries_merged += merged.n;

    /* Only now, with the new generation visible, the old objects go. */
    if (old_key)
        todo_add(&del, old_key);
    for (size_t i = 0; i < del.n; i++)
        if (store_del(st, del.keys[i]) == 0)
            s->objects_deleted++;
    ret = 0;
out:
    free(buf);
    seg_writer_free(w);
    manifest_free(old);
    manifest_free(hm);
    todo_free(&merged);
    todo_free(&del);
    store_list_free(&l);
    return ret;
}

static int expire(struct store *st, const char *tenant, int64_t cutoff_ms, struct compact_stats *s)
{
    static const char *const kinds[] = {"segments", "blocks", "manifest"};
    char prefix[512];
    int64_t last_hour = -1;

    for (size_t k = 0; k < 3; k++) {
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

int compact_run(struct store *st, const struct compact_opts *o, struct compact_stats *out)
{
    const char *tenant = o->tenant ? o->tenant : "default";
    int64_t now = o->now_ms;
    unsigned delay = o->delay_s ? o->delay_s : 600;
    unsigned max_hours = o->max_hours ? o->max_hours : 48;
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
    int64_t newest = o->open_hours ? now / HOUR_MS * HOUR_MS
                                   : (now - (int64_t)delay * 1000) / HOUR_MS * HOUR_MS - HOUR_MS;
    for (unsigned i = 0; i < max_hours; i++) {
        int64_t h = newest - (int64_t)i * HOUR_MS;
        if (o->retention_h && h + HOUR_MS <= now - (int64_t)o->retention_h * HOUR_MS)
            break;
        ret = compact_hour(st, tenant, h, out);
        if (ret)
            return ret;
    }
    return 0;
}
