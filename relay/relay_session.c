/* SPDX-License-Identifier: MIT */
/* One agent connection: handshake, attaching to its target's chardev, then
 * pumping bytes both ways through the codec with backpressure. */
#include "relay_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glob_list.h"
#include "log.h"
#include "log_limit.h"
#include "net_admit.h"
#include "net_conn.h"
#include "relay_proto.h"
#include "relay_pump.h"
#include "relay_target.h"

enum session_state {
    SESSION_HANDSHAKE, /* hello sent, waiting for AUTH */
    SESSION_ATTACHING, /* accepted, getting the chardev */
    SESSION_PUMPING,
    SESSION_CLOSED, /* waiting for its timer to close, then freed */
};

struct relay_session {
    struct list_node node; /* in the relay's list */
    struct relay_session_params p;
    struct relay_target *target;      /* held from ATTACHING on */
    struct net_conn *agent, *chardev; /* until the pump has them */
    struct net_conn *agent_link;      /* not owned: for its certificate */
    struct relay_pump *pump;          /* PUMPING */
    uv_timer_t timer;                 /* handshake, then chardev timeout */
    struct relay_server *hs;          /* during the handshake only */
    enum session_state state;
    char agent_id[RELAY_ID_MAX + 1]; /* "" until the AUTH */
    /* the agent's certificate name (TLS), "" without: with TLS it, not
     * the id the agent claims, is who the agent is */
    char identity[TLS_NAME_MAX];
    char peer[NET_CONN_NAME_MAX]; /* the agent's address */
    struct sockaddr_storage addr;
    bool admitted; /* counted in p.admit */
    uint64_t started_ms;
    uint64_t handshake_bytes; /* from the agent */
};

static const struct net_conn_ops agent_ops, chardev_ops;
static void on_pump_done(void *owner, const char *why);

struct relay_session *relay_session_from_node(struct list_node *n)
{
    return list_entry(n, struct relay_session, node);
}

const char *relay_session_state_name(const struct relay_session *s)
{
    switch (s->state) {
    case SESSION_HANDSHAKE: return "handshake";
    case SESSION_ATTACHING: return "attaching";
    case SESSION_PUMPING: return "pumping";
    default: return "closing";
    }
}

const struct relay_pump_counters *
relay_session_counters(const struct relay_session *s)
{
    return s->pump ? relay_pump_counters(s->pump) : NULL;
}

static const struct relay_config *
relay_session_cfg(const struct relay_session *s)
{
    return *s->p.cfg;
}

static void on_timer_closed(uv_handle_t *handle) { free(handle->data); }

/* "'id' (addr)" once the agent said who it is, else "addr". */
static const char *relay_session_who(const struct relay_session *s, char *buf,
                                     size_t len)
{
    if (s->agent_id[0])
        snprintf(buf, len, "'%s' (%s)", s->agent_id, s->peer);
    else
        snprintf(buf, len, "%s", s->peer);
    return buf;
}

/* The handshake is decided (or the session over): it no longer counts
 * against the unauthenticated connections. */
static void relay_session_leave_admission(struct relay_session *s)
{
    if (s->admitted)
        net_admit_leave(s->p.admit, (struct sockaddr *)&s->addr);
    s->admitted = false;
}

