/* SPDX-License-Identifier: MIT */
/* One redirected USB device: the state machine that takes it to a slot's
 * peer and back (connecting, hello, running, retrying). The bytes are the
 * transport's and the host's business. */
#ifndef REDIR_USB_SESSION_H
#define REDIR_USB_SESSION_H

#include <libusb.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "usb_config.h"
#include "usb_rules.h"

struct net_conn;
struct usb_session;
struct usb_slot;

enum usb_session_state {
    SESSION_WAIT_SLOT,  /* allowed, every slot is busy */
    SESSION_CONNECTING, /* connect mode: dialing the slot's peer */
    SESSION_WAIT_PEER,  /* listen mode: waiting for the peer to dial in */
    SESSION_RELAY,      /* connected to redir-relay: handshake */
    SESSION_HELLO,      /* connected; device still the host's until the
                           peer's usbredir hello arrives */
    SESSION_RUNNING,    /* usbredirhost is redirecting the device */
    SESSION_BACKOFF,    /* waiting before the next attempt */
    SESSION_CLOSING,    /* connection closing; next state decided after */
    SESSION_REJECTED,   /* the peer's filter refused it: kept until replug */
};

/* What a session tells the redirector. */
struct usb_session_ops {
    /* The session no longer needs its slot (the peer refused the device,
     * or the session was told to leave it): another device may have it. */
    void (*on_slot_released)(void *ctx, struct usb_session *s,
                             struct usb_slot *slot);
    /* The session ended: device handed back, no connection; it must not
     * be used any more. */
    void (*on_ended)(void *ctx, struct usb_session *s);
    /* Its last handle closed and its memory is gone (after on_ended). */
    void (*on_freed)(void *ctx);
    /* Redirected, rejected, disconnected, an attempt failed (kind is a
     * usb_event_kind; detail and peer may be NULL). */
    void (*on_event)(void *ctx, struct usb_session *s, int kind,
                     const char *detail, const char *peer, bool reconnect);
};

struct usb_session_params {
    uv_loop_t *loop;
    libusb_context *usb;
    libusb_device *dev; /* referenced by the session */
    const char *name;   /* for log lines */
    enum usb_access access;
    /* The redirector's config, which a reload replaces: read through. */
    const struct usb_config *const *cfg;
};

/* What "status" shows of a session. */
struct usb_session_status {
    enum usb_session_state state;
    unsigned slot; /* 0: none */
    const char *transport;
    const char *peer; /* NULL when not connected */
    uint64_t redirected_for_ms;
    uint64_t bytes_to_peer, bytes_from_peer, wire_bytes_to_peer;
    uint64_t packets_to_peer, packets_from_peer;
    uint64_t rate_to_peer, rate_from_peer; /* bytes per second */
};

struct usb_session *usb_session_new(const struct usb_session_params *p,
                                    const struct usb_session_ops *ops,
                                    void *ctx);

/* The redirector gave the session a slot: dial out, or wait for the peer. */
void usb_session_take_slot(struct usb_session *s, struct usb_slot *slot);

/* Listen mode: a peer connected to the session's slot. Takes ownership. */
void usb_session_peer_arrived(struct usb_session *s, struct net_conn *c);

/* libusb reported the device gone. Ends the session. */
void usb_session_device_left(struct usb_session *s);

/* Agent shutdown: hand the device back, close, end. */
void usb_session_shutdown(struct usb_session *s);

/* The device is to stay local now (a reloaded policy): end the session. */
void usb_session_withdraw(struct usb_session *s);

/* The slot is going away (a reload moved the peers): hand the device back
 * and leave the slot; the session waits for a new one (SESSION_WAIT_SLOT)
 * once on_slot_released said so. */
void usb_session_leave_slot(struct usb_session *s);

/* A reloaded policy changed the access of a device not redirected yet. */
void usb_session_set_access(struct usb_session *s, enum usb_access access);

/* True from the first connection attempt's success until the end: such
 * sessions keep their decision across a reload. */
bool usb_session_is_redirecting(const struct usb_session *s);
bool usb_session_waits_for_slot(const struct usb_session *s);

void usb_session_status(const struct usb_session *s,
                        struct usb_session_status *out);

const char *usb_session_state_name(enum usb_session_state state);

#endif
