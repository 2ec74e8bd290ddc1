/* SPDX-License-Identifier: MIT */
/* One agent connection: handshake, attaching to its target's chardev, then
 * pumping bytes both ways through the codec with backpressure. */
#include "relay_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net_conn.h"
#include "relay_proto.h"
#include "relay_target.h"
#include "stream_codec.h"

/* Agent bytes decoded between two looks at the chardev's queue. An lz4
 * frame that decodes to 64 KiB is at least ~270 bytes, so one slice
 * completes at most 4 frames: the queue overshoots its mark by 256 KiB at
 * most. */
#define DECODE_SLICE 1024

enum session_state {
    SESSION_HANDSHAKE, /* hello sent, waiting for AUTH */
    SESSION_ATTACHING, /* accepted, getting the chardev */
    SESSION_PUMPING,
    SESSION_CLOSED, /* waiting for its timer to close, then freed */
};

struct relay_session {
    struct list_node node; /* in the relay's list */
    struct relay_session_params p;
    struct relay_target *target; /* held from ATTACHING on */
    struct net_conn *agent, *chardev;
    uv_timer_t timer;        /* handshake, then chardev timeout */
    struct relay_server *hs; /* during the handshake only */
    enum session_state state;
    bool lz4;
    bool agent_paused, chardev_paused; /* reading stopped: backpressure */
    char agent_id[RELAY_ID_MAX + 1];   /* "" until the AUTH */
    char peer[NET_CONN_NAME_MAX];      /* the agent's address */
    uint8_t *stash; /* agent bytes read but not decoded yet (backpressure) */
    size_t stash_len, stash_off;
    struct codec_encoder enc; /* chardev -> agent */
    struct codec_decoder dec; /* agent -> chardev */
    uint64_t started_ms;
    uint64_t from_agent, to_chardev, from_chardev, to_agent; /* bytes */
};

static const struct net_conn_ops agent_ops, chardev_ops;

struct relay_session *relay_session_from_node(struct list_node *n)
{
    return list_entry(n, struct relay_session, node);
}

static const struct relay_config *session_cfg(const struct relay_session *s)
{
    return *s->p.cfg;
}

static void on_timer_closed(uv_handle_t *handle) { free(handle->data); }

/* "'id' (addr)" once the agent said who it is, else "addr". */
static const char *session_who(const struct relay_session *s, char *buf,
                               size_t len)
{
    if (s->agent_id[0])
        snprintf(buf, len, "'%s' (%s)", s->agent_id, s->peer);
    else
        snprintf(buf, len, "%s", s->peer);
    return buf;
}

/* Releases everything; the memory goes when the timer has closed. */
static void session_end(struct relay_session *s)
{
    if (s->target)
        relay_target_let_go(s->target, s);
    if (s->agent)
        net_conn_close(s->agent, true);
    if (s->chardev)
        net_conn_close(s->chardev, s->state == SESSION_PUMPING);
    s->agent = s->chardev = NULL;
    free(s->hs);
    s->hs = NULL;
    free(s->stash);
    s->stash = NULL;
    codec_encoder_free(&s->enc);
    codec_decoder_free(&s->dec);
    s->state = SESSION_CLOSED;
    list_remove(&s->node);
    s->p.ops->on_ended(s->p.relay, s);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

/* Sends what the handshake queued: the hello, the RESULT. */
static void session_send_handshake(struct relay_session *s)
{
    if (s->hs->out_len == 0)
        return;
    net_conn_queue_copy(s->agent, s->hs->out, s->hs->out_len);
    relay_server_output_sent(s->hs);
    net_conn_flush(s->agent);
}

/* Tells the agent no (the RESULT is already queued in s->hs), logs it,
 * ends the session. */
static void session_send_refusal(struct relay_session *s)
{
    char who[RELAY_ID_MAX + NET_CONN_NAME_MAX + 8];

    log_notice("agent %s refused%s%s: %s: %s", session_who(s, who, sizeof(who)),
               s->hs->target[0] ? " for target " : "", s->hs->target,
               relay_status_name(s->hs->status), s->hs->error);
    session_send_handshake(s);
    session_end(s);
}

static void session_refuse(struct relay_session *s, int status, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));

/* Refuses with status and a reason (also the log's), ends the session. */
static void session_refuse(struct relay_session *s, int status, const char *fmt,
                           ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->hs->error, sizeof(s->hs->error), fmt, ap);
    va_end(ap);
    s->hs->status = status;
    relay_server_result(s->hs, status, s->hs->error);
    session_send_refusal(s);
}

