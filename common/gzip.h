/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gzip — one buffer in, one gzip member out (zlib, a gzip wrapper as pprof
 * readers and HTTP Content-Encoding: gzip expect). Used by the pprof writer
 * and the push exporters.
 */
#ifndef STOKE_GZIP_H
#define STOKE_GZIP_H

#include <stddef.h>
#include <stdint.h>

/* Compresses @in[0..len) into a malloc'd buffer (*out, *outlen).
 * 0 or a negative errno. */
int gzip_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen);

#endif
