/* SPDX-License-Identifier: MIT */
/* redir-agent --list-devices: every USB device and what the config would
 * decide, touching none. */
#include "list_devices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serial_owner.h"
#include "usb_device.h"

static int compare_ports(const void *a, const void *b)
{
    const struct usb_device_entry *const *x = a, *const *y = b;
    return strcmp((*x)->port, (*y)->port);
}

static void print_device(const struct usb_device_entry *e)
{
    const struct usb_device_info *i = &e->info;
    const struct usb_decision *d = &e->decision;

    printf("%s  %04x:%04x  \"%s\"%s%s%s\n", e->port, i->vid, i->pid, e->product,
           e->serial[0] ? " serial \"" : "", e->serial,
           e->serial[0] ? "\"" : "");
    printf("    device class %02x:%02x:%02x, bcdDevice %04x\n", i->dev_class,
           i->dev_subclass, i->dev_protocol, i->bcd_device);
    for (size_t k = 0; k < i->n_interfaces; k++)
        printf("    interface %zu: %02x:%02x:%02x\n", k, i->interfaces[k].cls,
               i->interfaces[k].subclass, i->interfaces[k].protocol);
    if (d->redirect)
        printf("    => redirect %s (%s)\n", usb_access_name(d->access),
               d->reason);
    else
        printf("    => stays local (%s)\n", d->reason);
}

int list_devices(const char *config_path, const struct usb_config *usb,
                 const struct serial_config *serial)
{
    libusb_context *ctx;
    libusb_device **list;
    struct usb_policy policy = {
        .rules = usb->rules,
        .n_rules = usb->n_rules,
        .filter_rules = usb->filter_rules,
        .filter_count = usb->filter_count,
    };

    if (libusb_init(&ctx) < 0) {
        fprintf(stderr, "redir-agent: cannot initialise libusb\n");
        return 1;
    }
    ssize_t n = libusb_get_device_list(ctx, &list);
    struct usb_device_entry **entries =
        calloc(n > 0 ? (size_t)n : 1, sizeof(*entries));
    size_t count = 0;
    for (ssize_t k = 0; k < n && entries; k++) {
        struct usb_device_entry *e = usb_device_entry_new(list[k]);
        if (!e)
            continue;
        usb_device_decide(e, &policy,
                          serial_owner_find(serial, e->port, e->serial));
        entries[count++] = e;
    }
    qsort(entries, count, sizeof(*entries), compare_ports);
    printf("%zu USB device%s; decisions under %s:\n", count,
           count == 1 ? "" : "s", config_path);
    for (size_t k = 0; k < count; k++) {
        print_device(entries[k]);
        usb_device_entry_free(entries[k]);
    }
    free(entries);
    if (n >= 0)
        libusb_free_device_list(list, 1);
    libusb_exit(ctx);
    return 0;
}
