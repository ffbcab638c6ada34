/* SPDX-License-Identifier: Apache-2.0 */
#include "codec/footer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void section_info_clear(struct seg_section_info *s)
{
    free(s->service);
    for (size_t i = 0; i < s->nprofile_types; i++)
        free(s->profile_types[i]);
    free(s->profile_types);
    for (size_t i = 0; i < s->nlabels; i++) {
        free(s->labels[i].name);
        for (size_t j = 0; j < s->labels[i].nvalues; j++)
            free(s->labels[i].values[j]);
        free(s->labels[i].values);
    }
    free(s->labels);
}

void seg_footer_free(struct seg_footer *f)
{
    if (!f)
        return;
    free(f->tenant);
    free(f->host);
    for (size_t i = 0; i < f->nsections; i++)
        section_info_clear(&f->sections[i]);
    free(f->sections);
    free(f);
}

static void encode_section(struct wbuf *b, const struct seg_section_info *s)
{
    size_t ntot = s->nprofile_types < 4 ? s->nprofile_types : 4;
    wb_str(b, s->service);
    wb_uv(b, s->offset);
    wb_uv(b, s->length);
    wb_uv(b, s->raw_length);
    wb_u32(b, s->crc32c);
    wb_sv(b, s->t_min_ms);
    wb_uv(b, (uint64_t)s->t_max_ms - (uint64_t)s->t_min_ms);
    wb_uv(b, s->nsamples);
    wb_uv(b, ntot);
    for (size_t i = 0; i < ntot; i++)
        wb_uv(b, s->total[i]);
    wb_uv(b, s->nprofile_types);
    for (size_t i = 0; i < s->nprofile_types; i++)
        wb_str(b, s->profile_types[i]);
    wb_uv(b, s->nlabels);
    for (size_t i = 0; i < s->nlabels; i++) {
        const struct seg_label_summary *l = &s->labels[i];
        wb_str(b, l->name);
        wb_u8(b, l->values_truncated ? 1 : 0);
        wb_uv(b, l->nvalues);
        for (size_t j = 0; j < l->nvalues; j++)
            wb_str(b, l->values[j]);
    }
    if (s->top_length || s->tree_length) {
        wb_uv(b, s->top_offset);
        wb_uv(b, s->top_length);
        wb_uv(b, s->top_raw);
        wb_u32(b, s->top_crc);
    }
    if (s->tree_length) {
        wb_uv(b, s->tree_offset);
        wb_uv(b, s->tree_length);
        wb_uv(b, s->tree_raw);
        wb_u32(b, s->tree_crc);
    }
}

void footer_encode_body(struct wbuf *b, const struct seg_footer *f)
{
    struct wbuf rec = {0};
    wb_str(b, f->tenant);
    wb_str(b, f->host);
    wb_sv(b, f->t_min_ms);
    wb_uv(b, (uint64_t)f->t_max_ms - (uint64_t)f->t_min_ms);
    wb_uv(b, f->nsections);
    for (size_t i = 0; i < f->nsections; i++) {
        rec.len = 0;
        encode_section(&rec, &f->sections[i]);
        if (rec.err) {
            b->err = rec.err;
            break;
        }
        wb_uv(b, rec.len);
        wb_bytes(b, rec.p, rec.len);
    }
    wb_free(&rec);
}

#define TRY(call, what)                                                                            \
    do {                                                                                           \
        int _r = (call);                                                                           \
        if (_r == -ENOMEM) {                                                                       \
            ret = -ENOMEM;                                                                         \
            goto out;                                                                              \
        }                                                                                          \
        if (_r)                                                                                    \
            WIRE_BAD("footer: truncated or bad %s", what);                                         \
    } while (0)

/* Time ranges are stored as (min, max - min); max must not wrap. */
static int read_range(struct rbuf *r, int64_t *tmin, int64_t *tmax)
{
    uint64_t span;
    if (rb_sv(r, tmin) || rb_uv(r, &span))
        return -EBADMSG;
    /* unsigned wrap makes this INT64_MAX - tmin for any sign of tmin */
    if (span > (uint64_t)INT64_MAX - (uint64_t)*tmin)
        return -EBADMSG;
    *tmax = (int64_t)((uint64_t)*tmin + span);
    return 0;
}

