/* SPDX-License-Identifier: MIT */
/* One redirected USB device: the state machine that takes it to a slot's
 * peer and back (connecting, hello, running, retrying). The bytes are the
 * transport's and the host's business. */
#include "usb_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "log_limit.h"
#include "net_conn.h"
#include "usb_counters.h"
#include "usb_device.h"
#include "usb_event.h"
#include "usb_host.h"
#include "usb_slots.h"
#include "usb_transport.h"

#define CONNECT_TIMEOUT_MS 10000 /* a SYN to a dead host would wait minutes */
/* A running QEMU sends its hello at once; a paused one only once resumed.
 * The device stays the host's meanwhile, so this only bounds how long a
 * silent peer keeps a connection. */
#define HELLO_TIMEOUT_MS 10000
/* The relay answers once it reached QEMU, which it allows 10 s itself. */
#define RELAY_HANDSHAKE_TIMEOUT_MS 20000
/* A session that ran this long starts the next backoff over. */
#define STABLE_SESSION_MS 10000
#define SESSION_NAME_MAX 192
#define SESSION_ERROR_MAX 512 /* a failure's text: peer, error, detail */

struct usb_session {
    struct usb_session_params p;
    const struct usb_session_ops *ops;
    void *ctx;
    char name[SESSION_NAME_MAX];
    enum usb_session_state state;
    bool device_present; /* false once libusb reported it left */
    bool rejected;       /* the peer's filter refused the device */
    bool ending;         /* withdrawn, shut down or unplugged: no retry */
    bool leaving_slot;   /* the slot goes away: wait for another */
    struct usb_slot *slot;
    struct usb_transport *transport; /* NULL while not connected */
    struct usb_host *host;           /* NULL while not connected */
    uv_timer_t timer;                /* backoff, or the peer's deadline */
    struct backoff backoff;
    uint64_t running_since_ms;
    unsigned failed_attempts;
    struct usb_counters counters;
    struct log_limit peer_refusals;     /* replace_peer = no */
    bool was_redirected;                /* a redirect now is a reconnect */
    struct log_limit failures;          /* why attempts fail, for the log */
    char last_error[SESSION_ERROR_MAX]; /* reported as an event */
};

static const struct usb_transport_ops session_transport_ops;
static const struct usb_host_ops session_host_ops;

/* Tells the redirector (for the events stream and the counters). */
static void usb_session_event(struct usb_session *s, enum usb_event_kind kind,
                              const char *detail, const char *peer)
{
    if (s->ops->on_event)
        s->ops->on_event(s->ctx, s, (int)kind, detail, peer, s->was_redirected);
}
static void usb_session_attempt(struct usb_session *s);
static void usb_session_fail(struct usb_session *s, bool graceful);

const char *usb_session_state_name(enum usb_session_state state)
{
    static const char *const names[] = {
        [SESSION_WAIT_SLOT] = "waiting-for-slot",
        [SESSION_CONNECTING] = "connecting",
        [SESSION_WAIT_PEER] = "waiting-for-peer",
        [SESSION_RELAY] = "relay-handshake",
        [SESSION_HELLO] = "waiting-for-hello",
        [SESSION_RUNNING] = "redirected",
        [SESSION_BACKOFF] = "retrying",
        [SESSION_CLOSING] = "closing",
        [SESSION_REJECTED] = "rejected-by-peer",
    };
    return names[state];
}

static const struct usb_config *usb_session_cfg(const struct usb_session *s)
{
    return *s->p.cfg;
}

struct usb_session *usb_session_new(const struct usb_session_params *p,
                                    const struct usb_session_ops *ops,
                                    void *ctx)
{
    struct usb_session *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->p = *p;
    s->p.dev = libusb_ref_device(p->dev);
    s->p.name = s->name;
    snprintf(s->name, sizeof(s->name), "%s", p->name);
    s->ops = ops;
    s->ctx = ctx;
    s->state = SESSION_WAIT_SLOT;
    s->device_present = true;
    uv_timer_init(p->loop, &s->timer);
    s->timer.data = s;
    backoff_init(&s->backoff, usb_session_cfg(s)->reconnect_min_ms,
                 usb_session_cfg(s)->reconnect_max_ms);
    return s;
}

static void on_timer_closed(uv_handle_t *handle)
{
    struct usb_session *s = handle->data;
    const struct usb_session_ops *ops = s->ops;
    void *ctx = s->ctx;

    libusb_unref_device(s->p.dev);
    free(s);
    ops->on_freed(ctx);
}

