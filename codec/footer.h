/* SPDX-License-Identifier: Apache-2.0 */
/*
 * footer — the encoding of a segment's index (docs/format.md §3.3), shared
 * by the segment trailer and by manifest entries, which embed footers
 * verbatim so a manifest is just a list of them.
 *
 * Decoding validates everything a later reader relies on: strings are
 * NUL-free, section ranges lie between the header and @footer_off, services
 * are unique and sorted, counts are bounded by the bytes left. A decoded
 * footer is always fully owned (free with seg_footer_free).
 */
#ifndef STOKE_FOOTER_H
#define STOKE_FOOTER_H

#include "codec/segment.h"
#include "codec/wire.h"

#define SEG_HEADER_LEN     16
#define SEG_TRAILER_LEN    32
#define SEG_MAX_TYPES      16
#define SEG_MAJOR          1
#define SEG_MINOR          0
#define SEG_MINOR_TOPSUM   1 /* objects with function totals (§3.5) */
#define SEG_MINOR_CALLTREE 2 /* objects with call trees too (§3.6) */

/* Appends the footer body of @f (not the object length). */
void footer_encode_body(struct wbuf *b, const struct seg_footer *f);

/* Parses a footer body from @r. @footer_off bounds the sections' byte
 * ranges (UINT64_MAX: no bound but overflow). 0, -EBADMSG with @err, or
 * -ENOMEM. */
int footer_decode_body(struct rbuf *r, uint64_t footer_off, struct seg_footer **out, char *err,
                       size_t errlen);

#endif
