/* SPDX-License-Identifier: Apache-2.0 */
#include "ingest/otlp_read.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/intern.h"
#include "common/pbjson.h"
#include "exporter/otlp.h"
#include "otlp/profiles_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary Dictionary;
typedef Opentelemetry__Proto__Profiles__V1development__ResourceProfiles ResourceProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__ScopeProfiles ScopeProfiles;
typedef Opentelemetry__Proto__Profiles__V1development__Profile Profile;
typedef Opentelemetry__Proto__Profiles__V1development__Sample Sample;
typedef Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit KeyValueAndUnit;
typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
    Request;

#define MAX_LABELS 64

/* What every Profile of the request shares: the dictionary as pprof
 * tables, and each attribute as (label name, value) strings. */
struct shared {
    const Dictionary *d;
    char **strings; /* the dictionary's, then the extra strings */
    size_t nstrings, ndict;
    Perftools__Profiles__Mapping **mappings;
    Perftools__Profiles__Function **functions;
    Perftools__Profiles__Location **locations;
    size_t nmappings, nfunctions, nlocations;
    int64_t *attr_key, *attr_val; /* string ids per attribute_table entry; -1 = unusable */
};

/* An attribute's value as text: strings as they are, numbers and bools
 * printed. False for bytes, arrays, maps. */
