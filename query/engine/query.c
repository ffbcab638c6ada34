/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"

#define KEY_ESC 0x1e
#define KEY_SEP 0x1f

int query_series_grid(const struct query *q, int64_t *step, uint32_t *nbuckets)
{
    int64_t span = q->until - q->from, s = q->step;

    if (span <= 0)
        return -EINVAL;
    if (s <= 0) {
        s = (span + 99) / 100;
        s = (s + 999) / 1000 * 1000;
        if (s < 1000)
            s = 1000;
    }
    int64_t nb = (span + s - 1) / s;
    if (nb > SERIES_MAX_POINTS)
        return -E2BIG;
    *step = s;
    *nbuckets = (uint32_t)nb;
    return 0;
}

bool query_profile_type_valid(const char *s)
{
    int fields = 1;
    size_t flen = 0;

    if (!*s || *s == ':')
        return false;
    for (; *s; s++) {
        if (*s == ':') {
            fields++;
            flen = 0;
            continue;
        }
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
        if (++flen > 64)
            return false;
    }
    return fields == 5;
}

bool query_label_name_valid(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (size_t i = 1; s[i]; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_') ||
            i > 128)
            return false;
    return true;
}

bool query_group_by_valid(const char *s)
{
    char name[130];
    uint32_t n = 0;

    if (!s || !*s)
        return false;
    for (const char *p = s;; p++) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(name) || ++n > QUERY_MAX_GROUP_BY)
            return false;
        memcpy(name, p, len);
        name[len] = '\0';
        if (!query_label_name_valid(name))
            return false;
        p += len;
        if (!*p)
            return true;
    }
}

uint32_t query_group_by_count(const char *s)
{
    uint32_t n = s && *s ? 1 : 0;

    for (; s && *s; s++)
        n += *s == ',';
    return n;
}

void query_group_key_append(struct wbuf *b, const char *val, bool first)
{
    const char sep = KEY_SEP, esc = KEY_ESC;

    if (!first)
        wb_bytes(b, &sep, 1);
    for (const char *p = val; *p; p++) {
        if (*p == KEY_ESC || *p == KEY_SEP)
            wb_bytes(b, &esc, 1);
        wb_bytes(b, p, 1);
    }
}

int query_group_key_split(const char *key, uint32_t n, char ***vals)
{
    size_t len = strlen(key);
    char **v, *o;
    uint32_t k = 0;

    if (n == 0 || n > QUERY_MAX_GROUP_BY + 1) /* + 1: Series' type id */
        return -EINVAL;
    v = malloc(n * sizeof(*v) + len + n);
    if (!v)
        return -ENOMEM;
    o = (char *)(v + n);
    v[k++] = o;
    for (const char *p = key; *p; p++) {
        if (*p == KEY_ESC && p[1]) {
            *o++ = *++p;
        } else if (*p == KEY_SEP) {
            *o++ = '\0';
            if (k == n) {
                k = n + 1; /* more values than asked for */
                break;
            }
            v[k++] = o;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    if (k != n || n == 0) {
        free(v);
        return -EINVAL;
    }
    *vals = v;
    return 0;
}

/* ---- individual profile ids ---------------------------------------------- */

/*
 * UUIDv7 (RFC 9562): 48 bits of Unix ms, version 7, 12 bits "rand_a", the
 * variant 10, 62 bits "rand_b". Stoke puts the window start in the time and
 * the series hash in the rest: its top 12 bits in rand_a, its low 52 bits
 * in rand_b (whose top 10 bits stay 0).
 */
void prof_id_format(const struct prof_id *id, char *buf)
{
    uint64_t t = (uint64_t)id->time_ms & 0xffffffffffffULL, h = id->hash;
    uint64_t hi = t << 16 | 0x7000 | (h >> 52);
    uint64_t lo = 0x8000000000000000ULL | (h & 0xfffffffffffffULL);

    snprintf(buf, PROF_ID_LEN + 1, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
             (unsigned)(hi >> 16) & 0xffff, (unsigned)hi & 0xffff, (unsigned)(lo >> 48),
             (unsigned long long)(lo & 0xffffffffffffULL));
}

int prof_id_parse(const char *s, struct prof_id *out)
{
    uint64_t v[2] = {0, 0};
    int nd = 0;

    for (int i = 0; i < PROF_ID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return -EINVAL;
            continue;
        }
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -EINVAL;
        v[nd / 16] = v[nd / 16] << 4 | (uint64_t)d;
        nd++;
    }
    if (s[PROF_ID_LEN])
        return -EINVAL;
    /* version 7, variant 10, rand_b's top 10 bits 0: else not ours */
    if ((v[0] >> 12 & 0xf) != 7 || v[1] >> 52 != 0x800)
        return -ENOENT;
    out->time_ms = (int64_t)(v[0] >> 16);
    out->hash = (v[0] & 0xfff) << 52 | (v[1] & 0xfffffffffffffULL);
    return 0;
}

int prof_id_cmp(const void *a, const void *b)
{
    const struct prof_id *x = a, *y = b;

    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? -1 : 1;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

void prof_ids_sort(struct prof_id *ids, uint32_t *n)
{
    uint32_t k = 0;

    qsort(ids, *n, sizeof(*ids), prof_id_cmp);
    for (uint32_t i = 0; i < *n; i++)
        if (!k || prof_id_cmp(&ids[k - 1], &ids[i]))
            ids[k++] = ids[i];
    *n = k;
}

uint64_t query_series_hash(const char *tenant, const char *service, const char *const *pairs,
                           uint32_t n)
{
    uint64_t h = hash_fnv1a(FNV64_OFFSET, tenant, strlen(tenant) + 1);

    h = hash_fnv1a(h, service, strlen(service) + 1);
    for (uint32_t i = 0; i < 2 * n; i++)
        h = hash_fnv1a(h, pairs[i], strlen(pairs[i]) + 1);
    return hash64(h);
}
