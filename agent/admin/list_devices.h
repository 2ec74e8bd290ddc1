/* SPDX-License-Identifier: MIT */
/* redir-agent --list-devices: every USB device and what the config would
 * decide, touching none. */
#ifndef REDIR_LIST_DEVICES_H
#define REDIR_LIST_DEVICES_H

#include "serial_config.h"
#include "usb_config.h"

/* Prints each device and the decision; returns the exit code. */
int list_devices(const char *config_path, const struct usb_config *usb,
                 const struct serial_config *serial);

#endif
