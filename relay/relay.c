/* The running relay: its config, the agents' listener, targets, sessions
 * and signals on one loop. */
#include "relay.h"

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "daemon.h"
#include "log.h"
#include "session.h"
#include "target.h"
#include "version.h"

#define LISTEN_BACKLOG 1024 /* every agent redials at once after a restart */
#define SHUTDOWN_DEADLINE_MS 2000 /* lingering closes take 1 s at most */
#define FDS_PER_SESSION 2         /* the agent's socket and QEMU's */
#define FDS_SPARE 64              /* listeners, log, libuv's own */

void relay_session_added(struct relay *r, struct session *s)
{
    s->prev = NULL;
    s->next = r->sessions;
    if (r->sessions)
        r->sessions->prev = s;
    r->sessions = s;
    r->n_sessions++;
}

void relay_session_removed(struct relay *r, struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        r->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    r->n_sessions--;
}

struct target *relay_target(struct relay *r, const char *name)
{
    const struct relay_target_config *cfg = relay_config_target(&r->cfg, name);
    return cfg ? r->targets[cfg - r->cfg.targets] : NULL;
}

/* Over the limit: say so in a RESULT before any hello, and hang up. */
static void relay_refuse_full(struct relay *r, struct conn *c)
{
    uint8_t msg[RELAY_MSG_MAX];
    char text[64];

    snprintf(text, sizeof(text), "relay at its limit of %u sessions",
             r->cfg.max_sessions);
    size_t len = relay_refusal_message(msg, RELAY_REFUSED_BUSY, text);

    conn_queue_copy(c, msg, len);
    log_warn("agent %s refused: busy: %s", c->name, text);
    conn_close(c, true);
}

static void on_agent_connection(uv_stream_t *listener, int status)
{
    struct relay *r = listener->data;
    struct conn *c;

    if (status < 0) {
        log_warn("accepting an agent: %s", uv_strerror(status));
        return;
    }
    c = conn_accept(listener, r->read_buf);
    if (!c)
        return;
    if (r->n_sessions >= r->cfg.max_sessions)
        relay_refuse_full(r, c);
    else
        session_start(r, c);
}

/* Closes every target (shutdown, or a start that failed half-way). */
static void relay_close_targets(struct relay *r)
{
    for (size_t i = 0; r->targets && i < r->cfg.n_targets; i++) {
        if (r->targets[i])
            target_close(r->targets[i]);
        r->targets[i] = NULL;
    }
}

static void on_deadline(uv_timer_t *timer)
{
    (void)timer;
    log_warn("shutdown took too long; exiting anyway");
    exit(0);
}

static void relay_stop(struct relay *r, const char *why)
{
    if (r->stopping)
        return;
    r->stopping = true;
    daemon_notify("STOPPING=1");
    log_info("%s: closing %zu sessions and exiting", why, r->n_sessions);
    uv_timer_start(&r->deadline, on_deadline, SHUTDOWN_DEADLINE_MS, 0);
    uv_unref((uv_handle_t *)&r->deadline); /* does not keep the loop up */
    uv_close((uv_handle_t *)&r->listener, NULL);
    uv_close((uv_handle_t *)&r->sig_term, NULL);
    uv_close((uv_handle_t *)&r->sig_int, NULL);
    uv_close((uv_handle_t *)&r->sig_hup, NULL);
    while (r->sessions)
        session_close(r->sessions, "relay shutting down");
    relay_close_targets(r);
}

/* Closes the targets the new config has no place for (or describes
 * differently), with their sessions; fills kept[] with the others, indexed
 * like next->targets. */
static void relay_match_targets(struct relay *r, struct relay_config *next,
                                struct target **kept, size_t *n_closed)
{
    size_t j = 0;

    *n_closed = 0;
    for (size_t i = 0; i < r->cfg.n_targets; i++) {
        struct target *t = r->targets[i];
        while (j < next->n_targets &&
               strcmp(next->targets[j].name, t->cfg->name) < 0)
            j++;
        if (j < next->n_targets && t->ready &&
            target_same(t, &next->targets[j])) {
            t->cfg = &next->targets[j];
            kept[j] = t;
            continue;
        }
        if (t->session)
            session_close(t->session, "its target was changed or removed by "
                                      "a reload");
        target_close(t);
        (*n_closed)++;
    }
}

/* Applies a config that loaded: targets kept, closed, opened; the rest of
 * the values apply to sessions that start from now on. */
static void relay_apply(struct relay *r, struct relay_config *next)
{
    struct target **targets =
        calloc(next->n_targets ? next->n_targets : 1, sizeof(*targets));
    size_t closed, opened = 0;

    if (!targets) {
        log_err("SIGHUP: out of memory; keeping the current configuration");
        relay_config_free(next);
        return;
    }
    relay_match_targets(r, next, targets, &closed);
    for (size_t j = 0; j < next->n_targets; j++) {
        if (!targets[j]) {
            targets[j] = target_open(r, &next->targets[j]);
            opened++;
        }
    }
    free(r->targets);
    r->targets = targets;
    relay_config_free(&r->cfg);
    r->cfg = *next;
    memset(next, 0, sizeof(*next)); /* r->cfg owns it all now */
    log_set_level(r->cfg.log_level);
    log_info("SIGHUP: configuration reloaded from %s (%zu targets: %zu "
             "kept, %zu closed, %zu opened)",
             r->cfg.path, r->cfg.n_targets, r->cfg.n_targets - opened, closed,
             opened);
}

