/* SPDX-License-Identifier: MIT */
/* The running relay: its config, the agents' listener, targets, sessions
 * and signals on one loop. */
#include "relay.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "daemon.h"
#include "fdstore.h"
#include "log.h"
#include "net_conn.h"
#include "net_listener.h"
#include "net_tls.h"
#include "relay_session.h"
#include "relay_target.h"
#include "version.h"

#define LISTEN_BACKLOG 1024 /* every agent redials at once after a restart */
#define SHUTDOWN_DEADLINE_MS 2000 /* lingering closes take 1 s at most */
#define FDS_PER_SESSION 2         /* the agent's socket and QEMU's */
#define FDS_SPARE 64              /* listeners, log, libuv's own */

static struct relay_target *find_target(void *relay, const char *name)
{
    struct relay *r = relay;
    const struct relay_target_config *cfg = relay_config_target(r->cfg, name);
    return cfg ? r->targets[cfg - r->cfg->targets] : NULL;
}

static void on_session_ended(void *relay, struct relay_session *s)
{
    struct relay *r = relay;
    (void)s;
    r->n_sessions--;
}

static const struct relay_session_ops relay_session_ops = {
    .find_target = find_target,
    .on_ended = on_session_ended,
};

/* Over a limit: say so in a RESULT before any hello, and hang up. Logged
 * once per reason, then counted (a flood must not fill the log). */
static void relay_refuse_busy(struct relay *r, struct net_conn *c,
                              const char *text)
{
    uint8_t msg[RELAY_MSG_MAX];
    size_t len = relay_refusal_message(msg, RELAY_REFUSED_BUSY, text);
    char more[LOG_LIMIT_SUFFIX_MAX], closing[LOG_LIMIT_CLOSING_MAX];
    unsigned repeats;

    net_conn_queue_copy(c, msg, len);
    r->stats.refused[RELAY_REFUSED_BUSY]++;
    if (log_limit_closing(&r->busy, text, closing, sizeof(closing)))
        log_notice("agents refused as busy %s", closing);
    if (log_limit_check(&r->busy, text, uv_now(r->loop), &repeats))
        log_warn("agent %s refused: busy: %s%s", net_conn_name(c), text,
                 log_limit_suffix(repeats, more, sizeof(more)));
    net_conn_close(c, true);
}

static void on_agent_connection(void *ctx, struct net_conn *c)
{
    struct relay *r = ctx;
    struct relay_session_params p = {
        .loop = r->loop,
        .cfg = (const struct relay_config *const *)&r->cfg,
        .ops = &relay_session_ops,
        .relay = r,
        .admit = &r->admit,
        .refusals = &r->refusals,
        .stats = &r->stats,
    };
    struct sockaddr_storage addr;
    enum net_admit_verdict v;
    char text[64];

    if (r->stopping) {
        net_conn_close(c, false);
        return;
    }
    if (r->n_sessions >= r->cfg->max_sessions) {
        snprintf(text, sizeof(text), "relay at its limit of %u sessions",
                 r->cfg->max_sessions);
        relay_refuse_busy(r, c, text);
        return;
    }
    net_conn_peer_addr(c, &addr);
    v = net_admit_enter(&r->admit, (struct sockaddr *)&addr);
    if (v != NET_ADMIT_OK) {
        relay_refuse_busy(r, c, net_admit_verdict_name(v));
        return;
    }
    r->n_sessions++;
    relay_session_start(&p, c, &addr, &r->sessions);
}

/* Who may connect: the allowlist, TLS with client certificates, and the
 * limits on handshakes (with TLS the TLS handshake counts too). */
static void relay_guard_listener(struct relay *r)
{
    struct net_guard g;

    net_guard_init(&g, "agents listener");
    g.allow_any = r->cfg->allow_any;
    g.allow = r->cfg->allow;
    g.tls = r->tls;
    g.limits = r->cfg->handshakes;
    net_listener_set_guard(r->listener, &g);
}

/* The agents' TLS context, made anew at start and on every reload (a new
 * CRL). Returns 0, or -1 after logging why. */
static int relay_make_tls(const struct relay_config *cfg,
                          struct net_tls_ctx **out)
{
    char err[NET_TLS_ERR_MAX];

    *out = NULL;
    if (!cfg->tls.enabled)
        return 0;
    *out = net_tls_ctx_new(&cfg->tls, true, err, sizeof(err));
    if (!*out) {
        log_err("[relay] TLS: %s", err);
        return -1;
    }
    net_tls_ctx_set_handshake_timeout(*out, cfg->handshake_timeout_ms);
    return 0;
}

