/* SPDX-License-Identifier: MIT */
/* USB devices and their interfaces as sysfs shows them: what the kernel
 * knows, read without libusb or udev and without touching a device. */
#include "usb_sysfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYSFS_USB_DEVICES "/sys/bus/usb/devices"

bool usb_sysfs_read_attr(const char *entry, const char *attr, char *buf,
                         size_t len)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), SYSFS_USB_DEVICES "/%s/%s", entry, attr);
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return buf[0] != '\0';
}

/* A number attribute in base (10 for busnum/devnum, 16 for
 * bInterfaceNumber), 0..255. */
static bool read_u8(const char *entry, const char *attr, int base, uint8_t *out)
{
    char buf[16], *end;

    if (!usb_sysfs_read_attr(entry, attr, buf, sizeof(buf)))
        return false;
    unsigned long v = strtoul(buf, &end, base);
    if (end == buf || *end || v > 255)
        return false;
    *out = (uint8_t)v;
    return true;
}

static bool has_driver(const char *entry)
{
    char path[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof(path), SYSFS_USB_DEVICES "/%s/driver", entry);
    return lstat(path, &st) == 0;
}

/* Root hubs are "usbN" in sysfs and "N-0" for libusb's port numbers. */
static void port_of(const struct usb_sysfs_device *d, char *port, size_t len)
{
    if (strncmp(d->name, "usb", 3) == 0)
        snprintf(port, len, "%u-0", d->busnum);
    else
        snprintf(port, len, "%s", d->name);
}

static bool read_device(const char *name, struct usb_sysfs_device *d)
{
    if (strlen(name) >= sizeof(d->name))
        return false;
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    if (!read_u8(name, "busnum", 10, &d->busnum) ||
        !read_u8(name, "devnum", 10, &d->devnum))
        return false; /* going away, or not a device */
    d->bound = has_driver(name);
    port_of(d, d->port, sizeof(d->port));
    return true;
}

int usb_sysfs_devices(struct usb_sysfs_device *out, size_t max)
{
    DIR *dir = opendir(SYSFS_USB_DEVICES);
    struct dirent *de;
    size_t n = 0;

    if (!dir)
        return -1;
    while (n < max && (de = readdir(dir))) {
        /* interfaces are "1-1:1.0"; devices have no colon */
        if (de->d_name[0] == '.' || strchr(de->d_name, ':'))
            continue;
        if (read_device(de->d_name, &out[n]))
            n++;
    }
    closedir(dir);
    return (int)n;
}

/* Calls fn for each interface entry of the device at port
 * ("PORT:CONFIG.IFNUM"), with its number; stops when fn returns true. */
static void each_interface(const char *port,
                           bool (*fn)(const char *entry, uint8_t ifnum,
                                      void *arg),
                           void *arg)
{
    DIR *dir = opendir(SYSFS_USB_DEVICES);
    size_t plen = strlen(port);
    struct dirent *de;
    uint8_t ifnum;

    if (!dir)
        return;
    while ((de = readdir(dir)))
        if (strncmp(de->d_name, port, plen) == 0 && de->d_name[plen] == ':' &&
            read_u8(de->d_name, "bInterfaceNumber", 16, &ifnum) &&
            fn(de->d_name, ifnum, arg))
            break;
    closedir(dir);
}

struct driverless {
    uint8_t *ifnums;
    size_t n, max;
};

static bool note_driverless(const char *entry, uint8_t ifnum, void *arg)
{
    struct driverless *dl = arg;

    if (!has_driver(entry))
        dl->ifnums[dl->n++] = ifnum;
    return dl->n == dl->max;
}

size_t usb_sysfs_driverless_interfaces(const char *port, uint8_t *ifnums,
                                       size_t max)
{
    struct driverless dl = {ifnums, 0, max};

    if (max)
        each_interface(port, note_driverless, &dl);
    return dl.n;
}

struct driver_query {
    uint8_t ifnum;
    char *buf;
    size_t len;
    bool found;
};

static bool read_driver(const char *entry, uint8_t ifnum, void *arg)
{
    struct driver_query *q = arg;
    char path[PATH_MAX], target[PATH_MAX];

    if (ifnum != q->ifnum)
        return false;
    snprintf(path, sizeof(path), SYSFS_USB_DEVICES "/%s/driver", entry);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n > 0) {
        target[n] = '\0';
        const char *slash = strrchr(target, '/');
        snprintf(q->buf, q->len, "%s", slash ? slash + 1 : target);
        q->found = true;
    }
    return true;
}

const char *usb_sysfs_interface_driver(const char *port, uint8_t ifnum,
                                       char *buf, size_t len)
{
    struct driver_query q = {ifnum, buf, len, false};

    each_interface(port, read_driver, &q);
    return q.found ? buf : NULL;
}
