/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_s3: S3-compatible object storage through libcurl, which signs each
 * request with AWS SigV4 (CURLOPT_AWS_SIGV4). We send the payload's SHA-256
 * in x-amz-content-sha256 (curl signs that value instead of hashing an
 * upload it cannot see), and we hand curl paths and queries already in
 * SigV4 canonical form (RFC 3986 encoding, upper-case hex, sorted query
 * parameters) because curl 7.88 signs the URL as given.
 *
 * One CURL handle per store keeps the connection alive between requests; a
 * mutex makes a store safe to share between threads (requests serialize).
 * Retries: 5xx, 429, 400 RequestTimeout, connection errors and timeouts,
 * with exponential back-off and full jitter, at most opts.retries extra
 * attempts; never 4xx. Secrets live only in this struct and curl's, are
 * wiped on free, and never reach s->err (curl's verbose mode is never on).
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/file.h"
#include "store/backend.h"
#include "store/sha256.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_RETRIES    4
#define BACKOFF_BASE_MS    100
#define BACKOFF_MAX_MS     5000
/* Bodies we parse (lists, errors) are small; objects may be large. */
#define MAX_META_BODY  (16u << 20)
#define MAX_OBJECT     ((size_t)8 << 30)
#define MAX_LIST_PAGES 1000000
#define CREDS_FILE_MAX (1u << 20)
#define EMPTY_SHA256   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_store {
    struct store s;
    pthread_mutex_t lock;
    CURL *curl;
    char *base;   /* "scheme://[bucket.]host[:port][/path][/bucket]", no trailing '/' */
    char *prefix; /* "" or "p/q/" */
    char *access_key, *secret_key, *token;
    char *ca_file;
    char sigv4[96];
    unsigned timeout_ms, retries, list_page;
    uint64_t rng;
    char curl_err[CURL_ERROR_SIZE];
};

struct body {
    struct wbuf b; /* the answer */
    size_t max;
    int overflow;
};

struct upload {
    const uint8_t *data;
    size_t len, pos;
};

static struct s3_store *ss(struct store *s)
{
    return (struct s3_store *)s;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- helpers exposed for tests ----------------------------------------- */

int s3_uri_encode(const char *in, int keep_slash, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
            (keep_slash && *p == '/')) {
            if (o + 1 >= outlen)
                return -ENAMETOOLONG;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= outlen)
                return -ENAMETOOLONG;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= outlen)
        return -ENAMETOOLONG;
    out[o] = 0;
    return (int)o;
}

static char *trim(char *s, char *e)
{
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    *e = 0;
    return s;
}

void s3_creds_clear(struct s3_creds *c)
{
    char **f[] = {&c->access_key, &c->secret_key, &c->session_token};

    for (size_t i = 0; i < 3; i++) {
        if (*f[i]) {
            explicit_bzero(*f[i], strlen(*f[i]));
            free(*f[i]);
            *f[i] = NULL;
        }
    }
}

int s3_creds_parse(const char *text, size_t len, const char *profile, struct s3_creds *c)
{
    char *copy = calloc(len + 1, 1), *line, *next; /* NUL-terminated */
    int in = 0, rc = -ENOENT;

    memset(c, 0, sizeof(*c));
    if (!copy)
        return -ENOMEM;
    if (len)
        memcpy(copy, text, len);
    for (line = copy; line; line = next) {
        char *nl = strchr(line, '\n'), *eq, *k, *v;

        next = nl ? nl + 1 : NULL;
        line = trim(line, nl ? nl : line + strlen(line));
        if (!*line || *line == '#' || *line == ';')
            continue;
        if (*line == '[') {
            char *close = strchr(line, ']');
            char *name;

            if (!close)
                continue;
            name = trim(line + 1, close);
            if (!strncmp(name, "profile ", 8))
                name = trim(name + 8, name + strlen(name));
            in = !strcmp(name, profile);
            continue;
        }
        if (!in || !(eq = strchr(line, '=')))
            continue;
        k = trim(line, eq);
        v = trim(eq + 1, eq + 1 + strlen(eq + 1));
        char **dst = !strcasecmp(k, "aws_access_key_id")       ? &c->access_key
                     : !strcasecmp(k, "aws_secret_access_key") ? &c->secret_key
                     : !strcasecmp(k, "aws_session_token")     ? &c->session_token
                                                               : NULL;
        if (!dst || !*v)
            continue;
        free(*dst);
        if (!(*dst = strdup(v))) {
            rc = -ENOMEM;
            goto out;
        }
    }
    rc = c->access_key && c->secret_key ? 0 : -ENOENT;
out:
    explicit_bzero(copy, len);
    free(copy);
    if (rc)
        s3_creds_clear(c);
    return rc;
}

