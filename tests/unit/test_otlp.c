/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exporter/otlp: two hand-made services in one request, encoded and decoded
 * again with protobuf-c's unpacker: the dictionary (zero values at index 0,
 * string_table[0] == "", one entry per distinct item across services), the
 * indices, the resource attributes by the semantic conventions, the sample
 * attributes for labels that vary, the values and the response reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/labels.h"
#include "exporter/otlp.h"
#include "otlp/profiles_service.pb-c.h"

#define PERIOD_NS 10101010ULL /* 99 Hz */
#define START_NS  1700000000000000000ULL
#define DUR_NS    5000000000ULL

typedef Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest
    Request;
typedef Opentelemetry__Proto__Profiles__V1development__ProfilesDictionary Dictionary;

static uint32_t loc(struct profile *p, const char *mapping, const char *bid, uint64_t off,
                    const char *fn)
{
    struct sym_result r = {
        .kind = SYM_USER, .mapping = mapping, .build_id = bid, .file_offset = off};
    if (fn) {
        r.nframes = 1;
        r.frames[0].function = fn;
        r.frames[0].file = "hot.c";
        r.frames[0].line = 42;
    }
    uint32_t id = profile_location(p, &r);
    assert_true(id > 0);
    return id;
}

/* service @svc, two processes (pid varies), the same libc in both */
static struct profile *make(const char *svc, uint64_t n1, uint64_t n2)
{
    struct profile *p = profile_new(svc, START_NS, DUR_NS, PERIOD_NS);
    struct label_set a = {0}, b = {0};
    uint32_t s1[2], s2[1];

    assert_non_null(p);
    s1[0] = loc(p, "/usr/bin/hot", "aa11", 0x1100, "hot_loop");
    s1[1] = loc(p, "/lib/libc.so.6", "cc22", 0x2200, "__libc_start_main");
    s2[0] = loc(p, "/lib/libc.so.6", "cc22", 0x3300, NULL);
    label_set_put(&a, "service_name", svc);
    label_set_put(&a, "host_name", "h1");
    label_set_put(&a, "pid", "100");
    label_set_put(&b, "service_name", svc);
    label_set_put(&b, "host_name", "h1");
    label_set_put(&b, "pid", "200");
    assert_int_equal(profile_add(p, s1, 2, &a, n1), 0);
    assert_int_equal(profile_add(p, s2, 1, &b, n2), 0);
    label_set_clear(&a);
    label_set_clear(&b);
    return p;
}

static const char *str(const Dictionary *d, int32_t i)
{
    assert_true(i >= 0 && (size_t)i < d->n_string_table);
    return d->string_table[i];
}