void relay_session_close(struct relay_session *s, const char *why)
{
    char who[RELAY_ID_MAX + NET_CONN_NAME_MAX + 8];

    if (s->state == SESSION_CLOSED)
        return;
    if (s->state != SESSION_PUMPING) {
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "%s", why);
        return;
    }
    log_info(
        "agent %s left target '%s' after %.1f s: %s; agent->QEMU "
        "%llu bytes (%llu on the wire), QEMU->agent %llu bytes (%llu "
        "on the wire)",
        session_who(s, who, sizeof(who)), relay_target_name(s->target),
        (double)(uv_now(s->p.loop) - s->started_ms) / 1000.0, why,
        (unsigned long long)s->to_chardev, (unsigned long long)s->from_agent,
        (unsigned long long)s->from_chardev, (unsigned long long)s->to_agent);
    session_end(s);
}

/* ---- pumping: chardev -> agent ---- */

static void emit_to_agent(void *ctx, uint8_t *frame, size_t len)
{
    struct relay_session *s = ctx;
    s->to_agent += len;
    net_conn_queue(s->agent, frame, len, NULL, NULL);
}

static void session_to_agent(struct relay_session *s, const uint8_t *data,
                             size_t len)
{
    s->from_chardev += len;
    if (s->lz4) {
        if (codec_encode(&s->enc, data, len, true, emit_to_agent, s) < 0) {
            relay_session_close(s, "out of memory");
            return;
        }
    } else {
        if (!net_conn_queue_copy(s->agent, data, len)) {
            relay_session_close(s, "out of memory");
            return;
        }
        s->to_agent += len;
    }
    net_conn_flush(s->agent);
    if (net_conn_congested(s->agent) && !s->chardev_paused) {
        s->chardev_paused = true;
        net_conn_read_stop(s->chardev);
    }
}

/* ---- pumping: agent -> chardev ---- */

static int deliver_to_chardev(void *ctx, const uint8_t *data, size_t len)
{
    struct relay_session *s = ctx;

    if (!net_conn_queue_copy(s->chardev, data, len))
        return -1;
    s->to_chardev += len;
    return 0;
}

/* Decodes until the chardev's queue is full; returns the bytes taken, or
 * SIZE_MAX once the session is closed. */
static size_t session_decode(struct relay_session *s, const uint8_t *data,
                             size_t len)
{
    char why[128];
    size_t off = 0;

    while (off < len && !net_conn_congested(s->chardev)) {
        size_t n = len - off < DECODE_SLICE ? len - off : DECODE_SLICE;
        if (codec_decode(&s->dec, data + off, n, deliver_to_chardev, s) < 0) {
            snprintf(why, sizeof(why), "bad lz4 stream from the agent: %s",
                     s->dec.error ? s->dec.error : "out of memory");
            relay_session_close(s, why);
            return SIZE_MAX;
        }
        off += n;
    }
    net_conn_flush(s->chardev);
    return off;
}

/* Stops reading the agent while the chardev's queue is full. */
static void session_pause_agent(struct relay_session *s)
{
    if (!s->agent_paused) {
        s->agent_paused = true;
        net_conn_read_stop(s->agent);
    }
}

static void session_to_chardev(struct relay_session *s, const uint8_t *data,
                               size_t len)
{
    s->from_agent += len;
    if (!s->lz4) {
        if (deliver_to_chardev(s, data, len) < 0) {
            relay_session_close(s, "out of memory");
            return;
        }
        net_conn_flush(s->chardev);
        if (net_conn_congested(s->chardev))
            session_pause_agent(s);
        return;
    }
    if (s->stash) { /* cannot happen: reading stopped with the stash */
        relay_session_close(s, "read while paused");
        return;
    }
    size_t used = session_decode(s, data, len);
    if (used == SIZE_MAX || used == len)
        return;
    /* the chardev is behind: keep the rest of this read, read no more */
    s->stash = malloc(len - used);
    if (!s->stash) {
        relay_session_close(s, "out of memory");
        return;
    }
    memcpy(s->stash, data + used, len - used);
    s->stash_len = len - used;
    s->stash_off = 0;
    session_pause_agent(s);
}

