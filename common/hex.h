/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hex — the value of one hexadecimal digit, for the text parsers of /proc
 * files, kallsyms and %XX escapes.
 */
#ifndef STOKE_COMMON_HEX_H
#define STOKE_COMMON_HEX_H

/* 0..15 for [0-9a-fA-F], else -1. */
static inline int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
