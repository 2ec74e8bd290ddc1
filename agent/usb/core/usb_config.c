/* SPDX-License-Identifier: MIT */
/* The [usb] section of the agent's config: where devices go (slots), how
 * (transport), and which devices (rules, filter). */
#include "usb_config.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usbredirfilter.h>

#include "config_util.h"
#include "relay_proto.h"
#include "relay_secret.h"
#include "usb_rules.h"

#define RECONNECT_MIN_DEFAULT_MS 100
#define RECONNECT_MAX_DEFAULT_MS 5000
#define RECONNECT_LIMIT_MS 3600000 /* an hour: beyond that it is a typo */
#define FILTER_TEXT_MAX 4096
#define SLOT_LIST_MAX 1024
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

/* Cuts "/TARGET" off an endpoint (a redir-relay target) into target. */
static int parse_target(const char *key, char *tok, char *target, char *why,
                        size_t why_len)
{
    char *slash = strchr(tok, '/');

    target[0] = '\0';
    if (!slash)
        return 0;
    *slash = '\0';
    const char *t = slash + 1;
    size_t len = strlen(t);
    if (len == 0 || len >= USB_TARGET_MAX ||
        strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789._-") != len) {
        snprintf(why, why_len,
                 "[usb] %s: '%s': a relay target is 1 to %d letters, "
                 "digits, '.', '_' or '-'",
                 key, t, USB_TARGET_MAX - 1);
        return -1;
    }
    memcpy(target, t, len + 1);
    return 0;
}

