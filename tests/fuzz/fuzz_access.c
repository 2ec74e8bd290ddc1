/* SPDX-License-Identifier: MIT */
/* libFuzzer target: who gets in. The first byte picks what is fuzzed, with
 * an oracle for each (the policy, not only memory safety):
 *  0  CIDR allowlists: every parsed network contains its own address and
 *     any address that differs only in its host bits;
 *  1  certificate-name glob lists: "contains" implies "matches", an empty
 *     list matches every name and contains none;
 *  2  handshake admission: a sequence of arrivals and departures from a
 *     few sources never has more pending than max_pending, nor more from
 *     one source than per_source, and refuses for exactly those reasons. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "glob_list.h"
#include "net_admit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void text_of(const uint8_t *data, size_t size, char *out, size_t len)
{
    size_t n = size < len - 1 ? size : len - 1;
    memcpy(out, data, n);
    out[n] = '\0';
}

/* An address of net with its host bits set from noise. */
static void addr_in(const struct cidr *c, uint8_t noise,
                    struct sockaddr_storage *ss)
{
    uint8_t a[16];
    unsigned len = c->family == AF_INET ? 4 : 16;

    memcpy(a, c->addr, len);
    for (unsigned bit = c->prefix; bit < len * 8; bit++)
        if ((noise >> (bit % 8)) & 1)
            a[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
    memset(ss, 0, sizeof(*ss));
    if (c->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, a, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, a, 16);
    }
}

static void fuzz_cidr(const uint8_t *data, size_t size)
{
    char text[1024], why[160];
    struct cidr_list l;
    struct sockaddr_storage ss;

    text_of(data, size, text, sizeof(text));
    if (cidr_list_parse(text, &l, why, sizeof(why)) < 0)
        return;
    if (l.n > CIDR_LIST_MAX)
        abort();
    for (size_t i = 0; i < l.n; i++) {
        if ((l.nets[i].family == AF_INET && l.nets[i].prefix > 32) ||
            l.nets[i].prefix > 128)
            abort();
        addr_in(&l.nets[i], 0, &ss);
        if (!cidr_list_match(&l, (struct sockaddr *)&ss))
            abort();
        addr_in(&l.nets[i], size ? data[i % size] : 0xa5, &ss);
        if (!cidr_list_match(&l, (struct sockaddr *)&ss))
            abort();
    }
}

static void fuzz_globs(const uint8_t *data, size_t size)
{
    char list[512], name[300], why[160];
    size_t split = size ? data[0] % (size + 1) : 0;

    text_of(data, split, list, sizeof(list));
    text_of(data + split, size - split, name, sizeof(name));
    glob_list_check(list, 256, why, sizeof(why));
    bool match = glob_list_match(list, name);
    bool contains = glob_list_contains(list, name);
    if (contains && !match)
        abort();
    if (strspn(list, " \t,") == strlen(list) && (!match || contains))
        abort();
}

#define SOURCES 6

static void fuzz_admit(const uint8_t *data, size_t size)
{
    struct net_admit_limits lim = {0, 0};
    struct net_admit a;
    unsigned model[SOURCES] = {0}, total = 0;
    struct sockaddr_in src[SOURCES];

    if (size < 2)
        return;
    lim.max_pending = data[0] % 20;
    lim.per_source = data[1] % 6;
    net_admit_init(&a, &lim);
    for (unsigned i = 0; i < SOURCES; i++) {
        memset(&src[i], 0, sizeof(src[i]));
        src[i].sin_family = AF_INET;
        src[i].sin_addr.s_addr = htonl(0x0a000001u + i);
    }
    for (size_t i = 2; i < size; i++) {
        unsigned s = data[i] % SOURCES;
        const struct sockaddr *sa = (const struct sockaddr *)&src[s];
        if (data[i] & 0x80) {
            net_admit_leave(&a, sa);
            if (model[s]) {
                model[s]--;
                total--;
            }
            continue;
        }
        enum net_admit_verdict v = net_admit_enter(&a, sa);
        bool full = lim.max_pending && total >= lim.max_pending;
        bool source = lim.per_source && model[s] >= lim.per_source;
        if ((full && v != NET_ADMIT_FULL) ||
            (!full && source && v != NET_ADMIT_SOURCE_LIMIT) ||
            (!full && !source && v != NET_ADMIT_OK &&
             v != NET_ADMIT_EARLY_DROP))
            abort();
        if (v == NET_ADMIT_OK) {
            model[s]++;
            total++;
        }
        if (a.pending != total)
            abort();
    }
    net_admit_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_cidr(data + 1, size - 1); break;
    case 1: fuzz_globs(data + 1, size - 1); break;
    default: fuzz_admit(data + 1, size - 1); break;
    }
    return 0;
}
