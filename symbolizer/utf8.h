/* SPDX-License-Identifier: Apache-2.0 */
/*
 * utf8 — writes the UTF-8 of code points the runtimes' namers decode from
 * a process's memory (CPython's UCS-1/2/4 strings, V8's one- and two-byte
 * strings). Owns nothing: one stateless function.
 */
#ifndef STOKE_SYM_UTF8_H
#define STOKE_SYM_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Writes code point @c as UTF-8 at @o (room for 4 bytes) and returns the
 * bytes written; a code point above U+10FFFF is written as U+FFFD. */
size_t sym_put_utf8(char *o, uint32_t c);

#endif
