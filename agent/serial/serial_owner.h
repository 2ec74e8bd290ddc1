/* SPDX-License-Identifier: MIT */
/* Which [serial.NAME] port, if any, uses a given USB device: such devices stay
 * local. */
#ifndef REDIR_SERIAL_OWNER_H
#define REDIR_SERIAL_OWNER_H

#include "serial_config.h"

/* port is the device's BUS-PORT ("1-1.4"), serial its serial number string
 * ("" if none). Returns the NAME of the serial port using it, or NULL. */
const char *serial_owner_find(const struct serial_config *sc, const char *port,
                              const char *serial);

/* The same with sysfs mounted at sysfs instead of /sys (a test's tree). */
const char *serial_owner_find_in(const struct serial_config *sc,
                                 const char *sysfs, const char *port,
                                 const char *serial);

#endif