/* ---- requests ---------------------------------------------------------- */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;

    if (n > b->max - b->b.len) {
        b->overflow = 1;
        return 0;
    }
    wb_bytes(&b->b, ptr, n);
    return b->b.err ? 0 : n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    struct upload *u = arg;
    size_t n = size * nitems;

    if (n > u->len - u->pos)
        n = u->len - u->pos;
    memcpy(buf, u->data + u->pos, n);
    u->pos += n;
    return n;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
    struct upload *u = arg;

    if (origin != SEEK_SET || off < 0 || (uint64_t)off > u->len)
        return CURL_SEEKFUNC_FAIL;
    u->pos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

static uint64_t next_rand(struct s3_store *d)
{
    /* xorshift64*: only spreads retry times, so no need for more. */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 0x2545f4914f6cdd1dull;
}

static void backoff(struct s3_store *d, unsigned attempt)
{
    uint64_t cap = BACKOFF_BASE_MS << (attempt < 16 ? attempt : 16);
    if (cap > BACKOFF_MAX_MS)
        cap = BACKOFF_MAX_MS;
    uint64_t ms = next_rand(d) % (cap + 1); /* full jitter */
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static int curl_retriable(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

struct req {
    const char *method; /* "GET", "PUT", "HEAD", "DELETE" */
    const char *key;    /* for messages */
    const char *url;
    const void *body;
    size_t bodylen;
    uint64_t off, len; /* GET range; both 0 = whole object */
    int if_none_match; /* PUT: create only (If-None-Match: *) */
    size_t max_resp;
    /* out */
    struct body resp;
    long status;
    curl_off_t clen;
    int have_crange;
    uint64_t crange_start; /* from Content-Range of a 206 */
    int retried;           /* more than one attempt was sent */
};

/* Content-Range tells where a 206 body starts; some servers (s3rver for
 * "bytes=0-0") send more than was asked, so we slice by it. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
    struct req *r = arg;
    size_t n = size * nitems;
    static const char name[] = "content-range:";
    unsigned long long a;
    char line[128];

    if (n > sizeof(name) - 1 && n < sizeof(line) && !strncasecmp(buf, name, sizeof(name) - 1)) {
        memcpy(line, buf, n);
        line[n] = 0;
        if (sscanf(line + sizeof(name) - 1, " bytes %llu-", &a) == 1) {
            r->have_crange = 1;
            r->crange_start = a;
        }
    }
    return n;
}

static int setup(struct s3_store *d, struct req *r, struct upload *up, struct curl_slist **hdrs)
{
    char h[2048], sha[65];
    CURL *c = d->curl;
    struct curl_slist *l = NULL, *t;

    curl_easy_reset(c); /* keeps the connection cache: keep-alive survives */
    if (!strcmp(r->method, "PUT"))
        sha256_hex(r->body, r->bodylen, sha);
    else
        memcpy(sha, EMPTY_SHA256, sizeof(sha));
    snprintf(h, sizeof(h), "x-amz-content-sha256: %s", sha);
    t = curl_slist_append(l, h);
    if (!t)
        goto nomem;
    l = t;
    if (d->token) {
        /* snprintf into a stack buffer we wipe below: the token is a secret. */
        int n = snprintf(h, sizeof(h), "x-amz-security-token: %s", d->token);
        if (n < 0 || (size_t)n >= sizeof(h))
            goto nomem;
        t = curl_slist_append(l, h);
        explicit_bzero(h, sizeof(h));
        if (!t)
            goto nomem;
        l = t;
    }
    if (r->off || r->len) {
        if (r->len)
            snprintf(h, sizeof(h), "Range: bytes=%llu-%llu", (unsigned long long)r->off,
                     (unsigned long long)(r->off + r->len - 1));
        else
            snprintf(h, sizeof(h), "Range: bytes=%llu-", (unsigned long long)r->off);
        if (!(t = curl_slist_append(l, h)))
            goto nomem;
        l = t;
    }
    if (r->if_none_match) {
        if (!(t = curl_slist_append(l, "If-None-Match: *")))
            goto nomem;
        l = t;
    }
    /* No "Expect: 100-continue" round trip before each PUT. */
    if (!(t = curl_slist_append(l, "Expect:")))
        goto nomem;
    l = t;
    *hdrs = l;

    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)d->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(d->timeout_ms < 10000 ? d->timeout_ms : 10000));
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (d->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, d->ca_file);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, d->sigv4);
    curl_easy_setopt(c, CURLOPT_USERNAME, d->access_key);
    curl_easy_setopt(c, CURLOPT_PASSWORD, d->secret_key);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (!strcmp(r->method, "PUT")) {
        *up = (struct upload){r->body, r->bodylen, 0};
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, up);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, up);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->bodylen);
    } else if (!strcmp(r->method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(r->method, "DELETE")) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    return 0;
nomem:
    curl_slist_free_all(l);
    return -ENOMEM;
}

