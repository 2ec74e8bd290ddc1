/* SPDX-License-Identifier: MIT */
/* Admin-readable USB rules: "allow vid=1050 access=ro", parsed once, matched
 * purely. */
#include "usb_rules.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULE_TOKEN_MAX 160

const char *usb_access_name(enum usb_access access)
{
    static const char *const names[] = {"rw", "ro", "wo"};
    return names[access];
}

static int parse_hex16(const char *v, uint16_t *out)
{
    char *end;
    size_t len = strlen(v);

    if (len == 0 || len > 4)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)v[i]))
            return -1;
    *out = (uint16_t)strtoul(v, &end, 16);
    return 0;
}

/* "CC", "CC:SS" or "CC:SS:PP", each two hex digits or "*". */
static int parse_class(const char *v, struct usb_class_pattern *out)
{
    int16_t f[3] = {-1, -1, -1};
    int n = 0;

    for (const char *p = v; n < 3; n++) {
        if (p[0] == '*') {
            p++;
        } else if (isxdigit((unsigned char)p[0]) &&
                   isxdigit((unsigned char)p[1])) {
            char hex[3] = {p[0], p[1], 0};
            f[n] = (int16_t)strtol(hex, NULL, 16);
            p += 2;
        } else {
            return -1;
        }
        if (*p == '\0')
            break;
        if (*p != ':' || n == 2)
            return -1;
        p++;
    }
    *out = (struct usb_class_pattern){f[0], f[1], f[2]};
    return 0;
}

static int parse_string(const char *v, char *out)
{
    if (!*v || strlen(v) >= USB_RULE_STRING_MAX)
        return -1;
    strcpy(out, v);
    return 0;
}

static int parse_access(const char *v, enum usb_access *out)
{
    static const char *const names[] = {"rw", "ro", "wo"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = (enum usb_access)i;
            return 0;
        }
    }
    return -1;
}

enum matcher_kind { MATCH_HEX16, MATCH_CLASS, MATCH_STRING };

struct matcher_def {
    const char *key;
    enum usb_rule_field field;
    enum matcher_kind kind;
    size_t offset; /* of the value in struct usb_rule */
    const char *expect;
};

#define CLASS_EXPECT "CC[:SS[:PP]] in hex, * for any"
static const struct matcher_def matchers[] = {
    {"vid", RULE_VID, MATCH_HEX16, offsetof(struct usb_rule, vid),
     "4 hex digits or *"},
    {"pid", RULE_PID, MATCH_HEX16, offsetof(struct usb_rule, pid),
     "4 hex digits or *"},
    {"bcdDevice", RULE_BCD, MATCH_HEX16, offsetof(struct usb_rule, bcd),
     "4 hex digits or *"},
    {"device", RULE_DEVICE_CLASS, MATCH_CLASS,
     offsetof(struct usb_rule, device_class), CLASS_EXPECT},
    {"class", RULE_ANY_CLASS, MATCH_CLASS, offsetof(struct usb_rule, any_class),
     CLASS_EXPECT},
    {"interface", RULE_ANY_INTERFACE, MATCH_CLASS,
     offsetof(struct usb_rule, any_interface), CLASS_EXPECT},
    {"all-interfaces", RULE_ALL_INTERFACES, MATCH_CLASS,
     offsetof(struct usb_rule, all_interfaces), CLASS_EXPECT},
    {"serial", RULE_SERIAL, MATCH_STRING, offsetof(struct usb_rule, serial),
     "a string or glob"},
    {"product", RULE_PRODUCT, MATCH_STRING, offsetof(struct usb_rule, product),
     "a string or glob"},
    {"port", RULE_PORT, MATCH_STRING, offsetof(struct usb_rule, port),
     "BUS-PORT[.PORT...] or a glob such as 1-1.*"},
};

/* Applies one "key=value"; returns -1 with *expect set for a bad value, or
 * with *expect NULL for an unknown key. */
static int rule_set(struct usb_rule *r, const char *key, const char *value,
                    const char **expect)
{
    if (!strcmp(key, "access")) {
        *expect = "rw, ro or wo";
        return parse_access(value, &r->access);
    }
    for (size_t i = 0; i < sizeof(matchers) / sizeof(matchers[0]); i++) {
        const struct matcher_def *m = &matchers[i];
        void *dst = (char *)r + m->offset;
        int rc;

        if (strcmp(key, m->key))
            continue;
        *expect = m->expect;
        if (!strcmp(value, "*"))
            return 0; /* matches anything: no constraint */
        if (m->kind == MATCH_HEX16)
            rc = parse_hex16(value, dst);
        else if (m->kind == MATCH_CLASS)
            rc = parse_class(value, dst);
        else
            rc = parse_string(value, dst);
        if (rc == 0)
            r->fields |= m->field;
        return rc;
    }
    *expect = NULL;
    return -1;
}

/* Copies the next whitespace-separated token into tok, honouring double
 * quotes (product="Smart Card*"); returns the rest, or NULL at the end. */
