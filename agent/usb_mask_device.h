/* Mask configuration from a device's descriptors: its Bulk-Only endpoints and
 * bulk endpoints. */
#ifndef REDIR_USB_MASK_DEVICE_H
#define REDIR_USB_MASK_DEVICE_H

#include <libusb.h>

#include "usb_mask.h"

void usb_mask_config_from_device(libusb_device *dev, enum usb_access access,
                                 struct usb_mask_config *out);

/* Webcams, audio: their data is usually compressed already. */
bool usb_device_is_isochronous(libusb_device *dev);

#endif
