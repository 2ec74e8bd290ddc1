/* The running agent: its config, subsystems, signals and control socket on one
 * loop. */
#ifndef REDIR_AGENT_H
#define REDIR_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "control.h"
#include "usb_redirector.h"

struct serial_bridge;

struct agent {
    uv_loop_t *loop;
    struct agent_config cfg; /* replaced in place on SIGHUP */
    const char *pidfile;     /* --pidfile, or NULL */
    struct usb_redirector usb;
    bool usb_running;
    struct serial_bridge *serial;
    struct control_server control;
    unsigned running; /* subsystems not yet stopped */
    bool stopping;
    uint64_t started_ms;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t deadline;
};

/* Runs until SIGTERM/SIGINT with a->cfg loaded. Returns the exit code. */
int agent_run(struct agent *a);

/* Re-reads the config file; a bad one is refused and the old one stays. */
void agent_reload(struct agent *a);

#endif
