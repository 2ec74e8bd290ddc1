/* SPDX-License-Identifier: MIT */
/* What the files of a USB session share: its state and the usb_session__
 * functions one part calls in another. Not for other modules.
 * usb_session.c: its life and what the redirector asks of it;
 * usb_session_connect.c: reaching the peer, closing, retrying;
 * usb_session_callbacks.c: what its transport and its host report. */
#ifndef REDIR_USB_SESSION_INT_H
#define REDIR_USB_SESSION_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "backoff.h"
#include "log_limit.h"
#include "usb_counters.h"
#include "usb_event.h"
#include "usb_host.h"
#include "usb_session.h"
#include "usb_transport.h"

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

static inline const struct usb_config *
usb_session__cfg(const struct usb_session *s)
{
    return *s->p.cfg;
}

/* usb_session.c: tells the redirector (for the events stream and the
 * counters). */
void usb_session__event(struct usb_session *s, enum usb_event_kind kind,
                        const char *detail, const char *peer);
/* usb_session.c: the slot goes back to the redirector. */
void usb_session__release_slot(struct usb_session *s);
/* usb_session.c: called once the session holds no connection and no
 * device; frees it once its timer closed. */
void usb_session__end(struct usb_session *s);

/* usb_session_connect.c: the next attempt to reach the slot's peer. */
void usb_session__attempt(struct usb_session *s);
/* usb_session_connect.c: listen mode: the peer's connection c arrived. */
void usb_session__adopt(struct usb_session *s, struct net_conn *c);
/* usb_session_connect.c: connected to a peer: relay handshake or hello. */
void usb_session__start(struct usb_session *s);
/* usb_session_connect.c: wait for the peer's usbredir hello (the host is
 * created, the device still the host's). */
void usb_session__wait_hello(struct usb_session *s);
/* usb_session_connect.c: hands the device back to the host and closes the
 * connection; the next state is chosen when the close completed.
 * graceful: let the peer see the device disconnect before the connection
 * goes. */
void usb_session__fail(struct usb_session *s, bool graceful);
/* usb_session_connect.c: the connection is closed and the device handed
 * back: decide what comes next. */
void usb_session__after_close(struct usb_session *s);
/* usb_session_connect.c: logs a failed attempt (rate-limited) and reports
 * each new reason as an event. */
void usb_session__log_failure(struct usb_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* usb_session_callbacks.c: what the session hears from its parts. */
extern const struct usb_transport_ops usb_session__transport_ops;
extern const struct usb_host_ops usb_session__host_ops;

#endif
