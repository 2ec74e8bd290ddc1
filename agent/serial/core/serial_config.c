/* SPDX-License-Identifier: MIT */
/* The [serial.NAME] sections of the agent's config: one bridged tty or printer
 * each. */
#include "serial_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_util.h"

#define RECONNECT_MIN_DEFAULT_MS 100
#define RECONNECT_MAX_DEFAULT_MS 5000
#define RECONNECT_LIMIT_MS 3600000  /* an hour: beyond that it is a typo */
#define IDLE_TIMEOUT_LIMIT_S 604800 /* a week */

/* Indexes into serial_keys[] and serial_port_config.key_line[]. */
enum serial_key_index {
    KEY_DEVICE,
    KEY_LISTEN,
    KEY_CONNECT,
    KEY_MODE,
    KEY_KIND,
    KEY_LINE,
    KEY_FLOW,
    KEY_REPLACE_CLIENT,
    KEY_IDLE_TIMEOUT,
    KEY_ON_DEVICE_LOSS,
    KEY_RECONNECT_MIN,
    KEY_RECONNECT_MAX,
    KEY_ALLOW,
    KEY_RELAY_SECRET_FILE,
    KEY_AGENT_ID,
    KEY_COUNT
};

_Static_assert(KEY_COUNT <= SERIAL_KEY_SLOTS,
               "serial_port_config.key_line is too small");

typedef int (*serial_key_parser)(struct serial_port_config *port,
                                 const char *key, const char *value,
                                 struct config_parse *cp);

struct serial_key {
    const char *name;
    serial_key_parser parse;
};

