/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash — the non-cryptographic hashes every stage uses for its in-memory
 * tables and for spreading keys: FNV-1a over bytes or strings, MurmurHash3's
 * 64-bit finalizer for integers, a multiplicative hash of id pairs (call
 * trees), and a word-at-a-time hash of byte strings for the intern table.
 *
 * FNV-1a and the finalizer are fixed algorithms (workers that shard by
 * plan_key_hash must agree). hash_bytes and hash_pair32 are only ever used
 * inside one process: their values are never stored or sent. The storage format's own
 * hash (XXH64 of object contents) is codec/wire.h's.
 */
#ifndef STOKE_COMMON_HASH_H
#define STOKE_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FNV64_OFFSET 0xcbf29ce484222325ULL
#define FNV64_PRIME  0x100000001b3ULL

/* A 64-bit integer's hash: MurmurHash3's finalizer fmix64, full
 * avalanche, so the low bits of the result (open addressing, hash % n)
 * depend on every input bit. */
static inline uint64_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* A pair of 32-bit ids' hash (a call-tree edge: parent node, name), by
 * Fibonacci multiplication; its high bits folded down, so the low bits an
 * open-addressing table takes depend on both ids. */
static inline uint64_t hash_pair32(uint32_t a, uint32_t b)
{
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

/* FNV-1a of @len bytes at @p, continuing from @h (FNV64_OFFSET starts). */
static inline uint64_t hash_fnv1a(uint64_t h, const void *p, size_t len)
{
    const unsigned char *s = p;

    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * FNV64_PRIME;
    return h;
}

/* FNV-1a of the NUL-terminated @s (the NUL not included). Its low bits
 * are weak (bit 0 is the parity of the bytes' low bits): hash64() it before
 * taking them, or use it modulo an odd or prime number of buckets. */
static inline uint64_t hash_str(const char *s)
{
    uint64_t h = FNV64_OFFSET;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * FNV64_PRIME;
    return h;
}

/* A fast hash of @len bytes, a word at a time, finalized with fmix64:
 * inputs that differ in one byte or only in length hash apart. */
uint64_t hash_bytes(const void *p, size_t len);

#endif
