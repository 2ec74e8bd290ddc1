/* SPDX-License-Identifier: MIT */
/* Which [serial.NAME] port, if any, uses a given USB device: such devices stay
 * local. */
#include "serial_owner.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define BY_ID_DIR "/dev/serial/by-id/"

/* The device node exists and the kernel's device behind it sits below one
 * of the USB device's interfaces, e.g. /sys/devices/.../usb1/1-1/1-1:1.0/
 * ttyUSB0/tty/ttyUSB0 or .../1-1:1.0/usbmisc/lp0. Any character device
 * is found the same way, by its number in /sys/dev/char: ttys, USB
 * printers (/dev/usb/lpN), a parallel port's /dev/lpN on a USB adapter;
 * stat() follows /dev/serial/by-id and by-path links to the node. */
static int node_is_below(const char *sysfs, const char *device,
                         const char *port)
{
    char link[PATH_MAX], sys_real[PATH_MAX], needle[64];
    struct stat st;

    if (stat(device, &st) < 0 || !S_ISCHR(st.st_mode))
        return 0; /* absent now: maybe recognised by its by-id name */
    snprintf(link, sizeof(link), "%s/dev/char/%u:%u", sysfs, major(st.st_rdev),
             minor(st.st_rdev));
    if (!realpath(link, sys_real))
        return 0;
    snprintf(needle, sizeof(needle), "/%s/%s:", port, port);
    return strstr(sys_real, needle) != NULL;
}

/* udev names by-id links usb-VENDOR_MODEL_SERIAL-ifNN[-portN]: the tty may
 * not exist yet when the USB device arrives, its serial number does. */
static int by_id_names_serial(const char *device, const char *serial)
{
    char needle[160];
    const char *name;

    if (!serial[0] || strncmp(device, BY_ID_DIR, strlen(BY_ID_DIR)) != 0)
        return 0;
    name = device + strlen(BY_ID_DIR);
    snprintf(needle, sizeof(needle), "_%s-if", serial);
    return strncmp(name, "usb-", 4) == 0 && strstr(name, needle) != NULL;
}

const char *serial_owner_find(const struct serial_config *sc, const char *port,
                              const char *serial)
{
    return serial_owner_find_in(sc, "/sys", port, serial);
}

const char *serial_owner_find_in(const struct serial_config *sc,
                                 const char *sysfs, const char *port,
                                 const char *serial)
{
    for (size_t i = 0; i < sc->n_ports; i++) {
        const struct serial_port_config *sp = &sc->ports[i];
        if (!sp->device)
            continue;
        if (by_id_names_serial(sp->device, serial) ||
            node_is_below(sysfs, sp->device, port))
            return sp->name;
    }
    return NULL;
}
