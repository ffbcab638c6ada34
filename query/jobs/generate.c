/* SPDX-License-Identifier: Apache-2.0 */
/*
 * generate — see generate.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/manifest.h"
#include "codec/segment.h"
#include "common/file.h"
#include "common/gzip.h"
#include "query/jobs/generate.h"
#include "query/jobs/import.h"

#define HOUR_MS 3600000LL

struct source {
    Perftools__Profiles__Profile *p;
    int64_t *orig;                            /* every sample's values, concatenated */
    Perftools__Profiles__Sample **all, **sel; /* the full list, and a subset */
};

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: tiny, seedable, good enough for benchmark variation */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int load_source(const char *path, struct source *src, char *err, size_t errlen)
{
    uint8_t *raw = NULL, *pb = NULL;
    size_t len = 0, pblen = 0;
    int ret;

    memset(src, 0, sizeof(*src));
    ret = read_file(path, IMPORT_MAX_BYTES, (char **)&raw, &len);
    if (ret) {
        snprintf(err, errlen, "%s: %s", path, strerror(-ret));
        return ret;
    }
    ret = gzip_decompress(raw, len, IMPORT_MAX_BYTES, &pb, &pblen);
    free(raw);
    if (ret) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-ret));
        free(pb);
        return ret;
    }
    src->p = perftools__profiles__profile__unpack(NULL, pblen, pb);
    free(pb);
    if (!src->p || !src->p->n_sample_type) {
        snprintf(err, errlen, "%s: not a pprof profile", path);
        return -EBADMSG;
    }
    /* a repaired source is used as the writer repairs it */
    char why[256];
    int chk = seg_pprof_check(src->p, why, sizeof(why));
    if (chk < 0) {
        snprintf(err, errlen, "%s: malformed pprof profile: %s", path,
                 why[0] ? why : strerror(-chk));
        return chk;
    }
    /* The generator names services and hosts itself: the source's own
     * service_name/host_name labels (the agent's files carry them) are
     * blanked (key 0 is skipped by the codec), everything else is kept. */
    for (size_t i = 0; i < src->p->n_sample; i++) {
        Perftools__Profiles__Sample *sm = src->p->sample[i];
        for (size_t j = 0; j < sm->n_label; j++) {
            int64_t k = sm->label[j]->key;
            if (k > 0 && (size_t)k < src->p->n_string_table &&
                (!strcmp(src->p->string_table[k], "service_name") ||
                 !strcmp(src->p->string_table[k], "host_name")))
                sm->label[j]->key = 0;
        }
    }
    size_t nv = 0;
    for (size_t i = 0; i < src->p->n_sample; i++)
        nv += src->p->sample[i]->n_value;
    /* all is protobuf-c's own sample array (free_source hands it back) */
    src->all = src->p->sample;
    src->orig = malloc((nv + 1) * sizeof(int64_t));
    src->sel = malloc((src->p->n_sample + 1) * sizeof(*src->sel));
    if (!src->orig || !src->sel)
        return -ENOMEM;
    nv = 0;
    for (size_t i = 0; i < src->p->n_sample; i++) {
        memcpy(&src->orig[nv], src->p->sample[i]->value,
               src->p->sample[i]->n_value * sizeof(int64_t));
        nv += src->p->sample[i]->n_value;
    }
    return 0;
}

static void free_source(struct source *s)
{
    if (s->p) {
        /* restore the sample list we swapped before protobuf-c frees it
         * (none was swapped when loading stopped before all was set) */
        if (s->all)
            s->p->sample = s->all;
        perftools__profiles__profile__free_unpacked(s->p, NULL);
    }
    free(s->orig);
    free(s->sel);
}

/* One varied copy of @s, in place: values scaled, ~10% of samples out. */
static void vary(struct source *s, uint64_t *rng, uint64_t *samples, uint64_t *rows)
{
    size_t k = 0, nv = 0;
    for (size_t i = 0; i < s->p->n_sample; i++) {
        Perftools__Profiles__Sample *sm = s->all[i];
        uint64_t r = rng_next(rng);
        double scale = 0.5 + (double)(r >> 11) / (double)(1ull << 53);
        for (size_t v = 0; v < sm->n_value; v++) {
            int64_t x = (int64_t)((double)s->orig[nv + v] * scale + 0.5);
            sm->value[v] = x > 0 ? x : 1;
        }
        nv += sm->n_value;
        if ((r & 15) >= 2 || s->p->n_sample < 4) { /* keep 14 of 16 */
            s->sel[k++] = sm;
            if (sm->n_value)
                *samples += (uint64_t)sm->value[0];
            (*rows)++;
        }
    }
    s->p->sample = s->sel;
    s->p->n_sample = k;
}

static void unvary(struct source *s, size_t n_all)
{
    s->p->sample = s->all;
    s->p->n_sample = n_all;
}

/* Writes @w's object: a block and its hour manifest (@block), or a segment,
 * with its entry manifest after it when @entry (the old layout). */
