/* SPDX-License-Identifier: MIT */
/* The command line both daemons share (-c FILE, -f, --pidfile, --check-config,
 * --version, --help) and going into the background. */
#include "daemon_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "version.h"

#define MAX_OPTIONS 24

enum { OPT_CHECK_CONFIG = 1, OPT_PIDFILE };

static const struct option common_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"foreground", no_argument, NULL, 'f'},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
};

/* The common options, then the program's, then the terminator. */
static void merge_options(const struct daemon_cli *cli, struct option *all)
{
    size_t n = sizeof(common_options) / sizeof(common_options[0]);

    memcpy(all, common_options, sizeof(common_options));
    for (const struct option *o = cli->extra; o && o->name; o++)
        if (n < MAX_OPTIONS - 1)
            all[n++] = *o;
    all[n] = (struct option){NULL, 0, NULL, 0};
}

int daemon_cli_parse(const struct daemon_cli *cli, int argc, char **argv,
                     struct daemon_options *o)
{
    struct option all[MAX_OPTIONS];
    int opt, rc;

    merge_options(cli, all);
    *o = (struct daemon_options){.config_path = cli->default_config};
    while ((opt = getopt_long(argc, argv, "c:fVh", all, NULL)) != -1) {
        switch (opt) {
        case 'c': o->config_path = optarg; break;
        case 'f': o->foreground = true; break;
        case OPT_CHECK_CONFIG: o->check_config = true; break;
        case OPT_PIDFILE: o->pidfile = optarg; break;
        case 'V': printf("%s %s\n", cli->name, REDIR_VERSION); return 0;
        case 'h': cli->usage(stdout); return 0;
        default:
            if (opt >= 256 && cli->on_option) {
                if ((rc = cli->on_option(cli->ctx, opt, optarg)) != 0)
                    return rc;
                break;
            }
            cli->usage(stderr);
            return 2;
        }
    }
    o->next_arg = optind;
    return -1;
}

int daemon_cli_run(const char *name, bool foreground, int log_level,
                   int (*run)(void *ctx), void *ctx)
{
    log_set_level(log_level);
    if (!foreground && daemon(0, 0) < 0) {
        fprintf(stderr, "%s: cannot become a daemon: %s\n", name,
                strerror(errno));
        return 1;
    }
    log_open(name, foreground);
    int rc = run(ctx);
    log_close();
    return rc;
}