static void relay_reload(struct relay *r)
{
    struct relay_config next;
    char err[RELAY_CONFIG_ERR_MAX];

    daemon_notify("RELOADING=1");
    if (relay_config_load(r->cfg.path, &next, err, sizeof(err)) < 0) {
        log_err("SIGHUP: %s; keeping the current configuration", err);
        relay_config_free(&next);
    } else {
        if (strcmp(next.listen.host, r->cfg.listen.host) != 0 ||
            next.listen.port != r->cfg.listen.port) {
            log_notice("SIGHUP: [relay] listen changed; restart the relay to "
                       "apply that");
            next.listen = r->cfg.listen;
        }
        relay_apply(r, &next);
    }
    daemon_notify("READY=1");
}

static void on_signal(uv_signal_t *handle, int signum)
{
    struct relay *r = handle->data;

    if (signum == SIGHUP) {
        if (!r->stopping)
            relay_reload(r);
        return;
    }
    relay_stop(r, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* Two sockets per session: the default soft limit of 1024 files would
 * cap the relay at ~500 sessions. */
static void relay_raise_fd_limit(struct relay *r)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)r->cfg.max_sessions * FDS_PER_SESSION +
                  r->cfg.n_targets + FDS_SPARE;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want)
        log_warn("open file limit %llu is below the %llu that max_sessions "
                 "= %u needs; raise it (LimitNOFILE= in systemd)",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)want,
                 r->cfg.max_sessions);
}

static int relay_listen(struct relay *r)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char port[8], name[HOSTPORT_HOST_MAX + 8];
    int rc;

    hostport_str(&r->cfg.listen, name, sizeof(name));
    snprintf(port, sizeof(port), "%u", r->cfg.listen.port);
    rc = getaddrinfo(r->cfg.listen.host, port, &hints, &res);
    if (rc != 0) {
        log_err("cannot resolve %s: %s", name, gai_strerror(rc));
        return -1;
    }
    uv_tcp_init(r->loop, &r->listener);
    r->listener.data = r;
    rc = uv_tcp_bind(&r->listener, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&r->listener, LISTEN_BACKLOG,
                       on_agent_connection);
    if (rc < 0) {
        log_err("cannot listen on %s: %s", name, uv_strerror(rc));
        return -1;
    }
    log_notice("redir-relay %s listening for agents on %s (%zu targets, at "
               "most %u sessions)",
               REDIR_VERSION, name, r->cfg.n_targets, r->cfg.max_sessions);
    return 0;
}

static void relay_watch_signal(struct relay *r, uv_signal_t *h, int signum)
{
    uv_signal_init(r->loop, h);
    h->data = r;
    uv_signal_start(h, on_signal, signum);
}

static int relay_start(struct relay *r)
{
    r->targets = calloc(r->cfg.n_targets, sizeof(*r->targets));
    if (!r->targets) {
        log_err("out of memory");
        return -1;
    }
    relay_raise_fd_limit(r);
    uv_timer_init(r->loop, &r->deadline);
    for (size_t i = 0; i < r->cfg.n_targets; i++) {
        r->targets[i] = target_open(r, &r->cfg.targets[i]);
        if (!r->targets[i] || !r->targets[i]->ready)
            return -1;
    }
    if (relay_listen(r) < 0)
        return -1;
    relay_watch_signal(r, &r->sig_term, SIGTERM);
    relay_watch_signal(r, &r->sig_int, SIGINT);
    relay_watch_signal(r, &r->sig_hup, SIGHUP);
    if (r->pidfile && daemon_pidfile_write(r->pidfile) < 0)
        return -1;
    daemon_notify("READY=1");
    return 0;
}

static void on_walk_close(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

int relay_run(struct relay *r)
{
    int rc = 0;

    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error code */
    r->loop = uv_default_loop();
    if (relay_start(r) < 0) {
        rc = 1;
        r->stopping = true;
        relay_close_targets(r);
        uv_walk(r->loop, on_walk_close, NULL);
    }
    uv_run(r->loop, UV_RUN_DEFAULT);
    if (!uv_is_closing((uv_handle_t *)&r->deadline))
        uv_close((uv_handle_t *)&r->deadline, NULL);
    uv_run(r->loop, UV_RUN_DEFAULT);
    uv_loop_close(r->loop);
    free(r->targets);
    r->targets = NULL;
    if (rc == 0)
        log_info("stopped");
    /* Last: an init script waiting on the pidfile knows sessions are gone. */
    daemon_pidfile_remove(r->pidfile);
    return rc;
}
