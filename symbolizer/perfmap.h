/* SPDX-License-Identifier: Apache-2.0 */
/*
 * perfmap — internal: a JIT runtime's /tmp/perf-PID.map ("START SIZE name",
 * hex, one symbol per line; Node, the JDK, .NET and Python 3.12 write it).
 *
 * Lines that do not parse are skipped and counted. Entries are sorted by
 * start; when a runtime re-emits code at the same start, the later line wins
 * (it describes the code now there). The map grows while the runtime runs;
 * the owner re-parses it when its size changed.
 */
#ifndef STOKE_SYM_PERFMAP_H
#define STOKE_SYM_PERFMAP_H

#include <stddef.h>
#include <stdint.h>

struct sym_perfmap_entry {
    uint64_t start, size;
    uint32_t name; /* offset into strs */
    uint32_t seq;  /* line order, for "later wins" */
};

struct sym_perfmap {
    struct sym_perfmap_entry *e;
    size_t n;
    char *strs;
    size_t strs_len;
    uint64_t bad_lines;
};

/* Parses @len bytes into @m (which must be zeroed). 0 or -ENOMEM/-E2BIG. */
int sym_perfmap_parse(struct sym_perfmap *m, const char *buf, size_t len);
const struct sym_perfmap_entry *sym_perfmap_find(const struct sym_perfmap *m, uint64_t addr);
size_t sym_perfmap_bytes(const struct sym_perfmap *m);
void sym_perfmap_free(struct sym_perfmap *m);

#endif
