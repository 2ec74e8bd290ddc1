/* SPDX-License-Identifier: MIT */
/* The [serial.NAME] sections checked once read: each port's settings
 * together (a device and a peer, printers, relay targets, who may
 * connect) and the ports against each other (one device, one address). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config_util.h"
#include "serial_config_int.h"

static int fail_at_key(struct config_parse *cp,
                       const struct serial_port_config *p,
                       enum serial_key_index key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reports a problem with key where it was set, under its name; -1. */
static int fail_at_key(struct config_parse *cp,
                       const struct serial_port_config *p,
                       enum serial_key_index key, const char *fmt, ...)
{
    char what[CONFIG_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    cp->line = p->key_line[key];
    serial_config__fail(cp, p, serial_config__keys[key].name, "%s", what);
    return -1;
}

/* /dev/lp0, /dev/usb/lp3: the kernel's printer class devices. */
static bool is_printer_name(const char *path)
{
    const char *base = strrchr(path, '/');

    base = base ? base + 1 : path;
    if (strncmp(base, "lp", 2) != 0 || !base[2])
        return false;
    for (const char *c = base + 2; *c; c++)
        if (!isdigit((unsigned char)*c))
            return false;
    return true;
}

static int finish_printer(struct serial_port_config *p, struct config_parse *cp)
{
    static const enum serial_key_index tty_only[] = {KEY_LINE, KEY_FLOW};

    if (p->mode == SERIAL_MODE_RFC2217)
        return fail_at_key(
            cp, p, KEY_MODE,
            "rfc2217 needs a tty; %s is a printer (raw or telnet only)",
            p->device);
    for (size_t i = 0; i < 2; i++)
        if (p->key_line[tty_only[i]])
            return fail_at_key(cp, p, tty_only[i],
                               "%s is a printer: it has no line settings",
                               p->device);
    return 0;
}

/* A listener others can reach must say whom it lets in: the port's BREAK,
 * DTR and data are for the VM's application, not for anyone. */
static int finish_security(struct serial_port_config *p,
                           struct config_parse *cp)
{
    char section[SERIAL_NAME_MAX + 16], addr[HOSTPORT_HOST_MAX + 8];

    snprintf(section, sizeof(section), "serial.%s", p->name);
    if (tls_config_finish(&p->tls, cp, section, p->line) < 0)
        return -1;
    if (p->key_line[KEY_ALLOW] && p->peer != SERIAL_PEER_LISTEN)
        return fail_at_key(cp, p, KEY_ALLOW,
                           "only for listen (who may connect)");
    if (p->peer != SERIAL_PEER_LISTEN || p->tls.enabled ||
        p->key_line[KEY_ALLOW] || cidr_host_is_loopback(p->addr.host))
        return 0;
    return fail_at_key(
        cp, p, KEY_LISTEN,
        "%s takes a connection from anyone who can reach this machine; set "
        "allow = the hypervisors' addresses (or allow = any), or tls = yes "
        "with certificates",
        hostport_str(&p->addr, addr, sizeof(addr)));
}

/* connect = HOST:PORT/TARGET: the relay's serial target speaks RFC 2217
 * to us (to a printer port too), and we must prove who we are (a secret,
 * or TLS certificates). */
static int finish_relay(struct serial_port_config *p, struct config_parse *cp)
{
    static const enum serial_key_index relay_only[] = {KEY_RELAY_SECRET_FILE,
                                                       KEY_AGENT_ID};

    if (!p->target[0]) {
        for (size_t i = 0; i < 2; i++)
            if (p->key_line[relay_only[i]])
                return fail_at_key(
                    cp, p, relay_only[i],
                    "only with connect = HOST:PORT/TARGET (a relay)");
        if (p->lz4) /* frames only a relay decodes */
            return fail_at_key(
                cp, p, KEY_TRANSPORT,
                "lz4 only with connect = HOST:PORT/TARGET (a relay)");
        return 0;
    }
    /* a printer too: the guest's settings are answered and not applied
     * (serial_outputs.c), its bytes go to the printer, none come back */
    if (p->key_line[KEY_MODE] && p->mode != SERIAL_MODE_RFC2217)
        return fail_at_key(cp, p, KEY_MODE,
                           "a relay target speaks rfc2217 (the guest's line "
                           "settings come that way); leave mode out or set "
                           "rfc2217");
    p->mode = SERIAL_MODE_RFC2217;
    if (!p->relay_secret_file && !p->tls.enabled)
        return fail_at_key(cp, p, KEY_CONNECT,
                           "a relay needs relay_secret_file = /PATH or tls = "
                           "yes with certificates");
    return 0;
}

static int finish_port(struct serial_port_config *p, struct config_parse *cp)
{
    cp->line = p->line;
    if (!p->device) {
        serial_config__fail(cp, p, NULL, "no 'device' set");
        return -1;
    }
    if (p->peer == SERIAL_PEER_NONE) {
        serial_config__fail(cp, p, NULL, "set 'listen' or 'connect'");
        return -1;
    }
    if (p->reconnect_min_ms > p->reconnect_max_ms) {
        cp->line = p->key_line[KEY_RECONNECT_MAX]
                       ? p->key_line[KEY_RECONNECT_MAX]
                       : p->line;
        serial_config__fail(
            cp, p, NULL,
            "reconnect_min_ms (%u) is larger than reconnect_max_ms (%u)",
            p->reconnect_min_ms, p->reconnect_max_ms);
        return -1;
    }
    if (p->kind == SERIAL_KIND_AUTO)
        p->kind =
            is_printer_name(p->device) ? SERIAL_KIND_PRINTER : SERIAL_KIND_TTY;
    if (p->kind == SERIAL_KIND_PRINTER && finish_printer(p, cp) < 0)
        return -1;
    if (finish_relay(p, cp) < 0)
        return -1;
    return finish_security(p, cp);
}

/* Two ports on one device or one listen address cannot both work. */
static int finish_conflicts(const struct serial_config *sc, size_t i,
                            struct config_parse *cp)
{
    const struct serial_port_config *p = &sc->ports[i];
    char addr[HOSTPORT_HOST_MAX + 8];

    for (size_t j = 0; j < i; j++) {
        const struct serial_port_config *q = &sc->ports[j];
        if (strcmp(p->device, q->device) == 0)
            return fail_at_key(cp, p, KEY_DEVICE,
                               "%s is already used by [serial.%s] (line %d)",
                               p->device, q->name, q->key_line[KEY_DEVICE]);
        if (p->peer == SERIAL_PEER_LISTEN && q->peer == SERIAL_PEER_LISTEN &&
            hostport_same_listen(&p->addr, &q->addr))
            return fail_at_key(cp, p, KEY_LISTEN,
                               "%s is already used by [serial.%s] (line %d)",
                               hostport_str(&p->addr, addr, sizeof(addr)),
                               q->name, q->key_line[KEY_LISTEN]);
    }
    return 0;
}

int serial_config_finish(struct serial_config *sc, struct config_parse *cp)
{
    for (size_t i = 0; i < sc->n_ports; i++) {
        if (finish_port(&sc->ports[i], cp) < 0 ||
            finish_conflicts(sc, i, cp) < 0)
            return -1;
    }
    return 0;
}
