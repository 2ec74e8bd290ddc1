/* SPDX-License-Identifier: MIT */
/* redir-agent's command line: run the daemon, check the config, list devices,
 * or ask for status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "daemon_cli.h"
#include "list_devices.h"
#include "status_client.h"

enum { OPT_LIST_DEVICES = 256, OPT_JSON, OPT_SOCKET };

/* Options of the agent's own commands. */
struct agent_options {
    bool list_devices, json;
    const char *socket_path; /* status: overrides the config's */
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: redir-agent [-c FILE] [-f] [--pidfile FILE]\n"
        "       redir-agent [-c FILE] --check-config | --list-devices\n"
        "       redir-agent status [--json] [-c FILE | --socket PATH]\n"
        "       redir-agent --version | --help\n"
        "\n"
        "Redirects USB devices plugged into this machine to QEMU usb-redir\n"
        "chardevs over TCP.\n"
        "\n"
        "  -c, --config FILE   configuration file (default %s)\n"
        "  -f, --foreground    stay in the foreground, log to stderr\n"
        "      --pidfile FILE  write the daemon's pid there (removed at\n"
        "                      exit, after every device is handed back)\n"
        "      --check-config  check the configuration and exit\n"
        "      --list-devices  list USB devices and what the configuration\n"
        "                      would decide for each (touches none)\n"
        "  status              ask the running agent: devices, sessions,\n"
        "                      peers, bytes and packets, rates, uptime,\n"
        "                      serial ports\n"
        "      --json          status as JSON, for scripts\n"
        "      --socket PATH   control socket to ask (default: the\n"
        "                      config's [agent] control_socket)\n"
        "  -V, --version       print the version and exit\n"
        "  -h, --help          print this help and exit\n"
        "\n"
        "Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT hand\n"
        "every device back to the host and exit.\n",
        CONFIG_DEFAULT_PATH);
}

static int on_option(void *ctx, int val, const char *arg)
{
    struct agent_options *ao = ctx;

    switch (val) {
    case OPT_LIST_DEVICES: ao->list_devices = true; break;
    case OPT_JSON: ao->json = true; break;
    case OPT_SOCKET: ao->socket_path = arg; break;
    default: break;
    }
    return 0;
}

static int run_status(const struct daemon_options *o,
                      const struct agent_options *ao)
{
    char *path = ao->socket_path ? strdup(ao->socket_path)
                                 : config_control_socket(o->config_path);
    int rc = path ? status_client_run(path, ao->json) : 1;

    free(path);
    return rc;
}

/* Which command: "status" is the only word; the rest are options. */
static int check_command(int argc, char **argv, struct daemon_options *o,
                         const struct agent_options *ao, bool *status)
{
    *status = false;
    if (o->next_arg < argc && strcmp(argv[o->next_arg], "status") == 0 &&
        !o->check_config && !ao->list_devices) {
        *status = true;
        o->next_arg++;
    }
    if (o->next_arg < argc) {
        fprintf(stderr, "redir-agent: unexpected argument '%s'\n",
                argv[o->next_arg]);
        usage(stderr);
        return 2;
    }
    if (ao->json && !*status) {
        fprintf(stderr, "redir-agent: --json goes with status\n");
        return 2;
    }
    return -1;
}

static int run_agent(void *ctx) { return agent_run(ctx); }

int main(int argc, char **argv)
{
    static const struct option extra[] = {
        {"list-devices", no_argument, NULL, OPT_LIST_DEVICES},
        {"json", no_argument, NULL, OPT_JSON},
        {"socket", required_argument, NULL, OPT_SOCKET},
        {NULL, 0, NULL, 0},
    };
    static struct agent agent;
    struct agent_options ao = {0};
    const struct daemon_cli cli = {"redir-agent", CONFIG_DEFAULT_PATH, usage,
                                   extra,         on_option,           &ao};
    struct daemon_options o;
    char err[CONFIG_ERR_MAX];
    bool status;
    int rc = daemon_cli_parse(&cli, argc, argv, &o);

    if (rc < 0)
        rc = check_command(argc, argv, &o, &ao, &status);
    if (rc >= 0)
        return rc;
    if (status)
        return run_status(&o, &ao);
    agent.cfg = calloc(1, sizeof(*agent.cfg));
    if (!agent.cfg ||
        config_load(o.config_path, agent.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", agent.cfg ? err : "out of memory");
        rc = 1;
    } else if (o.check_config) {
        printf("%s: configuration OK\n", o.config_path);
        rc = 0;
    } else if (ao.list_devices) {
        rc = list_devices(agent.cfg->path, &agent.cfg->usb, &agent.cfg->serial);
    } else {
        agent.pidfile = o.pidfile;
        rc = daemon_cli_run("redir-agent", o.foreground, agent.cfg->log_level,
                            run_agent, &agent);
    }
    if (agent.cfg)
        config_free(agent.cfg);
    free(agent.cfg);
    return rc;
}
