/* SPDX-License-Identifier: MIT */
/* USB redirection as a whole: hotplug, a policy decision per device, slots,
 * and a session for every device that is redirected. */
#ifndef REDIR_USB_REDIRECTOR_H
#define REDIR_USB_REDIRECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "usb_config.h"
#include "usb_event.h"
#include "usb_session.h"

struct usb_redirector;

/* Totals since start, for metrics. */
struct usb_redirector_counters {
    uint64_t redirected, reconnects, rejected, failures, disconnects;
    uint64_t detached, attached;
    /* of sessions that ended; live ones are in their status */
    uint64_t bytes_to_peer, bytes_from_peer, wire_bytes_to_peer;
};

/* What the redirector asks of and tells the agent. */
struct usb_redirector_ops {
    /* The [serial.NAME] port that uses the device at port (BUS-PORT) with
     * that serial number, or NULL: such devices stay local. */
    const char *(*serial_owner)(void *ctx, const char *port,
                                const char *serial);
    /* usb_redirector_stop() finished: every device is back. */
    void (*on_stopped)(void *ctx);
    /* Something happened to a device (may be NULL). */
    void (*on_event)(void *ctx, const struct usb_event *ev);
};

/* Starts libusb, hotplug and the slots of cfg, which must stay valid
 * until replaced by usb_redirector_reconfigure(). NULL after logging why. */
struct usb_redirector *
usb_redirector_start(uv_loop_t *loop, const struct usb_config *cfg,
                     const struct usb_redirector_ops *ops, void *ctx);

/* A reload: cfg replaces the config. Devices not redirected yet are
 * decided again; slots whose endpoint changed give their device back and
 * it moves to a new slot; the others keep running. Returns how many
 * slots changed. */
size_t usb_redirector_reconfigure(struct usb_redirector *r,
                                  const struct usb_config *cfg);

/* ---- what the control socket changes ---- */

/* "detach SEL": the devices at port SEL (BUS-PORT) or with SEL's VID:PID
 * are handed back to the host and kept local until attached or replugged.
 * Returns how many, or -1 with why in msg (nothing matched, ambiguous). */
int usb_redirector_detach(struct usb_redirector *r, const char *sel, char *msg,
                          size_t len);

/* "attach SEL [force]": a held device is decided again; force redirects it
 * against a deny rule or the keyboard/mouse default (never a hub or the
 * serial bridge's device), if allow_force. Returns how many devices are
 * now redirected or on their way, or -1 with why. */
int usb_redirector_attach(struct usb_redirector *r, const char *sel, bool force,
                          bool allow_force, char *msg, size_t len);

const struct usb_redirector_counters *
usb_redirector_counters(const struct usb_redirector *r);

/* Hands every device back to the host and closes every connection;
 * on_stopped runs when all is released, then the redirector is freed. */
void usb_redirector_stop(struct usb_redirector *r);

/* ---- what "status" shows ---- */

struct usb_device_status {
    const char *port, *product, *serial, *reason;
    uint16_t vid, pid;
    bool redirect;
    enum usb_access access;
    bool held_local, forced;
    bool has_session;
    struct usb_session_status session;
};

struct usb_slot_status {
    unsigned index;
    const char *endpoint;
    bool busy;
};

/* Strings point into the redirector: valid until it next runs. */
struct usb_status {
    enum usb_peer_mode mode;
    size_t n_slots;
    struct usb_slot_status slots[USB_CONFIG_MAX_SLOTS];
    size_t n_devices;
    struct usb_device_status *devices; /* malloc'ed; NULL if none */
};

/* Fills out (out->devices NULL if out of memory). */
void usb_redirector_status(const struct usb_redirector *r,
                           struct usb_status *out);
void usb_status_free(struct usb_status *st);

#endif
