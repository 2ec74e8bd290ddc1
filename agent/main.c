/* redir-agent: command line, signals, and the one libuv loop everything runs
 * on. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "serial_bridge.h"
#include "usb_redirector.h"
#include "version.h"

#define SHUTDOWN_DEADLINE_MS 1800 /* SIGTERM must be done within 2 s */

struct agent {
    uv_loop_t *loop;
    struct agent_config cfg;
    struct usb_redirector usb;
    bool usb_running;
    struct serial_bridge *serial;
    unsigned running; /* subsystems not yet stopped */
    bool stopping;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t deadline;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: redir-agent [-c FILE] [-f] [--check-config]\n"
        "       redir-agent --version | --help\n"
        "\n"
        "Redirects USB devices plugged into this machine to QEMU usb-redir\n"
        "chardevs over TCP.\n"
        "\n"
        "  -c, --config FILE   configuration file (default %s)\n"
        "  -f, --foreground    stay in the foreground, log to stderr\n"
        "      --check-config  check the configuration and exit\n"
        "  -V, --version       print the version and exit\n"
        "  -h, --help          print this help and exit\n"
        "\n"
        "Signals: SIGTERM/SIGINT hand every device back and exit.\n",
        CONFIG_DEFAULT_PATH);
}

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
    uv_timer_start(&a->deadline, on_deadline, SHUTDOWN_DEADLINE_MS, 0);
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

static void on_signal(uv_signal_t *handle, int signum)
{
    struct agent *a = handle->data;

    if (signum == SIGHUP) {
        log_notice("SIGHUP: configuration reload is not supported yet; "
                   "restart the agent to apply changes");
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

static int agent_run(struct agent *a)
{
    a->loop = uv_default_loop();
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    agent_watch_signal(a, &a->sig_term, SIGTERM);
    agent_watch_signal(a, &a->sig_int, SIGINT);
    agent_watch_signal(a, &a->sig_hup, SIGHUP);
    uv_timer_init(a->loop, &a->deadline);
    uv_unref((uv_handle_t *)&a->deadline);

    log_info("redir-agent %s starting with %s", REDIR_VERSION, a->cfg.path);
    if (a->cfg.usb_mode == USB_PEER_NONE) {
        log_notice("no [usb] connect or listen in %s: USB redirection is off",
                   a->cfg.path);
    } else {
        if (usb_redirector_start(&a->usb, a->loop, &a->cfg) < 0)
            return 1;
        a->usb_running = true;
    }
    if (serial_bridge_start(&a->serial, a->loop, &a->cfg) < 0)
        return 1;
    uv_run(a->loop, UV_RUN_DEFAULT);
    uv_walk(a->loop, on_walk_close, NULL);
    uv_run(a->loop, UV_RUN_DEFAULT);
    uv_loop_close(a->loop);
    log_info("exited cleanly");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = CONFIG_DEFAULT_PATH;
    bool foreground = false, check_only = false;
    char err[CONFIG_ERR_MAX];
    static struct agent agent;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:fVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'f': foreground = true; break;
        case 'C': check_only = true; break;
        case 'V': printf("redir-agent %s\n", REDIR_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "redir-agent: unexpected argument '%s'\n",
                argv[optind]);
        usage(stderr);
        return 2;
    }
    if (config_load(config_path, &agent.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        config_free(&agent.cfg);
        return 1;
    }
    if (check_only) {
        printf("%s: configuration OK\n", config_path);
        config_free(&agent.cfg);
        return 0;
    }
    log_set_level(agent.cfg.log_level);
    if (!foreground && daemon(0, 0) < 0) {
        perror("redir-agent: cannot become a daemon");
        return 1;
    }
    log_open("redir-agent", foreground);
    int rc = agent_run(&agent);
    config_free(&agent.cfg);
    log_close();
    return rc;
}
