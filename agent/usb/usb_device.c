/* SPDX-License-Identifier: MIT */
/* A USB device as policy sees it: descriptors, strings and location, read
 * without claiming it. */
#include "usb_device.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usb_device_info.h"
#include "usb_sysfs.h"

#define PORT_PATH_MAX 8 /* USB allows at most 7 tiers of hubs */

static void device_port_path(libusb_device *dev, char *buf, size_t len)
{
    uint8_t ports[PORT_PATH_MAX];
    int n = libusb_get_port_numbers(dev, ports, PORT_PATH_MAX);
    int off = snprintf(buf, len, "%u-", libusb_get_bus_number(dev));

    if (n <= 0) {
        snprintf(buf + off, len - (size_t)off, "0");
        return;
    }
    for (int i = 0; i < n && (size_t)off < len; i++)
        off +=
            snprintf(buf + off, len - (size_t)off, i ? ".%u" : "%u", ports[i]);
}

/* Product and serial strings: sysfs first, else ask the device. */
static void device_strings(libusb_device *dev,
                           const struct libusb_device_descriptor *dd,
                           struct usb_device_entry *e)
{
    bool have_product =
        usb_sysfs_read_attr(e->port, "product", e->product, sizeof(e->product));
    bool have_serial =
        usb_sysfs_read_attr(e->port, "serial", e->serial, sizeof(e->serial));
    libusb_device_handle *h;

    if ((have_product || !dd->iProduct) && (have_serial || !dd->iSerialNumber))
        return;
    if (dd->bDeviceClass == USB_CLASS_HUB || libusb_open(dev, &h) < 0)
        return;
    if (!have_product && dd->iProduct &&
        libusb_get_string_descriptor_ascii(
            h, dd->iProduct, (uint8_t *)e->product, sizeof(e->product)) < 0)
        e->product[0] = '\0';
    if (!have_serial && dd->iSerialNumber &&
        libusb_get_string_descriptor_ascii(
            h, dd->iSerialNumber, (uint8_t *)e->serial, sizeof(e->serial)) < 0)
        e->serial[0] = '\0';
    libusb_close(h);
}

static void device_interfaces(libusb_device *dev, struct usb_device_info *info)
{
    struct libusb_config_descriptor *cfg = NULL;

    if (libusb_get_active_config_descriptor(dev, &cfg) < 0 &&
        libusb_get_config_descriptor(dev, 0, &cfg) < 0)
        return;
    for (int i = 0; i < cfg->bNumInterfaces &&
                    info->n_interfaces < USB_POLICY_MAX_INTERFACES;
         i++) {
        if (cfg->interface[i].num_altsetting < 1)
            continue;
        const struct libusb_interface_descriptor *alt =
            &cfg->interface[i].altsetting[0];
        info->interfaces[info->n_interfaces++] = (struct usb_interface_class){
            alt->bInterfaceClass, alt->bInterfaceSubClass,
            alt->bInterfaceProtocol};
        bool storage = false;
        for (int a = 0; a < cfg->interface[i].num_altsetting; a++) {
            const struct libusb_interface_descriptor *any =
                &cfg->interface[i].altsetting[a];
            if (any->bInterfaceClass != USB_CLASS_MASS_STORAGE)
                continue;
            storage = true;
            if (any->bInterfaceProtocol == USB_PROTOCOL_UAS)
                info->has_uas = true;
            else if (any->bInterfaceProtocol != USB_PROTOCOL_BOT)
                info->has_other_storage = true;
        }
        info->storage_interfaces += storage;
    }
    libusb_free_config_descriptor(cfg);
}

/* Reads descriptors and strings into a new entry; NULL if unreadable. */
struct usb_device_entry *usb_device_entry_new(libusb_device *dev)
{
    return usb_device_entry_new_at(dev, NULL);
}

struct usb_device_entry *usb_device_entry_new_at(libusb_device *dev,
                                                 const char *port)
{
    struct libusb_device_descriptor dd;
    struct usb_device_entry *e;

    if (libusb_get_device_descriptor(dev, &dd) < 0)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->dev = libusb_ref_device(dev);
    e->info = (struct usb_device_info){
        .vid = dd.idVendor,
        .pid = dd.idProduct,
        .bcd_device = dd.bcdDevice,
        .dev_class = dd.bDeviceClass,
        .dev_subclass = dd.bDeviceSubClass,
        .dev_protocol = dd.bDeviceProtocol,
    };
    device_interfaces(dev, &e->info);
    if (port)
        snprintf(e->port, sizeof(e->port), "%s", port);
    else
        device_port_path(dev, e->port, sizeof(e->port));
    device_strings(dev, &dd, e);
    snprintf(e->name, sizeof(e->name), "%04x:%04x \"%s\" at %s", dd.idVendor,
             dd.idProduct, e->product, e->port);
    return e;
}

libusb_device *usb_device_wrap(libusb_context *ctx, uint8_t busnum,
                               uint8_t devnum)
{
    libusb_device_handle *h;
    libusb_device *dev;
    char path[32];
    int fd;

    snprintf(path, sizeof(path), "/dev/bus/usb/%03u/%03u", busnum, devnum);
    /* read-write: libusb asks the device for its active configuration */
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (libusb_wrap_sys_device(ctx, (intptr_t)fd, &h) < 0) {
        close(fd);
        return NULL;
    }
    /* The device outlives the handle; sessions open it again by its bus
     * and device number, as any other. */
    dev = libusb_ref_device(libusb_get_device(h));
    libusb_close(h); /* a wrapped handle leaves the fd to its owner */
    close(fd);
    return dev;
}

void usb_device_entry_free(struct usb_device_entry *e)
{
    libusb_unref_device(e->dev);
    free(e);
}

void usb_device_decide(struct usb_device_entry *e,
                       const struct usb_policy *policy,
                       const char *serial_bridge_port)
{
    struct usb_device_strings strings = {
        .serial = e->serial,
        .product = e->product,
        .port = e->port,
        .serial_bridge_port = serial_bridge_port,
    };
    usb_policy_decide(policy, &e->info, &strings, &e->decision);
}

/* ---- what the transport needs to know ---- */

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
