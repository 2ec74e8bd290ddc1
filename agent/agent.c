/* The running agent: its config, subsystems, signals and control socket on one
 * loop. */
#include "agent.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "serial_bridge.h"
#include "version.h"

#define SHUTDOWN_DEADLINE_MS 1800 /* SIGTERM must be done within 2 s */

static void on_walk_close(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

static void agent_finish(struct agent *a)
{
    uv_timer_stop(&a->deadline);
    uv_walk(a->loop, on_walk_close, NULL);
}

/* Called as each subsystem reports it has released everything. */
static void agent_subsystem_stopped(struct agent *a)
{
    if (--a->running == 0)
        agent_finish(a);
}

static void on_usb_stopped(struct usb_redirector *r)
{
    struct agent *a = (struct agent *)((char *)r - offsetof(struct agent, usb));
    a->usb_running = false;
    agent_subsystem_stopped(a);
}

static void on_serial_stopped(void *arg)
{
    struct agent *a = arg;
    a->serial = NULL;
    agent_subsystem_stopped(a);
}

static void on_deadline(uv_timer_t *timer)
{
    (void)timer;
    /* Devices were handed back when the shutdown began; only connection
     * teardown is late. */
    log_warn("shutdown took too long; exiting anyway");
    exit(0);
}

static void agent_stop(struct agent *a, const char *why)
{
    if (a->stopping)
        return;
    a->stopping = true;
    log_info("%s: handing devices back and exiting", why);
    daemon_notify("STOPPING=1");
    uv_timer_start(&a->deadline, on_deadline, SHUTDOWN_DEADLINE_MS, 0);
    control_stop(&a->control);
    a->running = 1; /* held until every stop is requested */
    if (a->usb_running) {
        a->running++;
        usb_redirector_stop(&a->usb, on_usb_stopped);
    }
    if (a->serial) {
        a->running++;
        serial_bridge_stop(a->serial, on_serial_stopped, a);
    }
    agent_subsystem_stopped(a);
}

/* What SIGHUP cannot change without tearing down running sessions stays
 * as it is: USB endpoints, serial ports, the control socket. */
static void agent_keep_running_parts(struct agent_config *old,
                                     struct agent_config *next)
{
    bool endpoints_changed =
        old->usb_mode != next->usb_mode ||
        old->usb_nslots != next->usb_nslots ||
        old->usb_transport != next->usb_transport ||
        memcmp(old->usb_slots, next->usb_slots,
               old->usb_nslots * sizeof(old->usb_slots[0])) != 0 ||
        memcmp(old->usb_slot_targets, next->usb_slot_targets,
               old->usb_nslots * sizeof(old->usb_slot_targets[0])) != 0;
    if (endpoints_changed)
        log_notice("SIGHUP: [usb] connect/listen/transport changed; restart "
                   "the agent to apply that");
    next->usb_mode = old->usb_mode;
    next->usb_nslots = old->usb_nslots;
    next->usb_transport = old->usb_transport;
    memcpy(next->usb_slots, old->usb_slots, sizeof(next->usb_slots));
    memcpy(next->usb_slot_targets, old->usb_slot_targets,
           sizeof(next->usb_slot_targets));

    struct serial_port_config *ports = next->serial_ports;
    size_t n_ports = next->n_serial_ports;
    next->serial_ports = old->serial_ports; /* the bridge points into these */
    next->n_serial_ports = old->n_serial_ports;
    old->serial_ports = ports;
    old->n_serial_ports = n_ports;

    char *sock = next->control_socket;
    next->control_socket = old->control_socket;
    old->control_socket = sock;
}

void agent_reload(struct agent *a)
{
    struct agent_config next;
    char err[CONFIG_ERR_MAX];

    daemon_notify("RELOADING=1");
    if (config_load(a->cfg.path, &next, err, sizeof(err)) < 0) {
        log_err("SIGHUP: %s; keeping the current configuration", err);
        config_free(&next);
        daemon_notify("READY=1");
        return;
    }
    agent_keep_running_parts(&a->cfg, &next);
    config_free(&a->cfg);
    a->cfg = next; /* in place: subsystems hold &a->cfg */
    log_set_level(a->cfg.log_level);
    log_info("SIGHUP: configuration reloaded from %s (%zu rules%s)",
             a->cfg.path, a->cfg.n_usb_rules,
             a->cfg.usb_filter_text ? ", a filter" : "");
    if (a->usb_running)
        usb_redirector_reconfigure(&a->usb);
    daemon_notify("READY=1");
}

static void on_signal(uv_signal_t *handle, int signum)
{
    struct agent *a = handle->data;

    if (signum == SIGHUP) {
        if (!a->stopping)
            agent_reload(a);
        return;
    }
    agent_stop(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void agent_watch_signal(struct agent *a, uv_signal_t *h, int signum)
{
    uv_signal_init(a->loop, h);
    h->data = a;
    uv_signal_start(h, on_signal, signum);
}

static int agent_start(struct agent *a)
{
    if (control_start(&a->control, a) < 0)
        return -1;
    if (a->cfg.usb_mode == USB_PEER_NONE) {
        log_notice("no [usb] connect or listen in %s: USB redirection is off",
                   a->cfg.path);
    } else {
        if (usb_redirector_start(&a->usb, a->loop, &a->cfg) < 0)
            return -1;
        a->usb_running = true;
    }
    return serial_bridge_start(&a->serial, a->loop, &a->cfg);
}

int agent_run(struct agent *a)
{
    a->loop = uv_default_loop();
    a->started_ms = uv_now(a->loop);
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    agent_watch_signal(a, &a->sig_term, SIGTERM);
    agent_watch_signal(a, &a->sig_int, SIGINT);
    agent_watch_signal(a, &a->sig_hup, SIGHUP);
    uv_timer_init(a->loop, &a->deadline);
    uv_unref((uv_handle_t *)&a->deadline);

    log_info("redir-agent %s starting with %s", REDIR_VERSION, a->cfg.path);
    int rc = agent_start(a) < 0 ? 1 : 0;
    if (rc == 0 && a->pidfile && daemon_pidfile_write(a->pidfile) < 0)
        rc = 1;
    if (rc == 0) {
        daemon_notify("READY=1");
        uv_run(a->loop, UV_RUN_DEFAULT);
    } else {
        control_stop(&a->control);
    }
    uv_walk(a->loop, on_walk_close, NULL);
    uv_run(a->loop, UV_RUN_DEFAULT);
    uv_loop_close(a->loop);
    if (rc == 0)
        log_info("exited cleanly");
    /* Last: an init script waiting on the pidfile knows devices are back. */
    daemon_pidfile_remove(a->pidfile);
    return rc;
}
