/* SPDX-License-Identifier: MIT */
/* Where redirected devices go: one slot per configured endpoint (a chardev
 * or a relay target), one device at a time; in listen mode the slot's
 * listener and a peer that connected before any device needed it. */
#ifndef REDIR_USB_SLOTS_H
#define REDIR_USB_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "endpoint.h"
#include "net_listener.h"
#include "usb_config.h"

struct net_conn;
struct net_listener;
struct net_tls_ctx;
struct usb_session;
struct usb_slots;

struct usb_slot {
    struct usb_slots *table;
    unsigned index; /* 1-based, as printed */
    struct endpoint ep;
    char target[USB_TARGET_MAX]; /* relay target, "" for a chardev */
    char name[ENDPOINT_STR_MAX];
    struct usb_session *session;   /* the device on it, or NULL */
    struct net_listener *listener; /* listen mode */
    struct net_conn *parked; /* listen mode: a peer waiting for a device */
    bool retired; /* gone from the config; freed once its device left */
};

struct usb_slots_ops {
    /* Listen mode: a peer connected to a slot that has a session. */
    void (*on_peer)(void *ctx, struct usb_slot *slot, struct net_conn *c);
    /* A reload took the slot away while a session holds it: the session
     * must leave it (see usb_slots_released). */
    void (*on_retired)(void *ctx, struct usb_slot *slot);
};

struct usb_slots {
    uv_loop_t *loop;
    enum usb_peer_mode mode;
    enum usb_wire_format transport;
    struct usb_slot *slots[USB_CONFIG_MAX_SLOTS];
    size_t n;
    const struct usb_slots_ops *ops;
    void *ctx;
    /* TLS for every slot: the client side in connect mode (the server's
     * name checked against tls_peer_name or the host dialed), the server
     * side in listen mode; NULL: plaintext */
    struct net_tls_ctx *tls;
    char peer_name[TLS_NAME_MAX]; /* tls_peer_name, "" if unset */
    struct net_guard guard;       /* listen mode: who may connect */
    /* usb_slots_reconfigure() is rebuilding slots[]: a session that leaves
     * its slot meanwhile finds no free one (the caller offers them after) */
    bool rebuilding;
};

/* Sets up u's slots (listening in listen mode). Returns 0, or -1 after
 * logging why (nothing is left open then). */
int usb_slots_open(struct usb_slots *t, uv_loop_t *loop,
                   const struct usb_config *u, const struct usb_slots_ops *ops,
                   void *ctx);

/* A reload: slots whose endpoint and target stay keep their device and
 * connection; the others are retired (on_retired for those in use), new
 * ones open. A new listener that fails is logged and left out. Returns
 * how many slots changed. */
size_t usb_slots_reconfigure(struct usb_slots *t, const struct usb_config *u);

/* The session left slot: a retired slot is freed now. */
void usb_slots_released(struct usb_slots *t, struct usb_slot *slot);

/* Stops listening and hangs up on parked peers; no slot may have a
 * session. */
void usb_slots_close(struct usb_slots *t);

/* The first slot without a device, or NULL (also while rebuilding). */
struct usb_slot *usb_slots_find_free(struct usb_slots *t);

/* Listen mode: the parked peer, handed over (or NULL). */
struct net_conn *usb_slot_take_parked(struct usb_slot *slot);

/* Parks c on slot (a peer came back while the old connection still runs),
 * hanging up on a peer parked before. */
void usb_slot_park(struct usb_slot *slot, struct net_conn *c);

/* The name a dialed slot's certificate must carry: tls_peer_name, or the
 * host dialed. */
const char *usb_slot_peer_name(const struct usb_slot *slot);

#endif
