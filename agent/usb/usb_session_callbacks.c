/* SPDX-License-Identifier: MIT */
/* Inside a USB session: what its transport (connection up, relay accepted,
 * data, gone, failed, closed) and its host (device claimed, failed)
 * report, and how the session moves on. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "usb_device.h"
#include "usb_session_int.h"
#include "usb_slots.h"

/* ---- the transport's events ---- */

static void on_transport_open(void *owner, int status)
{
    struct usb_session *s = owner;

    if (status == 0) {
        usb_session__start(s);
        return;
    }
    const char *detail = usb_transport_error_detail(s->transport);
    usb_session__log_failure(s, "cannot connect to %s: %s%s%s", s->slot->name,
                             uv_strerror(status), detail ? ": " : "",
                             detail ? detail : "");
    usb_session__fail(s, false);
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
    usb_session__wait_hello(s);
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
        usb_session__event(s, USB_EVENT_DISCONNECTED,
                           status == UV_EOF ? "the peer closed the connection"
                                            : uv_strerror(status),
                           peer);
    } else if (s->state == SESSION_HELLO || s->state == SESSION_RELAY) {
        /* TLS 1.3 checks our certificate after the handshake: a peer
         * that refuses it just hangs up (QEMU does) */
        bool tls = usb_transport_peer_identity(s->transport) != NULL &&
                   (s->state == SESSION_RELAY ||
                    usb_transport_kind(s->transport) == USB_TRANSPORT_DIRECT);
        usb_session__log_failure(s,
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
    usb_session__fail(s, false);
}

static void on_transport_failed(void *owner, const char *why, bool refused)
{
    struct usb_session *s = owner;

    if (refused)
        usb_session__log_failure(s, "%s", why);
    else
        log_warn("%s: %s; disconnecting", s->name, why);
    usb_session__fail(s, false);
}

static void on_transport_closed(void *owner)
{
    usb_session__after_close(owner);
}

const struct usb_transport_ops usb_session__transport_ops = {
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
    usb_session__event(s, USB_EVENT_REDIRECTED, NULL,
                       usb_transport_peer(s->transport));
    s->was_redirected = true;
}

static void on_host_failed(void *owner, enum usb_host_failure why,
                           const char *not_usbredir)
{
    struct usb_session *s = owner;

    if (why == USB_HOST_PEER_FAILED)
        usb_session__log_failure(s, "peer %s is not a usbredir peer (%s)",
                                 usb_transport_peer(s->transport),
                                 not_usbredir);
    if (why == USB_HOST_DEVICE_GONE && s->state != SESSION_RUNNING)
        s->device_present = false; /* the LEFT event is on its way */
    if (why == USB_HOST_REJECTED) {
        s->rejected = true;
        usb_session__event(s, USB_EVENT_REJECTED,
                           "the VM's usbredir filter refused the device",
                           usb_transport_peer(s->transport));
    }
    /* a device the peer knew gets its disconnect packet first */
    usb_session__fail(
        s, why == USB_HOST_REJECTED ||
               (why == USB_HOST_DEVICE_GONE && s->state == SESSION_RUNNING));
}

const struct usb_host_ops usb_session__host_ops = {
    .on_claimed = on_host_claimed,
    .on_failed = on_host_failed,
};
