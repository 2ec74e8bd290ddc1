/* SPDX-License-Identifier: MIT */
/* The agent's configuration: /etc/redir-agent.ini parsed into a new struct
 * (at start and on every reload). */
#include "config.h"

#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SERIAL_SECTION_PREFIX "serial."
#define UNIX_PATH_MAX 108 /* sun_path */

/* One parse of the file. only_control_socket: the "status" client's
 * reading, which ignores everything else. */
struct agent_parse {
    struct config_parse p;
    struct agent_config *cfg;
    struct usb_config_lines usb_lines;
    int seen_log_level, seen_control_socket, seen_control_group;
    int seen_allow_force, seen_metrics;
    bool only_control_socket;
};

static bool is_serial_section(const char *section)
{
    return strncmp(section, SERIAL_SECTION_PREFIX,
                   strlen(SERIAL_SECTION_PREFIX)) == 0;
}

static int set_once(struct agent_parse *a, int *seen, const char *name)
{
    if (*seen) {
        config_error(&a->p, "[agent] %s: set twice (first on line %d)", name,
                     *seen);
        return 0;
    }
    *seen = a->p.line;
    return 1;
}

static int parse_control_socket(struct agent_parse *a, const char *value)
{
    if (!set_once(a, &a->seen_control_socket, "control_socket"))
        return 0;
    if (value[0] != '/' || strlen(value) >= UNIX_PATH_MAX) {
        config_error(&a->p,
                     "[agent] control_socket: '%s' is not an absolute path "
                     "shorter than %d characters",
                     value, UNIX_PATH_MAX);
        return 0;
    }
    free(a->cfg->control_socket);
    a->cfg->control_socket = strdup(value);
    return a->cfg->control_socket != NULL;
}

static int parse_log_level(struct agent_parse *a, const char *value)
{
    int level = log_level_from_name(value);

    if (!set_once(a, &a->seen_log_level, "log_level"))
        return 0;
    if (level < 0) {
        config_error(&a->p,
                     "[agent] log_level: '%s' is not one of error, "
                     "warning, notice, info, debug",
                     value);
        return 0;
    }
    a->cfg->log_level = level;
    return 1;
}

/* Looked up now, so that a typo is FILE:LINE and not a surprise later. */
static int parse_control_group(struct agent_parse *a, const char *value)
{
    struct group *gr;

    if (!set_once(a, &a->seen_control_group, "control_group"))
        return 0;
    gr = getgrnam(value);
    if (!gr) {
        config_error(&a->p,
                     "[agent] control_group: no group '%s' on this system",
                     value);
        return 0;
    }
    free(a->cfg->control_group);
    a->cfg->control_group = strdup(value);
    a->cfg->control_gid = gr->gr_gid;
    return a->cfg->control_group != NULL;
}

static int parse_allow_force(struct agent_parse *a, const char *value)
{
    if (!set_once(a, &a->seen_allow_force, "allow_force"))
        return 0;
    if (config_parse_bool(value, &a->cfg->allow_force) < 0) {
        config_error(&a->p, "[agent] allow_force: '%s' is not yes or no",
                     value);
        return 0;
    }
    return 1;
}

static int parse_metrics_listen(struct agent_parse *a, const char *value)
{
    char why[300];

    if (!set_once(a, &a->seen_metrics, "metrics_listen"))
        return 0;
    if (hostport_parse_local(value, &a->cfg->metrics_addr, why, sizeof(why)) <
        0) {
        config_error(&a->p, "[agent] metrics_listen: %s", why);
        return 0;
    }
    a->cfg->metrics = true;
    return 1;
}

static int agent_key(struct agent_parse *a, const char *name, const char *value)
{
    if (!*value) {
        config_error(&a->p, "[agent] %s: empty value", name);
        return 0;
    }
    if (strcmp(name, "log_level") == 0)
        return parse_log_level(a, value);
    if (strcmp(name, "control_socket") == 0)
        return parse_control_socket(a, value);
    if (strcmp(name, "control_group") == 0)
        return parse_control_group(a, value);
    if (strcmp(name, "allow_force") == 0)
        return parse_allow_force(a, value);
    if (strcmp(name, "metrics_listen") == 0)
        return parse_metrics_listen(a, value);
    config_error(&a->p, "[agent]: unknown key '%s'", name);
    return 0;
}

