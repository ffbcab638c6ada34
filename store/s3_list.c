/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3_list: a minimal, bounded reader for S3 ListObjectsV2 responses and S3
 * error bodies. Not a general XML parser: it tracks the element path, takes
 * the text of the few elements it needs (Contents/Key, Contents/Size,
 * IsTruncated, NextContinuationToken, Code), decodes the five predefined
 * entities and numeric character references, and rejects DOCTYPE (so no
 * entity definitions, no external entities) and anything malformed. Every
 * read is bounds-checked against @len; nesting depth is capped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"

#define MAX_DEPTH 32
#define MAX_TEXT  (STORE_KEY_MAX * 4)

enum elem { E_OTHER, E_ROOT, E_CONTENTS, E_KEY, E_SIZE, E_TRUNC, E_TOKEN };

struct parser {
    const char *p, *end;
    enum elem stack[MAX_DEPTH];
    int depth;
};

static int has(const struct parser *x, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(x->end - x->p) >= n && !memcmp(x->p, lit, n);
}

/* Advances past @lit; -EPROTO when the input ends first. */
static int skip_past(struct parser *x, const char *lit)
{
    size_t n = strlen(lit);
    const char *q = memmem(x->p, (size_t)(x->end - x->p), lit, n);

    if (!q)
        return -EPROTO;
    x->p = q + n;
    return 0;
}

static int put_utf8(char *out, size_t *o, size_t cap, unsigned long cp)
{
    char b[4];
    size_t n;

    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -EPROTO;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    if (*o + n >= cap)
        return -EPROTO;
    memcpy(out + *o, b, n);
    *o += n;
    return 0;
}

/* Decodes [s, e) into @out (NUL-terminated); -EPROTO on a bad reference, a
 * NUL, markup, or text longer than @cap - 1. Returns the decoded length. */
static long decode(const char *s, const char *e, char *out, size_t cap)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}};
    size_t o = 0;

    while (s < e) {
        if (*s == '<' || *s == 0)
            return -EPROTO;
        if (*s != '&') {
            if (o + 1 >= cap)
                return -EPROTO;
            out[o++] = *s++;
            continue;
        }
        s++;
        if (s < e && *s == '#') {
            unsigned long cp = 0;
            int base = 10, digits = 0;

            s++;
            if (s < e && (*s == 'x' || *s == 'X'))
                base = 16, s++;
            for (; s < e && *s != ';'; s++, digits++) {
                int v;
                if (*s >= '0' && *s <= '9')
                    v = *s - '0';
                else if (base == 16 && *s >= 'a' && *s <= 'f')
                    v = *s - 'a' + 10;
                else if (base == 16 && *s >= 'A' && *s <= 'F')
                    v = *s - 'A' + 10;
                else
                    return -EPROTO;
                cp = cp * (unsigned long)base + (unsigned long)v;
                if (cp > 0x10ffff)
                    return -EPROTO;
            }
            if (s >= e || !digits)
                return -EPROTO;
            s++; /* ';' */
            if (put_utf8(out, &o, cap, cp))
                return -EPROTO;
            continue;
        }
        size_t i;
        for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
            size_t n = strlen(ents[i].name);
            if ((size_t)(e - s) >= n && !memcmp(s, ents[i].name, n)) {
                if (o + 1 >= cap)
                    return -EPROTO;
                out[o++] = ents[i].c;
                s += n;
                break;
            }
        }
        if (i == sizeof(ents) / sizeof(ents[0]))
            return -EPROTO;
    }
    out[o] = 0;
    return (long)o;
}

static int name_is(const char *n, size_t len, const char *lit)
{
    return len == strlen(lit) && !memcmp(n, lit, len);
}

static enum elem classify(const struct parser *x, const char *n, size_t len)
{
    enum elem parent = x->depth ? x->stack[x->depth - 1] : E_OTHER;

    if (x->depth == 0)
        return name_is(n, len, "ListBucketResult") ? E_ROOT : E_OTHER;
    if (parent == E_ROOT) {
        if (name_is(n, len, "Contents"))
            return E_CONTENTS;
        if (name_is(n, len, "IsTruncated"))
            return E_TRUNC;
        if (name_is(n, len, "NextContinuationToken"))
            return E_TOKEN;
    } else if (parent == E_CONTENTS) {
        if (name_is(n, len, "Key"))
            return E_KEY;
        if (name_is(n, len, "Size"))
            return E_SIZE;
    }
    return E_OTHER;
}

