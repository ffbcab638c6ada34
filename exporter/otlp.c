/* SPDX-License-Identifier: Apache-2.0 */
/*
 * otlp — see otlp.h. The profile is read through its pprof message (the
 * same one written to disk), so the OTLP export and the local pprof cannot
 * disagree on locations, functions or values.
 */
#include "exporter/otlp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/labels.h"
#include "common/log.h"
#include "common/grpc_frame.h"
#include "common/gzip.h"
#include "exporter/http_push.h"
#include "common/intern.h"
#include "otlp/profiles_service.pb-c.h"
#include "profile.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary Dictionary;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles ResourceProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__ScopeProfiles ScopeProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__Profile Profile;
typedef Opentelemetry__Proto__Profiles__V1development__ValueType ValueType;
typedef Opentelemetry__Proto__Profiles__V1development__Sample Sample;
typedef Opentelemetry__Proto__Profiles__V1development__Mapping Mapping;
typedef Opentelemetry__Proto__Profiles__V1development__Stack Stack;
typedef Opentelemetry__Proto__Profiles__V1development__Location Location;
typedef Opentelemetry__Proto__Profiles__V1development__Line Line;
typedef Opentelemetry__Proto__Profiles__V1development__Function Function;
typedef Opentelemetry__Proto__Profiles__V1development__Link Link;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit KeyValueAndUnit;
typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
    Request;
typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceResponse
    Response;

#define BUILD_ID_ATTR "process.executable.build_id.gnu"
/* pprof's mappings span the whole address space (see profile.c) */
#define MAPPING_LIMIT UINT64_MAX

/* One service's profile: the resource and the samples, as dictionary ids. */
struct rprof {
    struct label_set res;
    uint64_t start_ns, duration_ns, period_ns;
    uint8_t id[16];
    size_t nsamples;
    int32_t *stack;
    int64_t *value;
    uint32_t *attr_off, *attr_n;
    int32_t *attrs;
    size_t nattrs;
};

struct otlp_batch {
    struct intern str;
    /* Item 0 of every table is the empty sequence: the zero value, as the
     * dictionary requires; real items are never empty (stacks may be, and
     * an empty stack is the zero stack). */
    struct intern maps;   /* [file, build-id attribute or 0] */
    struct intern funcs;  /* [name, system name, file] */
    struct intern locs;   /* [mapping, addr lo, addr hi, (function, line lo, line hi)...] */
    struct intern stacks; /* [location...], leaf first */
    struct intern attrs;  /* [key, is_int, value] */
    uint32_t s_cpu, s_ns;
    struct rprof *rp;
    size_t nrp, caprp;
    uint32_t *scratch;
    size_t scratch_cap;
};

static const struct {
    const char *label, *attr;
    int is_int;
} attr_names[] = {
    {"service_name", "service.name", 0},
    {"host_name", "host.name", 0},
    {"node", "k8s.node.name", 0},
    {"container_id", "container.id", 0},
    {"pod_uid", "k8s.pod.uid", 0},
    {"pod", "k8s.pod.name", 0},
    {"namespace", "k8s.namespace.name", 0},
    {"process_executable_name", "process.executable.name", 0},
    {"pid", "process.pid", 1},
    {"thread_id", "thread.id", 1},
    {"cpu", "cpu.logical_number", 1},
};

const char *otlp_attr_name(const char *label, int *is_int)
{
    for (size_t i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++) {
        if (strcmp(attr_names[i].label, label) == 0) {
            *is_int = attr_names[i].is_int;
            return attr_names[i].attr;
        }
    }
    *is_int = 0;
    return label;
}

const char *otlp_label_name(const char *attr)
{
    for (size_t i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++)
        if (strcmp(attr_names[i].attr, attr) == 0)
            return attr_names[i].label;
    return NULL;
}

/* An integer attribute whose value does not parse is sent as a string. */
static bool parse_int(const char *s, int64_t *out)
{
    char *end;

    if (!*s)
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno)
        return false;
    *out = v;
    return true;
}

struct otlp_batch *otlp_batch_new(void)
{
    struct otlp_batch *b = calloc(1, sizeof(*b));

