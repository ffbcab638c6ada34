/* SPDX-License-Identifier: Apache-2.0 */
#include "query/engine/query.h"

#include <errno.h>

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
