/* SPDX-License-Identifier: MIT */
/* What "redir-agent status" shows: devices, sessions, peers, counters, rates,
 * serial ports; as a table or as JSON. */
#ifndef REDIR_STATUS_H
#define REDIR_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serial_port.h"
#include "usb_redirector.h"

struct strbuf;

/* A snapshot of the agent, gathered by its owner. */
struct agent_status {
    const char *config_path;
    uint64_t uptime_ms;
    bool usb_running;
    struct usb_status usb;
    size_t n_serial;
    struct serial_port_status *serial; /* n_serial entries */
};

/* A human table, or JSON for scripts. */
void status_render(const struct agent_status *st, bool json,
                   struct strbuf *out);

#endif