static void fail(struct config_parse *cp, const struct serial_port_config *p,
                 const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "[serial.NAME] key: ..." or "[serial.NAME]: ..." at the parser's line. */
static void fail(struct config_parse *cp, const struct serial_port_config *p,
                 const char *key, const char *fmt, ...)
{
    char what[CONFIG_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    config_error(cp, "[serial.%s]%s%s: %s", p->name, key ? " " : "",
                 key ? key : "", what);
}

static int key_device(struct serial_port_config *p, const char *key,
                      const char *value, struct config_parse *cp)
{
    if (value[0] != '/') {
        fail(cp, p, key, "'%s' is not an absolute path", value);
        return -1;
    }
    p->device = strdup(value);
    if (!p->device) {
        fail(cp, p, key, "out of memory");
        return -1;
    }
    return 0;
}

/* A relay target name: what redir-relay accepts ([A-Za-z0-9._-]). */
static int parse_target(struct serial_port_config *p, const char *key,
                        const char *name, struct config_parse *cp)
{
    size_t n = strlen(name);

    if (n == 0 || n > RELAY_TARGET_MAX ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789._-") != n) {
        fail(cp, p, key,
             "relay target '%s' is not 1 to %d characters of A-Z a-z 0-9 . _ -",
             name, RELAY_TARGET_MAX);
        return -1;
    }
    memcpy(p->target, name, n + 1);
    return 0;
}

static int key_string(char **out, struct serial_port_config *p, const char *key,
                      const char *value, struct config_parse *cp)
{
    *out = strdup(value);
    if (!*out) {
        fail(cp, p, key, "out of memory");
        return -1;
    }
    return 0;
}

static int key_relay_secret_file(struct serial_port_config *p, const char *key,
                                 const char *value, struct config_parse *cp)
{
    if (value[0] != '/') {
        fail(cp, p, key, "'%s' is not an absolute path", value);
        return -1;
    }
    return key_string(&p->relay_secret_file, p, key, value, cp);
}

static int key_agent_id(struct serial_port_config *p, const char *key,
                        const char *value, struct config_parse *cp)
{
    size_t n = strlen(value);

    for (size_t i = 0; i < n; i++) {
        if (value[i] <= ' ' || value[i] > '~') {
            fail(cp, p, key, "'%s' has characters other than visible ASCII",
                 value);
            return -1;
        }
    }
    if (n == 0 || n > RELAY_ID_MAX) {
        fail(cp, p, key, "1 to %d characters", RELAY_ID_MAX);
        return -1;
    }
    return key_string(&p->agent_id, p, key, value, cp);
}

static int key_address(struct serial_port_config *p, const char *key,
                       const char *value, struct config_parse *cp)
{
    char reason[300];
    enum serial_peer peer =
        strcmp(key, "listen") == 0 ? SERIAL_PEER_LISTEN : SERIAL_PEER_CONNECT;
    int other_line =
        p->key_line[peer == SERIAL_PEER_LISTEN ? KEY_CONNECT : KEY_LISTEN];

    if (p->peer != SERIAL_PEER_NONE) {
        fail(cp, p, key,
             "'connect' and 'listen' are exclusive (the other is set on "
             "line %d)",
             other_line);
        return -1;
    }
    const char *slash = peer == SERIAL_PEER_CONNECT ? strchr(value, '/') : 0;
    char hp[HOSTPORT_HOST_MAX + 16];
    if (slash) { /* HOST:PORT/TARGET: a redir-relay serial target */
        if (parse_target(p, key, slash + 1, cp) < 0)
            return -1;
        snprintf(hp, sizeof(hp), "%.*s", (int)(slash - value), value);
        value = hp;
    }
    if (hostport_parse(value, &p->addr, reason, sizeof(reason)) < 0) {
        fail(cp, p, key, "%s", reason);
        return -1;
    }
    p->peer = peer;
    return 0;
}

static int key_mode(struct serial_port_config *p, const char *key,
                    const char *value, struct config_parse *cp)
{
    for (int m = SERIAL_MODE_RAW; m <= SERIAL_MODE_RFC2217; m++) {
        if (strcasecmp(value, serial_mode_name((enum serial_mode)m)) == 0) {
            p->mode = (enum serial_mode)m;
            return 0;
        }
    }
    fail(cp, p, key, "'%s' is not one of raw, telnet, rfc2217", value);
    return -1;
}

static int key_kind(struct serial_port_config *p, const char *key,
                    const char *value, struct config_parse *cp)
{
    static const char *const names[] = {"auto", "tty", "printer"};

    for (int k = SERIAL_KIND_AUTO; k <= SERIAL_KIND_PRINTER; k++) {
        if (strcasecmp(value, names[k]) == 0) {
            p->kind = (enum serial_kind)k;
            return 0;
        }
    }
    fail(cp, p, key, "'%s' is not one of auto, tty, printer", value);
    return -1;
}

static int key_line(struct serial_port_config *p, const char *key,
                    const char *value, struct config_parse *cp)
{
    char reason[300];

    if (serial_line_parse(value, &p->settings, reason, sizeof(reason)) < 0) {
        fail(cp, p, key, "%s", reason);
        return -1;
    }
    return 0;
}

static int key_flow(struct serial_port_config *p, const char *key,
                    const char *value, struct config_parse *cp)
{
    enum serial_flow flow;

    if (serial_flow_parse(value, &flow) < 0) {
        fail(cp, p, key, "'%s' is not one of none, rtscts, xonxoff", value);
        return -1;
    }
    p->settings.flow_in = flow;
    p->settings.flow_out = flow;
    return 0;
}

static int key_replace_client(struct serial_port_config *p, const char *key,
                              const char *value, struct config_parse *cp)
{
    if (config_parse_bool(value, &p->replace_client) < 0) {
        fail(cp, p, key, "'%s' is not yes or no", value);
        return -1;
    }
    return 0;
}

static int key_idle_timeout(struct serial_port_config *p, const char *key,
                            const char *value, struct config_parse *cp)
{
    if (config_parse_u32(value, 0, IDLE_TIMEOUT_LIMIT_S, &p->idle_timeout_s) <
        0) {
        fail(cp, p, key, "'%s' is not a number of seconds from 0 (off) to %d",
             value, IDLE_TIMEOUT_LIMIT_S);
        return -1;
    }
    return 0;
}

static int key_on_device_loss(struct serial_port_config *p, const char *key,
                              const char *value, struct config_parse *cp)
{
    if (strcasecmp(value, "close") == 0) {
        p->on_device_loss = SERIAL_LOSS_CLOSE;
    } else if (strcasecmp(value, "keep") == 0) {
        p->on_device_loss = SERIAL_LOSS_KEEP;
    } else {
        fail(cp, p, key, "'%s' is not close or keep", value);
        return -1;
    }
    return 0;
}

static int key_reconnect(struct serial_port_config *p, const char *key,
                         const char *value, struct config_parse *cp)
{
    uint32_t *out = strcmp(key, "reconnect_min_ms") == 0 ? &p->reconnect_min_ms
                                                         : &p->reconnect_max_ms;

    if (config_parse_u32(value, 1, RECONNECT_LIMIT_MS, out) < 0) {
        fail(cp, p, key, "'%s' is not a number of milliseconds from 1 to %d",
             value, RECONNECT_LIMIT_MS);
        return -1;
    }
    return 0;
}

static int key_allow(struct serial_port_config *p, const char *key,
                     const char *value, struct config_parse *cp)
{
    char why[160];

    if (strcmp(value, "any") == 0) {
        p->allow_any = true;
        return 0;
    }
    if (cidr_list_parse(value, &p->allow, why, sizeof(why)) < 0) {
        fail(cp, p, key, "%s", why);
        return -1;
    }
    return 0;
}

static const struct serial_key serial_keys[KEY_COUNT] = {
    [KEY_DEVICE] = {"device", key_device},
    [KEY_LISTEN] = {"listen", key_address},
    [KEY_CONNECT] = {"connect", key_address},
    [KEY_MODE] = {"mode", key_mode},
    [KEY_KIND] = {"kind", key_kind},
    [KEY_LINE] = {"line", key_line},
    [KEY_FLOW] = {"flow", key_flow},
    [KEY_REPLACE_CLIENT] = {"replace_client", key_replace_client},
    [KEY_IDLE_TIMEOUT] = {"idle_timeout", key_idle_timeout},
    [KEY_ON_DEVICE_LOSS] = {"on_device_loss", key_on_device_loss},
    [KEY_RECONNECT_MIN] = {"reconnect_min_ms", key_reconnect},
    [KEY_RECONNECT_MAX] = {"reconnect_max_ms", key_reconnect},
    [KEY_ALLOW] = {"allow", key_allow},
    [KEY_RELAY_SECRET_FILE] = {"relay_secret_file", key_relay_secret_file},
    [KEY_AGENT_ID] = {"agent_id", key_agent_id},
};

const char *serial_mode_name(enum serial_mode mode)
{
    static const char *const names[] = {
        [SERIAL_MODE_RAW] = "raw",
        [SERIAL_MODE_TELNET] = "telnet",
        [SERIAL_MODE_RFC2217] = "rfc2217",
    };
    return (unsigned)mode <= SERIAL_MODE_RFC2217 ? names[mode] : "?";
}

static struct serial_port_config *find_port(struct serial_config *sc,
                                            const char *name)
{
    for (size_t i = 0; i < sc->n_ports; i++)
        if (strcmp(sc->ports[i].name, name) == 0)
            return &sc->ports[i];
    return NULL;
}

static bool name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > SERIAL_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' &&
            name[i] != '_')
            return false;
    return true;
}

