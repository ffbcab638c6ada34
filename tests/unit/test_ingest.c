/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/: Pyroscope names, multipart bodies, folded stacks, the OTLP
 * reader against the agent's own OTLP writer (exporter/otlp.c), and the
 * receiver's answers (receiver_handle, no socket) with what it writes. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/gzip.h"
#include "common/pbjson.h"
#include "exporter/otlp.h"
#include "exporter/profile.h"
#include "ingest/batch.h"
#include "ingest/otlp_read.h"
#include "ingest/pyroscope_ingest.h"
#include "ingest/receiver.h"
#include "otlp/profiles_service.pb-c.h"

/* ---- names ------------------------------------------------------------ */

static void test_names(void **st)
{
    static const struct {
        const char *name, *service, *labels; /* labels "k=v;k=v" after service_name; NULL: error */
        const char *err;
    } cases[] = {
        {"app", "app", "", NULL},
        {"app.cpu", "app", "", NULL},
        {"app.alloc_objects{}", "app", "", NULL},
        {"my.app.server{env=prod,region=eu-1}", "my.app.server", "env=prod;region=eu-1", NULL},
        {"app.cpu{a=b, c=d,}", "app", "a=b;c=d", NULL},
        {"app{service_name=other,k.x=v}", "other", "k_x=v", NULL},
        {"app{empty=}", "app", "", NULL},
        {"", NULL, NULL, "required"},
        {"{a=b}", NULL, NULL, "no application name"},
        {".cpu", NULL, NULL, "no application name"},
        {"app{a=b", NULL, NULL, "must end"},
        {"app{1a=b}", NULL, NULL, "bad label name"},
        {"app{a}", NULL, NULL, "without '='"},
        {"app{a=b,a=c}", NULL, NULL, "twice"},
        {"app{__name__=x}", NULL, NULL, "reserved"},
        {"a pp", NULL, NULL, "application name has"},
        {"app{a=b{}", NULL, NULL, "brace"},
    };
    (void)st;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ingest_batch b = {0};
        struct seg_label l[PYRO_MAX_LABELS + 1];
        const char *svc = NULL;
        size_t n = 0;
        char err[256] = "", got[512] = "";
        int rc = pyro_parse_name(&b, cases[i].name, &svc, l, &n, err, sizeof(err));
        if (!cases[i].service) {
            if (rc != -EINVAL || !strstr(err, cases[i].err))
                fail_msg("%s: want an error with '%s', got %d '%s'", cases[i].name, cases[i].err,
                         rc, err);
        } else {
            if (rc != 0)
                fail_msg("%s: %s", cases[i].name, err);
            assert_string_equal(svc, cases[i].service);
            assert_string_equal(l[0].name, "service_name");
            assert_string_equal(l[0].value, cases[i].service);
            for (size_t k = 1; k < n; k++)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s=%s", k > 1 ? ";" : "",
                         l[k].name, l[k].value);
            assert_string_equal(got, cases[i].labels);
        }
        ingest_batch_free(&b);
    }
}

/* ---- multipart -------------------------------------------------------- */