static int put_object(struct store *st, struct seg_writer *w, const char *tenant, const char *host,
                      int64_t t_ms, bool block, bool entry, unsigned gen,
                      struct generate_stats *out, char *err, size_t errlen)
{
    uint8_t *buf = NULL, *mbuf = NULL;
    size_t len = 0, mlen = 0;
    struct seg_footer *f = NULL;
    struct manifest *m = calloc(1, sizeof(*m));
    char key[1024], mkey[1024], date[11], hour[3];
    int ret = m ? seg_writer_finish(w, &buf, &len, &f) : -ENOMEM;

    if (ret)
        goto out;
    uint64_t h = seg_hash64(buf, len);
    if (block) {
        time_t tt = (time_t)(t_ms / 1000);
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(date, sizeof(date), "%Y-%m-%d", &tm);
        strftime(hour, sizeof(hour), "%H", &tm);
        snprintf(key, sizeof(key), "%s/blocks/%s/%s/%06u-%016llx.blk", tenant, date, hour, gen,
                 (unsigned long long)h);
    } else if ((ret = seg_object_key(key, sizeof(key), tenant, host, t_ms, h)) < 0) {
        goto out;
    }
    if ((ret = store_put(st, key, buf, len)))
        goto out;
    out->objects++;
    out->bytes += len;
    out->segment_bytes += len;
    if (!block && !entry)
        goto out;
    if ((ret = manifest_add(m, key, f)) || (ret = manifest_encode(m, &mbuf, &mlen)))
        goto out;
    ret = block
              ? manifest_hour_key(mkey, sizeof(mkey), tenant, t_ms, gen)
              : manifest_entry_key(mkey, sizeof(mkey), tenant, host, t_ms, seg_hash64(mbuf, mlen));
    if (ret < 0 || (ret = store_put(st, mkey, mbuf, mlen)))
        goto out;
    out->objects++;
    out->bytes += mlen;
out:
    if (ret)
        snprintf(err, errlen, "writing an object: %s", st->err[0] ? st->err : strerror(-ret));
    free(buf);
    free(mbuf);
    seg_footer_free(f);
    manifest_free(m);
    return ret < 0 ? ret : 0;
}

int fleet_generate(struct store *st, const struct generate_opts *o, struct generate_stats *out,
                   char *err, size_t errlen)
{
    const char *tenant = o->tenant ? o->tenant : "default";
    unsigned flush_s = o->flush_s ? o->flush_s : 60, windows = o->windows ? o->windows : 6;
    uint64_t rng = o->seed ? o->seed : 42;
    struct source *src;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    if (!o->nfiles || !o->hosts || !o->services || !o->hours) {
        snprintf(err, errlen, "hosts, services, hours and at least one source file are needed");
        return -EINVAL;
    }
    src = calloc(o->nfiles, sizeof(*src));
    if (!src)
        return -ENOMEM;
    for (size_t i = 0; i < o->nfiles && !ret; i++)
        ret = load_source(o->files[i], &src[i], err, errlen);
    int64_t start = o->start_ms;
    if (!start) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        start = (int64_t)ts.tv_sec * 1000 - (int64_t)o->hours * HOUR_MS;
    }
    start = start / HOUR_MS * HOUR_MS;
    unsigned flushes = (unsigned)(HOUR_MS / 1000 / flush_s);

    for (unsigned hr = 0; hr < o->hours && !ret; hr++) {
        int64_t hour_ms = start + (int64_t)hr * HOUR_MS;
        struct seg_writer *block = o->compacted ? seg_writer_new(tenant, "compacted") : NULL;
        for (unsigned h = 0; h < o->hosts && !ret; h++) {
            char host[64];
            snprintf(host, sizeof(host), "host-%03u", h);
            for (unsigned fl = 0; fl < flushes && !ret; fl++) {
                int64_t t0 = hour_ms + (int64_t)fl * flush_s * 1000;
                struct seg_writer *w = block ? block : seg_writer_new(tenant, host);
                if (!w) {
                    ret = -ENOMEM;
                    break;
                }
                for (unsigned s = 0; s < o->services && !ret; s++) {
                    struct source *sc = &src[s % o->nfiles];
                    char svc[64];
                    snprintf(svc, sizeof(svc), "svc-%02u", s);
                    struct seg_label labels[] = {{"service_name", svc}, {"host_name", host}};
                    size_t n_all = sc->p->n_sample;
                    for (unsigned wi = 0; wi < windows && !ret; wi++) {
                        vary(sc, &rng, &out->samples, &out->rows);
                        ret = seg_writer_add_pprof(w, svc, sc->p, labels, 2,
                                                   t0 + (int64_t)wi * flush_s * 1000 / windows);
                        unvary(sc, n_all);
                        if (ret)
                            snprintf(err, errlen, "%s: the codec refused it: %s",
                                     o->files[s % o->nfiles], strerror(-ret));
                    }
                }
                if (!block) {
                    if (!ret)
                        ret = put_object(st, w, tenant, host, t0, false, o->entries, 0, out, err,
                                         errlen);
                    seg_writer_free(w);
                }
            }
        }
        if (block) {
            if (!ret)
                ret = put_object(st, block, tenant, "compacted", hour_ms, true, false, 1, out, err,
                                 errlen);
            seg_writer_free(block);
        }
    }
    for (size_t i = 0; i < o->nfiles; i++)
        free_source(&src[i]);
    free(src);
    return ret;
}