static bool any_text(const AnyValue *v, char *buf, size_t len, const char **out)
{
    if (!v)
        return false;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        *out = v->string_value;
        return true;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        snprintf(buf, len, "%" PRId64, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        snprintf(buf, len, "%s", v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        snprintf(buf, len, "%.17g", v->double_value);
        break;
    default:
        return false;
    }
    *out = buf;
    return true;
}

/* The Stoke label name of attribute @key, into @buf: the table's, or the
 * key with anything outside [A-Za-z0-9_] as '_' (and a leading digit
 * prefixed). False for an empty key. */
static bool label_name(const char *key, char *buf, size_t len)
{
    const char *l = otlp_label_name(key);
    size_t i = 0, o = 0;

    if (l) {
        snprintf(buf, len, "%s", l);
        return true;
    }
    if (!key[0] || len < 3)
        return false;
    if (key[0] >= '0' && key[0] <= '9')
        buf[o++] = '_';
    for (; key[i] && o + 1 < len; i++) {
        char c = key[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        buf[o++] = ok ? c : '_';
    }
    buf[o] = '\0';
    return true;
}

static int extra_string(struct ingest_batch *b, struct shared *sh, struct intern *extra,
                        const char *s, int64_t *id)
{
    uint32_t n = extra->n, e = intern_str(extra, s);
    if (e == INTERN_NONE)
        return -ENOMEM;
    (void)n;
    (void)b;
    *id = (int64_t)(sh->ndict + e);
    return 0;
}

static bool idx_ok(int32_t i, size_t n)
{
    return i >= 0 && (size_t)i < n;
}

static int build_shared(struct ingest_batch *b, const Dictionary *d, struct shared *sh,
                        struct intern *extra, char *err, size_t errlen)
{
    size_t nstr = d ? d->n_string_table : 0;
    char buf[64], name[256];
    const char *v;
    int rc;

    sh->d = d;
    sh->ndict = nstr ? nstr : 1;
    /* attributes: label name and value as strings */
    size_t nattr = d ? d->n_attribute_table : 0;
    sh->attr_key = ingest_alloc(b, nattr + 1, sizeof(int64_t));
    sh->attr_val = ingest_alloc(b, nattr + 1, sizeof(int64_t));
    if (!sh->attr_key || !sh->attr_val)
        return -ENOMEM;
    if (nstr && d->string_table[0][0]) {
        snprintf(err, errlen, "dictionary: string_table[0] is not the empty string");
        return -EBADMSG;
    }
    for (size_t i = 0; i < nattr; i++) {
        const KeyValueAndUnit *kv = d->attribute_table[i];
        sh->attr_key[i] = sh->attr_val[i] = -1;
        if (!idx_ok(kv->key_strindex, nstr) || !any_text(kv->value, buf, sizeof(buf), &v) ||
            !label_name(d->string_table[kv->key_strindex], name, sizeof(name)))
            continue;
        if ((rc = extra_string(b, sh, extra, name, &sh->attr_key[i])) ||
            (rc = extra_string(b, sh, extra, v, &sh->attr_val[i])))
            return rc;
    }
    /* mappings: id i for index i > 0 */
    size_t nmap = d ? d->n_mapping_table : 0;
    sh->mappings = ingest_alloc(b, nmap + 1, sizeof(*sh->mappings));
    Perftools__Profiles__Mapping *mb = ingest_alloc(b, nmap + 1, sizeof(*mb));
    if (!sh->mappings || !mb)
        return -ENOMEM;
    for (size_t i = 1; i < nmap; i++) {
        const Opentelemetry__Proto__Profiles__V1development__Mapping *m = d->mapping_table[i];
        Perftools__Profiles__Mapping *pm = &mb[sh->nmappings];
        perftools__profiles__mapping__init(pm);
        pm->id = i;
        pm->memory_start = m->memory_start;
        pm->memory_limit = m->memory_limit;
        pm->file_offset = m->file_offset;
        pm->filename = idx_ok(m->filename_strindex, nstr) ? m->filename_strindex : 0;
        for (size_t k = 0; k < m->n_attribute_indices; k++) {
            int32_t a = m->attribute_indices[k];
            if (!idx_ok(a, nattr))
                continue;
            const KeyValueAndUnit *kv = d->attribute_table[a];
            if (!idx_ok(kv->key_strindex, nstr))
                continue;
            const char *key = d->string_table[kv->key_strindex];
            if ((!strcmp(key, "process.executable.build_id.gnu") ||
                 !strcmp(key, "process.executable.build_id.htlhash")) &&
                any_text(kv->value, buf, sizeof(buf), &v) &&
                (rc = extra_string(b, sh, extra, v, &pm->build_id)))
                return rc;
        }
        sh->mappings[sh->nmappings++] = pm;
    }
    /* functions: id i for index i > 0 */
    size_t nfn = d ? d->n_function_table : 0;
    sh->functions = ingest_alloc(b, nfn + 1, sizeof(*sh->functions));
    Perftools__Profiles__Function *fb = ingest_alloc(b, nfn + 1, sizeof(*fb));
    if (!sh->functions || !fb)
        return -ENOMEM;
    for (size_t i = 1; i < nfn; i++) {
        const Opentelemetry__Proto__Profiles__V1development__Function *f = d->function_table[i];
        Perftools__Profiles__Function *pf = &fb[sh->nfunctions];
        perftools__profiles__function__init(pf);
        pf->id = i;
        if (!idx_ok(f->name_strindex, nstr) || !idx_ok(f->system_name_strindex, nstr) ||
            !idx_ok(f->filename_strindex, nstr)) {
            snprintf(err, errlen, "dictionary: function %zu names a string out of range", i);
            return -EBADMSG;
        }
        pf->name = f->name_strindex;
        pf->system_name = f->system_name_strindex;
        pf->filename = f->filename_strindex;
        pf->start_line = f->start_line;
        sh->functions[sh->nfunctions++] = pf;
    }
    /* locations: id i + 1 for every index */
    size_t nloc = d ? d->n_location_table : 0;
    sh->locations = ingest_alloc(b, nloc + 1, sizeof(*sh->locations));
    Perftools__Profiles__Location *lb = ingest_alloc(b, nloc + 1, sizeof(*lb));
    if (!sh->locations || !lb)
        return -ENOMEM;
    for (size_t i = 0; i < nloc; i++) {
        const Opentelemetry__Proto__Profiles__V1development__Location *l = d->location_table[i];
        Perftools__Profiles__Location *pl = &lb[i];
        perftools__profiles__location__init(pl);
        pl->id = i + 1;
        if (!idx_ok(l->mapping_index, nmap ? nmap : 1)) {
            snprintf(err, errlen, "dictionary: location %zu: mapping_index %d out of range", i,
                     l->mapping_index);
            return -EBADMSG;
        }
        pl->mapping_id = (uint64_t)l->mapping_index;
        pl->address = l->address;
        pl->line = ingest_alloc(b, l->n_lines + 1, sizeof(*pl->line));
        Perftools__Profiles__Line *lnb = ingest_alloc(b, l->n_lines + 1, sizeof(*lnb));
        if (!pl->line || !lnb)
            return -ENOMEM;
        for (size_t k = 0; k < l->n_lines; k++) {
            int32_t fi = l->lines[k]->function_index;
            if (!idx_ok(fi, nfn ? nfn : 1)) {
                snprintf(err, errlen, "dictionary: location %zu: function_index %d out of range", i,
                         fi);
                return -EBADMSG;
            }
            if (fi == 0)
                continue;
            perftools__profiles__line__init(&lnb[pl->n_line]);
            lnb[pl->n_line].function_id = (uint64_t)fi;
            lnb[pl->n_line].line = l->lines[k]->line;
            pl->line[pl->n_line] = &lnb[pl->n_line];
            pl->n_line++;
        }
        sh->locations[i] = pl;
    }
    sh->nlocations = nloc;
    return 0;
}

/* The strings: the dictionary's (or just "") and then the extras. */
static int build_strings(struct ingest_batch *b, struct shared *sh, const struct intern *extra)
{
    const Dictionary *d = sh->d;
    sh->nstrings = sh->ndict + extra->n;
    sh->strings = ingest_alloc(b, sh->nstrings, sizeof(char *));
    if (!sh->strings)
        return -ENOMEM;
    if (d && d->n_string_table)
        memcpy(sh->strings, d->string_table, d->n_string_table * sizeof(char *));
    else
        sh->strings[0] = (char *)"";
    for (uint32_t i = 0; i < extra->n; i++)
        if (!(sh->strings[sh->ndict + i] = ingest_strdup(b, intern_str_get(extra, i))))
            return -ENOMEM;
    return 0;
}

/* Resource attributes as labels; *@service set from service.name. */
static int resource_labels(struct ingest_batch *b, const ResourceProfiles *rp,
                           struct seg_label *out, size_t *n, const char **service)
{
    char buf[64], name[256];
    const char *v;

    *service = "unknown_service";
    *n = 0;
    if (!rp->resource)
        return 0;
    for (size_t i = 0; i < rp->resource->n_attributes && *n < MAX_LABELS; i++) {
        const KeyValue *kv = rp->resource->attributes[i];
        if (!kv->key || !any_text(kv->value, buf, sizeof(buf), &v) ||
            !label_name(kv->key, name, sizeof(name)))
            continue;
        if (!(out[*n].name = ingest_strdup(b, name)) || !(out[*n].value = ingest_strdup(b, v)))
            return -ENOMEM;
        if (!strcmp(name, "service_name") && v[0])
            *service = out[*n].value;
        (*n)++;
    }
    return 0;
}

/* One Profile as a pprof message; -EINVAL with @why when its indexes
 * point outside the dictionary. */
static int one_profile(struct ingest_batch *b, const struct shared *sh, const Profile *pr,
                       Perftools__Profiles__Profile **out, uint64_t *nrows, char *why,
                       size_t whylen)
{
    const Dictionary *d = sh->d;
    size_t nstack = d ? d->n_stack_table : 0, nattr = d ? d->n_attribute_table : 0;
    size_t nstr = d ? d->n_string_table : 0;
    Perftools__Profiles__Profile *p = ingest_alloc(b, 1, sizeof(*p));
    Perftools__Profiles__ValueType *vt = ingest_alloc(b, 2, sizeof(*vt));

    if (!p || !vt)
        return -ENOMEM;
    perftools__profiles__profile__init(p);
    perftools__profiles__value_type__init(&vt[0]);
    perftools__profiles__value_type__init(&vt[1]);
    if (!pr->sample_type) {
        snprintf(why, whylen, "profile without a sample_type");
        return -EINVAL;
    }
    if (!idx_ok(pr->sample_type->type_strindex, nstr) ||
        !idx_ok(pr->sample_type->unit_strindex, nstr) ||
        (pr->period_type && (!idx_ok(pr->period_type->type_strindex, nstr) ||
                             !idx_ok(pr->period_type->unit_strindex, nstr)))) {
        snprintf(why, whylen, "sample_type or period_type names a string out of range");
        return -EINVAL;
    }
    vt[0].type = pr->sample_type->type_strindex;
    vt[0].unit = pr->sample_type->unit_strindex;
    p->sample_type = ingest_alloc(b, 1, sizeof(*p->sample_type));
    if (!p->sample_type)
        return -ENOMEM;
    p->sample_type[0] = &vt[0];
    p->n_sample_type = 1;
    if (pr->period_type) {
        vt[1].type = pr->period_type->type_strindex;
        vt[1].unit = pr->period_type->unit_strindex;
        p->period_type = &vt[1];
    }
    p->period = pr->period;
    p->time_nanos = (int64_t)(pr->time_unix_nano > INT64_MAX ? 0 : pr->time_unix_nano);
    p->duration_nanos = (int64_t)(pr->duration_nano > INT64_MAX ? 0 : pr->duration_nano);
    p->string_table = sh->strings;
    p->n_string_table = sh->nstrings;
    p->mapping = sh->mappings;
    p->n_mapping = sh->nmappings;
    p->function = sh->functions;
    p->n_function = sh->nfunctions;
    p->location = sh->locations;
    p->n_location = sh->nlocations;

    p->sample = ingest_alloc(b, pr->n_samples + 1, sizeof(*p->sample));
    Perftools__Profiles__Sample *sb = ingest_alloc(b, pr->n_samples + 1, sizeof(*sb));
    if (!p->sample || !sb)
        return -ENOMEM;
    for (size_t i = 0; i < pr->n_samples; i++) {
        const Sample *s = pr->samples[i];
        Perftools__Profiles__Sample *ps = &sb[p->n_sample];
        int64_t value;
        if (!idx_ok(s->stack_index, nstack ? nstack : 1)) {
            snprintf(why, whylen, "sample %zu: stack_index %d out of range", i, s->stack_index);
            return -EINVAL;
        }
        if (s->n_values > 1) {
            snprintf(why, whylen, "sample %zu: %zu values for one sample_type", i, s->n_values);
            return -EINVAL;
        }
        value = s->n_values ? s->values[0] : (int64_t)s->n_timestamps_unix_nano;
        if (value == 0)
            continue;
        perftools__profiles__sample__init(ps);
        if (nstack) {
            const Opentelemetry__Proto__Profiles__V1development__Stack *st =
                d->stack_table[s->stack_index];
            ps->location_id = ingest_alloc(b, st->n_location_indices + 1, sizeof(uint64_t));
            if (!ps->location_id)
                return -ENOMEM;
            for (size_t k = 0; k < st->n_location_indices; k++) {
                int32_t li = st->location_indices[k];
                if (!idx_ok(li, sh->nlocations)) {
                    snprintf(why, whylen, "stack %d: location index %d out of range",
                             s->stack_index, li);
                    return -EINVAL;
                }
                ps->location_id[k] = (uint64_t)li + 1;
            }
            ps->n_location_id = st->n_location_indices;
        }
        ps->value = ingest_alloc(b, 1, sizeof(int64_t));
        if (!ps->value)
            return -ENOMEM;
        ps->value[0] = value;
        ps->n_value = 1;
        size_t na = s->n_attribute_indices + pr->n_attribute_indices;
        if (na) {
            ps->label = ingest_alloc(b, na, sizeof(*ps->label));
            Perftools__Profiles__Label *lb = ingest_alloc(b, na, sizeof(*lb));
            if (!ps->label || !lb)
                return -ENOMEM;
            for (size_t k = 0; k < na; k++) {
                int32_t a = k < s->n_attribute_indices
                                ? s->attribute_indices[k]
                                : pr->attribute_indices[k - s->n_attribute_indices];
                if (!idx_ok(a, nattr)) {
                    snprintf(why, whylen, "sample %zu: attribute index %d out of range", i, a);
                    return -EINVAL;
                }
                if (sh->attr_key[a] < 0)
                    continue;
                perftools__profiles__label__init(&lb[ps->n_label]);
                lb[ps->n_label].key = sh->attr_key[a];
                lb[ps->n_label].str = sh->attr_val[a];
                ps->label[ps->n_label] = &lb[ps->n_label];
                ps->n_label++;
            }
        }
        p->sample[p->n_sample++] = ps;
    }
    *out = p;
    *nrows = p->n_sample;
    return 0;
}

/* The decoded @req (the batch's) into profiles. */
static int read_request(const Request *req, int64_t now_ms, struct ingest_batch *b, char *err,
                        size_t errlen)
{
    struct intern extra = {0};
    struct shared sh = {0};
    char why[160];
    int rc;

    if ((rc = build_shared(b, req->dictionary, &sh, &extra, err, errlen)) ||
        (rc = build_strings(b, &sh, &extra)))
        goto out;
    for (size_t r = 0; r < req->n_resource_profiles; r++) {
        const ResourceProfiles *rp = req->resource_profiles[r];
        struct seg_label *labels = ingest_alloc(b, MAX_LABELS, sizeof(*labels));
        const char *service;
        size_t nl;
        if (!labels) {
            rc = -ENOMEM;
            goto out;
        }
        if ((rc = resource_labels(b, rp, labels, &nl, &service)))
            goto out;
        for (size_t s = 0; s < rp->n_scope_profiles; s++) {
            const ScopeProfiles *sp = rp->scope_profiles[s];
            for (size_t k = 0; k < sp->n_profiles; k++) {
                Perftools__Profiles__Profile *p = NULL;
                uint64_t nrows = 0;
                why[0] = '\0';
                rc = one_profile(b, &sh, sp->profiles[k], &p, &nrows, why, sizeof(why));
                if (rc == -EINVAL) {
                    if (!b->rejected++)
                        snprintf(b->why_rejected, sizeof(b->why_rejected),
                                 "resource %zu, scope %zu, profile %zu: %s", r, s, k, why);
                    continue;
                }
                if (rc)
                    goto out;
                if (p->n_sample == 0)
                    continue; /* nothing to store; not an error */
                rc = ingest_push(b,
                                 &(struct ingest_profile){
                                     .service = service,
                                     .labels = labels,
                                     .nlabels = nl,
                                     .p = p,
                                     .nrows = nrows,
                                     .time_ms = p->time_nanos ? p->time_nanos / 1000000 : now_ms});
                if (rc)
                    goto out;
            }
        }
    }
    rc = 0;
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    intern_free(&extra);
    return rc;
}

int otlp_read(const uint8_t *body, size_t len, int64_t now_ms, struct ingest_batch *b, char *err,
              size_t errlen)
{
    int rc;
    Request *req =
        opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack(
            NULL, len, body);
    if (!req) {
        snprintf(err, errlen, "body: not an ExportProfilesServiceRequest (protobuf)");
        return -EBADMSG;
    }
    if ((rc = ingest_keep(b, req))) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    return read_request(req, now_ms, b, err, errlen);
}

/* OTLP's exception to the protobuf JSON mapping: these ids are hex. */
static const char *const otlp_hex_fields[] = {"trace_id", "span_id", "profile_id", NULL};

int otlp_read_json(const uint8_t *body, size_t len, int64_t now_ms, struct ingest_batch *b,
                   char *err, size_t errlen)
{
    const struct pbjson_opts o = {.hex_fields = otlp_hex_fields};
    ProtobufCMessage *m = NULL;
    char why[400];
    int rc;

    rc = pbjson_decode(
        &opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__descriptor,
        body, len, &o, &m, why, sizeof(why));
    if (rc) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        else
            snprintf(err, errlen, "ExportProfilesServiceRequest (JSON): %s", why);
        return rc == -ENOMEM ? rc : rc == -EFBIG ? -EFBIG : -EBADMSG;
    }
    if ((rc = ingest_keep(b, m))) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    return read_request((const Request *)m, now_ms, b, err, errlen);
}
