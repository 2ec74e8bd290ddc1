/* SPDX-License-Identifier: MIT */
/* The relay's configuration: /etc/redir-relay.ini parsed into a new struct
 * (at start and on every reload). */
#ifndef REDIR_RELAY_CONFIG_H
#define REDIR_RELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "config_util.h"
#include "endpoint.h"
#include "hostport.h"
#include "net_admit.h"
#include "relay_proto.h"
#include "tls_config.h"

#define RELAY_CONFIG_DEFAULT_PATH "/etc/redir-relay.ini"
#define RELAY_CONFIG_ERR_MAX CONFIG_ERR_MAX
#define RELAY_MAX_TARGETS 16384 /* four chardevs for each of 4096 VMs */

enum target_mode {
    TARGET_CONNECT, /* the relay dials QEMU's chardev (server=on) */
    TARGET_LISTEN,  /* QEMU's chardev (reconnect=N) dials the relay */
};

enum target_kind {
    TARGET_KIND_CHARDEV, /* a QEMU socket chardev (usb-redir, or any bytes) */
    TARGET_KIND_SERIAL,  /* a pty the relay creates for -chardev serial */
};

/* kind = serial: the tty QEMU opens (tty = auto | cuse | pty). */
enum relay_serial_tty {
    RELAY_SERIAL_TTY_AUTO, /* CUSE where /dev/cuse opens, else a pty */
    RELAY_SERIAL_TTY_CUSE, /* every setting, modem line and BREAK */
    RELAY_SERIAL_TTY_PTY,  /* speed, stop bits and flow control only */
};

struct relay_target_config {
    char name[RELAY_TARGET_MAX + 1];
    enum target_kind kind;
    /* kind = serial: where the pty's slave is linked for QEMU to open */
    char *pty_path;
    enum relay_serial_tty serial_tty;
    int kind_line, path_line, mode_line, tty_line; /* 0 if not set */
    struct endpoint chardev; /* the qemu key: TCP or a unix socket */
    enum target_mode mode;
    /* agents: which agents may use it, globs of certificate names (TLS);
     * NULL: every agent the relay authenticates */
    char *agents;
    struct tls_config tls; /* the QEMU leg (TCP chardevs only) */
    int line;              /* of the [target.NAME] header */
    int chardev_line;      /* of its qemu key, 0 if missing */
};

struct relay_config {
    char *path;
    int log_level; /* syslog level */
    struct hostport listen;
    bool metrics;                 /* metrics_listen set */
    struct hostport metrics_addr; /* the Prometheus endpoint */
    char *secret_file;
    uint8_t secret[RELAY_SECRET_MAX]; /* read from secret_file */
    size_t secret_len;
    uint32_t max_sessions;
    uint32_t session_buffer; /* bytes queued toward one side at most */
    struct tls_config tls;   /* toward the agents */
    bool allow_any;          /* allow: which addresses may connect */
    struct cidr_list allow;
    char *deny_agents; /* certificate names refused, globs; NULL: none */
    struct net_admit_limits handshakes; /* unauthenticated connections */
    uint32_t handshake_timeout_ms;
    struct relay_target_config *targets; /* sorted by name */
    size_t n_targets;
};

/* Parses path into cfg and reads the secret file (none needed with
 * tls = yes: certificates authenticate the agents). Returns 0, or -1 with
 * "FILE:LINE: what is wrong" in err. cfg is always left in a state
 * relay_config_free() accepts. */
int relay_config_load(const char *path, struct relay_config *cfg, char *err,
                      size_t err_len);
void relay_config_free(struct relay_config *cfg);

/* The target called name, or NULL. */
const struct relay_target_config *
relay_config_target(const struct relay_config *cfg, const char *name);

#endif
