/* The agent's configuration: /etc/redir-agent.ini parsed once into a plain
 * struct. */
#ifndef REDIR_CONFIG_H
#define REDIR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "hostport.h"

#define CONFIG_DEFAULT_PATH "/etc/redir-agent.ini"
#define CONFIG_MAX_SLOTS 64 /* more QEMU chardevs per thin client is a typo */
#define CONFIG_ERR_MAX 512
#define CONFIG_MAX_RULES 256 /* a rule list longer than this is unreadable */
#define CONFIG_TARGET_MAX 64 /* relay target names, e.g. "vm42-usb0" */
#define CONFIG_DEFAULT_CONTROL_SOCKET "/run/redir-agent.sock"

enum usb_transport {
    USB_TRANSPORT_RAW, /* byte-exact usbredir (QEMU speaks it) */
    USB_TRANSPORT_LZ4, /* compressed frames, only with redir-relay */
};

enum usb_peer_mode {
    USB_PEER_NONE,    /* no [usb] connect/listen: USB redirection off */
    USB_PEER_CONNECT, /* the agent dials QEMU chardevs (server=on) */
    USB_PEER_LISTEN,  /* QEMU chardevs dial the agent (reconnect=N) */
};

struct usbredirfilter_rule;
struct serial_port_config;
struct usb_rule;

struct agent_config {
    char *path;
    int log_level;        /* syslog level */
    char *control_socket; /* unix socket for "redir-agent status" */

    enum usb_peer_mode usb_mode;
    struct hostport usb_slots[CONFIG_MAX_SLOTS];
    /* "" for a QEMU chardev, else the relay target (HOST:PORT/TARGET) */
    char usb_slot_targets[CONFIG_MAX_SLOTS][CONFIG_TARGET_MAX];
    size_t usb_nslots;
    enum usb_transport usb_transport;
    char *relay_secret_file;    /* proves us to redir-relay */
    char *agent_id;             /* how the relay knows us; default hostname */
    struct usb_rule *usb_rules; /* [usb] rule lines, in order */
    size_t n_usb_rules;
    char *usb_filter_text; /* NULL: default policy */
    struct usbredirfilter_rule *usb_filter_rules;
    int usb_filter_count;
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    int usbredir_debug; /* usbredirhost verbosity, 0..5 */

    struct serial_port_config *serial_ports; /* see config_serial.h */
    size_t n_serial_ports;
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
