/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sha256 — FIPS 180-4 SHA-256, for the x-amz-content-sha256 header of S3
 * requests (SigV4 signs the payload hash we send; libcurl would otherwise
 * sign the empty-body hash). Self-contained so the store needs no crypto
 * library beyond what libcurl uses for TLS. Not constant-time: it only ever
 * hashes payloads, never secrets.
 */
#ifndef STOKE_STORE_SHA256_H
#define STOKE_STORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[32]);
/* One-shot: @hex gets 64 lowercase hex digits and a NUL. */
void sha256_hex(const void *data, size_t len, char hex[65]);

#endif
