/* SPDX-License-Identifier: MIT */
/* The access mask's view of a device, read from its descriptors: the
 * analysed configuration, its storage interface and endpoints, and the
 * altsettings the guest may select. */
#include "usb_mask_device.h"

#include <string.h>

#include "usb_device_info.h"

static bool is_bot(const struct libusb_interface_descriptor *alt)
{
    return alt->bInterfaceClass == USB_CLASS_MASS_STORAGE &&
           alt->bInterfaceProtocol == USB_PROTOCOL_BOT;
}

static void note_endpoint(const struct libusb_endpoint_descriptor *ep, bool bot,
                          struct usb_mask_config *out)
{
    uint8_t addr = ep->bEndpointAddress;

    if ((ep->bmAttributes & 0x03) != LIBUSB_TRANSFER_TYPE_BULK)
        return;
    if (addr & LIBUSB_ENDPOINT_IN)
        out->bulk_in_eps |= (uint16_t)(1u << (addr & 0x0f));
    else
        out->bulk_out_eps |= (uint16_t)(1u << (addr & 0x0f));
    if (bot && (addr & LIBUSB_ENDPOINT_IN) && !out->storage_in_ep)
        out->storage_in_ep = addr;
    if (bot && !(addr & LIBUSB_ENDPOINT_IN) && !out->storage_out_ep)
        out->storage_out_ep = addr;
}

/* The storage interface may only be put in a Bulk-Only altsetting (a raw
 * or vendor one, whatever its class, would carry the medium past the
 * mask); other interfaces in any of theirs (the mask judges their
 * transfers by direction). */
static void note_interface(const struct libusb_interface *itf,
                           struct usb_mask_config *out)
{
    int n_alts = itf->num_altsetting < 32 ? itf->num_altsetting : 32;

    if (n_alts < 1 ||
        itf->altsetting[0].bInterfaceNumber >= USB_MASK_MAX_INTERFACES)
        return;
    uint8_t n = itf->altsetting[0].bInterfaceNumber;
    for (int a = 0; a < n_alts; a++)
        if (is_bot(&itf->altsetting[a]) && out->storage_interface == 0xff)
            out->storage_interface = n;
    for (int a = 0; a < n_alts; a++) {
        const struct libusb_interface_descriptor *alt = &itf->altsetting[a];
        bool storage = n == out->storage_interface;
        if ((storage && !is_bot(alt)) ||
            (!storage && alt->bInterfaceClass == USB_CLASS_MASS_STORAGE))
            continue; /* not selectable */
        out->alts[n] |= 1u << alt->bAlternateSetting;
        for (int e = 0; e < alt->bNumEndpoints; e++)
            note_endpoint(&alt->endpoint[e], storage, out);
    }
}

void usb_mask_device_config(libusb_device *dev, enum usb_access access,
                            struct usb_mask_config *out)
{
    struct libusb_config_descriptor *cfg;

    memset(out, 0, sizeof(*out));
    out->access = access;
    out->storage_interface = 0xff;
    if (libusb_get_active_config_descriptor(dev, &cfg) < 0 &&
        libusb_get_config_descriptor(dev, 0, &cfg) < 0)
        return;
    out->configuration = cfg->bConfigurationValue;
    for (int i = 0; i < cfg->bNumInterfaces; i++)
        note_interface(&cfg->interface[i], out);
    libusb_free_config_descriptor(cfg);
}
