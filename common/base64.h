/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base64 — RFC 4648 base64, both ways: strict decoding (standard alphabet,
 * padding as the RFC writes it: HTTP Basic credentials), lenient decoding
 * (standard or URL-safe alphabet, padding optional: protobuf JSON's bytes,
 * as protojson accepts them), and padded standard encoding.
 */
#ifndef STOKE_COMMON_BASE64_H
#define STOKE_COMMON_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Decodes @in[0..len) into @out (at most @cap bytes). Returns the number
 * of bytes, or -1 when @in is not base64 (a length not a multiple of 4, a
 * character outside the alphabet, '=' anywhere but the last two places) or
 * the result does not fit. */
long base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* The same accepting '-' and '_' for '+' and '/', and any or no '='
 * padding at the end. */
long base64_decode_lenient(const char *in, size_t len, uint8_t *out, size_t cap);

/* Appends the padded base64 of @p[0..n) to @out. */
void base64_encode(struct wbuf *out, const uint8_t *p, size_t n);

#endif