static void on_chardev_drained(void *owner, struct net_conn *c)
{
    struct relay_session *s = owner;
    (void)c;

    if (s->stash) {
        size_t used = session_decode(s, s->stash + s->stash_off,
                                     s->stash_len - s->stash_off);
        if (used == SIZE_MAX)
            return;
        s->stash_off += used;
        if (s->stash_off < s->stash_len)
            return; /* congested again */
        free(s->stash);
        s->stash = NULL;
    }
    if (s->agent_paused && !net_conn_congested(s->chardev)) {
        s->agent_paused = false;
        net_conn_read_start(s->agent);
    }
}

static void on_agent_drained(void *owner, struct net_conn *c)
{
    struct relay_session *s = owner;
    (void)c;

    if (s->chardev_paused && s->chardev) {
        s->chardev_paused = false;
        net_conn_read_start(s->chardev);
    }
}

/* ---- attaching ---- */

static void session_buffer(struct relay_session *s, struct net_conn *c)
{
    uint32_t high = session_cfg(s)->session_buffer;
    net_conn_set_water(c, high, high / 2);
}

/* The chardev is connected (or dialed in, with what QEMU sent meanwhile,
 * which the session frees). */
static void session_chardev_ready(struct relay_session *s, struct net_conn *c,
                                  uint8_t *data, size_t len)
{
    char who[RELAY_ID_MAX + NET_CONN_NAME_MAX + 8];

    s->chardev = c;
    net_conn_set_owner(c, &chardev_ops, s);
    session_buffer(s, c);
    uv_timer_stop(&s->timer);
    relay_server_result(s->hs, RELAY_OK, NULL);
    s->lz4 = s->hs->caps & RELAY_CAP_LZ4;
    session_send_handshake(s);
    free(s->hs);
    s->hs = NULL;
    s->state = SESSION_PUMPING;
    s->started_ms = uv_now(s->p.loop);
    s->from_agent = 0; /* count the stream, not the handshake */
    log_info("agent %s attached to target '%s' (QEMU %s, %s)",
             session_who(s, who, sizeof(who)), relay_target_name(s->target),
             relay_target_chardev(s->target), s->lz4 ? "lz4" : "raw");
    if (len > 0)
        session_to_agent(s, data, len);
    free(data);
    if (s->state == SESSION_PUMPING && !s->chardev_paused)
        net_conn_read_start(s->chardev);
}

static void on_chardev_dialed_in(void *holder, struct net_conn *c,
                                 uint8_t *data, size_t len)
{
    session_chardev_ready(holder, c, data, len);
}

static void on_chardev_connected(void *owner, struct net_conn *c, int status)
{
    struct relay_session *s = owner;

    if (status < 0) {
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "QEMU at %s: %s",
                       relay_target_chardev(s->target), uv_strerror(status));
        return;
    }
    session_chardev_ready(s, c, NULL, 0);
}

