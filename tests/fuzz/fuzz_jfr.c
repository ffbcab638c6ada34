/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JFR converter (codec/jfr.h): any bytes as a recording, and the same
 * bytes split at their first byte's position into a recording and a labels
 * part. A result must hold only what it says: each profile's samples name
 * defined locations, each location a defined function, every value count
 * the profile's sample types.
 */
#include <errno.h>
#include <stdlib.h>

#include "codec/jfr.h"

static void check(const struct jfr_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const Perftools__Profiles__Profile *p = r->profiles[i].pprof;
        char id[128];
        if (!p || jfr_profile_type_id(&r->profiles[i], 0, id, sizeof(id)))
            abort();
        for (size_t s = 0; s < p->n_sample; s++) {
            if (p->sample[s]->n_value != p->n_sample_type)
                abort();
            for (size_t l = 0; l < p->sample[s]->n_location_id; l++)
                if (p->sample[s]->location_id[l] == 0 ||
                    p->sample[s]->location_id[l] > p->n_location)
                    abort();
        }
        for (size_t l = 0; l < p->n_location; l++)
            if (p->location[l]->n_line != 1 || p->location[l]->line[0]->function_id == 0 ||
                p->location[l]->line[0]->function_id > p->n_function)
                abort();
        for (size_t f = 0; f < p->n_function; f++)
            if (p->function[f]->name < 0 || (size_t)p->function[f]->name >= p->n_string_table)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jfr_opts o = {.max_bytes = 16u << 20};
    struct jfr_result *r = NULL;
    char err[256];

    int e = jfr_convert(data, size, NULL, 0, &o, &r, err, sizeof(err));
    if (e == 0)
        check(r);
    else if (r || (e != -EBADMSG && e != -EFBIG && e != -ENOMEM))
        abort();
    jfr_result_free(r);
    if (size > 1) {
        size_t cut = 1 + data[0] % (size - 1);
        r = NULL;
        e = jfr_convert(data + cut, size - cut, data + 1, cut - 1, &o, &r, err, sizeof(err));
        if (e == 0)
            check(r);
        jfr_result_free(r);
    }
    return 0;
}