/* Releases everything; the memory goes when the timer has closed. */
static void relay_session_end(struct relay_session *s)
{
    relay_session_leave_admission(s);
    if (s->target)
        relay_target_let_go(s->target, s);
    if (s->pump) {
        const struct relay_pump_counters *n = relay_pump_counters(s->pump);
        struct relay_stats *st = s->p.stats;
        st->from_agent += n->from_agent;
        st->to_chardev += n->to_chardev;
        st->from_chardev += n->from_chardev;
        st->to_agent += n->to_agent;
        st->agent_pauses += n->agent_pauses;
        st->chardev_pauses += n->chardev_pauses;
        relay_pump_free(s->pump);
    }
    if (s->agent)
        net_conn_close(s->agent, true);
    if (s->chardev)
        net_conn_close(s->chardev, false);
    s->pump = NULL;
    s->agent = s->chardev = s->agent_link = NULL;
    free(s->hs);
    s->hs = NULL;
    s->state = SESSION_CLOSED;
    list_remove(&s->node);
    s->p.ops->on_ended(s->p.relay, s);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

/* Sends what the handshake queued: the hello, the RESULT. */
static void relay_session_send_handshake(struct relay_session *s)
{
    if (s->hs->out_len == 0)
        return;
    net_conn_queue_copy(s->agent, s->hs->out, s->hs->out_len);
    relay_server_output_sent(s->hs);
    net_conn_flush(s->agent);
}

/* Whether to log a refusal or failed handshake for reason (the relay's
 * limiter: each reason when it first occurs and when it changes, repeats
 * counted); a change first says what the previous reason did since its
 * line, so no repeat goes unmentioned. */
static bool relay_session_log_ok(struct relay_session *s, const char *reason,
                                 unsigned *repeats)
{
    char closing[LOG_LIMIT_CLOSING_MAX];

    if (log_limit_closing(s->p.refusals, reason, closing, sizeof(closing)))
        log_notice("handshakes refused %s", closing);
    return log_limit_check(s->p.refusals, reason, uv_now(s->p.loop), repeats);
}

/* The peer's host (its address without the port), into buf. */
static const char *relay_session_host(const struct relay_session *s, char *buf,
                                      size_t len)
{
    const char *port = strrchr(s->peer, ':');
    snprintf(buf, len, "%.*s",
             port ? (int)(port - s->peer) : (int)strlen(s->peer), s->peer);
    return buf;
}

/* Tells the agent no (the RESULT is already queued in s->hs), logs it,
 * counts it, ends the session. */
static void relay_session_send_refusal(struct relay_session *s)
{
    char who[RELAY_ID_MAX + NET_CONN_NAME_MAX + 8];
    char kind[RELAY_TARGET_MAX + NET_CONN_NAME_MAX + 64];
    char host[NET_CONN_NAME_MAX];
    char more[LOG_LIMIT_SUFFIX_MAX];
    unsigned repeats = 0;

    if (s->hs->status >= 0 && s->hs->status < RELAY_STATS_STATUSES)
        s->p.stats->refused[s->hs->status]++;
    /* One line per kind of refusal, target and source host, then a count
     * a minute: a flood of bad handshakes is not a flood of log lines. */
    snprintf(kind, sizeof(kind), "%s from %s%s%s",
             relay_status_name(s->hs->status),
             relay_session_host(s, host, sizeof(host)),
             s->hs->target[0] ? " for target " : "", s->hs->target);
    if (relay_session_log_ok(s, kind, &repeats))
        log_notice("agent %s refused%s%s: %s: %s%s",
                   relay_session_who(s, who, sizeof(who)),
                   s->hs->target[0] ? " for target " : "", s->hs->target,
                   relay_status_name(s->hs->status), s->hs->error,
                   log_limit_suffix(repeats, more, sizeof(more)));
    relay_session_send_handshake(s);
    relay_session_end(s);
}

static void relay_session_refuse(struct relay_session *s, int status,
                                 const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Refuses with status and a reason (also the log's), ends the session. */
static void relay_session_refuse(struct relay_session *s, int status,
                                 const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->hs->error, sizeof(s->hs->error), fmt, ap);
    va_end(ap);
    s->hs->status = status;
    relay_server_result(s->hs, status, s->hs->error);
    relay_session_send_refusal(s);
}

void relay_session_close(struct relay_session *s, const char *why)
{
    char who[RELAY_ID_MAX + NET_CONN_NAME_MAX + 8];

    if (s->state == SESSION_CLOSED)
        return;
    if (s->state != SESSION_PUMPING) {
        relay_session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "%s", why);
        return;
    }
    const struct relay_pump_counters *n = relay_pump_counters(s->pump);
    log_info(
        "agent %s left target '%s' after %.1f s: %s; agent->QEMU "
        "%llu bytes (%llu on the wire), QEMU->agent %llu bytes (%llu "
        "on the wire)",
        relay_session_who(s, who, sizeof(who)), relay_target_name(s->target),
        (double)(uv_now(s->p.loop) - s->started_ms) / 1000.0, why,
        (unsigned long long)n->to_chardev, (unsigned long long)n->from_agent,
        (unsigned long long)n->from_chardev, (unsigned long long)n->to_agent);
    relay_session_end(s);
}

/* ---- attaching ---- */

static void on_pump_done(void *owner, const char *why)
{
    relay_session_close(owner, why);
}

/* The chardev is connected (or dialed in, with what QEMU sent meanwhile,
 * which the session frees): the agent hears yes, the pump takes over. */
static void relay_session_chardev_ready(struct relay_session *s,
                                        struct net_conn *c, uint8_t *data,
                                        size_t len)
{
    char who[RELAY_ID_MAX + NET_CONN_NAME_MAX + 8];
    bool lz4;

    s->chardev = c;
    uv_timer_stop(&s->timer);
    relay_server_accept(s->hs, relay_session_cfg(s)->secret,
                        relay_session_cfg(s)->secret_len);
    lz4 = s->hs->caps & RELAY_CAP_LZ4;
    relay_session_send_handshake(s);
    s->pump =
        relay_pump_start(s->agent, c, lz4, relay_session_cfg(s)->session_buffer,
                         on_pump_done, s);
    if (!s->pump) {
        free(data);
        relay_session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "out of memory");
        return;
    }
    s->agent = s->chardev = NULL; /* the pump's now */
    s->p.stats->accepted++;
    free(s->hs);
    s->hs = NULL;
    s->state = SESSION_PUMPING;
    s->started_ms = uv_now(s->p.loop);
    log_info("agent %s attached to target '%s' (QEMU %s, %s)",
             relay_session_who(s, who, sizeof(who)),
             relay_target_name(s->target), relay_target_chardev(s->target),
             lz4 ? "lz4" : "raw");
    relay_pump_from_chardev(s->pump, data, len); /* may end the session */
    free(data);
}

