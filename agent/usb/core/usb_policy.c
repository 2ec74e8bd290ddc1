/* SPDX-License-Identifier: MIT */
/* USB device policy: a pure decision from descriptors to "redirect" or "keep
 * local". */
#include "usb_policy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <usbredirfilter.h>

#define HID_SUBCLASS_BOOT 0x01
#define HID_PROTOCOL_KEYBOARD 0x01
#define HID_PROTOCOL_MOUSE 0x02

static bool is_hub(const struct usb_device_info *dev)
{
    if (dev->dev_class == USB_CLASS_HUB)
        return true;
    for (size_t i = 0; i < dev->n_interfaces; i++)
        if (dev->interfaces[i].cls == USB_CLASS_HUB)
            return true;
    return false;
}

/* Returns the boot protocol of the first HID boot interface, or 0. */
static int boot_hid_protocol(const struct usb_device_info *dev)
{
    for (size_t i = 0; i < dev->n_interfaces; i++) {
        const struct usb_interface_class *ic = &dev->interfaces[i];
        if (ic->cls == USB_CLASS_HID && ic->subclass == HID_SUBCLASS_BOOT &&
            (ic->protocol == HID_PROTOCOL_KEYBOARD ||
             ic->protocol == HID_PROTOCOL_MOUSE))
            return ic->protocol;
    }
    return 0;
}

static void decide_by_filter(const struct usb_policy *policy,
                             const struct usb_device_info *dev,
                             struct usb_decision *out)
{
    uint8_t cls[USB_POLICY_MAX_INTERFACES], sub[USB_POLICY_MAX_INTERFACES],
        proto[USB_POLICY_MAX_INTERFACES];

    for (size_t i = 0; i < dev->n_interfaces; i++) {
        cls[i] = dev->interfaces[i].cls;
        sub[i] = dev->interfaces[i].subclass;
        proto[i] = dev->interfaces[i].protocol;
    }
    int r = usbredirfilter_check(
        policy->filter_rules, policy->filter_count, dev->dev_class,
        dev->dev_subclass, dev->dev_protocol, cls, sub, proto,
        (int)dev->n_interfaces, dev->vid, dev->pid, dev->bcd_device, 0);
    out->redirect = r == 0;
    snprintf(out->reason, sizeof(out->reason), "filter: %s",
             r == 0         ? "allowed"
             : r == -EPERM  ? "denied by a rule"
             : r == -ENOENT ? "no rule matched"
                            : "invalid device data");
}

static bool decide_by_rules(const struct usb_policy *policy,
                            const struct usb_device_info *dev,
                            const struct usb_device_strings *strings,
                            struct usb_decision *out)
{
    for (size_t i = 0; i < policy->n_rules; i++) {
        const struct usb_rule *rule = &policy->rules[i];
        if (!usb_rule_matches(rule, dev, strings))
            continue;
        out->redirect = rule->allow;
        out->access = rule->access;
        snprintf(out->reason, sizeof(out->reason), "rule %zu: %s", i + 1,
                 rule->text);
        return true;
    }
    return false;
}

/* Why the access mask cannot be trusted with this device, or NULL. UAS
 * keeps many commands in flight on streams the mask cannot follow; other
 * storage protocols (CBI, vendor) it does not speak; with two storage
 * interfaces it would follow only one. */
static const char *unmaskable(const struct usb_device_info *dev)
{
    if (dev->has_uas)
        return "UAS storage";
    if (dev->has_other_storage)
        return "storage that is not Bulk-Only";
    if (dev->storage_interfaces > 1)
        return "more than one storage interface";
    return NULL;
}

/* Such devices are only ever redirected read-write. */
static void refuse_unmaskable(const struct usb_device_info *dev,
                              struct usb_decision *out)
{
    char rule[sizeof(out->reason)];
    const char *why = unmaskable(dev);

    if (!out->redirect || out->access == USB_ACCESS_RW || !why)
        return;
    memcpy(rule, out->reason, sizeof(rule));
    /* The rule's text is kept as far as it fits. */
    snprintf(out->reason, sizeof(out->reason), "%s cannot be made %s; %.*s",
             why, usb_access_name(out->access), (int)(sizeof(out->reason) - 60),
             rule);
    out->redirect = false;
}

void usb_policy_decide(const struct usb_policy *policy,
                       const struct usb_device_info *dev,
                       const struct usb_device_strings *strings,
                       struct usb_decision *out)
{
    out->redirect = false;
    out->access = USB_ACCESS_RW;
    if (is_hub(dev)) {
        snprintf(out->reason, sizeof(out->reason), "hubs are never redirected");
        return;
    }
    if (strings->serial_bridge_port) {
        snprintf(out->reason, sizeof(out->reason),
                 "used by the serial bridge [serial.%s]",
                 strings->serial_bridge_port);
        return;
    }
    if (decide_by_rules(policy, dev, strings, out)) {
        refuse_unmaskable(dev, out);
        return;
    }
    if (policy->filter_rules) {
        decide_by_filter(policy, dev, out);
        return;
    }
    int boot = boot_hid_protocol(dev);
    out->redirect = boot == 0;
    snprintf(out->reason, sizeof(out->reason), "default policy%s",
             boot == HID_PROTOCOL_KEYBOARD ? ": HID boot keyboard"
             : boot == HID_PROTOCOL_MOUSE  ? ": HID boot mouse"
                                           : "");
}
