/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gzip — one buffer in, one gzip member out (zlib, a gzip wrapper as pprof
 * readers and HTTP Content-Encoding: gzip expect), and back. Used by the
 * pprof writers (agent and query worker), the push exporters, and the
 * query worker's pprof import.
 */
#ifndef STOKE_COMMON_GZIP_H
#define STOKE_COMMON_GZIP_H

#include <stddef.h>
#include <stdint.h>

/* Compresses @in[0..len) into a malloc'd buffer (*out, *outlen).
 * 0 or a negative errno. */
int gzip_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen);

/* Decompresses @in when it starts with the gzip magic, else copies it
 * (pprof files come either way), into a malloc'd buffer (*out, *outlen).
 * 0, -EFBIG when the decompressed data would pass @max bytes, -EBADMSG for
 * a damaged or truncated stream, -ENOMEM. */
int gzip_decompress(const uint8_t *in, size_t len, size_t max, uint8_t **out, size_t *outlen);

#endif
