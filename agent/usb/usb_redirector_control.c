/* SPDX-License-Identifier: MIT */
/* What the control socket asks of the USB redirector: detach and attach by
 * port or VID:PID, the events it reports, its status and counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_proto.h"
#include "log.h"
#include "usb_redirector_int.h"
#include "usb_session.h"

const char *usb_event_kind_name(enum usb_event_kind kind)
{
    static const char *const names[] = {
        [USB_EVENT_ARRIVED] = "arrived",
        [USB_EVENT_DECISION] = "decision",
        [USB_EVENT_REDIRECTED] = "redirected",
        [USB_EVENT_REJECTED] = "rejected",
        [USB_EVENT_DISCONNECTED] = "disconnected",
        [USB_EVENT_ERROR] = "error",
        [USB_EVENT_LEFT] = "left",
        [USB_EVENT_DETACHED] = "detached",
        [USB_EVENT_ATTACHED] = "attached",
    };
    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind]
                                                             : "?";
}

static void count(struct usb_redirector_counters *c, const struct usb_event *ev)
{
    switch (ev->kind) {
    case USB_EVENT_REDIRECTED:
        c->redirected++;
        c->reconnects += ev->reconnect;
        break;
    case USB_EVENT_REJECTED: c->rejected++; break;
    case USB_EVENT_DISCONNECTED: c->disconnects++; break;
    case USB_EVENT_ERROR: c->failures++; break;
    case USB_EVENT_DETACHED: c->detached++; break;
    case USB_EVENT_ATTACHED: c->attached++; break;
    default: break;
    }
}

void usb_redirector_emit(struct usb_redirector *r, const struct device_node *d,
                         struct usb_event *ev)
{
    if (d) {
        ev->port = d->e->port;
        ev->product = d->e->product;
        ev->name = d->e->name;
        ev->vid = d->e->info.vid;
        ev->pid = d->e->info.pid;
    }
    count(&r->counters, ev);
    if (r->ops && r->ops->on_event && !r->stopping)
        r->ops->on_event(r->ctx, ev);
}

const struct usb_redirector_counters *
usb_redirector_counters(const struct usb_redirector *r)
{
    return &r->counters;
}

/* ---- detach / attach ---- */

static bool device_matches(const struct device_node *d, const char *sel)
{
    bool vidpid;
    unsigned short vid, pid;

    if (control_parse_selector(sel, &vidpid, &vid, &pid) < 0)
        return false;
    if (vidpid)
        return d->e->info.vid == vid && d->e->info.pid == pid;
    return strcmp(d->e->port, sel) == 0;
}

/* The one device SEL names, or NULL with why. */
static struct device_node *find_one(struct usb_redirector *r, const char *sel,
                                    char *msg, size_t len)
{
    struct device_node *found = NULL;
    size_t n = 0;

    for (struct device_node *d = r->devices; d; d = d->next)
        if (device_matches(d, sel)) {
            found = d;
            n++;
        }
    if (n == 0)
        snprintf(msg, len, "no USB device at %s", sel);
    else if (n > 1)
        snprintf(msg, len,
                 "%zu devices are %s; name one by its port (redir-agent "
                 "status shows them)",
                 n, sel);
    return n == 1 ? found : NULL;
}

int usb_redirector_detach(struct usb_redirector *r, const char *sel, char *msg,
                          size_t len)
{
    struct device_node *d = find_one(r, sel, msg, len);

    if (!d)
        return -1;
    if (d->e->info.dev_class == LIBUSB_CLASS_HUB) {
        snprintf(msg, len, "%s is a hub: hubs are never redirected", sel);
        return -1;
    }
    if (d->held_local) {
        snprintf(msg, len,
                 "%s: already detached (local until attach or a "
                 "replug)",
                 d->e->name);
        return 0;
    }
    bool was = d->session != NULL;
    d->held_local = true;
    d->forced = false;
    usb_redirector_redecide(r, d, true);
    log_notice("%s: detached by the control socket: %s", d->e->name,
               was ? "handed back to the host, kept local"
                   : "kept local (it was not redirected)");
    struct usb_event ev = {.kind = USB_EVENT_DETACHED,
                           .detail = was ? "handed back to the host"
                                         : "was not redirected"};
    usb_redirector_emit(r, d, &ev);
    snprintf(msg, len, "%s: %s", d->e->name,
             was ? "detached: back with the host until attach or a replug"
                 : "was not redirected; kept local until attach or a replug");
    return 1;
}

