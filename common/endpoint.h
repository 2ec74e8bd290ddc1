/* SPDX-License-Identifier: MIT */
/* Where a stream connects or listens: "HOST:PORT", "[v6]:PORT" or
 * "unix:/path", as written in the configs. */
#ifndef REDIR_ENDPOINT_H
#define REDIR_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "hostport.h"

#define ENDPOINT_UNIX_PATH_MAX 108 /* sun_path */
#define ENDPOINT_UNIX_PREFIX "unix:"
/* Longest text endpoint_str() makes. */
#define ENDPOINT_STR_MAX (HOSTPORT_HOST_MAX + 8)

struct endpoint {
    bool is_unix;
    struct hostport tcp;
    char path[ENDPOINT_UNIX_PATH_MAX];
};

/* Parses "HOST:PORT" (or "unix:/absolute/path" when allow_unix). Returns 0,
 * or -1 with the reason in why. */
int endpoint_parse(const char *text, bool allow_unix, struct endpoint *ep,
                   char *why, size_t why_len);

/* "host:port", "[v6]:port" or "unix:/path". */
const char *endpoint_str(const struct endpoint *ep, char *buf, size_t len);

bool endpoint_equal(const struct endpoint *a, const struct endpoint *b);

#endif
