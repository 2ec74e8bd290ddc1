/* SPDX-License-Identifier: MIT */
/* USB device policy: a pure decision from descriptors to "redirect" or "keep
 * local". */
#ifndef REDIR_USB_POLICY_H
#define REDIR_USB_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "usb_device_info.h"
#include "usb_rules.h"

struct usbredirfilter_rule;

struct usb_policy {
    const struct usb_rule *rules; /* [usb] rule lines, first match wins */
    size_t n_rules;
    /* usbredirfilter rules from [usb] filter, or NULL */
    const struct usbredirfilter_rule *filter_rules;
    int filter_count;
};

struct usb_decision {
    bool redirect;
    enum usb_access access;
    char reason[USB_RULE_TEXT_MAX + 32];
};

/* In order: hubs and the serial bridge's devices stay local; then the first
 * matching rule; then the filter; then the defaults: HID boot keyboards and
 * boot mice (a composite with such an interface too) stay local, all else
 * is redirected read-write. */
void usb_policy_decide(const struct usb_policy *policy,
                       const struct usb_device_info *dev,
                       const struct usb_device_strings *strings,
                       struct usb_decision *out);

#endif
