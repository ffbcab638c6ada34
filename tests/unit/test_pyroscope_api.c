/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the Pyroscope API's pieces that need no store: the
 * protobuf JSON mapping of query/serve/connect.c (names, int64 as string or
 * number, enums, optional fields, repeated, nested, errors), Connect codes
 * and content types, and the conversion of a merged profile into
 * Pyroscope's FlameGraph levels and FlameGraphDiff.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/hash.h"
#include "pyroscope/querier.pb-c.h"
#include "query/serve/connect.h"
#include "query/engine/mprof.h"
#include "query/serve/pyroscope_api.h"
#include "query/engine/views.h"

static ProtobufCMessage *dec_ok(const ProtobufCMessageDescriptor *d, const char *json)
{
    ProtobufCMessage *m = NULL;
    char err[256] = "";
    int rc = connect_json_decode(d, (const uint8_t *)json, strlen(json), &m, err, sizeof(err));
    if (rc)
        fail_msg("%s: %s", json, err);
    return m;
}

static void test_json_request(void **state)
{
    /* Both the JSON name and the proto name; int64 as string and number. */
    static const char *bodies[] = {
        "{\"profileTypeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\","
        "\"labelSelector\":\"{service_name=\\\"api\\\"}\",\"start\":\"1700000000000\","
        "\"end\":1700000060000,\"maxNodes\":\"16\",\"format\":\"PROFILE_FORMAT_FLAMEGRAPH\","
        "\"unknownField\":[1,2]}",
        "{\"profile_typeID\":\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\","
        "\"label_selector\":\"{service_name=\\\"api\\\"}\",\"start\":1700000000000,"
        "\"end\":\"1700000060000\",\"max_nodes\":16,\"format\":1}",
    };
    for (size_t i = 0; i < 2; i++) {
        Querier__V1__SelectMergeStacktracesRequest *m =
            (void *)dec_ok(&querier__v1__select_merge_stacktraces_request__descriptor, bodies[i]);
        assert_string_equal(m->profile_typeid, "process_cpu:cpu:nanoseconds:cpu:nanoseconds");
        assert_string_equal(m->label_selector, "{service_name=\"api\"}");
        assert_int_equal(m->start, 1700000000000LL);
        assert_int_equal(m->end, 1700000060000LL);
        assert_int_equal(m->_max_nodes_case,
                         QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST___MAX_NODES_MAX_NODES);
        assert_int_equal(m->max_nodes, 16);
        assert_int_equal(m->format, QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FLAMEGRAPH);
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    /* Repeated, nested, optional enum, double step. */
    Querier__V1__SelectSeriesRequest *s =
        (void *)dec_ok(&querier__v1__select_series_request__descriptor,
                       "{\"groupBy\":[\"service_name\"],\"step\":15.5,"
                       "\"aggregation\":\"TIME_SERIES_AGGREGATION_TYPE_SUM\",\"limit\":null}");
    assert_int_equal(s->n_group_by, 1);
    assert_string_equal(s->group_by[0], "service_name");
    assert_true(s->step == 15.5);
    assert_int_equal(s->_aggregation_case,
                     QUERIER__V1__SELECT_SERIES_REQUEST___AGGREGATION_AGGREGATION);
    assert_int_equal(s->_limit_case, 0);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    Querier__V1__DiffRequest *d = (void *)dec_ok(&querier__v1__diff_request__descriptor,
                                                 "{\"left\":{\"start\":\"1\"},\"right\":{}}");
    assert_non_null(d->left);
    assert_non_null(d->right);
    assert_int_equal(d->left->start, 1);
    protobuf_c_message_free_unpacked(&d->base, NULL);
}

/* Unknown enum names are dropped as protojson's DiscardUnknown drops them:
 * the field keeps its default and an optional one stays unset. */
static void test_json_unknown_enum(void **state)
{
    Querier__V1__SelectMergeStacktracesRequest *m =
        (void *)dec_ok(&querier__v1__select_merge_stacktraces_request__descriptor,
                       "{\"format\":\"PROFILE_FORMAT_FROM_THE_FUTURE\",\"start\":\"5\"}");
    assert_int_equal(m->format, QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_UNSPECIFIED);
    assert_int_equal(m->start, 5);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    Querier__V1__SelectSeriesRequest *s =
        (void *)dec_ok(&querier__v1__select_series_request__descriptor,
                       "{\"aggregation\":\"TIME_SERIES_AGGREGATION_TYPE_MEDIAN\","
                       "\"exemplarType\":\"EXEMPLAR_TYPE_NEW\",\"step\":2}");
    assert_int_equal(s->_aggregation_case, 0);
    assert_int_equal(s->exemplar_type, 0);
    assert_true(s->step == 2);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    /* Still a type error: an enum is a name or a number. */
    ProtobufCMessage *bad = NULL;
    char err[128];
    assert_int_equal(connect_json_decode(&querier__v1__select_merge_stacktraces_request__descriptor,
                                         (const uint8_t *)"{\"format\":{}}", 13, &bad, err,
                                         sizeof(err)),
                     -EINVAL);
}

static void test_json_errors(void **state)
{
    static const char *bad[] = {
        "",
        "[]",
        "{\"start\":",
        "{\"start\":\"12x\"}",
        "{\"start\":1.5}",
        "{\"start\":1e300}",
        "{\"start\":\"99999999999999999999\"}",
        "{\"start\":true}",
        "{\"profileTypeID\":5}",
        "{\"maxNodes\":\"-\"}",
        "{\"start\":1,\"start\":2}",
        "{\"profileIdSelector\":\"x\"}",
        "{\"profileIdSelector\":[\"a\",7]}",
        "{\"stackTraceSelector\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ProtobufCMessage *m = NULL;
        char err[256] = "";
        int rc = connect_json_decode(&querier__v1__select_merge_stacktraces_request__descriptor,
                                     (const uint8_t *)bad[i], strlen(bad[i]), &m, err, sizeof(err));
        if (rc != -EINVAL)
            fail_msg("accepted %s", bad[i]);
        assert_null(m);
        assert_true(err[0] != '\0');
    }
}

static void test_json_encode(void **state)
{
    Types__V1__Point p1 = TYPES__V1__POINT__INIT, p0 = TYPES__V1__POINT__INIT;
    Types__V1__Point *pv[2] = {&p1, &p0};
    Types__V1__LabelPair lp = TYPES__V1__LABEL_PAIR__INIT;
    Types__V1__LabelPair *lpv[1] = {&lp};
    Types__V1__Series s = TYPES__V1__SERIES__INIT;
    Types__V1__Series *sv[1] = {&s};
    Querier__V1__SelectSeriesResponse r = QUERIER__V1__SELECT_SERIES_RESPONSE__INIT;
    struct wbuf b = {0};

    p1.value = 2.5;
    p1.timestamp = 1700000000000LL;
    lp.name = "service_name";
    lp.value = "a\"b";
    s.labels = lpv;
    s.n_labels = 1;
    s.points = pv;
    s.n_points = 2;
    r.series = sv;
    r.n_series = 1;
    connect_json_encode(&r.base, &b);
    /* int64 quoted, defaults left out, escaping, lowerCamelCase. */
    assert_string_equal(b.s, "{\"series\":[{\"labels\":[{\"name\":\"service_name\",\"value\":"
                             "\"a\\\"b\"}],\"points\":[{\"value\":2.5,\"timestamp\":"
                             "\"1700000000000\"},{}]}]}");
    free(b.p);

    Querier__V1__FlameGraphDiff fd = QUERIER__V1__FLAME_GRAPH_DIFF__INIT;
    fd.leftticks = 3;
    fd.max_self = 1;
    memset(&b, 0, sizeof(b));
    connect_json_encode(&fd.base, &b);
    assert_string_equal(b.s, "{\"maxSelf\":\"1\",\"leftTicks\":\"3\"}");
    free(b.p);
}

static void test_codes(void **state)
{
    enum connect_codec c;
    struct http_response r = {0};

    assert_int_equal(connect_codec_of("application/json", &c), 0);
    assert_int_equal(c, CONNECT_JSON);
    assert_int_equal(connect_codec_of("application/json; charset=utf-8", &c), 0);
    assert_int_equal(c, CONNECT_JSON);
    assert_int_equal(connect_codec_of("Application/Proto", &c), 0);
    assert_int_equal(c, CONNECT_PROTO);
    assert_int_equal(connect_codec_of("application/grpc", &c), -EINVAL);
    assert_int_equal(connect_codec_of("application/jsonx", &c), -EINVAL);
    assert_int_equal(connect_codec_of(NULL, &c), -EINVAL);
    assert_int_equal(connect_code_status(CONNECT_INVALID_ARGUMENT), 400);
    assert_int_equal(connect_code_status(CONNECT_NOT_FOUND), 404);
    assert_int_equal(connect_code_status(CONNECT_INTERNAL), 500);
    assert_int_equal(connect_code_status(CONNECT_UNAVAILABLE), 503);
    assert_int_equal(connect_code_status(CONNECT_RESOURCE_EXHAUSTED), 429);
    connect_error(&r, 0, CONNECT_INVALID_ARGUMENT, "x: %d", 5);
    assert_int_equal(r.status, 400);
    assert_string_equal((char *)r.body, "{\"code\":\"invalid_argument\",\"message\":\"x: 5\"}");
    free(r.body);
}

/* main -> a -> {b (self 30), c (self 10)}, main self 5, plus d alone 7. */
static struct mprof *sample_profile(int64_t scale)
{
    struct mprof *p = mprof_new(1);
    uint32_t main_ = intern_strn(&p->str, "main", 4), a = intern_strn(&p->str, "a", 1),
             b = intern_strn(&p->str, "b", 1), c = intern_strn(&p->str, "c", 1),
             d = intern_strn(&p->str, "d", 1);
    const uint32_t s1[] = {b, a, main_}, s2[] = {c, a, main_}, s3[] = {main_}, s4[] = {d};
    /* The id first: mprof_stack may move vals. */
    uint32_t id = mprof_stack(p, s1, 3);
    p->vals[id] += 30 * scale;
    id = mprof_stack(p, s2, 3);
    p->vals[id] += 10 * scale;
    id = mprof_stack(p, s3, 1);
    p->vals[id] += 5 * scale;
    id = mprof_stack(p, s4, 1);
    p->vals[id] += 7 * scale;
    return p;
}

static void test_flamegraph_levels(void **state)
{
    struct mprof *p = sample_profile(1);
    Querier__V1__FlameGraph *fg = NULL;

    assert_int_equal(pyroscope_flamegraph(p, 0, 100, &fg), 0);
    assert_int_equal(fg->total, 52);
    assert_int_equal(fg->max_self, 30);
    assert_int_equal(fg->n_levels, 4);
    /* names in visiting order: total main a b c d */
    assert_string_equal(fg->names[0], "total");
    static const char *order[] = {"total", "main", "a", "b", "c", "d"};
    const int64_t l0[] = {0, 52, 0, 0};
    const int64_t l1[] = {0, 45, 5, 1, 0, 7, 7, 5};    /* main at 0, d after it */
    const int64_t l2[] = {5, 40, 0, 2};                /* a after main's self */
    const int64_t l3[] = {5, 30, 30, 3, 0, 10, 10, 4}; /* b, c inside a */
    const int64_t *want[] = {l0, l1, l2, l3};
    const size_t wn[] = {4, 8, 4, 8};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(fg->levels[i]->n_values, wn[i]);
        for (size_t k = 0; k < wn[i]; k++) {
            int64_t v = fg->levels[i]->values[k];
            if (k % 4 == 3)
                assert_string_equal(fg->names[v], order[want[i][k]]);
            else
                assert_int_equal(v, want[i][k]);
        }
    }
    querier__v1__flame_graph__free_unpacked(fg, NULL);

    /* Cut to 3 nodes: the totals still add up through "other". */
    assert_int_equal(pyroscope_flamegraph(p, 0, 3, &fg), 0);
    assert_int_equal(fg->total, 52);
    int64_t selfsum = 0;
    for (size_t i = 0; i < fg->n_levels; i++)
        for (size_t k = 0; k + 3 < fg->levels[i]->n_values; k += 4)
            selfsum += fg->levels[i]->values[k + 2];
    assert_int_equal(selfsum, 52);
    querier__v1__flame_graph__free_unpacked(fg, NULL);

    /* An empty profile: one root of 0. */
    struct mprof *e = mprof_new(1);
    assert_int_equal(pyroscope_flamegraph(e, 0, 10, &fg), 0);
    assert_int_equal(fg->total, 0);
    querier__v1__flame_graph__free_unpacked(fg, NULL);
    mprof_free(e);
    mprof_free(p);
}