static void port_defaults(struct serial_port_config *p)
{
    memset(p, 0, sizeof(*p));
    p->kind = SERIAL_KIND_AUTO;
    p->mode = SERIAL_MODE_RAW;
    p->peer = SERIAL_PEER_NONE;
    serial_line_default(&p->settings);
    /* a second client is turned away while the first is connected: BREAK
     * and DTR reach the device, so taking a port over is not for anyone
     * who can connect (a dead client is noticed by keepalive) */
    p->replace_client = false;
    p->on_device_loss = SERIAL_LOSS_CLOSE;
    p->reconnect_min_ms = RECONNECT_MIN_DEFAULT_MS;
    p->reconnect_max_ms = RECONNECT_MAX_DEFAULT_MS;
}

int serial_config_section(struct serial_config *sc, struct config_parse *cp,
                          const char *name)
{
    struct serial_port_config *p = find_port(sc, name);

    if (!name_ok(name)) {
        config_error(cp,
                     "[serial.%s]: NAME must be 1 to %d letters, digits, '-' "
                     "or '_'",
                     name, SERIAL_NAME_MAX);
        return -1;
    }
    if (p) {
        config_error(cp, "[serial.%s]: section repeated (first on line %d)",
                     name, p->line);
        return -1;
    }
    if (sc->n_ports == SERIAL_CONFIG_MAX_PORTS) {
        config_error(cp, "[serial.%s]: more than %d serial ports", name,
                     SERIAL_CONFIG_MAX_PORTS);
        return -1;
    }
    p = realloc(sc->ports, (sc->n_ports + 1) * sizeof(*sc->ports));
    if (!p) {
        config_error(cp, "out of memory");
        return -1;
    }
    sc->ports = p;
    p += sc->n_ports;
    port_defaults(p);
    p->name = strdup(name);
    if (!p->name) {
        config_error(cp, "out of memory");
        return -1;
    }
    p->line = cp->line;
    sc->n_ports++;
    return 0;
}

