/* A USB device as policy sees it: descriptors, strings and location, read
 * without claiming it. */
#ifndef REDIR_USB_DEVICE_H
#define REDIR_USB_DEVICE_H

#include <libusb.h>

#include "usb_policy.h"

struct agent_config;
struct usb_session;

#define USB_PORT_PATH_MAX 32
#define USB_STRING_MAX 128

/* Every device libusb reported and we decided on, redirected or local. */
struct usb_device_entry {
    struct usb_device_entry *next;
    libusb_device *dev; /* referenced */
    char name[192];     /* VID:PID "product" at BUS-PORT, for logs */
    char port[USB_PORT_PATH_MAX];
    char product[USB_STRING_MAX];
    char serial[USB_STRING_MAX];
    struct usb_device_info info;
    struct usb_decision decision;
    struct usb_session *session; /* NULL while kept local */
};

/* Reads descriptors (cached: no device I/O) and strings (sysfs, else the
 * device); NULL if the device cannot be read. */
struct usb_device_entry *usb_device_entry_new(libusb_device *dev);
void usb_device_entry_free(struct usb_device_entry *e);

/* Fills e->decision. Called on arrival, on reload, and by --list-devices. */
void usb_device_decide(struct usb_device_entry *e,
                       const struct usb_policy *policy,
                       const struct agent_config *cfg);

#endif