/* Called once the session holds no connection and no device. */
static void usb_session_end(struct usb_session *s)
{
    uv_timer_stop(&s->timer);
    s->ops->on_ended(s->ctx, s);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static void usb_session_release_slot(struct usb_session *s)
{
    struct usb_slot *slot = s->slot;

    if (!slot)
        return;
    s->slot = NULL;
    slot->session = NULL;
    s->ops->on_slot_released(s->ctx, s, slot);
}

/* ---- retrying ---- */

static void usb_session_log_failure(struct usb_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Logs a failed attempt: each new reason as a warning when it first occurs
 * and when it changes; a reason that repeats is summarised once a minute
 * ("failed 12 more times in 60 s: ..."), so a peer that is down for an
 * hour is not an hour of logs, and a second, different failure is never
 * hidden behind the first. */
static void usb_session_log_failure(struct usb_session *s, const char *fmt, ...)
{
    char msg[SESSION_ERROR_MAX], summary[LOG_LIMIT_SUMMARY_MAX];
    unsigned repeats;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* the events stream hears of each new reason, not of every retry */
    if (strncmp(s->last_error, msg, sizeof(s->last_error) - 1) != 0) {
        memcpy(s->last_error, msg, sizeof(msg));
        usb_session_event(s, USB_EVENT_ERROR, msg, NULL);
    }
    s->failed_attempts++;
    if (log_limit_check(&s->failures, msg, uv_now(s->p.loop), &repeats))
        log_warn(
            "%s: %s%s; retrying every %u ms at most", s->name,
            log_limit_summary(&s->failures, repeats, summary, sizeof(summary)),
            msg, usb_session_cfg(s)->reconnect_max_ms);
    else
        log_debug("%s: %s (attempt %u)", s->name, msg, s->failed_attempts);
}

static void on_retry_timer(uv_timer_t *timer)
{
    usb_session_attempt(timer->data);
}

static void usb_session_schedule_retry(struct usb_session *s)
{
    uint32_t delay = backoff_next(&s->backoff, (uint32_t)random());

    s->state = SESSION_BACKOFF;
    log_debug("%s: next attempt in %u ms", s->name, delay);
    uv_timer_start(&s->timer, on_retry_timer, delay, 0);
}

/* The connection is closed and the device handed back: decide what comes
 * next. Called from the transport's close and from usb_session_fail(). */
static void usb_session_after_close(struct usb_session *s)
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
        usb_session_release_slot(s);
        usb_session_end(s);
    } else if (s->rejected || s->leaving_slot) {
        s->state = s->rejected ? SESSION_REJECTED : SESSION_WAIT_SLOT;
        s->leaving_slot = false;
        usb_session_release_slot(s);
    } else if (usb_session_cfg(s)->mode == USB_PEER_CONNECT) {
        usb_session_schedule_retry(s);
    } else {
        usb_session_attempt(s);
    }
}

/* Hands the device back to the host and closes the connection; the next
 * state is chosen when the close completed. graceful: let the peer see
 * the device disconnect before the connection goes. */
static void usb_session_fail(struct usb_session *s, bool graceful)
{
    uv_timer_stop(&s->timer);
    s->state = SESSION_CLOSING;
    if (s->host)
        usb_host_stop(s->host, graceful);
    if (s->transport)
        usb_transport_close(s->transport, graceful);
    else
        usb_session_after_close(s);
}

static void on_deadline(uv_timer_t *timer)
{
    struct usb_session *s = timer->data;

    if (s->state == SESSION_RELAY)
        usb_session_log_failure(s,
                                "relay %s did not finish the handshake "
                                "within %d s",
                                usb_transport_peer(s->transport),
                                RELAY_HANDSHAKE_TIMEOUT_MS / 1000);
    else
        usb_session_log_failure(s, "peer %s sent no usbredir hello within %d s",
                                usb_transport_peer(s->transport),
                                HELLO_TIMEOUT_MS / 1000);
    usb_session_fail(s, false);
}

/* ---- connecting ---- */

static void usb_session_wait_hello(struct usb_session *s)
{
    struct usb_host_params hp = {
        .loop = s->p.loop,
        .ctx = s->p.usb,
        .dev = s->p.dev,
        .access = s->p.access,
        .usbredir_debug = usb_session_cfg(s)->usbredir_debug,
        .name = s->name,
        .peer = usb_transport_peer(s->transport),
        .out = s->transport,
        .counters = &s->counters,
    };

    s->state = SESSION_HELLO;
    uv_timer_start(&s->timer, on_deadline, HELLO_TIMEOUT_MS, 0);
    s->host = usb_host_new(&hp, &session_host_ops, s);
    if (!s->host) {
        log_err("%s: out of memory", s->name);
        usb_session_fail(s, false);
    }
}

