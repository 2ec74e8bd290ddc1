/* SPDX-License-Identifier: MIT */
/* The [serial.NAME] sections of the agent's config: one bridged tty or printer
 * each. */
#ifndef REDIR_SERIAL_CONFIG_H
#define REDIR_SERIAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "hostport.h"
#include "relay_proto.h"
#include "serial_line.h"
#include "tls_config.h"

struct config_parse;

#define SERIAL_SECTION_PREFIX "serial."
#define SERIAL_CONFIG_MAX_PORTS 64 /* more ports on a thin client is a typo */
#define SERIAL_NAME_MAX 32         /* NAME appears in every log line */
/* room for the keys of serial_config_keys.c */
#define SERIAL_KEY_SLOTS 16

enum serial_kind {
    SERIAL_KIND_AUTO,    /* only while parsing: decided by the device name */
    SERIAL_KIND_TTY,     /* read/write, line settings */
    SERIAL_KIND_PRINTER, /* write-only byte sink: /dev/usb/lpN, /dev/lpN */
};

enum serial_mode {
    SERIAL_MODE_RAW,     /* bytes as they are */
    SERIAL_MODE_TELNET,  /* telnet framing, IAC escaped both ways */
    SERIAL_MODE_RFC2217, /* telnet + Com Port Control: client sets the line */
};

enum serial_peer {
    SERIAL_PEER_NONE,    /* only while parsing */
    SERIAL_PEER_LISTEN,  /* clients dial the agent */
    SERIAL_PEER_CONNECT, /* the agent dials out and keeps redialing */
};

enum serial_loss_policy {
    SERIAL_LOSS_CLOSE, /* device gone: the client is disconnected */
    SERIAL_LOSS_KEEP,  /* the client stays and waits for the device */
};

/* One [serial.NAME] section. */
struct serial_port_config {
    char *name;   /* NAME of [serial.NAME] */
    int line;     /* line of its section header, for errors */
    char *device; /* tty or printer path */
    enum serial_kind kind;
    enum serial_mode mode;
    enum serial_peer peer;
    struct hostport addr; /* listen or connect address */
    /* connect = HOST:PORT/TARGET: a redir-relay serial target ("" if the
     * peer is a plain TCP RFC 2217 / telnet client) */
    char target[RELAY_TARGET_MAX + 1];
    char *relay_secret_file;     /* proves us to the relay (NULL with TLS) */
    char *agent_id;              /* how the relay knows us; default hostname */
    bool lz4;                    /* transport = lz4: framed to the relay */
    struct serial_line settings; /* line until a client changes it */
    bool replace_client;         /* a new client replaces the current one */
    bool allow_any;              /* listen: every address may connect */
    struct cidr_list allow;      /* listen: else only these */
    struct tls_config tls;       /* the network side speaks TLS */
    uint32_t idle_timeout_s;     /* 0: never */
    enum serial_loss_policy on_device_loss;
    uint32_t reconnect_min_ms, reconnect_max_ms; /* connect mode backoff */
    int key_line[SERIAL_KEY_SLOTS]; /* where each key was set, 0 if not */
};

/* Every [serial.NAME] section, in file order. */
struct serial_config {
    struct serial_port_config *ports;
    size_t n_ports;
};

/* The config reader met a [serial.NAME] header. Returns 0, or -1 after
 * recording the error in p. */
int serial_config_section(struct serial_config *sc, struct config_parse *p,
                          const char *name);

/* One "key = value" of [serial.NAME]; same contract. */
int serial_config_key(struct serial_config *sc, struct config_parse *p,
                      const char *name, const char *key, const char *value);

/* After the whole file: each section complete, no two on one device or
 * listen address. Returns 0 or -1. */
int serial_config_finish(struct serial_config *sc, struct config_parse *p);

void serial_config_free(struct serial_config *sc);

/* The line of a port's listen key (for errors found by the caller). */
int serial_config_listen_line(const struct serial_port_config *p);

/* True if a and b configure the port identically (a reload keeps it). */
bool serial_port_config_equal(const struct serial_port_config *a,
                              const struct serial_port_config *b);

const char *serial_mode_name(enum serial_mode mode);

#endif
