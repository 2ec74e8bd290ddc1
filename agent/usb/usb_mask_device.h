/* SPDX-License-Identifier: MIT */
/* The access mask's view of a device, read from its descriptors: the
 * analysed configuration, its storage interface and endpoints, and the
 * altsettings the guest may select. */
#ifndef REDIR_USB_MASK_DEVICE_H
#define REDIR_USB_MASK_DEVICE_H

#include <libusb.h>

#include "usb_mask.h"

void usb_mask_device_config(libusb_device *dev, enum usb_access access,
                            struct usb_mask_config *out);

#endif
