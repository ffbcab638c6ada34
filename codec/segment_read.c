/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The segment reader (docs/format.md §3-§5): the footer from an object's
 * tail, and one section at a time by its byte range. It trusts nothing and
 * checks every count against the bytes left before it allocates. The
 * writer is segment_write.c.
 */
#include "codec/segment.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/footer.h"
#include "codec/wire.h"

/* ---- reading: footer --------------------------------------------------- */

int seg_footer_parse(const uint8_t *tail, size_t tail_len, uint64_t object_len,
                     struct seg_footer **out, uint64_t *need_from, char *err, size_t errlen)
{
    uint8_t *raw = NULL;
    int ret;

    if (err && errlen)
        err[0] = 0;
    if (!tail || !out || tail_len > object_len) {
        errmsg(err, errlen, "segment: tail longer than the object");
        return -EINVAL;
    }
    if (object_len < SEG_HEADER_LEN + SEG_TRAILER_LEN || tail_len < SEG_TRAILER_LEN) {
        errmsg(err, errlen, "segment: %llu bytes is too short for a segment",
               (unsigned long long)object_len);
        return -EBADMSG;
    }
    const uint8_t *tr = tail + tail_len - SEG_TRAILER_LEN;
    if (memcmp(tr + 28, "STKE", 4)) {
        errmsg(err, errlen, "segment: bad trailer magic (not a Stoke segment)");
        return -EBADMSG;
    }
    if (rd_u32(tr + 24) != crc32c(tr, 24)) {
        errmsg(err, errlen, "segment: trailer checksum mismatch");
        return -EBADMSG;
    }
    if (rd_u16(tr + 20) != SEG_MAJOR) {
        errmsg(err, errlen, "unsupported segment version %u (this reader knows %u)",
               rd_u16(tr + 20), SEG_MAJOR);
        return -EPROTO;
    }
    uint64_t foff = rd_u64(tr), flen = rd_u32(tr + 8), fraw = rd_u32(tr + 12);
    if (foff < SEG_HEADER_LEN || foff > object_len || object_len - foff < SEG_TRAILER_LEN ||
        object_len - foff - SEG_TRAILER_LEN != flen) {
        errmsg(err, errlen, "segment: footer range does not fit the object");
        return -EBADMSG;
    }
    if (fraw > SEG_MAX_RAW) {
        errmsg(err, errlen, "segment: footer too large");
        return -EBADMSG;
    }
    uint64_t tail_start = object_len - tail_len;
    if (foff < tail_start) {
        if (need_from)
            *need_from = foff;
        errmsg(err, errlen, "segment: footer starts before the tail; read from %llu",
               (unsigned long long)foff);
        return -EAGAIN;
    }
    if (tail_start == 0) {
        /* the whole object is here: check its header too */
        if (memcmp(tail, "STKS", 4) || rd_u32(tail + 12) != crc32c(tail, 12)) {
            errmsg(err, errlen, "segment: bad header");
            return -EBADMSG;
        }
        if (rd_u16(tail + 4) != SEG_MAJOR || (rd_u32(tail + 8) & 0xffff0000u)) {
            errmsg(err, errlen, "unsupported segment version %u (this reader knows %u)",
                   rd_u16(tail + 4), SEG_MAJOR);
            return -EPROTO;
        }
    }
    const uint8_t *fp = tail + (foff - tail_start);
    if (crc32c(fp, flen) != rd_u32(tr + 16)) {
        errmsg(err, errlen, "segment: footer checksum mismatch");
        return -EBADMSG;
    }
    if ((ret = zstd_decode(fp, flen, fraw, &raw))) {
        errmsg(err, errlen, "segment: footer does not decompress");
        return ret;
    }
    struct rbuf r = {.p = raw, .len = fraw};
    ret = footer_decode_body(&r, foff, out, err, errlen);
    free(raw);
    if (!ret)
        (*out)->object_length = object_len;
    return ret;
}

