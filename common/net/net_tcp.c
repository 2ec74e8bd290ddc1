/* SPDX-License-Identifier: MIT */
/* TCP socket settings and peer names shared by the agent, its serial bridge and
 * the relay. */
#include "net_tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>

const struct net_tcp_keepalive net_tcp_ride_out_outages = {
    .idle_s = 15,
    .interval_s = 15,
    .count = 8, /* 15 + 8 * 15 s = 135 s of silence */
    .user_timeout_ms = 135000,
};

void net_tcp_tune(uv_tcp_t *tcp, const struct net_tcp_keepalive *ka)
{
    uv_os_fd_t fd;

    uv_tcp_nodelay(tcp, 1);
    uv_tcp_keepalive(tcp, 1, (unsigned)ka->idle_s);
    if (uv_fileno((uv_handle_t *)tcp, &fd) < 0)
        return;
    /* Best effort: a kernel without one of these still works. */
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &ka->idle_s, sizeof(ka->idle_s));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &ka->interval_s,
               sizeof(ka->interval_s));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &ka->count, sizeof(ka->count));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ka->user_timeout_ms,
               sizeof(ka->user_timeout_ms));
}

void net_tcp_peer_name(const uv_tcp_t *tcp, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    int ss_len = sizeof(ss);
    char ip[64] = "?";

    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &ss_len) < 0) {
        snprintf(buf, len, "?:0");
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(sin6, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        uv_ip4_name(sin, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
    }
}

void net_tcp_unsent_limit(uv_tcp_t *tcp, int bytes)
{
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)tcp, &fd) == 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof(bytes));
}
