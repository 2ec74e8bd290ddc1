/* SPDX-License-Identifier: MIT */
/* Inside a USB session: reaching the slot's peer (dialing, or taking the
 * connection it made), the relay handshake and the wait for the peer's
 * hello, and the way back: closing, then retrying with backoff. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net_conn.h"
#include "usb_device.h"
#include "usb_session_int.h"
#include "usb_slots.h"

#define CONNECT_TIMEOUT_MS 10000 /* a SYN to a dead host would wait minutes */
/* A running QEMU sends its hello at once; a paused one only once resumed.
 * The device stays the host's meanwhile, so this only bounds how long a
 * silent peer keeps a connection. */
#define HELLO_TIMEOUT_MS 10000
/* The relay answers once it reached QEMU, which it allows 10 s itself. */
#define RELAY_HANDSHAKE_TIMEOUT_MS 20000
/* A session that ran this long starts the next backoff over. */
#define STABLE_SESSION_MS 10000

/* ---- retrying ---- */

/* Logs a failed attempt: each new reason as a warning when it first occurs
 * and when it changes; a reason that repeats is summarised once a minute
 * ("failed 12 more times in 60 s: ..."), so a peer that is down for an
 * hour is not an hour of logs, and a second, different failure is never
 * hidden behind the first. */
void usb_session__log_failure(struct usb_session *s, const char *fmt, ...)
{
    char msg[SESSION_ERROR_MAX], summary[LOG_LIMIT_SUMMARY_MAX];
    char closing[LOG_LIMIT_CLOSING_MAX];
    unsigned repeats;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* the events stream hears of each new reason, not of every retry */
    if (strncmp(s->last_error, msg, sizeof(s->last_error) - 1) != 0) {
        memcpy(s->last_error, msg, sizeof(msg));
        usb_session__event(s, USB_EVENT_ERROR, msg, NULL);
    }
    s->failed_attempts++;
    /* a new reason: first what the old one did since its line */
    if (log_limit_closing(&s->failures, msg, closing, sizeof(closing)))
        log_warn("%s: failed %s", s->name, closing);
    if (log_limit_check(&s->failures, msg, uv_now(s->p.loop), &repeats))
        log_warn(
            "%s: %s%s; retrying every %u ms at most", s->name,
            log_limit_summary(&s->failures, repeats, summary, sizeof(summary)),
            msg, usb_session__cfg(s)->reconnect_max_ms);
    else
        log_debug("%s: %s (attempt %u)", s->name, msg, s->failed_attempts);
}

static void on_retry_timer(uv_timer_t *timer)
{
    usb_session__attempt(timer->data);
}

static void usb_session_schedule_retry(struct usb_session *s)
{
    uint32_t delay = backoff_next(&s->backoff, (uint32_t)random());

    s->state = SESSION_BACKOFF;
    log_debug("%s: next attempt in %u ms", s->name, delay);
    uv_timer_start(&s->timer, on_retry_timer, delay, 0);
}

/* The connection is closed and the device handed back: decide what comes
 * next. Called from the transport's close and from usb_session__fail(). */
void usb_session__after_close(struct usb_session *s)
{
    s->transport = NULL;
    if (s->host) {
        usb_host_free(s->host);
        s->host = NULL;
    }
    if (s->running_since_ms &&
        uv_now(s->p.loop) - s->running_since_ms >= STABLE_SESSION_MS)
        backoff_reset(&s->backoff);
    s->running_since_ms = 0;

    if (s->ending || !s->device_present) {
        usb_session__release_slot(s);
        usb_session__end(s);
    } else if (s->rejected || s->leaving_slot) {
        s->state = s->rejected ? SESSION_REJECTED : SESSION_WAIT_SLOT;
        s->leaving_slot = false;
        usb_session__release_slot(s);
    } else if (usb_session__cfg(s)->mode == USB_PEER_CONNECT) {
        usb_session_schedule_retry(s);
    } else {
        usb_session__attempt(s);
    }
}

/* Hands the device back to the host and closes the connection; the next
 * state is chosen when the close completed. graceful: let the peer see
 * the device disconnect before the connection goes. */
void usb_session__fail(struct usb_session *s, bool graceful)
{
    uv_timer_stop(&s->timer);
    s->state = SESSION_CLOSING;
    if (s->host)
        usb_host_stop(s->host, graceful);
    if (s->transport)
        usb_transport_close(s->transport, graceful);
    else
        usb_session__after_close(s);
}

