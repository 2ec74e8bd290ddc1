/* SPDX-License-Identifier: MIT */
/* One agent connection: handshake, attaching to its target's chardev, then
 * pumping bytes both ways through the codec with backpressure. */
#ifndef REDIR_RELAY_SESSION_H
#define REDIR_RELAY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "list.h"
#include "relay_config.h"

#define RELAY_SESSION_HANDSHAKE_TIMEOUT_MS 10000 /* hello to AUTH, generous */
#define RELAY_SESSION_CHARDEV_TIMEOUT_MS 10000   /* connect, or QEMU dials in */

struct net_conn;
struct relay_session;
struct relay_target;

/* What a session asks of and tells the relay. */
struct relay_session_ops {
    /* the target called name, or NULL */
    struct relay_target *(*find_target)(void *relay, const char *name);
    /* the session is over; its memory goes once its timer closed */
    void (*on_ended)(void *relay, struct relay_session *s);
};

struct relay_session_params {
    uv_loop_t *loop;
    /* the relay's config, which a reload replaces: read through */
    const struct relay_config *const *cfg;
    const struct relay_session_ops *ops;
    void *relay;
};

/* Takes an accepted agent connection: sends the hello, starts the
 * handshake timer. The session is linked into list (the relay's). */
void relay_session_start(const struct relay_session_params *p,
                         struct net_conn *agent, struct list_node *list);

/* Ends the session (logged with why); from the relay (shutdown, a target
 * gone) and the session itself. */
void relay_session_close(struct relay_session *s, const char *why);

/* The session whose list node is n. */
struct relay_session *relay_session_from_node(struct list_node *n);

#endif