static void on_chardev_dialed_in(void *holder, struct net_conn *c,
                                 uint8_t *data, size_t len)
{
    relay_session_chardev_ready(holder, c, data, len);
}

static void on_chardev_connected(void *owner, struct net_conn *c, int status)
{
    struct relay_session *s = owner;

    if (status < 0) {
        const char *tls = net_conn_tls_error(c);
        s->p.stats->qemu_connect_failures++;
        relay_session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "QEMU at %s: %s%s%s",
                             relay_target_chardev(s->target),
                             uv_strerror(status), tls ? ": " : "",
                             tls ? tls : "");
        return;
    }
    relay_session_chardev_ready(s, c, NULL, 0);
}

/* Holds the target for s; another agent's session keeps it. */
static bool relay_session_hold_target(struct relay_session *s,
                                      struct relay_target *t)
{
    struct relay_session *old = relay_target_holder(t);
    char why[NET_CONN_NAME_MAX + 64];

    if (old && strcmp(old->agent_id, s->agent_id) != 0) {
        relay_session_refuse(s, RELAY_REFUSED_BUSY,
                             "target '%s' is in use by agent '%s'",
                             relay_target_name(t), old->agent_id);
        return false;
    }
    if (old) { /* the same agent again: its old connection is dead */
        snprintf(why, sizeof(why), "replaced by its new connection from %s",
                 s->peer);
        relay_session_close(old, why);
    }
    relay_target_hold(t, s, on_chardev_dialed_in);
    s->target = t;
    return true;
}

static void on_timeout(uv_timer_t *timer);

/* Who the agent is: its certificate with TLS, or (shared-secret mode,
 * where nothing proves more) the id it claims. The secret, when the relay
 * has one, must be proved in both modes. */
