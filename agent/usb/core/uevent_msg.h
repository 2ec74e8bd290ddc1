/* SPDX-License-Identifier: MIT */
/* A kernel uevent message (NETLINK_KOBJECT_UEVENT, group 1) parsed into the
 * few fields USB hotplug needs; pure and bounded, for any bytes. */
#ifndef REDIR_UEVENT_MSG_H
#define REDIR_UEVENT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kernel sends "ACTION@DEVPATH" (DEVPATH below PATH_MAX, 4096) and at
 * most UEVENT_BUFFER_SIZE (2048) bytes of KEY=VALUE strings: a message
 * never exceeds this, so anything longer arrives truncated and is not
 * parsed. */
#define UEVENT_MSG_MAX 8192
/* A USB device's DEVPATH has one component per PCI bridge and per hub tier
 * (at most 7): about 200 bytes in the deepest real topologies. */
#define UEVENT_DEVPATH_MAX 512
/* SUBSYSTEM and DEVTYPE values ("usb", "usb_device", "usb_interface"). */
#define UEVENT_NAME_MAX 32

enum uevent_action {
    UEVENT_ACTION_OTHER, /* change, move, online, offline, unknown words */
    UEVENT_ACTION_ADD,
    UEVENT_ACTION_REMOVE,
    UEVENT_ACTION_BIND,
    UEVENT_ACTION_UNBIND,
};

struct uevent_msg {
    enum uevent_action action;
    char devpath[UEVENT_DEVPATH_MAX]; /* "/devices/.../usb1/1-1" */
    char subsystem[UEVENT_NAME_MAX];  /* "" if absent */
    char devtype[UEVENT_NAME_MAX];    /* "" if absent */
    int busnum, devnum;               /* 1..255, or -1 if absent or bad */
    uint64_t seqnum;                  /* 0 if absent or bad */
};

/* Parses len bytes received from the kernel. Returns 0 and fills *m for a
 * kernel uevent (an "ACTION@DEVPATH" header, then NUL-separated KEY=VALUE
 * strings with ACTION and DEVPATH among them); -1 for anything else,
 * including udevd's "libudev" messages, and for values too long for *m. */
int uevent_msg_parse(const uint8_t *buf, size_t len, struct uevent_msg *m);

/* SUBSYSTEM=usb and DEVTYPE=usb_device: a device, not one of its
 * interfaces or endpoints. */
bool uevent_msg_is_usb_device(const struct uevent_msg *m);

/* The last component of DEVPATH ("1-1.4", "usb1"): the device's name in
 * /sys/bus/usb/devices. Points into m. */
const char *uevent_msg_sysname(const struct uevent_msg *m);

const char *uevent_action_name(enum uevent_action a);

#endif