/* A stack 40 frames deep grows the level array past 16 and 32 entries while
 * a level is being written: under ASan (whose realloc always moves) a
 * pointer kept across the growth is a use after free. */
static void test_flamegraph_deep(void **state)
{
    struct mprof *p = mprof_new(1), *q = mprof_new(1);
    uint32_t frames[40];
    char name[16];
    for (int i = 0; i < 40; i++) {
        int n = snprintf(name, sizeof(name), "f%d", i);
        frames[i] = intern_strn(&p->str, name, (size_t)n);
        assert_int_equal(intern_strn(&q->str, name, (size_t)n), frames[i]);
    }
    uint32_t id = mprof_stack(p, frames, 40);
    p->vals[id] += 9;
    id = mprof_stack(q, frames, 40);
    q->vals[id] += 4;

    Querier__V1__FlameGraph *fg = NULL;
    assert_int_equal(pyroscope_flamegraph(p, 0, 100, &fg), 0);
    assert_int_equal(fg->total, 9);
    assert_int_equal(fg->n_levels, 41); /* total + 40 frames */
    assert_int_equal(fg->levels[40]->values[2], 9);
    querier__v1__flame_graph__free_unpacked(fg, NULL);

    Querier__V1__FlameGraphDiff *fd = NULL;
    assert_int_equal(pyroscope_flamegraph_diff(p, q, 100, &fd), 0);
    assert_int_equal(fd->leftticks, 9);
    assert_int_equal(fd->rightticks, 4);
    assert_int_equal(fd->n_levels, 41);
    querier__v1__flame_graph_diff__free_unpacked(fd, NULL);
    mprof_free(p);
    mprof_free(q);
}

