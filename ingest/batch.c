/* SPDX-License-Identifier: Apache-2.0 */
#include "ingest/batch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/intern.h"

#define CHUNK (64u << 10)

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    max_align_t data[];
};

void *ingest_alloc(struct ingest_batch *b, size_t n, size_t size)
{
    size_t bytes;

    if (__builtin_mul_overflow(n, size, &bytes))
        return NULL;
    bytes = (bytes + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!bytes)
        bytes = sizeof(max_align_t);
    struct arena_chunk *c = b->chunks;
    if (!c || c->size - c->used < bytes) {
        size_t sz = bytes > CHUNK ? bytes : CHUNK;
        if (b->arena_bytes + sz > INGEST_MAX_ARENA)
            return NULL;
        c = malloc(sizeof(*c) + sz);
        if (!c)
            return NULL;
        c->used = 0;
        c->size = sz;
        b->arena_bytes += sz;
        /* a big block goes behind the current chunk, whose tail stays usable */
        if (sz > CHUNK && b->chunks) {
            c->next = b->chunks->next;
            b->chunks->next = c;
        } else {
            c->next = b->chunks;
            b->chunks = c;
        }
    }
    void *p = (char *)c->data + c->used;
    c->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *ingest_strndup(struct ingest_batch *b, const char *s, size_t n)
{
    char *d = ingest_alloc(b, n + 1, 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *ingest_strdup(struct ingest_batch *b, const char *s)
{
    return ingest_strndup(b, s, strlen(s));
}

int ingest_keep(struct ingest_batch *b, void *msg)
{
    if (b->nunpacked == b->capunpacked) {
        size_t cap = b->capunpacked ? b->capunpacked * 2 : 4;
        void **n = realloc(b->unpacked, cap * sizeof(*n));
        if (!n) {
            protobuf_c_message_free_unpacked(msg, NULL);
            return -ENOMEM;
        }
        b->unpacked = n;
        b->capunpacked = cap;
    }
    b->unpacked[b->nunpacked++] = msg;
    return 0;
}

int ingest_push(struct ingest_batch *b, const struct ingest_profile *ip)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;
        struct ingest_profile *n = realloc(b->v, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        b->v = n;
        b->cap = cap;
    }
    b->v[b->n++] = *ip;
    return 0;
}

void ingest_batch_free(struct ingest_batch *b)
{
    if (!b)
        return;
    for (struct arena_chunk *c = b->chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    for (size_t i = 0; i < b->nfixes; i++)
        b->fixes[i].s->n_label = b->fixes[i].n_label;
    free(b->fixes);
    for (size_t i = 0; i < b->nunpacked; i++)
        protobuf_c_message_free_unpacked(b->unpacked[i], NULL);
    free(b->unpacked);
    free(b->v);
    memset(b, 0, sizeof(*b));
}

int ingest_batch_check(struct ingest_batch *b, char *err, size_t errlen)
{
    char why[256];

    for (size_t i = 0; i < b->n; i++) {
        int rc = seg_pprof_check(b->v[i].p, why, sizeof(why));
        if (rc < 0) {
            snprintf(err, errlen, "profile %zu (service %s): %s", i, b->v[i].service,
                     why[0] ? why : strerror(-rc));
            return rc;
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        Perftools__Profiles__Profile *p = b->v[i].p;
        for (size_t s = 0; s < p->n_sample; s++) {
            Perftools__Profiles__Sample *sm = p->sample[s];
            size_t k = 0, n = sm->n_label;
            /* a stable partition: kept labels first, service_name last */
            for (size_t l = 0; l < n; l++) {
                Perftools__Profiles__Label *lb = sm->label[l];
                if (strcmp(p->string_table[lb->key], "service_name")) { /* key: checked */
                    memmove(&sm->label[k + 1], &sm->label[k], (l - k) * sizeof(lb));
                    sm->label[k++] = lb;
                }
            }
            if (k == n)
                continue;
            if (b->nfixes == b->capfixes) {
                size_t cap = b->capfixes ? b->capfixes * 2 : 16;
                struct label_fix *nf = realloc(b->fixes, cap * sizeof(*nf));
                if (!nf) {
                    snprintf(err, errlen, "out of memory");
                    return -ENOMEM;
                }
                b->fixes = nf;
                b->capfixes = cap;
            }
            b->fixes[b->nfixes++] = (struct label_fix){sm, n};
            sm->n_label = k;
        }
    }
    return 0;
}

/* ---- folded ------------------------------------------------------------- */

static Perftools__Profiles__ValueType *value_type(struct ingest_batch *b, int64_t type,
                                                  int64_t unit)
{
    Perftools__Profiles__ValueType *vt = ingest_alloc(b, 1, sizeof(*vt));
    if (vt) {
        perftools__profiles__value_type__init(vt);
        vt->type = type;
        vt->unit = unit;
    }
    return vt;
}

int ingest_folded(struct ingest_batch *b, const char *text, size_t len,
                  const struct folded_types *t, Perftools__Profiles__Profile **out, uint64_t *nrows,
                  char *err, size_t errlen)
{
    struct intern names = {0};
    Perftools__Profiles__Profile *p = NULL;
    size_t maxlines = 1, maxframes = 0, line_no = 0, nframes_all = 0;
    uint64_t *locbuf = NULL;
    int rc = -ENOMEM;

    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n')
            maxlines++;
        else if (text[i] == ';')
            maxframes++;
    }
    maxframes += maxlines;
    p = ingest_alloc(b, 1, sizeof(*p));
    Perftools__Profiles__Sample **samples = ingest_alloc(b, maxlines, sizeof(*samples));
    Perftools__Profiles__Sample *sbuf = ingest_alloc(b, maxlines, sizeof(*sbuf));
    int64_t *vals = ingest_alloc(b, maxlines * 2, sizeof(*vals));
    locbuf = ingest_alloc(b, maxframes, sizeof(*locbuf));
    if (!p || !samples || !sbuf || !vals || !locbuf)
        goto out;
    perftools__profiles__profile__init(p);
    size_t ntypes = t->type2 ? 2 : 1, nsamples = 0;
    /* strings 0..6 are fixed ("", the types and the period type; pprof
     * allows repeats), frame names follow: name id k is string 7 + k */
    const char *fixed[] = {
        "",       t->type, t->unit, t->type2 ? t->type2 : "", t->unit2 ? t->unit2 : "",
        t->ptype, t->punit};
    const uint32_t first_frame = 7;

    for (size_t pos = 0; pos < len;) {
        const char *ln = text + pos, *nl = memchr(ln, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - ln) : len - pos;
        pos += l + 1;
        line_no++;
        if (l && ln[l - 1] == '\r')
            l--;
        if (l == 0)
            continue;
        if (l > FOLDED_MAX_LINE) {
            snprintf(err, errlen, "line %zu: longer than %u bytes", line_no, FOLDED_MAX_LINE);
            rc = -EINVAL;
            goto out;
        }
        /* the count: digits after the last space */
        size_t sp = l;
        while (sp > 0 && ln[sp - 1] != ' ')
            sp--;
        if (sp == 0 || sp == l) {
            snprintf(err, errlen, "line %zu: expected 'frame;frame;... COUNT'", line_no);
            rc = -EINVAL;
            goto out;
        }
        uint64_t n = 0;
        for (size_t i = sp; i < l; i++) {
            if (ln[i] < '0' || ln[i] > '9' || n > (UINT64_MAX / 2 - 9) / 10) {
                snprintf(err, errlen, "line %zu: count '%.*s' is not a decimal number", line_no,
                         (int)(l - sp > 32 ? 32 : l - sp), ln + sp);
                rc = -EINVAL;
                goto out;
            }
            n = n * 10 + (uint64_t)(ln[i] - '0');
        }
        size_t sl = sp - 1; /* the stack, without the space */
        if (sl == 0) {
            snprintf(err, errlen, "line %zu: empty stack", line_no);
            rc = -EINVAL;
            goto out;
        }
        if (n == 0)
            continue;
        /* frames, root first in the text; pprof wants the leaf first */
        size_t depth = 1;
        for (size_t i = 0; i < sl; i++)
            depth += ln[i] == ';';
        if (depth > FOLDED_MAX_DEPTH) {
            snprintf(err, errlen, "line %zu: %zu frames, more than %d", line_no, depth,
                     FOLDED_MAX_DEPTH);
            rc = -EINVAL;
            goto out;
        }
        uint64_t *locs = locbuf + nframes_all;
        size_t k = depth, start = 0;
        for (size_t i = 0; i <= sl; i++) {
            if (i < sl && ln[i] != ';')
                continue;
            if (i == start) {
                snprintf(err, errlen, "line %zu: empty frame name", line_no);
                rc = -EINVAL;
                goto out;
            }
            uint32_t id = intern_strn(&names, ln + start, i - start);
            if (id == INTERN_NONE)
                goto out;
            locs[--k] = (uint64_t)id + 1;
            start = i + 1;
        }
        nframes_all += depth;
        Perftools__Profiles__Sample *s = &sbuf[nsamples];
        perftools__profiles__sample__init(s);
        s->n_location_id = depth;
        s->location_id = locs;
        s->n_value = ntypes;
        s->value = &vals[2 * nsamples];
        s->value[0] = (int64_t)n;
        if (ntypes == 2) {
            uint64_t v;
            if (__builtin_mul_overflow(n, (uint64_t)t->period, &v) || v > INT64_MAX) {
                snprintf(err, errlen, "line %zu: count %llu times the period overflows", line_no,
                         (unsigned long long)n);
                rc = -EINVAL;
                goto out;
            }
            s->value[1] = (int64_t)v;
        }
        samples[nsamples++] = s;
    }

    uint32_t nfn = names.n, nstr = first_frame + nfn;
    p->string_table = ingest_alloc(b, nstr, sizeof(char *));
    p->function = ingest_alloc(b, nfn ? nfn : 1, sizeof(*p->function));
    p->location = ingest_alloc(b, nfn ? nfn : 1, sizeof(*p->location));
    Perftools__Profiles__Function *fbuf = ingest_alloc(b, nfn ? nfn : 1, sizeof(*fbuf));
    Perftools__Profiles__Location *lbuf = ingest_alloc(b, nfn ? nfn : 1, sizeof(*lbuf));
    Perftools__Profiles__Line *linebuf = ingest_alloc(b, nfn ? nfn : 1, sizeof(*linebuf));
    Perftools__Profiles__Line **lineptr = ingest_alloc(b, nfn ? nfn : 1, sizeof(*lineptr));
    p->sample_type = ingest_alloc(b, ntypes, sizeof(*p->sample_type));
    if (!p->string_table || !p->function || !p->location || !fbuf || !lbuf || !linebuf ||
        !lineptr || !p->sample_type)
        goto out;
    for (uint32_t i = 0; i < first_frame; i++)
        if (!(p->string_table[i] = ingest_strdup(b, fixed[i])))
            goto out;
    for (uint32_t i = 0; i < nfn; i++) {
        uint32_t sl;
        const char *s = intern_get(&names, i, &sl);
        if (!(p->string_table[first_frame + i] = ingest_strndup(b, s, sl)))
            goto out;
    }
    p->n_string_table = nstr;
    for (uint32_t i = 0; i < nfn; i++) {
        perftools__profiles__function__init(&fbuf[i]);
        fbuf[i].id = i + 1;
        fbuf[i].name = first_frame + i;
        fbuf[i].system_name = first_frame + i;
        p->function[i] = &fbuf[i];
        perftools__profiles__line__init(&linebuf[i]);
        linebuf[i].function_id = i + 1;
        lineptr[i] = &linebuf[i];
        perftools__profiles__location__init(&lbuf[i]);
        lbuf[i].id = i + 1;
        lbuf[i].n_line = 1;
        lbuf[i].line = &lineptr[i];
        p->location[i] = &lbuf[i];
    }
    p->n_function = p->n_location = nfn;
    p->n_sample_type = ntypes;
    if (!(p->sample_type[0] = value_type(b, 1, 2)) ||
        (ntypes == 2 && !(p->sample_type[1] = value_type(b, 3, 4))) ||
        !(p->period_type = value_type(b, 5, 6)))
        goto out;
    p->period = t->period;
    p->sample = samples;
    p->n_sample = nsamples;
    *out = p;
    *nrows = nsamples;
    rc = 0;
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    intern_free(&names);
    return rc;
}
