/* The agent's configuration: /etc/redir-agent.ini parsed once into a plain
 * struct. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usbredirfilter.h>

#include "config_serial.h"
#include "config_util.h"
#include "log.h"
#include "relay_secret.h"
#include "usb_rules.h"

#define RECONNECT_MIN_DEFAULT_MS 100
#define RECONNECT_MAX_DEFAULT_MS 5000
#define RECONNECT_LIMIT_MS 3600000 /* an hour: beyond that it is a typo */
#define FILTER_TEXT_MAX 4096
#define USBREDIR_DEBUG_DEFAULT 2 /* usbredir's errors and warnings */

struct config_parse;
typedef int (*key_parser)(struct config_parse *p, const char *value);

struct key_def {
    const char *section;
    const char *name;
    key_parser parse;
    bool repeatable;
};

struct config_parse {
    FILE *file;
    const char *path;
    int line;     /* line the reader handed to inih last */
    int err_line; /* first error found by us, 0 if none */
    char err[CONFIG_ERR_MAX];
    struct agent_config *cfg;
    int seen_line[16]; /* per key_def index: line it was first set on */
    int usb_mode_line;
    int reconnect_line; /* last reconnect_* key, for the min > max error */
    int transport_line;
    int secret_line;
};

static void config_fail(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void config_fail(struct config_parse *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->err_line)
        return; /* keep the first error: later ones are often fallout */
    p->err_line = p->line;
    n = snprintf(p->err, sizeof(p->err), "%s:%d: ", p->path, p->line);
    va_start(ap, fmt);
    vsnprintf(p->err + n, sizeof(p->err) - (size_t)n, fmt, ap);
    va_end(ap);
}

static int parse_control_socket(struct config_parse *p, const char *value)
{
    if (value[0] != '/' || strlen(value) >= 108 /* sun_path */) {
        config_fail(p,
                    "[agent] control_socket: '%s' is not an absolute path "
                    "shorter than 108 characters",
                    value);
        return 0;
    }
    free(p->cfg->control_socket);
    p->cfg->control_socket = strdup(value);
    return p->cfg->control_socket != NULL;
}

static int parse_rule(struct config_parse *p, const char *value)
{
    struct agent_config *cfg = p->cfg;
    char why[300];
    struct usb_rule rule;

    if (usb_rule_parse(value, &rule, why, sizeof(why)) < 0) {
        config_fail(p, "[usb] rule: %s", why);
        return 0;
    }
    if (cfg->n_usb_rules == CONFIG_MAX_RULES) {
        config_fail(p, "[usb] rule: more than %d rules", CONFIG_MAX_RULES);
        return 0;
    }
    struct usb_rule *rules =
        realloc(cfg->usb_rules, (cfg->n_usb_rules + 1) * sizeof(*rules));
    if (!rules) {
        config_fail(p, "out of memory");
        return 0;
    }
    rules[cfg->n_usb_rules++] = rule;
    cfg->usb_rules = rules;
    return 1;
}

static int parse_transport(struct config_parse *p, const char *value)
{
    if (strcmp(value, "raw") == 0) {
        p->cfg->usb_transport = USB_TRANSPORT_RAW;
    } else if (strcmp(value, "lz4") == 0) {
        p->cfg->usb_transport = USB_TRANSPORT_LZ4;
    } else {
        config_fail(p, "[usb] transport: '%s' is not raw or lz4", value);
        return 0;
    }
    p->transport_line = p->line;
    return 1;
}

static int parse_string_key(struct config_parse *p, const char *key,
                            const char *value, char **out)
{
    free(*out);
    *out = strdup(value);
    if (!*out)
        config_fail(p, "[usb] %s: out of memory", key);
    return *out != NULL;
}

