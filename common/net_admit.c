/* SPDX-License-Identifier: MIT */
/* Admission of connections still proving who they are: a global limit with
 * random early drop and a limit per source address. */
#include "net_admit.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Random early drop, as a percentage, from half of max_pending up. */
#define EARLY_DROP_START_PCT 30

static void source_key(const struct sockaddr *addr,
                       uint8_t key[NET_ADMIT_SOURCE_LEN + 1])
{
    memset(key, 0, NET_ADMIT_SOURCE_LEN + 1);
    if (addr && addr->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)addr)->sin_addr, 4);
    } else if (addr && addr->sa_family == AF_INET6) {
        const uint8_t *b =
            ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                             0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0) {
            key[0] = 4; /* the same host whichever socket family it used */
            memcpy(key + 1, b + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, b, NET_ADMIT_SOURCE_LEN);
        }
    } /* unix sockets: one local source, key all zero */
}

void net_admit_init(struct net_admit *a, const struct net_admit_limits *lim)
{
    memset(a, 0, sizeof(*a));
    a->limits = *lim;
    a->rng = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull | 1;
}

void net_admit_set_limits(struct net_admit *a,
                          const struct net_admit_limits *lim)
{
    a->limits = *lim;
}

void net_admit_free(struct net_admit *a)
{
    free(a->sources);
    a->sources = NULL;
    a->n_sources = a->cap_sources = 0;
}

static unsigned random_percent(struct net_admit *a)
{
    a->rng ^= a->rng << 13;
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    return (unsigned)(a->rng % 100);
}

/* True if the connection is dropped at random: never below half of
 * max_pending, then with a chance rising from 30% to 100% at full. */
static bool early_drop(struct net_admit *a)
{
    unsigned max = a->limits.max_pending, start = max / 2;

    if (max == 0 || a->pending < start || max - start == 0)
        return false;
    unsigned pct = EARLY_DROP_START_PCT + (100 - EARLY_DROP_START_PCT) *
                                              (a->pending - start) /
                                              (max - start);
    return random_percent(a) < pct;
}

static struct net_admit_source *source_find(struct net_admit *a,
                                            const uint8_t *key)
{
    for (size_t i = 0; i < a->n_sources; i++)
        if (memcmp(a->sources[i].key, key, NET_ADMIT_SOURCE_LEN + 1) == 0)
            return &a->sources[i];
    return NULL;
}

static struct net_admit_source *source_add(struct net_admit *a,
                                           const uint8_t *key)
{
    if (a->n_sources == a->cap_sources) {
        size_t cap = a->cap_sources ? a->cap_sources * 2 : 16;
        void *p = realloc(a->sources, cap * sizeof(*a->sources));
        if (!p)
            return NULL;
        a->sources = p;
        a->cap_sources = cap;
    }
    struct net_admit_source *s = &a->sources[a->n_sources++];
    memcpy(s->key, key, NET_ADMIT_SOURCE_LEN + 1);
    s->pending = 0;
    return s;
}

static enum net_admit_verdict refuse(struct net_admit *a,
                                     enum net_admit_verdict v)
{
    a->refused[v]++;
    return v;
}

enum net_admit_verdict net_admit_enter(struct net_admit *a,
                                       const struct sockaddr *addr)
{
    uint8_t key[NET_ADMIT_SOURCE_LEN + 1];
    struct net_admit_source *s;

    if (a->limits.max_pending && a->pending >= a->limits.max_pending)
        return refuse(a, NET_ADMIT_FULL);
    source_key(addr, key);
    s = source_find(a, key);
    if (s && a->limits.per_source && s->pending >= a->limits.per_source)
        return refuse(a, NET_ADMIT_SOURCE_LIMIT);
    if (early_drop(a))
        return refuse(a, NET_ADMIT_EARLY_DROP);
    if (!s && !(s = source_add(a, key)))
        return refuse(a, NET_ADMIT_FULL); /* out of memory: as if full */
    s->pending++;
    a->pending++;
    a->admitted++;
    return NET_ADMIT_OK;
}

void net_admit_leave(struct net_admit *a, const struct sockaddr *addr)
{
    uint8_t key[NET_ADMIT_SOURCE_LEN + 1];
    struct net_admit_source *s;

    source_key(addr, key);
    s = source_find(a, key);
    if (!s || s->pending == 0 || a->pending == 0)
        return; /* not ours: a caller bug, but never underflow */
    a->pending--;
    if (--s->pending == 0) /* the table holds pending sources only */
        *s = a->sources[--a->n_sources];
}

const char *net_admit_verdict_name(enum net_admit_verdict v)
{
    switch (v) {
    case NET_ADMIT_OK: return "admitted";
    case NET_ADMIT_SOURCE_LIMIT: return "too many handshakes from one source";
    case NET_ADMIT_EARLY_DROP: return "random early drop";
    case NET_ADMIT_FULL: return "handshake table full";
    }
    return "refused";
}