    if (!b)
        return NULL;
    if (intern_str(&b->str, "") != 0) /* zero values at index 0 */
        goto fail;
    if (intern_seq(&b->maps, NULL, 0) != 0 || intern_seq(&b->funcs, NULL, 0) != 0 ||
        intern_seq(&b->locs, NULL, 0) != 0 || intern_seq(&b->stacks, NULL, 0) != 0 ||
        intern_seq(&b->attrs, NULL, 0) != 0)
        goto fail;
    b->s_cpu = intern_str(&b->str, "cpu");
    b->s_ns = intern_str(&b->str, "nanoseconds");
    if (b->s_cpu == INTERN_NONE || b->s_ns == INTERN_NONE)
        goto fail;
    return b;
fail:
    otlp_batch_free(b);
    return NULL;
}

static void rprof_free(struct rprof *r)
{
    label_set_clear(&r->res);
    free(r->stack);
    free(r->value);
    free(r->attr_off);
    free(r->attr_n);
    free(r->attrs);
}

void otlp_batch_free(struct otlp_batch *b)
{
    if (!b)
        return;
    intern_free(&b->str);
    intern_free(&b->maps);
    intern_free(&b->funcs);
    intern_free(&b->locs);
    intern_free(&b->stacks);
    intern_free(&b->attrs);
    for (size_t i = 0; i < b->nrp; i++)
        rprof_free(&b->rp[i]);
    free(b->rp);
    free(b->scratch);
    free(b);
}

size_t otlp_batch_nprofiles(const struct otlp_batch *b)
{
    return b->nrp;
}

static uint32_t *scratch(struct otlp_batch *b, size_t n)
{
    if (n > b->scratch_cap) {
        size_t ncap = n < 256 ? 256 : n * 2;
        uint32_t *s = realloc(b->scratch, ncap * sizeof(*s));
        if (!s)
            return NULL;
        b->scratch = s;
        b->scratch_cap = ncap;
    }
    return b->scratch;
}

/* The dictionary id of an attribute from a Stoke label; INTERN_NONE on ENOMEM. */
static uint32_t intern_attr(struct otlp_batch *b, const char *label, const char *value)
{
    int is_int;
    int64_t iv;
    const char *name = otlp_attr_name(label, &is_int);
    uint32_t key[3];

    key[0] = intern_str(&b->str, name);
    key[1] = is_int && parse_int(value, &iv);
    key[2] = intern_str(&b->str, value);
    if (key[0] == INTERN_NONE || key[2] == INTERN_NONE)
        return INTERN_NONE;
    return intern_seq(&b->attrs, key, 3);
}

/* Dictionary ids fit int32: the wire type of every *_index field. */
#define ID_OK(id) ((id) != INTERN_NONE && (id) <= INT32_MAX)