static int parse_relay_secret_file(struct config_parse *p, const char *value)
{
    if (value[0] != '/') {
        config_fail(p, "[usb] relay_secret_file: '%s' is not an absolute path",
                    value);
        return 0;
    }
    p->secret_line = p->line;
    return parse_string_key(p, "relay_secret_file", value,
                            &p->cfg->relay_secret_file);
}

static int parse_agent_id(struct config_parse *p, const char *value)
{
    if (strlen(value) >= CONFIG_TARGET_MAX) {
        config_fail(p, "[usb] agent_id: longer than %d characters",
                    CONFIG_TARGET_MAX - 1);
        return 0;
    }
    return parse_string_key(p, "agent_id", value, &p->cfg->agent_id);
}

static int parse_log_level(struct config_parse *p, const char *value)
{
    int level = log_level_from_name(value);
    if (level < 0) {
        config_fail(p,
                    "[agent] log_level: '%s' is not one of error, "
                    "warning, notice, info, debug",
                    value);
        return 0;
    }
    p->cfg->log_level = level;
    return 1;
}

/* Cuts "/TARGET" off an endpoint (a redir-relay target) into target. */
static int parse_target(struct config_parse *p, const char *key, char *tok,
                        char *target)
{
    char *slash = strchr(tok, '/');

    target[0] = '\0';
    if (!slash)
        return 0;
    *slash = '\0';
    const char *t = slash + 1;
    size_t len = strlen(t);
    if (len == 0 || len >= CONFIG_TARGET_MAX ||
        strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789._-") != len) {
        config_fail(p,
                    "[usb] %s: '%s': a relay target is 1 to %d letters, "
                    "digits, '.', '_' or '-'",
                    key, t, CONFIG_TARGET_MAX - 1);
        return -1;
    }
    memcpy(target, t, len + 1);
    return 0;
}

/* Splits a comma-separated endpoint list into cfg->usb_slots. */
static int parse_slots(struct config_parse *p, const char *key,
                       const char *value)
{
    struct agent_config *cfg = p->cfg;
    char buf[1024], why[300];

    if (strlen(value) >= sizeof(buf)) {
        config_fail(p, "[usb] %s: list too long", key);
        return 0;
    }
    strcpy(buf, value);
    for (char *tok = buf, *comma; tok; tok = comma ? comma + 1 : NULL) {
        comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        while (isspace((unsigned char)*tok))
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (!*tok) {
            config_fail(p, "[usb] %s: empty entry in the list", key);
            return 0;
        }
        if (cfg->usb_nslots == CONFIG_MAX_SLOTS) {
            config_fail(p, "[usb] %s: more than %d endpoints", key,
                        CONFIG_MAX_SLOTS);
            return 0;
        }
        if (parse_target(p, key, tok, cfg->usb_slot_targets[cfg->usb_nslots]) <
            0)
            return 0;
        if (hostport_parse(tok, &cfg->usb_slots[cfg->usb_nslots], why,
                           sizeof(why)) < 0) {
            config_fail(p, "[usb] %s: %s", key, why);
            return 0;
        }
        cfg->usb_nslots++;
    }
    if (cfg->usb_nslots == 0) {
        config_fail(p, "[usb] %s: no HOST:PORT given", key);
        return 0;
    }
    return 1;
}

static int parse_peer(struct config_parse *p, const char *value,
                      enum usb_peer_mode mode)
{
    const char *key = mode == USB_PEER_CONNECT ? "connect" : "listen";

    if (p->cfg->usb_mode != USB_PEER_NONE) {
        config_fail(p,
                    "[usb] %s: 'connect' and 'listen' are exclusive (the "
                    "other is set on line %d)",
                    key, p->usb_mode_line);
        return 0;
    }
    p->cfg->usb_mode = mode;
    p->usb_mode_line = p->line;
    return parse_slots(p, key, value);
}

static int parse_connect(struct config_parse *p, const char *value)
{
    return parse_peer(p, value, USB_PEER_CONNECT);
}

static int parse_listen(struct config_parse *p, const char *value)
{
    return parse_peer(p, value, USB_PEER_LISTEN);
}