int serial_config_key(struct serial_config *sc, struct config_parse *cp,
                      const char *name, const char *key, const char *value)
{
    struct serial_port_config *p = find_port(sc, name);

    if (!p) {
        /* the header was refused (and reported), or too long for the
         * reader to hand it over */
        if (!name_ok(name))
            config_error(cp,
                         "[serial.%.40s]: NAME must be 1 to %d letters, "
                         "digits, '-' or '_'",
                         name, SERIAL_NAME_MAX);
        else
            config_error(cp, "[serial.%s]: not a valid section", name);
        return -1;
    }
    char section[SERIAL_NAME_MAX + 16];
    snprintf(section, sizeof(section), "serial.%s", name);
    if (*value) {
        int rc = tls_config_key(&p->tls, cp, section, key, value);
        if (rc >= 0)
            return rc ? 0 : -1;
    }
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (strcmp(serial_keys[i].name, key) != 0)
            continue;
        if (!*value) {
            fail(cp, p, key, "empty value");
            return -1;
        }
        if (p->key_line[i]) {
            fail(cp, p, key, "set twice (first on line %d)", p->key_line[i]);
            return -1;
        }
        p->key_line[i] = cp->line;
        return serial_keys[i].parse(p, key, value, cp);
    }
    fail(cp, p, NULL, "unknown key '%s'", key);
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
    static const struct {
        int key;
        const char *name;
    } tty_only[] = {{KEY_LINE, "line"}, {KEY_FLOW, "flow"}};

    if (p->mode == SERIAL_MODE_RFC2217) {
        cp->line = p->key_line[KEY_MODE];
        fail(cp, p, "mode",
             "rfc2217 needs a tty; %s is a printer (raw or telnet only)",
             p->device);
        return -1;
    }
    for (size_t i = 0; i < 2; i++) {
        if (p->key_line[tty_only[i].key]) {
            cp->line = p->key_line[tty_only[i].key];
            fail(cp, p, tty_only[i].name,
                 "%s is a printer: it has no line settings", p->device);
            return -1;
        }
    }
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
    if (p->key_line[KEY_ALLOW] && p->peer != SERIAL_PEER_LISTEN) {
        cp->line = p->key_line[KEY_ALLOW];
        fail(cp, p, "allow", "only for listen (who may connect)");
        return -1;
    }
    if (p->peer != SERIAL_PEER_LISTEN || p->tls.enabled ||
        p->key_line[KEY_ALLOW] || cidr_host_is_loopback(p->addr.host))
        return 0;
    cp->line = p->key_line[KEY_LISTEN];
    fail(cp, p, "listen",
         "%s takes a connection from anyone who can reach this machine; set "
         "allow = the hypervisors' addresses (or allow = any), or tls = yes "
         "with certificates",
         hostport_str(&p->addr, addr, sizeof(addr)));
    return -1;
}

/* connect = HOST:PORT/TARGET: the relay's serial target speaks RFC 2217
 * to us, and we must prove who we are (a secret, or TLS certificates). */