static int decode_section(struct rbuf *r, uint64_t footer_off, struct seg_section_info *s,
                          char *err, size_t errlen)
{
    int ret = 0;
    uint64_t n, ntot;
    TRY(rb_str(r, &s->service), "service");
    TRY(rb_uv(r, &s->offset), "offset");
    TRY(rb_uv(r, &s->length), "length");
    TRY(rb_uv(r, &s->raw_length), "raw length");
    if (s->offset < SEG_HEADER_LEN || s->length > footer_off || s->offset > footer_off - s->length)
        WIRE_BAD("footer: section %s byte range outside the object", s->service);
    if (s->raw_length > SEG_MAX_RAW)
        WIRE_BAD("footer: section %s too large (%llu bytes)", s->service,
                 (unsigned long long)s->raw_length);
    const uint8_t *p;
    TRY(rb_bytes(r, &p, 4), "crc");
    s->crc32c = rd_u32(p);
    TRY(read_range(r, &s->t_min_ms, &s->t_max_ms), "time range");
    TRY(rb_uv(r, &s->nsamples), "sample count");
    TRY(rb_uv_max(r, 4, &ntot), "totals");
    for (uint64_t i = 0; i < ntot; i++)
        TRY(rb_uv(r, &s->total[i]), "totals");
    TRY(rb_uv_max(r, SEG_MAX_TYPES, &n), "profile types");
    if (!(s->profile_types = calloc(n ? n : 1, sizeof(char *))))
        return -ENOMEM;
    for (; s->nprofile_types < n; s->nprofile_types++)
        TRY(rb_str(r, &s->profile_types[s->nprofile_types]), "profile type");
    TRY(rb_uv_max(r, rb_left(r), &n), "label count");
    if (!(s->labels = calloc(n ? n : 1, sizeof(*s->labels))))
        return -ENOMEM;
    while (s->nlabels < n) {
        /* counted before it is filled, so a failure frees what it holds */
        struct seg_label_summary *l = &s->labels[s->nlabels++];
        uint8_t trunc;
        uint64_t nv;
        TRY(rb_str(r, &l->name), "label name");
        TRY(rb_u8(r, &trunc), "label flags");
        if (trunc > 1)
            WIRE_BAD("footer: bad label flag %u", trunc);
        l->values_truncated = trunc;
        TRY(rb_uv_max(r, SEG_MAX_SUMMARY_VALUES, &nv), "label value count");
        if (!(l->values = calloc(nv ? nv : 1, sizeof(char *))))
            return -ENOMEM;
        for (; l->nvalues < nv; l->nvalues++)
            TRY(rb_str(r, &l->values[l->nvalues]), "label value");
    }
    if (rb_left(r)) { /* minor 1: the function totals frame */
        TRY(rb_uv(r, &s->top_offset), "totals offset");
        TRY(rb_uv(r, &s->top_length), "totals length");
        TRY(rb_uv(r, &s->top_raw), "totals raw length");
        TRY(rb_bytes(r, &p, 4), "totals crc");
        s->top_crc = rd_u32(p);
        if (s->top_length &&
            (s->top_offset < SEG_HEADER_LEN || s->top_length > footer_off ||
             s->top_offset > footer_off - s->top_length || s->top_raw > SEG_MAX_RAW))
            WIRE_BAD("footer: section %s function totals outside the object", s->service);
    }
    if (rb_left(r)) { /* minor 2: the call tree frame */
        TRY(rb_uv(r, &s->tree_offset), "call tree offset");
        TRY(rb_uv(r, &s->tree_length), "call tree length");
        TRY(rb_uv(r, &s->tree_raw), "call tree raw length");
        TRY(rb_bytes(r, &p, 4), "call tree crc");
        s->tree_crc = rd_u32(p);
        if (s->tree_length &&
            (s->tree_offset < SEG_HEADER_LEN || s->tree_length > footer_off ||
             s->tree_offset > footer_off - s->tree_length || s->tree_raw > SEG_MAX_RAW))
            WIRE_BAD("footer: section %s call tree outside the object", s->service);
    }
out:
    return ret;
}

