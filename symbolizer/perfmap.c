/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/perfmap.h"

#define PERFMAP_NAME_MAX 4096

static int parse_hex(const char **pp, const char *end, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    int digits = 0;

    if (end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    while (p < end) {
        int h;
        char c = *p;
        if (c >= '0' && c <= '9')
            h = c - '0';
        else if (c >= 'a' && c <= 'f')
            h = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            h = c - 'A' + 10;
        else
            break;
        if (++digits > 16)
            return -1;
        v = (v << 4) | (uint64_t)h;
        p++;
    }
    if (digits == 0)
        return -1;
    *pp = p;
    *out = v;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct sym_perfmap_entry *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

int sym_perfmap_parse(struct sym_perfmap *m, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    size_t cap = 0, scap = 0;
    uint32_t seq = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;
        uint64_t start, size;
        p = nl ? nl + 1 : end;
        while (le > q && (le[-1] == '\r' || le[-1] == ' '))
            le--;
        if (le == q)
            continue;
        if (parse_hex(&q, le, &start) || q >= le || *q != ' ')
            goto bad;
        q++;
        if (parse_hex(&q, le, &size) || q >= le || *q != ' ')
            goto bad;
        q++;
        size_t nlen = (size_t)(le - q);
        if (nlen == 0 || size == 0 || start + size < start)
            goto bad;
        if (nlen > PERFMAP_NAME_MAX)
            nlen = PERFMAP_NAME_MAX;
        if (m->strs_len + nlen + 1 > UINT32_MAX || seq == UINT32_MAX)
            return -E2BIG;
        if (m->strs_len + nlen + 1 > scap) {
            size_t ns = scap ? scap * 2 : 4096;
            while (ns < m->strs_len + nlen + 1)
                ns *= 2;
            char *s = realloc(m->strs, ns);
            if (!s)
                return -ENOMEM;
            m->strs = s;
            scap = ns;
        }
        if (m->n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            struct sym_perfmap_entry *e = realloc(m->e, nc * sizeof(*e));
            if (!e)
                return -ENOMEM;
            m->e = e;
            cap = nc;
        }
        struct sym_perfmap_entry *e = &m->e[m->n++];
        e->start = start;
        e->size = size;
        e->seq = seq++;
        e->name = (uint32_t)m->strs_len;
        memcpy(m->strs + m->strs_len, q, nlen);
        m->strs[m->strs_len + nlen] = '\0';
        m->strs_len += nlen + 1;
        continue;
    bad:
        m->bad_lines++;
    }
    if (m->n == 0)
        return 0;
    qsort(m->e, m->n, sizeof(*m->e), cmp_entry);
    /* Same start: keep only the latest line. */
    size_t w = 0;
    for (size_t r = 0; r < m->n; r++) {
        if (w > 0 && m->e[w - 1].start == m->e[r].start)
            w--;
        m->e[w++] = m->e[r];
    }
    m->n = w;
    return 0;
}

const struct sym_perfmap_entry *sym_perfmap_find(const struct sym_perfmap *m, uint64_t addr)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->e[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Overlapping entries happen when code is re-emitted; a few steps back
     * find a longer region that still covers addr. */
    for (size_t i = lo, steps = 0; i > 0 && steps < 4; i--, steps++) {
        const struct sym_perfmap_entry *e = &m->e[i - 1];
        if (addr - e->start < e->size)
            return e;
    }
    return NULL;
}

size_t sym_perfmap_bytes(const struct sym_perfmap *m)
{
    return m->n * sizeof(*m->e) + m->strs_len;
}

void sym_perfmap_free(struct sym_perfmap *m)
{
    free(m->e);
    free(m->strs);
    memset(m, 0, sizeof(*m));
}
