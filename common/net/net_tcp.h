/* SPDX-License-Identifier: MIT */
/* TCP socket settings and peer names shared by the agent, its serial bridge and
 * the relay. */
#ifndef REDIR_NET_TCP_H
#define REDIR_NET_TCP_H

#include <stddef.h>
#include <uv.h>

/* How long a silent or dead path is tolerated before the connection is
 * given up: keepalive probing, and TCP_USER_TIMEOUT for unacknowledged
 * data. */
struct net_tcp_keepalive {
    int idle_s, interval_s, count;
    unsigned int user_timeout_ms;
};

/* About 135 s. usbredir links ride out shorter network outages on the same
 * connection: QEMU's chardev end has no keepalive and accepts no new
 * connection until it notices the old one is gone, so giving up early
 * would not bring the device back sooner. */
extern const struct net_tcp_keepalive net_tcp_ride_out_outages;

/* TCP_NODELAY (request/response protocols) and the keepalive bounds. */
void net_tcp_tune(uv_tcp_t *tcp, const struct net_tcp_keepalive *ka);

/* TCP_NOTSENT_LOWAT: unsent bytes the kernel holds at most. */
void net_tcp_unsent_limit(uv_tcp_t *tcp, int bytes);

/* "1.2.3.4:5" or "[::1]:5"; "?:0" if the peer is unknown. */
void net_tcp_peer_name(const uv_tcp_t *tcp, char *buf, size_t len);

#endif
