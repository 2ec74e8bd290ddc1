/* SPDX-License-Identifier: MIT */
/* Inside the USB redirector: the device list and the state the redirector's
 * files share. Not for other modules. usb_redirector.c: start, reload,
 * stop; usb_redirector_hotplug.c: where hotplug events come from and their
 * queue; usb_redirector_devices.c: the devices and their decisions;
 * usb_redirector_sessions.c: slots and sessions;
 * usb_redirector_control.c: detach/attach, events, status, counters. */
#ifndef REDIR_USB_REDIRECTOR_INT_H
#define REDIR_USB_REDIRECTOR_INT_H

#include <libusb.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "usb_device.h"
#include "usb_events.h"
#include "usb_policy.h"
#include "usb_redirector.h"
#include "usb_slots.h"

struct usb_kernel_hotplug;

/* A device libusb reported: its description, decision and session. */
struct device_node {
    struct device_node *next;
    struct usb_device_entry *e;
    struct usb_session *session; /* NULL while kept local */
    uint64_t seq;                /* arrival order: who waits longest */
    bool held_local; /* "detach": local until "attach" or a replug */
    bool forced;     /* "attach force": redirected against the policy */
};

/* From libusb (dev set), or from the kernel's uevents when no udev daemon
 * runs (dev NULL: the device is known by its address and sysfs name). */
struct hotplug_event {
    struct hotplug_event *next;
    libusb_device *dev; /* referenced, or NULL */
    libusb_hotplug_event event;
    bool at_start;                /* present when the agent started */
    uint8_t busnum, devnum;       /* kernel events */
    char port[USB_PORT_PATH_MAX]; /* kernel events: BUS-PORT */
};

struct usb_redirector {
    uv_loop_t *loop;
    const struct usb_config *cfg;
    struct usb_policy policy;
    const struct usb_redirector_ops *ops;
    void *ctx;
    libusb_context *usb;
    struct usb_events events;
    libusb_hotplug_callback_handle hotplug;
    bool hotplug_registered;
    bool enumerating; /* libusb reports the devices present at start */
    struct usb_kernel_hotplug *kernel_hotplug; /* NULL while udevd runs */
    struct usb_slots slots;
    struct device_node *devices; /* every device present, newest first */
    uint64_t next_seq;
    unsigned live_sessions;
    struct hotplug_event *queue_head, *queue_tail;
    uv_timer_t queue_timer; /* drains hotplug events outside libusb */
    bool stopping;
    struct usb_redirector_counters counters;
};

/* usb_redirector.c: everything is released: the libusb context goes, then
 * the redirector (ops->on_stopped). */
void usb_redirector_finish(struct usb_redirector *r);

/* usb_redirector_hotplug.c: picks libusb's (udevd runs) or the kernel's
 * hotplug, once, before libusb enumerates. */
void usb_redirector_choose_hotplug(struct usb_redirector *r);
/* usb_redirector_hotplug.c: registers with libusb, which reports the
 * devices present at once. Returns 0, or -1 after logging why. */
int usb_redirector_watch_hotplug(struct usb_redirector *r);
/* usb_redirector_hotplug.c: handles (or, when stopping, drops) every queued
 * event. */
void usb_redirector_drain_hotplug(struct usb_redirector *r);

/* usb_redirector_devices.c: a device arrived or left. */
void usb_redirector_handle_hotplug(struct usb_redirector *r,
                                   const struct hotplug_event *ev);
/* usb_redirector_devices.c: frees every device node. */
void usb_redirector_free_devices(struct usb_redirector *r);

/* usb_redirector_sessions.c: what the slots report. */
extern const struct usb_slots_ops usb_redirector_slots_ops;
/* usb_redirector_sessions.c: gives free slots to waiting devices, longest
 * waiting first. */
void usb_redirector_offer_slots(struct usb_redirector *r);
/* usb_redirector_sessions.c: d is redirected: its session, and a slot if
 * one is free. */
void usb_redirector_start_session(struct usb_redirector *r,
                                  struct device_node *d);

/* usb_redirector_devices.c: d decided again under the current policy (and
 * its held_local/forced marks), its session started or ended to match. */
void usb_redirector_redecide(struct usb_redirector *r, struct device_node *d,
                             bool even_if_redirecting);

/* usb_redirector_control.c: held_local and forced laid over the policy's
 * decision (owner: the serial port that uses d, or NULL). */
void usb_redirector_apply_marks(struct device_node *d, const char *owner);

/* usb_redirector_control.c: tells the agent; fills in d's identity. */
void usb_redirector_emit(struct usb_redirector *r, const struct device_node *d,
                         struct usb_event *ev);

#endif
