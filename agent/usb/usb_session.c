/* SPDX-License-Identifier: MIT */
/* One redirected USB device: the session's life (new, end, its slot) and
 * what the redirector asks of it (take a slot, a peer arrived, unplugged,
 * shut down, withdraw, leave the slot, status). How it reaches the peer
 * and retries is in usb_session_connect.c, what its parts report in
 * usb_session_callbacks.c; the bytes are the transport's and the host's
 * business. */
#include "usb_session.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "net_conn.h"
#include "usb_session_int.h"
#include "usb_slots.h"

/* Tells the redirector (for the events stream and the counters). */
void usb_session__event(struct usb_session *s, enum usb_event_kind kind,
                        const char *detail, const char *peer)
{
    if (s->ops->on_event)
        s->ops->on_event(s->ctx, s, (int)kind, detail, peer, s->was_redirected);
}

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
    backoff_init(&s->backoff, usb_session__cfg(s)->reconnect_min_ms,
                 usb_session__cfg(s)->reconnect_max_ms);
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
void usb_session__end(struct usb_session *s)
{
    uv_timer_stop(&s->timer);
    s->ops->on_ended(s->ctx, s);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

void usb_session__release_slot(struct usb_session *s)
{
    struct usb_slot *slot = s->slot;

    if (!slot)
        return;
    s->slot = NULL;
    slot->session = NULL;
    s->ops->on_slot_released(s->ctx, s, slot);
}

/* ---- entry points from the redirector ---- */

void usb_session_take_slot(struct usb_session *s, struct usb_slot *slot)
{
    s->slot = slot;
    slot->session = s;
    backoff_init(&s->backoff, usb_session__cfg(s)->reconnect_min_ms,
                 usb_session__cfg(s)->reconnect_max_ms);
    usb_session__attempt(s);
}

void usb_session_peer_arrived(struct usb_session *s, struct net_conn *c)
{
    if (s->state == SESSION_WAIT_PEER) {
        usb_session__adopt(s, c);
        return;
    }
    /* A new connection while one is running: either the peer restarted
     * and the old connection is stale (its end has not reached us), or
     * someone else wants the device. Only replace_peer = yes switches;
     * otherwise the newcomer waits for the old one to be seen dead (a
     * restarted QEMU's old socket closes at once; keepalive finds a host
     * that vanished) and its reconnect gets in then. */
    if (!usb_session__cfg(s)->replace_peer &&
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
        usb_session__fail(s, false);
    }
}

/* The session is to end: at once if it holds nothing, else once closed. */
static void usb_session_finish(struct usb_session *s)
{
    s->ending = true;
    switch (s->state) {
    case SESSION_RUNNING: usb_session__fail(s, true); break;
    case SESSION_CLOSING: break; /* usb_session__after_close ends it */
    default:
        if (s->transport) {
            usb_session__fail(s, false);
            break;
        }
        usb_session__release_slot(s);
        usb_session__end(s);
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
            usb_session__fail(s, s->state == SESSION_RUNNING);
        return;
    }
    uv_timer_stop(&s->timer);
    s->state =
        s->state == SESSION_REJECTED ? SESSION_REJECTED : SESSION_WAIT_SLOT;
    usb_session__release_slot(s);
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
