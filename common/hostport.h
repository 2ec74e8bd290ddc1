/* SPDX-License-Identifier: MIT */
/* HOST:PORT endpoints as written in the config ("10.0.0.5:4000", "[::1]:4000").
 */
#ifndef REDIR_HOSTPORT_H
#define REDIR_HOSTPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTPORT_HOST_MAX 256 /* DNS names are at most 253 characters */

struct hostport {
    char host[HOSTPORT_HOST_MAX];
    uint16_t port;
};

/* Parses one endpoint; on failure returns -1 and a reason in why. */
int hostport_parse(const char *text, struct hostport *hp, char *why,
                   size_t why_len);

/* Like hostport_parse, and a bare PORT means 127.0.0.1:PORT: for
 * endpoints with no authentication (metrics), whose safe default is
 * loopback; another host must be written out. */
int hostport_parse_local(const char *text, struct hostport *hp, char *why,
                         size_t why_len);

/* Formats as "host:port" or "[v6]:port". */
const char *hostport_str(const struct hostport *hp, char *buf, size_t len);

/* Same port and host (names compared without case). */
bool hostport_same_listen(const struct hostport *a, const struct hostport *b);

#endif