static const char *next_token(const char *p, char *tok, size_t len, bool *bad)
{
    size_t n = 0;
    bool quoted = false;

    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return NULL;
    for (; *p && (quoted || !isspace((unsigned char)*p)); p++) {
        if (*p == '"') {
            quoted = !quoted;
            continue;
        }
        if (n + 1 >= len) {
            *bad = true;
            break;
        }
        tok[n++] = *p;
    }
    tok[n] = '\0';
    if (quoted)
        *bad = true;
    return p;
}

static void rule_append_text(struct usb_rule *r, const char *tok)
{
    size_t used = strlen(r->text);
    snprintf(r->text + used, sizeof(r->text) - used, "%s%s", used ? " " : "",
             tok);
}

int usb_rule_parse(const char *text, struct usb_rule *rule, char *why,
                   size_t why_len)
{
    char tok[RULE_TOKEN_MAX];
    bool bad = false;
    const char *p = next_token(text, tok, sizeof(tok), &bad);

    memset(rule, 0, sizeof(*rule));
    if (!p || (strcmp(tok, "allow") && strcmp(tok, "deny"))) {
        snprintf(why, why_len, "'%s': a rule starts with allow or deny",
                 p ? tok : "");
        return -1;
    }
    rule->allow = tok[0] == 'a';
    while ((p = next_token(p, tok, sizeof(tok), &bad))) {
        char *eq = strchr(tok, '=');
        const char *expect = NULL;
        if (bad || !eq) {
            snprintf(why, why_len, "'%s': expected KEY=VALUE", tok);
            return -1;
        }
        *eq = '\0';
        if (rule_set(rule, tok, eq + 1, &expect) < 0) {
            if (expect)
                snprintf(why, why_len, "'%s=%s': %s expects %s", tok, eq + 1,
                         tok, expect);
            else
                snprintf(why, why_len,
                         "'%s': unknown matcher (vid, pid, "
                         "bcdDevice, device, class, interface, all-interfaces, "
                         "serial, product, port, access)",
                         tok);
            return -1;
        }
        *eq = '=';
        if (strncmp(tok, "access=", 7) != 0)
            rule_append_text(rule, tok);
    }
    if (!rule->allow && rule->access != USB_ACCESS_RW) {
        snprintf(why, why_len, "access= only makes sense on allow rules");
        return -1;
    }
    if (!rule->text[0])
        snprintf(rule->text, sizeof(rule->text), "any device");
    return 0;
}

static bool class_matches(const struct usb_class_pattern *p, uint8_t cls,
                          uint8_t sub, uint8_t proto)
{
    return (p->cls < 0 || p->cls == cls) &&
           (p->subclass < 0 || p->subclass == sub) &&
           (p->protocol < 0 || p->protocol == proto);
}

static bool some_interface_matches(const struct usb_class_pattern *p,
                                   const struct usb_device_info *dev)
{
    for (size_t i = 0; i < dev->n_interfaces; i++) {
        const struct usb_interface_class *ic = &dev->interfaces[i];
        if (class_matches(p, ic->cls, ic->subclass, ic->protocol))
            return true;
    }
    return false;
}

static bool all_interfaces_match(const struct usb_class_pattern *p,
                                 const struct usb_device_info *dev)
{
    for (size_t i = 0; i < dev->n_interfaces; i++) {
        const struct usb_interface_class *ic = &dev->interfaces[i];
        if (!class_matches(p, ic->cls, ic->subclass, ic->protocol))
            return false;
    }
    return dev->n_interfaces > 0;
}

static bool glob_matches(const char *pattern, const char *s)
{
    return fnmatch(pattern, s ? s : "", 0) == 0;
}

bool usb_rule_matches(const struct usb_rule *r,
                      const struct usb_device_info *dev,
                      const struct usb_device_strings *str)
{
    unsigned f = r->fields;

    return (!(f & RULE_VID) || r->vid == dev->vid) &&
           (!(f & RULE_PID) || r->pid == dev->pid) &&
           (!(f & RULE_BCD) || r->bcd == dev->bcd_device) &&
           (!(f & RULE_DEVICE_CLASS) ||
            class_matches(&r->device_class, dev->dev_class, dev->dev_subclass,
                          dev->dev_protocol)) &&
           (!(f & RULE_ANY_CLASS) ||
            class_matches(&r->any_class, dev->dev_class, dev->dev_subclass,
                          dev->dev_protocol) ||
            some_interface_matches(&r->any_class, dev)) &&
           (!(f & RULE_ANY_INTERFACE) ||
            some_interface_matches(&r->any_interface, dev)) &&
           (!(f & RULE_ALL_INTERFACES) ||
            all_interfaces_match(&r->all_interfaces, dev)) &&
           (!(f & RULE_SERIAL) || glob_matches(r->serial, str->serial)) &&
           (!(f & RULE_PRODUCT) || glob_matches(r->product, str->product)) &&
           (!(f & RULE_PORT) || glob_matches(r->port, str->port));
}