static const char *hint(long status)
{
    switch (status) {
    case 301:
    case 307:
        return " (wrong region or endpoint?)";
    case 403:
        return " (check the credentials and the bucket policy)";
    default:
        return "";
    }
}

/* HEAD responses have no body to take a code from. */
static const char *reason(long status)
{
    return status == 404   ? "NotFound"
           : status == 403 ? "Forbidden"
           : status == 400 ? "BadRequest"
           : status >= 500 ? "ServerError"
                           : "error";
}

static int status_errno(long status)
{
    if (status == 404)
        return -ENOENT;
    if (status == 403 || status == 401)
        return -EACCES;
    if (status >= 500 || status == 429)
        return -EIO;
    return -EINVAL;
}

/* Runs @r with retries; 0 on a 2xx (or 416 for a ranged GET), else a
 * negative errno with s->err set. The caller frees r->resp.b.p. */
static int perform(struct s3_store *d, struct req *r)
{
    unsigned attempts = 0;
    char code[64];

    for (;;) {
        struct curl_slist *hdrs = NULL;
        struct upload up;
        CURLcode cc;
        int rc;

        free(r->resp.b.p);
        r->resp = (struct body){.max = r->max_resp};
        r->status = 0;
        r->have_crange = 0;
        d->curl_err[0] = 0;
        rc = setup(d, r, &up, &hdrs);
        if (rc)
            return store_fail(&d->s, rc, "s3 %s %s: out of memory", r->method, r->key);
        cc = curl_easy_perform(d->curl);
        curl_slist_free_all(hdrs);
        attempts++;
        curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(d->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->clen);

        if (cc == CURLE_OK && r->status >= 200 && r->status < 300)
            return 0;
        if (cc == CURLE_OK && r->status == 416 && (r->off || r->len))
            return 0;
        code[0] = 0;
        if (cc == CURLE_OK)
            s3_error_code(r->resp.b.s, r->resp.b.len, code, sizeof(code));
        int retry = cc != CURLE_OK ? curl_retriable(cc)
                                   : r->status >= 500 || r->status == 429 ||
                                         (r->status == 400 && !strcmp(code, "RequestTimeout"));
        if (r->if_none_match && cc == CURLE_OK && (r->status == 412 || r->status == 409)) {
            r->retried = attempts > 1;
            return -EEXIST; /* an answer, not a failure: no error counted */
        }
        if (retry && attempts <= d->retries) {
            STORE_STAT_ADD(&d->s, retries, 1);
            backoff(d, attempts - 1);
            continue;
        }
        if (cc == CURLE_WRITE_ERROR && r->resp.overflow)
            return store_fail(&d->s, -EFBIG, "s3 %s %s: response larger than %zu bytes", r->method,
                              r->key, r->max_resp);
        if (cc == CURLE_OPERATION_TIMEDOUT)
            return store_fail(&d->s, -ETIMEDOUT, "s3 %s %s: timed out after %u ms (%u attempts)",
                              r->method, r->key, d->timeout_ms, attempts);
        if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
            return store_fail(&d->s, -EIO,
                              "s3 %s %s: TLS verification failed: %s (set ca_file or "
                              "AWS_CA_BUNDLE for a private CA)",
                              r->method, r->key,
                              d->curl_err[0] ? d->curl_err : curl_easy_strerror(cc));
        if (cc != CURLE_OK)
            return store_fail(&d->s, -EIO, "s3 %s %s: %s (%u attempts)", r->method, r->key,
                              d->curl_err[0] ? d->curl_err : curl_easy_strerror(cc), attempts);
        return store_fail(&d->s, status_errno(r->status), "s3 %s %s: %ld %s%s%s", r->method, r->key,
                          r->status, code[0] ? code : reason(r->status), hint(r->status),
                          attempts > 1 ? " (after retries)" : "");
    }
}

