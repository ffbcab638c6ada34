/* SPDX-License-Identifier: Apache-2.0 */
#include "common/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/file.h"

struct auth {
    size_t n;
    char *tok[AUTH_MAX_TOKENS];
    size_t len[AUTH_MAX_TOKENS];
};

void auth_free(struct auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        /* Do not leave the secret in freed memory. */
        memset(a->tok[i], 0, a->len[i]);
        free(a->tok[i]);
    }
    free(a);
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int auth_parse(const char *text, size_t len, struct auth **out, char *err, size_t errlen)
{
    struct auth *a = calloc(1, sizeof(*a));
    size_t line = 0;

    *out = NULL;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t pos = 0; pos < len;) {
        const char *eol = memchr(text + pos, '\n', len - pos);
        size_t end = eol ? (size_t)(eol - text) : len, b = pos, e = end;

        line++;
        pos = end + 1;
        while (b < e && blank(text[b]))
            b++;
        while (e > b && blank(text[e - 1]))
            e--;
        if (b == e)
            continue;
        for (size_t i = b; i < e; i++) {
            if ((unsigned char)text[i] < 0x21 || (unsigned char)text[i] > 0x7e) {
                snprintf(err, errlen,
                         "line %zu: a token is visible ASCII without blanks (one token per line)",
                         line);
                auth_free(a);
                return -EINVAL;
            }
        }
        if (e - b > AUTH_MAX_TOKEN) {
            snprintf(err, errlen, "line %zu: token longer than %d characters", line,
                     AUTH_MAX_TOKEN);
            auth_free(a);
            return -EINVAL;
        }
        if (a->n == AUTH_MAX_TOKENS) {
            snprintf(err, errlen, "more than %d tokens", AUTH_MAX_TOKENS);
            auth_free(a);
            return -EINVAL;
        }
        a->tok[a->n] = strndup(text + b, e - b);
        if (!a->tok[a->n]) {
            snprintf(err, errlen, "out of memory");
            auth_free(a);
            return -ENOMEM;
        }
        a->len[a->n++] = e - b;
    }
    if (!a->n) {
        snprintf(err, errlen, "no token (expected one token per line)");
        auth_free(a);
        return -EINVAL;
    }
    *out = a;
    return 0;
}

int auth_load(const char *path, struct auth **out, char *err, size_t errlen)
{
    char msg[256], *buf;
    size_t n;
    int rc;

    *out = NULL;
    rc = read_file(path, AUTH_MAX_FILE, &buf, &n);
    if (rc == -EFBIG) {
        snprintf(err, errlen, "%s: larger than %d bytes", path, AUTH_MAX_FILE);
        return rc;
    }
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if ((rc = auth_parse(buf, n, out, msg, sizeof(msg))))
        snprintf(err, errlen, "%s: %s", path, msg);
    explicit_bzero(buf, n);
    free(buf);
    return rc;
}

size_t auth_count(const struct auth *a)
{
    return a ? a->n : 0;
}

const char *auth_first(const struct auth *a)
{
    return a && a->n ? a->tok[0] : NULL;
}

/* Equal without an early exit: the time depends on the lengths only. */
static bool ct_equal(const char *cand, size_t clen, const char *tok, size_t tlen)
{
    volatile unsigned char d = clen != tlen;

    for (size_t i = 0; i < tlen; i++)
        d |= (unsigned char)tok[i] ^ (unsigned char)(i < clen ? cand[i] : 0);
    return d == 0;
}

static bool match_any(const struct auth *a, const char *cand, size_t clen)
{
    bool ok = false;

    if (clen == 0 || clen > AUTH_MAX_TOKEN)
        return false;
    for (size_t i = 0; i < a->n; i++)
        ok |= ct_equal(cand, clen, a->tok[i], a->len[i]);
    return ok;
}

/* Skips the scheme @name (case-insensitive) and at least one blank; NULL
 * when @hdr has another scheme. */
static const char *scheme(const char *hdr, const char *name)
{
    size_t n = strlen(name);

    if (strncasecmp(hdr, name, n) != 0 || (hdr[n] != ' ' && hdr[n] != '\t'))
        return NULL;
    hdr += n;
    while (*hdr == ' ' || *hdr == '\t')
        hdr++;
    return hdr;
}

bool auth_check(const struct auth *a, const char *hdr)
{
    const char *v;
    size_t len;

    if (!a || !hdr)
        return false;
    while (*hdr == ' ' || *hdr == '\t')
        hdr++;
    if ((v = scheme(hdr, "Bearer"))) {
        len = strlen(v);
        while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
            len--;
        return match_any(a, v, len);
    }
    if ((v = scheme(hdr, "Basic"))) {
        /* user:token, at most 256 bytes of user name. */
        uint8_t buf[AUTH_MAX_TOKEN + 258];
        len = strlen(v);
        while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
            len--;
        long n = base64_decode(v, len, buf, sizeof(buf));
        const uint8_t *colon = n > 0 ? memchr(buf, ':', (size_t)n) : NULL;
        bool ok = colon && match_any(a, (const char *)colon + 1, (size_t)(buf + n - colon - 1));
        memset(buf, 0, sizeof(buf));
        return ok;
    }
    return false;
}
