/* SPDX-License-Identifier: Apache-2.0 */
#include "query/serve/request.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- responses --------------------------------------------------------- */

void http_respond(struct http_response *r, int status, const char *ctype, struct wbuf *b)
{
    r->status = status;
    r->content_type = ctype;
    if (b->err) {
        free(b->p);
        r->status = 500;
        r->content_type = "application/json";
        r->body = (uint8_t *)strdup("{\"error\":\"out of memory\"}");
        r->len = r->body ? strlen((char *)r->body) : 0;
        return;
    }
    r->body = b->p;
    r->len = b->len;
}

void http_error_json(struct http_response *r, int status, const char *fmt, ...)
{
    char msg[1024];
    struct wbuf b = {0};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    wb_bytes(&b, "{\"error\":", 9);
    wb_json_str(&b, msg);
    wb_bytes(&b, "}\n", 2);
    http_respond(r, status, "application/json", &b);
}

void http_finish_json(struct wbuf *b, const struct mprof *p)
{
    wb_printf(b,
              ",\"stats\":{\"objects\":%" PRIu64 ",\"sections\":%" PRIu64 ",\"bytes_read\":%" PRIu64
              ",\"cache_hits\":%" PRIu64 ",\"skipped\":%" PRIu64,
              p->stats.objects, p->stats.sections, p->stats.bytes_read, p->stats.cache_hits,
              p->stats.skipped);
    /* sections read from their cut call trees (ctree.h): how many, and
     * how far any node of the flame graph may be off, in its unit */
    if (p->ctrees)
        wb_printf(b, ",\"call_tree_sections\":%" PRIu32 ",\"max_error\":%lld", p->ctrees,
                  (long long)p->cut[0]);
    wb_bytes(b, "}", 1);
    if (p->nwarnings) {
        wb_bytes(b, ",\"warnings\":[", 13);
        for (uint32_t i = 0; i < p->nwarnings; i++) {
            if (i)
                wb_bytes(b, ",", 1);
            wb_json_str(b, p->warnings[i]);
        }
        if (p->warnings_dropped)
            wb_printf(b, ",\"... and %" PRIu64 " more\"", p->warnings_dropped);
        wb_bytes(b, "]", 1);
    }
    wb_bytes(b, "}\n", 2);
}

void http_note_query(struct http_response *r, const struct mprof *mp)
{
    r->queried = true;
    r->skipped += mp->stats.skipped;
}

/* ---- times ----------------------------------------------------------- */

int64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *http_parse_time(const char *s, int64_t now, int64_t *out)
{
    char *end;

    if (strncmp(s, "now", 3) == 0) {
        if (s[3] == '\0') {
            *out = now;
            return NULL;
        }
        if (s[3] != '-' || s[4] < '0' || s[4] > '9')
            return "expected now, now-<N><s|m|h|d> or Unix milliseconds";
        errno = 0;
        long long n = strtoll(s + 4, &end, 10);
        int64_t unit;
        switch (*end) {
        case 's':
            unit = 1000;
            break;
        case 'm':
            unit = 60000;
            break;
        case 'h':
            unit = 3600000;
            break;
        case 'd':
            unit = 86400000;
            break;
        default:
            return "expected a unit s, m, h or d after now-N";
        }
        if (end[1] != '\0' || errno || n > 100LL * 365 * 86400)
            return "expected now, now-<N><s|m|h|d> or Unix milliseconds";
        *out = now - n * unit;
        return NULL;
    }
    if (!*s || !((s[0] >= '0' && s[0] <= '9') || s[0] == '-'))
        return "not a number (Unix milliseconds, now or now-<N><s|m|h|d>)";
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno)
        return "not a number (Unix milliseconds, now or now-<N><s|m|h|d>)";
    *out = v;
    return NULL;
}