static void test_request(void **state)
{
    (void)state;
    struct otlp_batch *b = otlp_batch_new();
    struct profile *p1 = make("svc-a", 7, 3), *p2 = make("svc-b", 5, 1);
    uint8_t *buf;
    size_t len, i, j;

    assert_non_null(b);
    assert_int_equal(otlp_batch_add(b, p1), 0);
    assert_int_equal(otlp_batch_add(b, p2), 0);
    profile_free(p1);
    profile_free(p2);
    assert_int_equal(otlp_batch_nprofiles(b), 2);
    assert_int_equal(otlp_batch_encode(b, &buf, &len), 0);
    otlp_batch_free(b);

    Request *r =
        opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack(
            NULL, len, buf);
    assert_non_null(r);
    const Dictionary *d = r->dictionary;
    assert_non_null(d);

    /* zero values at index 0 */
    assert_string_equal(d->string_table[0], "");
    assert_true(d->n_mapping_table >= 1 && d->mapping_table[0]->filename_strindex == 0);
    assert_true(d->n_location_table >= 1 && d->location_table[0]->n_lines == 0);
    assert_true(d->n_function_table >= 1 && d->function_table[0]->name_strindex == 0);
    assert_true(d->n_stack_table >= 1 && d->stack_table[0]->n_location_indices == 0);
    assert_true(d->n_attribute_table >= 1 && d->attribute_table[0]->key_strindex == 0);
    assert_int_equal(d->n_link_table, 1);

    /* deduplicated across the two services: 1 + 2 mappings, 1 + 2 functions,
     * 1 + 3 locations, 1 + 2 stacks; strings unique */
    assert_int_equal(d->n_mapping_table, 3);
    assert_int_equal(d->n_function_table, 3);
    assert_int_equal(d->n_location_table, 4);
    assert_int_equal(d->n_stack_table, 3);
    for (i = 0; i < d->n_string_table; i++)
        for (j = i + 1; j < d->n_string_table; j++)
            assert_string_not_equal(d->string_table[i], d->string_table[j]);

    /* build-ids as mapping attributes */
    for (i = 1; i < d->n_mapping_table; i++) {
        const Opentelemetry__Proto__Profiles__V1development__Mapping *m = d->mapping_table[i];
        assert_int_equal(m->n_attribute_indices, 1);
        const Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit *kv =
            d->attribute_table[m->attribute_indices[0]];
        assert_string_equal(str(d, kv->key_strindex), "process.executable.build_id.gnu");
        const char *want =
            strcmp(str(d, m->filename_strindex), "/usr/bin/hot") == 0 ? "aa11" : "cc22";
        assert_string_equal(kv->value->string_value, want);
    }

    assert_int_equal(r->n_resource_profiles, 2);
    for (i = 0; i < 2; i++) {
        const Opentelemetry__Proto__Profiles__V1development__ResourceProfiles *rp =
            r->resource_profiles[i];
        const char *svc = i == 0 ? "svc-a" : "svc-b";
        int64_t want_total = i == 0 ? 10 : 6, total = 0;
        bool has_svc = false, has_host = false;

        for (j = 0; j < rp->resource->n_attributes; j++) {
            const Opentelemetry__Proto__Common__V1__KeyValue *kv = rp->resource->attributes[j];
            assert_string_not_equal(kv->key, "process.pid"); /* varies: not a resource attr */
            if (strcmp(kv->key, "service.name") == 0) {
                assert_string_equal(kv->value->string_value, svc);
                has_svc = true;
            }
            if (strcmp(kv->key, "host.name") == 0) {
                assert_string_equal(kv->value->string_value, "h1");
                has_host = true;
            }
        }
        assert_true(has_svc && has_host);
        assert_int_equal(rp->n_scope_profiles, 1);
        assert_string_equal(rp->scope_profiles[0]->scope->name, "stoke");
        assert_int_equal(rp->scope_profiles[0]->n_profiles, 1);
        const Opentelemetry__Proto__Profiles__V1development__Profile *pr =
            rp->scope_profiles[0]->profiles[0];
        assert_string_equal(str(d, pr->sample_type->type_strindex), "cpu");
        assert_string_equal(str(d, pr->sample_type->unit_strindex), "nanoseconds");
        assert_string_equal(str(d, pr->period_type->type_strindex), "cpu");
        assert_int_equal(pr->period, PERIOD_NS);
        assert_int_equal(pr->time_unix_nano, START_NS);
        assert_int_equal(pr->duration_nano, DUR_NS);
        assert_int_equal(pr->profile_id.len, 16);
        assert_int_equal(pr->n_samples, 2);
        for (j = 0; j < pr->n_samples; j++) {
            const Opentelemetry__Proto__Profiles__V1development__Sample *s = pr->samples[j];
            assert_true(s->stack_index > 0 && (size_t)s->stack_index < d->n_stack_table);
            assert_int_equal(s->n_values, 1);
            assert_int_equal(s->values[0] % (int64_t)PERIOD_NS, 0);
            total += s->values[0] / (int64_t)PERIOD_NS;
            /* the pid label is a sample attribute, as an integer */
            assert_int_equal(s->n_attribute_indices, 1);
            const Opentelemetry__Proto__Profiles__V1development__KeyValueAndUnit *kv =
                d->attribute_table[s->attribute_indices[0]];
            assert_string_equal(str(d, kv->key_strindex), "process.pid");
            assert_int_equal(kv->value->value_case,
                             OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
            assert_true(kv->value->int_value == 100 || kv->value->int_value == 200);
            /* the leaf of a two-frame stack is hot_loop */
            const Opentelemetry__Proto__Profiles__V1development__Stack *st =
                d->stack_table[s->stack_index];
            if (st->n_location_indices == 2) {
                const Opentelemetry__Proto__Profiles__V1development__Location *l =
                    d->location_table[st->location_indices[0]];
                assert_int_equal(l->n_lines, 1);
                assert_string_equal(
                    str(d, d->function_table[l->lines[0]->function_index]->name_strindex),
                    "hot_loop");
                assert_int_equal(l->lines[0]->line, 42);
                assert_int_equal(l->address, 0); /* resolved: a source position */
            }
        }
        assert_int_equal(total, want_total);
    }
    opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__free_unpacked(
        r, NULL);
    free(buf);
}

static void test_empty_profile_skipped(void **state)
{
    (void)state;
    struct otlp_batch *b = otlp_batch_new();
    struct profile *p = profile_new("idle", START_NS, DUR_NS, PERIOD_NS);
    assert_int_equal(otlp_batch_add(b, p), 0);
    assert_int_equal(otlp_batch_nprofiles(b), 0);
    profile_free(p);
    otlp_batch_free(b);
}

static void test_attr_names(void **state)
{
    (void)state;
    int is_int;
    assert_string_equal(otlp_attr_name("service_name", &is_int), "service.name");
    assert_string_equal(otlp_attr_name("container_id", &is_int), "container.id");
    assert_string_equal(otlp_attr_name("pod_uid", &is_int), "k8s.pod.uid");
    assert_string_equal(otlp_attr_name("process_executable_name", &is_int),
                        "process.executable.name");
    assert_int_equal(is_int, 0);
    assert_string_equal(otlp_attr_name("pid", &is_int), "process.pid");
    assert_int_equal(is_int, 1);
    assert_string_equal(otlp_attr_name("systemd_unit", &is_int), "systemd_unit");
}

static void test_response(void **state)
{
    (void)state;
    int64_t rej;
    char msg[15];
    /* partial_success { rejected_profiles: 3, error_message: "bad\nprofile ids" } */
    static const uint8_t partial[] = {0x0a, 0x13, 0x08, 0x03, 0x12, 0x0f, 'b', 'a', 'd', '\n', 'p',
                                      'r',  'o',  'f',  'i',  'l',  'e',  ' ', 'i', 'd', 's'};
    assert_int_equal(otlp_response_parse(NULL, 0, &rej, msg, sizeof(msg)), 0);
    assert_int_equal(rej, 0);
    assert_int_equal(otlp_response_parse(partial, sizeof(partial), &rej, msg, sizeof(msg)), 0);
    assert_int_equal(rej, 3);
    assert_string_equal(msg, "bad?profile id"); /* truncated, no control characters */
    assert_int_equal(otlp_response_parse((const uint8_t *)"<html>oops", 10, &rej, msg, sizeof(msg)),
                     -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_empty_profile_skipped),
        cmocka_unit_test(test_attr_names),
        cmocka_unit_test(test_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
