/* SPDX-License-Identifier: MIT */
/* Hotplug without a udev daemon: the kernel's uevents heard directly
 * (NETLINK_KOBJECT_UEVENT), each USB device event answered by a sysfs
 * rescan whose differences are reported up. */
#ifndef REDIR_USB_KERNEL_HOTPLUG_H
#define REDIR_USB_KERNEL_HOTPLUG_H

#include <stdbool.h>
#include <uv.h>

#include "usb_sysfs.h"

struct usb_kernel_hotplug;

/* What the listener tells its owner; called from the loop, outside libusb.
 */
struct usb_kernel_hotplug_ops {
    /* A device that was not there before and that the kernel has
     * configured (its interfaces' drivers had their chance). */
    void (*arrived)(void *ctx, const struct usb_sysfs_device *d);
    /* A device present at start, or reported by arrived, is gone. */
    void (*left)(void *ctx, const struct usb_sysfs_device *d);
};

/* Whether a udev daemon runs: its control socket exists (the test libudev
 * makes before it joins udevd's netlink group) and is bound by a live
 * socket in this network namespace (udevd leaves the file behind when it
 * exits). If not, libusb (built with udev) hears no hotplug event at all;
 * *why then says so for the log. */
bool usb_kernel_hotplug_udevd_runs(const char **why);

/* Listens for the kernel's uevents on loop. The devices sysfs lists now
 * count as known: libusb enumerates them itself. NULL after logging why. */
struct usb_kernel_hotplug *
usb_kernel_hotplug_start(uv_loop_t *loop,
                         const struct usb_kernel_hotplug_ops *ops, void *ctx);

/* Reports nothing more; frees itself once its handle has closed. */
void usb_kernel_hotplug_stop(struct usb_kernel_hotplug *kh);

#endif
