/* SPDX-License-Identifier: MIT */
/* One byte stream (TCP or unix socket), the only kind of connection the agent
 * and the relay use: connect or accept, reads handed to the owner, writes
 * gathered into one writev, backpressure, keepalive, graceful close. */
#ifndef REDIR_NET_CONN_H
#define REDIR_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "endpoint.h"

struct net_conn;
struct net_tcp_keepalive;
struct net_tls_ctx;

/* One read takes at most this much. Every owner consumes what it is given
 * before returning, so one buffer serves every connection of the process
 * (owners that read in place give their own through on_alloc). */
#define NET_CONN_READ_BUF (64 * 1024)
#define NET_CONN_NAME_MAX ENDPOINT_STR_MAX

/* What a connection tells its owner. Every callback gets the owner given
 * at creation or to net_conn_set_owner(). After net_conn_close() only
 * on_closed is called, once. Any pointer may be NULL. */
struct net_conn_ops {
    /* net_conn_connect(): the outcome (0 or a libuv error). A failed
     * connection is closed by its owner like any other. */
    void (*on_connected)(void *owner, struct net_conn *c, int status);
    /* Received bytes, valid only during the call. */
    void (*on_data)(void *owner, struct net_conn *c, const uint8_t *data,
                    size_t len);
    /* Owners that read in place: where the next read lands. A zero-length
     * buffer skips this read (reading pauses until net_conn_read_start()).
     * on_data then gets a pointer into that buffer. */
    void (*on_alloc)(void *owner, struct net_conn *c, uv_buf_t *buf);
    /* The bytes queued for the peer fell to the low water mark after they
     * had reached the high one. */
    void (*on_drained)(void *owner, struct net_conn *c);
    /* The peer finished sending (UV_EOF) or the connection failed; once.
     * Writes may still go out after UV_EOF (a half-closed peer). */
    void (*on_gone)(void *owner, struct net_conn *c, int status);
    /* After net_conn_close(): no buffer of the owner is referenced any
     * more and no other callback follows. */
    void (*on_closed)(void *owner, struct net_conn *c);
};

/* Called once per queued buffer when the kernel has taken it, or when it
 * was dropped because the connection failed or closed. */
typedef void (*net_release_fn)(void *ctx, void *base, size_t len);

/* Starts connecting to ep (TCP names are resolved asynchronously); the
 * outcome reaches on_connected, UV_ETIMEDOUT after timeout_ms. NULL if
 * it could not even start (out of memory, an unusable address). */
struct net_conn *net_conn_connect(uv_loop_t *loop, const struct endpoint *ep,
                                  uint32_t timeout_ms,
                                  const struct net_conn_ops *ops, void *owner);

/* Same with an address resolved beforehand; name is for logs. */
struct net_conn *net_conn_connect_addr(uv_loop_t *loop,
                                       const struct sockaddr *addr,
                                       const char *name, uint32_t timeout_ms,
                                       const struct net_conn_ops *ops,
                                       void *owner);

/* Accepts a pending connection of a TCP or unix listener; NULL on
 * failure. No owner yet: set one before reading. */
struct net_conn *net_conn_accept(uv_stream_t *listener);

/* Takes a connected unix stream socket (one end of a socketpair: a peer
 * inside this process); name is for logs. NULL on failure (fd is then
 * closed). No owner yet. */
struct net_conn *net_conn_adopt(uv_loop_t *loop, int fd, const char *name);

/* Two connected ends inside this process (a peer on the same loop), no
 * socket: what one end flushes reaches the other's owner at the end of
 * the loop turn (a uv_idle runs only while bytes wait: an idle pair costs
 * no wakeup). Same contract as a socket's ends: reads of at most
 * NET_CONN_READ_BUF while reading is started, water marks, on_drained,
 * a graceful close delivering what was queued before the other end's
 * UV_EOF. Bytes count as queued until the other end has read them (no
 * kernel buffer in between). No TLS (UV_ENOTSUP), keepalive or
 * descriptor. 0, or UV_ENOMEM. No owners yet. */
int net_conn_pair(uv_loop_t *loop, const char *name, struct net_conn *ends[2]);

void net_conn_set_owner(struct net_conn *c, const struct net_conn_ops *ops,
                        void *owner);

/* TCP keepalive and user timeout (default: net_tcp_ride_out_outages). */
void net_conn_set_keepalive(struct net_conn *c,
                            const struct net_tcp_keepalive *ka);

