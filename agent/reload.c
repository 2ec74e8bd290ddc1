/* SPDX-License-Identifier: MIT */
/* SIGHUP: the config file parsed into a new struct, handed to each subsystem
 * to apply what changed, then swapped in; a bad file changes nothing. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "daemon.h"
#include "log.h"
#include "serial_bridge.h"
#include "usb_redirector.h"

/* The redirector moves to next's [usb] (or stops, when it is off now). */
static void reload_usb(struct agent *a, struct agent_config *next)
{
    if (!a->usb)
        return;
    usb_redirector_reconfigure(a->usb, &next->usb);
    if (next->usb.mode == USB_PEER_NONE) {
        log_notice("SIGHUP: [usb] connect/listen removed: USB redirection is "
                   "off");
        agent_usb_stop(a);
    }
}

void agent_reload(struct agent *a)
{
    struct agent_config *next = calloc(1, sizeof(*next));
    char err[CONFIG_ERR_MAX] = "out of memory";

    daemon_notify("RELOADING=1");
    if (!next || config_load(a->cfg->path, next, err, sizeof(err)) < 0) {
        log_err("SIGHUP: %s; keeping the current configuration", err);
        if (next)
            config_free(next);
        free(next);
        daemon_notify("READY=1");
        return;
    }
    if (strcmp(next->control_socket, a->cfg->control_socket) != 0)
        log_notice("SIGHUP: [agent] control_socket changed; restart the "
                   "agent to move the socket");
    log_set_level(next->log_level);
    bool usb_was_off = !a->usb;
    reload_usb(a, next);
    if (a->serial)
        serial_bridge_reconfigure(a->serial, &next->serial);
    struct agent_config *old = a->cfg;
    a->cfg = next; /* nothing points into old any more */
    config_free(old);
    free(old);
    if (usb_was_off && a->cfg->usb.mode != USB_PEER_NONE &&
        agent_usb_start(a) < 0)
        log_err("SIGHUP: USB redirection could not start (see above)");
    log_info("SIGHUP: configuration reloaded from %s (%zu rules%s)",
             a->cfg->path, a->cfg->usb.n_rules,
             a->cfg->usb.filter_text ? ", a filter" : "");
    daemon_notify("READY=1");
}