int seg_footer_read(seg_read_fn rd, void *ctx, uint64_t object_len, struct seg_footer **out,
                    unsigned *nreads, char *err, size_t errlen)
{
    uint8_t *tail = NULL, *head = NULL, *all = NULL;
    size_t tail_len = 0, head_len = 0;
    uint64_t need = 0, want;
    int ret;

    if (err && errlen)
        err[0] = 0;
    if (nreads)
        *nreads = 0;
    if (!rd || !out)
        return -EINVAL;
    *out = NULL;
    if (object_len < SEG_HEADER_LEN + SEG_TRAILER_LEN) {
        errmsg(err, errlen, "segment: %llu bytes is too short for a segment",
               (unsigned long long)object_len);
        return -EBADMSG;
    }
    want = object_len < SEG_FOOTER_TAIL ? object_len : SEG_FOOTER_TAIL;
    if ((ret = rd(ctx, object_len - want, want, &tail, &tail_len)))
        return ret;
    if (nreads)
        *nreads = 1;
    if (tail_len != want) {
        errmsg(err, errlen, "segment: read %zu bytes of a %llu-byte tail (object truncated?)",
               tail_len, (unsigned long long)want);
        ret = -EBADMSG;
        goto out;
    }
    ret = seg_footer_parse(tail, tail_len, object_len, out, &need, err, errlen);
    if (ret != -EAGAIN)
        goto out;
    /* The footer starts before the tail: one more read, of what lies
     * between its start and the tail, then the two joined. */
    uint64_t tail_start = object_len - want;
    if (need >= tail_start || object_len - need > SEG_MAX_FOOTER) {
        errmsg(err, errlen, "segment: footer of %llu bytes is larger than a reader fetches (%u)",
               (unsigned long long)(object_len - need), SEG_MAX_FOOTER);
        ret = -EBADMSG;
        goto out;
    }
    if ((ret = rd(ctx, need, tail_start - need, &head, &head_len)))
        goto out;
    if (nreads)
        *nreads = 2;
    if (head_len != tail_start - need) {
        errmsg(err, errlen, "segment: read %zu bytes of %llu before the tail (object truncated?)",
               head_len, (unsigned long long)(tail_start - need));
        ret = -EBADMSG;
        goto out;
    }
    if (!(all = malloc(head_len + tail_len))) {
        ret = -ENOMEM;
        goto out;
    }
    memcpy(all, head, head_len);
    memcpy(all + head_len, tail, tail_len);
    ret = seg_footer_parse(all, head_len + tail_len, object_len, out, NULL, err, errlen);
    if (ret == -EAGAIN) { /* the same trailer cannot move: not reached */
        errmsg(err, errlen, "segment: footer range changed between reads");
        ret = -EBADMSG;
    }
out:
    if (ret) {
        seg_footer_free(*out);
        *out = NULL;
    }
    free(tail);
    free(head);
    free(all);
    return ret;
}

/* ---- reading: sections ------------------------------------------------- */

struct section_priv {
    struct seg_section s; /* first: seg_section_free casts back */
    char *blob;
};

void seg_section_free(struct seg_section *s)
{
    struct section_priv *p = (struct section_priv *)s;
    if (!s)
        return;
    free(s->service);
    free(s->strings);
    free(s->types);
    free(s->mappings);
    free(s->functions);
    free(s->locations);
    free(s->lines);
    free(s->stack_off);
    free(s->stack_locs);
    free(s->series_off);
    free(s->series_labels);
    free(s->sample_series);
    free(s->sample_stack);
    free(s->sample_time_ms);
    free(s->sample_values);
    free(p->blob);
    free(p);
}

#define NEED(cond, what)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            WIRE_BAD("section %s: bad %s", info->service, what);                                   \
    } while (0)
#define ALLOC(ptr, n)                                                                              \
    do {                                                                                           \
        if (!((ptr) = malloc(((size_t)(n) + 1) * sizeof(*(ptr))))) {                               \
            ret = -ENOMEM;                                                                         \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* rb_uv, rb_uv_max and rb_sv with the one-byte case inline: most of a
 * section's varints are ids, deltas and counts below 128, and the body
 * holds millions of them (perf, a 12-section query: rb_uv ~6% of it). */
static inline int uv(struct rbuf *r, uint64_t *v)
{
    if (r->off < r->len && r->p[r->off] < 0x80) {
        *v = r->p[r->off++];
        return 0;
    }
    return rb_uv(r, v);
}

static inline int uv_max(struct rbuf *r, uint64_t max, uint64_t *v)
{
    int ret = uv(r, v);
    return ret ? ret : *v > max ? -EBADMSG : 0;
}

static inline int sv(struct rbuf *r, int64_t *v)
{
    uint64_t u;
    int ret = uv(r, &u);
    if (!ret)
        *v = unzigzag(u);
    return ret;
}

/* Reads @n uvarints, each < @max, into u32s. */
static int read_ids(struct rbuf *r, uint32_t *dst, uint64_t n, uint64_t max)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v;
        if (uv(r, &v) || v >= max)
            return -EBADMSG;
        dst[i] = (uint32_t)v;
    }
    return 0;
}

