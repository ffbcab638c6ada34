/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for stoke-query's request validation (query/serve/http.c,
 * query/serve/pyroscope_api.c, plan_range_check): the first byte picks an
 * endpoint, the rest is its query string ("k=v&k=v", GET) or its body
 * (POST: the peer query's JSON, or a Connect JSON request). The engine runs
 * over an empty store, so whatever passes validation is planned for real:
 * an accepted range must be bounded (-timeout catches a planner that loops
 * for ever, as overflowing ranges once made it), every answer has a status
 * and a 4xx names its problem. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query/engine/engine.h"
#include "query/serve/http.h"
#include "store/store.h"

static struct http_server *srv;
static char dir[64] = "/tmp/stoke-fuzz-query-XXXXXX";

static void remove_dir(void)
{
    rmdir(dir); /* empty: nothing is ever written */
}

struct kv {
    char *k[16], *v[16];
    int n;
};

static const char *kv_get(void *ctx, const char *name)
{
    struct kv *kv = ctx;
    for (int i = 0; i < kv->n; i++)
        if (strcmp(kv->k[i], name) == 0)
            return kv->v[i];
    return NULL;
}

static const char *json_header(void *ctx, const char *name)
{
    return strcmp(name, "Content-Type") == 0 ? "application/json" : NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    if (!mkdtemp(dir))
        abort();
    atexit(remove_dir);
    struct store_opts so = {.url = dir};
    struct store *st = store_open(&so, err, sizeof(err));
    struct engine_opts eo = {.store = st, .threads = 1};
    struct engine *e = st ? engine_new(&eo) : NULL;
    struct http_opts ho = {.engine = e, .tenant = "default"};
    if (!e || !(srv = http_new_unbound(&ho)))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct {
        const char *method, *path;
    } eps[] = {
        {"GET", "/api/v1/top"},
        {"GET", "/api/v1/series"},
        {"GET", "/api/v1/diff"},
        {"GET", "/api/v1/profile_types"},
        {"GET", "/api/v1/label_values"},
        {"GET", "/pyroscope/render"},
        {"POST", "/internal/v1/select"},
        {"POST", "/querier.v1.QuerierService/SelectMergeStacktraces"},
        {"POST", "/querier.v1.QuerierService/SelectSeries"},
        {"POST", "/querier.v1.QuerierService/LabelNames"},
        {"POST", "/querier.v1.QuerierService/Diff"},
    };
    struct http_response r;
    struct kv kv = {0};

    if (size < 1 || size > 4096)
        return 0;
    size_t e = data[0] % (sizeof(eps) / sizeof(eps[0]));
    char *text = strndup((const char *)data + 1, size - 1);
    if (!text)
        return 0;
    if (strcmp(eps[e].method, "GET") == 0) {
        char *save = NULL;
        for (char *t = strtok_r(text, "&", &save); t && kv.n < 16; t = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(t, '=');
            if (!eq)
                continue;
            *eq = '\0';
            kv.k[kv.n] = t;
            kv.v[kv.n++] = eq + 1;
        }
        http_route(srv, "GET", eps[e].path, kv_get, &kv, NULL, 0, &r);
    } else {
        http_route_headers(srv, "POST", eps[e].path, kv_get, json_header, &kv,
                           (const uint8_t *)text, strlen(text), &r);
    }
    if (r.status < 200 || r.status > 599)
        abort();
    if (r.status >= 400 && r.status < 500 && (!r.body || !r.len))
        abort(); /* every refusal says why */
    free(r.body);
    free(text);
    return 0;
}