/* Repeated filter lines are joined with '|', so long filters can be split. */
static bool filter_allow_values_ok(const struct usbredirfilter_rule *rules,
                                   int count)
{
    /* usbredirfilter_verify() lets any allow value through */
    for (int i = 0; i < count; i++)
        if (rules[i].allow != 0 && rules[i].allow != 1)
            return false;
    return true;
}

static int parse_filter(struct config_parse *p, const char *value)
{
    struct agent_config *cfg = p->cfg;
    struct usbredirfilter_rule *rules = NULL;
    int count = 0;

    if (usbredirfilter_string_to_rules(value, ",", "|", &rules, &count) != 0 ||
        usbredirfilter_verify(rules, count) != 0 || count == 0 ||
        !filter_allow_values_ok(rules, count)) {
        usbredirfilter_free(rules);
        config_fail(p,
                    "[usb] filter: '%s' is not a valid usbredirfilter rule "
                    "list (CLASS,VID,PID,BCD,ALLOW|...)",
                    value);
        return 0;
    }
    usbredirfilter_free(rules);

    size_t old = cfg->usb_filter_text ? strlen(cfg->usb_filter_text) : 0;
    size_t len = old + 1 + strlen(value) + 1;
    if (len > FILTER_TEXT_MAX) {
        config_fail(p, "[usb] filter: longer than %d characters in all",
                    FILTER_TEXT_MAX);
        return 0;
    }
    char *text = realloc(cfg->usb_filter_text, len);
    if (!text) {
        config_fail(p, "out of memory");
        return 0;
    }
    snprintf(text + old, len - old, "%s%s", old ? "|" : "", value);
    cfg->usb_filter_text = text;
    return 1;
}

static int parse_reconnect(struct config_parse *p, const char *key,
                           const char *value, uint32_t *out)
{
    p->reconnect_line = p->line;
    if (config_parse_u32(value, 1, RECONNECT_LIMIT_MS, out) < 0) {
        config_fail(p,
                    "[usb] %s: '%s' is not a number of milliseconds from "
                    "1 to %d",
                    key, value, RECONNECT_LIMIT_MS);
        return 0;
    }
    return 1;
}

static int parse_reconnect_min(struct config_parse *p, const char *value)
{
    return parse_reconnect(p, "reconnect_min_ms", value,
                           &p->cfg->reconnect_min_ms);
}

static int parse_reconnect_max(struct config_parse *p, const char *value)
{
    return parse_reconnect(p, "reconnect_max_ms", value,
                           &p->cfg->reconnect_max_ms);
}

static int parse_usbredir_debug(struct config_parse *p, const char *value)
{
    uint32_t v;
    if (config_parse_u32(value, 0, 5, &v) < 0) {
        config_fail(p, "[usb] usbredir_debug: '%s' is not a level from 0 to 5",
                    value);
        return 0;
    }
    p->cfg->usbredir_debug = (int)v;
    return 1;
}

static const struct key_def keys[] = {
    {"agent", "log_level", parse_log_level, false},
    {"agent", "control_socket", parse_control_socket, false},
    {"usb", "rule", parse_rule, true},
    {"usb", "connect", parse_connect, false},
    {"usb", "listen", parse_listen, false},
    {"usb", "filter", parse_filter, true},
    {"usb", "reconnect_min_ms", parse_reconnect_min, false},
    {"usb", "reconnect_max_ms", parse_reconnect_max, false},
    {"usb", "usbredir_debug", parse_usbredir_debug, false},
    {"usb", "transport", parse_transport, false},
    {"usb", "relay_secret_file", parse_relay_secret_file, false},
    {"usb", "agent_id", parse_agent_id, false},
};

static bool section_known(const char *section)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].section, section) == 0)
            return true;
    return false;
}

