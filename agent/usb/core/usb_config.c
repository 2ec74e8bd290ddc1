/* SPDX-License-Identifier: MIT */
/* The [usb] section of the agent's config: where devices go (slots), how
 * (transport), and which devices (rules, filter). This file: the defaults
 * and each key as it is read; the slot lists are read in
 * usb_config_slots.c, the section as a whole is checked in
 * usb_config_check.c. */
#include "usb_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usbredirfilter.h>

#include "config_util.h"
#include "usb_rules.h"

#define RECONNECT_MIN_DEFAULT_MS 100
#define RECONNECT_MAX_DEFAULT_MS 5000
#define RECONNECT_LIMIT_MS 3600000 /* an hour: beyond that it is a typo */
#define FILTER_TEXT_MAX 4096
#define USBREDIR_DEBUG_DEFAULT 2 /* usbredir's errors and warnings */

typedef int (*usb_key_parser)(struct usb_config *u,
                              struct usb_config_lines *lines,
                              struct config_parse *p, const char *value);

struct usb_key {
    const char *name;
    usb_key_parser parse;
    bool repeatable;
};

void usb_config_init(struct usb_config *u)
{
    memset(u, 0, sizeof(*u));
    u->mode = USB_PEER_NONE;
    u->reconnect_min_ms = RECONNECT_MIN_DEFAULT_MS;
    u->reconnect_max_ms = RECONNECT_MAX_DEFAULT_MS;
    u->usbredir_debug = USBREDIR_DEBUG_DEFAULT;
}

void usb_config_free(struct usb_config *u)
{
    free(u->rules);
    free(u->relay_secret_file);
    free(u->agent_id);
    free(u->filter_text);
    usbredirfilter_free(u->filter_rules);
    tls_config_free(&u->tls);
    memset(u, 0, sizeof(*u));
}

static int parse_rule(struct usb_config *u, struct usb_config_lines *lines,
                      struct config_parse *p, const char *value)
{
    char why[300];
    struct usb_rule rule;
    (void)lines;

    if (usb_rule_parse(value, &rule, why, sizeof(why)) < 0) {
        config_error(p, "[usb] rule: %s", why);
        return 0;
    }
    if (u->n_rules == USB_CONFIG_MAX_RULES) {
        config_error(p, "[usb] rule: more than %d rules", USB_CONFIG_MAX_RULES);
        return 0;
    }
    struct usb_rule *rules =
        realloc(u->rules, (u->n_rules + 1) * sizeof(*rules));
    if (!rules) {
        config_error(p, "out of memory");
        return 0;
    }
    rules[u->n_rules++] = rule;
    u->rules = rules;
    return 1;
}

static int parse_transport(struct usb_config *u, struct usb_config_lines *lines,
                           struct config_parse *p, const char *value)
{
    if (strcmp(value, "raw") == 0) {
        u->transport = USB_TRANSPORT_RAW;
    } else if (strcmp(value, "lz4") == 0) {
        u->transport = USB_TRANSPORT_LZ4;
    } else {
        config_error(p, "[usb] transport: '%s' is not raw or lz4", value);
        return 0;
    }
    lines->transport = p->line;
    return 1;
}

static int set_string(struct config_parse *p, const char *key,
                      const char *value, char **out)
{
    free(*out);
    *out = strdup(value);
    if (!*out)
        config_error(p, "[usb] %s: out of memory", key);
    return *out != NULL;
}

static int parse_relay_secret_file(struct usb_config *u,
                                   struct usb_config_lines *lines,
                                   struct config_parse *p, const char *value)
{
    if (value[0] != '/' && strncmp(value, "credential:", 11) != 0) {
        config_error(p,
                     "[usb] relay_secret_file: '%s' is not an absolute path "
                     "(or credential:NAME)",
                     value);
        return 0;
    }
    lines->secret = p->line;
    return set_string(p, "relay_secret_file", value, &u->relay_secret_file);
}

static int parse_agent_id(struct usb_config *u, struct usb_config_lines *lines,
                          struct config_parse *p, const char *value)
{
    (void)lines;
    if (strlen(value) >= USB_TARGET_MAX) {
        config_error(p, "[usb] agent_id: longer than %d characters",
                     USB_TARGET_MAX - 1);
        return 0;
    }
    return set_string(p, "agent_id", value, &u->agent_id);
}

static int parse_slots(struct usb_config *u, struct config_parse *p,
                       const char *key, const char *value)
{
    char why[CONFIG_ERR_MAX];

    if (usb_config_parse_slot_list(u, key, value, why, sizeof(why)) < 0) {
        config_error(p, "%s", why);
        return 0;
    }
    return 1;
}

static int parse_peer(struct usb_config *u, struct usb_config_lines *lines,
                      struct config_parse *p, const char *value,
                      enum usb_peer_mode mode)
{
    const char *key = mode == USB_PEER_CONNECT ? "connect" : "listen";

    if (u->mode != USB_PEER_NONE) {
        config_error(p,
                     "[usb] %s: 'connect' and 'listen' are exclusive (the "
                     "other is set on line %d)",
                     key, lines->mode);
        return 0;
    }
    u->mode = mode;
    lines->mode = p->line;
    return parse_slots(u, p, key, value);
}

static int parse_connect(struct usb_config *u, struct usb_config_lines *lines,
                         struct config_parse *p, const char *value)
{
    return parse_peer(u, lines, p, value, USB_PEER_CONNECT);
}

static int parse_listen(struct usb_config *u, struct usb_config_lines *lines,
                        struct config_parse *p, const char *value)
{
    return parse_peer(u, lines, p, value, USB_PEER_LISTEN);
}