int seg_section_decode(const uint8_t *buf, size_t len, const struct seg_section_info *info,
                       struct seg_section **out, char *err, size_t errlen)
{
    struct section_priv *p = NULL;
    struct seg_section *s;
    uint8_t *raw = NULL;
    uint64_t n[10], v, hl;
    int ret = 0;

    if (err && errlen)
        err[0] = 0;
    if (!buf || !info || !out || !info->service)
        return -EINVAL;
    if (len != info->length) {
        errmsg(err, errlen, "section %s: %zu bytes, the footer says %llu", info->service, len,
               (unsigned long long)info->length);
        return -EBADMSG;
    }
    if (crc32c(buf, len) != info->crc32c) {
        errmsg(err, errlen, "section %s: checksum mismatch", info->service);
        return -EBADMSG;
    }
    if ((ret = zstd_decode(buf, len, info->raw_length, &raw))) {
        errmsg(err, errlen, "section %s: does not decompress", info->service);
        return ret;
    }
    if (!(p = calloc(1, sizeof(*p)))) {
        ret = -ENOMEM;
        goto out;
    }
    s = &p->s;
    struct rbuf body = {.p = raw, .len = info->raw_length}, h;
    const uint8_t *hp;
    NEED(!rb_uv_max(&body, rb_left(&body), &hl) && !rb_bytes(&body, &hp, hl), "header length");
    h = (struct rbuf){.p = hp, .len = hl};
    struct rbuf *r = &body;

    /* header */
    if ((ret = rb_str(&h, &s->service)) == -ENOMEM)
        goto out;
    NEED(!ret, "service");
    NEED(!strcmp(s->service, info->service), "service name (differs from the footer)");
    NEED(!rb_uv_max(&h, SEG_MAX_TYPES, &v) && v >= 1, "sample type count");
    s->ntypes = (uint32_t)v;
    uint32_t tp[2 * SEG_MAX_TYPES + 2];
    NEED(!read_ids(&h, tp, 2 * s->ntypes + 2, UINT32_MAX), "sample types");
    NEED(!rb_sv(&h, &s->period), "period");
    for (int i = 0; i < 10; i++)
        NEED(!rb_uv_max(&h, UINT32_MAX - 1, &n[i]), "table size");
    /* each element costs at least one byte of the body */
    NEED(n[0] >= 1 && n[0] - 1 <= rb_left(r), "string count");
    for (int i = 1; i < 10; i++)
        NEED(n[i] <= rb_left(r), "table size");
    s->nstrings = (uint32_t)n[0];
    s->nmappings = (uint32_t)n[1];
    s->nfunctions = (uint32_t)n[2];
    s->nlocations = (uint32_t)n[3];
    s->nlines = (uint32_t)n[4];
    s->nstacks = (uint32_t)n[5];
    uint64_t nstk = n[6];
    s->nseries = (uint32_t)n[7];
    uint64_t npairs = n[8];
    s->nsamples = n[9];
    NEED(s->nsamples == info->nsamples, "sample count (differs from the footer)");
    NEED((uint64_t)s->nsamples * s->ntypes <= rb_left(r), "sample count");
    int64_t t_base;
    uint64_t gcd[SEG_MAX_TYPES];
    NEED(!rb_sv(&h, &t_base), "time base");
    for (uint32_t t = 0; t < s->ntypes; t++)
        NEED(!rb_uv(&h, &gcd[t]) && gcd[t] >= 1 && gcd[t] <= INT64_MAX, "value divisor");
    /* rest of the header: later minors */

    for (uint32_t i = 0; i < 2 * s->ntypes + 2; i++)
        NEED(tp[i] < s->nstrings, "sample type string");
    ALLOC(s->types, s->ntypes);
    for (uint32_t t = 0; t < s->ntypes; t++)
        s->types[t] = (struct seg_sample_type){tp[2 * t], tp[2 * t + 1]};
    s->period_type = (struct seg_sample_type){tp[2 * s->ntypes], tp[2 * s->ntypes + 1]};

