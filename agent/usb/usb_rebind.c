/* SPDX-License-Identifier: MIT */
/* Gives a device's driverless interfaces back to the host's kernel drivers:
 * what a crashed agent leaves behind (the kernel drops a dead process's
 * usbfs claims but binds no driver again). */
#include "usb_rebind.h"

#include "log.h"
#include "usb_sysfs.h"

/* USB allows 32 interfaces per configuration. */
#define REBIND_MAX_INTERFACES 32
#define DRIVER_NAME_MAX 64

/* libusb_attach_kernel_driver is usbfs's USBDEVFS_CONNECT: the kernel
 * matches drivers against the interface as on a plug (device_attach).
 * Unlike writing to /sys/bus/usb/drivers_probe it needs no writable sysfs
 * (the systemd unit has none) and no udev daemon; an interface some driver
 * or usbfs holds is refused with EBUSY, never taken over. */
static void rebind_interface(libusb_device_handle *h, const char *port,
                             const char *name, uint8_t ifnum)
{
    char driver[DRIVER_NAME_MAX];
    int rc = libusb_attach_kernel_driver(h, ifnum);

    if (usb_sysfs_interface_driver(port, ifnum, driver, sizeof(driver)))
        log_notice("%s: interface %u had no driver (left by an agent that "
                   "did not exit cleanly?); given back to %s",
                   name, ifnum, driver);
    else /* e.g. a smart-card interface that only user space drives */
        log_debug("%s: interface %u has no driver, and no kernel driver "
                  "takes it (%s)",
                  name, ifnum,
                  rc == LIBUSB_ERROR_NOT_FOUND ? "none matches"
                                               : libusb_error_name(rc));
}

void usb_rebind_driverless(libusb_device *dev, const char *port,
                           const char *name)
{
    uint8_t ifnums[REBIND_MAX_INTERFACES];
    size_t n =
        usb_sysfs_driverless_interfaces(port, ifnums, REBIND_MAX_INTERFACES);
    libusb_device_handle *h;

    if (n == 0)
        return;
    int rc = libusb_open(dev, &h);
    if (rc < 0) {
        log_warn("%s: %zu interface%s without a driver, but the device "
                 "cannot be opened to give %s back: %s",
                 name, n, n == 1 ? "" : "s", n == 1 ? "it" : "them",
                 libusb_error_name(rc));
        return;
    }
    for (size_t i = 0; i < n; i++)
        rebind_interface(h, port, name, ifnums[i]);
    libusb_close(h);
}
