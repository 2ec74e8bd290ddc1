/* SPDX-License-Identifier: MIT */
/* What the files of the [serial.NAME] config share: the key table and the
 * error helper. Not for other modules. serial_config.c: sections, keys
 * dispatched, free, compare; serial_config_keys.c: each key's parser;
 * serial_config_check.c: each port and the ports together, once read. */
#ifndef REDIR_SERIAL_CONFIG_INT_H
#define REDIR_SERIAL_CONFIG_INT_H

#include "serial_config.h"

/* Indexes into serial_config__keys[] and serial_port_config.key_line[]. */
enum serial_key_index {
    KEY_DEVICE,
    KEY_LISTEN,
    KEY_CONNECT,
    KEY_MODE,
    KEY_KIND,
    KEY_LINE,
    KEY_FLOW,
    KEY_REPLACE_CLIENT,
    KEY_IDLE_TIMEOUT,
    KEY_ON_DEVICE_LOSS,
    KEY_RECONNECT_MIN,
    KEY_RECONNECT_MAX,
    KEY_ALLOW,
    KEY_RELAY_SECRET_FILE,
    KEY_AGENT_ID,
    KEY_TRANSPORT,
    KEY_COUNT
};

_Static_assert(KEY_COUNT <= SERIAL_KEY_SLOTS,
               "serial_port_config.key_line is too small");

typedef int (*serial_key_parser)(struct serial_port_config *port,
                                 const char *key, const char *value,
                                 struct config_parse *cp);

struct serial_key {
    const char *name;
    serial_key_parser parse;
};

/* serial_config_keys.c: the keys, in serial_key_index order. */
extern const struct serial_key serial_config__keys[KEY_COUNT];

/* serial_config.c: "[serial.NAME] key: ..." or "[serial.NAME]: ..." at the
 * parser's line. */
void serial_config__fail(struct config_parse *cp,
                         const struct serial_port_config *p, const char *key,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
