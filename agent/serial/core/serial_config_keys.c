/* SPDX-License-Identifier: MIT */
/* The keys of a [serial.NAME] section, each read and checked on its own
 * (device, listen/connect, mode, kind, line, flow, timeouts, allow, relay
 * secret and agent id). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_util.h"
#include "serial_config_int.h"

#define RECONNECT_LIMIT_MS 3600000  /* an hour: beyond that it is a typo */
#define IDLE_TIMEOUT_LIMIT_S 604800 /* a week */

static int key_device(struct serial_port_config *p, const char *key,
                      const char *value, struct config_parse *cp)
{
    if (value[0] != '/') {
        serial_config__fail(cp, p, key, "'%s' is not an absolute path", value);
        return -1;
    }
    p->device = strdup(value);
    if (!p->device) {
        serial_config__fail(cp, p, key, "out of memory");
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
        serial_config__fail(
            cp, p, key,
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
        serial_config__fail(cp, p, key, "out of memory");
        return -1;
    }
    return 0;
}

static int key_relay_secret_file(struct serial_port_config *p, const char *key,
                                 const char *value, struct config_parse *cp)
{
    if (value[0] != '/') {
        serial_config__fail(cp, p, key, "'%s' is not an absolute path", value);
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
            serial_config__fail(cp, p, key,
                                "'%s' has characters other than visible ASCII",
                                value);
            return -1;
        }
    }
    if (n == 0 || n > RELAY_ID_MAX) {
        serial_config__fail(cp, p, key, "1 to %d characters", RELAY_ID_MAX);
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
        serial_config__fail(
            cp, p, key,
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
        serial_config__fail(cp, p, key, "%s", reason);
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
    serial_config__fail(cp, p, key, "'%s' is not one of raw, telnet, rfc2217",
                        value);
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
    serial_config__fail(cp, p, key, "'%s' is not one of auto, tty, printer",
                        value);
    return -1;
}

static int key_line(struct serial_port_config *p, const char *key,
                    const char *value, struct config_parse *cp)
{
    char reason[300];

    if (serial_line_parse(value, &p->settings, reason, sizeof(reason)) < 0) {
        serial_config__fail(cp, p, key, "%s", reason);
        return -1;
    }
    return 0;
}

static int key_flow(struct serial_port_config *p, const char *key,
                    const char *value, struct config_parse *cp)
{
    enum serial_flow flow;

    if (serial_flow_parse(value, &flow) < 0) {
        serial_config__fail(cp, p, key,
                            "'%s' is not one of none, rtscts, xonxoff", value);
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
        serial_config__fail(cp, p, key, "'%s' is not yes or no", value);
        return -1;
    }
    return 0;
}

static int key_idle_timeout(struct serial_port_config *p, const char *key,
                            const char *value, struct config_parse *cp)
{
    if (config_parse_u32(value, 0, IDLE_TIMEOUT_LIMIT_S, &p->idle_timeout_s) <
        0) {
        serial_config__fail(
            cp, p, key, "'%s' is not a number of seconds from 0 (off) to %d",
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
        serial_config__fail(cp, p, key, "'%s' is not close or keep", value);
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
        serial_config__fail(cp, p, key,
                            "'%s' is not a number of milliseconds from 1 to %d",
                            value, RECONNECT_LIMIT_MS);
        return -1;
    }
    return 0;
}

static int key_allow(struct serial_port_config *p, const char *key,
                     const char *value, struct config_parse *cp)
{
    char why[160];

    if (cidr_allow_parse(value, &p->allow_any, &p->allow, why, sizeof(why)) <
        0) {
        serial_config__fail(cp, p, key, "%s", why);
        return -1;
    }
    return 0;
}

/* transport = raw | lz4, as [usb] transport (lz4: relay targets only). */
static int key_transport(struct serial_port_config *p, const char *key,
                         const char *value, struct config_parse *cp)
{
    if (strcasecmp(value, "raw") == 0 || strcasecmp(value, "lz4") == 0) {
        p->lz4 = strcasecmp(value, "lz4") == 0;
        return 0;
    }
    serial_config__fail(cp, p, key, "'%s' is not raw or lz4", value);
    return -1;
}

const struct serial_key serial_config__keys[KEY_COUNT] = {
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
    [KEY_TRANSPORT] = {"transport", key_transport},
};
