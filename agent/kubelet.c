/* SPDX-License-Identifier: Apache-2.0 */
#include "agent/kubelet.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/file.h"
#include "common/log.h"

/* ---- the pod list --------------------------------------------------------- */

/* Labels every pod of a Deployment or DaemonSet has with a value per
 * revision: series that change on each rollout and say nothing. */
static const char *const skip_labels[] = {
    "pod-template-hash", "controller-revision-hash", "pod-template-generation",
    "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index"};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A string member no longer than KUBE_MAX_VALUE, else NULL. */
static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;

    return s && *s && strlen(s) <= KUBE_MAX_VALUE ? s : NULL;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "containerd://<64 hex>", "cri-o://…", "docker://…" → the 64 hex digits,
 * lower-case. False for anything else (a container not started has none). */
static bool container_id_of(const char *s, char out[65])
{
    const char *p = s ? strstr(s, "://") : NULL;

    if (!p || strlen(p + 3) != 64)
        return false;
    p += 3;
    for (int i = 0; i < 64; i++) {
        if (!is_hex(p[i]))
            return false;
        out[i] = (char)(p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 'a' : p[i]);
    }
    out[64] = '\0';
    return true;
}

void kube_pods_free(struct kube_pods *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->npods; i++) {
        struct kube_pod *d = &p->pods[i];
        free(d->uid);
        free(d->name);
        free(d->ns);
        free(d->app);
        for (size_t j = 0; j < d->nlabels; j++) {
            free(d->label_names[j]);
            free(d->label_values[j]);
        }
    }
    for (size_t i = 0; i < p->nctrs; i++)
        free(p->ctrs[i].name);
    free(p->pods);
    free(p->ctrs);
    free(p);
}

/* "pod_label_" + @name with every byte outside [A-Za-z0-9_] made '_'. */
static char *label_name_of(const char *name)
{
    size_t n = strlen(name);
    char *s = malloc(sizeof("pod_label_") + n);

    if (!s)
        return NULL;
    memcpy(s, "pod_label_", sizeof("pod_label_") - 1);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        s[sizeof("pod_label_") - 1 + i] = ok ? c : '_';
    }
    s[sizeof("pod_label_") - 1 + n] = '\0';
    return s;
}

static int add_pod(struct kube_pods *p, const cJSON *item, size_t *ctr_cap)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(item, "metadata");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(item, "status");
    const char *uid = str_of(md, "uid"), *name = str_of(md, "name"), *ns = str_of(md, "namespace");
    static const char *const lists[] = {"containerStatuses", "initContainerStatuses",
                                        "ephemeralContainerStatuses"};

    if (!cJSON_IsObject(md) || !uid || !name || !ns)
        return 0; /* not a pod we can name */
    struct kube_pod *d = &p->pods[p->npods];
    memset(d, 0, sizeof(*d));
    d->uid = strdup(uid);
    d->name = strdup(name);
    d->ns = strdup(ns);
    p->npods++; /* from here on kube_pods_free frees it */
    if (!d->uid || !d->name || !d->ns)
        return -ENOMEM;

    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
    const char *app = str_of(labels, "app.kubernetes.io/name");
    if (!app)
        app = str_of(labels, "app");
    if (app && !(d->app = strdup(app)))
        return -ENOMEM;
    const cJSON *l, *lo = cJSON_IsObject(labels) ? labels : NULL;
    cJSON_ArrayForEach(l, lo)
    {
        bool skip = !l->string || !cJSON_IsString(l) || !l->string[0] || !l->valuestring[0] ||
                    strlen(l->string) > KUBE_MAX_VALUE || strlen(l->valuestring) > KUBE_MAX_VALUE;
        for (size_t i = 0; !skip && i < sizeof(skip_labels) / sizeof(skip_labels[0]); i++)
            skip = strcmp(l->string, skip_labels[i]) == 0;
        if (skip || d->nlabels == KUBE_MAX_POD_LABELS)
            continue;
        d->label_names[d->nlabels] = label_name_of(l->string);
        d->label_values[d->nlabels] = strdup(l->valuestring);
        d->nlabels++;
        if (!d->label_names[d->nlabels - 1] || !d->label_values[d->nlabels - 1])
            return -ENOMEM;
    }

    size_t taken = 0;
    for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(status, lists[k]), *c;
        const cJSON *ca = cJSON_IsArray(cs) ? cs : NULL;
        cJSON_ArrayForEach(c, ca)
        {
            char id[65];
            if (taken == KUBE_MAX_CONTAINERS || !container_id_of(str_of(c, "containerID"), id))
                continue;
            if (p->nctrs == *ctr_cap) {
                size_t ncap = *ctr_cap ? *ctr_cap * 2 : 64;
                struct kube_container *nc = realloc(p->ctrs, ncap * sizeof(*nc));
                if (!nc)
                    return -ENOMEM;
                p->ctrs = nc;
                *ctr_cap = ncap;
            }
            struct kube_container *kc = &p->ctrs[p->nctrs];
            memcpy(kc->id, id, sizeof(id));
            kc->pod = (uint32_t)(p->npods - 1);
            const char *cn = str_of(c, "name");
            kc->name = cn ? strdup(cn) : NULL;
            if (cn && !kc->name)
                return -ENOMEM;
            p->nctrs++;
            taken++;
        }
    }
    return 0;
}

