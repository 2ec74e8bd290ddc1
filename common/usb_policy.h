/* USB device policy: a pure decision from descriptors to "redirect" or "keep
 * local". */
#ifndef REDIR_USB_POLICY_H
#define REDIR_USB_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USB_POLICY_MAX_INTERFACES 32 /* usbredir's own limit per device */
#define USB_CLASS_HUB 0x09
#define USB_CLASS_HID 0x03

struct usb_interface_class {
    uint8_t cls, subclass, protocol;
};

/* Everything the policy may look at; filled from cached descriptors, so
 * deciding never touches the device. */
struct usb_device_info {
    uint16_t vid, pid, bcd_device;
    uint8_t dev_class, dev_subclass, dev_protocol;
    size_t n_interfaces;
    struct usb_interface_class interfaces[USB_POLICY_MAX_INTERFACES];
};

struct usbredirfilter_rule;

struct usb_policy {
    /* usbredirfilter rules from [usb] filter, or NULL for the defaults */
    const struct usbredirfilter_rule *filter_rules;
    int filter_count;
};

struct usb_decision {
    bool redirect;
    char reason[128];
};

/* Defaults with no filter: hubs, HID boot keyboards and boot mice stay
 * local (a composite with such an interface too), all else is redirected. */
void usb_policy_decide(const struct usb_policy *policy,
                       const struct usb_device_info *dev,
                       struct usb_decision *out);

#endif