static void test_flamegraph_diff(void **state)
{
    struct mprof *l = sample_profile(1), *r = sample_profile(2);
    Querier__V1__FlameGraphDiff *fd = NULL;

    assert_int_equal(pyroscope_flamegraph_diff(l, r, 100, &fd), 0);
    assert_int_equal(fd->leftticks, 52);
    assert_int_equal(fd->rightticks, 104);
    assert_int_equal(fd->total, 156);
    assert_int_equal(fd->max_self, 60);
    assert_int_equal(fd->levels[0]->n_values, 7);
    assert_int_equal(fd->levels[0]->values[1], 52);
    assert_int_equal(fd->levels[0]->values[4], 104);
    for (size_t i = 0; i < fd->n_levels; i++)
        assert_int_equal(fd->levels[i]->n_values % 7, 0);
    querier__v1__flame_graph_diff__free_unpacked(fd, NULL);
    /* Cut to 2 nodes: selfs still sum to each side's total. */
    assert_int_equal(pyroscope_flamegraph_diff(l, r, 2, &fd), 0);
    int64_t ls = 0, rs = 0;
    for (size_t i = 0; i < fd->n_levels; i++)
        for (size_t k = 0; k + 6 < fd->levels[i]->n_values; k += 7) {
            ls += fd->levels[i]->values[k + 2];
            rs += fd->levels[i]->values[k + 5];
        }
    assert_int_equal(ls, 52);
    assert_int_equal(rs, 104);
    querier__v1__flame_graph_diff__free_unpacked(fd, NULL);
    mprof_free(l);
    mprof_free(r);
}

