/* SPDX-License-Identifier: MIT */
/* Admission of connections still proving who they are (TLS or the relay
 * handshake): a global limit with random early drop and a limit per source
 * address, so a flood from one host, or from many, cannot take every slot
 * from real peers. Pure bookkeeping: no I/O. */
#ifndef REDIR_NET_ADMIT_H
#define REDIR_NET_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Sources are whole IPv4 addresses and IPv6 /64 prefixes: one host gets a
 * /64, so counting single IPv6 addresses would let it use 2^64 sources. */
#define NET_ADMIT_SOURCE_LEN 8

struct net_admit_limits {
    /* Connections in their handshake at once; 0: no limit. Above half of
     * it new ones are dropped at random, 30% rising to 100% at the limit
     * (what OpenSSH's MaxStartups 50:30:100 does): a full table is rare,
     * and a real peer still gets in on a retry. */
    unsigned max_pending;
    /* Of those, from one source; 0: no limit. */
    unsigned per_source;
};

enum net_admit_verdict {
    NET_ADMIT_OK = 0,
    NET_ADMIT_SOURCE_LIMIT, /* this source has per_source pending */
    NET_ADMIT_EARLY_DROP,   /* dropped at random on the way to full */
    NET_ADMIT_FULL,         /* max_pending pending */
};

struct net_admit_source {
    uint8_t key[NET_ADMIT_SOURCE_LEN + 1]; /* family tag, address bytes */
    unsigned pending;
};

struct net_admit {
    struct net_admit_limits limits;
    unsigned pending;
    /* one entry per source with something pending; at most max_pending */
    struct net_admit_source *sources;
    size_t n_sources, cap_sources;
    uint64_t rng; /* xorshift state: unpredictability is not needed */
    /* counters, for logs and status */
    uint64_t admitted, refused[4];
};

void net_admit_init(struct net_admit *a, const struct net_admit_limits *lim);
/* New limits (a reload); what is pending stays counted. */
void net_admit_set_limits(struct net_admit *a,
                          const struct net_admit_limits *lim);
void net_admit_free(struct net_admit *a);

/* A connection from addr starts its handshake: NET_ADMIT_OK counts it as
 * pending (net_admit_leave() when it is done, whatever the outcome);
 * anything else refuses it and counts nothing. */
enum net_admit_verdict net_admit_enter(struct net_admit *a,
                                       const struct sockaddr *addr);
void net_admit_leave(struct net_admit *a, const struct sockaddr *addr);

/* "source limit", "random early drop", "handshake table full". */
const char *net_admit_verdict_name(enum net_admit_verdict v);

#endif