static int add_profile(struct otlp_batch *b, struct rprof *r, const Perftools__Profiles__Profile *m)
{
    char **s = m->string_table;
    size_t ns = m->n_string_table, i, j, vi = 0, nattrs = 0;
    uint32_t *mapidx = NULL, *funcidx = NULL, *locidx = NULL;
    int err = -ENOMEM;

#define STR(i) ((i) >= 0 && (size_t)(i) < ns ? s[i] : "")
    for (i = 0; i < m->n_sample_type; i++)
        if (strcmp(STR(m->sample_type[i]->type), "cpu") == 0)
            vi = i;
    mapidx = calloc(m->n_mapping + 1, sizeof(*mapidx));
    funcidx = calloc(m->n_function + 1, sizeof(*funcidx));
    locidx = calloc(m->n_location + 1, sizeof(*locidx));
    if (!mapidx || !funcidx || !locidx)
        goto out;

    /* pprof ids are 1-based positions (profile.c assigns them so) */
    for (i = 0; i < m->n_mapping; i++) {
        const Perftools__Profiles__Mapping *pm = m->mapping[i];
        uint32_t key[2];
        const char *bid = STR(pm->build_id);

        if (pm->id != i + 1) {
            err = -EINVAL;
            goto out;
        }
        key[0] = intern_str(&b->str, STR(pm->filename));
        key[1] = *bid ? intern_attr(b, BUILD_ID_ATTR, bid) : 0;
        if (key[0] == INTERN_NONE || key[1] == INTERN_NONE)
            goto out;
        mapidx[i + 1] = intern_seq(&b->maps, key, 2);
        if (!ID_OK(mapidx[i + 1]))
            goto out;
    }
    for (i = 0; i < m->n_function; i++) {
        const Perftools__Profiles__Function *pf = m->function[i];
        uint32_t key[3];

        if (pf->id != i + 1) {
            err = -EINVAL;
            goto out;
        }
        key[0] = intern_str(&b->str, STR(pf->name));
        key[1] = intern_str(&b->str, STR(pf->system_name));
        key[2] = intern_str(&b->str, STR(pf->filename));
        if (key[0] == INTERN_NONE || key[1] == INTERN_NONE || key[2] == INTERN_NONE)
            goto out;
        funcidx[i + 1] = intern_seq(&b->funcs, key, 3);
        if (!ID_OK(funcidx[i + 1]))
            goto out;
    }
    for (i = 0; i < m->n_location; i++) {
        const Perftools__Profiles__Location *pl = m->location[i];
        uint32_t *key;

        if (pl->id != i + 1 || pl->mapping_id > m->n_mapping) {
            err = -EINVAL;
            goto out;
        }
        key = scratch(b, 3 + 3 * pl->n_line);
        if (!key)
            goto out;
        key[0] = mapidx[pl->mapping_id];
        key[1] = (uint32_t)pl->address;
        key[2] = (uint32_t)(pl->address >> 32);
        for (j = 0; j < pl->n_line; j++) {
            if (pl->line[j]->function_id > m->n_function) {
                err = -EINVAL;
                goto out;
            }
            key[3 + 3 * j] = funcidx[pl->line[j]->function_id];
            key[4 + 3 * j] = (uint32_t)pl->line[j]->line;
            key[5 + 3 * j] = (uint32_t)((uint64_t)pl->line[j]->line >> 32);
        }
        locidx[i + 1] = intern_seq(&b->locs, key, 3 + 3 * pl->n_line);
        if (!ID_OK(locidx[i + 1]))
            goto out;
    }

    for (i = 0; i < m->n_sample; i++)
        nattrs += m->sample[i]->n_label;
    r->nsamples = m->n_sample;
    r->stack = calloc(m->n_sample + 1, sizeof(*r->stack));
    r->value = calloc(m->n_sample + 1, sizeof(*r->value));
    r->attr_off = calloc(m->n_sample + 1, sizeof(*r->attr_off));
    r->attr_n = calloc(m->n_sample + 1, sizeof(*r->attr_n));
    r->attrs = calloc(nattrs + 1, sizeof(*r->attrs));
    if (!r->stack || !r->value || !r->attr_off || !r->attr_n || !r->attrs)
        goto out;
    for (i = 0; i < m->n_sample; i++) {
        const Perftools__Profiles__Sample *ps = m->sample[i];
        uint32_t *st = scratch(b, ps->n_location_id + 1), id;

        if (!st)
            goto out;
        for (j = 0; j < ps->n_location_id; j++) {
            if (ps->location_id[j] == 0 || ps->location_id[j] > m->n_location) {
                err = -EINVAL;
                goto out;
            }
            st[j] = locidx[ps->location_id[j]];
        }
        id = intern_seq(&b->stacks, st, ps->n_location_id);
        if (!ID_OK(id))
            goto out;
        r->stack[i] = (int32_t)id;
        r->value[i] = vi < ps->n_value ? ps->value[vi] : 0;
        r->attr_off[i] = (uint32_t)r->nattrs;
        for (j = 0; j < ps->n_label; j++) {
            const char *k = STR(ps->label[j]->key), *v = STR(ps->label[j]->str);
            const char *common = label_set_get(&r->res, k);

            if (common && strcmp(common, v) == 0)
                continue; /* on the resource already */
            id = intern_attr(b, k, v);
            if (!ID_OK(id))
                goto out;
            r->attrs[r->nattrs++] = (int32_t)id;
        }
        r->attr_n[i] = (uint32_t)(r->nattrs - r->attr_off[i]);
    }
#undef STR
    err = 0;
out:
    free(mapidx);
    free(funcidx);
    free(locidx);
    return err;
}

