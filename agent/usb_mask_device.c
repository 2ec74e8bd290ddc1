/* Mask configuration from a device's descriptors: its Bulk-Only endpoints and
 * bulk endpoints. */
#include "usb_mask_device.h"

#include <string.h>

#include "usb_device_info.h"

#define MSC_SUBCLASS_SCSI 0x06
#define MSC_PROTOCOL_BOT 0x50

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

bool usb_device_is_isochronous(libusb_device *dev)
{
    struct libusb_config_descriptor *cfg;
    bool iso = false;

    if (libusb_get_active_config_descriptor(dev, &cfg) < 0)
        return false;
    for (int i = 0; i < cfg->bNumInterfaces && !iso; i++) {
        const struct libusb_interface *itf = &cfg->interface[i];
        for (int a = 0; a < itf->num_altsetting && !iso; a++)
            for (int e = 0; e < itf->altsetting[a].bNumEndpoints; e++)
                iso |= (itf->altsetting[a].endpoint[e].bmAttributes & 0x03) ==
                       LIBUSB_TRANSFER_TYPE_ISOCHRONOUS;
    }
    libusb_free_config_descriptor(cfg);
    return iso;
}

/* Every altsetting counts: the guest may select any of them. */
void usb_mask_config_from_device(libusb_device *dev, enum usb_access access,
                                 struct usb_mask_config *out)
{
    struct libusb_config_descriptor *cfg;

    memset(out, 0, sizeof(*out));
    out->access = access;
    if (libusb_get_active_config_descriptor(dev, &cfg) < 0 &&
        libusb_get_config_descriptor(dev, 0, &cfg) < 0)
        return;
    for (int i = 0; i < cfg->bNumInterfaces; i++) {
        const struct libusb_interface *itf = &cfg->interface[i];
        for (int a = 0; a < itf->num_altsetting; a++) {
            const struct libusb_interface_descriptor *alt = &itf->altsetting[a];
            bool bot = alt->bInterfaceClass == USB_CLASS_MASS_STORAGE &&
                       alt->bInterfaceSubClass == MSC_SUBCLASS_SCSI &&
                       alt->bInterfaceProtocol == MSC_PROTOCOL_BOT;
            for (int e = 0; e < alt->bNumEndpoints; e++)
                note_endpoint(&alt->endpoint[e], bot, out);
        }
    }
    libusb_free_config_descriptor(cfg);
}
