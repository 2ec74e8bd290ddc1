/* SPDX-License-Identifier: MIT */
/* HOST:PORT endpoints as written in the config ("10.0.0.5:4000", "[::1]:4000").
 */
#include "hostport.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int host_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_' ||
           c == ':' || c == '%';
}

static int parse_port(const char *text, uint16_t *port)
{
    char *end;
    long v;

    if (!isdigit((unsigned char)*text))
        return -1;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || *end || v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

int hostport_parse(const char *text, struct hostport *hp, char *why,
                   size_t why_len)
{
    const char *host = text, *host_end, *colon;

    if (*text == '[') {
        host = text + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':') {
            snprintf(why, why_len, "'%s': expected [IPv6]:PORT", text);
            return -1;
        }
        colon = host_end + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text))) {
            snprintf(why, why_len, "'%s': expected HOST:PORT", text);
            return -1;
        }
        host_end = colon;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= sizeof(hp->host)) {
        snprintf(why, why_len, "'%s': missing or too long host", text);
        return -1;
    }
    for (size_t i = 0; i < host_len; i++) {
        if (!host_char_ok(host[i])) {
            snprintf(why, why_len, "'%s': invalid character in host", text);
            return -1;
        }
    }
    if (parse_port(colon + 1, &hp->port) < 0) {
        snprintf(why, why_len, "'%s': port must be a number from 1 to 65535",
                 text);
        return -1;
    }
    memcpy(hp->host, host, host_len);
    hp->host[host_len] = '\0';
    return 0;
}

int hostport_parse_local(const char *text, struct hostport *hp, char *why,
                         size_t why_len)
{
    if (strchr(text, ':') || !isdigit((unsigned char)*text))
        return hostport_parse(text, hp, why, why_len);
    if (parse_port(text, &hp->port) < 0) {
        snprintf(why, why_len, "'%s': port must be a number from 1 to 65535",
                 text);
        return -1;
    }
    snprintf(hp->host, sizeof(hp->host), "127.0.0.1");
    return 0;
}

const char *hostport_str(const struct hostport *hp, char *buf, size_t len)
{
    if (strchr(hp->host, ':'))
        snprintf(buf, len, "[%s]:%u", hp->host, hp->port);
    else
        snprintf(buf, len, "%s:%u", hp->host, hp->port);
    return buf;
}

bool hostport_same_listen(const struct hostport *a, const struct hostport *b)
{
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}