int otlp_batch_add(struct otlp_batch *b, const struct profile *p)
{
    struct profile_pprof *pp = NULL;
    struct rprof *r;
    int err;

    if (profile_total_samples(p) == 0)
        return 0;
    if (b->nrp == b->caprp) {
        size_t ncap = b->caprp ? b->caprp * 2 : 8;
        struct rprof *n = realloc(b->rp, ncap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        b->rp = n;
        b->caprp = ncap;
    }
    r = &b->rp[b->nrp];
    memset(r, 0, sizeof(*r));
    profile_times(p, &r->start_ns, &r->duration_ns, &r->period_ns);
    /* a random id: receivers may use it to drop a retried duplicate */
    if (getrandom(r->id, sizeof(r->id), GRND_NONBLOCK) != (ssize_t)sizeof(r->id))
        memset(r->id, 0, sizeof(r->id));
    err = profile_common_labels(p, &r->res);
    if (!err)
        err = profile_to_pprof(p, &pp);
    if (!err)
        err = add_profile(b, r, profile_pprof_msg(pp));
    profile_pprof_free(pp);
    if (err) {
        /* ids interned so far stay in the dictionary, unreferenced: harmless */
        rprof_free(r);
        return err;
    }
    b->nrp++;
    return 0;
}

/* ---- encoding ------------------------------------------------------------ */

/* Every allocation of one encode, freed together. */
struct allocs {
    void **v;
    size_t n, cap;
    bool oom;
};

static void *alloc(struct allocs *a, size_t n, size_t size)
{
    void *p;

    if (a->oom)
        return NULL;
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 32;
        void **nv = realloc(a->v, ncap * sizeof(*nv));
        if (!nv) {
            a->oom = true;
            return NULL;
        }
        a->v = nv;
        a->cap = ncap;
    }
    p = calloc(n ? n : 1, size);
    if (!p) {
        a->oom = true;
        return NULL;
    }
    a->v[a->n++] = p;
    return p;
}

static void allocs_free(struct allocs *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
}

/* An interned u32 sequence as int32 (ids are <= INT32_MAX; same object
 * representation, and signed/unsigned variants may alias). */
static int32_t *seq_i32(const struct intern *t, uint32_t id, size_t *n)
{
    return (int32_t *)intern_seq_get(t, id, n);
}

