/* SPDX-License-Identifier: MIT */
/* SIGHUP (or "redir-agent reload"): the config file parsed into a new
 * struct, handed to each subsystem to apply what changed, then swapped in;
 * a bad file changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "daemon.h"
#include "log.h"
#include "serial_bridge.h"
#include "usb_redirector.h"

/* The redirector moves to next's [usb] with the run-time targets over it
 * (or stops, when it is off now). */
static void reload_usb(struct agent *a, struct agent_config *next,
                       const char *who)
{
    if (a->targets.set && next->usb.mode == USB_PEER_LISTEN) {
        log_notice("%s: [usb] listen now: the targets set at run time no "
                   "longer apply",
                   who);
        a->targets.set = false;
    }
    if (!a->usb)
        return;
    usb_targets_apply(&a->targets, &next->usb, &a->usb_eff);
    usb_redirector_reconfigure(a->usb, &a->usb_eff);
    if (a->usb_eff.mode == USB_PEER_NONE) {
        log_notice("%s: [usb] connect/listen removed: USB redirection is off",
                   who);
        agent_usb_stop(a);
    }
}

int agent_reload(struct agent *a, const char *who, char *err, size_t len)
{
    struct agent_config *next = calloc(1, sizeof(*next));
    char why[CONFIG_ERR_MAX] = "out of memory";

    daemon_notify("RELOADING=1");
    if (!next || config_load(a->cfg->path, next, why, sizeof(why)) < 0) {
        log_err("%s: %s; keeping the current configuration", who, why);
        if (err)
            snprintf(err, len, "%s; keeping the current configuration", why);
        if (next)
            config_free(next);
        free(next);
        daemon_notify("READY=1");
        return -1;
    }
    if (strcmp(next->control_socket, a->cfg->control_socket) != 0)
        log_notice("%s: [agent] control_socket changed; restart the agent "
                   "to move the socket",
                   who);
    log_set_level(next->log_level);
    bool usb_was_off = !a->usb;
    reload_usb(a, next, who);
    if (a->serial)
        serial_bridge_reconfigure(a->serial, &next->serial);
    struct agent_config *old = a->cfg;
    a->cfg = next; /* nothing points into old any more */
    config_free(old);
    free(old);
    usb_targets_apply(&a->targets, &a->cfg->usb, &a->usb_eff);
    if (usb_was_off && a->usb_eff.mode != USB_PEER_NONE &&
        agent_usb_start(a) < 0)
        log_err("%s: USB redirection could not start (see above)", who);
    log_info("%s: configuration reloaded from %s (%zu rules%s)", who,
             a->cfg->path, a->cfg->usb.n_rules,
             a->cfg->usb.filter_text ? ", a filter" : "");
    if (err)
        snprintf(err, len, "configuration reloaded from %s", a->cfg->path);
    daemon_notify("READY=1");
    return 0;
}
