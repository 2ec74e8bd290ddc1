/* SPDX-License-Identifier: MIT */
/* Run-time targets ("redir-agent target LIST"): the [usb] slots replaced by
 * a list the control socket sent (a VDI client at login), checked as the
 * file's list would be; the file's values stay the default. Pure. */
#ifndef REDIR_USB_TARGETS_H
#define REDIR_USB_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#include "usb_config.h"

struct usb_targets {
    bool set; /* false: the config file's slots */
    struct usb_slot_config slots[USB_CONFIG_MAX_SLOTS];
    size_t n; /* 0 with set: cleared, devices stay with the host */
};

/* Parses list against file's [usb] (its transport, secret and TLS must
 * suit the new peers). Returns 0, or -1 with why (t unchanged). */
int usb_targets_parse(struct usb_targets *t, const struct usb_config *file,
                      const char *list, char *why, size_t why_len);

/* No peers at all: "target --clear" (at logout). Refused in listen mode;
 * returns 0 or -1 with why. */
int usb_targets_clear(struct usb_targets *t, const struct usb_config *file,
                      char *why, size_t why_len);

/* eff becomes file with t's slots (a shallow copy: its pointers are
 * file's, so eff is valid while file is). */
void usb_targets_apply(const struct usb_targets *t,
                       const struct usb_config *file, struct usb_config *eff);

/* "HOST:PORT[/TARGET], ..." of cfg's slots into buf ("" for none). */
const char *usb_targets_str(const struct usb_config *cfg, char *buf,
                            size_t len);

#endif