static void build_dictionary(const struct otlp_batch *b, Dictionary *d, struct allocs *a)
{
    size_t i, j, n;

    d->n_string_table = b->str.n;
    d->string_table = alloc(a, b->str.n, sizeof(char *));
    d->n_mapping_table = b->maps.n;
    d->mapping_table = alloc(a, b->maps.n, sizeof(Mapping *));
    d->n_function_table = b->funcs.n;
    d->function_table = alloc(a, b->funcs.n, sizeof(Function *));
    d->n_location_table = b->locs.n;
    d->location_table = alloc(a, b->locs.n, sizeof(Location *));
    d->n_stack_table = b->stacks.n;
    d->stack_table = alloc(a, b->stacks.n, sizeof(Stack *));
    d->n_attribute_table = b->attrs.n;
    d->attribute_table = alloc(a, b->attrs.n, sizeof(KeyValueAndUnit *));
    d->n_link_table = 1;
    d->link_table = alloc(a, 1, sizeof(Link *));
    Mapping *maps = alloc(a, b->maps.n, sizeof(Mapping));
    Function *funcs = alloc(a, b->funcs.n, sizeof(Function));
    Location *locs = alloc(a, b->locs.n, sizeof(Location));
    Stack *stacks = alloc(a, b->stacks.n, sizeof(Stack));
    KeyValueAndUnit *attrs = alloc(a, b->attrs.n, sizeof(KeyValueAndUnit));
    AnyValue *vals = alloc(a, b->attrs.n, sizeof(AnyValue));
    Link *link = alloc(a, 1, sizeof(Link));
    if (a->oom)
        return;

    for (i = 0; i < b->str.n; i++)
        d->string_table[i] = (char *)intern_str_get(&b->str, (uint32_t)i);
    opentelemetry__proto__profiles__v1development__link__init(link);
    d->link_table[0] = link;

    for (i = 0; i < b->maps.n; i++) {
        const uint32_t *k = intern_seq_get(&b->maps, (uint32_t)i, &n);
        Mapping *m = &maps[i];

        opentelemetry__proto__profiles__v1development__mapping__init(m);
        if (n == 2) {
            m->memory_limit = MAPPING_LIMIT;
            m->filename_strindex = (int32_t)k[0];
            if (k[1]) {
                m->n_attribute_indices = 1;
                m->attribute_indices = (int32_t *)&k[1];
            }
        }
        d->mapping_table[i] = m;
    }
    for (i = 0; i < b->funcs.n; i++) {
        const uint32_t *k = intern_seq_get(&b->funcs, (uint32_t)i, &n);
        Function *f = &funcs[i];

        opentelemetry__proto__profiles__v1development__function__init(f);
        if (n == 3) {
            f->name_strindex = (int32_t)k[0];
            f->system_name_strindex = (int32_t)k[1];
            f->filename_strindex = (int32_t)k[2];
        }
        d->function_table[i] = f;
    }
    for (i = 0; i < b->locs.n; i++) {
        const uint32_t *k = intern_seq_get(&b->locs, (uint32_t)i, &n);
        Location *l = &locs[i];
        size_t nl = n >= 3 ? (n - 3) / 3 : 0;

        opentelemetry__proto__profiles__v1development__location__init(l);
        d->location_table[i] = l;
        if (n < 3)
            continue;
        l->mapping_index = (int32_t)k[0];
        l->address = (uint64_t)k[1] | (uint64_t)k[2] << 32;
        Line *lines = alloc(a, nl, sizeof(Line));
        Line **linep = alloc(a, nl, sizeof(Line *));
        if (a->oom)
            return;
        for (j = 0; j < nl; j++) {
            opentelemetry__proto__profiles__v1development__line__init(&lines[j]);
            lines[j].function_index = (int32_t)k[3 + 3 * j];
            lines[j].line = (int64_t)((uint64_t)k[4 + 3 * j] | (uint64_t)k[5 + 3 * j] << 32);
            linep[j] = &lines[j];
        }
        l->n_lines = nl;
        l->lines = linep;
    }
    for (i = 0; i < b->stacks.n; i++) {
        Stack *st = &stacks[i];

        opentelemetry__proto__profiles__v1development__stack__init(st);
        st->location_indices = seq_i32(&b->stacks, (uint32_t)i, &n);
        st->n_location_indices = n;
        d->stack_table[i] = st;
    }
    for (i = 0; i < b->attrs.n; i++) {
        const uint32_t *k = intern_seq_get(&b->attrs, (uint32_t)i, &n);
        KeyValueAndUnit *kv = &attrs[i];
        AnyValue *v = &vals[i];

        opentelemetry__proto__profiles__v1development__key_value_and_unit__init(kv);
        d->attribute_table[i] = kv;
        if (n != 3)
            continue; /* the zero attribute: no key, no value */
        opentelemetry__proto__common__v1__any_value__init(v);
        kv->key_strindex = (int32_t)k[0];
        const char *s = intern_str_get(&b->str, k[2]);
        int64_t iv;
        if (k[1] && parse_int(s, &iv)) {
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            v->int_value = iv;
        } else {
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            v->string_value = (char *)s;
        }
        kv->value = v;
    }
}

