/* SPDX-License-Identifier: MIT */
/* Gives a device's driverless interfaces back to the host's kernel drivers:
 * what a crashed agent leaves behind (the kernel drops a dead process's
 * usbfs claims but binds no driver again). */
#ifndef REDIR_USB_REBIND_H
#define REDIR_USB_REBIND_H

#include <libusb.h>

/* For a device the policy keeps local, at start: every interface of the
 * device at port that no driver holds (not even usbfs) is offered to the
 * kernel's drivers again, and the outcome logged under name. Opens the
 * device only if there is such an interface. */
void usb_rebind_driverless(libusb_device *dev, const char *port,
                           const char *name);

#endif
