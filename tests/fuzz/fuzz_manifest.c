/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest_decode on the input as an object, and on an object wrapped
 * around the input as its raw body (past the magic, CRC and zstd layers).
 * A decoded manifest must re-encode and decode to the same entry count,
 * and decode without its replaces (MANIFEST_NO_REPLACES) to the same
 * entries and none of them.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/manifest.h"
#include "codec/wire.h"

static void decode(const uint8_t *buf, size_t len)
{
    struct manifest *m = NULL, *m2 = NULL;
    char err[256];
    uint8_t *out;
    size_t olen;
    struct manifest *m3 = NULL;
    int r3 = manifest_decode_flags(buf, len, MANIFEST_NO_REPLACES, &m3, err, sizeof(err));
    if (manifest_decode(buf, len, &m, err, sizeof(err))) {
        manifest_free(m3);
        return;
    }
    if (r3 || m3->nentries != m->nentries || m3->nreplaces != 0)
        abort();
    manifest_free(m3);
    if (manifest_encode(m, &out, &olen) == 0) {
        if (manifest_decode(out, olen, &m2, err, sizeof(err)) || m2->nentries != m->nentries ||
            m2->nreplaces != m->nreplaces)
            abort();
        manifest_free(m2);
        free(out);
    }
    manifest_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode(data, size);
    struct wbuf o = {0};
    uint8_t hdr[20] = "STKM";
    wr_u16(hdr + 4, 1);
    wr_u32(hdr + 12, (uint32_t)size);
    wb_bytes(&o, hdr, sizeof(hdr));
    if (zstd_append(&o, data, size, 1) == 0 && !o.err) {
        wr_u32(o.p + 16, crc32c(o.p + 20, o.len - 20));
        decode(o.p, o.len);
    }
    wb_free(&o);
    return 0;
}
