/* redir-relay's command line: run the relay or check its configuration. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "relay.h"
#include "relay_config.h"
#include "version.h"

struct options {
    const char *config_path;
    const char *pidfile;
    bool foreground, check_config;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: redir-relay [-c FILE] [-f] [--pidfile FILE]\n"
            "       redir-relay [-c FILE] --check-config\n"
            "       redir-relay --version | --help\n"
            "\n"
            "Accepts redir-agent connections, checks who they are, and\n"
            "feeds each one's USB device to its target's QEMU usb-redir\n"
            "chardev (decompressing lz4 on the way in, compressing out).\n"
            "\n"
            "  -c, --config FILE   configuration file (default %s)\n"
            "  -f, --foreground    stay in the foreground, log to stderr\n"
            "      --pidfile FILE  write the daemon's pid there (removed at\n"
            "                      exit, after every session is closed)\n"
            "      --check-config  check the configuration (and the secret\n"
            "                      file) and exit\n"
            "  -V, --version       print the version and exit\n"
            "  -h, --help          print this help and exit\n"
            "\n"
            "Signals: SIGHUP reloads the configuration (targets, secret,\n"
            "limits; not the listen address); SIGTERM/SIGINT close every\n"
            "session and exit.\n",
            RELAY_CONFIG_DEFAULT_PATH);
}

/* Returns -1 to continue, or an exit code. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"check-config", no_argument, NULL, 'C'},
        {"pidfile", required_argument, NULL, 'p'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    *o = (struct options){.config_path = RELAY_CONFIG_DEFAULT_PATH};
    while ((opt = getopt_long(argc, argv, "c:fVh", options, NULL)) != -1) {
        switch (opt) {
        case 'c': o->config_path = optarg; break;
        case 'f': o->foreground = true; break;
        case 'C': o->check_config = true; break;
        case 'p': o->pidfile = optarg; break;
        case 'V': printf("redir-relay %s\n", REDIR_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "redir-relay: unexpected argument '%s'\n",
                argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

static int run_daemon(struct relay *r, bool foreground)
{
    log_set_level(r->cfg.log_level);
    if (!foreground && daemon(0, 0) < 0) {
        perror("redir-relay: cannot become a daemon");
        return 1;
    }
    log_open("redir-relay", foreground);
    int rc = relay_run(r);
    log_close();
    return rc;
}

int main(int argc, char **argv)
{
    static struct relay relay;
    struct options o;
    char err[RELAY_CONFIG_ERR_MAX];
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0)
        return rc;
    if (relay_config_load(o.config_path, &relay.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        relay_config_free(&relay.cfg);
        return 1;
    }
    if (o.check_config) {
        printf("%s: configuration OK (%zu targets)\n", o.config_path,
               relay.cfg.n_targets);
        rc = 0;
    } else {
        relay.pidfile = o.pidfile;
        rc = run_daemon(&relay, o.foreground);
    }
    relay_config_free(&relay.cfg);
    return rc;
}