static int on_key(void *ctx, const char *section, const char *name,
                  const char *value)
{
    struct agent_parse *a = ctx;

    if (a->only_control_socket) {
        if (strcmp(section, "agent") == 0 &&
            strcmp(name, "control_socket") == 0 && *value) {
            free(a->cfg->control_socket);
            a->cfg->control_socket = strdup(value);
        }
        return 1;
    }
    if (is_serial_section(section))
        return serial_config_key(&a->cfg->serial, &a->p,
                                 section + strlen(SERIAL_SECTION_PREFIX), name,
                                 value) == 0;
    if (strcmp(section, "agent") == 0)
        return agent_key(a, name, value);
    if (strcmp(section, "usb") == 0)
        return usb_config_key(&a->cfg->usb, &a->usb_lines, &a->p, name, value);
    return 0; /* an unknown section was reported at its header */
}

/* Called by the line reader for every [section] header. */
static void on_section(void *ctx, const char *name)
{
    struct agent_parse *a = ctx;

    if (a->only_control_socket)
        return;
    if (is_serial_section(name))
        serial_config_section(&a->cfg->serial, &a->p,
                              name + strlen(SERIAL_SECTION_PREFIX));
    else if (strcmp(name, "agent") != 0 && strcmp(name, "usb") != 0)
        config_error(&a->p, "unknown section [%s]", name);
}

static const struct config_grammar agent_grammar = {
    .section = on_section,
    .key = on_key,
};

/* A serial listener on a USB listen slot's address could not work. */
static int check_listen_conflicts(struct agent_parse *a)
{
    const struct usb_config *u = &a->cfg->usb;
    char addr[HOSTPORT_HOST_MAX + 8];

    for (size_t i = 0; i < a->cfg->serial.n_ports; i++) {
        const struct serial_port_config *sp = &a->cfg->serial.ports[i];
        for (size_t s = 0; u->mode == USB_PEER_LISTEN && s < u->nslots; s++) {
            if (sp->peer != SERIAL_PEER_LISTEN ||
                !hostport_same_listen(&sp->addr, &u->slots[s].addr))
                continue;
            config_error_at(&a->p, serial_config_listen_line(sp),
                            "[serial.%s] listen: %s is already a [usb] "
                            "listen slot",
                            sp->name,
                            hostport_str(&sp->addr, addr, sizeof(addr)));
            return -1;
        }
    }
    return 0;
}

static int finish(struct agent_parse *a)
{
    if (serial_config_finish(&a->cfg->serial, &a->p) < 0 ||
        check_listen_conflicts(a) < 0 ||
        usb_config_finish(&a->cfg->usb, &a->usb_lines, &a->p) < 0)
        return -1;
    return 0;
}

static void config_defaults(struct agent_config *cfg, const char *path)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_INFO;
    usb_config_init(&cfg->usb);
    cfg->path = strdup(path);
    cfg->control_socket = strdup(CONFIG_DEFAULT_CONTROL_SOCKET);
    cfg->control_gid = (gid_t)-1;
    cfg->allow_force = true;
}

int config_load(const char *path, struct agent_config *cfg, char *err,
                size_t err_len)
{
    struct agent_parse a = {.cfg = cfg};

    config_defaults(cfg, path);
    if (config_load_file(path, &a.p, &agent_grammar, &a) == 0 &&
        finish(&a) < 0 && !a.p.err_line)
        config_error(&a.p, "invalid configuration");
    if (a.p.err_line) {
        snprintf(err, err_len, "%s", a.p.err);
        return -1;
    }
    return 0;
}

void config_free(struct agent_config *cfg)
{
    serial_config_free(&cfg->serial);
    usb_config_free(&cfg->usb);
    free(cfg->path);
    free(cfg->control_socket);
    free(cfg->control_group);
    memset(cfg, 0, sizeof(*cfg));
}

char *config_control_socket(const char *path)
{
    struct agent_config cfg;
    struct agent_parse a = {.cfg = &cfg, .only_control_socket = true};

    config_defaults(&cfg, path);
    config_load_file(path, &a.p, &agent_grammar, &a); /* errors ignored */
    char *socket = cfg.control_socket;
    cfg.control_socket = NULL;
    config_free(&cfg);
    return socket ? socket : strdup(CONFIG_DEFAULT_CONTROL_SOCKET);
}
