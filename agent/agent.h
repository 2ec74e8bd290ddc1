/* SPDX-License-Identifier: MIT */
/* The running agent: its config, the USB redirector, the serial bridge, the
 * control socket and the signals, on one loop. */
#ifndef REDIR_AGENT_H
#define REDIR_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

struct control_server;
struct serial_bridge;
struct usb_redirector;

struct agent {
    uv_loop_t *loop;
    struct agent_config *cfg;   /* the current one; a reload replaces it */
    const char *pidfile;        /* --pidfile, or NULL */
    struct usb_redirector *usb; /* NULL while [usb] is off */
    struct serial_bridge *serial;
    struct control_server *control;
    unsigned running; /* subsystems not yet stopped */
    bool stopping;
    uint64_t started_ms;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t deadline;
};

/* Runs until SIGTERM/SIGINT with a->cfg loaded (the agent owns it from
 * here). Returns the exit code. */
int agent_run(struct agent *a);

/* Starts or stops USB redirection as cfg's [usb] says; the redirector
 * reports its stop to the agent. Called at start and on reload. */
int agent_usb_start(struct agent *a);
void agent_usb_stop(struct agent *a);

/* Answers a control socket request. */
struct strbuf;
void agent_control_request(void *ctx, const char *request,
                           struct strbuf *reply);

/* reload.c: re-reads the config file; a bad one is refused and the old
 * one stays. */
void agent_reload(struct agent *a);

#endif