/* Congested from high bytes queued, drained at low (default: never). */
void net_conn_set_water(struct net_conn *c, size_t high, size_t low);

/* The owner's release callbacks (and on_drained) may run inside its own
 * net_conn_flush: a plain socket with nothing in flight then writes at
 * once, and what the kernel takes whole needs no libuv write request,
 * which spares a loop turn's bookkeeping and an epoll_ctl per write.
 * Only for owners whose release callbacks do not call back into the
 * connection (default: off; TLS connections always defer). */
void net_conn_set_sync_release(struct net_conn *c, bool on);

/* At most this much written but not yet sent may sit in the kernel
 * (TCP_NOTSENT_LOWAT; default: as much as the send buffer holds, up to
 * 4 MiB). Below it the data waits in the connection's own queue, where the
 * owner sees it (net_conn_queued) and can drop what goes stale. */
void net_conn_set_unsent_limit(struct net_conn *c, int bytes);

/* How long a graceful close waits for the peer (default 1000 ms). */
void net_conn_set_linger(struct net_conn *c, uint32_t ms);

/* TLS 1.3 on c, in ctx's role, before anything else is sent: a dialed
 * connection reports on_connected once the handshake is done too; an
 * accepted one (call it right after accepting) reports on_connected when
 * its handshake is done. A failed handshake reports UV_EPROTO (or
 * UV_ETIMEDOUT) and net_conn_tls_error() says why. peer_name: the name
 * the server's certificate must carry (client role). The owner never sees
 * ciphertext. */
int net_conn_start_tls(struct net_conn *c, struct net_tls_ctx *ctx,
                       const char *peer_name);
bool net_conn_is_tls(const struct net_conn *c);
const char *net_conn_tls_error(const struct net_conn *c);
/* The verified peer certificate's common name, or NULL. */
const char *net_conn_peer_identity(const struct net_conn *c);
/* Checks the peer's certificate again, against ctx (a reloaded CA or CRL):
 * 0 if it still passes, -1 with why. */
int net_conn_tls_recheck(const struct net_conn *c, struct net_tls_ctx *ctx,
                         char *why, size_t len);

/* Reading is off until started. While it is stopped and nothing is being
 * written, a failed connection is still noticed (checked every second). */
void net_conn_read_start(struct net_conn *c);
void net_conn_read_stop(struct net_conn *c);

/* Queues a buffer for the next writev; release(ctx, base, len) runs once
 * it is written or dropped (release NULL: free(base)). The buffer must
 * stay untouched until then. Writes go out at net_conn_flush(), or when
 * the batch is full. After a failure or close the buffer is released at
 * once. */
void net_conn_queue(struct net_conn *c, void *base, size_t len,
                    net_release_fn release, void *ctx);
/* Same for a copy of data; false if out of memory. */
bool net_conn_queue_copy(struct net_conn *c, const void *data, size_t len);
void net_conn_flush(struct net_conn *c);

/* Bytes queued or being written, not yet taken by the kernel. */
size_t net_conn_queued(const struct net_conn *c);
bool net_conn_congested(const struct net_conn *c);

/* graceful: what is queued goes out, our side is shut down, and the peer
 * gets the linger time to close its side (so it reads our last bytes
 * rather than a reset). Otherwise closed at once, queued buffers
 * released. The connection frees itself. */
void net_conn_close(struct net_conn *c, bool graceful);

/* The process is exiting: every connection closed gracefully that still
 * waits (for its peer's FIN, at most its linger time) stops waiting and
 * frees itself in the loop's next turn. Call before closing the loop's
 * remaining handles (uv_walk): closed from outside, with no callback of
 * this module, such a connection would never be freed. */
void net_conn_end_lingering(void);

/* The peer's address ("1.2.3.4:5", "[::1]:5", "unix:/path") or what was
 * dialed. */
const char *net_conn_name(const struct net_conn *c);

/* The peer's TCP address; UV_ENOTSUP for a unix socket. */
int net_conn_peer_addr(const struct net_conn *c, struct sockaddr_storage *ss);

/* The socket's descriptor (for getsockopt, e.g. SO_PEERCRED on a unix
 * socket), or -1. Not for reading or writing: the connection owns it. */
int net_conn_fileno(const struct net_conn *c);

#endif
