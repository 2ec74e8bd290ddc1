/* SPDX-License-Identifier: MIT */
/* The device side of a session: the peer's usbredir stream judged (hello),
 * the device handed to usbredirhost once it said hello, everything the peer
 * sends passed through the access mask, what usbredirhost answers counted
 * and sent on. */
#ifndef REDIR_USB_HOST_H
#define REDIR_USB_HOST_H

#include <libusb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net_conn.h"
#include "usb_rules.h"

struct usb_counters;
struct usb_host;
struct usb_transport;

/* How a host failed, for the session's next step (the host logged it). */
enum usb_host_failure {
    USB_HOST_PEER_FAILED, /* the peer is no usbredir peer: retry */
    USB_HOST_ERROR,       /* open/claim failed, a broken stream: retry */
    USB_HOST_DEVICE_GONE, /* unplugged (open failed, or lost while
                             redirected) */
    USB_HOST_REJECTED,    /* the peer's filter refused the device */
};

/* What the host tells its session. */
struct usb_host_ops {
    /* the peer said hello and the device is redirected now */
    void (*on_claimed)(void *owner);
    /* not_usbredir: why the peer is none (the session logs it as a
     * failed attempt); NULL for the other failures, logged already */
    void (*on_failed)(void *owner, enum usb_host_failure why,
                      const char *not_usbredir);
};

struct usb_host_params {
    uv_loop_t *loop;
    libusb_context *ctx;
    libusb_device *dev;
    enum usb_access access;
    int usbredir_debug;
    const char *name; /* for log lines */
    const char *peer; /* the peer's address, for log lines */
    /* where usbredirhost's packets go; its queue tells usbredirhost when
     * to drop isochronous packets */
    struct usb_transport *out;
    struct usb_counters *counters;
};

/* Waits for the peer's hello; the device stays the host's until then. */
struct usb_host *usb_host_new(const struct usb_host_params *p,
                              const struct usb_host_ops *ops, void *owner);

/* Bytes from the peer, in order. Returns 0, or -1 once the host failed
 * (on_failed was called) or was stopped meanwhile. */
int usb_host_feed(struct usb_host *h, const uint8_t *data, size_t len);

/* Gives the device back to the host's drivers and stops sending; a
 * device_disconnect for the peer is sent first when graceful. Idempotent.
 * Called from the session's failure path. */
void usb_host_stop(struct usb_host *h, bool graceful);

/* Frees everything (after usb_host_stop, once the connection closed). */
void usb_host_free(struct usb_host *h);

#endif
