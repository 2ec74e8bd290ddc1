/* SPDX-License-Identifier: MIT */
/* Where a stream connects or listens: "HOST:PORT", "[v6]:PORT" or
 * "unix:/path", as written in the configs. */
#include "endpoint.h"

#include <stdio.h>
#include <string.h>

int endpoint_parse(const char *text, bool allow_unix, struct endpoint *ep,
                   char *why, size_t why_len)
{
    size_t prefix = strlen(ENDPOINT_UNIX_PREFIX);

    memset(ep, 0, sizeof(*ep));
    if (allow_unix && strncmp(text, ENDPOINT_UNIX_PREFIX, prefix) == 0) {
        const char *path = text + prefix;
        if (path[0] != '/' || strlen(path) >= sizeof(ep->path)) {
            snprintf(why, why_len,
                     "'%s' is not an absolute path shorter than %zu "
                     "characters",
                     path, sizeof(ep->path));
            return -1;
        }
        ep->is_unix = true;
        strcpy(ep->path, path);
        return 0;
    }
    if (hostport_parse(text, &ep->tcp, why, why_len) == 0)
        return 0;
    if (allow_unix) {
        size_t n = strlen(why);
        snprintf(why + n, why_len - n, " (or unix:/PATH)");
    }
    return -1;
}

const char *endpoint_str(const struct endpoint *ep, char *buf, size_t len)
{
    if (ep->is_unix)
        snprintf(buf, len, "%s%s", ENDPOINT_UNIX_PREFIX, ep->path);
    else
        hostport_str(&ep->tcp, buf, len);
    return buf;
}

bool endpoint_equal(const struct endpoint *a, const struct endpoint *b)
{
    if (a->is_unix != b->is_unix)
        return false;
    if (a->is_unix)
        return strcmp(a->path, b->path) == 0;
    return a->tcp.port == b->tcp.port && strcmp(a->tcp.host, b->tcp.host) == 0;
}
