/* SPDX-License-Identifier: MIT */
/* Which [serial.NAME] port, if any, uses a given USB device: such devices stay
 * local. */
#include "serial_owner.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BY_ID_DIR "/dev/serial/by-id/"

/* The tty exists: its sysfs device sits below one of the USB device's
 * interfaces, e.g. /sys/devices/.../usb1/1-1/1-1:1.0/ttyUSB0. */
static int tty_is_below(const char *device, const char *port)
{
    char dev_real[PATH_MAX], link[PATH_MAX], sys_real[PATH_MAX], needle[64];

    if (!realpath(device, dev_real))
        return 0; /* absent now: maybe recognised by its by-id name */
    const char *tty = strrchr(dev_real, '/');
    snprintf(link, sizeof(link), "/sys/class/tty/%s/device", tty + 1);
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
    for (size_t i = 0; i < sc->n_ports; i++) {
        const struct serial_port_config *sp = &sc->ports[i];
        if (!sp->device)
            continue;
        if (by_id_names_serial(sp->device, serial) ||
            tty_is_below(sp->device, port))
            return sp->name;
    }
    return NULL;
}
