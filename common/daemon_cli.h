/* SPDX-License-Identifier: MIT */
/* The command line both daemons share (-c FILE, -f, --pidfile, --check-config,
 * --version, --help) and going into the background. */
#ifndef REDIR_DAEMON_CLI_H
#define REDIR_DAEMON_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

struct daemon_cli {
    const char *name;           /* "redir-agent" */
    const char *default_config; /* when no -c is given */
    void (*usage)(FILE *out);   /* the whole usage text */
    /* The program's own long options (no short forms; val >= 256), and
     * what to do with them. on_option returns 0, or an exit code. */
    const struct option *extra;
    int (*on_option)(void *ctx, int val, const char *arg);
    void *ctx;
};

struct daemon_options {
    const char *config_path;
    const char *pidfile;
    bool foreground, check_config;
    int next_arg; /* argv index of the first non-option argument */
};

/* Returns -1 to go on, or an exit code (0 after --help/--version, 2 for a
 * bad option, with the usage on stderr). */
int daemon_cli_parse(const struct daemon_cli *cli, int argc, char **argv,
                     struct daemon_options *o);

/* Leaves the terminal unless foreground, opens the log (stderr or syslog)
 * at log_level, runs run(ctx) and returns its exit code. */
int daemon_cli_run(const char *name, bool foreground, int log_level,
                   int (*run)(void *ctx), void *ctx);

#endif
