/* One agent connection: handshake, attaching to its target's QEMU, then
 * pumping bytes both ways through the codec with backpressure. */
#include "session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "relay.h"
#include "target.h"

/* Agent bytes decoded between two looks at QEMU's queue. An lz4 frame
 * that decodes to 64 KiB is at least ~270 bytes, so one slice completes
 * at most 4 frames: the queue overshoots its mark by 256 KiB at most. */
#define DECODE_SLICE 1024

static const struct conn_ops agent_ops, qemu_ops;

static void session_on_timer_closed(uv_handle_t *handle) { free(handle->data); }

/* "'id' (addr)" once the agent said who it is, else "addr". */
static const char *session_who(const struct session *s, char *buf, size_t len)
{
    if (s->agent_id[0])
        snprintf(buf, len, "'%s' (%s)", s->agent_id, s->peer);
    else
        snprintf(buf, len, "%s", s->peer);
    return buf;
}

/* Releases everything; the memory goes when the timer has closed. */
static void session_end(struct session *s)
{
    if (s->target && s->target->session == s)
        s->target->session = NULL;
    if (s->agent)
        conn_close(s->agent, true);
    if (s->qemu)
        conn_close(s->qemu, s->state == SESSION_PUMPING);
    s->agent = s->qemu = NULL;
    free(s->hs);
    s->hs = NULL;
    free(s->stash);
    s->stash = NULL;
    codec_encoder_free(&s->enc);
    codec_decoder_free(&s->dec);
    s->state = SESSION_CLOSED;
    relay_session_removed(s->relay, s);
    uv_close((uv_handle_t *)&s->timer, session_on_timer_closed);
}

/* Sends what the handshake queued: the hello, the RESULT. */
static void session_send_handshake(struct session *s)
{
    if (s->hs->out_len == 0)
        return;
    conn_queue_copy(s->agent, s->hs->out, s->hs->out_len);
    relay_server_output_sent(s->hs);
    conn_flush(s->agent);
}

/* Tells the agent no (the RESULT is already queued in s->hs), logs it,
 * ends the session. */
static void session_send_refusal(struct session *s)
{
    char who[RELAY_ID_MAX + CONN_NAME_MAX + 8];

    log_notice("agent %s refused%s%s: %s: %s", session_who(s, who, sizeof(who)),
               s->hs->target[0] ? " for target " : "", s->hs->target,
               relay_status_name(s->hs->status), s->hs->error);
    session_send_handshake(s);
    session_end(s);
}

static void session_refuse(struct session *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Refuses with status and a reason (also the log's), ends the session. */
static void session_refuse(struct session *s, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->hs->error, sizeof(s->hs->error), fmt, ap);
    va_end(ap);
    s->hs->status = status;
    relay_server_result(s->hs, status, s->hs->error);
    session_send_refusal(s);
}

void session_close(struct session *s, const char *why)
{
    char who[RELAY_ID_MAX + CONN_NAME_MAX + 8];

    if (s->state == SESSION_CLOSED)
        return;
    if (s->state != SESSION_PUMPING) {
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "%s", why);
        return;
    }
    log_info("agent %s left target '%s' after %.1f s: %s; agent->QEMU "
             "%llu bytes (%llu on the wire), QEMU->agent %llu bytes (%llu "
             "on the wire)",
             session_who(s, who, sizeof(who)), s->target->cfg->name,
             (double)(uv_now(s->relay->loop) - s->started_ms) / 1000.0, why,
             (unsigned long long)s->to_qemu, (unsigned long long)s->from_agent,
             (unsigned long long)s->from_qemu, (unsigned long long)s->to_agent);
    session_end(s);
}

/* ---- pumping: QEMU -> agent ---- */

static void emit_to_agent(void *ctx, uint8_t *frame, size_t len)
{
    struct session *s = ctx;
    s->to_agent += len;
    conn_queue(s->agent, frame, len);
}

static void session_to_agent(struct session *s, const uint8_t *data, size_t len)
{
    s->from_qemu += len;
    if (s->lz4) {
        if (codec_encode(&s->enc, data, len, true, emit_to_agent, s) < 0) {
            session_close(s, "out of memory");
            return;
        }
    } else {
        if (!conn_queue_copy(s->agent, data, len)) {
            session_close(s, "out of memory");
            return;
        }
        s->to_agent += len;
    }
    conn_flush(s->agent);
    if (conn_congested(s->agent) && !s->qemu_paused) {
        s->qemu_paused = true;
        conn_read_stop(s->qemu);
    }
}

/* ---- pumping: agent -> QEMU ---- */

static int deliver_to_qemu(void *ctx, const uint8_t *data, size_t len)
{
    struct session *s = ctx;
    if (!conn_queue_copy(s->qemu, data, len))
        return -1;
    s->to_qemu += len;
    return 0;
}

