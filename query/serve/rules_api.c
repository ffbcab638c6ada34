/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rules_api — see rules_api.h.
 */
#include "query/serve/rules_api.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "pyroscope/settings.pb-c.h"
#include "query/engine/plan.h"
#include "query/engine/rule.h"
#include "query/serve/connect.h"

bool rules_api_path(const char *path)
{
    return strncmp(path, RULES_SERVICE_PREFIX, strlen(RULES_SERVICE_PREFIX)) == 0;
}

struct call {
    const struct rules_api *a;
    const char *tenant;
    enum connect_codec codec;
    struct http_response *r;
};

static void store_failed(struct call *c, const char *what)
{
    connect_error(c->r, 0, CONNECT_UNAVAILABLE, "%s: %s", what,
                  c->a->store->err[0] ? c->a->store->err : "store failed");
}

/* Reads and decodes the rule @id: 0, -ENOENT (404 in c->r), or another
 * error already answered. */
static int load_one(struct call *c, const char *id, Settings__V1__RecordingRule **m)
{
    char key[1024], err[512];
    struct store_buf b = {0};
    struct rule *r = NULL;
    int rc;

    if (rule_key(key, sizeof(key), c->tenant, id) < 0) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "id: too long");
        return -EINVAL;
    }
    rc = store_get(c->a->store, key, 0, 0, &b);
    if (rc == -ENOENT) {
        connect_error(c->r, 0, CONNECT_NOT_FOUND, "recording rule '%s' not found", id);
        return rc;
    }
    if (rc) {
        store_failed(c, key);
        return rc;
    }
    rc = rule_decode(b.data, b.len, &r, m, err, sizeof(err));
    free(b.data);
    rule_free(r);
    if (rc)
        connect_error(c->r, 0, rc == -ENOMEM ? CONNECT_RESOURCE_EXHAUSTED : CONNECT_DATA_LOSS,
                      "recording rule '%s': stored object unreadable: %s", id, err);
    return rc;
}

static bool id_ok(struct call *c, const char *id)
{
    if (id && rule_id_valid(id))
        return true;
    connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT,
                  "id: '%.64s' is not a recording rule id ([A-Za-z0-9_-]{1,64})", id ? id : "");
    return false;
}

static void m_list(struct call *c, const ProtobufCMessage *req)
{
    Settings__V1__ListRecordingRulesResponse resp =
        SETTINGS__V1__LIST_RECORDING_RULES_RESPONSE__INIT;
    Settings__V1__RecordingRule **msgs = NULL;
    struct rule **rules = NULL;
    size_t n = 0;
    unsigned bad = 0;
    int rc = rules_load_msgs(c->a->store, c->tenant, &rules, &msgs, &n, &bad, NULL, NULL);

    if (rc) {
        if (rc == -ENOMEM)
            connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
        else
            store_failed(c, "listing the recording rules");
        return;
    }
    resp.rules = msgs;
    resp.n_rules = n;
    connect_respond(c->r, c->codec, &resp.base);
    rules_free(rules, n);
    rule_msgs_free(msgs, n);
}

static void m_get(struct call *c, const ProtobufCMessage *req)
{
    const Settings__V1__GetRecordingRuleRequest *q = (const void *)req;
    Settings__V1__GetRecordingRuleResponse resp = SETTINGS__V1__GET_RECORDING_RULE_RESPONSE__INIT;
    Settings__V1__RecordingRule *m = NULL;

    if (!id_ok(c, q->id) || load_one(c, q->id, &m))
        return;
    resp.rule = m;
    connect_respond(c->r, c->codec, &resp.base);
    settings__v1__recording_rule__free_unpacked(m, NULL);
}

