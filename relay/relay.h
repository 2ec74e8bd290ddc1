/* The running relay: its config, the agents' listener, targets, sessions
 * and signals on one loop. */
#ifndef REDIR_RELAY_H
#define REDIR_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "conn.h"
#include "relay_config.h"

struct session;
struct target;

struct relay {
    uv_loop_t *loop;
    struct relay_config cfg;
    const char *pidfile; /* NULL: none */
    uv_tcp_t listener;   /* agents connect here */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t deadline;      /* bounds the shutdown */
    struct target **targets;  /* one per cfg.targets[i], same order */
    struct session *sessions; /* every agent connection, newest first */
    size_t n_sessions;
    bool stopping;
    uint8_t read_buf[CONN_READ_BUF]; /* shared by every conn */
};

/* Binds, listens and runs until SIGTERM/SIGINT; SIGHUP reloads the
 * config. Returns the exit code. */
int relay_run(struct relay *r);

/* The runtime state of the target called name, or NULL. */
struct target *relay_target(struct relay *r, const char *name);

/* Sessions call these as they come and go. */
void relay_session_added(struct relay *r, struct session *s);
void relay_session_removed(struct relay *r, struct session *s);

#endif