/* base + "/" + encoded(prefix + key) into a malloc'd URL. */
static char *object_url(struct s3_store *d, const char *key)
{
    size_t n = strlen(d->prefix) + strlen(key) + 1;
    char *full = malloc(n), *enc, *url;
    int m;

    if (!full)
        return NULL;
    snprintf(full, n, "%s%s", d->prefix, key);
    enc = malloc(3 * n + 1);
    if (!enc || s3_uri_encode(full, 1, enc, 3 * n + 1) < 0) {
        free(full);
        free(enc);
        return NULL;
    }
    m = asprintf(&url, "%s/%s", d->base, enc);
    free(full);
    free(enc);
    return m < 0 ? NULL : url;
}

static int s3_get(struct store *s, const char *key, uint64_t off, uint64_t len,
                  struct store_buf *out);

static int put_common(struct store *s, const char *key, const void *data, size_t len, int excl)
{
    struct s3_store *d = ss(s);
    struct req r = {.method = "PUT",
                    .key = key,
                    .body = data,
                    .bodylen = len,
                    .max_resp = MAX_META_BODY,
                    .if_none_match = excl};
    int rc;

    if (store_key_check(key))
        return store_fail(s, -EINVAL, "s3 PUT: invalid key");
    if (!data && len)
        return store_fail(s, -EINVAL, "s3 PUT %s: no data", key);
    if (!(r.url = object_url(d, key)))
        return store_fail(s, -ENOMEM, "s3 PUT %s: out of memory", key);
    pthread_mutex_lock(&d->lock);
    rc = perform(d, &r);
    pthread_mutex_unlock(&d->lock);
    free(r.resp.b.p);
    free((char *)r.url);
    if (!rc) {
        STORE_STAT_ADD(s, puts, 1);
        STORE_STAT_ADD(s, bytes_put, len);
    }
    if (rc == -EEXIST && r.retried) {
        /* The key exists, but a lost response to our own first attempt
         * may be what created it: it is ours if it holds our bytes. */
        struct store_buf b = {0};
        if (s3_get(s, key, 0, 0, &b) == 0 && b.len == len && (!len || !memcmp(b.data, data, len)))
            rc = 0;
        free(b.data);
        if (rc)
            snprintf(s->err, sizeof(s->err), "s3 PUT %s: exists", key);
    }
    return rc;
}

static int s3_put(struct store *s, const char *key, const void *data, size_t len)
{
    return put_common(s, key, data, len, 0);
}

/* S3 answers a create-only PUT of an existing key 412 PreconditionFailed,
 * and 409 ConditionalRequestConflict while another one for the key is in
 * flight: both mean "not yours". A server that ignores the header (s3rver
 * 3, older MinIO) overwrites: docs/architecture.md says how the compactor
 * finds out before it relies on this. */
static int s3_put_new(struct store *s, const char *key, const void *data, size_t len)
{
    return put_common(s, key, data, len, 1);
}