static int parse_u64(const char *s, uint64_t *v)
{
    uint64_t r = 0;

    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (*s < '0' || *s > '9')
        return -EPROTO;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (r > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -EPROTO;
        r = r * 10 + (uint64_t)(*s - '0');
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s ? -EPROTO : (*v = r, 0);
}

static int is_name_char(char c)
{
    return c && !strchr(" \t\r\n/>=\"'<", c);
}

int s3_list_parse(const char *xml, size_t len, struct store_list *items, size_t *cap,
                  int *truncated, char **token)
{
    struct parser x = {.p = xml, .end = xml + len};
    char text[MAX_TEXT + 1], key[MAX_TEXT + 1];
    const char *text_start = NULL;
    int have_key = 0, have_size = 0, seen_root = 0, rc;
    uint64_t size = 0;

    *truncated = 0;
    *token = NULL;
    while (x.p < x.end) {
        if (*x.p != '<') {
            if (x.depth == 0 && !strchr(" \t\r\n", *x.p))
                goto bad; /* text outside the root */
            x.p++;
            continue;
        }
        if (has(&x, "<?")) {
            if (skip_past(&x, "?>"))
                goto bad;
            continue;
        }
        if (has(&x, "<!--")) {
            if (skip_past(&x, "-->"))
                goto bad;
            continue;
        }
        if (has(&x, "<![CDATA[")) {
            /* S3 never sends CDATA; inside a value we read it would be
             * misread, so only tolerate it where we ignore the text. */
            if (text_start || skip_past(&x, "]]>"))
                goto bad;
            continue;
        }
        if (has(&x, "<!"))
            goto bad; /* DOCTYPE and friends: no entity definitions */
        int closing = has(&x, "</");
        const char *n = x.p + (closing ? 2 : 1), *q;
        for (q = n; q < x.end && is_name_char(*q); q++)
            ;
        size_t nlen = (size_t)(q - n);
        if (!nlen || q >= x.end)
            goto bad;
        /* Find the tag's end, skipping quoted attribute values. */
        char quote = 0;
        for (; q < x.end; q++) {
            if (quote) {
                if (*q == quote)
                    quote = 0;
            } else if (*q == '"' || *q == '\'') {
                quote = *q;
            } else if (*q == '>' || *q == '<') {
                break;
            }
        }
        if (q >= x.end || *q != '>')
            goto bad;
        int selfclose = !closing && q[-1] == '/';
        const char *tag_start = x.p;
        x.p = q + 1;

        if (closing) {
            if (x.depth == 0)
                goto bad;
            enum elem e = x.stack[--x.depth];
            long tl = 0;
            if (e == E_KEY || e == E_SIZE || e == E_TRUNC || e == E_TOKEN) {
                if (!text_start)
                    goto bad;
                tl = decode(text_start, tag_start, text, sizeof(text));
                text_start = NULL;
                if (tl < 0)
                    goto bad;
            }
            switch (e) {
            case E_KEY:
                memcpy(key, text, (size_t)tl + 1);
                have_key = 1;
                break;
            case E_SIZE:
                if (parse_u64(text, &size))
                    goto bad;
                have_size = 1;
                break;
            case E_TRUNC:
                *truncated = !strcmp(text, "true");
                break;
            case E_TOKEN:
                free(*token);
                *token = tl ? strdup(text) : NULL;
                if (tl && !*token) {
                    rc = -ENOMEM;
                    goto out;
                }
                break;
            case E_CONTENTS:
                if (!have_key || !have_size || !key[0])
                    goto bad;
                rc = store_list_push(items, cap, key, strlen(key), size);
                if (rc)
                    goto out;
                break;
            default:
                break;
            }
            continue;
        }
        if (text_start)
            goto bad; /* markup inside a value we read */
        enum elem e = classify(&x, n, nlen);
        if (x.depth == 0) {
            if (e != E_ROOT || seen_root)
                goto bad;
            seen_root = 1;
        }
        if (selfclose) {
            if (e == E_CONTENTS || e == E_KEY || e == E_SIZE)
                goto bad;
            continue;
        }
        if (x.depth == MAX_DEPTH)
            goto bad;
        x.stack[x.depth++] = e;
        if (e == E_CONTENTS)
            have_key = have_size = 0;
        if (e == E_KEY || e == E_SIZE || e == E_TRUNC || e == E_TOKEN)
            text_start = x.p;
    }
    if (x.depth || !seen_root)
        goto bad;
    return 0;
bad:
    rc = -EPROTO;
out:
    free(*token);
    *token = NULL;
    return rc;
}

void s3_error_code(const char *xml, size_t len, char *code, size_t codelen)
{
    const char *s, *e;
    char text[128];

    if (!codelen)
        return;
    code[0] = 0;
    if (!xml || !(s = memmem(xml, len, "<Code>", 6)))
        return;
    s += 6;
    e = memmem(s, len - (size_t)(s - xml), "</Code>", 7);
    if (!e || decode(s, e, text, sizeof(text)) < 0)
        return;
    /* Only the characters an error code is made of: the body is untrusted
     * and ends up in a message a user reads on a terminal. */
    size_t o = 0;
    for (const char *p = text; *p && o + 1 < codelen; p++)
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '.' || *p == '_' || *p == '-')
            code[o++] = *p;
    code[o] = 0;
}
