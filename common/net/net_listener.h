/* SPDX-License-Identifier: MIT */
/* A listening TCP or unix socket that hands each accepted connection to its
 * owner as a net_conn, once its guard let it in: an address allowlist, then
 * TLS with the peer's certificate checked, under handshake limits. */
#ifndef REDIR_NET_LISTENER_H
#define REDIR_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "cidr.h"
#include "endpoint.h"
#include "net_admit.h"

struct net_conn;
struct net_listener;
struct net_tls_ctx;

#define NET_GUARD_NAME_MAX 256

/* Who gets through to the owner. A refused connection is closed without a
 * byte; refusals are logged once per reason and then summarised. */
struct net_guard {
    /* allow_any: every address; otherwise only those in allow (TCP; a
     * unix socket's file mode decides who connects there). */
    bool allow_any;
    struct cidr_list allow;
    /* TLS: the connection is handed over once its handshake is done and
     * the client's certificate verified; NULL: plaintext. The listener
     * keeps a reference. */
    struct net_tls_ctx *tls;
    /* With TLS: globs, comma-separated, one of which the client
     * certificate's name must match ("": any certificate the CA signed). */
    char peer_glob[NET_GUARD_NAME_MAX];
    /* Handshakes under way at once (TLS only). */
    struct net_admit_limits limits;
    /* For the log: "serial port gps", "usb slot 127.0.0.1:4000". */
    char what[NET_GUARD_NAME_MAX];
};

/* The defaults: any address, plaintext, no limits. */
void net_guard_init(struct net_guard *g, const char *what);

/* A new connection (no owner yet: the callee sets one or closes it). */
typedef void (*net_accept_fn)(void *ctx, struct net_conn *c);

/* Binds (SO_REUSEADDR) and listens on ep. A unix socket file left by a
 * crashed process is replaced; one somebody answers on is an error; the
 * file gets unix_mode (0: the umask decides). Returns NULL with the reason
 * ("cannot resolve ...", "cannot listen on ADDR: ...") in why. */
struct net_listener *net_listener_open(uv_loop_t *loop,
                                       const struct endpoint *ep, int backlog,
                                       unsigned unix_mode, net_accept_fn accept,
                                       void *ctx, char *why, size_t why_len);

/* Sets or replaces the guard (a reload): connections already handed over
 * are not touched; handshakes under way finish under the old one. */
void net_listener_set_guard(struct net_listener *l, const struct net_guard *g);

/* Stops listening (a unix socket file is removed) and frees the listener
 * once its handle has closed. */
void net_listener_close(struct net_listener *l);

/* The address as configured, for logs. */
const char *net_listener_name(const struct net_listener *l);

#endif
