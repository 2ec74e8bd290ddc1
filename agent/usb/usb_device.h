/* SPDX-License-Identifier: MIT */
/* A USB device as policy sees it: descriptors, strings and location, read
 * without claiming it. */
#ifndef REDIR_USB_DEVICE_H
#define REDIR_USB_DEVICE_H

#include <libusb.h>

#include "usb_policy.h"
#include "usb_port.h"

#define USB_STRING_MAX 128

/* A device libusb reported, and the decision on it. */
struct usb_device_entry {
    libusb_device *dev; /* referenced */
    char name[192];     /* VID:PID "product" at BUS-PORT, for logs */
    char port[USB_PORT_PATH_MAX];
    char product[USB_STRING_MAX];
    char serial[USB_STRING_MAX];
    struct usb_device_info info;
    struct usb_decision decision;
};

/* Reads descriptors (cached: no device I/O) and strings (sysfs, else the
 * device); NULL if the device cannot be read. */
struct usb_device_entry *usb_device_entry_new(libusb_device *dev);
/* The same for a device whose BUS-PORT libusb cannot tell (one from
 * usb_device_wrap): port names it. */
struct usb_device_entry *usb_device_entry_new_at(libusb_device *dev,
                                                 const char *port);

/* A device libusb's own hotplug did not report (no udev daemon runs): its
 * usbfs node /dev/bus/usb/BBB/DDD opened and wrapped, so that libusb reads
 * its descriptors, configuration and speed from the kernel; the node is
 * closed again. Referenced, or NULL if it cannot be opened. */
libusb_device *usb_device_wrap(libusb_context *ctx, uint8_t busnum,
                               uint8_t devnum);
void usb_device_entry_free(struct usb_device_entry *e);

/* Fills e->decision; serial_bridge_port names the [serial.NAME] port that
 * uses the device, or is NULL. Called on arrival, on reload, and by
 * --list-devices. */
void usb_device_decide(struct usb_device_entry *e,
                       const struct usb_policy *policy,
                       const char *serial_bridge_port);

/* Webcams, audio: their data is usually compressed already. */
bool usb_device_is_isochronous(libusb_device *dev);

#endif
