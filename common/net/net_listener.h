/* SPDX-License-Identifier: MIT */
/* A listening TCP or unix socket that hands each accepted connection to its
 * owner as a net_conn. */
#ifndef REDIR_NET_LISTENER_H
#define REDIR_NET_LISTENER_H

#include <stddef.h>
#include <uv.h>

#include "endpoint.h"

struct net_conn;
struct net_listener;

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

/* Stops listening (a unix socket file is removed) and frees the listener
 * once its handle has closed. */
void net_listener_close(struct net_listener *l);

/* The address as configured, for logs. */
const char *net_listener_name(const struct net_listener *l);

#endif
