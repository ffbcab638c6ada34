/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jfr2pprof OUTDIR RECORDING [LABELS] — test_jfr.sh's converter: runs
 * codec/jfr.h on a recording and writes each profile it returns as
 * OUTDIR/<profile type id of its first sample type, : as _>.pb.gz (gzip'd
 * pprof), then prints one line per profile: the id and its sample count,
 * and "event=... chunks=N events=N" (the stats). Built by the test against
 * build/libstoke.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/jfr.h"
#include "common/file.h"
#include "common/gzip.h"

int main(int argc, char **argv)
{
    char *b = NULL, *lb = NULL, err[256] = "";
    size_t len = 0, llen = 0;
    struct jfr_result *r = NULL;

    if (argc < 3) {
        fprintf(stderr, "usage: jfr2pprof OUTDIR RECORDING [LABELS]\n");
        return 2;
    }
    if (read_file(argv[2], 1u << 30, &b, &len) ||
        (argc > 3 && read_file(argv[3], 1u << 30, &lb, &llen))) {
        fprintf(stderr, "jfr2pprof: cannot read the input\n");
        return 1;
    }
    int e = jfr_convert((uint8_t *)b, len, (uint8_t *)lb, llen, NULL, &r, err, sizeof(err));
    if (e) {
        fprintf(stderr, "jfr2pprof: %s (%d)\n", err, e);
        return 1;
    }
    for (size_t i = 0; i < r->n; i++) {
        char id[128], path[4096];
        Perftools__Profiles__Profile *p = r->profiles[i].pprof;
        size_t plen = perftools__profiles__profile__get_packed_size(p), glen;
        uint8_t *pb = malloc(plen + 1), *gz = NULL;
        if (!pb || jfr_profile_type_id(&r->profiles[i], 0, id, sizeof(id)))
            return 1;
        perftools__profiles__profile__pack(p, pb);
        if (gzip_compress(pb, plen, &gz, &glen))
            return 1;
        for (char *c = id; *c; c++)
            if (*c == ':')
                *c = '_';
        snprintf(path, sizeof(path), "%s/%s.pb.gz", argv[1], id);
        if (write_file_atomic(path, gz, glen, 0644))
            return 1;
        printf("%s samples=%zu\n", id, p->n_sample);
        free(pb);
        free(gz);
    }
    printf("event=%s chunks=%llu events=%llu stack_missing=%llu frame_missing=%llu\n", r->event,
           (unsigned long long)r->stats.chunks, (unsigned long long)r->stats.events,
           (unsigned long long)r->stats.stack_missing, (unsigned long long)r->stats.frame_missing);
    jfr_result_free(r);
    free(b);
    free(lb);
    return 0;
}
