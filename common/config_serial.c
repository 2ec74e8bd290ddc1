/* The [serial.NAME] sections of the agent's config: one bridged tty or printer
 * each. */
#include "config_serial.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
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
    KEY_COUNT
};

_Static_assert(KEY_COUNT <= SERIAL_KEY_SLOTS,
               "serial_port_config.key_line is too small");

typedef int (*serial_key_parser)(struct serial_port_config *port,
                                 const char *key, const char *value, char *why,
                                 size_t why_len);

struct serial_key {
    const char *name;
    serial_key_parser parse;
};

static void fail(char *why, size_t why_len, const struct serial_port_config *p,
                 const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* "[serial.NAME] key: ..." or "[serial.NAME]: ..." */
static void fail(char *why, size_t why_len, const struct serial_port_config *p,
                 const char *key, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(why, why_len, "[serial.%s]%s%s: ", p->name, key ? " " : "",
                     key ? key : "");

    if (n < 0 || (size_t)n >= why_len)
        return;
    va_start(ap, fmt);
    vsnprintf(why + n, why_len - (size_t)n, fmt, ap);
    va_end(ap);
}

static int parse_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0 || strcasecmp(value, no[i]) == 0) {
            *out = strcasecmp(value, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

static int key_device(struct serial_port_config *p, const char *key,
                      const char *value, char *why, size_t why_len)
{
    if (value[0] != '/') {
        fail(why, why_len, p, key, "'%s' is not an absolute path", value);
        return -1;
    }
    p->device = strdup(value);
    if (!p->device) {
        fail(why, why_len, p, key, "out of memory");
        return -1;
    }
    return 0;
}

static int key_address(struct serial_port_config *p, const char *key,
                       const char *value, char *why, size_t why_len)
{
    char reason[300];
    enum serial_peer peer =
        strcmp(key, "listen") == 0 ? SERIAL_PEER_LISTEN : SERIAL_PEER_CONNECT;
    int other_line =
        p->key_line[peer == SERIAL_PEER_LISTEN ? KEY_CONNECT : KEY_LISTEN];

    if (p->peer != SERIAL_PEER_NONE) {
        fail(why, why_len, p, key,
             "'connect' and 'listen' are exclusive (the other is set on "
             "line %d)",
             other_line);
        return -1;
    }
    if (hostport_parse(value, &p->addr, reason, sizeof(reason)) < 0) {
        fail(why, why_len, p, key, "%s", reason);
        return -1;
    }
    p->peer = peer;
    return 0;
}

static int key_mode(struct serial_port_config *p, const char *key,
                    const char *value, char *why, size_t why_len)
{
    for (int m = SERIAL_MODE_RAW; m <= SERIAL_MODE_RFC2217; m++) {
        if (strcasecmp(value, serial_mode_name((enum serial_mode)m)) == 0) {
            p->mode = (enum serial_mode)m;
            return 0;
        }
    }
    fail(why, why_len, p, key, "'%s' is not one of raw, telnet, rfc2217",
         value);
    return -1;
}

static int key_kind(struct serial_port_config *p, const char *key,
                    const char *value, char *why, size_t why_len)
{
    static const char *const names[] = {"auto", "tty", "printer"};

    for (int k = SERIAL_KIND_AUTO; k <= SERIAL_KIND_PRINTER; k++) {
        if (strcasecmp(value, names[k]) == 0) {
            p->kind = (enum serial_kind)k;
            return 0;
        }
    }
    fail(why, why_len, p, key, "'%s' is not one of auto, tty, printer", value);
    return -1;
}

static int key_line(struct serial_port_config *p, const char *key,
                    const char *value, char *why, size_t why_len)
{
    char reason[300];

    if (serial_line_parse(value, &p->settings, reason, sizeof(reason)) < 0) {
        fail(why, why_len, p, key, "%s", reason);
        return -1;
    }
    return 0;
}

static int key_flow(struct serial_port_config *p, const char *key,
                    const char *value, char *why, size_t why_len)
{
    enum serial_flow flow;

    if (serial_flow_parse(value, &flow) < 0) {
        fail(why, why_len, p, key, "'%s' is not one of none, rtscts, xonxoff",
             value);
        return -1;
    }
    p->settings.flow_in = flow;
    p->settings.flow_out = flow;
    return 0;
}

static int key_replace_client(struct serial_port_config *p, const char *key,
                              const char *value, char *why, size_t why_len)
{
    if (parse_bool(value, &p->replace_client) < 0) {
        fail(why, why_len, p, key, "'%s' is not yes or no", value);
        return -1;
    }
    return 0;
}

static int key_idle_timeout(struct serial_port_config *p, const char *key,
                            const char *value, char *why, size_t why_len)
{
    if (config_parse_u32(value, 0, IDLE_TIMEOUT_LIMIT_S, &p->idle_timeout_s) <
        0) {
        fail(why, why_len, p, key,
             "'%s' is not a number of seconds from 0 (off) to %d", value,
             IDLE_TIMEOUT_LIMIT_S);
        return -1;
    }
    return 0;
}

static int key_on_device_loss(struct serial_port_config *p, const char *key,
                              const char *value, char *why, size_t why_len)
{
    if (strcasecmp(value, "close") == 0) {
        p->on_device_loss = SERIAL_LOSS_CLOSE;
    } else if (strcasecmp(value, "keep") == 0) {
        p->on_device_loss = SERIAL_LOSS_KEEP;
    } else {
        fail(why, why_len, p, key, "'%s' is not close or keep", value);
        return -1;
    }
    return 0;
}

static int key_reconnect(struct serial_port_config *p, const char *key,
                         const char *value, char *why, size_t why_len)
{
    uint32_t *out = strcmp(key, "reconnect_min_ms") == 0 ? &p->reconnect_min_ms
                                                         : &p->reconnect_max_ms;

    if (config_parse_u32(value, 1, RECONNECT_LIMIT_MS, out) < 0) {
        fail(why, why_len, p, key,
             "'%s' is not a number of milliseconds from 1 to %d", value,
             RECONNECT_LIMIT_MS);
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

static struct serial_port_config *find_port(struct agent_config *cfg,
                                            const char *name)
{
    for (size_t i = 0; i < cfg->n_serial_ports; i++)
        if (strcmp(cfg->serial_ports[i].name, name) == 0)
            return &cfg->serial_ports[i];
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
    p->replace_client = true;
    p->on_device_loss = SERIAL_LOSS_CLOSE;
    p->reconnect_min_ms = RECONNECT_MIN_DEFAULT_MS;
    p->reconnect_max_ms = RECONNECT_MAX_DEFAULT_MS;
}

int config_serial_section(struct agent_config *cfg, const char *name, int line,
                          char *why, size_t why_len)
{
    struct serial_port_config *p = find_port(cfg, name);

    if (!name_ok(name)) {
        snprintf(why, why_len,
                 "[serial.%s]: NAME must be 1 to %d letters, digits, '-' or "
                 "'_'",
                 name, SERIAL_NAME_MAX);
        return -1;
    }
    if (p) {
        snprintf(why, why_len,
                 "[serial.%s]: section repeated (first on line "
                 "%d)",
                 name, p->line);
        return -1;
    }
    if (cfg->n_serial_ports == CONFIG_MAX_SERIAL_PORTS) {
        snprintf(why, why_len, "[serial.%s]: more than %d serial ports", name,
                 CONFIG_MAX_SERIAL_PORTS);
        return -1;
    }
    p = realloc(cfg->serial_ports,
                (cfg->n_serial_ports + 1) * sizeof(*cfg->serial_ports));
    if (!p) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    cfg->serial_ports = p;
    p += cfg->n_serial_ports;
    port_defaults(p);
    p->name = strdup(name);
    if (!p->name) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    p->line = line;
    cfg->n_serial_ports++;
    return 0;
}

int config_serial_key(struct agent_config *cfg, const char *name,
                      const char *key, const char *value, int line, char *why,
                      size_t why_len)
{
    struct serial_port_config *p = find_port(cfg, name);

    if (!p) {
        /* the header was refused (and reported), or too long for the
         * reader to hand it over */
        if (!name_ok(name))
            snprintf(why, why_len,
                     "[serial.%.40s]: NAME must be 1 to %d letters, digits, "
                     "'-' or '_'",
                     name, SERIAL_NAME_MAX);
        else
            snprintf(why, why_len, "[serial.%s]: not a valid section", name);
        return -1;
    }
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (strcmp(serial_keys[i].name, key) != 0)
            continue;
        if (!*value) {
            fail(why, why_len, p, key, "empty value");
            return -1;
        }
        if (p->key_line[i]) {
            fail(why, why_len, p, key, "set twice (first on line %d)",
                 p->key_line[i]);
            return -1;
        }
        p->key_line[i] = line;
        return serial_keys[i].parse(p, key, value, why, why_len);
    }
    fail(why, why_len, p, NULL, "unknown key '%s'", key);
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

static int finish_printer(struct serial_port_config *p, char *why,
                          size_t why_len, int *line)
{
    static const struct {
        int key;
        const char *name;
    } tty_only[] = {{KEY_LINE, "line"}, {KEY_FLOW, "flow"}};

    if (p->mode == SERIAL_MODE_RFC2217) {
        *line = p->key_line[KEY_MODE];
        fail(why, why_len, p, "mode",
             "rfc2217 needs a tty; %s is a printer (raw or telnet only)",
             p->device);
        return -1;
    }
    for (size_t i = 0; i < 2; i++) {
        if (p->key_line[tty_only[i].key]) {
            *line = p->key_line[tty_only[i].key];
            fail(why, why_len, p, tty_only[i].name,
                 "%s is a printer: it has no line settings", p->device);
            return -1;
        }
    }
    return 0;
}

static int finish_port(struct serial_port_config *p, char *why, size_t why_len,
                       int *line)
{
    *line = p->line;
    if (!p->device) {
        fail(why, why_len, p, NULL, "no 'device' set");
        return -1;
    }
    if (p->peer == SERIAL_PEER_NONE) {
        fail(why, why_len, p, NULL, "set 'listen' or 'connect'");
        return -1;
    }
    if (p->reconnect_min_ms > p->reconnect_max_ms) {
        *line = p->key_line[KEY_RECONNECT_MAX] ? p->key_line[KEY_RECONNECT_MAX]
                                               : p->line;
        fail(why, why_len, p, NULL,
             "reconnect_min_ms (%u) is larger than reconnect_max_ms (%u)",
             p->reconnect_min_ms, p->reconnect_max_ms);
        return -1;
    }
    if (p->kind == SERIAL_KIND_AUTO)
        p->kind =
            is_printer_name(p->device) ? SERIAL_KIND_PRINTER : SERIAL_KIND_TTY;
    if (p->kind == SERIAL_KIND_PRINTER)
        return finish_printer(p, why, why_len, line);
    return 0;
}

static bool same_listen(const struct hostport *a, const struct hostport *b)
{
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

/* Two ports on one device or one listen address cannot both work. */
static int finish_conflicts(const struct agent_config *cfg, size_t i, char *why,
                            size_t why_len, int *line)
{
    const struct serial_port_config *p = &cfg->serial_ports[i];
    char addr[HOSTPORT_HOST_MAX + 8];

    for (size_t j = 0; j < i; j++) {
        const struct serial_port_config *q = &cfg->serial_ports[j];
        if (strcmp(p->device, q->device) == 0) {
            *line = p->key_line[KEY_DEVICE];
            fail(why, why_len, p, "device",
                 "%s is already used by [serial.%s] (line %d)", p->device,
                 q->name, q->key_line[KEY_DEVICE]);
            return -1;
        }
        if (p->peer == SERIAL_PEER_LISTEN && q->peer == SERIAL_PEER_LISTEN &&
            same_listen(&p->addr, &q->addr)) {
            *line = p->key_line[KEY_LISTEN];
            fail(why, why_len, p, "listen",
                 "%s is already used by [serial.%s] (line %d)",
                 hostport_str(&p->addr, addr, sizeof(addr)), q->name,
                 q->key_line[KEY_LISTEN]);
            return -1;
        }
    }
    for (size_t s = 0; cfg->usb_mode == USB_PEER_LISTEN && s < cfg->usb_nslots;
         s++) {
        if (p->peer == SERIAL_PEER_LISTEN &&
            same_listen(&p->addr, &cfg->usb_slots[s])) {
            *line = p->key_line[KEY_LISTEN];
            fail(why, why_len, p, "listen", "%s is already a [usb] listen slot",
                 hostport_str(&p->addr, addr, sizeof(addr)));
            return -1;
        }
    }
    return 0;
}

int config_serial_finish(struct agent_config *cfg, char *why, size_t why_len,
                         int *line)
{
    for (size_t i = 0; i < cfg->n_serial_ports; i++) {
        if (finish_port(&cfg->serial_ports[i], why, why_len, line) < 0 ||
            finish_conflicts(cfg, i, why, why_len, line) < 0)
            return -1;
    }
    return 0;
}

void config_serial_free(struct agent_config *cfg)
{
    for (size_t i = 0; i < cfg->n_serial_ports; i++) {
        free(cfg->serial_ports[i].name);
        free(cfg->serial_ports[i].device);
    }
    free(cfg->serial_ports);
    cfg->serial_ports = NULL;
    cfg->n_serial_ports = 0;
}
