/* SPDX-License-Identifier: MIT */
/* The running relay: its config, the agents' listener, targets, sessions
 * and signals on one loop. */
#ifndef REDIR_RELAY_H
#define REDIR_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "list.h"
#include "log_limit.h"
#include "net_admit.h"
#include "relay_config.h"
#include "relay_session.h"

struct net_listener;
struct net_tls_ctx;
struct relay_target;

struct relay {
    uv_loop_t *loop;
    struct relay_config *cfg;      /* the current one; a reload replaces it */
    const char *pidfile;           /* NULL: none */
    struct net_listener *listener; /* agents connect here */
    struct net_tls_ctx *tls;       /* agents' TLS; NULL: plaintext */
    struct net_admit admit;        /* agents still in their handshake */
    struct log_limit refusals;     /* what the sessions refuse */
    struct log_limit busy;         /* what the relay refuses at once */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t deadline;           /* bounds the shutdown */
    struct relay_target **targets; /* one per cfg->targets[i], same order */
    struct list_node sessions;     /* every agent connection */
    size_t n_sessions;
    bool stopping;
    struct relay_stats stats;     /* for the metrics endpoint */
    struct metrics_http *metrics; /* NULL unless [relay] metrics_listen */
};

/* relay_metrics.c: starts/stops the Prometheus endpoint if configured;
 * 0 or -1 after logging why. */
int relay_metrics_start(struct relay *r);
void relay_metrics_stop(struct relay *r);

/* Binds, listens and runs until SIGTERM/SIGINT with r->cfg loaded (the
 * relay owns it from here); SIGHUP reloads the config. Returns the exit
 * code. */
int relay_run(struct relay *r);

#endif
