/* SPDX-License-Identifier: MIT */
/* Inside the USB redirector: the list of devices present, what arrives
 * and leaves, and the policy's decision for each (logged, reported, and
 * acted on by starting or ending its session). */
#include <stdlib.h>

#include "log.h"
#include "usb_device.h"
#include "usb_policy.h"
#include "usb_rebind.h"
#include "usb_redirector_int.h"

/* ---- decisions ---- */

static void device_decide(struct usb_redirector *r, struct device_node *d)
{
    const char *owner = r->ops->serial_owner(r->ctx, d->e->port, d->e->serial);
    usb_device_decide(d->e, &r->policy, owner);
    usb_redirector_apply_marks(d, owner);
}

/* "decision" for the events stream. */
static void device_emit_decision(struct usb_redirector *r,
                                 const struct device_node *d)
{
    struct usb_event ev = {
        .kind = USB_EVENT_DECISION,
        .redirect = d->e->decision.redirect,
        .access = d->e->decision.redirect
                      ? usb_access_name(d->e->decision.access)
                      : NULL,
        .detail = d->e->decision.reason,
    };
    usb_redirector_emit(r, d, &ev);
}

static void device_log_decision(const struct usb_device_entry *e)
{
    const struct usb_decision *dec = &e->decision;

    if (dec->redirect)
        log_info("%s: redirect %s (%s)", e->name, usb_access_name(dec->access),
                 dec->reason);
    else
        log_msg(e->info.dev_class == USB_CLASS_HUB ? LOG_DEBUG : LOG_INFO,
                "%s: stays local (%s)", e->name, dec->reason);
}

/* Decides d again under the current rules; a running session keeps its
 * decision (a reload) unless even_if_redirecting (detach, attach). */
void usb_redirector_redecide(struct usb_redirector *r, struct device_node *d,
                             bool even_if_redirecting)
{
    struct usb_decision before = d->e->decision;

    if (d->session && usb_session_is_redirecting(d->session) &&
        !even_if_redirecting)
        return;
    device_decide(r, d);
    if (before.redirect == d->e->decision.redirect &&
        before.access == d->e->decision.access)
        return;
    device_log_decision(d->e);
    device_emit_decision(r, d);
    if (d->session && !d->e->decision.redirect)
        usb_session_withdraw(d->session);
    else if (d->session)
        usb_session_set_access(d->session, d->e->decision.access);
    else if (d->e->decision.redirect)
        usb_redirector_start_session(r, d);
}

/* ---- arrivals and departures ---- */

/* A device's bus and device number are unique while it is plugged. */
static struct device_node *find_by_address(struct usb_redirector *r,
                                           uint8_t busnum, uint8_t devnum)
{
    for (struct device_node *d = r->devices; d; d = d->next)
        if (libusb_get_bus_number(d->e->dev) == busnum &&
            libusb_get_device_address(d->e->dev) == devnum)
            return d;
    return NULL;
}

/* port is NULL when libusb knows it. A device the policy keeps local gets
 * its driverless interfaces back at start: after a crash, nobody else
 * would. */
static void handle_arrival(struct usb_redirector *r, libusb_device *dev,
                           const char *port, bool at_start)
{
    struct device_node *d;

    /* Both libusb and the kernel's uevents may report it (udevd started
     * after the agent, or a plug while the agent started). */
    if (find_by_address(r, libusb_get_bus_number(dev),
                        libusb_get_device_address(dev)))
        return;
    d = calloc(1, sizeof(*d));
    if (d)
        d->e = usb_device_entry_new_at(dev, port);
    if (!d || !d->e) {
        free(d);
        log_warn("a new USB device could not be read; ignoring it");
        return;
    }
    d->next = r->devices;
    r->devices = d;
    device_decide(r, d);
    device_log_decision(d->e);
    usb_redirector_emit(r, d, &(struct usb_event){.kind = USB_EVENT_ARRIVED});
    device_emit_decision(r, d);
    if (d->e->decision.redirect)
        usb_redirector_start_session(r, d);
    else if (at_start && d->e->info.dev_class != USB_CLASS_HUB)
        usb_rebind_driverless(d->e->dev, d->e->port, d->e->name);
}

/* A device the kernel reported: libusb's own device list never learns of
 * it without udevd, so it is opened by its address. */
static void handle_kernel_arrival(struct usb_redirector *r,
                                  const struct hotplug_event *ev)
{
    libusb_device *dev;

    if (find_by_address(r, ev->busnum, ev->devnum))
        return; /* libusb reported it already */
    dev = usb_device_wrap(r->usb, ev->busnum, ev->devnum);
    if (!dev) {
        log_info("new USB device at %s could not be opened (gone "
                 "already?); ignoring it",
                 ev->port);
        return;
    }
    handle_arrival(r, dev, ev->port, false);
    libusb_unref_device(dev); /* the entry holds its own reference */
}

static void device_node_free(struct device_node *d)
{
    usb_device_entry_free(d->e);
    free(d);
}

/* The departing device is dev, or (dev NULL) the one at that address. */
static void handle_departure(struct usb_redirector *r, libusb_device *dev,
                             uint8_t busnum, uint8_t devnum)
{
    for (struct device_node **pp = &r->devices; *pp; pp = &(*pp)->next) {
        struct device_node *d = *pp;
        if (dev ? d->e->dev != dev
                : libusb_get_bus_number(d->e->dev) != busnum ||
                      libusb_get_device_address(d->e->dev) != devnum)
            continue;
        *pp = d->next;
        usb_redirector_emit(r, d, &(struct usb_event){.kind = USB_EVENT_LEFT});
        if (d->session)
            usb_session_device_left(d->session); /* may end it now */
        else
            log_msg(d->e->info.dev_class == USB_CLASS_HUB ? LOG_DEBUG
                                                          : LOG_INFO,
                    "%s: unplugged (was local)", d->e->name);
        device_node_free(d);
        return;
    }
}

void usb_redirector_handle_hotplug(struct usb_redirector *r,
                                   const struct hotplug_event *ev)
{
    if (ev->event == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT)
        handle_departure(r, ev->dev, ev->busnum, ev->devnum);
    else if (ev->dev)
        handle_arrival(r, ev->dev, NULL, ev->at_start);
    else
        handle_kernel_arrival(r, ev);
}

/* Everything is released: the devices go with their libusb references. */
void usb_redirector_free_devices(struct usb_redirector *r)
{
    while (r->devices) {
        struct device_node *d = r->devices;
        r->devices = d->next;
        device_node_free(d);
    }
}