static bool relay_session_authenticate(struct relay_session *s)
{
    const struct relay_config *cfg = relay_session_cfg(s);
    const char *cert = net_conn_peer_identity(s->agent);

    snprintf(s->identity, sizeof(s->identity), "%s", cert ? cert : "");
    snprintf(s->agent_id, sizeof(s->agent_id), "%s",
             cert ? cert : s->hs->agent_id);
    if (cert && strcmp(cert, s->hs->agent_id) != 0)
        log_debug("agent %s calls itself '%s'", s->peer, s->hs->agent_id);
    if (cfg->secret_len &&
        !relay_server_verify(s->hs, cfg->secret, cfg->secret_len)) {
        relay_session_refuse(s, RELAY_REFUSED_AUTH,
                             "authentication failed: not the relay's secret");
        return false;
    }
    if (!cfg->secret_len && !cert) { /* the config requires one or TLS */
        relay_session_refuse(s, RELAY_REFUSED_AUTH, "no certificate");
        return false;
    }
    if (cert && cfg->deny_agents &&
        glob_list_contains(cfg->deny_agents, cert)) {
        relay_session_refuse(s, RELAY_REFUSED_AUTH,
                             "certificate '%s' is denied (deny_agents)", cert);
        return false;
    }
    return true;
}

/* The AUTH is in: check it, then get the chardev. */
static void relay_session_decide(struct relay_session *s)
{
    struct relay_target *t;
    const char *agents;

    relay_session_leave_admission(s);
    if (!relay_session_authenticate(s))
        return;
    t = s->p.ops->find_target(s->p.relay, s->hs->target);
    if (!t) {
        relay_session_refuse(s, RELAY_REFUSED_TARGET,
                             "no target '%s' on this relay", s->hs->target);
        return;
    }
    agents = relay_target_config(t)->agents;
    if (agents && !glob_list_match(agents, s->identity)) {
        relay_session_refuse(s, RELAY_REFUSED_AUTH,
                             "'%s' may not use target '%s' (agents = %s)",
                             s->identity, s->hs->target, agents);
        return;
    }
    if (!relay_target_ready(t)) {
        relay_session_refuse(s, RELAY_REFUSED_UNAVAILABLE,
                             "target '%s' is not usable (see the relay's log)",
                             relay_target_name(t));
        return;
    }
    if (!relay_session_hold_target(s, t))
        return;
    s->state = SESSION_ATTACHING;
    uv_timer_start(&s->timer, on_timeout, RELAY_SESSION_CHARDEV_TIMEOUT_MS, 0);
    if (relay_target_mode(t) == TARGET_LISTEN) {
        relay_target_offer_pending(t); /* or wait for QEMU to dial in */
        return;
    }
    s->chardev = relay_target_connect(t, &chardev_ops, s);
    if (!s->chardev)
        relay_session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "out of memory");
}

static void relay_session_handshake(struct relay_session *s,
                                    const uint8_t *data, size_t len)
{
    size_t used;
    int rc = relay_server_feed(s->hs, data, len, &used);

    s->handshake_bytes += len;
    if (rc == RELAY_HS_NEED_MORE)
        return;
    if (rc == RELAY_HS_ERROR) {
        relay_session_send_refusal(s);
        return;
    }
    if (used < len) {
        relay_session_refuse(s, RELAY_REFUSED_MALFORMED,
                             "data after AUTH, before the relay's answer");
        return;
    }
    relay_session_decide(s);
}

static void on_timeout(uv_timer_t *timer)
{
    struct relay_session *s = timer->data;

    if (s->state == SESSION_HANDSHAKE) {
        relay_session_refuse(s, RELAY_REFUSED_MALFORMED,
                             "no AUTH within %g s (%llu bytes received)",
                             relay_session_cfg(s)->handshake_timeout_ms /
                                 1000.0,
                             (unsigned long long)s->handshake_bytes);
    } else if (s->state == SESSION_ATTACHING) {
        bool dialing = relay_target_mode(s->target) == TARGET_CONNECT;
        relay_session_refuse(s, RELAY_REFUSED_UNAVAILABLE,
                             dialing
                                 ? "QEMU at %s did not answer within %d s"
                                 : "QEMU has not connected to %s within %d s",
                             relay_target_chardev(s->target),
                             RELAY_SESSION_CHARDEV_TIMEOUT_MS / 1000);
    }
}