static void build_resource(const struct otlp_batch *b, const struct rprof *r, ResourceProfiles *rp,
                           Scope *scope, ValueType *vt, struct allocs *a)
{
    size_t i, nres = r->res.n;
    Resource *res = alloc(a, 1, sizeof(*res));
    KeyValue *kv = alloc(a, nres, sizeof(*kv));
    KeyValue **kvp = alloc(a, nres, sizeof(*kvp));
    AnyValue *av = alloc(a, nres, sizeof(*av));
    ScopeProfiles *sp = alloc(a, 1, sizeof(*sp));
    ScopeProfiles **spp = alloc(a, 1, sizeof(*spp));
    Profile *prof = alloc(a, 1, sizeof(*prof));
    Profile **profp = alloc(a, 1, sizeof(*profp));
    Sample *smp = alloc(a, r->nsamples, sizeof(*smp));
    Sample **smpp = alloc(a, r->nsamples, sizeof(*smpp));

    (void)b;
    if (a->oom)
        return;
    opentelemetry__proto__resource__v1__resource__init(res);
    for (i = 0; i < nres; i++) {
        int is_int;
        int64_t iv;

        opentelemetry__proto__common__v1__key_value__init(&kv[i]);
        opentelemetry__proto__common__v1__any_value__init(&av[i]);
        kv[i].key = (char *)otlp_attr_name(r->res.v[i].name, &is_int);
        if (is_int && parse_int(r->res.v[i].value, &iv)) {
            av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            av[i].int_value = iv;
        } else {
            av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            av[i].string_value = r->res.v[i].value;
        }
        kv[i].value = &av[i];
        kvp[i] = &kv[i];
    }
    res->n_attributes = nres;
    res->attributes = kvp;

    opentelemetry__proto__profiles__v1development__profile__init(prof);
    prof->sample_type = vt;
    prof->period_type = vt;
    prof->period = (int64_t)r->period_ns;
    prof->time_unix_nano = r->start_ns;
    prof->duration_nano = r->duration_ns;
    prof->profile_id.data = (uint8_t *)r->id;
    prof->profile_id.len = sizeof(r->id);
    for (i = 0; i < r->nsamples; i++) {
        opentelemetry__proto__profiles__v1development__sample__init(&smp[i]);
        smp[i].stack_index = r->stack[i];
        smp[i].n_values = 1;
        smp[i].values = &r->value[i];
        smp[i].n_attribute_indices = r->attr_n[i];
        smp[i].attribute_indices = &r->attrs[r->attr_off[i]];
        smpp[i] = &smp[i];
    }
    prof->n_samples = r->nsamples;
    prof->samples = smpp;
    profp[0] = prof;

    opentelemetry__proto__profiles__v1development__scope_profiles__init(sp);
    sp->scope = scope;
    sp->n_profiles = 1;
    sp->profiles = profp;
    spp[0] = sp;

    opentelemetry__proto__profiles__v1development__resource_profiles__init(rp);
    rp->resource = res;
    rp->n_scope_profiles = 1;
    rp->scope_profiles = spp;
}

int otlp_batch_encode(const struct otlp_batch *b, uint8_t **out, size_t *outlen)
{
    Request req =
        OPENTELEMETRY__PROTO__COLLECTOR__PROFILES__V1DEVELOPMENT__EXPORT_PROFILES_SERVICE_REQUEST__INIT;
    Dictionary dict = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__PROFILES_DICTIONARY__INIT;
    Scope scope = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    ValueType vt = OPENTELEMETRY__PROTO__PROFILES__V1DEVELOPMENT__VALUE_TYPE__INIT;
    struct allocs a = {0};
    ResourceProfiles *rps, **rpp;
    uint8_t *buf;
    size_t len;
    int err = -ENOMEM;

    *out = NULL;
    *outlen = 0;
    scope.name = "stoke";
    vt.type_strindex = (int32_t)b->s_cpu;
    vt.unit_strindex = (int32_t)b->s_ns;
    build_dictionary(b, &dict, &a);
    rps = alloc(&a, b->nrp, sizeof(*rps));
    rpp = alloc(&a, b->nrp, sizeof(*rpp));
    for (size_t i = 0; i < b->nrp && !a.oom; i++) {
        build_resource(b, &b->rp[i], &rps[i], &scope, &vt, &a);
        rpp[i] = &rps[i];
    }
    if (a.oom)
        goto out;
    req.n_resource_profiles = b->nrp;
    req.resource_profiles = rpp;
    req.dictionary = &dict;
    len =
        opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__get_packed_size(
            &req);
    buf = malloc(len ? len : 1);
    if (!buf)
        goto out;
    if (opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__pack(
            &req, buf) != len) {
        free(buf);
        err = -EIO; /* protobuf-c disagreeing with itself */
        goto out;
    }
    *out = buf;
    *outlen = len;
    err = 0;
out:
    allocs_free(&a);
    return err;
}

/* ---- the answer ----------------------------------------------------------- */

int otlp_response_parse(const uint8_t *body, size_t len, int64_t *rejected, char *msg,
                        size_t msglen)
{
    Response *r;

    *rejected = 0;
    if (msglen)
        msg[0] = '\0';
    if (len == 0)
        return 0;
    r = opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__unpack(
        NULL, len, body);
    if (!r)
        return -EBADMSG;
    if (r->partial_success) {
        const char *m = r->partial_success->error_message ? r->partial_success->error_message : "";
        size_t i;

        *rejected =
            r->partial_success->rejected_profiles < 0 ? 0 : r->partial_success->rejected_profiles;
        /* the message goes to the log: no control characters from the network */
        for (i = 0; msglen && m[i] && i + 1 < msglen; i++)
            msg[i] = (unsigned char)m[i] < 0x20 || m[i] == 0x7f ? '?' : m[i];
        if (msglen)
            msg[i] = '\0';
    }
    opentelemetry__proto__collector__profiles__v1development__export_profiles_service_response__free_unpacked(
        r, NULL);
    return 0;
}