/* Connected to redir-relay: prove who we are before anything else. */
static void usb_session_start_relay(struct usb_session *s)
{
    const struct usb_config *cfg = usb_session_cfg(s);
    struct usb_relay_params rp = {
        .target = s->slot->target,
        .secret_file = cfg->relay_secret_file,
        .agent_id = cfg->agent_id,
        .lz4 = cfg->transport == USB_TRANSPORT_LZ4,
        .compress = !usb_device_is_isochronous(s->p.dev),
    };
    char err[512];

    if (usb_transport_start_relay(s->transport, &rp, err, sizeof(err)) < 0) {
        usb_session_log_failure(s, "relay %s: %s", s->slot->name, err);
        usb_session_fail(s, false);
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
static void usb_session_start(struct usb_session *s)
{
    usb_transport_read_start(s->transport);
    if (s->slot->target[0]) {
        usb_session_start_relay(s);
        return;
    }
    log_msg(s->failed_attempts ? LOG_DEBUG : LOG_INFO,
            "%s: connected to %s (slot %u); waiting for its usbredir hello",
            s->name, usb_transport_peer(s->transport), s->slot->index);
    usb_session_wait_hello(s);
}

static void usb_session_adopt(struct usb_session *s, struct net_conn *c)
{
    s->transport = usb_transport_adopt(s->p.loop, c, &s->counters,
                                       &session_transport_ops, s);
    if (!s->transport) {
        log_err("%s: out of memory", s->name);
        usb_session_fail(s, false);
        return;
    }
    usb_session_start(s);
}

/* Called from the retry timer, when a slot is taken, and after a close. */
static void usb_session_attempt(struct usb_session *s)
{
    struct usb_slot *slot = s->slot;

    if (usb_session_cfg(s)->mode == USB_PEER_CONNECT) {
        s->state = SESSION_CONNECTING;
        s->transport = usb_transport_dial(
            s->p.loop, &slot->ep, slot->table->tls, usb_slot_peer_name(slot),
            CONNECT_TIMEOUT_MS, &s->counters, &session_transport_ops, s);
        if (!s->transport) {
            log_warn("%s: cannot start connecting to %s", s->name, slot->name);
            usb_session_schedule_retry(s);
        }
        return;
    }
    struct net_conn *parked = usb_slot_take_parked(slot);
    if (parked) {
        usb_session_adopt(s, parked);
        return;
    }
    s->state = SESSION_WAIT_PEER;
    log_info("%s: waiting for the peer to connect to %s (slot %u)", s->name,
             slot->name, slot->index);
}

/* ---- the transport's events ---- */

static void on_transport_open(void *owner, int status)
{
    struct usb_session *s = owner;

    if (status == 0) {
        usb_session_start(s);
        return;
    }
    const char *detail = usb_transport_error_detail(s->transport);
    usb_session_log_failure(s, "cannot connect to %s: %s%s%s", s->slot->name,
                            uv_strerror(status), detail ? ": " : "",
                            detail ? detail : "");
    usb_session_fail(s, false);
}

static void on_transport_ready(void *owner)
{
    struct usb_session *s = owner;
    enum usb_transport_kind kind = usb_transport_kind(s->transport);

    log_msg(s->failed_attempts ? LOG_DEBUG : LOG_INFO,
            "%s: relay %s accepted us (%s); waiting for the VM's usbredir "
            "hello",
            s->name, usb_transport_peer(s->transport),
            kind == USB_TRANSPORT_RELAY_RAW ? "raw"
            : !usb_device_is_isochronous(s->p.dev)
                ? "lz4"
                : "lz4, not compressing isochronous data");
    usb_session_wait_hello(s);
}

static void on_transport_data(void *owner, const uint8_t *data, size_t len)
{
    struct usb_session *s = owner;

    if (s->state == SESSION_HELLO || s->state == SESSION_RUNNING)
        usb_host_feed(s->host, data, len);
}

static void on_transport_gone(void *owner, int status)
{
    struct usb_session *s = owner;
    const char *peer = usb_transport_peer(s->transport);

    if (s->state == SESSION_RUNNING) {
        if (status == UV_EOF)
            log_notice("%s: peer %s closed the connection", s->name, peer);
        else
            log_notice("%s: connection to peer %s lost: %s", s->name, peer,
                       uv_strerror(status));
        usb_session_event(s, USB_EVENT_DISCONNECTED,
                          status == UV_EOF ? "the peer closed the connection"
                                           : uv_strerror(status),
                          peer);
    } else if (s->state == SESSION_HELLO || s->state == SESSION_RELAY) {
        /* TLS 1.3 checks our certificate after the handshake: a peer
         * that refuses it just hangs up (QEMU does) */
        bool tls = usb_transport_peer_identity(s->transport) != NULL &&
                   (s->state == SESSION_RELAY ||
                    usb_transport_kind(s->transport) == USB_TRANSPORT_DIRECT);
        usb_session_log_failure(s,
                                "peer %s closed the connection before its "
                                "hello: %s%s",
                                peer, uv_strerror(status),
                                tls && status == UV_EOF
                                    ? " (over TLS: it may have refused this "
                                      "thin client's certificate)"
                                    : "");
    } else {
        return;
    }
    usb_session_fail(s, false);
}

static void on_transport_failed(void *owner, const char *why, bool refused)
{
    struct usb_session *s = owner;

    if (refused)
        usb_session_log_failure(s, "%s", why);
    else
        log_warn("%s: %s; disconnecting", s->name, why);
    usb_session_fail(s, false);
}

static void on_transport_closed(void *owner) { usb_session_after_close(owner); }

static const struct usb_transport_ops session_transport_ops = {
    .on_open = on_transport_open,
    .on_ready = on_transport_ready,
    .on_data = on_transport_data,
    .on_gone = on_transport_gone,
    .on_failed = on_transport_failed,
    .on_closed = on_transport_closed,
};

/* ---- the host's events ---- */

static void on_host_claimed(void *owner)
{
    struct usb_session *s = owner;
    char attempts[48] = "", tls[TLS_NAME_MAX + 32] = "";
    const char *who = usb_transport_peer_identity(s->transport);

    uv_timer_stop(&s->timer);
    s->state = SESSION_RUNNING;
    s->running_since_ms = uv_now(s->p.loop);
    if (s->failed_attempts)
        snprintf(attempts, sizeof(attempts), " after %u failed attempts",
                 s->failed_attempts);
    if (who)
        snprintf(tls, sizeof(tls), " over TLS (certificate '%s')", who);
    log_info("%s: redirected %s to %s (slot %u)%s%s", s->name,
             usb_access_name(s->p.access), usb_transport_peer(s->transport),
             s->slot->index, tls, attempts);
    s->failed_attempts = 0;
    s->last_error[0] = '\0';
    memset(&s->failures, 0, sizeof(s->failures));
    usb_session_event(s, USB_EVENT_REDIRECTED, NULL,
                      usb_transport_peer(s->transport));
    s->was_redirected = true;
}

static void on_host_failed(void *owner, enum usb_host_failure why,
                           const char *not_usbredir)
{
    struct usb_session *s = owner;

    if (why == USB_HOST_PEER_FAILED)
        usb_session_log_failure(s, "peer %s is not a usbredir peer (%s)",
                                usb_transport_peer(s->transport), not_usbredir);
    if (why == USB_HOST_DEVICE_GONE && s->state != SESSION_RUNNING)
        s->device_present = false; /* the LEFT event is on its way */
    if (why == USB_HOST_REJECTED) {
        s->rejected = true;
        usb_session_event(s, USB_EVENT_REJECTED,
                          "the VM's usbredir filter refused the device",
                          usb_transport_peer(s->transport));
    }
    /* a device the peer knew gets its disconnect packet first */
    usb_session_fail(
        s, why == USB_HOST_REJECTED ||
               (why == USB_HOST_DEVICE_GONE && s->state == SESSION_RUNNING));
}

static const struct usb_host_ops session_host_ops = {
    .on_claimed = on_host_claimed,
    .on_failed = on_host_failed,
};

/* ---- entry points from the redirector ---- */

void usb_session_take_slot(struct usb_session *s, struct usb_slot *slot)
{
    s->slot = slot;
    slot->session = s;
    backoff_init(&s->backoff, usb_session_cfg(s)->reconnect_min_ms,
                 usb_session_cfg(s)->reconnect_max_ms);
    usb_session_attempt(s);
}

void usb_session_peer_arrived(struct usb_session *s, struct net_conn *c)
{
    if (s->state == SESSION_WAIT_PEER) {
        usb_session_adopt(s, c);
        return;
    }
    /* A new connection while one is running: either the peer restarted
     * and the old connection is stale (its end has not reached us), or
     * someone else wants the device. Only replace_peer = yes switches;
     * otherwise the newcomer waits for the old one to be seen dead (a
     * restarted QEMU's old socket closes at once; keepalive finds a host
     * that vanished) and its reconnect gets in then. */
    if (!usb_session_cfg(s)->replace_peer &&
        (s->state == SESSION_RUNNING || s->state == SESSION_HELLO)) {
        char more[LOG_LIMIT_SUFFIX_MAX];
        unsigned repeats;
        if (log_limit_check(&s->peer_refusals, "second peer", uv_now(s->p.loop),
                            &repeats))
            log_warn("%s: refusing a second peer from %s: the device is in "
                     "use by %s (replace_peer = no)%s",
                     s->name, net_conn_name(c),
                     usb_transport_peer(s->transport),
                     log_limit_suffix(repeats, more, sizeof(more)));
        net_conn_close(c, false);
        return;
    }
    usb_slot_park(s->slot, c);
    if (s->state == SESSION_RUNNING || s->state == SESSION_HELLO) {
        log_notice("%s: peer reconnected from %s; replacing the old connection",
                   s->name, net_conn_name(c));
        usb_session_fail(s, false);
    }
}

/* The session is to end: at once if it holds nothing, else once closed. */
static void usb_session_finish(struct usb_session *s)
{
    s->ending = true;
    switch (s->state) {
    case SESSION_RUNNING: usb_session_fail(s, true); break;
    case SESSION_CLOSING: break; /* usb_session_after_close ends it */
    default:
        if (s->transport) {
            usb_session_fail(s, false);
            break;
        }
        usb_session_release_slot(s);
        usb_session_end(s);
        break;
    }
}

void usb_session_device_left(struct usb_session *s)
{
    s->device_present = false;
    if (s->state == SESSION_RUNNING)
        log_info("%s: unplugged; detaching it from peer %s", s->name,
                 usb_transport_peer(s->transport));
    else
        log_info("%s: unplugged", s->name);
    usb_session_finish(s);
}

void usb_session_shutdown(struct usb_session *s)
{
    if (s->state == SESSION_RUNNING)
        log_info("%s: handing the device back to the host", s->name);
    usb_session_finish(s);
}

void usb_session_withdraw(struct usb_session *s) { usb_session_finish(s); }

void usb_session_leave_slot(struct usb_session *s)
{
    if (!s->slot)
        return;
    if (s->state == SESSION_RUNNING)
        log_info("%s: handing the device back: its slot %u (%s) is gone",
                 s->name, s->slot->index, s->slot->name);
    if (s->transport || s->state == SESSION_CLOSING) {
        s->leaving_slot = true;
        if (s->state != SESSION_CLOSING)
            usb_session_fail(s, s->state == SESSION_RUNNING);
        return;
    }
    uv_timer_stop(&s->timer);
    s->state =
        s->state == SESSION_REJECTED ? SESSION_REJECTED : SESSION_WAIT_SLOT;
    usb_session_release_slot(s);
}

void usb_session_set_access(struct usb_session *s, enum usb_access access)
{
    s->p.access = access;
}

bool usb_session_is_redirecting(const struct usb_session *s)
{
    return s->state == SESSION_HELLO || s->state == SESSION_RUNNING ||
           s->state == SESSION_CLOSING;
}

bool usb_session_waits_for_slot(const struct usb_session *s)
{
    return s->state == SESSION_WAIT_SLOT;
}

void usb_session_status(const struct usb_session *s,
                        struct usb_session_status *out)
{
    uint64_t now = uv_now(s->p.loop);
    const struct usb_counters *c = &s->counters;
    bool connected = s->transport && s->state != SESSION_CONNECTING;

    *out = (struct usb_session_status){
        .state = s->state,
        .slot = s->slot ? s->slot->index : 0,
        .transport = usb_transport_kind_name(
            s->transport ? usb_transport_kind(s->transport)
                         : USB_TRANSPORT_DIRECT),
        .peer = connected ? usb_transport_peer(s->transport) : NULL,
        .redirected_for_ms =
            s->running_since_ms ? now - s->running_since_ms : 0,
        .bytes_to_peer = c->bytes_to_peer,
        .bytes_from_peer = c->bytes_from_peer,
        .wire_bytes_to_peer = c->wire_bytes_to_peer,
        .packets_to_peer = c->packets_to_peer,
        .packets_from_peer = c->packets_from_peer,
        .rate_to_peer = usb_counters_rate(&c->rate_to_peer, now),
        .rate_from_peer = usb_counters_rate(&c->rate_from_peer, now),
    };
}