int kube_pods_parse(const char *buf, size_t len, struct kube_pods **out, char *err, size_t errlen)
{
    cJSON *root = NULL;
    struct kube_pods *p = NULL;
    size_t ctr_cap = 0;
    int rc = -EINVAL;

    *out = NULL;
    root = cJSON_ParseWithLength(buf, len);
    if (!root) {
        set_err(err, errlen, "not JSON");
        return -EINVAL;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
    if (!cJSON_IsObject(root) || !cJSON_IsString(kind) || strcmp(kind->valuestring, "PodList") ||
        !cJSON_IsArray(items)) {
        set_err(err, errlen, "not a PodList (kind \"PodList\" with items)");
        goto out;
    }
    int n = cJSON_GetArraySize(items);
    if (n > KUBE_MAX_PODS) {
        set_err(err, errlen, "%d pods: more than %d", n, KUBE_MAX_PODS);
        goto out;
    }
    rc = -ENOMEM;
    set_err(err, errlen, "out of memory");
    if (!(p = calloc(1, sizeof(*p))) || !(p->pods = calloc(n ? (size_t)n : 1, sizeof(*p->pods))))
        goto out;
    const cJSON *item;
    cJSON_ArrayForEach(item, items)
    {
        if (cJSON_IsObject(item) && add_pod(p, item, &ctr_cap) < 0)
            goto out;
    }
    rc = 0;
    *out = p;
    p = NULL;
    if (err && errlen)
        err[0] = '\0';
out:
    kube_pods_free(p);
    cJSON_Delete(root);
    return rc;
}

const struct kube_pod *kube_pods_find(const struct kube_pods *p, const char *cid,
                                      const char *pod_uid, const char **ctr_name)
{
    *ctr_name = NULL;
    if (!p)
        return NULL;
    if (cid)
        for (size_t i = 0; i < p->nctrs; i++)
            if (strcmp(p->ctrs[i].id, cid) == 0) {
                *ctr_name = p->ctrs[i].name;
                return &p->pods[p->ctrs[i].pod];
            }
    if (pod_uid)
        for (size_t i = 0; i < p->npods; i++)
            if (strcmp(p->pods[i].uid, pod_uid) == 0)
                return &p->pods[i];
    return NULL;
}

int kube_pod_labels(const struct kube_pod *pod, const char *ctr_name, struct label_set *ls,
                    char **service)
{
    int ret = 0;

    *service = NULL;
    ret |= label_set_put(ls, "namespace", pod->ns);
    ret |= label_set_put(ls, "pod", pod->name);
    if (ctr_name)
        ret |= label_set_put(ls, "container", ctr_name);
    for (size_t i = 0; i < pod->nlabels; i++)
        ret |= label_set_put(ls, pod->label_names[i], pod->label_values[i]);
    if (ret)
        return -ENOMEM;
    if (pod->app) {
        size_t n = strlen(pod->ns) + strlen(pod->app) + 2;
        if (!(*service = malloc(n)))
            return -ENOMEM;
        snprintf(*service, n, "%s/%s", pod->ns, pod->app);
    }
    return 0;
}

/* ---- the client ------------------------------------------------------------ */

struct kubelet {
    struct kubelet_opts o;
    char *url, *token_file, *ca_file;
    pthread_t tid;
    bool started;
    atomic_bool stopping;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* under lock */
    struct kube_pods *pods;
    struct kubelet_stats st;
    char last_err[256];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_rc;

static void curl_init(void)
{
    curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct kubelet *kubelet_new(const struct kubelet_opts *o, int *err)
{
    struct kubelet *k;

    pthread_once(&curl_once, curl_init);
    *err = -ENOMEM;
    if (curl_rc != CURLE_OK)
        return NULL;
    *err = -EINVAL;
    if (!o->url || (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)))
        return NULL;
    *err = -ENOMEM;
    if (!(k = calloc(1, sizeof(*k))))
        return NULL;
    k->o = *o;
    size_t ul = strlen(o->url);
    while (ul && o->url[ul - 1] == '/')
        ul--;
    if ((k->url = malloc(ul + sizeof("/pods"))))
        snprintf(k->url, ul + sizeof("/pods"), "%.*s/pods", (int)ul, o->url);
    k->token_file = o->token_file ? strdup(o->token_file) : NULL;
    k->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
    if (!k->url || (o->token_file && !k->token_file) || (o->ca_file && !k->ca_file)) {
        free(k->url);
        free(k->token_file);
        free(k->ca_file);
        free(k);
        return NULL;
    }
    if (!k->o.refresh_s)
        k->o.refresh_s = 15;
    if (!k->o.timeout_s)
        k->o.timeout_s = 10;
    if (!k->o.max_bytes)
        k->o.max_bytes = 16u << 20;
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->wake, NULL);
    *err = 0;
    return k;
}

void kubelet_set_pods(struct kubelet *k, struct kube_pods *p)
{
    pthread_mutex_lock(&k->lock);
    kube_pods_free(k->pods);
    k->pods = p;
    k->st.pods = p ? p->npods : 0;
    k->st.containers = p ? p->nctrs : 0;
    k->st.generation++;
    pthread_mutex_unlock(&k->lock);
}

uint64_t kubelet_generation(struct kubelet *k)
{
    pthread_mutex_lock(&k->lock);
    uint64_t g = k->st.generation;
    pthread_mutex_unlock(&k->lock);
    return g;
}

void kubelet_get_stats(struct kubelet *k, struct kubelet_stats *out)
{
    pthread_mutex_lock(&k->lock);
    *out = k->st;
    pthread_mutex_unlock(&k->lock);
}

int kubelet_lookup(struct kubelet *k, const char *cid, const char *pod_uid, struct label_set *ls,
                   char **service)
{
    const char *cn;
    int rc = 0;

    *service = NULL;
    pthread_mutex_lock(&k->lock);
    const struct kube_pod *pod = kube_pods_find(k->pods, cid, pod_uid, &cn);
    if (pod)
        rc = kube_pod_labels(pod, cn, ls, service) < 0 ? -ENOMEM : 1;
    pthread_mutex_unlock(&k->lock);
    return rc;
}

struct body {
    struct wbuf b;
    size_t max;
    bool too_large;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct body *m = ud;
    size_t n = size * nmemb;

    if (m->b.len + n > m->max) {
        m->too_large = true;
        return 0;
    }
    wb_bytes(&m->b, ptr, n);
    return m->b.err ? 0 : n;
}

/* Aborts a transfer once the agent stops. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct kubelet *k = ud;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load(&k->stopping) ? 1 : 0;
}

/* Logs the first answer and each change: working <-> failing, or failing
 * another way. A kubelet failing the same way every period logs once. */
static void note(struct kubelet *k, bool ok, const char *what)
{
    pthread_mutex_lock(&k->lock);
    bool changed = k->st.fetches == 1 || ok != k->st.ok || (!ok && strcmp(k->last_err, what));
    k->st.ok = ok;
    snprintf(k->last_err, sizeof(k->last_err), "%s", ok ? "" : what);
    pthread_mutex_unlock(&k->lock);
    if (!changed)
        return;
    if (ok)
        log_info("kubelet %s: %s", k->url, what);
    else
        log_warn("kubelet %s: %s; processes get no pod labels until it answers", k->url, what);
}

int kubelet_fetch(struct kubelet *k)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL;
    struct body body = {.max = k->o.max_bytes};
    char *token = NULL, err[300];
    long status = 0;
    int rc = -EIO;

    pthread_mutex_lock(&k->lock);
    k->st.fetches++;
    pthread_mutex_unlock(&k->lock);
    if (!c) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    if (k->token_file) {
        int r = read_first_line(k->token_file, 64u << 10, &token);
        if (r) {
            snprintf(err, sizeof(err), "token file %s: %s", k->token_file, strerror(-r));
            goto out;
        }
        struct wbuf ah = {0};
        wb_printf(&ah, "Authorization: Bearer %s", token);
        hdr = ah.err ? NULL : curl_slist_append(NULL, ah.s);
        if (ah.p)
            memset(ah.p, 0, ah.len);
        wb_free(&ah);
        if (!hdr) {
            snprintf(err, sizeof(err), "out of memory");
            goto out;
        }
    }
    curl_easy_setopt(c, CURLOPT_URL, k->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)k->o.timeout_s * 1000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)k->o.max_bytes);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, k);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (k->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, k->ca_file);
    if (k->o.insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(err, sizeof(err), "%s",
                 body.too_large || cc == CURLE_FILESIZE_EXCEEDED ? "answer larger than "
                                                                   "--kubelet-max-mb"
                                                                 : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(err, sizeof(err), "HTTP %ld%s", status,
                 status == 401 || status == 403 ? " (the token's RBAC: nodes/proxy get)" : "");
        goto out;
    }
    struct kube_pods *p = NULL;
    char perr[200];
    rc = kube_pods_parse(body.b.s ? body.b.s : "", body.b.len, &p, perr, sizeof(perr));
    if (rc) {
        snprintf(err, sizeof(err), "answer is %s", rc == -ENOMEM ? "too large to hold" : perr);
        pthread_mutex_lock(&k->lock);
        k->st.parse_errors++;
        pthread_mutex_unlock(&k->lock);
        rc = -EINVAL;
        note(k, false, err);
        goto done;
    }
    snprintf(err, sizeof(err), "%zu pods, %zu containers", p->npods, p->nctrs);
    kubelet_set_pods(k, p);
    note(k, true, err);
    rc = 0;
    goto done;
out:
    pthread_mutex_lock(&k->lock);
    k->st.fetch_errors++;
    pthread_mutex_unlock(&k->lock);
    note(k, false, err);
done:
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    wb_free(&body.b);
    return rc;
}

static void *fetch_main(void *arg)
{
    struct kubelet *k = arg;

    while (!atomic_load(&k->stopping)) {
        kubelet_fetch(k);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += k->o.refresh_s;
        pthread_mutex_lock(&k->lock);
        while (!atomic_load(&k->stopping) && pthread_cond_timedwait(&k->wake, &k->lock, &ts) == 0)
            ;
        pthread_mutex_unlock(&k->lock);
    }
    return NULL;
}

int kubelet_start(struct kubelet *k)
{
    int rc = pthread_create(&k->tid, NULL, fetch_main, k);
    if (rc)
        return -rc;
    k->started = true;
    return 0;
}

void kubelet_free(struct kubelet *k)
{
    if (!k)
        return;
    if (k->started) {
        pthread_mutex_lock(&k->lock);
        atomic_store(&k->stopping, true);
        pthread_cond_broadcast(&k->wake);
        pthread_mutex_unlock(&k->lock);
        pthread_join(k->tid, NULL);
    }
    kube_pods_free(k->pods);
    pthread_mutex_destroy(&k->lock);
    pthread_cond_destroy(&k->wake);
    free(k->url);
    free(k->token_file);
    free(k->ca_file);
    free(k);
}
