/* SPDX-License-Identifier: Apache-2.0 */
#include "common/hash.h"

#include <string.h>

uint64_t hash_bytes(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0x100000001b3ULL);
    uint64_t w;

    /* a word at a time: symbol names are long and this is on every intern */
    while (len >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ hash64(w)) * 0x9fb21c651e98df25ULL;
        s += 8;
        len -= 8;
    }
    w = 0;
    if (len)
        memcpy(&w, s, len);
    h = (h ^ hash64(w ^ len)) * 0x9fb21c651e98df25ULL;
    return hash64(h);
}