/* A random profile: @ns stacks of @minlen..@maxlen frames over @alpha
 * names. Frame d from the root is picked by (@seed, d, s's bucket), with
 * 2^(d / @grow) buckets: shared near the root, each stack its own path
 * deeper. Values from @vseed, 0..9 (ties; 0s skipped), with @neg some < 0.
 * Stack s takes the path of stack (s * @stride) % ns, so two profiles of
 * one @seed share paths. */
struct rshape {
    uint32_t ns, minlen, maxlen, alpha, grow, stride;
    uint64_t seed;
};

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c)
{
    return hash64(a * 0x9e3779b97f4a7c15ull ^ hash64(b * 0xc2b2ae3d27d4eb4full ^ c));
}

static struct mprof *rand_profile(const struct rshape *sh, uint64_t vseed, bool neg)
{
    struct mprof *p = mprof_new(1);
    uint32_t *names = malloc(sh->alpha * sizeof(*names)), *f = malloc(sh->maxlen * sizeof(*f));
    char nb[16];

    assert_non_null(p);
    assert_true(names && f);
    for (uint32_t i = 0; i < sh->alpha; i++) {
        int n = snprintf(nb, sizeof(nb), "fn%u", (unsigned)(mix(vseed, i, 7) % (sh->alpha * 2)));
        names[i] = intern_strn(&p->str, nb, (size_t)n); /* some names twice */
    }
    for (uint32_t s = 0; s < sh->ns; s++) {
        uint32_t path = (uint32_t)(((uint64_t)s * sh->stride) % sh->ns);
        uint32_t len = sh->minlen + (uint32_t)(mix(vseed, s, 1) % (sh->maxlen - sh->minlen + 1));
        for (uint32_t d = 0; d < len; d++) {
            uint32_t nb_ = d / sh->grow < 31 ? 1u << (d / sh->grow) : sh->ns;
            uint32_t bucket = nb_ < sh->ns ? path % nb_ : path;
            f[len - 1 - d] = names[mix(sh->seed, d, bucket) % sh->alpha];
        }
        uint32_t id = mprof_stack(p, f, len);
        assert_int_not_equal(id, MPROF_NONE);
        int64_t v = (int64_t)(mix(vseed, s, 2) % 10);
        if (neg && mix(vseed, s, 3) % 50 == 0)
            v = -v;
        p->vals[id] += v;
    }
    free(names);
    free(f);
    return p;
}

