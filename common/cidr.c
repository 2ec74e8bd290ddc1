/* SPDX-License-Identifier: MIT */
/* Address allowlists ("allow = 10.0.0.0/8, 192.168.1.5, ::1/128"): who may
 * connect to a listener at all. */
#include "cidr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_MAX 64

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int parse_one(char *text, struct cidr *out)
{
    char *slash = strchr(text, '/');
    unsigned max;

    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    out->prefix = max;
    if (slash) {
        char *end;
        unsigned long p = strtoul(slash + 1, &end, 10);
        if (!isdigit((unsigned char)slash[1]) || *end || p > max)
            return -1;
        out->prefix = (unsigned)p;
    }
    return 0;
}

int cidr_list_parse(const char *text, struct cidr_list *out, char *why,
                    size_t why_len)
{
    char buf[CIDR_LIST_MAX * ENTRY_MAX];

    memset(out, 0, sizeof(*out));
    if (strlen(text) >= sizeof(buf)) {
        snprintf(why, why_len, "list too long");
        return -1;
    }
    strcpy(buf, text);
    for (char *tok = buf, *comma; tok; tok = comma ? comma + 1 : NULL) {
        comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        char *entry = trim(tok);
        if (out->n == CIDR_LIST_MAX) {
            snprintf(why, why_len, "more than %d entries", CIDR_LIST_MAX);
            return -1;
        }
        if (parse_one(entry, &out->nets[out->n]) < 0) {
            snprintf(why, why_len, "'%s' is not an address or ADDRESS/PREFIX",
                     entry);
            return -1;
        }
        out->n++;
    }
    return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;

    if (memcmp(a, b, bytes) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

int cidr_allow_parse(const char *value, bool *any, struct cidr_list *out,
                     char *why, size_t why_len)
{
    *any = strcmp(value, "any") == 0;
    if (*any)
        return 0;
    return cidr_list_parse(value, out, why, why_len);
}

bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    uint8_t v4[4], v6[16];
    bool is4 = addr->sa_family == AF_INET, is6 = addr->sa_family == AF_INET6;

    if (is4)
        memcpy(v4, &((const struct sockaddr_in *)addr)->sin_addr, 4);
    if (is6) {
        memcpy(v6, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
        if (memcmp(v6, mapped, sizeof(mapped)) == 0) { /* ::ffff:a.b.c.d */
            memcpy(v4, v6 + 12, 4);
            is4 = true;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        const struct cidr *n = &l->nets[i];
        if ((n->family == AF_INET && is4 &&
             prefix_match(v4, n->addr, n->prefix)) ||
            (n->family == AF_INET6 && is6 &&
             prefix_match(v6, n->addr, n->prefix)))
            return true;
    }
    return false;
}

bool cidr_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}
