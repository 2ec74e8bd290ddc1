/* redir-agent's command line: run the daemon, check the config, list devices,
 * or ask for status. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "list_devices.h"
#include "log.h"
#include "status_client.h"
#include "version.h"

enum command { CMD_RUN, CMD_CHECK_CONFIG, CMD_LIST_DEVICES, CMD_STATUS };

struct options {
    const char *config_path;
    const char *socket_path; /* status: overrides the config's */
    const char *pidfile;
    bool foreground, json;
    enum command command;
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
        "                      peers, bytes and packets, rates, uptime\n"
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

/* Returns -1 to continue, or an exit code. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"check-config", no_argument, NULL, 'C'},
        {"list-devices", no_argument, NULL, 'L'},
        {"json", no_argument, NULL, 'j'},
        {"socket", required_argument, NULL, 's'},
        {"pidfile", required_argument, NULL, 'p'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    *o = (struct options){.config_path = CONFIG_DEFAULT_PATH};
    while ((opt = getopt_long(argc, argv, "c:fVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c': o->config_path = optarg; break;
        case 'f': o->foreground = true; break;
        case 'C': o->command = CMD_CHECK_CONFIG; break;
        case 'L': o->command = CMD_LIST_DEVICES; break;
        case 'j': o->json = true; break;
        case 's': o->socket_path = optarg; break;
        case 'p': o->pidfile = optarg; break;
        case 'V': printf("redir-agent %s\n", REDIR_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc && strcmp(argv[optind], "status") == 0 &&
        o->command == CMD_RUN) {
        o->command = CMD_STATUS;
        optind++;
    }
    if (optind < argc) {
        fprintf(stderr, "redir-agent: unexpected argument '%s'\n",
                argv[optind]);
        usage(stderr);
        return 2;
    }
    if (o->json && o->command != CMD_STATUS) {
        fprintf(stderr, "redir-agent: --json goes with status\n");
        return 2;
    }
    return -1;
}

static int run_daemon(struct agent *a, bool foreground)
{
    log_set_level(a->cfg.log_level);
    if (!foreground && daemon(0, 0) < 0) {
        perror("redir-agent: cannot become a daemon");
        return 1;
    }
    log_open("redir-agent", foreground);
    int rc = agent_run(a);
    log_close();
    return rc;
}

int main(int argc, char **argv)
{
    static struct agent agent;
    struct options o;
    char err[CONFIG_ERR_MAX];
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0)
        return rc;
    if (o.command == CMD_STATUS) {
        char *path = o.socket_path ? strdup(o.socket_path)
                                   : config_control_socket(o.config_path);
        rc = path ? status_client_run(path, o.json) : 1;
        free(path);
        return rc;
    }
    if (config_load(o.config_path, &agent.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        config_free(&agent.cfg);
        return 1;
    }
    switch (o.command) {
    case CMD_CHECK_CONFIG:
        printf("%s: configuration OK\n", o.config_path);
        rc = 0;
        break;
    case CMD_LIST_DEVICES: rc = list_devices(&agent.cfg); break;
    case CMD_STATUS: /* handled above */
    case CMD_RUN:
        agent.pidfile = o.pidfile;
        rc = run_daemon(&agent, o.foreground);
        break;
    }
    config_free(&agent.cfg);
    return rc;
}
