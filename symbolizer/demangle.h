/* SPDX-License-Identifier: Apache-2.0 */
/*
 * demangle — internal: C++ (Itanium ABI) and Rust (legacy and v0) symbol
 * names to source names via libiberty. Rust legacy names lose their
 * "::h<16 hex>" hash suffix so the same function has one name across builds.
 */
#ifndef STOKE_SYM_DEMANGLE_H
#define STOKE_SYM_DEMANGLE_H

/* Returns a malloc'ed demangled name, or NULL when @name is not mangled (the
 * caller then uses @name as is). */
char *sym_demangle(const char *name);

#endif