/* Decodes until QEMU's queue is full; returns the bytes taken, or
 * SIZE_MAX once the session is closed. */
static size_t session_decode(struct session *s, const uint8_t *data, size_t len)
{
    char why[128];
    size_t off = 0;

    while (off < len && !conn_congested(s->qemu)) {
        size_t n = len - off < DECODE_SLICE ? len - off : DECODE_SLICE;
        if (codec_decode(&s->dec, data + off, n, deliver_to_qemu, s) < 0) {
            snprintf(why, sizeof(why), "bad lz4 stream from the agent: %s",
                     s->dec.error ? s->dec.error : "out of memory");
            session_close(s, why);
            return SIZE_MAX;
        }
        off += n;
    }
    conn_flush(s->qemu);
    return off;
}

/* Stops reading the agent while QEMU's queue is full. */
static void session_pause_agent(struct session *s)
{
    if (!s->agent_paused) {
        s->agent_paused = true;
        conn_read_stop(s->agent);
    }
}

static void session_to_qemu(struct session *s, const uint8_t *data, size_t len)
{
    s->from_agent += len;
    if (!s->lz4) {
        if (deliver_to_qemu(s, data, len) < 0) {
            session_close(s, "out of memory");
            return;
        }
        conn_flush(s->qemu);
        if (conn_congested(s->qemu))
            session_pause_agent(s);
        return;
    }
    if (s->stash) { /* cannot happen: reading stopped with the stash */
        session_close(s, "read while paused");
        return;
    }
    size_t used = session_decode(s, data, len);
    if (used == SIZE_MAX || used == len)
        return;
    /* QEMU is behind: keep the rest of this read, read no more. */
    s->stash = malloc(len - used);
    if (!s->stash) {
        session_close(s, "out of memory");
        return;
    }
    memcpy(s->stash, data + used, len - used);
    s->stash_len = len - used;
    s->stash_off = 0;
    session_pause_agent(s);
}

static void session_qemu_drained(void *owner, struct conn *c)
{
    struct session *s = owner;
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
    if (s->agent_paused && !conn_congested(s->qemu)) {
        s->agent_paused = false;
        conn_read_start(s->agent);
    }
}

static void session_agent_drained(void *owner, struct conn *c)
{
    struct session *s = owner;
    (void)c;

    if (s->qemu_paused && s->qemu) {
        s->qemu_paused = false;
        conn_read_start(s->qemu);
    }
}

/* ---- attaching ---- */

void session_qemu_ready(struct session *s, struct conn *qemu, uint8_t *data,
                        size_t len)
{
    char who[RELAY_ID_MAX + CONN_NAME_MAX + 8];

    s->qemu = qemu;
    conn_set_owner(qemu, &qemu_ops, s);
    conn_set_high_water(qemu, s->relay->cfg.session_buffer);
    uv_timer_stop(&s->timer);
    relay_server_result(s->hs, RELAY_OK, NULL);
    s->lz4 = s->hs->caps & RELAY_CAP_LZ4;
    session_send_handshake(s);
    free(s->hs);
    s->hs = NULL;
    s->state = SESSION_PUMPING;
    s->started_ms = uv_now(s->relay->loop);
    s->from_agent = 0; /* count the stream, not the handshake */
    log_info("agent %s attached to target '%s' (QEMU %s, %s)",
             session_who(s, who, sizeof(who)), s->target->cfg->name,
             s->target->addr_name, s->lz4 ? "lz4" : "raw");
    if (len > 0)
        session_to_agent(s, data, len);
    free(data);
    if (s->state == SESSION_PUMPING && !s->qemu_paused)
        conn_read_start(s->qemu);
}

static void session_qemu_connected(void *owner, struct conn *c, int status)
{
    struct session *s = owner;

    if (status < 0) {
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "QEMU at %s: %s",
                       s->target->addr_name, uv_strerror(status));
        return;
    }
    session_qemu_ready(s, c, NULL, 0);
}

/* Claims the target for s; another agent's session keeps it. */
static bool session_claim_target(struct session *s, struct target *t)
{
    struct session *old = t->session;
    char why[CONN_NAME_MAX + 64];

    if (old && strcmp(old->agent_id, s->agent_id) != 0) {
        session_refuse(s, RELAY_REFUSED_BUSY,
                       "target '%s' is in use by agent '%s'", t->cfg->name,
                       old->agent_id);
        return false;
    }
    if (old) { /* the same agent again: its old connection is dead */
        snprintf(why, sizeof(why), "replaced by its new connection from %s",
                 s->peer);
        session_close(old, why);
    }
    t->session = s;
    s->target = t;
    return true;
}

static void on_timeout(uv_timer_t *timer);