static int s3_get(struct store *s, const char *key, uint64_t off, uint64_t len,
                  struct store_buf *out)
{
    struct s3_store *d = ss(s);
    struct req r = {.method = "GET",
                    .key = key,
                    .off = off,
                    .len = len,
                    .max_resp = len && len < MAX_OBJECT ? (size_t)len : MAX_OBJECT};
    int rc;

    out->data = NULL;
    out->len = 0;
    if (store_key_check(key))
        return store_fail(s, -EINVAL, "s3 GET: invalid key");
    if (len && off > UINT64_MAX - len)
        return store_fail(s, -EINVAL, "s3 GET %s: range overflows", key);
    if (!(r.url = object_url(d, key)))
        return store_fail(s, -ENOMEM, "s3 GET %s: out of memory", key);
    pthread_mutex_lock(&d->lock);
    /* A server that ignores Range sends the whole object: allow for it. */
    if (off || len)
        r.max_resp = MAX_OBJECT;
    rc = perform(d, &r);
    pthread_mutex_unlock(&d->lock);
    free((char *)r.url);
    if (rc) {
        free(r.resp.b.p);
        return rc;
    }
    if (r.status == 416) {
        r.resp.b.len = 0; /* the range starts past the end: clipped to nothing */
    } else if ((off || len) && (r.status == 200 || (r.have_crange && r.crange_start <= off))) {
        /* The whole object (200), or a range starting at or before ours. */
        uint64_t skip = r.status == 200 ? off : off - r.crange_start;
        size_t start = skip < r.resp.b.len ? (size_t)skip : r.resp.b.len;
        size_t n = r.resp.b.len - start;
        if (len && len < n)
            n = (size_t)len;
        memmove(r.resp.b.p, r.resp.b.p + start, n);
        r.resp.b.len = n;
    } else if (len && r.resp.b.len > len) {
        free(r.resp.b.p);
        return store_fail(s, -EPROTO, "s3 GET %s: server sent more than the range asked", key);
    }
    if (!r.resp.b.p && !(r.resp.b.p = malloc(1)))
        return store_fail(s, -ENOMEM, "s3 GET %s: out of memory", key);
    out->data = r.resp.b.p;
    out->len = r.resp.b.len;
    STORE_STAT_ADD(s, gets, 1);
    STORE_STAT_ADD(s, bytes_got, out->len);
    return 0;
}

static int s3_head(struct store *s, const char *key, uint64_t *size)
{
    struct s3_store *d = ss(s);
    struct req r = {.method = "HEAD", .key = key, .max_resp = MAX_META_BODY};
    int rc;

    if (store_key_check(key))
        return store_fail(s, -EINVAL, "s3 HEAD: invalid key");
    if (!(r.url = object_url(d, key)))
        return store_fail(s, -ENOMEM, "s3 HEAD %s: out of memory", key);
    pthread_mutex_lock(&d->lock);
    rc = perform(d, &r);
    pthread_mutex_unlock(&d->lock);
    free(r.resp.b.p);
    free((char *)r.url);
    if (rc == -ENOENT)
        STORE_STAT_ADD(s, errors, (uint64_t)-1); /* an answer, not a failure */
    if (rc)
        return rc;
    if (r.clen < 0)
        return store_fail(s, -EPROTO, "s3 HEAD %s: no Content-Length in the response", key);
    *size = (uint64_t)r.clen;
    STORE_STAT_ADD(s, gets, 1);
    return 0;
}