int footer_decode_body(struct rbuf *r, uint64_t footer_off, struct seg_footer **out, char *err,
                       size_t errlen)
{
    int ret = 0;
    uint64_t n;
    struct seg_footer *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->version = SEG_MAJOR;
    TRY(rb_str(r, &f->tenant), "tenant");
    TRY(rb_str(r, &f->host), "host");
    TRY(read_range(r, &f->t_min_ms, &f->t_max_ms), "time range");
    TRY(rb_uv_max(r, rb_left(r), &n), "section count");
    if (!(f->sections = calloc(n ? n : 1, sizeof(*f->sections)))) {
        ret = -ENOMEM;
        goto out;
    }
    for (; f->nsections < n;) {
        uint64_t rl;
        const uint8_t *p;
        TRY(rb_uv_max(r, rb_left(r), &rl), "section record length");
        TRY(rb_bytes(r, &p, rl), "section record");
        struct rbuf rec = {.p = p, .len = rl};
        struct seg_section_info *s = &f->sections[f->nsections++];
        if ((ret = decode_section(&rec, footer_off, s, err, errlen)))
            goto out;
        if (f->nsections > 1 && strcmp(f->sections[f->nsections - 2].service, s->service) >= 0)
            WIRE_BAD("footer: services not unique and sorted at %s", s->service);
    }
out:
    if (ret)
        seg_footer_free(f);
    else
        *out = f;
    return ret;
}

static char *xstrdup(const char *s, bool *fail)
{
    char *d = strdup(s ? s : "");
    if (!d)
        *fail = true;
    return d;
}

struct seg_footer *seg_footer_copy(const struct seg_footer *f)
{
    bool fail = false;
    struct seg_footer *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    *c = *f;
    c->tenant = xstrdup(f->tenant, &fail);
    c->host = xstrdup(f->host, &fail);
    c->nsections = 0;
    c->sections = calloc(f->nsections ? f->nsections : 1, sizeof(*c->sections));
    if (!c->sections)
        fail = true;
    for (size_t i = 0; !fail && i < f->nsections; i++) {
        const struct seg_section_info *s = &f->sections[i];
        struct seg_section_info *d = &c->sections[c->nsections++];
        *d = *s;
        d->nprofile_types = d->nlabels = 0;
        d->profile_types = NULL;
        d->labels = NULL;
        d->service = xstrdup(s->service, &fail);
        if (!(d->profile_types = calloc(s->nprofile_types + 1, sizeof(char *))) ||
            !(d->labels = calloc(s->nlabels + 1, sizeof(*d->labels)))) {
            fail = true;
            break;
        }
        for (; d->nprofile_types < s->nprofile_types; d->nprofile_types++)
            d->profile_types[d->nprofile_types] =
                xstrdup(s->profile_types[d->nprofile_types], &fail);
        for (; !fail && d->nlabels < s->nlabels; d->nlabels++) {
            const struct seg_label_summary *sl = &s->labels[d->nlabels];
            struct seg_label_summary *dl = &d->labels[d->nlabels];
            dl->name = xstrdup(sl->name, &fail);
            dl->values_truncated = sl->values_truncated;
            if (!(dl->values = calloc(sl->nvalues + 1, sizeof(char *)))) {
                fail = true;
                d->nlabels++;
                break;
            }
            for (; dl->nvalues < sl->nvalues; dl->nvalues++)
                dl->values[dl->nvalues] = xstrdup(sl->values[dl->nvalues], &fail);
        }
    }
    if (fail) {
        seg_footer_free(c);
        return NULL;
    }
    return c;
}