static int finish_relay(struct serial_port_config *p, struct config_parse *cp)
{
    static const int relay_only[] = {KEY_RELAY_SECRET_FILE, KEY_AGENT_ID};

    if (!p->target[0]) {
        for (size_t i = 0; i < 2; i++) {
            if (p->key_line[relay_only[i]]) {
                cp->line = p->key_line[relay_only[i]];
                fail(cp, p, serial_keys[relay_only[i]].name,
                     "only with connect = HOST:PORT/TARGET (a relay)");
                return -1;
            }
        }
        return 0;
    }
    if (p->kind == SERIAL_KIND_PRINTER) {
        cp->line = p->key_line[KEY_CONNECT];
        fail(cp, p, "connect",
             "%s is a printer: relay targets are ttys (printers reach a "
             "relay only as plain TCP for now)",
             p->device);
        return -1;
    }
    if (p->key_line[KEY_MODE] && p->mode != SERIAL_MODE_RFC2217) {
        cp->line = p->key_line[KEY_MODE];
        fail(cp, p, "mode",
             "a relay target speaks rfc2217 (the guest's line settings "
             "come that way); leave mode out or set rfc2217");
        return -1;
    }
    p->mode = SERIAL_MODE_RFC2217;
    if (!p->relay_secret_file && !p->tls.enabled) {
        cp->line = p->key_line[KEY_CONNECT];
        fail(cp, p, "connect",
             "a relay needs relay_secret_file = /PATH or tls = yes with "
             "certificates");
        return -1;
    }
    return 0;
}

static int finish_port(struct serial_port_config *p, struct config_parse *cp)
{
    cp->line = p->line;
    if (!p->device) {
        fail(cp, p, NULL, "no 'device' set");
        return -1;
    }
    if (p->peer == SERIAL_PEER_NONE) {
        fail(cp, p, NULL, "set 'listen' or 'connect'");
        return -1;
    }
    if (p->reconnect_min_ms > p->reconnect_max_ms) {
        cp->line = p->key_line[KEY_RECONNECT_MAX]
                       ? p->key_line[KEY_RECONNECT_MAX]
                       : p->line;
        fail(cp, p, NULL,
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
        if (strcmp(p->device, q->device) == 0) {
            cp->line = p->key_line[KEY_DEVICE];
            fail(cp, p, "device", "%s is already used by [serial.%s] (line %d)",
                 p->device, q->name, q->key_line[KEY_DEVICE]);
            return -1;
        }
        if (p->peer == SERIAL_PEER_LISTEN && q->peer == SERIAL_PEER_LISTEN &&
            hostport_same_listen(&p->addr, &q->addr)) {
            cp->line = p->key_line[KEY_LISTEN];
            fail(cp, p, "listen", "%s is already used by [serial.%s] (line %d)",
                 hostport_str(&p->addr, addr, sizeof(addr)), q->name,
                 q->key_line[KEY_LISTEN]);
            return -1;
        }
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

int serial_config_listen_line(const struct serial_port_config *p)
{
    return p->key_line[KEY_LISTEN];
}

void serial_config_free(struct serial_config *sc)
{
    for (size_t i = 0; i < sc->n_ports; i++) {
        free(sc->ports[i].name);
        free(sc->ports[i].device);
        free(sc->ports[i].relay_secret_file);
        free(sc->ports[i].agent_id);
        tls_config_free(&sc->ports[i].tls);
    }
    free(sc->ports);
    sc->ports = NULL;
    sc->n_ports = 0;
}

static bool str_equal(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool serial_port_config_equal(const struct serial_port_config *a,
                              const struct serial_port_config *b)
{
    return str_equal(a->name, b->name) && str_equal(a->device, b->device) &&
           a->kind == b->kind && a->mode == b->mode && a->peer == b->peer &&
           a->addr.port == b->addr.port &&
           strcmp(a->addr.host, b->addr.host) == 0 &&
           serial_line_equal(&a->settings, &b->settings) &&
           a->replace_client == b->replace_client &&
           a->idle_timeout_s == b->idle_timeout_s &&
           a->on_device_loss == b->on_device_loss &&
           a->reconnect_min_ms == b->reconnect_min_ms &&
           a->reconnect_max_ms == b->reconnect_max_ms &&
           a->allow_any == b->allow_any && a->allow.n == b->allow.n &&
           memcmp(a->allow.nets, b->allow.nets,
                  a->allow.n * sizeof(a->allow.nets[0])) == 0 &&
           tls_config_equal(&a->tls, &b->tls) &&
           strcmp(a->target, b->target) == 0 &&
           str_equal(a->relay_secret_file, b->relay_secret_file) &&
           str_equal(a->agent_id, b->agent_id);
}
