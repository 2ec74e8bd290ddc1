/* SPDX-License-Identifier: MIT */
/* Admin-readable USB rules: "allow vid=1050 access=ro", parsed once, matched
 * purely. */
#ifndef REDIR_USB_RULES_H
#define REDIR_USB_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usb_device_info.h"

#define USB_RULE_TEXT_MAX 192
#define USB_RULE_STRING_MAX 128 /* serial, product, port patterns */

enum usb_access {
    USB_ACCESS_RW, /* the default */
    USB_ACCESS_RO, /* guest may read, not write (bulk masking) */
    USB_ACCESS_WO, /* guest may write, not read */
};

/* A class triple pattern: each field is 0..255, or -1 for "*". */
struct usb_class_pattern {
    int16_t cls, subclass, protocol;
};

enum usb_rule_field {
    RULE_VID = 1 << 0,
    RULE_PID = 1 << 1,
    RULE_BCD = 1 << 2,
    RULE_DEVICE_CLASS = 1 << 3,   /* device= : the device descriptor */
    RULE_ANY_CLASS = 1 << 4,      /* class= : device or any interface */
    RULE_ANY_INTERFACE = 1 << 5,  /* interface= : some interface */
    RULE_ALL_INTERFACES = 1 << 6, /* all-interfaces= : every interface */
    RULE_SERIAL = 1 << 7,
    RULE_PRODUCT = 1 << 8,
    RULE_PORT = 1 << 9,
};

struct usb_rule {
    bool allow;
    enum usb_access access;
    unsigned fields; /* enum usb_rule_field bits that must all match */
    uint16_t vid, pid, bcd;
    struct usb_class_pattern device_class, any_class, any_interface,
        all_interfaces;
    char serial[USB_RULE_STRING_MAX];  /* glob */
    char product[USB_RULE_STRING_MAX]; /* glob */
    char port[USB_RULE_STRING_MAX];    /* glob on BUS-PORT, e.g. 1-1.* */
    char text[USB_RULE_TEXT_MAX];      /* the matchers, as logged */
};

/* Parses "allow|deny MATCHER... [access=rw|ro|wo]". Returns 0, or -1 with
 * the bad token named in why. */
int usb_rule_parse(const char *text, struct usb_rule *rule, char *why,
                   size_t why_len);

bool usb_rule_matches(const struct usb_rule *rule,
                      const struct usb_device_info *dev,
                      const struct usb_device_strings *strings);

const char *usb_access_name(enum usb_access access);

#endif