/* ---- sending ----------------------------------------------------------------- */

#define OTLP_PATH "/v1development/profiles"

struct otlp_exporter {
    struct http_push *push;
    bool grpc;
    char *url;
    pthread_mutex_t mu; /* the log rate limit: on_success runs on the sender */
    time_t last_log;
};

static int64_t on_success(void *ctx, const uint8_t *body, size_t len)
{
    struct otlp_exporter *e = ctx;
    int64_t rejected;
    char msg[256];

    if (otlp_response_parse(body, len, &rejected, msg, sizeof(msg)) != 0)
        return -1;
    if (msg[0] || rejected) {
        time_t now = time(NULL);
        pthread_mutex_lock(&e->mu);
        bool say = now - e->last_log >= 60;
        if (say)
            e->last_log = now;
        pthread_mutex_unlock(&e->mu);
        if (say)
            log_warn("otlp: the endpoint rejected %lld profiles: %s", (long long)rejected,
                     msg[0] ? msg : "(no message)");
    }
    return rejected;
}

struct otlp_exporter *otlp_exporter_new(const struct otlp_exporter_opts *o, char *err,
                                        size_t errlen)
{
    struct otlp_exporter *e = calloc(1, sizeof(*e));
    const char *path = o->grpc ? GRPC_EXPORT_PATH : OTLP_PATH;
    size_t n = strlen(o->endpoint);

    if (!e || !(e->url = malloc(n + strlen(path) + 1))) {
        free(e);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (strncmp(o->endpoint, "http://", 7) != 0 && strncmp(o->endpoint, "https://", 8) != 0) {
        snprintf(err, errlen, "otlp endpoint %s: not an http:// or https:// URL", o->endpoint);
        free(e->url);
        free(e);
        return NULL;
    }
    memcpy(e->url, o->endpoint, n + 1);
    /* a base URL gets the standard path; a full one is used as it is */
    if (!strstr(e->url, path)) {
        while (n && e->url[n - 1] == '/')
            e->url[--n] = '\0';
        memcpy(e->url + n, path, strlen(path) + 1);
    }
    e->grpc = o->grpc;
    pthread_mutex_init(&e->mu, NULL);
    struct http_push_opts po = {
        .name = "otlp",
        .grpc = o->grpc,
        .timeout_ms = o->timeout_ms,
        .headers = o->headers,
        .nheaders = o->nheaders,
        .on_success = on_success,
        .ctx = e,
    };
    e->push = http_push_new(&po, err, errlen);
    if (!e->push) {
        pthread_mutex_destroy(&e->mu);
        free(e->url);
        free(e);
        return NULL;
    }
    return e;
}

int otlp_exporter_send(struct otlp_exporter *e, const struct otlp_batch *b)
{
    uint8_t *raw, *gz;
    size_t rawlen, gzlen;
    int err;

    if (b->nrp == 0)
        return 0;
    err = otlp_batch_encode(b, &raw, &rawlen);
    if (err)
        return err;
    err = gzip_compress(raw, rawlen, &gz, &gzlen);
    free(raw);
    if (err)
        return err;
    return http_push_submit(e->push, e->url,
                            e->grpc ? "application/grpc" : "application/x-protobuf", "gzip", gz,
                            gzlen, b->nrp);
}

void otlp_exporter_get_stats(struct otlp_exporter *e, struct http_push_stats *out)
{
    http_push_get_stats(e->push, out);
}

void otlp_exporter_drain(struct otlp_exporter *e, unsigned timeout_ms)
{
    if (e)
        http_push_drain(e->push, timeout_ms);
}

void otlp_exporter_free(struct otlp_exporter *e, unsigned timeout_ms)
{
    if (!e)
        return;
    http_push_free(e->push, timeout_ms);
    pthread_mutex_destroy(&e->mu);
    free(e->url);
    free(e);
}
