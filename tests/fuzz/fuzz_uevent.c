/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the kernel uevent parser, on any bytes a netlink
 * socket could deliver. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uevent_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct uevent_msg m;

    if (size > UEVENT_MSG_MAX) /* the listener never passes more */
        return 0;
    /* A copy of exactly size bytes: ASan sees any read past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (uevent_msg_parse(copy, size, &m) == 0) {
        /* Every kept string is terminated inside its buffer. */
        if (strnlen(m.devpath, sizeof(m.devpath)) == sizeof(m.devpath) ||
            strnlen(m.subsystem, sizeof(m.subsystem)) == sizeof(m.subsystem) ||
            strnlen(m.devtype, sizeof(m.devtype)) == sizeof(m.devtype))
            abort();
        if (m.devpath[0] != '/' || (m.busnum != -1 && m.busnum < 1) ||
            m.busnum > 255 || (m.devnum != -1 && m.devnum < 1) ||
            m.devnum > 255)
            abort();
        const char *name = uevent_msg_sysname(&m);
        if (name < m.devpath || name > m.devpath + strlen(m.devpath))
            abort();
        (void)uevent_msg_is_usb_device(&m);
        (void)uevent_action_name(m.action);
    }
    free(copy);
    return 0;
}
