/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth — the optional bearer-token check of stoke-query (--auth-token-file)
 * and of the agent's receiver (--receive-auth-token-file).
 *
 * Owns the token list and the Authorization header check, nothing about
 * HTTP routing (query/serve/http.c decides which paths need it). The token file
 * holds one token per line; any listed token is accepted (rotation: add
 * the new one, move clients, remove the old one). Surrounding blanks and a
 * CR before the newline are ignored, as are blank lines. A token is 1 to
 * AUTH_MAX_TOKEN visible ASCII characters (0x21..0x7e).
 *
 * Accepted headers: "Bearer <token>" and "Basic base64(<user>:<token>)"
 * (any user; the token is the password). Schemes are case-insensitive.
 * The comparison runs over every configured token without early exit and
 * does not depend on where a wrong candidate differs. Error messages never
 * contain a token.
 */
#ifndef STOKE_AUTH_H
#define STOKE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_MAX_TOKEN  1024
#define AUTH_MAX_TOKENS 64
#define AUTH_MAX_FILE   (64 * 1024)

struct auth;

/* Parses the token file contents @text (@len bytes). 0 with *out, or
 * -EINVAL (no token, bad line) / -ENOMEM with a message in @err. */
int auth_parse(const char *text, size_t len, struct auth **out, char *err, size_t errlen);
/* Reads and parses @path. A missing, unreadable or empty file is an error
 * (-errno or -EINVAL) with a message naming @path in @err. */
int auth_load(const char *path, struct auth **out, char *err, size_t errlen);
void auth_free(struct auth *a);

size_t auth_count(const struct auth *a);
/* The first token of the file: what this worker sends to its peers. */
const char *auth_first(const struct auth *a);

/* True when the Authorization header value @hdr (NULL = absent) carries a
 * configured token. */
bool auth_check(const struct auth *a, const char *hdr);

#endif