/* The packed bytes of a FlameGraphDiff (malloc'd). */
static uint8_t *diff_bytes(const Querier__V1__FlameGraphDiff *fd, size_t *len)
{
    *len = querier__v1__flame_graph_diff__get_packed_size(fd);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    assert_int_equal(querier__v1__flame_graph_diff__pack(fd, b), *len);
    return b;
}

/* The diff tree built level by level, stopping under nodes the cut can
 * never show, answers byte for byte what the whole tree built stack by
 * stack answers: deep and wide random profiles, cuts from 0 nodes to more
 * than the tree has, ties everywhere, values < 0 (the fallback). */
static void test_flamegraph_diff_pruned_same(void **state)
{
    static const struct rshape shapes[] = {
        {20000, 50, 400, 50, 32, 7, 11}, /* deep, paths split slowly */
        {2000, 50, 400, 50, 4, 3, 12},   /* deep, every stack its own path */
        {5000, 1, 6, 300, 1, 5, 13},     /* wide and shallow */
        {3000, 0, 40, 4, 2, 1, 14},      /* few names: many ties */
    };
    static const uint32_t cuts[] = {0, 1, 2, 5, 64, 1024, 16384};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        for (int neg = 0; neg < 2; neg++) {
            struct mprof *l = rand_profile(&shapes[i], 100 + i, neg),
                         *r = rand_profile(&shapes[i], 200 + i, false);
            for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
                Querier__V1__FlameGraphDiff *a = NULL, *b = NULL;
                size_t na, nb;
                assert_int_equal(pyroscope_flamegraph_diff(l, r, cuts[c], &a), 0);
                assert_int_equal(pyroscope_flamegraph_diff_build(l, r, cuts[c], false, &b), 0);
                uint8_t *ba = diff_bytes(a, &na), *bb = diff_bytes(b, &nb);
                if (na != nb || memcmp(ba, bb, na))
                    fail_msg("shape %zu neg %d max_nodes %u: %zu bytes pruned, %zu whole", i, neg,
                             cuts[c], na, nb);
                assert_true(cuts[c] < 2 || b->n_levels > 1);
                free(ba);
                free(bb);
                querier__v1__flame_graph_diff__free_unpacked(a, NULL);
                querier__v1__flame_graph_diff__free_unpacked(b, NULL);
            }
            mprof_free(l);
            mprof_free(r);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_request),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_unknown_enum),
        cmocka_unit_test(test_json_encode),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_flamegraph_levels),
        cmocka_unit_test(test_flamegraph_diff),
        cmocka_unit_test(test_flamegraph_deep),
        cmocka_unit_test(test_flamegraph_diff_pruned_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
