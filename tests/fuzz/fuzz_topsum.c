/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seg_topsum_decode (codec/topsum.h) on the input as a raw function totals
 * frame (compressed here, so the fuzzer reaches every field), and on the
 * input as the compressed bytes themselves; a decoded frame is encoded
 * again and must decode to the same counts.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/topsum.h"
#include "codec/wire.h"

static void check(const uint8_t *buf, size_t len, uint64_t raw)
{
    struct seg_section_info in = {.service = "svc",
                                  .top_offset = 16,
                                  .top_length = len,
                                  .top_raw = raw,
                                  .top_crc = crc32c(buf, len)};
    struct seg_topsum t, u;
    struct wbuf re = {0}, z = {0};
    char err[256];

    if (!len || seg_topsum_decode(buf, len, &in, &t, err, sizeof(err)) != 0)
        return;
    if (t.ntypes < 1 || t.ntypes > 16)
        abort();
    for (uint32_t i = 0; i < t.nfuncs; i++)
        if (!t.names[i])
            abort();
    if (seg_topsum_encode(&re, &t) == 0 && zstd_append(&z, re.p, re.len, 1) == 0) {
        in.top_length = z.len;
        in.top_raw = re.len;
        in.top_crc = crc32c(z.p, z.len);
        if (seg_topsum_decode(z.p, z.len, &in, &u, err, sizeof(err)) != 0 || u.nfuncs != t.nfuncs ||
            u.ntypes != t.ntypes || u.nbuild_ids != t.nbuild_ids)
            abort();
        seg_topsum_free(&u);
    }
    wb_free(&re);
    wb_free(&z);
    seg_topsum_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wbuf z = {0};

    if (zstd_append(&z, data, size, 1) == 0)
        check(z.p, z.len, size);
    wb_free(&z);
    check(data, size, size * 4 + 64);
    return 0;
}
