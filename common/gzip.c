/* SPDX-License-Identifier: Apache-2.0 */
#include "common/gzip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int gzip_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
    uint8_t *gz;
    size_t gzcap;
    z_stream zs;

    *out = NULL;
    *outlen = 0;
    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16: a gzip wrapper */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    gzcap = deflateBound(&zs, len) + 32; /* + the gzip header and trailer */
    gz = malloc(gzcap);
    if (!gz) {
        deflateEnd(&zs);
        return -ENOMEM;
    }
    zs.next_in = (uint8_t *)in;
    zs.next_out = gz;
    /* deflate's lengths are uInt: feed in slices so >4 GiB cannot truncate */
    while (1) {
        size_t left_in = len - (size_t)(zs.next_in - in);
        size_t left_out = gzcap - (size_t)(zs.next_out - gz);
        int zr;

        zs.avail_in = left_in > UINT32_MAX ? UINT32_MAX : (uInt)left_in;
        zs.avail_out = left_out > UINT32_MAX ? UINT32_MAX : (uInt)left_out;
        zr = deflate(&zs, left_in > UINT32_MAX ? Z_NO_FLUSH : Z_FINISH);
        if (zr == Z_STREAM_END)
            break;
        if ((zr != Z_OK && zr != Z_BUF_ERROR) || (zs.avail_out == 0 && left_out <= UINT32_MAX)) {
            /* deflateBound promised the buffer is large enough */
            deflateEnd(&zs);
            free(gz);
            return zr == Z_OK || zr == Z_BUF_ERROR ? -ENOBUFS : -EIO;
        }
    }
    *outlen = (size_t)(zs.next_out - gz);
    deflateEnd(&zs);
    *out = gz;
    return 0;
}

int gzip_decompress(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *outlen)
{
    z_stream z = {0};
    uint8_t *buf = NULL;
    size_t cap = len * 4 + 4096;
    int zr;

    if (len < 2 || in[0] != 0x1f || in[1] != 0x8b) {
        *out = malloc(len + 1);
        if (!*out)
            return -ENOMEM;
        if (len)
            memcpy(*out, in, len);
        *outlen = len;
        return 0;
    }
    if (cap > max) /* the cap is the output's: a buffer never grows past it */
        cap = max ? max : 1;
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return -ENOMEM;
    buf = malloc(cap);
    if (!buf) {
        inflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    for (;;) {
        if (z.total_out == cap) {
            if (cap >= max) {
                zr = Z_MEM_ERROR;
                break;
            }
            cap = cap > max / 2 ? max : cap * 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                zr = Z_MEM_ERROR;
                break;
            }
            buf = nb;
        }
        z.next_out = buf + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        zr = inflate(&z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END || (zr != Z_OK && zr != Z_BUF_ERROR))
            break;
        if (zr == Z_BUF_ERROR && z.avail_in == 0)
            break;
    }
    *outlen = z.total_out;
    inflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(buf);
        return zr == Z_MEM_ERROR ? -EFBIG : -EBADMSG;
    }
    *out = buf;
    return 0;
}
