/* SPDX-License-Identifier: Apache-2.0 */
/* Manifest objects (docs/format.md §7): a list of segment footers. */
#include "codec/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/footer.h"
#include "codec/wire.h"

#define MAN_HEADER_LEN 20
#define MAN_MAJOR      1
#define MAN_MINOR      0

void manifest_free(struct manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nentries; i++) {
        free(m->entries[i].key);
        seg_footer_free(m->entries[i].footer);
    }
    free(m->entries);
    for (size_t i = 0; i < m->nreplaces; i++)
        free(m->replaces[i]);
    free(m->replaces);
    free(m);
}

int manifest_add(struct manifest *m, const char *key, const struct seg_footer *footer)
{
    if (!m || !key || !footer)
        return -EINVAL;
    struct manifest_entry *e = realloc(m->entries, (m->nentries + 1) * sizeof(*e));
    if (!e)
        return -ENOMEM;
    m->entries = e;
    e = &m->entries[m->nentries];
    e->key = strdup(key);
    e->footer = seg_footer_copy(footer);
    if (!e->key || !e->footer) {
        free(e->key);
        seg_footer_free(e->footer);
        return -ENOMEM;
    }
    m->nentries++;
    return 0;
}

int manifest_encode(const struct manifest *m, uint8_t **buf, size_t *len)
{
    struct wbuf body = {0}, rec = {0}, o = {0};
    uint8_t hdr[MAN_HEADER_LEN];
    int ret = 0;

    if (!m || !buf || !len)
        return -EINVAL;
    wb_uv(&body, m->nentries);
    for (size_t i = 0; i < m->nentries; i++) {
        const struct manifest_entry *e = &m->entries[i];
        if (!e->key || !e->footer) {
            ret = -EINVAL;
            goto out;
        }
        rec.len = 0;
        wb_str(&rec, e->key);
        wb_uv(&rec, e->footer->version);
        wb_uv(&rec, e->footer->object_length);
        footer_encode_body(&rec, e->footer);
        if (rec.err)
            break;
        wb_uv(&body, rec.len);
        wb_bytes(&body, rec.p, rec.len);
    }
    wb_uv(&body, m->nreplaces);
    for (size_t i = 0; i < m->nreplaces; i++)
        wb_str(&body, m->replaces[i]);
    if (body.err || rec.err) {
        ret = -ENOMEM;
        goto out;
    }
    if (body.len > SEG_MAX_RAW) {
        ret = -EFBIG;
        goto out;
    }
    wb_bytes(&o, hdr, sizeof(hdr)); /* filled in below */
    if ((ret = zstd_append(&o, body.p, body.len, 3)))
        goto out;
    if (o.err) {
        ret = -ENOMEM;
        goto out;
    }
    memcpy(o.p, "STKM", 4);
    wr_u16(o.p + 4, MAN_MAJOR);
    wr_u16(o.p + 6, MAN_MINOR);
    wr_u32(o.p + 8, 0);
    wr_u32(o.p + 12, (uint32_t)body.len);
    wr_u32(o.p + 16, crc32c(o.p + MAN_HEADER_LEN, o.len - MAN_HEADER_LEN));
    *buf = o.p;
    *len = o.len;
    o.p = NULL;
out:
    wb_free(&body);
    wb_free(&rec);
    wb_free(&o);
    return ret;
}

int manifest_decode(const uint8_t *buf, size_t len, struct manifest **out, char *err, size_t errlen)
{
    return manifest_decode_flags(buf, len, 0, out, err, errlen);
}

int manifest_decode_flags(const uint8_t *buf, size_t len, unsigned flags, struct manifest **out,
                          char *err, size_t errlen)
{
    struct manifest *m = NULL;
    uint8_t *raw = NULL;
    uint64_t n;
    int ret = 0;

    if (err && errlen)
        err[0] = 0;
    if (!buf || !out)
        return -EINVAL;
    if (len < MAN_HEADER_LEN || memcmp(buf, "STKM", 4)) {
        errmsg(err, errlen, "manifest: bad magic (not a Stoke manifest)");
        return -EBADMSG;
    }
    if (rd_u16(buf + 4) != MAN_MAJOR || (rd_u32(buf + 8) & 0xffff0000u)) {
        errmsg(err, errlen, "unsupported manifest version %u (this reader knows %u)",
               rd_u16(buf + 4), MAN_MAJOR);
        return -EPROTO;
    }
    if (crc32c(buf + MAN_HEADER_LEN, len - MAN_HEADER_LEN) != rd_u32(buf + 16)) {
        errmsg(err, errlen, "manifest: checksum mismatch");
        return -EBADMSG;
    }
    uint64_t rawlen = rd_u32(buf + 12);
    if ((ret = zstd_decode(buf + MAN_HEADER_LEN, len - MAN_HEADER_LEN, rawlen, &raw))) {
        errmsg(err, errlen, "manifest: body does not decompress");
        return ret;
    }
    struct rbuf r = {.p = raw, .len = rawlen};
    if (!(m = calloc(1, sizeof(*m)))) {
        ret = -ENOMEM;
        goto out;
    }
    if (rb_uv_max(&r, rb_left(&r), &n)) {
        ret = -EBADMSG;
        goto out;
    }
    if (!(m->entries = calloc(n + 1, sizeof(*m->entries)))) {
        ret = -ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t rl, ver;
        const uint8_t *p;
        if (rb_uv_max(&r, rb_left(&r), &rl) || rb_bytes(&r, &p, rl)) {
            ret = -EBADMSG;
            goto out;
        }
        struct rbuf rec = {.p = p, .len = rl};
        struct manifest_entry *e = &m->entries[m->nentries];
        uint64_t olen;
        if ((ret = rb_str(&rec, &e->key)))
            goto out;
        m->nentries++;
        if (rb_uv(&rec, &ver) || rb_uv(&rec, &olen)) {
            ret = -EBADMSG;
            goto out;
        }
        if (ver != SEG_MAJOR) {
            errmsg(err, errlen, "manifest: entry %s has segment version %llu", e->key,
                   (unsigned long long)ver);
            ret = -EPROTO;
            goto out;
        }
        if (olen < SEG_HEADER_LEN + SEG_TRAILER_LEN) {
            ret = -EBADMSG;
            goto out;
        }
        if ((ret = footer_decode_body(&rec, olen - SEG_TRAILER_LEN, &e->footer, err, errlen)))
            goto out;
        e->footer->object_length = olen;
    }
    if (rb_uv_max(&r, rb_left(&r), &n)) {
        ret = -EBADMSG;
        goto out;
    }
    if (flags & MANIFEST_NO_REPLACES)
        n = 0;
    if (!(m->replaces = calloc(n + 1, sizeof(char *)))) {
        ret = -ENOMEM;
        goto out;
    }
    for (; m->nreplaces < n; m->nreplaces++)
        if ((ret = rb_str(&r, &m->replaces[m->nreplaces])))
            goto out;
out:
    free(raw);
    if (ret) {
        if (ret == -EBADMSG && err && errlen && !err[0])
            errmsg(err, errlen, "manifest: corrupt body");
        manifest_free(m);
    } else {
        *out = m;
    }
    return ret;
}