    /* strings */
    uint64_t total = 0;
    uint32_t *slen;
    ALLOC(slen, s->nstrings);
    for (uint32_t i = 1; i < s->nstrings; i++) {
        if (rb_uv_max(r, rb_left(r), &v) || v > rb_left(r) - total) {
            free(slen);
            WIRE_BAD("section %s: bad string length", info->service);
        }
        slen[i] = (uint32_t)v;
        total += v;
    }
    const uint8_t *sb;
    if (rb_bytes(r, &sb, total)) {
        free(slen);
        WIRE_BAD("section %s: strings truncated", info->service);
    }
    p->blob = malloc(total + s->nstrings);
    s->strings = malloc(((size_t)s->nstrings + 1) * sizeof(char *));
    if (!p->blob || !s->strings) {
        free(slen);
        ret = -ENOMEM;
        goto out;
    }
    char *d = p->blob;
    *d = 0;
    s->strings[0] = d++;
    for (uint32_t i = 1; i < s->nstrings; i++) {
        if (memchr(sb, 0, slen[i])) {
            free(slen);
            WIRE_BAD("section %s: NUL inside a string", info->service);
        }
        memcpy(d, sb, slen[i]);
        d[slen[i]] = 0;
        s->strings[i] = d;
        d += slen[i] + 1;
        sb += slen[i];
    }
    free(slen);

    /* mappings, functions */
    uint32_t *col;
    ALLOC(s->mappings, s->nmappings);
    ALLOC(s->functions, s->nfunctions);
    ALLOC(col, 2 * (size_t)(s->nmappings > s->nfunctions ? s->nmappings : s->nfunctions));
    if (read_ids(r, col, 2 * (uint64_t)s->nmappings, s->nstrings)) {
        free(col);
        WIRE_BAD("section %s: bad mapping", info->service);
    }
    for (uint32_t i = 0; i < s->nmappings; i++)
        s->mappings[i] = (struct seg_mapping){col[i], col[s->nmappings + i]};
    if (read_ids(r, col, 2 * (uint64_t)s->nfunctions, s->nstrings)) {
        free(col);
        WIRE_BAD("section %s: bad function", info->service);
    }
    for (uint32_t i = 0; i < s->nfunctions; i++)
        s->functions[i] = (struct seg_function){col[i], col[s->nfunctions + i]};
    free(col);

    /* locations, lines */
    ALLOC(s->locations, s->nlocations);
    for (uint32_t i = 0; i < s->nlocations; i++) {
        NEED(!uv_max(r, (uint64_t)s->nmappings, &v), "location mapping");
        s->locations[i].mapping = v ? (uint32_t)(v - 1) : UINT32_MAX;
    }
    uint64_t addr = 0;
    for (uint32_t i = 0; i < s->nlocations; i++) {
        int64_t dlt;
        NEED(!sv(r, &dlt), "location address");
        addr += (uint64_t)dlt;
        s->locations[i].address = addr;
    }
    uint64_t off = 0;
    for (uint32_t i = 0; i < s->nlocations; i++) {
        NEED(!uv_max(r, s->nlines - off, &v), "location line count");
        s->locations[i].line_off = (uint32_t)off;
        s->locations[i].nlines = (uint32_t)v;
        off += v;
    }
    NEED(off == s->nlines, "line count");
    ALLOC(s->lines, s->nlines);
    for (uint32_t i = 0; i < s->nlines; i++) {
        NEED(!uv_max(r, (uint64_t)s->nfunctions - 1, &v) && s->nfunctions, "line function");
        s->lines[i].function = (uint32_t)v;
    }
    for (uint32_t i = 0; i < s->nlines; i++) {
        NEED(!uv_max(r, UINT32_MAX, &v), "line number");
        s->lines[i].line = (uint32_t)v;
    }

    /* stacks */
    NEED(nstk <= rb_left(r), "stack location count");
    ALLOC(s->stack_off, (size_t)s->nstacks + 1);
    ALLOC(s->stack_locs, nstk);
    off = 0;
    for (uint32_t i = 0; i < s->nstacks; i++) {
        NEED(!uv_max(r, nstk - off, &v), "stack depth");
        s->stack_off[i] = (uint32_t)off;
        off += v;
    }
    NEED(off == nstk, "stack location count");
    s->stack_off[s->nstacks] = (uint32_t)nstk;
    NEED(!read_ids(r, s->stack_locs, nstk, s->nlocations), "stack location");