static void on_deadline(uv_timer_t *timer)
{
    struct usb_session *s = timer->data;

    if (s->state == SESSION_RELAY)
        usb_session__log_failure(s,
                                 "relay %s did not finish the handshake "
                                 "within %d s",
                                 usb_transport_peer(s->transport),
                                 RELAY_HANDSHAKE_TIMEOUT_MS / 1000);
    else
        usb_session__log_failure(
            s, "peer %s sent no usbredir hello within %d s",
            usb_transport_peer(s->transport), HELLO_TIMEOUT_MS / 1000);
    usb_session__fail(s, false);
}

/* ---- connecting ---- */

void usb_session__wait_hello(struct usb_session *s)
{
    struct usb_host_params hp = {
        .loop = s->p.loop,
        .ctx = s->p.usb,
        .dev = s->p.dev,
        .access = s->p.access,
        .usbredir_debug = usb_session__cfg(s)->usbredir_debug,
        .name = s->name,
        .peer = usb_transport_peer(s->transport),
        .out = s->transport,
        .counters = &s->counters,
    };

    s->state = SESSION_HELLO;
    uv_timer_start(&s->timer, on_deadline, HELLO_TIMEOUT_MS, 0);
    s->host = usb_host_new(&hp, &usb_session__host_ops, s);
    if (!s->host) {
        log_err("%s: out of memory", s->name);
        usb_session__fail(s, false);
    }
}

/* Connected to redir-relay: prove who we are before anything else. */
static void usb_session_start_relay(struct usb_session *s)
{
    const struct usb_config *cfg = usb_session__cfg(s);
    struct usb_relay_params rp = {
        .target = s->slot->target,
        .secret_file = cfg->relay_secret_file,
        .agent_id = cfg->agent_id,
        .lz4 = cfg->transport == USB_TRANSPORT_LZ4,
        .compress = !usb_device_is_isochronous(s->p.dev),
    };
    char err[512];

    if (usb_transport_start_relay(s->transport, &rp, err, sizeof(err)) < 0) {
        usb_session__log_failure(s, "relay %s: %s", s->slot->name, err);
        usb_session__fail(s, false);
        return;
    }
    s->state = SESSION_RELAY;
    uv_timer_start(&s->timer, on_deadline, RELAY_HANDSHAKE_TIMEOUT_MS, 0);
    log_msg(s->failed_attempts ? LOG_DEBUG : LOG_INFO,
            "%s: connected to relay %s (slot %u, target %s); handshake",
            s->name, usb_transport_peer(s->transport), s->slot->index,
            s->slot->target);
}

/* Connected to a peer: wait for its hello before touching the device. */
void usb_session__start(struct usb_session *s)
{
    usb_transport_read_start(s->transport);
    if (s->slot->target[0]) {
        usb_session_start_relay(s);
        return;
    }
    log_msg(s->failed_attempts ? LOG_DEBUG : LOG_INFO,
            "%s: connected to %s (slot %u); waiting for its usbredir hello",
            s->name, usb_transport_peer(s->transport), s->slot->index);
    usb_session__wait_hello(s);
}

void usb_session__adopt(struct usb_session *s, struct net_conn *c)
{
    s->transport = usb_transport_adopt(s->p.loop, c, &s->counters,
                                       &usb_session__transport_ops, s);
    if (!s->transport) {
        log_err("%s: out of memory", s->name);
        usb_session__fail(s, false);
        return;
    }
    usb_session__start(s);
}

/* Called from the retry timer, when a slot is taken, and after a close. */
void usb_session__attempt(struct usb_session *s)
{
    struct usb_slot *slot = s->slot;

    if (usb_session__cfg(s)->mode == USB_PEER_CONNECT) {
        s->state = SESSION_CONNECTING;
        s->transport = usb_transport_dial(
            s->p.loop, &slot->ep, slot->table->tls, usb_slot_peer_name(slot),
            CONNECT_TIMEOUT_MS, &s->counters, &usb_session__transport_ops, s);
        if (!s->transport) {
            log_warn("%s: cannot start connecting to %s", s->name, slot->name);
            usb_session_schedule_retry(s);
        }
        return;
    }
    struct net_conn *parked = usb_slot_take_parked(slot);
    if (parked) {
        usb_session__adopt(s, parked);
        return;
    }
    s->state = SESSION_WAIT_PEER;
    log_info("%s: waiting for the peer to connect to %s (slot %u)", s->name,
             slot->name, slot->index);
}
