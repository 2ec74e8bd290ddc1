/* SPDX-License-Identifier: MIT */
/* What policy may know of a USB device: cached descriptors and strings, no
 * handle. */
#ifndef REDIR_USB_DEVICE_INFO_H
#define REDIR_USB_DEVICE_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USB_POLICY_MAX_INTERFACES 32 /* usbredir's own limit per device */
#define USB_CLASS_HID 0x03
#define USB_CLASS_MASS_STORAGE 0x08
#define USB_CLASS_HUB 0x09
#define USB_PROTOCOL_BOT 0x50 /* Bulk-Only Transport */
#define USB_PROTOCOL_UAS 0x62

struct usb_interface_class {
    uint8_t cls, subclass, protocol;
};

struct usb_device_info {
    uint16_t vid, pid, bcd_device;
    uint8_t dev_class, dev_subclass, dev_protocol;
    size_t n_interfaces;        /* of the active configuration, altsetting 0 */
    bool has_uas;               /* some altsetting speaks UAS (08:06:62) */
    bool has_other_storage;     /* some storage altsetting is neither Bulk-Only
                                   nor UAS (CBI, vendor protocols) */
    uint8_t storage_interfaces; /* interfaces with a storage altsetting */
    struct usb_interface_class interfaces[USB_POLICY_MAX_INTERFACES];
};

/* Strings and location; "" when the device has none. */
struct usb_device_strings {
    const char *serial;
    const char *product;
    const char *port; /* BUS-PORT, e.g. "1-1.4" */
    /* NAME of the [serial.NAME] port whose tty this device provides, or
     * NULL: such devices are never redirected. */
    const char *serial_bridge_port;
};

#endif