/* usbredirfilter_verify() lets any allow value through. */
static bool filter_allow_values_ok(const struct usbredirfilter_rule *rules,
                                   int count)
{
    for (int i = 0; i < count; i++)
        if (rules[i].allow != 0 && rules[i].allow != 1)
            return false;
    return true;
}

/* Repeated filter lines are joined with '|', so long filters can be split. */
static int parse_filter(struct usb_config *u, struct usb_config_lines *lines,
                        struct config_parse *p, const char *value)
{
    struct usbredirfilter_rule *rules = NULL;
    int count = 0;
    (void)lines;

    if (usbredirfilter_string_to_rules(value, ",", "|", &rules, &count) != 0 ||
        usbredirfilter_verify(rules, count) != 0 || count == 0 ||
        !filter_allow_values_ok(rules, count)) {
        usbredirfilter_free(rules);
        config_error(p,
                     "[usb] filter: '%s' is not a valid usbredirfilter rule "
                     "list (CLASS,VID,PID,BCD,ALLOW|...)",
                     value);
        return 0;
    }
    usbredirfilter_free(rules);

    size_t old = u->filter_text ? strlen(u->filter_text) : 0;
    size_t len = old + 1 + strlen(value) + 1;
    if (len > FILTER_TEXT_MAX) {
        config_error(p, "[usb] filter: longer than %d characters in all",
                     FILTER_TEXT_MAX);
        return 0;
    }
    char *text = realloc(u->filter_text, len);
    if (!text) {
        config_error(p, "out of memory");
        return 0;
    }
    snprintf(text + old, len - old, "%s%s", old ? "|" : "", value);
    u->filter_text = text;
    return 1;
}

static int parse_reconnect(struct usb_config_lines *lines,
                           struct config_parse *p, const char *key,
                           const char *value, uint32_t *out)
{
    lines->reconnect = p->line;
    if (config_parse_u32(value, 1, RECONNECT_LIMIT_MS, out) < 0) {
        config_error(p,
                     "[usb] %s: '%s' is not a number of milliseconds from "
                     "1 to %d",
                     key, value, RECONNECT_LIMIT_MS);
        return 0;
    }
    return 1;
}

static int parse_reconnect_min(struct usb_config *u,
                               struct usb_config_lines *lines,
                               struct config_parse *p, const char *value)
{
    return parse_reconnect(lines, p, "reconnect_min_ms", value,
                           &u->reconnect_min_ms);
}

static int parse_reconnect_max(struct usb_config *u,
                               struct usb_config_lines *lines,
                               struct config_parse *p, const char *value)
{
    return parse_reconnect(lines, p, "reconnect_max_ms", value,
                           &u->reconnect_max_ms);
}

static int parse_usbredir_debug(struct usb_config *u,
                                struct usb_config_lines *lines,
                                struct config_parse *p, const char *value)
{
    uint32_t v;
    (void)lines;

    if (config_parse_u32(value, 0, 5, &v) < 0) {
        config_error(p, "[usb] usbredir_debug: '%s' is not a level from 0 to 5",
                     value);
        return 0;
    }
    u->usbredir_debug = (int)v;
    return 1;
}

static int parse_allow(struct usb_config *u, struct usb_config_lines *lines,
                       struct config_parse *p, const char *value)
{
    char why[160];

    lines->allow = p->line;
    if (cidr_allow_parse(value, &u->allow_any, &u->allow, why, sizeof(why)) <
        0) {
        config_error(p, "[usb] allow: %s", why);
        return 0;
    }
    return 1;
}

static int parse_replace_peer(struct usb_config *u,
                              struct usb_config_lines *lines,
                              struct config_parse *p, const char *value)
{
    (void)lines;
    if (config_parse_bool(value, &u->replace_peer) < 0) {
        config_error(p, "[usb] replace_peer: '%s' is not yes or no", value);
        return 0;
    }
    return 1;
}

static const struct usb_key usb_keys[] = {
    {"rule", parse_rule, true},
    {"connect", parse_connect, false},
    {"listen", parse_listen, false},
    {"filter", parse_filter, true},
    {"reconnect_min_ms", parse_reconnect_min, false},
    {"reconnect_max_ms", parse_reconnect_max, false},
    {"usbredir_debug", parse_usbredir_debug, false},
    {"transport", parse_transport, false},
    {"relay_secret_file", parse_relay_secret_file, false},
    {"agent_id", parse_agent_id, false},
    {"allow", parse_allow, false},
    {"replace_peer", parse_replace_peer, false},
};

_Static_assert(sizeof(usb_keys) / sizeof(usb_keys[0]) <=
                   sizeof(((struct usb_config_lines *)0)->seen) / sizeof(int),
               "usb_config_lines.seen is too small");

int usb_config_key(struct usb_config *u, struct usb_config_lines *lines,
                   struct config_parse *p, const char *name, const char *value)
{
    if (*value) {
        int rc = tls_config_key(&u->tls, p, "usb", name, value);
        if (rc >= 0)
            return rc;
    }
    for (size_t i = 0; i < sizeof(usb_keys) / sizeof(usb_keys[0]); i++) {
        if (strcmp(usb_keys[i].name, name) != 0)
            continue;
        if (!*value) {
            config_error(p, "[usb] %s: empty value", name);
            return 0;
        }
        if (lines->seen[i] && !usb_keys[i].repeatable) {
            config_error(p, "[usb] %s: set twice (first on line %d)", name,
                         lines->seen[i]);
            return 0;
        }
        if (!lines->seen[i])
            lines->seen[i] = p->line;
        return usb_keys[i].parse(u, lines, p, value);
    }
    config_error(p, "[usb]: unknown key '%s'", name);
    return 0;
}
