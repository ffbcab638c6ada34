/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seg_section_decode on a raw section body. The first 12 bytes choose the
 * footer's view (sample count, time range, type count), the rest is
 * compressed and checksummed here so the fuzzer explores the body's fields
 * instead of the CRC.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/segment.h"
#include "codec/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 12)
        return 0;
    char *types[2] = {"a", "b"};
    char svc[64] = "s";
    struct seg_section_info info = {
        .service = svc,
        .nsamples = rd_u16(data),
        .t_min_ms = (int32_t)rd_u32(data + 2),
        .profile_types = types,
        .nprofile_types = 0, /* no totals to match */
    };
    info.t_max_ms = info.t_min_ms + (int64_t)rd_u32(data + 6);
    data += 12;
    size -= 12;
    /* the decoder insists the body names the footer's service: take it
     * from the body (uvarint header length, then the name) */
    struct rbuf r = {.p = data, .len = size};
    uint64_t hl, n;
    const uint8_t *p;
    if (!rb_uv(&r, &hl) && !rb_uv_max(&r, sizeof(svc) - 1, &n) && !rb_bytes(&r, &p, n)) {
        memcpy(svc, p, n);
        svc[n] = 0;
    }
    struct wbuf o = {0};
    if (zstd_append(&o, data, size, 1) || o.err) {
        wb_free(&o);
        return 0;
    }
    info.length = o.len;
    info.raw_length = size;
    info.crc32c = crc32c(o.p, o.len);
    struct seg_section *s = NULL;
    char err[256];
    if (seg_section_decode(o.p, o.len, &info, &s, err, sizeof(err)) == 0) {
        /* every id the decoder hands out is inside its table */
        for (uint64_t i = 0; i < s->nsamples; i++) {
            if (s->sample_series[i] >= s->nseries || s->sample_stack[i] >= s->nstacks)
                abort();
            uint32_t st = s->sample_stack[i];
            for (uint32_t k = s->stack_off[st]; k < s->stack_off[st + 1]; k++) {
                const struct seg_location *l = &s->locations[s->stack_locs[k]];
                for (uint32_t j = 0; j < l->nlines; j++)
                    if (s->lines[l->line_off + j].function >= s->nfunctions ||
                        s->functions[s->lines[l->line_off + j].function].name >= s->nstrings)
                        abort();
                if (l->mapping != UINT32_MAX && l->mapping >= s->nmappings)
                    abort();
            }
            for (uint32_t k = s->series_off[s->sample_series[i]];
                 k < s->series_off[s->sample_series[i] + 1]; k++)
                if (strlen(s->strings[s->series_labels[2 * k + 1]]) > info.raw_length)
                    abort();
        }
        char id[512];
        for (uint32_t t = 0; t < s->ntypes; t++)
            seg_profile_type_id(s, t, id, sizeof(id));
        seg_section_free(s);
    }
    wb_free(&o);
    return 0;
}