/* The AUTH is in: check it, then get QEMU. */
static void session_decide(struct session *s)
{
    struct relay *r = s->relay;
    struct target *t;

    snprintf(s->agent_id, sizeof(s->agent_id), "%s", s->hs->agent_id);
    if (!relay_server_verify(s->hs, r->cfg.secret, r->cfg.secret_len)) {
        session_refuse(s, RELAY_REFUSED_AUTH,
                       "authentication failed: not the relay's secret");
        return;
    }
    t = relay_target(r, s->hs->target);
    if (!t) {
        session_refuse(s, RELAY_REFUSED_TARGET, "no target '%s' on this relay",
                       s->hs->target);
        return;
    }
    if (!t->ready) {
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE,
                       "target '%s' is not usable (see the relay's log)",
                       t->cfg->name);
        return;
    }
    if (!session_claim_target(s, t))
        return;
    s->state = SESSION_ATTACHING;
    uv_timer_start(&s->timer, on_timeout, SESSION_QEMU_TIMEOUT_MS, 0);
    if (t->cfg->mode == TARGET_LISTEN) {
        target_offer_pending(t); /* or wait for QEMU to dial in */
        return;
    }
    s->qemu = target_connect(t, &qemu_ops, s);
    if (!s->qemu)
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE, "out of memory");
}

static void session_handshake(struct session *s, const uint8_t *data,
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
    struct session *s = timer->data;

    if (s->state == SESSION_HANDSHAKE) {
        session_refuse(s, RELAY_REFUSED_MALFORMED,
                       "no AUTH within %d s (%llu bytes received)",
                       SESSION_HANDSHAKE_TIMEOUT_MS / 1000,
                       (unsigned long long)s->from_agent);
    } else if (s->state == SESSION_ATTACHING) {
        bool dialing = s->target->cfg->mode == TARGET_CONNECT;
        session_refuse(s, RELAY_REFUSED_UNAVAILABLE,
                       dialing ? "QEMU at %s did not answer within %d s"
                               : "QEMU has not connected to %s within %d s",
                       s->target->addr_name, SESSION_QEMU_TIMEOUT_MS / 1000);
    }
}

/* ---- connection callbacks ---- */

static void session_agent_data(void *owner, struct conn *c, const uint8_t *data,
                               size_t len)
{
    struct session *s = owner;
    (void)c;

    if (s->state == SESSION_PUMPING)
        session_to_qemu(s, data, len);
    else
        session_handshake(s, data, len);
}

static void session_agent_gone(void *owner, struct conn *c, int status)
{
    struct session *s = owner;
    char who[RELAY_ID_MAX + CONN_NAME_MAX + 8];
    const char *what = status == UV_EOF ? "closed" : uv_strerror(status);
    (void)c;

    if (s->state == SESSION_PUMPING) {
        char why[128];
        snprintf(why, sizeof(why), "agent connection %s", what);
        session_close(s, why);
        return;
    }
    log_notice("agent %s: connection %s during the handshake after %llu "
               "bytes%s",
               session_who(s, who, sizeof(who)), what,
               (unsigned long long)s->from_agent,
               s->state == SESSION_HANDSHAKE ? " (truncated handshake)" : "");
    session_end(s);
}

static void session_qemu_data(void *owner, struct conn *c, const uint8_t *data,
                              size_t len)
{
    (void)c;
    session_to_agent(owner, data, len);
}

static void session_qemu_gone(void *owner, struct conn *c, int status)
{
    char why[128];
    (void)c;

    snprintf(why, sizeof(why), "QEMU %s",
             status == UV_EOF ? "closed the chardev connection"
                              : uv_strerror(status));
    session_close(owner, why);
}

static const struct conn_ops agent_ops = {
    .on_data = session_agent_data,
    .on_gone = session_agent_gone,
    .on_drained = session_agent_drained,
};

static const struct conn_ops qemu_ops = {
    .on_connected = session_qemu_connected,
    .on_data = session_qemu_data,
    .on_gone = session_qemu_gone,
    .on_drained = session_qemu_drained,
};

void session_start(struct relay *r, struct conn *agent)
{
    struct session *s = calloc(1, sizeof(*s));

    if (s)
        s->hs = malloc(sizeof(*s->hs));
    if (!s || !s->hs || relay_server_init(s->hs, RELAY_CAP_LZ4) < 0) {
        log_err("agent %s: out of memory", agent->name);
        if (s)
            free(s->hs);
        free(s);
        conn_close(agent, false);
        return;
    }
    s->relay = r;
    s->agent = agent;
    snprintf(s->peer, sizeof(s->peer), "%s", agent->name);
    codec_encoder_init(&s->enc);
    codec_decoder_init(&s->dec);
    conn_set_owner(agent, &agent_ops, s);
    conn_set_high_water(agent, r->cfg.session_buffer);
    uv_timer_init(r->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_timeout, SESSION_HANDSHAKE_TIMEOUT_MS, 0);
    relay_session_added(r, s);
    log_debug("agent %s connected", s->peer);
    session_send_handshake(s);
    conn_read_start(agent);
}