static int s3_list(struct store *s, const char *prefix, struct store_list *out)
{
    struct s3_store *d = ss(s);
    char *token = NULL, *full = NULL, *eprefix = NULL, *etoken = NULL, page[32] = "";
    size_t cap = 0, plen = strlen(d->prefix);
    int rc = 0, truncated = 1;

    memset(out, 0, sizeof(*out));
    if (!prefix)
        prefix = "";
    if (store_prefix_check(prefix))
        return store_fail(s, -EINVAL, "s3 LIST: invalid prefix");
    if (asprintf(&full, "%s%s", d->prefix, prefix) < 0)
        return store_fail(s, -ENOMEM, "s3 LIST: out of memory");
    eprefix = malloc(3 * strlen(full) + 1);
    if (!eprefix || s3_uri_encode(full, 0, eprefix, 3 * strlen(full) + 1) < 0) {
        rc = store_fail(s, -ENOMEM, "s3 LIST: out of memory");
        goto out;
    }
    if (d->list_page)
        snprintf(page, sizeof(page), "&max-keys=%u", d->list_page);
    pthread_mutex_lock(&d->lock);
    for (unsigned pages = 0; truncated; pages++) {
        struct req r = {.method = "GET", .key = prefix, .max_resp = MAX_META_BODY};
        char *url = NULL;
        size_t before = out->n;

        if (pages == MAX_LIST_PAGES) {
            rc = store_fail(s, -EPROTO, "s3 LIST %s: too many pages", prefix);
            break;
        }
        /* Parameters in canonical (sorted) order: curl signs the query as is. */
        if (asprintf(&url, "%s%s?%s%s%slist-type=2%s&prefix=%s", d->base,
                     strchr(d->base + 8, '/') ? "" : "/", token ? "continuation-token=" : "",
                     token ? etoken : "", token ? "&" : "", page, eprefix) < 0) {
            rc = store_fail(s, -ENOMEM, "s3 LIST: out of memory");
            break;
        }
        r.url = url;
        rc = perform(d, &r);
        free(url);
        if (!rc) {
            char *next = NULL;

            rc = s3_list_parse(r.resp.b.s, r.resp.b.len, out, &cap, &truncated, &next);
            if (rc)
                rc = store_fail(s, rc, "s3 LIST %s: cannot parse the server's response", prefix);
            else if (truncated && (!next || (token && !strcmp(next, token)) || out->n == before)) {
                /* A server that says "more" but gives no way to get it, or
                 * the same page again, would loop forever. */
                rc = store_fail(s, -EPROTO, "s3 LIST %s: truncated list without a new token",
                                prefix);
            }
            free(token);
            token = next;
            free(etoken);
            etoken = NULL;
            if (!rc && token) {
                size_t n = 3 * strlen(token) + 1;
                if (!(etoken = malloc(n)) || s3_uri_encode(token, 0, etoken, n) < 0)
                    rc = store_fail(s, -ENOMEM, "s3 LIST: out of memory");
            }
        }
        free(r.resp.b.p);
        if (rc)
            break;
    }
    pthread_mutex_unlock(&d->lock);
    if (!rc) {
        /* Strip the store's own prefix; drop what is not under it. */
        size_t o = 0;
        for (size_t i = 0; i < out->n; i++) {
            char *k = out->keys[i];
            if (strncmp(k, d->prefix, plen) || !k[plen]) {
                free(k);
                continue;
            }
            memmove(k, k + plen, strlen(k + plen) + 1);
            out->keys[o] = k;
            out->sizes[o++] = out->sizes[i];
        }
        out->n = o;
        store_list_sort(out);
        STORE_STAT_ADD(s, lists, 1);
    } else {
        store_list_free(out);
    }
out:
    free(token);
    free(etoken);
    free(eprefix);
    free(full);
    return rc;
}

static int s3_del(struct store *s, const char *key)
{
    struct s3_store *d = ss(s);
    struct req r = {.method = "DELETE", .key = key, .max_resp = MAX_META_BODY};
    int rc;

    if (store_key_check(key))
        return store_fail(s, -EINVAL, "s3 DELETE: invalid key");
    if (!(r.url = object_url(d, key)))
        return store_fail(s, -ENOMEM, "s3 DELETE %s: out of memory", key);
    pthread_mutex_lock(&d->lock);
    rc = perform(d, &r);
    pthread_mutex_unlock(&d->lock);
    free(r.resp.b.p);
    free((char *)r.url);
    if (rc == -ENOENT) {
        STORE_STAT_ADD(s, errors, (uint64_t)-1);
        rc = 0; /* deleting a missing key succeeds */
    }
    if (!rc)
        STORE_STAT_ADD(s, deletes, 1);
    return rc;
}