static void m_upsert(struct call *c, const ProtobufCMessage *req)
{
    const Settings__V1__UpsertRecordingRuleRequest *q = (const void *)req;
    Settings__V1__UpsertRecordingRuleResponse resp =
        SETTINGS__V1__UPSERT_RECORDING_RULE_RESPONSE__INIT;
    Settings__V1__RecordingRule m = SETTINGS__V1__RECORDING_RULE__INIT, *old = NULL;
    char id[65], type[512], err[512], key[1024];
    struct rule *r = NULL;
    uint8_t *buf = NULL;
    int rc;

    if (q->id && *q->id) {
        if (!id_ok(c, q->id))
            return;
        snprintf(id, sizeof(id), "%s", q->id);
    } else {
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            connect_error(c->r, 0, CONNECT_INTERNAL, "no random id: %s", strerror(errno));
            return;
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    }
    m.id = id;
    m.metric_name = q->metric_name;
    m.matchers = q->matchers;
    m.n_matchers = q->n_matchers;
    m.group_by = q->group_by;
    m.n_group_by = q->n_group_by;
    m.external_labels = q->external_labels;
    m.n_external_labels = q->n_external_labels;
    m.stacktrace_filter = q->stacktrace_filter;
    rc = rule_compile(&m, &r, err, sizeof(err));
    if (rc == 0) {
        snprintf(type, sizeof(type), "%s", r->profile_type);
        m.profile_type = type; /* as Pyroscope shows it: the __profile_type__ matcher's */
    }
    rule_free(r);
    if (rc) {
        connect_error(c->r, 0,
                      rc == -ENOMEM ? CONNECT_RESOURCE_EXHAUSTED : CONNECT_INVALID_ARGUMENT, "%s",
                      rc == -ENOMEM ? "out of memory" : err);
        return;
    }
    /* The stored generation: 0 for a new rule. */
    rc = load_one(c, id, &old);
    if (rc && rc != -ENOENT)
        return;
    if (rc == -ENOENT) {
        free(c->r->body);
        memset(c->r, 0, sizeof(*c->r));
        struct rule **all = NULL;
        size_t n = 0;
        unsigned bad = 0;
        if (rules_load(c->a->store, c->tenant, &all, &n, &bad, NULL, NULL) == 0 &&
            n + bad >= RULE_MAX_RULES) {
            rules_free(all, n);
            connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED,
                          "at most %d recording rules per tenant", RULE_MAX_RULES);
            return;
        }
        rules_free(all, n);
    }
    int64_t stored = old ? old->generation : 0;
    settings__v1__recording_rule__free_unpacked(old, NULL);
    if (q->generation && q->generation != stored) {
        connect_error(c->r, 0, CONNECT_ABORTED,
                      "generation: %" PRId64 " is not the stored %" PRId64
                      " (the rule changed since it was read; read it again)",
                      q->generation, stored);
        return;
    }
    m.generation = stored + 1;
    size_t len = settings__v1__recording_rule__get_packed_size(&m);
    if (len > RULE_MAX_OBJECT) {
        connect_error(c->r, 0, CONNECT_INVALID_ARGUMENT, "rule: %zu bytes, more than %d", len,
                      RULE_MAX_OBJECT);
        return;
    }
    if (!(buf = malloc(len ? len : 1))) {
        connect_error(c->r, 0, CONNECT_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    settings__v1__recording_rule__pack(&m, buf);
    rule_key(key, sizeof(key), c->tenant, id);
    rc = store_put(c->a->store, key, buf, len);
    free(buf);
    if (rc) {
        store_failed(c, key);
        return;
    }
    resp.rule = &m;
    connect_respond(c->r, c->codec, &resp.base);
}

static void m_delete(struct call *c, const ProtobufCMessage *req)
{
    const Settings__V1__DeleteRecordingRuleRequest *q = (const void *)req;
    Settings__V1__DeleteRecordingRuleResponse resp =
        SETTINGS__V1__DELETE_RECORDING_RULE_RESPONSE__INIT;
    char key[1024];
    uint64_t size;

    if (!id_ok(c, q->id))
        return;
    rule_key(key, sizeof(key), c->tenant, q->id);
    int rc = store_head(c->a->store, key, &size);
    if (rc == -ENOENT) {
        connect_error(c->r, 0, CONNECT_NOT_FOUND, "recording rule '%s' not found", q->id);
        return;
    }
    if (rc || store_del(c->a->store, key) != 0) {
        store_failed(c, key);
        return;
    }
    connect_respond(c->r, c->codec, &resp.base);
}

static const struct method {
    const char *name;
    const ProtobufCMessageDescriptor *req;
    void (*fn)(struct call *c, const ProtobufCMessage *req);
} methods[] = {
    {"ListRecordingRules", &settings__v1__list_recording_rules_request__descriptor, m_list},
    {"GetRecordingRule", &settings__v1__get_recording_rule_request__descriptor, m_get},
    {"UpsertRecordingRule", &settings__v1__upsert_recording_rule_request__descriptor, m_upsert},
    {"DeleteRecordingRule", &settings__v1__delete_recording_rule_request__descriptor, m_delete},
};

void rules_api_route(const struct rules_api *a, const char *method, const char *path,
                     http_param_fn header, void *ctx, const uint8_t *body, size_t len,
                     struct http_response *out)
{
    struct call c = {.a = a, .tenant = a->tenant ? a->tenant : "default", .r = out};
    const struct method *m = NULL;
    ProtobufCMessage *req = NULL;

    memset(out, 0, sizeof(*out));
    if (connect_tenant(header, ctx, &c.tenant, out))
        return;
    const char *name = path + strlen(RULES_SERVICE_PREFIX);
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(name, methods[i].name) == 0)
            m = &methods[i];
    if (!m) {
        connect_error(out, 404, CONNECT_UNIMPLEMENTED, "%.200s: no such procedure", path);
        return;
    }
    if (connect_unary(method, path, header, ctx, m->req, body, len, &c.codec, &req, out))
        return;
    m->fn(&c, req);
    protobuf_c_message_free_unpacked(req, NULL);
}

