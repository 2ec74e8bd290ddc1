/* SPDX-License-Identifier: MIT */
/* What happened to a USB device, as the sessions and the redirector report
 * it to the agent (the events stream, the counters). */
#ifndef REDIR_USB_EVENT_H
#define REDIR_USB_EVENT_H

#include <stdbool.h>
#include <stdint.h>

/* What happened to a device, for the events stream and the counters. */
enum usb_event_kind {
    USB_EVENT_ARRIVED,      /* plugged (or present at start) */
    USB_EVENT_DECISION,     /* redirect or stay local, and why */
    USB_EVENT_REDIRECTED,   /* the peer took it */
    USB_EVENT_REJECTED,     /* the VM's usbredir filter refused it */
    USB_EVENT_DISCONNECTED, /* it was redirected; the connection ended */
    USB_EVENT_ERROR,        /* an attempt failed; detail says why */
    USB_EVENT_LEFT,         /* unplugged */
    USB_EVENT_DETACHED,     /* "detach": given back, kept local */
    USB_EVENT_ATTACHED,     /* "attach": redirected again */
};

struct usb_event {
    enum usb_event_kind kind;
    const char *port, *product, *name;
    uint16_t vid, pid;
    bool redirect;      /* DECISION */
    const char *access; /* DECISION, REDIRECTED: "rw", "ro", "wo" */
    const char *detail; /* the reason, error, or NULL */
    const char *peer;   /* REDIRECTED, DISCONNECTED, or NULL */
    unsigned slot;      /* 0: none */
    bool reconnect;     /* REDIRECTED: it had been redirected before */
};

const char *usb_event_kind_name(enum usb_event_kind kind);

#endif
