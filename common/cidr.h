/* SPDX-License-Identifier: MIT */
/* Address allowlists ("allow = 10.0.0.0/8, 192.168.1.5, ::1/128"): who may
 * connect to a listener at all. */
#ifndef REDIR_CIDR_H
#define REDIR_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CIDR_LIST_MAX 32 /* longer lists belong in a firewall */

struct cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix; /* bits */
};

struct cidr_list {
    struct cidr nets[CIDR_LIST_MAX];
    size_t n;
};

/* Parses a comma-separated list. Returns 0, or -1 with the bad entry in
 * why. */
int cidr_list_parse(const char *text, struct cidr_list *out, char *why,
                    size_t why_len);

/* An "allow" setting: "any" (*any set: every address), or a
 * comma-separated list into out (*any cleared). Returns 0, or -1 with the
 * bad entry in why. */
int cidr_allow_parse(const char *value, bool *any, struct cidr_list *out,
                     char *why, size_t why_len);

/* True if addr (AF_INET, AF_INET6 or IPv4-mapped IPv6) is in the list. An
 * empty list matches nothing. */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *addr);

/* True if a listen host only takes connections from this machine
 * (127.0.0.0/8, ::1, localhost): no allowlist or TLS needed there. */
bool cidr_host_is_loopback(const char *host);

#endif