/* Holds the target for s; another agent's session keeps it. */
static bool session_hold_target(struct relay_session *s, struct relay_target *t)
{
    struct relay_session *old = relay_target_holder(t);
    char why[NET_CONN_NAME_MAX + 64];

    if (old && strcmp(old->agent_id, s->agent_id) != 0) {
        session_refuse(s, RELAY_REFUSED_BUSY,
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

/* The AUTH is in: check it, then get the chardev. */
static void session_decide(struct relay_session *s)
{
    const struct relay_config *cfg = session_cfg(s);
    struct relay_target *t;

    snprintf(s->agent_id, sizeof(s->agent_id), "%s", s->hs->agent_id);
    if (!relay_server_verify(s->hs, cfg->secret, cfg->secret_len)) {
        session_refuse(s, RELAY_REFUSED_AUTH,
                       "authentication failed: not the relay's secret");
        return;
    }
    t = s->p.ops->find_target(s->p.relay, s->hs->target);
    if (!t) {
        session_refuse(s, RELAY_REFUSED_TARGET, "no target '%s' on this relay",
                       s->hs->target);
        return;
    }
    if (!relay_target_ready(t)) {
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE,
                       "target '%s' is not usable (see the relay's log)",
                       relay_target_name(t));
        return;
    }
    if (!session_hold_target(s, t))
        return;
    s->state = SESSION_ATTACHING;
    uv_timer_start(&s->timer, on_timeout, RELAY_SESSION_CHARDEV_TIMEOUT_MS, 0);
    if (relay_target_mode(t) == TARGET_LISTEN) {
        relay_target_offer_pending(t); /* or wait for QEMU to dial in */
        return;
    }
    s->chardev = relay_target_connect(t, &chardev_ops, s);
    if (!s->chardev)
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "out of memory");
}

static void session_handshake(struct relay_session *s, const uint8_t *data,
                              size_t len)
{
    size_t used;
    int rc = relay_server_feed(s->hs, data, len, &used);

    s->from_agent += len;
    if (rc == RELAY_HS_NEED_MORE)
        return;
    if (rc == RELAY_HS_ERROR) {
        session_send_refusal(s);
        return;
    }
    if (used < len) {
        session_refuse(s, RELAY_REFUSED_MALFORMED,
                       "data after AUTH, before the relay's answer");
        return;
    }
    session_decide(s);
}

static void on_timeout(uv_timer_t *timer)
{
    struct relay_session *s = timer->data;

    if (s->state == SESSION_HANDSHAKE) {
        session_refuse(s, RELAY_REFUSED_MALFORMED,
                       "no AUTH within %d s (%llu bytes received)",
                       RELAY_SESSION_HANDSHAKE_TIMEOUT_MS / 1000,
                       (unsigned long long)s->from_agent);
    } else if (s->state == SESSION_ATTACHING) {
        bool dialing = relay_target_mode(s->target) == TARGET_CONNECT;
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE,
                       dialing ? "QEMU at %s did not answer within %d s"
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

    if (s->state == SESSION_PUMPING)
        session_to_chardev(s, data, len);
    else /* while attaching too: the agent must wait for the answer */
        session_handshake(s, data, len);
}

static void on_agent_gone(void *owner, struct net_conn *c, int status)
{
    struct relay_session *s = owner;
    char who[RELAY_ID_MAX + NET_CONN_NAME_MAX + 8];
    const char *what = status == UV_EOF ? "closed" : uv_strerror(status);
    (void)c;

    if (s->state == SESSION_PUMPING) {
        char why[128];
        snprintf(why, sizeof(why), "agent connection %s", what);
        relay_session_close(s, why);
        return;
    }
    log_notice("agent %s: connection %s during the handshake after %llu "
               "bytes%s",
               session_who(s, who, sizeof(who)), what,
               (unsigned long long)s->from_agent,
               s->state == SESSION_HANDSHAKE ? " (truncated handshake)" : "");
    session_end(s);
}

static void on_chardev_data(void *owner, struct net_conn *c,
                            const uint8_t *data, size_t len)
{
    (void)c;
    session_to_agent(owner, data, len);
}

static void on_chardev_gone(void *owner, struct net_conn *c, int status)
{
    char why[128];
    (void)c;

    snprintf(why, sizeof(why), "QEMU %s",
             status == UV_EOF ? "closed the chardev connection"
                              : uv_strerror(status));
    relay_session_close(owner, why);
}

static const struct net_conn_ops agent_ops = {
    .on_data = on_agent_data,
    .on_gone = on_agent_gone,
    .on_drained = on_agent_drained,
};

static const struct net_conn_ops chardev_ops = {
    .on_connected = on_chardev_connected,
    .on_data = on_chardev_data,
    .on_gone = on_chardev_gone,
    .on_drained = on_chardev_drained,
};

void relay_session_start(const struct relay_session_params *p,
                         struct net_conn *agent, struct list_node *list)
{
    struct relay_session *s = calloc(1, sizeof(*s));

    if (s)
        s->hs = malloc(sizeof(*s->hs));
    if (!s || !s->hs || relay_server_init(s->hs, RELAY_CAP_LZ4) < 0) {
        log_err("agent %s: out of memory", net_conn_name(agent));
        if (s)
            free(s->hs);
        free(s);
        net_conn_close(agent, false);
        return;
    }
    s->p = *p;
    s->agent = agent;
    snprintf(s->peer, sizeof(s->peer), "%s", net_conn_name(agent));
    codec_encoder_init(&s->enc);
    codec_decoder_init(&s->dec);
    net_conn_set_owner(agent, &agent_ops, s);
    session_buffer(s, agent);
    uv_timer_init(p->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timeout, RELAY_SESSION_HANDSHAKE_TIMEOUT_MS,
                   0);
    list_add(list, &s->node);
    log_debug("agent %s connected", s->peer);
    session_send_handshake(s);
    net_conn_read_start(agent);
}
