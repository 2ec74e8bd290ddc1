/* SPDX-License-Identifier: MIT */
/* Inside the USB redirector: where hotplug events come from (libusb, or
 * the kernel's uevents when no udev daemon runs) and the queue that hands
 * them to the device list outside libusb's event handling. */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "usb_kernel_hotplug.h"
#include "usb_redirector_int.h"

/* Runs outside libusb's event handling: opening, claiming and closing
 * devices from inside a hotplug callback is not allowed. */
void usb_redirector_drain_hotplug(struct usb_redirector *r)
{
    while (r->queue_head) {
        struct hotplug_event *ev = r->queue_head;
        r->queue_head = ev->next;
        if (!r->queue_head)
            r->queue_tail = NULL;
        if (!r->stopping)
            usb_redirector_handle_hotplug(r, ev);
        if (ev->dev)
            libusb_unref_device(ev->dev);
        free(ev);
    }
}

static void on_queue_timer(uv_timer_t *timer)
{
    usb_redirector_drain_hotplug(timer->data);
}

static struct hotplug_event *queue_event(struct usb_redirector *r,
                                         libusb_hotplug_event event)
{
    struct hotplug_event *ev = calloc(1, sizeof(*ev));

    if (!ev) {
        log_err("out of memory queueing a hotplug event");
        return NULL;
    }
    ev->event = event;
    if (r->queue_tail)
        r->queue_tail->next = ev;
    else
        r->queue_head = ev;
    r->queue_tail = ev;
    uv_timer_start(&r->queue_timer, on_queue_timer, 0, 0);
    return ev;
}

/* Called by libusb from event handling (or from registration, for the
 * devices already present): only queues. */
static int on_hotplug(libusb_context *ctx, libusb_device *dev,
                      libusb_hotplug_event event, void *user_data)
{
    struct usb_redirector *r = user_data;
    struct hotplug_event *ev = queue_event(r, event);
    (void)ctx;

    if (ev) {
        ev->dev = libusb_ref_device(dev);
        ev->at_start = r->enumerating;
    }
    return 0;
}

/* The kernel's uevents, without udevd: queued like libusb's. */
static void queue_kernel_event(struct usb_redirector *r,
                               libusb_hotplug_event event,
                               const struct usb_sysfs_device *d)
{
    struct hotplug_event *ev = queue_event(r, event);

    if (!ev)
        return;
    ev->busnum = d->busnum;
    ev->devnum = d->devnum;
    snprintf(ev->port, sizeof(ev->port), "%s", d->port);
}

static void on_kernel_arrived(void *ctx, const struct usb_sysfs_device *d)
{
    queue_kernel_event(ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, d);
}

static void on_kernel_left(void *ctx, const struct usb_sysfs_device *d)
{
    queue_kernel_event(ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, d);
}

static const struct usb_kernel_hotplug_ops kernel_hotplug_ops = {
    .arrived = on_kernel_arrived,
    .left = on_kernel_left,
};

/* Debian's libusb is built with udev: it hears only udevd's re-broadcast
 * of uevents, and its device list never changes without one. The choice
 * is made once and logged once. Before libusb enumerates, so that a
 * device plugged meanwhile is heard. */
void usb_redirector_choose_hotplug(struct usb_redirector *r)
{
    const char *why;

    if (usb_kernel_hotplug_udevd_runs(&why)) {
        log_info("hotplug: udev (libusb hears the udev daemon's events)");
        return;
    }
    r->kernel_hotplug =
        usb_kernel_hotplug_start(r->loop, &kernel_hotplug_ops, r);
    if (r->kernel_hotplug)
        log_info("hotplug: kernel uevents (%s)", why);
    else
        log_warn("hotplug: none (%s, and kernel uevents cannot be heard): "
                 "only devices present now are seen",
                 why);
}

int usb_redirector_watch_hotplug(struct usb_redirector *r)
{
    r->enumerating = true; /* the present devices are reported now */
    int rc = libusb_hotplug_register_callback(
        r->usb,
        LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
        LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY,
        LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, r,
        &r->hotplug);

    r->enumerating = false;
    if (rc < 0) {
        log_err("cannot watch USB hotplug: %s", libusb_error_name(rc));
        return -1;
    }
    r->hotplug_registered = true;
    return 0;
}