static char *trim(char *tok)
{
    while (isspace((unsigned char)*tok))
        tok++;
    char *end = tok + strlen(tok);
    while (end > tok && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return tok;
}

/* One "HOST:PORT[/TARGET]" of the list. */
static int parse_slot(struct usb_config *u, const char *key, char *tok,
                      char *why, size_t why_len)
{
    struct usb_slot_config *slot = &u->slots[u->nslots];
    char err[300];

    if (!*tok) {
        snprintf(why, why_len, "[usb] %s: empty entry in the list", key);
        return -1;
    }
    if (u->nslots == USB_CONFIG_MAX_SLOTS) {
        snprintf(why, why_len, "[usb] %s: more than %d endpoints", key,
                 USB_CONFIG_MAX_SLOTS);
        return -1;
    }
    if (parse_target(key, tok, slot->target, why, why_len) < 0)
        return -1;
    if (hostport_parse(tok, &slot->addr, err, sizeof(err)) < 0) {
        snprintf(why, why_len, "[usb] %s: %s", key, err);
        return -1;
    }
    u->nslots++;
    return 0;
}

int usb_config_parse_slot_list(struct usb_config *u, const char *key,
                               const char *value, char *why, size_t why_len)
{
    char buf[SLOT_LIST_MAX];

    if (strlen(value) >= sizeof(buf)) {
        snprintf(why, why_len, "[usb] %s: list too long", key);
        return -1;
    }
    strcpy(buf, value);
    for (char *tok = buf, *comma; tok; tok = comma ? comma + 1 : NULL) {
        comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        if (parse_slot(u, key, trim(tok), why, why_len) < 0)
            return -1;
    }
    return 0;
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
    if (strcmp(value, "any") == 0) {
        u->allow_any = true;
        return 1;
    }
    if (cidr_list_parse(value, &u->allow, why, sizeof(why)) < 0) {
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

/* The secret is re-read at each connection (so it can be rotated), but a
 * missing or unsafe file is a config error now, not a surprise when a
 * device is plugged in. */
static int check_secret(const struct usb_config *u,
                        const struct usb_config_lines *lines,
                        struct config_parse *p)
{
    uint8_t secret[RELAY_SECRET_MAX];
    size_t len;
    char why[RELAY_ERR_MAX];
    int rc = relay_secret_load(u->relay_secret_file, secret, &len, why);

    sodium_memzero(secret, sizeof(secret));
    if (rc < 0)
        config_error_at(p, lines->secret, "[usb] relay_secret_file: %s", why);
    return rc;
}

/* Relay targets, lz4 and the relay secret only make sense together. */
static int check_relay(const struct usb_config *u,
                       const struct usb_config_lines *lines,
                       struct config_parse *p)
{
    size_t relay = 0;

    for (size_t i = 0; i < u->nslots; i++)
        relay += u->slots[i].target[0] != '\0';
    if (relay && u->mode == USB_PEER_LISTEN) {
        config_error_at(p, lines->mode,
                        "[usb] listen: relay targets (HOST:PORT/TARGET) "
                        "need connect: agents dial the relay");
        return -1;
    }
    if (relay && relay != u->nslots) {
        config_error_at(p, lines->mode,
                        "[usb] connect: mix of relay targets "
                        "(HOST:PORT/TARGET) and QEMU chardevs (HOST:PORT); "
                        "use one kind");
        return -1;
    }
    if (relay && !u->relay_secret_file && !u->tls.enabled) {
        config_error_at(p, lines->mode,
                        "[usb] connect: relay targets need [usb] "
                        "relay_secret_file or tls = yes");
        return -1;
    }
    if (relay && u->relay_secret_file && check_secret(u, lines, p) < 0)
        return -1;
    if (u->transport == USB_TRANSPORT_LZ4 && !relay) {
        config_error_at(p, lines->transport,
                        "[usb] transport: lz4 needs redir-relay (connect = "
                        "HOST:PORT/TARGET); QEMU only speaks raw usbredir");
        return -1;
    }
    return 0;
}

/* A listener on an address others can reach must say whom it lets in:
 * usbredir from anyone is a device handed to anyone. */
static int check_listen(const struct usb_config *u,
                        const struct usb_config_lines *lines,
                        struct config_parse *p)
{
    char addr[HOSTPORT_HOST_MAX + 8];

    if (lines->allow && u->mode != USB_PEER_LISTEN) {
        config_error_at(p, lines->allow,
                        "[usb] allow: only for listen (who may connect)");
        return -1;
    }
    if (u->mode != USB_PEER_LISTEN || u->tls.enabled || lines->allow)
        return 0;
    for (size_t i = 0; i < u->nslots; i++) {
        if (cidr_host_is_loopback(u->slots[i].addr.host))
            continue;
        hostport_str(&u->slots[i].addr, addr, sizeof(addr));
        config_error_at(p, lines->mode,
                        "[usb] listen: %s takes a connection from anyone who "
                        "can reach this machine; set allow = the "
                        "hypervisors' addresses (or allow = any), or tls = "
                        "yes with certificates",
                        addr);
        return -1;
    }
    return 0;
}

int usb_config_finish(struct usb_config *u,
                      const struct usb_config_lines *lines,
                      struct config_parse *p)
{
    if (check_relay(u, lines, p) < 0 ||
        tls_config_finish(&u->tls, p, "usb", lines->mode) < 0 ||
        check_listen(u, lines, p) < 0)
        return -1;
    if (u->reconnect_min_ms > u->reconnect_max_ms) {
        config_error_at(p, lines->reconnect,
                        "[usb] reconnect_min_ms (%u) is larger than "
                        "reconnect_max_ms (%u)",
                        u->reconnect_min_ms, u->reconnect_max_ms);
        return -1;
    }
    if (u->filter_text && usbredirfilter_string_to_rules(
                              u->filter_text, ",", "|", &u->filter_rules,
                              &u->filter_count) != 0) {
        config_error(p, "[usb] filter: cannot be parsed");
        return -1;
    }
    return 0;
}

static bool slot_equal(const struct usb_slot_config *a,
                       const struct usb_slot_config *b)
{
    return a->addr.port == b->addr.port &&
           strcmp(a->addr.host, b->addr.host) == 0 &&
           strcmp(a->target, b->target) == 0;
}

bool usb_config_same_slots(const struct usb_config *a,
                           const struct usb_config *b)
{
    if (a->mode != b->mode || a->nslots != b->nslots ||
        a->transport != b->transport || !tls_config_equal(&a->tls, &b->tls) ||
        a->allow_any != b->allow_any || a->allow.n != b->allow.n ||
        memcmp(a->allow.nets, b->allow.nets,
               a->allow.n * sizeof(a->allow.nets[0])) != 0)
        return false;
    for (size_t i = 0; i < a->nslots; i++)
        if (!slot_equal(&a->slots[i], &b->slots[i]))
            return false;
    return true;
}
