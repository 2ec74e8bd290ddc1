/* SPDX-License-Identifier: MIT */
/* The [usb] connect and listen lists: "HOST:PORT[/TARGET], ..." read into
 * slots, and whether two configs have the same slots. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "usb_config.h"

#define SLOT_LIST_MAX 1024

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
