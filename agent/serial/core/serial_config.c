/* SPDX-License-Identifier: MIT */
/* The [serial.NAME] sections of the agent's config: one bridged tty or printer
 * each. This file: sections, keys handed to their parsers
 * (serial_config_keys.c), free and compare; the checks once all is read
 * are in serial_config_check.c. */
#include "serial_config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_util.h"
#include "serial_config_int.h"

#define RECONNECT_MIN_DEFAULT_MS 100
#define RECONNECT_MAX_DEFAULT_MS 5000

/* "[serial.NAME] key: ..." or "[serial.NAME]: ..." at the parser's line. */
void serial_config__fail(struct config_parse *cp,
                         const struct serial_port_config *p, const char *key,
                         const char *fmt, ...)
{
    char what[CONFIG_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    config_error(cp, "[serial.%s]%s%s: %s", p->name, key ? " " : "",
                 key ? key : "", what);
}

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
        if (strcmp(serial_config__keys[i].name, key) != 0)
            continue;
        if (!*value) {
            serial_config__fail(cp, p, key, "empty value");
            return -1;
        }
        if (p->key_line[i]) {
            serial_config__fail(cp, p, key, "set twice (first on line %d)",
                                p->key_line[i]);
            return -1;
        }
        p->key_line[i] = cp->line;
        return serial_config__keys[i].parse(p, key, value, cp);
    }
    serial_config__fail(cp, p, NULL, "unknown key '%s'", key);
    return -1;
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
           str_equal(a->agent_id, b->agent_id) && a->lz4 == b->lz4;
}
