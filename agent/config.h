/* SPDX-License-Identifier: MIT */
/* The agent's configuration: /etc/redir-agent.ini parsed into a new struct
 * (at start and on every reload). */
#ifndef REDIR_AGENT_CONFIG_H
#define REDIR_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config_util.h"
#include "serial_config.h"
#include "usb_config.h"

#define CONFIG_DEFAULT_PATH "/etc/redir-agent.ini"
#define CONFIG_DEFAULT_CONTROL_SOCKET "/run/redir-agent/control.sock"

struct agent_config {
    char *path;
    int log_level;        /* syslog level */
    char *control_socket; /* unix socket for "redir-agent status" */
    char *control_group;  /* may change state too; NULL: root and us only */
    gid_t control_gid;    /* its gid, (gid_t)-1 without one */
    bool allow_force;     /* "attach --force" may override the policy */
    bool metrics;         /* metrics_listen set: a Prometheus endpoint */
    struct hostport metrics_addr;
    struct usb_config usb;
    struct serial_config serial;
};

/* Parses path into cfg. Returns 0, or -1 with "FILE:LINE: what is wrong"
 * in err. cfg is always left in a state config_free() accepts. */
int config_load(const char *path, struct agent_config *cfg, char *err,
                size_t err_len);
void config_free(struct agent_config *cfg);

/* Only [agent] control_socket of path (or the default), ignoring every
 * other problem: "status" must work while the file has a pending mistake.
 * Returns a malloc'ed path. */
char *config_control_socket(const char *path);

#endif
