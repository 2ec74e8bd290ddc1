/* SPDX-License-Identifier: MIT */
/* redir-relay's command line: run the relay or check its configuration. */
#include <stdio.h>
#include <stdlib.h>

#include "daemon_cli.h"
#include "relay.h"
#include "relay_config.h"

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

static int run_relay(void *ctx) { return relay_run(ctx); }

int main(int argc, char **argv)
{
    static struct relay relay;
    const struct daemon_cli cli = {
        "redir-relay", RELAY_CONFIG_DEFAULT_PATH, usage, NULL, NULL, NULL};
    struct daemon_options o;
    char err[RELAY_CONFIG_ERR_MAX];
    int rc = daemon_cli_parse(&cli, argc, argv, &o);

    if (rc >= 0)
        return rc;
    if (o.next_arg < argc) {
        fprintf(stderr, "redir-relay: unexpected argument '%s'\n",
                argv[o.next_arg]);
        usage(stderr);
        return 2;
    }
    relay.cfg = calloc(1, sizeof(*relay.cfg));
    if (!relay.cfg ||
        relay_config_load(o.config_path, relay.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", relay.cfg ? err : "out of memory");
        rc = 1;
    } else if (o.check_config) {
        printf("%s: configuration OK (%zu target%s)\n", o.config_path,
               relay.cfg->n_targets, relay.cfg->n_targets == 1 ? "" : "s");
        rc = 0;
    } else {
        relay.pidfile = o.pidfile;
        rc = daemon_cli_run("redir-relay", o.foreground, relay.cfg->log_level,
                            run_relay, &relay);
    }
    if (relay.cfg)
        relay_config_free(relay.cfg);
    free(relay.cfg);
    return rc;
}
