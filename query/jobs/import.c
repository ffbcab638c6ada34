/* SPDX-License-Identifier: Apache-2.0 */
#include "query/jobs/import.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/segment.h"
#include "common/file.h"
#include "common/gzip.h"

int query_import_file(struct store *st, const struct import_opts *o, const char *path, char *key,
                      size_t keylen, char *warn, size_t warnlen, char *err, size_t errlen)
{
    const char *tenant = o->tenant ? o->tenant : "default";
    const char *host = o->host ? o->host : "import";
    uint8_t *raw = NULL, *pb = NULL, *seg = NULL;
    size_t rawlen = 0, pblen = 0, seglen = 0;
    Perftools__Profiles__Profile *p = NULL;
    struct seg_writer *w = NULL;
    struct seg_footer *footer = NULL;
    char segkey[1024];
    int rc;

    if (warn && warnlen)
        warn[0] = 0;
    if (!o->service || !*o->service) {
        snprintf(err, errlen, "a service name is required");
        return -EINVAL;
    }
    if ((rc = read_file(path, IMPORT_MAX_BYTES, (char **)&raw, &rawlen))) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if ((rc = gzip_decompress(raw, rawlen, IMPORT_MAX_BYTES, &pb, &pblen))) {
        snprintf(err, errlen, "%s: gunzip: %s", path, strerror(-rc));
        goto out;
    }
    p = perftools__profiles__profile__unpack(NULL, pblen, pb);
    if (!p) {
        rc = -EBADMSG;
        snprintf(err, errlen, "%s: not a pprof profile", path);
        goto out;
    }
    char why[256];
    rc = seg_pprof_check(p, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, errlen, "%s: malformed pprof profile: %s", path,
                 why[0] ? why : strerror(-rc));
        goto out;
    }
    if (rc == SEG_PPROF_REPAIRED && warn && warnlen)
        snprintf(warn, warnlen, "%s: repaired: %s", path, why);
    int64_t t = o->time_ms;
    if (t == 0)
        t = p->time_nanos / 1000000;
    if (t == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (int64_t)ts.tv_sec * 1000;
    }
    struct seg_label labels[2] = {{"service_name", o->service}, {"host_name", host}};
    w = seg_writer_new(tenant, host);
    if (!w) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if ((rc = seg_writer_add_pprof(w, o->service, p, labels, 2, t))) {
        snprintf(err, errlen, "%s: adding to a segment: %s", path, strerror(-rc));
        goto out;
    }
    if ((rc = seg_writer_finish(w, &seg, &seglen, &footer))) {
        snprintf(err, errlen, "%s: encoding the segment: %s", path, strerror(-rc));
        goto out;
    }
    uint64_t h = seg_hash64(seg, seglen);
    int64_t start = footer->t_min_ms ? footer->t_min_ms : t;
    if ((rc = seg_object_key(segkey, sizeof(segkey), tenant, host, start, h)) < 0) {
        snprintf(err, errlen, "tenant or host not a safe path component");
        goto out;
    }
    if ((rc = store_put(st, segkey, seg, seglen))) {
        snprintf(err, errlen, "put %s: %s", segkey, st->err);
        goto out;
    }
    /* One object, as an agent's flush: readers find it by its footer. */
    if (key)
        snprintf(key, keylen, "%s", segkey);
    rc = 0;
out:
    seg_footer_free(footer);
    seg_writer_free(w);
    if (p)
        perftools__profiles__profile__free_unpacked(p, NULL);
    free(raw);
    free(pb);
    free(seg);
    return rc;
}
