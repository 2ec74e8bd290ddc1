/* SPDX-License-Identifier: MIT */
/* USB devices and their interfaces as sysfs shows them: what the kernel
 * knows, read without libusb or udev and without touching a device. */
#ifndef REDIR_USB_SYSFS_H
#define REDIR_USB_SYSFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usb_port.h"

/* "usb1", "1-1.2.3.4.5.6.7": sysfs names of USB devices. */
#define USB_SYSFS_NAME_MAX 32

struct usb_sysfs_device {
    char name[USB_SYSFS_NAME_MAX]; /* "1-1.4", or "usb1" for a root hub */
    char port[USB_PORT_PATH_MAX];  /* as usb_device_entry names it: "1-0" */
    uint8_t busnum, devnum;
    bool bound; /* the kernel's usb driver took it: configured, and its
                 * interfaces' drivers probed */
};

/* Reads attribute attr of entry (a device's or interface's sysfs name, or
 * a BUS-PORT) into buf (len bytes, a NUL-terminated first line); false if
 * absent or empty. Cached by the kernel: no device I/O. Non-blocking open:
 * under emulation a blocking open can stall. */
bool usb_sysfs_read_attr(const char *entry, const char *attr, char *buf,
                         size_t len);

/* Every USB device in /sys/bus/usb/devices, at most max of them. Returns
 * how many, or -1 if sysfs cannot be read. */
int usb_sysfs_devices(struct usb_sysfs_device *out, size_t max);

/* The interfaces of the device at port (BUS-PORT) that no driver holds
 * (not even usbfs): their bInterfaceNumber, at most max. Returns how many. */
size_t usb_sysfs_driverless_interfaces(const char *port, uint8_t *ifnums,
                                       size_t max);

/* The driver of interface ifnum of the device at port ("usb-storage",
 * "usbfs"), or NULL if it has none (or no such interface). */
const char *usb_sysfs_interface_driver(const char *port, uint8_t ifnum,
                                       char *buf, size_t len);

#endif
