/* SPDX-License-Identifier: Apache-2.0 */
#include "common/listen.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int listen_resolve(const char *addr, const char *flag, struct addrinfo **ai, char *err,
                   size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    const char *colon = strrchr(addr, ':');
    char host[256];

    *ai = NULL;
    if (!colon || colon - addr >= (long)sizeof(host) || !colon[1]) {
        snprintf(err, errlen, "%s %s: expected HOST:PORT", flag, addr);
        return -EINVAL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    int gr = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, ai);
    if (gr) {
        snprintf(err, errlen, "%s %s: %s", flag, addr, gai_strerror(gr));
        *ai = NULL;
        return -EINVAL;
    }
    return 0;
}