/* ---- connection callbacks ---- */

static void on_agent_data(void *owner, struct net_conn *c, const uint8_t *data,
                          size_t len)
{
    struct relay_session *s = owner;
    (void)c;

    /* while attaching too: the agent must wait for the answer */
    relay_session_handshake(s, data, len);
}

static void on_agent_gone(void *owner, struct net_conn *c, int status)
{
    struct relay_session *s = owner;
    char who[RELAY_ID_MAX + NET_CONN_NAME_MAX + 8];
    const char *what = status == UV_EOF ? "closed" : uv_strerror(status);
    (void)c;

    char more[LOG_LIMIT_SUFFIX_MAX], host[NET_CONN_NAME_MAX];
    char kind[NET_CONN_NAME_MAX + 64];
    unsigned repeats = 0;
    snprintf(kind, sizeof(kind), "connection %s during the handshake from %s",
             what, relay_session_host(s, host, sizeof(host)));
    if (relay_session_log_ok(s, kind, &repeats))
        log_notice("agent %s: connection %s during the handshake after %llu "
                   "bytes%s%s",
                   relay_session_who(s, who, sizeof(who)), what,
                   (unsigned long long)s->handshake_bytes,
                   s->state == SESSION_HANDSHAKE ? " (truncated handshake)"
                                                 : "",
                   log_limit_suffix(repeats, more, sizeof(more)));
    relay_session_end(s);
}

static const struct net_conn_ops agent_ops = {
    .on_data = on_agent_data,
    .on_gone = on_agent_gone,
};

/* Until the pump takes it: connect mode's outcome only. */
static const struct net_conn_ops chardev_ops = {
    .on_connected = on_chardev_connected,
};

void relay_session_start(const struct relay_session_params *p,
                         struct net_conn *agent,
                         const struct sockaddr_storage *addr,
                         struct list_node *list)
{
    struct relay_session *s = calloc(1, sizeof(*s));

    if (s)
        s->hs = malloc(sizeof(*s->hs));
    if (!s || !s->hs || relay_server_init(s->hs, RELAY_CAP_LZ4) < 0) {
        log_err("agent %s: out of memory", net_conn_name(agent));
        if (s)
            free(s->hs);
        free(s);
        net_admit_leave(p->admit, (const struct sockaddr *)addr);
        net_conn_close(agent, false);
        return;
    }
    s->p = *p;
    s->agent = s->agent_link = agent;
    s->addr = *addr;
    s->admitted = true;
    snprintf(s->peer, sizeof(s->peer), "%s", net_conn_name(agent));
    net_conn_set_owner(agent, &agent_ops, s);
    uv_timer_init(p->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timeout, (*p->cfg)->handshake_timeout_ms, 0);
    list_add(list, &s->node);
    log_debug("agent %s connected", s->peer);
    relay_session_send_handshake(s);
    net_conn_read_start(agent);
}

int relay_session_recheck(const struct relay_session *s,
                          const struct relay_config *cfg,
                          struct net_tls_ctx *tls, char *why, size_t len)
{
    const char *agents;

    if (!s->identity[0] || s->state == SESSION_CLOSED)
        return 0; /* shared-secret agents: nothing to check again */
    if (cfg->deny_agents && glob_list_contains(cfg->deny_agents, s->identity)) {
        snprintf(why, len, "certificate '%s' is now denied (deny_agents)",
                 s->identity);
        return -1;
    }
    agents = s->target ? relay_target_config(s->target)->agents : NULL;
    if (agents && !glob_list_match(agents, s->identity)) {
        snprintf(why, len, "'%s' is no longer among the agents of its target",
                 s->identity);
        return -1;
    }
    if (tls && s->agent_link &&
        net_conn_tls_recheck(s->agent_link, tls, why, len) < 0)
        return -1;
    return 0;
}
