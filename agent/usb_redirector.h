/* USB redirection as a whole: hotplug, policy decisions, slots, and the
 * sessions on them. */
#ifndef REDIR_USB_REDIRECTOR_H
#define REDIR_USB_REDIRECTOR_H

#include <libusb.h>
#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "usb_device.h"
#include "usb_events.h"
#include "usb_policy.h"

struct usb_session;
struct peer_conn;
struct hotplug_event;

/* A slot is one QEMU usb-redir chardev: one device at a time. */
struct usb_slot {
    struct usb_redirector *r;
    unsigned index; /* 1-based, as printed */
    struct hostport addr;
    char name[HOSTPORT_HOST_MAX + 8];
    struct usb_session *session; /* device holding the slot, or NULL */
    uv_tcp_t listener;           /* listen mode */
    bool listening;
    struct peer_conn *parked; /* listen mode: peer connected, no device yet */
};

struct usb_redirector {
    uv_loop_t *loop;
    const struct agent_config *cfg;
    struct usb_policy policy;
    libusb_context *ctx;
    struct usb_events events;
    libusb_hotplug_callback_handle hotplug;
    bool hotplug_registered;

    struct usb_slot slots[CONFIG_MAX_SLOTS];
    size_t nslots;

    struct usb_device_entry *devices; /* every device present */
    struct usb_session *sessions;     /* devices we redirect, oldest first */
    unsigned live_sessions;           /* including those whose handles close */
    struct hotplug_event *queue_head, *queue_tail;
    uv_timer_t queue_timer; /* drains hotplug events outside libusb */

    bool stopping;
    void (*on_stopped)(struct usb_redirector *r);
};

int usb_redirector_start(struct usb_redirector *r, uv_loop_t *loop,
                         const struct agent_config *cfg);

/* The agent's config was replaced (SIGHUP): devices not redirected yet are
 * decided again under the new rules. Endpoints are not changed. */
void usb_redirector_reconfigure(struct usb_redirector *r);

/* Hands every device back to the host and closes every connection;
 * on_stopped runs when all is released. */
void usb_redirector_stop(struct usb_redirector *r,
                         void (*on_stopped)(struct usb_redirector *r));

/* Called by sessions: the session gives up its slot (the next waiting
 * device gets it); forgets the session (unlinks it, gives up its slot);
 * its last handle closed. */
void usb_redirector_release_slot(struct usb_redirector *r,
                                 struct usb_session *s);
void usb_redirector_forget(struct usb_redirector *r, struct usb_session *s);
void usb_redirector_session_closed(struct usb_redirector *r);

#endif
