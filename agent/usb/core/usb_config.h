/* SPDX-License-Identifier: MIT */
/* The [usb] section of the agent's config: where devices go (slots), how
 * (transport), and which devices (rules, filter). */
#ifndef REDIR_USB_CONFIG_H
#define REDIR_USB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "hostport.h"
#include "tls_config.h"

struct config_parse;
struct usb_rule;
struct usbredirfilter_rule;

#define USB_CONFIG_MAX_SLOTS 64  /* more chardevs per thin client is a typo */
#define USB_CONFIG_MAX_RULES 256 /* a longer rule list is unreadable */
#define USB_TARGET_MAX 64        /* relay target names, e.g. "vm42-usb0" */

enum usb_wire_format {
    USB_TRANSPORT_RAW, /* byte-exact usbredir (QEMU speaks it) */
    USB_TRANSPORT_LZ4, /* compressed frames, only with redir-relay */
};

enum usb_peer_mode {
    USB_PEER_NONE,    /* no [usb] connect/listen: USB redirection off */
    USB_PEER_CONNECT, /* the agent dials chardevs (server=on) or a relay */
    USB_PEER_LISTEN,  /* chardevs dial the agent (reconnect=N) */
};

/* One slot: where one device at a time goes. */
struct usb_slot_config {
    struct hostport addr;
    char target[USB_TARGET_MAX]; /* "" for a chardev, else a relay target */
};

struct usb_config {
    enum usb_peer_mode mode;
    struct usb_slot_config slots[USB_CONFIG_MAX_SLOTS];
    size_t nslots;
    enum usb_wire_format transport;
    char *relay_secret_file; /* proves us to redir-relay (NULL with TLS) */
    struct tls_config tls;   /* the stream to QEMU or the relay */
    bool allow_any;          /* listen: every address may connect */
    struct cidr_list allow;  /* listen: else only these */
    bool replace_peer;       /* listen: a new peer replaces a live one */
    char *agent_id;          /* how the relay knows us; default hostname */
    struct usb_rule *rules;  /* rule lines, in order */
    size_t n_rules;
    char *filter_text; /* NULL: default policy */
    struct usbredirfilter_rule *filter_rules;
    int filter_count;
    uint32_t reconnect_min_ms, reconnect_max_ms;
    int usbredir_debug; /* usbredirhost verbosity, 0..5 */
};

/* Lines where keys were set, for errors found after the whole file. */
struct usb_config_lines {
    int seen[16]; /* per key: line it was first set on */
    int mode, reconnect, transport, secret, allow;
};

void usb_config_init(struct usb_config *u);
void usb_config_free(struct usb_config *u);

/* One key of [usb]. Returns 1, or 0 after recording the error in p. */
int usb_config_key(struct usb_config *u, struct usb_config_lines *lines,
                   struct config_parse *p, const char *name, const char *value);

/* After the whole file: cross-key checks (relay targets, secret, lz4,
 * reconnect bounds) and the filter compiled. Returns 0 or -1 (error in
 * p). */
int usb_config_finish(struct usb_config *u,
                      const struct usb_config_lines *lines,
                      struct config_parse *p);

/* Splits a comma-separated "HOST:PORT[/TARGET]" list into slots added to
 * u's (key names the list in errors). Returns 0, or -1 with why. */
int usb_config_parse_slot_list(struct usb_config *u, const char *key,
                               const char *value, char *why, size_t why_len);

/* True if both send devices to the same places the same way. */
bool usb_config_same_slots(const struct usb_config *a,
                           const struct usb_config *b);

#endif
