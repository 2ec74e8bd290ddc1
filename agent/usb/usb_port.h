/* SPDX-License-Identifier: MIT */
/* Where a USB device is plugged: its BUS-PORT path ("1-1.4"; "1-0" for a
 * root hub), as libusb's port numbers and sysfs both name it. */
#ifndef REDIR_USB_PORT_H
#define REDIR_USB_PORT_H

/* The longest: bus 255, 7 tiers of hubs on port 255 each
 * ("255-255.255.255.255.255.255.255", 31 characters) and the NUL. */
#define USB_PORT_PATH_MAX 32

#endif