    /* series */
    NEED(npairs <= UINT32_MAX / 2 && 2 * npairs <= rb_left(r), "series label count");
    ALLOC(s->series_off, (size_t)s->nseries + 1);
    ALLOC(s->series_labels, 2 * npairs);
    off = 0;
    for (uint32_t i = 0; i < s->nseries; i++) {
        NEED(!uv_max(r, npairs - off, &v), "series label count");
        s->series_off[i] = (uint32_t)off;
        off += v;
    }
    NEED(off == npairs, "series label count");
    s->series_off[s->nseries] = (uint32_t)npairs;
    NEED(!read_ids(r, s->series_labels, 2 * npairs, s->nstrings), "series label");

    /* samples */
    uint64_t ns = s->nsamples;
    ALLOC(s->sample_series, ns);
    ALLOC(s->sample_stack, ns);
    ALLOC(s->sample_time_ms, ns);
    ALLOC(s->sample_values, ns * s->ntypes);
    uint64_t ser = 0;
    for (uint64_t i = 0; i < ns; i++) {
        NEED(!uv_max(r, (uint64_t)s->nseries - ser, &v), "sample series");
        ser += v;
        NEED(ser < s->nseries, "sample series");
        s->sample_series[i] = (uint32_t)ser;
    }
    if (ns)
        NEED(t_base >= info->t_min_ms && t_base <= info->t_max_ms, "time base");
    for (uint64_t i = 0; i < ns; i++) {
        bool same = i && s->sample_series[i] == s->sample_series[i - 1];
        int64_t prev = same ? s->sample_time_ms[i - 1] : t_base;
        NEED(!uv_max(r, (uint64_t)info->t_max_ms - (uint64_t)prev, &v), "sample time");
        s->sample_time_ms[i] = (int64_t)((uint64_t)prev + v);
    }
    for (uint64_t i = 0; i < ns; i++) {
        bool same = i && s->sample_series[i] == s->sample_series[i - 1] &&
                    s->sample_time_ms[i] == s->sample_time_ms[i - 1];
        uint64_t base = same ? (uint64_t)s->sample_stack[i - 1] + 1 : 0;
        NEED(!uv(r, &v) && v < s->nstacks && base + v < s->nstacks, "sample stack");
        s->sample_stack[i] = (uint32_t)(base + v);
    }
    for (uint32_t t = 0; t < s->ntypes; t++) {
        uint64_t sum = 0;
        for (uint64_t i = 0; i < ns; i++) {
            int64_t x, y;
            NEED(!sv(r, &x) && !__builtin_mul_overflow(x, (int64_t)gcd[t], &y), "sample value");
            s->sample_values[i * s->ntypes + t] = y;
            sum += (uint64_t)y;
        }
        if (t < 4 && t < info->nprofile_types)
            NEED(sum == info->total[t], "sample totals (differ from the footer)");
    }
    /* anything left: columns of a later minor version */
out:
    free(raw);
    if (ret) {
        if (p)
            seg_section_free(&p->s);
        if (ret == -EBADMSG && err && errlen && !err[0])
            errmsg(err, errlen, "section %s: corrupt", info->service);
    } else {
        *out = &p->s;
    }
    return ret;
}

/* ---- profile type ids -------------------------------------------------- */

static const char *type_name(const char *type, const char *ptype)
{
    if (!strcmp(ptype, "cpu") || !strcmp(type, "cpu"))
        return "process_cpu";
    if (!strcmp(ptype, "space") || !strncmp(type, "alloc_", 6) || !strncmp(type, "inuse_", 6) ||
        !strcmp(type, "live"))
        return "memory";
    if (!strcmp(type, "wall"))
        return "wall";
    /* JFR's monitor locks and thread parks (codec/jfr.c): one pair of
     * sample types, told apart by the period type, as Pyroscope names them */
    if (!strcmp(ptype, "mutex") || !strcmp(ptype, "block"))
        return ptype;
    return type;
}

int seg_type_id(char *buf, size_t len, const char *type, const char *unit, const char *ptype,
                const char *punit)
{
    int n = snprintf(buf, len, "%s:%s:%s:%s:%s", type_name(type, ptype), type, unit, ptype, punit);
    return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int seg_profile_type_id(const struct seg_section *s, uint32_t i, char *buf, size_t len)
{
    if (!s || i >= s->ntypes)
        return -EINVAL;
    return seg_type_id(buf, len, s->strings[s->types[i].type], s->strings[s->types[i].unit],
                       s->strings[s->period_type.type], s->strings[s->period_type.unit]);
}
