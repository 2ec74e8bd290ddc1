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

#define RELAY_SESSION_CHARDEV_TIMEOUT_MS 10000 /* connect, or QEMU dials in */

struct log_limit;
struct net_admit;
struct net_conn;
struct net_tls_ctx;
struct relay_session;
struct relay_target;
struct relay_pump_counters;

#define RELAY_STATS_STATUSES 8 /* refusal statuses (relay_proto.h) */

/* Totals since start, for the metrics endpoint; sessions add to them. */
struct relay_stats {
    uint64_t accepted;                      /* handshakes that got a pump */
    uint64_t refused[RELAY_STATS_STATUSES]; /* by refusal status */
    uint64_t qemu_connect_failures;
    uint64_t from_agent, to_chardev, from_chardev, to_agent; /* ended */
    uint64_t agent_pauses, chardev_pauses;                   /* ended */
};

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
    /* The relay's: the session counts in it until its AUTH is decided,
     * and logs refusals through refusals (one line per reason a minute). */
    struct net_admit *admit;
    struct log_limit *refusals;
    struct relay_stats *stats; /* the relay's */
};

/* States, for the metrics: "handshake", "attaching", "pumping". */
const char *relay_session_state_name(const struct relay_session *s);

/* A live session's pump counters (NULL when not pumping). */
const struct relay_pump_counters *
relay_session_counters(const struct relay_session *s);

/* Takes an accepted agent connection, admitted into p->admit from addr:
 * sends the hello, starts the handshake timer. The session is linked into
 * list (the relay's). */
void relay_session_start(const struct relay_session_params *p,
                         struct net_conn *agent,
                         const struct sockaddr_storage *addr,
                         struct list_node *list);

/* After a reload: -1 (with why) if the agent may no longer use its target
 * under cfg: its certificate is denied, not among the target's agents, or
 * fails tls (a new CA or CRL; NULL: not checked). */
int relay_session_recheck(const struct relay_session *s,
                          const struct relay_config *cfg,
                          struct net_tls_ctx *tls, char *why, size_t len);

/* Ends the session (logged with why); from the relay (shutdown, a target
 * gone) and the session itself. */
void relay_session_close(struct relay_session *s, const char *why);

/* The session whose list node is n. */
struct relay_session *relay_session_from_node(struct list_node *n);

#endif