int manifest_entry_key(char *buf, size_t len, const char *tenant, const char *host,
                       int64_t start_ms, uint64_t hash)
{
    char date[11], hour[3];
    if (!safe_component(tenant) || !safe_component(host) || utc_date_hour(start_ms, date, hour))
        return -EINVAL;
    int n = snprintf(buf, len, "%s/manifest/%s/%s/entries/%013lld-%s-%016llx.man", tenant, date,
                     hour, (long long)start_ms, host, (unsigned long long)hash);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

int manifest_hour_key(char *buf, size_t len, const char *tenant, int64_t hour_start_ms,
                      unsigned generation)
{
    char date[11], hour[3];
    if (!safe_component(tenant) || generation > 999999 || utc_date_hour(hour_start_ms, date, hour))
        return -EINVAL;
    int n = snprintf(buf, len, "%s/manifest/%s/%s/hour-%06u.man", tenant, date, hour, generation);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

int manifest_index_key(char *buf, size_t len, const char *hour_key)
{
    const char *m = hour_key ? strstr(hour_key, "/manifest/") : NULL;
    const char *base = hour_key ? strrchr(hour_key, '/') : NULL;
    unsigned g;

    /* <tenant>/manifest/<date>/<hour>/hour-NNNNNN.man: 10 + 1 + 2 + 1 after "/manifest/" */
    if (!m || m == hour_key || !base || base != m + 10 + 10 + 1 + 2 || strlen(base) != 16 ||
        sscanf(base, "/hour-%6u.man", &g) != 1)
        return -EINVAL;
    int n = snprintf(buf, len, "%.*s/index/%s", (int)(m - hour_key), hour_key, m + 10);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

int manifest_entry_segment_prefix(const char *entry_key, char *buf, size_t len)
{
    /* <tenant>/manifest/<YYYY-MM-DD>/<HH>/entries/<13 digits>-<host>-<16 hex>.man */
    const char *slash = strchr(entry_key, '/'), *p, *host, *end;
    char hostbuf[256];
    size_t tl, kl = strlen(entry_key);

    if (!slash || slash == entry_key || kl < 21)
        return -EINVAL;
    tl = (size_t)(slash - entry_key);
    p = slash + 1;
    if (strncmp(p, "manifest/", 9) != 0)
        return -EINVAL;
    p += 9;
    if (strlen(p) < 14 + 8 + 14 + 21 || p[10] != '/' || p[13] != '/' ||
        strncmp(p + 14, "entries/", 8) != 0)
        return -EINVAL;
    const char *start = p + 22;
    for (int i = 0; i < 13; i++)
        if (start[i] < '0' || start[i] > '9')
            return -EINVAL;
    if (start[13] != '-')
        return -EINVAL;
    host = start + 14;
    end = entry_key + kl - 21; /* "-<16 hex>.man" */
    if (end <= host || end[0] != '-' || strcmp(end + 17, ".man") != 0 ||
        (size_t)(end - host) >= sizeof(hostbuf))
        return -EINVAL;
    for (int i = 1; i <= 16; i++)
        if (!((end[i] >= '0' && end[i] <= '9') || (end[i] >= 'a' && end[i] <= 'f')))
            return -EINVAL;
    memcpy(hostbuf, host, (size_t)(end - host));
    hostbuf[end - host] = 0;
    if (!safe_component(hostbuf))
        return -EINVAL;
    int n = snprintf(buf, len, "%.*s/segments/%.10s/%.2s/%s/%.13s-", (int)tl, entry_key, p, p + 11,
                     hostbuf, start);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}
