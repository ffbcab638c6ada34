/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/query.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

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
