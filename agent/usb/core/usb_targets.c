/* SPDX-License-Identifier: MIT */
/* Run-time targets ("redir-agent target LIST"): the [usb] slots replaced by
 * a list the control socket sent (a VDI client at login), checked as the
 * file's list would be; the file's values stay the default. Pure. */
#include "usb_targets.h"

#include <stdio.h>
#include <string.h>

/* The agent dials its targets; a listening agent is dialed by QEMU, whose
 * own config says where to. */
static int check_mode(const struct usb_config *file, char *why, size_t why_len)
{
    if (file->mode != USB_PEER_LISTEN)
        return 0;
    snprintf(why, why_len,
             "this agent listens ([usb] listen): the VMs dial it, so their "
             "QEMU decides where devices go; target needs [usb] connect "
             "(or no [usb] connect/listen at all)");
    return -1;
}

/* The same rules as the file's list: one kind of peer, and relay targets
 * only with a way to prove who we are. */
static int check_kinds(const struct usb_config *file,
                       const struct usb_config *u, char *why, size_t why_len)
{
    size_t relay = 0;

    for (size_t i = 0; i < u->nslots; i++)
        relay += u->slots[i].target[0] != '\0';
    if (relay && relay != u->nslots) {
        snprintf(why, why_len,
                 "mix of relay targets (HOST:PORT/TARGET) and QEMU chardevs "
                 "(HOST:PORT); use one kind");
        return -1;
    }
    if (relay && !file->relay_secret_file && !file->tls.enabled) {
        snprintf(why, why_len,
                 "relay targets need [usb] relay_secret_file or tls = yes "
                 "in the config file");
        return -1;
    }
    if (!relay && file->transport == USB_TRANSPORT_LZ4) {
        snprintf(why, why_len,
                 "[usb] transport = lz4 needs redir-relay targets "
                 "(HOST:PORT/TARGET); QEMU only speaks raw usbredir");
        return -1;
    }
    return 0;
}

int usb_targets_parse(struct usb_targets *t, const struct usb_config *file,
                      const char *list, char *why, size_t why_len)
{
    static struct usb_config u; /* 64 slots: not for the stack */

    if (check_mode(file, why, why_len) < 0)
        return -1;
    memset(&u, 0, sizeof(u));
    if (usb_config_parse_slot_list(&u, "target", list, why, why_len) < 0)
        return -1;
    if (check_kinds(file, &u, why, why_len) < 0)
        return -1;
    t->set = true;
    t->n = u.nslots;
    memcpy(t->slots, u.slots, u.nslots * sizeof(u.slots[0]));
    return 0;
}

int usb_targets_clear(struct usb_targets *t, const struct usb_config *file,
                      char *why, size_t why_len)
{
    if (check_mode(file, why, why_len) < 0)
        return -1;
    t->set = true;
    t->n = 0;
    return 0;
}

void usb_targets_apply(const struct usb_targets *t,
                       const struct usb_config *file, struct usb_config *eff)
{
    *eff = *file;
    if (!t->set || file->mode == USB_PEER_LISTEN)
        return;
    eff->mode = USB_PEER_CONNECT;
    memcpy(eff->slots, t->slots, t->n * sizeof(t->slots[0]));
    eff->nslots = t->n;
}

const char *usb_targets_str(const struct usb_config *cfg, char *buf, size_t len)
{
    char one[HOSTPORT_HOST_MAX + USB_TARGET_MAX + 16];
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < cfg->nslots && used < len; i++) {
        const struct usb_slot_config *s = &cfg->slots[i];
        hostport_str(&s->addr, one, sizeof(one));
        int n = snprintf(buf + used, len - used, "%s%s%s%s", i ? ", " : "", one,
                         s->target[0] ? "/" : "", s->target);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}
