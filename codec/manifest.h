/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest — the compact index of segment objects (docs/format.md).
 *
 * Compaction writes an hour manifest: a list of entries, each the footer
 * of one object (key, host, time range, per-section offsets, profile types
 * and label summaries), so a query worker plans a compacted hour from one
 * object and then range-reads only the sections it needs. A flush writes
 * its segment alone; stores written before that also hold one entry
 * manifest per flush (the same encoding, one entry), which readers still
 * read. The manifest is rebuildable from the segments' footers.
 */
#ifndef STOKE_MANIFEST_H
#define STOKE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "codec/segment.h"

struct manifest_entry {
    char *key;                 /* object key of the segment or block */
    struct seg_footer *footer; /* its index (tenant, host, time range, sections) */
};

struct manifest {
    struct manifest_entry *entries;
    size_t nentries;
    /* Keys of entry objects this manifest replaces (set by compaction), so
     * readers that see both ignore the small ones. */
    char **replaces;
    size_t nreplaces;
};

/* Encodes into a malloc'd buffer (magic, version, zstd body, crc). */
int manifest_encode(const struct manifest *m, uint8_t **buf, size_t *len);

/* Decodes; corrupt, truncated or wrong-version input returns -EBADMSG or
 * -EPROTO with a message in @err. */
int manifest_decode(const uint8_t *buf, size_t len, struct manifest **out, char *err,
                    size_t errlen);
/* manifest_decode that leaves `replaces` out (nreplaces 0) when @flags
 * has MANIFEST_NO_REPLACES: a reader with nothing listed to check against
 * them (600,000 keys in the hour manifest of 10,000 hosts) saves their
 * copies. The whole object is still checked (crc, entries). */
#define MANIFEST_NO_REPLACES 1u
int manifest_decode_flags(const uint8_t *buf, size_t len, unsigned flags, struct manifest **out,
                          char *err, size_t errlen);

void manifest_free(struct manifest *m);

/* Appends a deep copy of @footer under @key. 0 or -ENOMEM. */
int manifest_add(struct manifest *m, const char *key, const struct seg_footer *footer);

/* Deep copy of a footer. NULL on allocation failure. */
struct seg_footer *seg_footer_copy(const struct seg_footer *f);

/*
 * Keys:
 *   entry: <tenant>/manifest/<YYYY-MM-DD>/<HH>/entries/<start ms>-<host>-<hash16>.man
 *   hour:  <tenant>/manifest/<YYYY-MM-DD>/<HH>/hour-<generation, 6 digits>.man
 * Returns the length or -ENAMETOOLONG.
 */
int manifest_entry_key(char *buf, size_t len, const char *tenant, const char *host,
                       int64_t start_ms, uint64_t hash);
/*
 * The index of the hour manifest @hour_key (docs/format.md §13.1): the
 * same generation's entries without `replaces`, under
 *   <tenant>/index/<YYYY-MM-DD>/<HH>/hour-<generation>.man
 * Returns the length, -EINVAL when @hour_key is not an hour manifest's
 * key, or -ENAMETOOLONG.
 */
int manifest_index_key(char *buf, size_t len, const char *hour_key);
int manifest_hour_key(char *buf, size_t len, const char *tenant, int64_t hour_start_ms,
                      unsigned generation);

/*
 * Stores written before one object per flush (docs/format.md §7) hold an
 * entry manifest per segment, both written by one flush under one host and
 * start time. This gives the prefix the segment key of the entry
 * @entry_key has — "<tenant>/segments/<date>/<HH>/<host>/<start ms>-", all
 * of its key but the hash — so a reader that finds an entry replaced can
 * tell which listed segment it stood for. Returns the length, -EINVAL when
 * @entry_key is not an entry key, or -ENAMETOOLONG.
 */
int manifest_entry_segment_prefix(const char *entry_key, char *buf, size_t len);

#endif