/* Why attach cannot redirect d at all, or NULL. */
static const char *never_redirected(struct usb_redirector *r,
                                    const struct device_node *d, char *msg,
                                    size_t len)
{
    const char *owner;

    if (d->e->info.dev_class == LIBUSB_CLASS_HUB) {
        snprintf(msg, len, "%s is a hub: hubs are never redirected",
                 d->e->name);
        return msg;
    }
    owner = r->ops->serial_owner(r->ctx, d->e->port, d->e->serial);
    if (owner) {
        snprintf(msg, len,
                 "%s is the device of serial port [serial.%s]: never "
                 "redirected",
                 d->e->name, owner);
        return msg;
    }
    return NULL;
}

/* A device already on its way: nothing to do, say where it is. */
static int already(const struct device_node *d, char *msg, size_t len)
{
    struct usb_session_status st;

    usb_session_status(d->session, &st);
    if (st.state == SESSION_REJECTED)
        snprintf(msg, len,
                 "%s: the VM's usbredir filter refused it; replug it to "
                 "offer it again",
                 d->e->name);
    else
        snprintf(msg, len, "%s: already redirected (%s)", d->e->name,
                 usb_session_state_name(st.state));
    return st.state == SESSION_REJECTED ? -1 : 1;
}

int usb_redirector_attach(struct usb_redirector *r, const char *sel, bool force,
                          bool allow_force, char *msg, size_t len)
{
    struct device_node *d = find_one(r, sel, msg, len);

    if (!d)
        return -1;
    if (force && !allow_force) {
        snprintf(msg, len,
                 "attach --force is not allowed here ([agent] allow_force = "
                 "no); the policy decides");
        return -1;
    }
    if (never_redirected(r, d, msg, len))
        return -1;
    if (d->session && !d->held_local)
        return already(d, msg, len);
    bool was_held = d->held_local;
    d->held_local = false;
    d->forced = force;
    usb_redirector_redecide(r, d, false);
    if (!d->e->decision.redirect) {
        snprintf(msg, len,
                 "%s: the policy keeps it local (%s); attach --force "
                 "overrides that",
                 d->e->name, d->e->decision.reason);
        return -1;
    }
    log_notice("%s: attached by the control socket%s", d->e->name,
               d->forced ? " (forced against the policy)" : "");
    struct usb_event ev = {.kind = USB_EVENT_ATTACHED,
                           .detail = d->e->decision.reason};
    usb_redirector_emit(r, d, &ev);
    snprintf(msg, len, "%s: attached%s: redirect %s (%s)", d->e->name,
             was_held ? "" : " (it was local)",
             usb_access_name(d->e->decision.access), d->e->decision.reason);
    return 1;
}

void usb_redirector_apply_marks(struct device_node *d, const char *owner)
{
    struct usb_decision *dec = &d->e->decision;
    char policy[sizeof(dec->reason)];

    if (d->held_local) {
        dec->redirect = false;
        snprintf(dec->reason, sizeof(dec->reason),
                 "detached by the control socket: local until attach or "
                 "a replug");
        return;
    }
    if (!d->forced || dec->redirect || owner ||
        d->e->info.dev_class == LIBUSB_CLASS_HUB)
        return;
    memcpy(policy, dec->reason, sizeof(policy));
    dec->redirect = true;
    dec->access = USB_ACCESS_RW;
    snprintf(dec->reason, sizeof(dec->reason), "attach --force over: %.*s",
             (int)(sizeof(dec->reason) - 32), policy);
}

/* ---- status ---- */

static void device_status(const struct device_node *d,
                          struct usb_device_status *out)
{
    const struct usb_device_entry *e = d->e;

    *out = (struct usb_device_status){
        .port = e->port,
        .product = e->product,
        .serial = e->serial,
        .reason = e->decision.reason,
        .vid = e->info.vid,
        .pid = e->info.pid,
        .redirect = e->decision.redirect,
        .access = e->decision.access,
        .held_local = d->held_local,
        .forced = d->forced,
        .has_session = d->session != NULL,
    };
    if (d->session)
        usb_session_status(d->session, &out->session);
}

void usb_redirector_status(const struct usb_redirector *r,
                           struct usb_status *out)
{
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    out->mode = r->cfg->mode;
    out->n_slots = r->slots.n;
    for (size_t i = 0; i < r->slots.n; i++)
        out->slots[i] = (struct usb_slot_status){
            .index = r->slots.slots[i]->index,
            .endpoint = r->slots.slots[i]->name,
            .busy = r->slots.slots[i]->session != NULL,
        };
    for (const struct device_node *d = r->devices; d; d = d->next)
        n++;
    out->devices = n ? calloc(n, sizeof(*out->devices)) : NULL;
    if (!out->devices)
        return;
    for (const struct device_node *d = r->devices; d; d = d->next)
        device_status(d, &out->devices[out->n_devices++]);
}

void usb_status_free(struct usb_status *st)
{
    free(st->devices);
    st->devices = NULL;
    st->n_devices = 0;
}
