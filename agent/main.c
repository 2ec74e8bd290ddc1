/* SPDX-License-Identifier: MIT */
/* redir-agent's command line: run the daemon, check the config, list devices,
 * or send the running agent a command (status, target, detach, ...). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "control_client.h"
#include "control_proto.h"
#include "daemon_cli.h"
#include "list_devices.h"

enum {
    OPT_LIST_DEVICES = 256,
    OPT_JSON,
    OPT_SOCKET,
    OPT_FORCE,
    OPT_CLEAR,
    OPT_RESET
};

/* Options of the agent's own commands. */
struct agent_options {
    bool list_devices, json, force, clear, reset;
    const char *socket_path; /* commands: overrides the config's */
};

/* The words that send the running agent a request. */
static const char *const commands[] = {"status", "target", "detach",
                                       "attach", "events", "reload"};

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: redir-agent [-c FILE] [-f] [--pidfile FILE]\n"
        "       redir-agent [-c FILE] --check-config | --list-devices\n"
        "       redir-agent COMMAND [--json] [-c FILE | --socket PATH]\n"
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
        "\n"
        "Commands to the running agent (over its control socket):\n"
        "  status              devices, sessions, peers, bytes and packets,\n"
        "                      rates, uptime, serial ports\n"
        "  target              where USB devices go now\n"
        "  target HOST:PORT[/TARGET][, ...]\n"
        "                      send them there from now on (devices move)\n"
        "  target --clear | --reset\n"
        "                      no peers (devices stay here) | the config's\n"
        "  detach PORT|VID:PID give a device back to this machine, kept\n"
        "                      local until attach or a replug\n"
        "  attach PORT|VID:PID [--force]\n"
        "                      redirect it again (--force: even if the\n"
        "                      policy keeps it local, unless allow_force=no)\n"
        "  events              a JSON line per device event, until ^C\n"
        "  reload              re-read the config (as SIGHUP)\n"
        "      --json          the answer as JSON, for scripts\n"
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
    case OPT_FORCE: ao->force = true; break;
    case OPT_CLEAR: ao->clear = true; break;
    case OPT_RESET: ao->reset = true; break;
    default: break;
    }
    return 0;
}

/* The request line: the command, its words, its flags. */
static int build_request(int argc, char **argv, int first,
                         const struct agent_options *ao, char *line, size_t len)
{
    size_t used = 0;

    for (int i = first; i < argc; i++) {
        int n = snprintf(line + used, len - used, "%s%s", i > first ? " " : "",
                         argv[i]);
        if (n < 0 || (size_t)n >= len - used)
            return -1;
        used += (size_t)n;
    }
    int n = snprintf(line + used, len - used, "%s%s%s%s",
                     ao->json ? " --json" : "", ao->force ? " --force" : "",
                     ao->clear ? " --clear" : "", ao->reset ? " --reset" : "");
    return n < 0 || (size_t)n >= len - used ? -1 : 0;
}

static int run_command(const struct daemon_options *o,
                       const struct agent_options *ao, int argc, char **argv)
{
    char line[CONTROL_REQUEST_MAX + 1];
    const char *command = argv[o->next_arg];

    if (build_request(argc, argv, o->next_arg, ao, line, sizeof(line)) < 0) {
        fprintf(stderr, "redir-agent %s: request longer than %d bytes\n",
                command, CONTROL_REQUEST_MAX);
        return 2;
    }
    char *path = ao->socket_path ? strdup(ao->socket_path)
                                 : config_control_socket(o->config_path);
    int rc = path ? control_client_run(path, command, line,
                                       strcmp(command, "events") == 0)
                  : 1;
    free(path);
    return rc;
}

/* Which command: a command word (its arguments follow), or none. */
static int check_command(int argc, char **argv, struct daemon_options *o,
                         const struct agent_options *ao, bool *command)
{
    *command = false;
    for (size_t i = 0;
         o->next_arg < argc && !o->check_config && !ao->list_devices &&
         i < sizeof(commands) / sizeof(commands[0]);
         i++)
        *command |= strcmp(argv[o->next_arg], commands[i]) == 0;
    if (!*command && o->next_arg < argc) {
        fprintf(stderr, "redir-agent: unexpected argument '%s'\n",
                argv[o->next_arg]);
        usage(stderr);
        return 2;
    }
    if ((ao->json || ao->force || ao->clear || ao->reset) && !*command) {
        fprintf(stderr, "redir-agent: --json, --force, --clear and --reset "
                        "go with a command (status, target, attach, ...)\n");
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
        {"force", no_argument, NULL, OPT_FORCE},
        {"clear", no_argument, NULL, OPT_CLEAR},
        {"reset", no_argument, NULL, OPT_RESET},
        {NULL, 0, NULL, 0},
    };
    static struct agent agent;
    struct agent_options ao = {0};
    const struct daemon_cli cli = {"redir-agent", CONFIG_DEFAULT_PATH, usage,
                                   extra,         on_option,           &ao};
    struct daemon_options o;
    char err[CONFIG_ERR_MAX];
    bool command;
    int rc = daemon_cli_parse(&cli, argc, argv, &o);

    if (rc < 0)
        rc = check_command(argc, argv, &o, &ao, &command);
    if (rc >= 0)
        return rc;
    if (command)
        return run_command(&o, &ao, argc, argv);
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
