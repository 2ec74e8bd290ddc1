/* SPDX-License-Identifier: MIT */
/* The running agent: its config, the USB redirector, the serial bridge, the
 * control socket and the signals, on one loop. */
#ifndef REDIR_AGENT_H
#define REDIR_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "serial_port.h"
#include "usb_targets.h"

struct control_server;
struct metrics_http;
struct serial_bridge;
struct usb_redirector;

struct agent {
    uv_loop_t *loop;
    struct agent_config *cfg;   /* the current one; a reload replaces it */
    const char *pidfile;        /* --pidfile, or NULL */
    struct usb_redirector *usb; /* NULL while [usb] is off */
    struct usb_targets targets; /* "redir-agent target": over the file's */
    struct usb_config usb_eff;  /* cfg->usb with targets: the redirector's */
    struct serial_bridge *serial;
    struct control_server *control;
    struct metrics_http *metrics; /* NULL unless [agent] metrics_listen */
    struct serial_event_sink serial_sink; /* to the events stream */
    unsigned running;                     /* subsystems not yet stopped */
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

/* agent_control.c: starts the control socket (its mode, group and who may
 * change what follow cfg). Returns 0 or -1 after logging why. */
int agent_control_start(struct agent *a);

/* agent_control.c: a USB event, to the events subscribers. */
struct usb_event;
void agent_usb_event(void *ctx, const struct usb_event *ev);
/* agent_control.c: a serial client came or went, to the subscribers. */
void agent_serial_event(void *ctx, const char *port, const char *client,
                        bool connected, const char *why, uint64_t bytes_in,
                        uint64_t bytes_out);

/* agent_control.c: cfg->usb with the run-time targets into usb_eff; the
 * redirector moves to it, starts or stops as it says. */
void agent_usb_apply(struct agent *a);

/* agent_metrics.c: the Prometheus endpoint, if configured. Returns 0 or -1
 * after logging why. */
int agent_metrics_start(struct agent *a);
void agent_metrics_stop(struct agent *a);

/* reload.c: re-reads the config file; a bad one is refused (why in err)
 * and the old one stays. who: "SIGHUP" or "reload request", for the log.
 * Returns 0 or -1. */
int agent_reload(struct agent *a, const char *who, char *err, size_t len);

#endif