static void test_multipart(void **st)
{
    (void)st;
    const char *body = "preamble\r\n--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"profile\"; filename=\"p.pprof\"\r\n"
                       "Content-Type: application/octet-stream\r\n\r\n"
                       "a\r\n--b\0c\r\n--XyZ\r\n"
                       "content-disposition: form-data; name=sample_type_config\r\n\r\n"
                       "{}\r\n--XyZ--\r\n";
    size_t len = 0;
    /* the body holds a NUL: measure to the closing delimiter */
    const char *end = "--XyZ--\r\n";
    for (const char *p = body;; p++)
        if (!memcmp(p, end, strlen(end))) {
            len = (size_t)(p - body) + strlen(end);
            break;
        }
    struct ingest_batch b = {0};
    struct multipart_part parts[MULTIPART_MAX_PARTS];
    size_t np = 0;
    char err[256] = "";
    int rc = multipart_parse(&b, "multipart/form-data; boundary=\"XyZ\"", (const uint8_t *)body,
                             len, parts, &np, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(np, 2);
    assert_string_equal(parts[0].name, "profile");
    assert_string_equal(parts[0].filename, "p.pprof");
    assert_int_equal(parts[0].len, 8); /* "a\r\n--b\0c": a lookalike, not the delimiter */
    assert_memory_equal(parts[0].data, "a\r\n--b\0c", 8);
    assert_string_equal(parts[1].name, "sample_type_config");
    assert_int_equal(parts[1].len, 2);

    /* LF line ends, as some clients write them */
    const char *lf = "--B\nContent-Disposition: form-data; name=\"profile\"\n\nxyz\n--B--\n";
    rc = multipart_parse(&b, "multipart/form-data; boundary=B", (const uint8_t *)lf, strlen(lf),
                         parts, &np, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(np, 1);
    assert_int_equal(parts[0].len, 3);

    static const struct {
        const char *ct, *body, *err;
    } bad[] = {
        {"multipart/form-data", "--B--", "no boundary"},
        {"multipart/form-data; boundary=B", "nothing here", "no boundary delimiter"},
        {"multipart/form-data; boundary=B", "--B\r\n\r\nabc\r\n--B--", "has no name"},
        {"multipart/form-data; boundary=B",
         "--B\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nabc", "truncated"},
        {"multipart/form-data; boundary=B", "--B--", "no parts"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc = multipart_parse(&b, bad[i].ct, (const uint8_t *)bad[i].body, strlen(bad[i].body),
                             parts, &np, err, sizeof(err));
        if (rc != -EINVAL || !strstr(err, bad[i].err))
            fail_msg("case %zu: want '%s', got %d '%s'", i, bad[i].err, rc, err);
    }
    ingest_batch_free(&b);
}

/* ---- folded ------------------------------------------------------------ */

static const char *fn_name(const Perftools__Profiles__Profile *p, uint64_t loc_id)
{
    const Perftools__Profiles__Location *l = p->location[loc_id - 1];
    assert_int_equal(l->id, loc_id);
    const Perftools__Profiles__Function *f = p->function[l->line[0]->function_id - 1];
    return p->string_table[f->name];
}

static void test_folded(void **st)
{
    (void)st;
    struct ingest_batch b = {0};
    struct folded_types t = {.type = "samples",
                             .unit = "count",
                             .type2 = "cpu",
                             .unit2 = "nanoseconds",
                             .ptype = "cpu",
                             .punit = "nanoseconds",
                             .period = 10000000};
    Perftools__Profiles__Profile *p = NULL;
    uint64_t rows = 0;
    char err[256] = "";
    /* a frame named like a type string ("cpu") must stay a frame */
    const char *text = "main;cpu;leaf 7\r\n\nmain 3\nmain;zero 0\n";
    int rc = ingest_folded(&b, text, strlen(text), &t, &p, &rows, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(seg_pprof_check(p, err, sizeof(err)), 0);
    assert_int_equal(rows, 2); /* the 0 count is skipped */
    assert_int_equal(p->n_sample, 2);
    assert_int_equal(p->sample[0]->n_location_id, 3);
    assert_string_equal(fn_name(p, p->sample[0]->location_id[0]), "leaf"); /* leaf first */
    assert_string_equal(fn_name(p, p->sample[0]->location_id[1]), "cpu");
    assert_string_equal(fn_name(p, p->sample[0]->location_id[2]), "main");
    assert_int_equal(p->sample[0]->value[0], 7);
    assert_int_equal(p->sample[0]->value[1], 70000000);
    assert_string_equal(p->string_table[p->sample_type[1]->type], "cpu");
    assert_string_equal(p->string_table[p->period_type->unit], "nanoseconds");
    assert_int_equal(p->period, 10000000);

    static const struct {
        const char *text, *err;
    } bad[] = {
        {"a;b", "expected"},       {"a;b x\n", "not a decimal"},
        {" 5\n", "empty stack"},   {"a;;b 1\n", "empty frame"},
        {";a 1\n", "empty frame"}, {"a;b 99999999999999999999\n", "decimal"},
        {"ok 1\nbad\n", "line 2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rc = ingest_folded(&b, bad[i].text, strlen(bad[i].text), &t, &p, &rows, err, sizeof(err));
        if (rc != -EINVAL || !strstr(err, bad[i].err))
            fail_msg("%s: want '%s', got %d '%s'", bad[i].text, bad[i].err, rc, err);
    }
    ingest_batch_free(&b);
}

/* ---- OTLP: the agent's own writer, read back --------------------------- */

static uint32_t loc(struct profile *p, const char *fn, uint64_t off)
{
    struct sym_result r = {
        .kind = SYM_USER, .mapping = "/usr/bin/hot", .build_id = "aa11", .file_offset = off};
    r.nframes = 1;
    r.frames[0].function = fn;
    r.frames[0].file = "hot.c";
    r.frames[0].line = 42;
    uint32_t id = profile_location(p, &r);
    assert_true(id > 0);
    return id;
}

static struct profile *make(const char *svc, uint64_t n1, uint64_t n2)
{
    struct profile *p = profile_new(svc, 1700000000000000000ULL, 5000000000ULL, 10000000);
    struct label_set a = {0};
    uint32_t s1[2], s2[1];
    s1[0] = loc(p, "hot_loop", 0x1100);
    s1[1] = loc(p, "main", 0x2200);
    s2[0] = loc(p, "main", 0x2200);
    label_set_put(&a, "service_name", svc);
    label_set_put(&a, "host_name", "h1");
    label_set_put(&a, "thread_id", "77");
    assert_int_equal(profile_add(p, s1, 2, &a, n1), 0);
    assert_int_equal(profile_add(p, s2, 1, &a, n2), 0);
    label_set_clear(&a);
    return p;
}

static void test_otlp_round_trip(void **st)
{
    (void)st;
    struct otlp_batch *ob = otlp_batch_new();
    struct profile *p1 = make("api", 30, 10), *p2 = make("db", 5, 0);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(otlp_batch_add(ob, p1), 0);
    assert_int_equal(otlp_batch_add(ob, p2), 0);
    assert_int_equal(otlp_batch_encode(ob, &body, &len), 0);

    struct ingest_batch b = {0};
    char err[256] = "";
    int rc = otlp_read(body, len, 1, &b, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(ingest_batch_check(&b, err, sizeof(err)), 0);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.rejected, 0);
    for (size_t i = 0; i < b.n; i++) {
        const struct ingest_profile *ip = &b.v[i];
        const Perftools__Profiles__Profile *p = ip->p;
        bool api = !strcmp(ip->service, "api");
        assert_true(api || !strcmp(ip->service, "db"));
        assert_int_equal(ip->time_ms, 1700000000000);
        int64_t total = 0, hot = 0;
        bool tid = false;
        for (size_t s = 0; s < p->n_sample; s++) {
            total += p->sample[s]->value[0];
            if (!strcmp(fn_name(p, p->sample[s]->location_id[0]), "hot_loop"))
                hot += p->sample[s]->value[0];
            for (size_t k = 0; k < p->sample[s]->n_label; k++)
                tid |= !strcmp(p->string_table[p->sample[s]->label[k]->key], "thread_id") &&
                       !strcmp(p->string_table[p->sample[s]->label[k]->str], "77");
        }
        /* values in cpu nanoseconds: samples x period */
        assert_int_equal(total, api ? 40 * 10000000 : 5 * 10000000);
        assert_int_equal(hot, api ? 30 * 10000000 : 5 * 10000000);
        assert_string_equal(p->string_table[p->sample_type[0]->type], "cpu");
        bool host = false;
        for (size_t k = 0; k < ip->nlabels; k++) {
            host |= !strcmp(ip->labels[k].name, "host_name") && !strcmp(ip->labels[k].value, "h1");
            /* a label every sample shares travels as a resource attribute */
            tid |= !strcmp(ip->labels[k].name, "thread_id") && !strcmp(ip->labels[k].value, "77");
        }
        assert_true(host); /* host.name back to host_name */
        assert_true(tid);  /* thread.id back to thread_id */
    }
    ingest_batch_free(&b);

    /* not the message: refused whole */
    rc = otlp_read((const uint8_t *)"\xff\xff\xff", 3, 1, &b, err, sizeof(err));
    assert_int_equal(rc, -EBADMSG);
    assert_non_null(strstr(err, "ExportProfilesServiceRequest"));
    ingest_batch_free(&b);
    free(body);
    otlp_batch_free(ob);
    profile_free(p1);
    profile_free(p2);
}

/* ---- OTLP/HTTP JSON: the same profiles as the protobuf body ---------------- */

static int64_t batch_total(const struct ingest_batch *b, const char *service)
{
    int64_t t = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!strcmp(b->v[i].service, service))
            for (size_t s = 0; s < b->v[i].p->n_sample; s++)
                t += b->v[i].p->sample[s]->value[0];
    return t;
}

static void test_otlp_json(void **st)
{
    (void)st;
    struct otlp_batch *ob = otlp_batch_new();
    struct profile *p1 = make("api", 30, 10), *p2 = make("db", 5, 0);
    uint8_t *body = NULL;
    size_t len = 0;
    char err[512] = "";
    assert_int_equal(otlp_batch_add(ob, p1), 0);
    assert_int_equal(otlp_batch_add(ob, p2), 0);
    assert_int_equal(otlp_batch_encode(ob, &body, &len), 0);

    /* the exporter's body as JSON: protojson writes bytes in base64, OTLP
     * its ids in hex, so the profile ids are cleared first */
    Opentelemetry__Proto__Collector__Profiles__V1development__ExportProfilesServiceRequest *req =
        opentelemetry__proto__collector__profiles__v1development__export_profiles_service_request__unpack(
            NULL, len, body);
    assert_non_null(req);
    for (size_t r = 0; r < req->n_resource_profiles; r++)
        for (size_t s = 0; s < req->resource_profiles[r]->n_scope_profiles; s++)
            for (size_t k = 0; k < req->resource_profiles[r]->scope_profiles[s]->n_profiles; k++)
                req->resource_profiles[r]->scope_profiles[s]->profiles[k]->profile_id.len = 0;
    struct wbuf js = {0};
    pbjson_encode(&req->base, &js);
    assert_non_null(strstr((const char *)js.p, "\"resourceProfiles\""));

    struct ingest_batch pb = {0}, jb = {0};
    assert_int_equal(otlp_read(body, len, 1, &pb, err, sizeof(err)), 0);
    int rc = otlp_read_json(js.p, js.len, 1, &jb, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(ingest_batch_check(&jb, err, sizeof(err)), 0);
    assert_int_equal(jb.n, pb.n);
    assert_int_equal(jb.n, 2);
    for (size_t i = 0; i < jb.n; i++) {
        assert_string_equal(jb.v[i].service, pb.v[i].service);
        assert_int_equal(jb.v[i].time_ms, pb.v[i].time_ms);
        assert_int_equal(jb.v[i].nlabels, pb.v[i].nlabels);
        assert_int_equal(jb.v[i].p->n_sample, pb.v[i].p->n_sample);
    }
    assert_int_equal(batch_total(&jb, "api"), 40 * 10000000);
    assert_int_equal(batch_total(&jb, "api"), batch_total(&pb, "api"));
    assert_int_equal(batch_total(&jb, "db"), batch_total(&pb, "db"));
    ingest_batch_free(&pb);
    ingest_batch_free(&jb);
    wb_free(&js);
    protobuf_c_message_free_unpacked(&req->base, NULL);

    /* OTLP's own rules: ids in hex, 64-bit numbers as numbers or strings,
     * unknown fields ignored, original field names taken too */
    const char *lit =
        "{\"resourceProfiles\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
        "\"value\":{\"stringValue\":\"lit\"}}]},\"futureField\":[1,{\"x\":null}],"
        "\"scopeProfiles\":[{\"profiles\":[{\"profileId\":\"0102030405060708090A0B0C0D0E0F10\","
        "\"sampleType\":{\"typeStrindex\":1,\"unitStrindex\":2},\"timeUnixNano\":"
        "1700000000000000000,"
        "\"samples\":[{\"stackIndex\":1,\"values\":[\"7\"]},{\"stack_index\":1,\"values\":[5]}]}]"
        "}]}],"
        "\"dictionary\":{\"stringTable\":[\"\",\"cpu\",\"nanoseconds\",\"f\"],"
        "\"functionTable\":[{},{\"nameStrindex\":3}],\"locationTable\":[{},{\"lines\":[{"
        "\"functionIndex\":1}]}],\"stackTable\":[{},{\"locationIndices\":[1]}],\"linkTable\":[{"
        "\"traceId\":\"00112233445566778899aabbccddeeff\",\"spanId\":\"0011223344556677\"}]}}";
    rc = otlp_read_json((const uint8_t *)lit, strlen(lit), 1, &jb, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    if (jb.n != 1)
        fail_msg("%zu profiles, %lld rejected: %s", jb.n, (long long)jb.rejected, jb.why_rejected);
    assert_string_equal(jb.v[0].service, "lit");
    assert_int_equal(jb.v[0].time_ms, 1700000000000);
    assert_int_equal(batch_total(&jb, "lit"), 12);
    ingest_batch_free(&jb);

    /* bad input: refused whole, the problem named */
    static const struct {
        const char *body, *want;
        int rc;
    } bad[] = {
        {"{\"resourceProfiles\":[", "not valid JSON (at byte", -EBADMSG},
        {"[]", "expected a JSON object", -EBADMSG},
        {"", "empty", -EBADMSG},
        {"{\"resourceProfiles\":{}}", "resource_profiles: expected an array", -EBADMSG},
        {"{\"resourceProfiles\":[{\"scopeProfiles\":[{\"profiles\":[{\"profileId\":\"abc\"}]}]}]}",
         "profile_id: 'abc' is not hex", -EBADMSG},
        {"{\"resourceProfiles\":[{\"scopeProfiles\":[{\"profiles\":[{\"period\":\"soon\"}]}]}]}",
         "period: 'soon' is not an integer", -EBADMSG},
        {"{\"resourceProfiles\":[{\"scopeProfiles\":[{\"profiles\":[{\"period\":1.5}]}]}]}",
         "period: 1.5 is not an integer", -EBADMSG},
        {"{\"dictionary\":{\"stringTable\":[1]}}", "string_table: expected a string", -EBADMSG},
        {"{\"resourceProfiles\":[],\"resourceProfiles\":[]}", "given twice", -EBADMSG},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        rc = otlp_read_json((const uint8_t *)bad[i].body, strlen(bad[i].body), 1, &jb, err,
                            sizeof(err));
        if (rc != bad[i].rc || !strstr(err, bad[i].want))
            fail_msg("case %zu: want %d '%s', got %d '%s'", i, bad[i].rc, bad[i].want, rc, err);
        assert_int_equal(jb.n, 0);
        ingest_batch_free(&jb);
    }
    /* more values than the decoder builds a tree for: -EFBIG before parsing */
    size_t n = PBJSON_MAX_VALUES + 10, bl = 2 * n + 16;
    char *many = malloc(bl);
    assert_non_null(many);
    size_t o = (size_t)sprintf(many, "{\"a\":[");
    for (size_t i = 0; i < n; i++)
        many[o++] = '0', many[o++] = ',';
    many[o - 1] = ']';
    many[o++] = '}';
    assert_int_equal(otlp_read_json((const uint8_t *)many, o, 1, &jb, err, sizeof(err)), -EFBIG);
    assert_non_null(strstr(err, "JSON values"));
    ingest_batch_free(&jb);
    free(many);
    free(body);
    otlp_batch_free(ob);
    profile_free(p1);
    profile_free(p2);
}

/* ---- a pushed pprof's own service_name labels yield to the request's ---- */

static void test_service_label(void **st)
{
    (void)st;
    char *strings[] = {"", "samples", "count", "main", "service_name", "other", "env", "prod"};
    Perftools__Profiles__ValueType vt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT, *vts[] = {&vt};
    Perftools__Profiles__Function fn = PERFTOOLS__PROFILES__FUNCTION__INIT, *fns[] = {&fn};
    Perftools__Profiles__Line line = PERFTOOLS__PROFILES__LINE__INIT, *lines[] = {&line};
    Perftools__Profiles__Location loc = PERFTOOLS__PROFILES__LOCATION__INIT, *locs[] = {&loc};
    Perftools__Profiles__Label l1 = PERFTOOLS__PROFILES__LABEL__INIT,
                               l2 = PERFTOOLS__PROFILES__LABEL__INIT, *labels[] = {&l1, &l2};
    Perftools__Profiles__Sample sm = PERFTOOLS__PROFILES__SAMPLE__INIT, *sms[] = {&sm};
    Perftools__Profiles__Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
    uint64_t loc_ids[] = {1};
    int64_t values[] = {5};
    vt.type = 1, vt.unit = 2;
    fn.id = 1, fn.name = 3;
    line.function_id = 1;
    loc.id = 1, loc.n_line = 1, loc.line = lines;
    l1.key = 4, l1.str = 5; /* service_name=other */
    l2.key = 6, l2.str = 7; /* env=prod */
    sm.n_location_id = 1, sm.location_id = loc_ids, sm.n_value = 1, sm.value = values;
    sm.n_label = 2, sm.label = labels;
    p.n_sample_type = 1, p.sample_type = vts, p.n_sample = 1, p.sample = sms;
    p.n_function = 1, p.function = fns, p.n_location = 1, p.location = locs;
    p.n_string_table = 8, p.string_table = strings;
    size_t n = perftools__profiles__profile__get_packed_size(&p);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    perftools__profiles__profile__pack(&p, buf);

    struct ingest_batch b = {0};
    Perftools__Profiles__Profile *got = NULL;
    char err[256] = "";
    assert_int_equal(pyro_pprof(&b, buf, n, 1 << 20, &got, err, sizeof(err)), 0);
    assert_int_equal(ingest_push(&b, &(struct ingest_profile){.service = "svc", .p = got}), 0);
    assert_int_equal(ingest_batch_check(&b, err, sizeof(err)), 0);
    assert_int_equal(got->sample[0]->n_label, 1); /* service_name=other is gone */
    assert_string_equal(got->string_table[got->sample[0]->label[0]->key], "env");
    ingest_batch_free(&b); /* the label moved out is freed too (ASan: no leak) */
    free(buf);
}

/* ---- gzip's output cap (common/gzip.c) ------------------------------------ */

static void test_gzip_cap(void **st)
{
    (void)st;
    static const size_t max = 1 << 20;
    static const size_t sizes[] = {max - 1, max, max + 1, max + 100, 3 * max};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *in = calloc(1, sizes[i]), *gz = NULL, *out = NULL;
        size_t gzlen = 0, outlen = 0;
        assert_non_null(in);
        assert_int_equal(gzip_compress(in, sizes[i], &gz, &gzlen), 0);
        int rc = gzip_decompress(gz, gzlen, max, &out, &outlen);
        if (sizes[i] <= max) {
            assert_int_equal(rc, 0);
            assert_int_equal(outlen, sizes[i]);
        } else if (rc != -EFBIG) {
            fail_msg("%zu bytes with a %zu cap: %d, %zu bytes out", sizes[i], max, rc, outlen);
        }
        free(in);
        free(gz);
        free(out);
    }
}

/* ---- the receiver ----------------------------------------------------- */

struct kv {
    const char *k[8], *v[8];
};

static const char *lookup(void *ctx, const char *name)
{
    const struct kv *kv = ctx;
    for (int i = 0; i < 8 && kv->k[i]; i++)
        if (!strcasecmp(kv->k[i], name))
            return kv->v[i];
    return NULL;
}

struct req {
    struct kv h, q;
};
static const char *hdr(void *ctx, const char *n)
{
    return lookup(&((struct req *)ctx)->h, n);
}
static const char *qry(void *ctx, const char *n)
{
    return lookup(&((struct req *)ctx)->q, n);
}

static unsigned send(struct receiver *r, const char *path, struct req *rq, const void *body,
                     size_t len, char *msg, size_t msglen)
{
    struct rx_request q = {.method = "POST",
                           .path = path,
                           .header = hdr,
                           .param = qry,
                           .ctx = rq,
                           .body = body,
                           .len = len};
    struct rx_response rs;
    receiver_handle(r, &q, &rs);
    snprintf(msg, msglen, "%.*s", (int)rs.len, rs.body ? rs.body : "");
    free(rs.body);
    return rs.status;
}

/* with @bytes: their total size (segments and manifest entries) */
static size_t count_files_bytes(const char *dir, bool bytes)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             bytes ? "find '%s' -type f -printf '%%s\\n' | awk '{s+=$1} END {print s+0}'"
                   : "find '%s' -name '*.seg' 2>/dev/null | wc -l",
             dir);
    FILE *f = popen(cmd, "r");
    size_t n = 0;
    if (f) {
        if (fscanf(f, "%zu", &n) != 1)
            n = 0;
        pclose(f);
    }
    return n;
}

static void test_receiver(void **st)
{
    (void)st;
    char dir[] = "/tmp/stoke-test-ingest-XXXXXX", store_dir[600], msg[600];
    assert_non_null(mkdtemp(dir));
    snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
    struct store_opts so = {.url = store_dir};
    struct receiver_opts ro = {.max_decoded = 1 << 20,
                               .max_tenants = 2,
                               .upload = {.host = "rx", .flush_s = 60},
                               .store = &so};
    char err[256];
    struct receiver *r = receiver_new(&ro, err, sizeof(err));
    assert_non_null(r);

    const char *folded = "main;foo 3\nmain 1\n";
    struct req ok = {.q = {{"name", "from"}, {"svc{env=x}", "1700000000"}}};
    assert_int_equal(send(r, "/ingest", &ok, folded, strlen(folded), msg, sizeof(msg)), 200);

    /* every bad request: a 4xx naming the problem */
    static const struct {
        const char *path, *ct, *ce, *tenant, *name, *format, *body, *want;
        unsigned status;
    } bad[] = {
        {"/ingest", NULL, NULL, NULL, "a", "folded", "x;y z\n", "not a decimal", 400},
        {"/ingest", NULL, NULL, "bad/tenant", "a", "folded", "x 1\n", "X-Scope-OrgID", 400},
        {"/ingest", NULL, NULL, NULL, "a", "jfr", "x", "jfr: truncated chunk header", 400},
        {"/ingest", NULL, NULL, NULL, "a", "tree", "x", "format=tree", 415},
        {"/ingest", NULL, "br", NULL, "a", "folded", "x 1\n", "Content-Encoding", 415},
        {"/ingest", NULL, "gzip", NULL, "a", "folded", "x 1\n", "not gzip", 400},
        {"/ingest", "multipart/form-data; boundary=Q", NULL, NULL, "a", NULL, "--Q--", "no parts",
         400},
        {"/v1development/profiles", "text/plain", NULL, NULL, NULL, NULL, "{}", "application/json",
         415},
        {"/v1development/profiles", "application/json", NULL, NULL, NULL, NULL, "{\"a\":",
         "{\"code\":3,\"message\":\"ExportProfilesServiceRequest (JSON): body: not valid JSON",
         400},
        {"/push.v1.PusherService/Push", "application/json", NULL, NULL, NULL, NULL,
         "{\"series\":[{\"samples\":[{\"rawProfile\":\"@@\"}]}]}", "raw_profile: not base64", 400},
        {"/v1development/profiles", "application/x-protobuf", NULL, NULL, NULL, NULL, "\xff\xff",
         "ExportProfilesServiceRequest", 400},
        {"/push.v1.PusherService/Push", NULL, NULL, NULL, NULL, NULL, "x", "application/proto",
         415},
        {"/push.v1.PusherService/Push", "application/proto", NULL, NULL, NULL, NULL, "\xff\xff",
         "invalid_argument", 400},
        {"/other", NULL, NULL, NULL, NULL, NULL, "x", "not found", 404},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* lookup stops at the first NULL name: the arrays stay dense */
        struct req dense = {0};
        int h = 0, q = 0;
        if (bad[i].ct)
            dense.h.k[h] = "Content-Type", dense.h.v[h++] = bad[i].ct;
        if (bad[i].ce)
            dense.h.k[h] = "Content-Encoding", dense.h.v[h++] = bad[i].ce;
        if (bad[i].tenant)
            dense.h.k[h] = "X-Scope-OrgID", dense.h.v[h++] = bad[i].tenant;
        if (bad[i].name)
            dense.q.k[q] = "name", dense.q.v[q++] = bad[i].name;
        if (bad[i].format)
            dense.q.k[q] = "format", dense.q.v[q++] = bad[i].format;
        unsigned s =
            send(r, bad[i].path, &dense, bad[i].body, strlen(bad[i].body), msg, sizeof(msg));
        if (s != bad[i].status || !strstr(msg, bad[i].want))
            fail_msg("case %zu: want %u '%s', got %u '%s'", i, bad[i].status, bad[i].want, s, msg);
    }
    /* gzip past max_decoded: 413 */
    size_t big = (1 << 20) + 100;
    char *zeros = calloc(1, big);
    uint8_t *gz = NULL;
    size_t gzlen = 0;
    assert_int_equal(gzip_compress((const uint8_t *)zeros, big, &gz, &gzlen), 0);
    struct req gzr = {.h = {{"Content-Encoding"}, {"gzip"}}, .q = {{"name"}, {"a"}}};
    assert_int_equal(send(r, "/ingest", &gzr, gz, gzlen, msg, sizeof(msg)), 413);
    free(gz);
    free(zeros);
    /* tenants: two allowed (the default one counts), the third refused */
    struct req t1 = {.h = {{"X-Scope-OrgID"}, {"t1"}}, .q = {{"name"}, {"a"}}};
    struct req t2 = {.h = {{"X-Scope-OrgID"}, {"t2"}}, .q = {{"name"}, {"a"}}};
    assert_int_equal(send(r, "/ingest", &t1, folded, strlen(folded), msg, sizeof(msg)), 200);
    assert_int_equal(send(r, "/ingest", &t2, folded, strlen(folded), msg, sizeof(msg)), 503);
    assert_non_null(strstr(msg, "tenants"));

    struct receiver_stats rs;
    receiver_get_stats(r, &rs);
    assert_int_equal(rs.requests, 2);
    assert_int_equal(rs.profiles, 2);
    /* the counters /metrics shows: by protocol, class, reason, tenant */
    assert_int_equal(rs.answers[RX_INGEST][RX_2XX], 2);
    assert_int_equal(rs.answers[RX_OTLP_JSON][RX_4XX], 1);
    assert_int_equal(rs.answers[RX_PUSH_JSON][RX_4XX], 1);
    assert_int_equal(rs.answers[RX_OTHER][RX_4XX], 1);
    assert_int_equal(rs.answers[RX_INGEST][RX_5XX], 1); /* the third tenant */
    assert_int_equal(rs.refused[RX_TOO_LARGE], 1);
    assert_int_equal(rs.refused[RX_UNAVAILABLE], 1);
    assert_int_equal(rs.bytes_received[RX_INGEST] > 2 * strlen(folded), true);
    assert_int_equal(rs.samples, 4); /* two rows a push */
    struct receiver_tenant_stats ts[4];
    assert_int_equal(receiver_get_tenant_stats(r, ts, 4), 2);
    assert_string_equal(ts[1].name, "t1");
    assert_int_equal(ts[1].requests, 1);
    assert_int_equal(ts[1].samples, 2);
    receiver_free(r, 5000);
    char d1[700];
    snprintf(d1, sizeof(d1), "%s/default", store_dir);
    assert_int_equal(count_files_bytes(d1, false), 1); /* the good push, nothing of the bad ones */
    size_t object_bytes = count_files_bytes(d1, true);
    assert_true(object_bytes > 0);
    snprintf(d1, sizeof(d1), "%s/t1", store_dir);
    assert_int_equal(count_files_bytes(d1, false), 1);

    /* a store that is down: the queue fills, then 429 with Retry-After */
    char cmd[1400];
    ro.upload.flush_s = 1;
    /* the same push makes an object of the same size: one of them holds
     * more than 3/4 of this buffer, yet fits (a bigger one is dropped) */
    ro.upload.buffer_bytes = object_bytes + object_bytes / 8;
    r = receiver_new(&ro, err, sizeof(err));
    assert_non_null(r);
    unsigned s1 = send(r, "/ingest", &ok, folded, strlen(folded), msg, sizeof(msg));
    assert_int_equal(s1, 200); /* into the open object */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && touch '%s'", store_dir, store_dir);
    assert_int_equal(system(cmd), 0);
    usleep(1100 * 1000);
    receiver_tick(r); /* flush_s passed: the object is cut, its upload fails */
    struct rx_request q = {.method = "POST",
                           .path = "/ingest",
                           .header = hdr,
                           .param = qry,
                           .ctx = &ok,
                           .body = (const uint8_t *)folded,
                           .len = strlen(folded)};
    struct rx_response resp;
    receiver_handle(r, &q, &resp);
    assert_int_equal(resp.status, 429);
    assert_true(resp.retry_after > 0);
    free(resp.body);
    receiver_free(r, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),         cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_folded),        cmocka_unit_test(test_otlp_round_trip),
        cmocka_unit_test(test_service_label), cmocka_unit_test(test_gzip_cap),
        cmocka_unit_test(test_receiver),      cmocka_unit_test(test_otlp_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