/* After a reload: agents whose certificate is now denied, revoked or no
 * longer allowed on their target are cut off; the others keep running. */
static void relay_recheck_sessions(struct relay *r)
{
    struct list_node *n, *next;
    char why[NET_TLS_ERR_MAX];
    size_t cut = 0;

    for (n = r->sessions.next; n != &r->sessions; n = next) {
        next = n->next;
        struct relay_session *s = relay_session_from_node(n);
        if (relay_session_recheck(s, r->cfg, r->tls, why, sizeof(why)) == 0)
            continue;
        relay_session_close(s, why);
        cut++;
    }
    if (cut)
        log_notice("SIGHUP: %zu agent session(s) cut off by the new "
                   "configuration",
                   cut);
}

static void close_all_sessions(struct relay *r, const char *why)
{
    while (!list_empty(&r->sessions))
        relay_session_close(relay_session_from_node(r->sessions.next), why);
}

/* Closes every target (shutdown, or a start that failed half-way). */
static void relay_close_targets(struct relay *r)
{
    for (size_t i = 0; r->targets && i < r->cfg->n_targets; i++) {
        if (r->targets[i])
            relay_target_close(r->targets[i]);
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
    fdstore_keep(); /* a restart takes the serial targets' ttys back */
    daemon_notify("STOPPING=1");
    log_info("%s: closing %zu session%s and exiting", why, r->n_sessions,
             r->n_sessions == 1 ? "" : "s");
    uv_timer_start(&r->deadline, on_deadline, SHUTDOWN_DEADLINE_MS, 0);
    uv_unref((uv_handle_t *)&r->deadline); /* does not keep the loop up */
    if (r->listener)
        net_listener_close(r->listener);
    r->listener = NULL;
    relay_metrics_stop(r);
    net_tls_ctx_unref(r->tls);
    r->tls = NULL;
    uv_close((uv_handle_t *)&r->sig_term, NULL);
    uv_close((uv_handle_t *)&r->sig_int, NULL);
    uv_close((uv_handle_t *)&r->sig_hup, NULL);
    close_all_sessions(r, "relay shutting down");
    relay_close_targets(r);
}

/* Closes the targets the new config has no place for (or describes
 * differently), with their sessions; fills kept[] with the others, indexed
 * like next->targets. */
static void relay_match_targets(struct relay *r, struct relay_config *next,
                                struct relay_target **kept, size_t *n_closed)
{
    size_t j = 0;

    *n_closed = 0;
    for (size_t i = 0; i < r->cfg->n_targets; i++) {
        struct relay_target *t = r->targets[i];
        while (j < next->n_targets &&
               strcmp(next->targets[j].name, relay_target_name(t)) < 0)
            j++;
        if (j < next->n_targets && relay_target_ready(t) &&
            relay_target_same(t, &next->targets[j])) {
            relay_target_rebind(t, &next->targets[j]);
            kept[j] = t;
            continue;
        }
        struct relay_session *holder = relay_target_holder(t);
        if (holder)
            relay_session_close(holder, "its target was changed or removed "
                                        "by a reload");
        relay_target_close(t);
        (*n_closed)++;
    }
}

/* Applies a config that loaded: targets kept, closed, opened; the rest of
 * the values apply to sessions that start from now on. */
static void relay_apply(struct relay *r, struct relay_config *next)
{
    struct relay_target **targets =
        calloc(next->n_targets ? next->n_targets : 1, sizeof(*targets));
    size_t closed, opened = 0;

    if (!targets) {
        log_err("SIGHUP: out of memory; keeping the current configuration");
        relay_config_free(next);
        free(next);
        return;
    }
    relay_match_targets(r, next, targets, &closed);
    for (size_t j = 0; j < next->n_targets; j++) {
        if (!targets[j]) {
            targets[j] = relay_target_open(r->loop, &next->targets[j]);
            opened++;
        }
    }
    free(r->targets);
    r->targets = targets;
    relay_config_free(r->cfg);
    free(r->cfg);
    r->cfg = next; /* nothing points into the old one any more */
    log_set_level(r->cfg->log_level);
    log_info("SIGHUP: configuration reloaded from %s (%zu targets: %zu "
             "kept, %zu closed, %zu opened)",
             r->cfg->path, r->cfg->n_targets, r->cfg->n_targets - opened,
             closed, opened);
}

static void relay_reload(struct relay *r)
{
    struct relay_config *next = calloc(1, sizeof(*next));
    char err[RELAY_CONFIG_ERR_MAX] = "out of memory";
    struct net_tls_ctx *tls = NULL;

    daemon_notify("RELOADING=1");
    if (!next || relay_config_load(r->cfg->path, next, err, sizeof(err)) < 0) {
        log_err("SIGHUP: %s; keeping the current configuration", err);
        if (next)
            relay_config_free(next);
        free(next);
    } else if (relay_make_tls(next, &tls) < 0) {
        log_err("SIGHUP: keeping the current configuration");
        relay_config_free(next);
        free(next);
    } else {
        if (!hostport_same_listen(&next->listen, &r->cfg->listen))
            log_notice("SIGHUP: [relay] listen changed; restart the relay to "
                       "apply that");
        next->listen = r->cfg->listen;
        relay_apply(r, next);
        net_tls_ctx_unref(r->tls);
        r->tls = tls;
        net_admit_set_limits(&r->admit, &r->cfg->handshakes);
        relay_guard_listener(r);
        relay_recheck_sessions(r);
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
    rlim_t want = (rlim_t)r->cfg->max_sessions * FDS_PER_SESSION +
                  r->cfg->n_targets + FDS_SPARE;

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
                 r->cfg->max_sessions);
}

static int relay_listen(struct relay *r)
{
    struct endpoint ep = {.tcp = r->cfg->listen};
    char name[ENDPOINT_STR_MAX], why[ENDPOINT_STR_MAX + 128];

    endpoint_str(&ep, name, sizeof(name));
    if (relay_make_tls(r->cfg, &r->tls) < 0)
        return -1;
    r->listener = net_listener_open(r->loop, &ep, LISTEN_BACKLOG, 0,
                                    on_agent_connection, r, why, sizeof(why));
    if (!r->listener) {
        log_err("%s", why);
        return -1;
    }
    relay_guard_listener(r);
    log_notice("redir-relay %s listening for agents on %s (%zu target%s, "
               "at most %u sessions, %s)",
               REDIR_VERSION, name, r->cfg->n_targets,
               r->cfg->n_targets == 1 ? "" : "s", r->cfg->max_sessions,
               r->tls ? "TLS 1.3, agents by certificate"
                      : "shared secret, not encrypted");
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
    r->targets = calloc(r->cfg->n_targets, sizeof(*r->targets));
    if (!r->targets) {
        log_err("out of memory");
        return -1;
    }
    relay_raise_fd_limit(r);
    for (size_t i = 0; i < r->cfg->n_targets; i++) {
        r->targets[i] = relay_target_open(r->loop, &r->cfg->targets[i]);
        if (!r->targets[i] || !relay_target_ready(r->targets[i]))
            return -1;
    }
    size_t dropped = fdstore_drop_unclaimed();
    if (dropped)
        log_info("%zu fd(s) kept by systemd for targets no longer "
                 "configured: closed",
                 dropped);
    if (relay_listen(r) < 0 || relay_metrics_start(r) < 0)
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
    list_init(&r->sessions);
    net_admit_init(&r->admit, &r->cfg->handshakes);
    uv_timer_init(r->loop, &r->deadline);
    fdstore_init();
    if (relay_start(r) < 0) {
        log_err("start-up failed: exiting");
        rc = 1;
        r->stopping = true;
        fdstore_keep(); /* the next try may work: QEMU keeps its ptys */
        fdstore_drop_unclaimed();
        relay_close_targets(r);
        if (r->listener)
            net_listener_close(r->listener);
        r->listener = NULL;
        net_conn_end_lingering();
        uv_walk(r->loop, on_walk_close, NULL);
    }
    uv_run(r->loop, UV_RUN_DEFAULT);
    if (!uv_is_closing((uv_handle_t *)&r->deadline))
        uv_close((uv_handle_t *)&r->deadline, NULL);
    uv_run(r->loop, UV_RUN_DEFAULT);
    uv_loop_close(r->loop);
    net_tls_ctx_unref(r->tls);
    r->tls = NULL;
    net_admit_free(&r->admit);
    free(r->targets);
    r->targets = NULL;
    if (rc == 0)
        log_info("stopped");
    /* Last: an init script waiting on the pidfile knows sessions are gone. */
    daemon_pidfile_remove(r->pidfile);
    return rc;
}