static bool is_serial_section(const char *section)
{
    return strncmp(section, SERIAL_SECTION_PREFIX,
                   strlen(SERIAL_SECTION_PREFIX)) == 0;
}

static int config_handle_serial_key(struct config_parse *p, const char *section,
                                    const char *name, const char *value)
{
    char why[CONFIG_ERR_MAX];

    if (config_serial_key(p->cfg, section + strlen(SERIAL_SECTION_PREFIX), name,
                          value, p->line, why, sizeof(why)) < 0) {
        config_fail(p, "%s", why);
        return 0;
    }
    return 1;
}

static int config_handle_key(void *user, const char *section, const char *name,
                             const char *value)
{
    struct config_parse *p = user;

    if (is_serial_section(section))
        return config_handle_serial_key(p, section, name, value);
    if (!section_known(section)) {
        /* reported by the reader when it saw the header */
        return 0;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].section, section) || strcmp(keys[i].name, name))
            continue;
        if (!*value) {
            config_fail(p, "[%s] %s: empty value", section, name);
            return 0;
        }
        if (p->seen_line[i] && !keys[i].repeatable) {
            config_fail(p, "[%s] %s: set twice (first on line %d)", section,
                        name, p->seen_line[i]);
            return 0;
        }
        if (!p->seen_line[i])
            p->seen_line[i] = p->line;
        return keys[i].parse(p, value);
    }
    config_fail(p, "[%s]: unknown key '%s'", section, name);
    return 0;
}

static void config_reader_error(void *ctx, const char *what)
{
    config_fail(ctx, "%s", what);
}

/* Called by the line reader for every [section] header. */
static void config_check_section(void *ctx, const char *name)
{
    struct config_parse *p = ctx;
    char why[CONFIG_ERR_MAX];

    if (is_serial_section(name)) {
        if (config_serial_section(p->cfg, name + strlen(SERIAL_SECTION_PREFIX),
                                  p->line, why, sizeof(why)) < 0)
            config_fail(p, "%s", why);
    } else if (!section_known(name)) {
        config_fail(p, "unknown section [%s]", name);
    }
}

static void config_defaults(struct agent_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_INFO;
    cfg->usb_mode = USB_PEER_NONE;
    cfg->reconnect_min_ms = RECONNECT_MIN_DEFAULT_MS;
    cfg->reconnect_max_ms = RECONNECT_MAX_DEFAULT_MS;
    cfg->usbredir_debug = USBREDIR_DEBUG_DEFAULT;
    cfg->control_socket = strdup(CONFIG_DEFAULT_CONTROL_SOCKET);
}

/* The secret is re-read at each connection (so it can be rotated), but a
 * missing or unsafe file is a config error now, not a surprise when a
 * device is plugged in. */
static int config_check_secret(struct config_parse *p)
{
    uint8_t secret[RELAY_SECRET_MAX];
    size_t len;
    char why[RELAY_ERR_MAX];
    int rc = relay_secret_load(p->cfg->relay_secret_file, secret, &len, why);

    sodium_memzero(secret, sizeof(secret));
    if (rc < 0) {
        p->line = p->secret_line;
        config_fail(p, "[usb] relay_secret_file: %s", why);
    }
    return rc;
}

/* Relay targets, lz4 and the relay secret only make sense together. */
static int config_check_relay(struct config_parse *p)
{
    struct agent_config *cfg = p->cfg;
    size_t relay = 0;

    for (size_t i = 0; i < cfg->usb_nslots; i++)
        relay += cfg->usb_slot_targets[i][0] != '\0';
    p->line = p->usb_mode_line;
    if (relay && cfg->usb_mode == USB_PEER_LISTEN) {
        config_fail(p, "[usb] listen: relay targets (HOST:PORT/TARGET) need "
                       "connect: agents dial the relay");
        return -1;
    }
    if (relay && relay != cfg->usb_nslots) {
        config_fail(p, "[usb] connect: mix of relay targets (HOST:PORT/TARGET) "
                       "and QEMU chardevs (HOST:PORT); use one kind");
        return -1;
    }
    if (relay && !cfg->relay_secret_file) {
        config_fail(p, "[usb] connect: relay targets need [usb] "
                       "relay_secret_file");
        return -1;
    }
    if (relay && config_check_secret(p) < 0)
        return -1;
    if (cfg->usb_transport == USB_TRANSPORT_LZ4 && !relay) {
        p->line = p->transport_line;
        config_fail(p, "[usb] transport: lz4 needs redir-relay (connect = "
                       "HOST:PORT/TARGET); QEMU only speaks raw usbredir");
        return -1;
    }
    return 0;
}