static void wipe_free(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

static void s3_free(struct store *s)
{
    struct s3_store *d = ss(s);

    if (d->curl)
        curl_easy_cleanup(d->curl);
    pthread_mutex_destroy(&d->lock);
    free(d->base);
    free(d->prefix);
    free(d->ca_file);
    wipe_free(d->access_key);
    wipe_free(d->secret_key);
    wipe_free(d->token);
    free(d);
}

static const struct store_ops s3_ops = {
    .put = s3_put,
    .put_new = s3_put_new,
    .get = s3_get,
    .head = s3_head,
    .list = s3_list,
    .del = s3_del,
    .free = s3_free,
};

/* ---- open -------------------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* opts, else the environment, else the shared credentials file. */
static int resolve_creds(const struct store_opts *o, struct s3_creds *c, char *err, size_t errlen)
{
    const char *file = env("AWS_SHARED_CREDENTIALS_FILE");
    const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
    char path[4096], *text = NULL;
    size_t len = 0;
    int rc;

    memset(c, 0, sizeof(*c));
    if (o->access_key && *o->access_key && o->secret_key && *o->secret_key) {
        c->access_key = strdup(o->access_key);
        c->secret_key = strdup(o->secret_key);
        c->session_token = o->session_token && *o->session_token ? strdup(o->session_token) : NULL;
    } else if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
        c->access_key = strdup(env("AWS_ACCESS_KEY_ID"));
        c->secret_key = strdup(env("AWS_SECRET_ACCESS_KEY"));
        c->session_token = env("AWS_SESSION_TOKEN") ? strdup(env("AWS_SESSION_TOKEN")) : NULL;
    } else {
        if (!file) {
            const char *home = env("HOME");
            struct passwd *pw;
            if (!home && (pw = getpwuid(getuid())))
                home = pw->pw_dir;
            if (!home) {
                snprintf(err, errlen,
                         "s3: no credentials: set AWS_ACCESS_KEY_ID and "
                         "AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE");
                return -ENOENT;
            }
            snprintf(path, sizeof(path), "%s/.aws/credentials", home);
            file = path;
        }
        rc = read_file(file, CREDS_FILE_MAX, &text, &len);
        if (rc) {
            snprintf(err, errlen,
                     "s3: no credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                     "unset and %s unreadable (%s)",
                     file, strerror(-rc));
            return -ENOENT;
        }
        rc = s3_creds_parse(text, len, profile, c);
        explicit_bzero(text, len);
        free(text);
        if (rc) {
            snprintf(err, errlen,
                     "s3: no credentials: profile [%s] in %s lacks "
                     "aws_access_key_id/aws_secret_access_key",
                     profile, file);
            return rc;
        }
        return 0;
    }
    if (!c->access_key || !c->secret_key) {
        s3_creds_clear(c);
        snprintf(err, errlen, "s3: out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int host_ok(const char *h, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && !strchr(".-:[]_", h[i]))
            return 0; /* no userinfo ('@'), spaces, or anything odd */
    return 1;
}

static int dns_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (const char *p = b; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return 0; /* dots break TLS wildcard names: path-style then */
    return b[0] != '-' && b[n - 1] != '-';
}

struct store *store_s3_open(const struct store_opts *o, const char *bp, char *err, size_t errlen)
{
    const char *slash = strchr(bp, '/');
    const char *env_region = env("AWS_REGION"), *env_default = env("AWS_DEFAULT_REGION");
    const char *env_ep_s3 = env("AWS_ENDPOINT_URL_S3");
    const char *region = o->region && *o->region ? o->region
                         : env_region            ? env_region
                         : env_default           ? env_default
                                                 : "us-east-1";
    const char *endpoint = o->endpoint && *o->endpoint ? o->endpoint
                           : env_ep_s3                 ? env_ep_s3
                                                       : env("AWS_ENDPOINT_URL");
    const char *ca = o->ca_file && *o->ca_file ? o->ca_file : env("AWS_CA_BUNDLE");
    char *bucket = NULL, *aws_ep = NULL;
    struct s3_creds cr = {0};
    struct s3_store *d = NULL;
    size_t blen = slash ? (size_t)(slash - bp) : strlen(bp);
    int path_style;

    bucket = strndup(bp, blen);
    if (!bucket)
        goto nomem;
    for (const char *p = bucket; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_", *p)) {
            snprintf(err, errlen, "s3: invalid bucket name in the URL");
            goto fail;
        }
    if (!*bucket || blen > 255) {
        snprintf(err, errlen, "s3: the URL must be s3://BUCKET[/PREFIX]");
        goto fail;
    }
    for (const char *p = region; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-') {
            snprintf(err, errlen, "s3: invalid region '%.32s'", region);
            goto fail;
        }
    if (pthread_once(&curl_once, curl_init) || curl_init_rc != CURLE_OK) {
        snprintf(err, errlen, "s3: curl_global_init failed");
        goto fail;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        goto nomem;
    pthread_mutex_init(&d->lock, NULL);
    d->s.ops = &s3_ops;
    d->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    d->retries = o->retries ? o->retries : DEFAULT_RETRIES;
    d->list_page = o->list_page;
    if (getrandom(&d->rng, sizeof(d->rng), GRND_NONBLOCK) != sizeof(d->rng))
        d->rng = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    d->rng |= 1;
    snprintf(d->sigv4, sizeof(d->sigv4), "aws:amz:%s:s3", region);

    /* Prefix: "a/b" -> "a/b/", checked like a key. */
    {
        const char *p = slash ? slash + 1 : "";
        size_t n = strlen(p);
        while (n && p[n - 1] == '/')
            n--;
        if (!(d->prefix = malloc(n + 2)))
            goto nomem;
        memcpy(d->prefix, p, n);
        d->prefix[n] = 0;
        if (n && store_key_check(d->prefix)) {
            snprintf(err, errlen, "s3: invalid key prefix in the URL");
            goto fail;
        }
        if (n)
            d->prefix[n] = '/', d->prefix[n + 1] = 0;
    }

    if (!endpoint) {
        if (asprintf(&aws_ep, "https://s3.%s.amazonaws.com", region) < 0)
            goto nomem;
        endpoint = aws_ep;
    }
    /* endpoint was set just above when it was NULL */
    // cppcheck-suppress nullPointerRedundantCheck
    const char *scheme_end = strstr(endpoint, "://");
    if (!scheme_end || (strncmp(endpoint, "http://", 7) && strncmp(endpoint, "https://", 8))) {
        snprintf(err, errlen, "s3: the endpoint must start with http:// or https://");
        goto fail;
    }
    const char *host = scheme_end + 3;
    const char *path = strchr(host, '/');
    size_t hlen = path ? (size_t)(path - host) : strlen(host);
    size_t plen = path ? strlen(path) : 0;
    while (plen && path[plen - 1] == '/')
        plen--;
    if (!host_ok(host, hlen)) {
        snprintf(err, errlen, "s3: invalid host in the endpoint (no user:password@ please)");
        goto fail;
    }
    path_style = o->path_style;
    if (path_style < 0 || path_style > 1)
        path_style = aws_ep ? !dns_bucket(bucket) : 1;
    if (!path_style && !dns_bucket(bucket)) {
        snprintf(err, errlen, "s3: bucket '%s' is not a DNS name: use path-style", bucket);
        goto fail;
    }
    int m = path_style ? asprintf(&d->base, "%.*s%.*s%.*s/%s", (int)(host - endpoint), endpoint,
                                  (int)hlen, host, (int)plen, path ? path : "", bucket)
                       : asprintf(&d->base, "%.*s%s.%.*s%.*s", (int)(host - endpoint), endpoint,
                                  bucket, (int)hlen, host, (int)plen, path ? path : "");
    if (m < 0) {
        d->base = NULL;
        goto nomem;
    }
    if (resolve_creds(o, &cr, err, errlen))
        goto fail;
    d->access_key = cr.access_key;
    d->secret_key = cr.secret_key;
    d->token = cr.session_token;
    if (ca && !(d->ca_file = strdup(ca)))
        goto nomem;
    if (!(d->curl = curl_easy_init())) {
        snprintf(err, errlen, "s3: curl_easy_init failed");
        goto fail;
    }
    free(bucket);
    free(aws_ep);
    return &d->s;
nomem:
    snprintf(err, errlen, "s3: out of memory");
fail:
    free(bucket);
    free(aws_ep);
    if (d)
        s3_free(&d->s);
    return NULL;
}
