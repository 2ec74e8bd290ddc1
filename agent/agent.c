/* SPDX-License-Identifier: MIT */
/* The running agent: its config, the USB redirector, the serial bridge, the
 * control socket and the signals, on one loop. */
#include "agent.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "daemon.h"
#include "log.h"
#include "net_conn.h"
#include "serial_bridge.h"
#include "serial_owner.h"
#include "usb_redirector.h"
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
    net_conn_end_lingering(); /* theirs to free: not for uv_walk */
    uv_walk(a->loop, on_walk_close, NULL);
}

/* Called as each subsystem reports it has released everything. */
static void agent_subsystem_stopped(struct agent *a)
{
    if (--a->running == 0 && a->stopping)
        agent_finish(a);
}

static void on_serial_stopped(void *arg)
{
    struct agent *a = arg;
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

/* ---- USB ---- */

static const char *serial_owner(void *ctx, const char *port, const char *serial)
{
    struct agent *a = ctx;
    return serial_owner_find(&a->cfg->serial, port, serial);
}

static void on_usb_stopped(void *ctx) { agent_subsystem_stopped(ctx); }

static const struct usb_redirector_ops agent_usb_ops = {
    .serial_owner = serial_owner,
    .on_stopped = on_usb_stopped,
    .on_event = agent_usb_event,
};

int agent_usb_start(struct agent *a)
{
    usb_targets_apply(&a->targets, &a->cfg->usb, &a->usb_eff);
    if (a->usb_eff.mode == USB_PEER_NONE) {
        log_notice("no [usb] connect or listen in %s: USB redirection is off "
                   "(redir-agent target can set peers)",
                   a->cfg->path);
        return 0;
    }
    a->usb = usb_redirector_start(a->loop, &a->usb_eff, &agent_usb_ops, a);
    if (!a->usb)
        return -1;
    a->running++;
    return 0;
}

void agent_usb_stop(struct agent *a)
{
    if (!a->usb)
        return;
    usb_redirector_stop(a->usb); /* on_usb_stopped follows */
    a->usb = NULL;
}

/* ---- start and stop ---- */

static void agent_stop(struct agent *a, const char *why)
{
    if (a->stopping)
        return;
    a->stopping = true;
    log_info("%s: handing devices back and exiting", why);
    daemon_notify("STOPPING=1");
    uv_timer_start(&a->deadline, on_deadline, SHUTDOWN_DEADLINE_MS, 0);
    if (a->control)
        control_stop(a->control);
    a->control = NULL;
    agent_metrics_stop(a);
    a->running++; /* held until every stop is requested */
    agent_usb_stop(a);
    if (a->serial)
        serial_bridge_stop(a->serial, on_serial_stopped, a);
    a->serial = NULL;
    agent_subsystem_stopped(a);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    struct agent *a = handle->data;

    if (signum == SIGHUP) {
        if (!a->stopping)
            agent_reload(a, "SIGHUP", NULL, 0);
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
    if (agent_control_start(a) < 0 || agent_metrics_start(a) < 0 ||
        agent_usb_start(a) < 0)
        return -1;
    a->serial_sink = (struct serial_event_sink){agent_serial_event, a};
    a->serial = serial_bridge_start(a->loop, &a->cfg->serial, &a->serial_sink);
    if (!a->serial)
        return -1;
    a->running++;
    return 0;
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

    log_info("redir-agent %s starting with %s", REDIR_VERSION, a->cfg->path);
    int rc = agent_start(a) < 0 ? 1 : 0;
    if (rc == 0 && a->pidfile && daemon_pidfile_write(a->pidfile) < 0)
        rc = 1;
    if (rc == 0) {
        daemon_notify("READY=1");
        uv_run(a->loop, UV_RUN_DEFAULT);
    } else {
        agent_stop(a, "start-up failed");
    }
    net_conn_end_lingering();
    uv_walk(a->loop, on_walk_close, NULL);
    uv_run(a->loop, UV_RUN_DEFAULT);
    uv_loop_close(a->loop);
    if (rc == 0)
        log_info("exited cleanly");
    /* Last: an init script waiting on the pidfile knows devices are back. */
    daemon_pidfile_remove(a->pidfile);
    return rc;
}