static int config_finish(struct config_parse *p)
{
    struct agent_config *cfg = p->cfg;
    char why[CONFIG_ERR_MAX];
    int line = 0;

    if (config_serial_finish(cfg, why, sizeof(why), &line) < 0) {
        p->line = line;
        config_fail(p, "%s", why);
        return -1;
    }
    if (config_check_relay(p) < 0)
        return -1;
    if (cfg->reconnect_min_ms > cfg->reconnect_max_ms) {
        p->line = p->reconnect_line;
        config_fail(p,
                    "[usb] reconnect_min_ms (%u) is larger than "
                    "reconnect_max_ms (%u)",
                    cfg->reconnect_min_ms, cfg->reconnect_max_ms);
        return -1;
    }
    if (cfg->usb_filter_text &&
        usbredirfilter_string_to_rules(cfg->usb_filter_text, ",", "|",
                                       &cfg->usb_filter_rules,
                                       &cfg->usb_filter_count) != 0) {
        config_fail(p, "[usb] filter: cannot be parsed");
        return -1;
    }
    return 0;
}

int config_load(const char *path, struct agent_config *cfg, char *err,
                size_t err_len)
{
    struct config_parse p = {.path = path, .cfg = cfg};

    config_defaults(cfg);
    cfg->path = strdup(path);
    p.file = fopen(path, "re");
    if (!p.file) {
        snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct config_reader reader = {p.file, &p.line, config_check_section,
                                   config_reader_error, &p};
    int syntax_line =
        ini_parse_stream(config_reader_gets, &reader, config_handle_key, &p);
    fclose(p.file);

    if (syntax_line > 0 && (!p.err_line || syntax_line < p.err_line)) {
        snprintf(err, err_len,
                 "%s:%d: syntax error: expected 'key = value' or '[section]'",
                 path, syntax_line);
        return -1;
    }
    if (syntax_line < 0) {
        snprintf(err, err_len, "%s: out of memory while parsing", path);
        return -1;
    }
    if (!p.err_line && config_finish(&p) < 0 && !p.err_line)
        snprintf(p.err, sizeof(p.err), "%s: invalid configuration", path);
    if (p.err_line || p.err[0]) {
        snprintf(err, err_len, "%s", p.err);
        return -1;
    }
    return 0;
}

void config_free(struct agent_config *cfg)
{
    config_serial_free(cfg);
    free(cfg->path);
    free(cfg->control_socket);
    free(cfg->usb_rules);
    free(cfg->relay_secret_file);
    free(cfg->agent_id);
    free(cfg->usb_filter_text);
    usbredirfilter_free(cfg->usb_filter_rules);
    memset(cfg, 0, sizeof(*cfg));
}

static int peek_control_socket(void *user, const char *section,
                               const char *name, const char *value)
{
    char **path = user;
    if (strcmp(section, "agent") == 0 && strcmp(name, "control_socket") == 0 &&
        *value) {
        free(*path);
        *path = strdup(value);
    }
    return 1;
}

char *config_control_socket(const char *path)
{
    char *socket_path = NULL;

    ini_parse(path, peek_control_socket, &socket_path);
    return socket_path ? socket_path : strdup(CONFIG_DEFAULT_CONTROL_SOCKET);
}
