/* SPDX-License-Identifier: MIT */
/* Unit tests of the kernel uevent parser: real messages of the thin-client
 * kernel, and the garbage it must refuse. */
#include <string.h>

#include "check.h"
#include "uevent_msg.h"

#define USB_ADD                                                                \
    "add@/devices/platform/dummy_hcd.0/usb1/1-1\0"                             \
    "ACTION=add\0DEVPATH=/devices/platform/dummy_hcd.0/usb1/1-1\0"             \
    "SUBSYSTEM=usb\0MAJOR=189\0MINOR=1\0DEVNAME=bus/usb/001/002\0"             \
    "DEVTYPE=usb_device\0PRODUCT=1209/7d15/100\0TYPE=0/0/0\0"                  \
    "BUSNUM=001\0DEVNUM=002\0SEQNUM=1234\0"

#define IF_BIND                                                                \
    "bind@/devices/platform/dummy_hcd.0/usb1/1-1/1-1:1.0\0"                    \
    "ACTION=bind\0DEVPATH=/devices/platform/dummy_hcd.0/usb1/1-1/1-1:1.0\0"    \
    "SUBSYSTEM=usb\0DEVTYPE=usb_interface\0DRIVER=usb-storage\0"               \
    "INTERFACE=8/6/80\0SEQNUM=1240\0"

static int parse(const char *msg, size_t len, struct uevent_msg *m)
{
    return uevent_msg_parse((const uint8_t *)msg, len, m);
}

static void test_real(void)
{
    struct uevent_msg m;

    CHECK(parse(USB_ADD, sizeof(USB_ADD) - 1, &m) == 0, "usb add");
    CHECK(m.action == UEVENT_ACTION_ADD, "%d", m.action);
    CHECK(uevent_msg_is_usb_device(&m), "%s %s", m.subsystem, m.devtype);
    CHECK(strcmp(uevent_msg_sysname(&m), "1-1") == 0, "%s",
          uevent_msg_sysname(&m));
    CHECK(m.busnum == 1 && m.devnum == 2, "%d %d", m.busnum, m.devnum);
    CHECK(m.seqnum == 1234, "%llu", (unsigned long long)m.seqnum);

    CHECK(parse(IF_BIND, sizeof(IF_BIND) - 1, &m) == 0, "interface bind");
    CHECK(m.action == UEVENT_ACTION_BIND, "%d", m.action);
    CHECK(!uevent_msg_is_usb_device(&m), "an interface is not a device");
    CHECK(m.busnum == -1 && m.devnum == -1, "no numbers");

    static const char remove[] = "remove@/devices/x/usb2/2-1.4\0"
                                 "ACTION=remove\0DEVPATH=/devices/x/usb2/"
                                 "2-1.4\0SUBSYSTEM=usb\0DEVTYPE=usb_device\0"
                                 "BUSNUM=002\0DEVNUM=127\0";
    CHECK(parse(remove, sizeof(remove) - 1, &m) == 0, "remove");
    CHECK(m.action == UEVENT_ACTION_REMOVE && m.devnum == 127, "%d %d",
          m.action, m.devnum);
    CHECK(strcmp(uevent_msg_sysname(&m), "2-1.4") == 0, "sysname");

    static const char change[] = "change@/devices/x\0ACTION=change\0"
                                 "DEVPATH=/devices/x\0";
    CHECK(parse(change, sizeof(change) - 1, &m) == 0, "change");
    CHECK(m.action == UEVENT_ACTION_OTHER, "change is other");
}

static void test_lenient(void)
{
    struct uevent_msg m;

    /* the last string without its NUL is still read */
    static const char no_nul[] = "add@/d\0ACTION=add\0DEVPATH=/d\0BUSNUM=3";
    CHECK(parse(no_nul, sizeof(no_nul) - 1, &m) == 0 && m.busnum == 3,
          "unterminated last field");
    /* bad numbers are absent, the message stays */
    static const char bad_num[] = "add@/d\0ACTION=add\0DEVPATH=/d\0"
                                  "BUSNUM=0\0DEVNUM=256\0SEQNUM=x\0";
    CHECK(parse(bad_num, sizeof(bad_num) - 1, &m) == 0, "bad numbers");
    CHECK(m.busnum == -1 && m.devnum == -1 && m.seqnum == 0, "%d %d", m.busnum,
          m.devnum);
    static const char signs[] =
        "add@/d\0ACTION=add\0DEVPATH=/d\0"
        "BUSNUM=-1\0DEVNUM=+2\0SEQNUM=99999999999999999999\0";
    CHECK(parse(signs, sizeof(signs) - 1, &m) == 0, "signs");
    CHECK(m.busnum == -1 && m.devnum == -1 && m.seqnum == 0, "%d %d %llu",
          m.busnum, m.devnum, (unsigned long long)m.seqnum);
}

static void test_garbage(void)
{
    struct uevent_msg m;
    char big[UEVENT_DEVPATH_MAX + 64];

    CHECK(parse("", 0, &m) < 0, "empty");
    CHECK(parse("add@/d", 6, &m) < 0, "header without NUL");
    static const char no_at[] = "add /d\0ACTION=add\0DEVPATH=/d\0";
    CHECK(parse(no_at, sizeof(no_at) - 1, &m) < 0, "header without @");
    static const char udev[] = "libudev\0\xfe\xed\xca\xfe"
                               "ACTION=add\0DEVPATH=/d\0";
    CHECK(parse(udev, sizeof(udev) - 1, &m) < 0, "udevd's message");
    static const char no_action[] = "add@/d\0DEVPATH=/d\0";
    CHECK(parse(no_action, sizeof(no_action) - 1, &m) < 0, "no ACTION");
    static const char no_path[] = "add@/d\0ACTION=add\0";
    CHECK(parse(no_path, sizeof(no_path) - 1, &m) < 0, "no DEVPATH");
    static const char rel_path[] = "add@/d\0ACTION=add\0DEVPATH=d\0";
    CHECK(parse(rel_path, sizeof(rel_path) - 1, &m) < 0, "relative DEVPATH");
    static const char empty_hdr[] = "\0ACTION=add\0DEVPATH=/d\0";
    CHECK(parse(empty_hdr, sizeof(empty_hdr) - 1, &m) < 0, "empty header");

    /* a DEVPATH too long to keep is refused, not truncated */
    int n = snprintf(big, sizeof(big), "a@b%cACTION=add%cDEVPATH=/", 0, 0);
    memset(big + n, 'x', sizeof(big) - (size_t)n);
    CHECK(parse(big, sizeof(big), &m) < 0, "long DEVPATH");
    static const char long_sub[] = "a@b\0ACTION=add\0DEVPATH=/d\0SUBSYSTEM="
                                   "0123456789012345678901234567890123\0";
    CHECK(parse(long_sub, sizeof(long_sub) - 1, &m) < 0, "long SUBSYSTEM");
    CHECK(strcmp(uevent_action_name(UEVENT_ACTION_UNBIND), "unbind") == 0 &&
              strcmp(uevent_action_name((enum uevent_action)99), "other") == 0,
          "names");
}

int main(void)
{
    test_real();
    test_lenient();
    test_garbage();
    return check_summary();
}