/* ---- /metrics ------------------------------------------------------------ */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char tenant[128];
    int64_t at;
    char *text;
    size_t len;
} cache;

void rules_api_metrics(struct store *st, const char *tenant, struct wbuf *b)
{
    rules_api_metrics_at(st, tenant, b, (int64_t)time(NULL));
}

void rules_api_metrics_at(struct store *st, const char *tenant, struct wbuf *b, int64_t now)
{
    char key[512];

    if (!st)
        return;
    if (!tenant)
        tenant = "default";
    pthread_mutex_lock(&cache_lock);
    if (strcmp(cache.tenant, tenant) != 0 || now - cache.at >= RULES_METRICS_TTL_S ||
        now < cache.at) {
        struct store_buf sb = {0};
        uint64_t size = 0;
        int rc = rule_recorded_key(key, sizeof(key), tenant) < 0 ? -ENAMETOOLONG
                                                                 : store_head(st, key, &size);
        if (rc == 0 && size > RULE_MAX_RECORDED)
            rc = -EFBIG;
        if (rc == 0)
            rc = store_get(st, key, 0, 0, &sb);
        /* A store that fails keeps the last text shown (same tenant) until
         * the next try; only a missing object clears it. */
        if (rc == 0 || rc == -ENOENT || rc == -EFBIG || strcmp(cache.tenant, tenant) != 0) {
            free(cache.text);
            cache.text = rc == 0 ? (char *)sb.data : NULL;
            cache.len = rc == 0 ? sb.len : 0;
        }
        snprintf(cache.tenant, sizeof(cache.tenant), "%s", tenant);
        cache.at = now;
    }
    if (cache.len) {
        wb_bytes(b, cache.text, cache.len);
        if (cache.text[cache.len - 1] != '\n')
            wb_bytes(b, "\n", 1);
    }
    pthread_mutex_unlock(&cache_lock);
}
