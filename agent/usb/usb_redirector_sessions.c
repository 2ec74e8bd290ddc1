/* SPDX-License-Identifier: MIT */
/* Inside the USB redirector: slots and sessions. A device the policy
 * redirects gets a session; free slots go to the sessions that waited
 * longest; what sessions and slots report comes back here. */
#include "log.h"
#include "usb_redirector_int.h"
#include "usb_session.h"
#include "usb_slots.h"

static const struct usb_session_ops redirector_session_ops;

/* The device that has waited longest for a slot, or NULL. */
static struct device_node *longest_waiting(struct usb_redirector *r)
{
    struct device_node *best = NULL;

    for (struct device_node *d = r->devices; d; d = d->next)
        if (d->session && usb_session_waits_for_slot(d->session) &&
            (!best || d->seq < best->seq))
            best = d;
    return best;
}

/* Gives free slots to waiting devices, longest waiting first. */
void usb_redirector_offer_slots(struct usb_redirector *r)
{
    struct usb_slot *slot;
    struct device_node *d;

    while (!r->stopping && (slot = usb_slots_find_free(&r->slots)) &&
           (d = longest_waiting(r)))
        usb_session_take_slot(d->session, slot);
}

static void on_slot_released(void *ctx, struct usb_session *s,
                             struct usb_slot *slot)
{
    struct usb_redirector *r = ctx;
    struct device_node *d = longest_waiting(r);
    (void)s;

    usb_slots_released(&r->slots, slot);
    if (d && d->session != s && !slot->retired && !r->stopping)
        log_info("%s: slot %u is free now", d->e->name, slot->index);
    usb_redirector_offer_slots(r);
}

static void on_session_ended(void *ctx, struct usb_session *s)
{
    struct usb_redirector *r = ctx;
    struct usb_session_status st;

    usb_session_status(s, &st); /* its bytes stay in the totals */
    r->counters.bytes_to_peer += st.bytes_to_peer;
    r->counters.bytes_from_peer += st.bytes_from_peer;
    r->counters.wire_bytes_to_peer += st.wire_bytes_to_peer;

    for (struct device_node *d = r->devices; d; d = d->next)
        if (d->session == s)
            d->session = NULL;
}

/* The libusb context outlives every session's device reference. */
static void on_session_freed(void *ctx)
{
    struct usb_redirector *r = ctx;

    if (--r->live_sessions == 0 && r->stopping)
        usb_redirector_finish(r);
}

static void on_session_event(void *ctx, struct usb_session *s, int kind,
                             const char *detail, const char *peer,
                             bool reconnect)
{
    struct usb_redirector *r = ctx;
    struct usb_session_status st;
    struct device_node *d = r->devices;

    while (d && d->session != s)
        d = d->next;
    usb_session_status(s, &st);
    struct usb_event ev = {
        .kind = (enum usb_event_kind)kind,
        .detail = detail,
        .peer = peer,
        .slot = st.slot,
        .reconnect = reconnect,
        .access = d ? usb_access_name(d->e->decision.access) : NULL,
    };
    usb_redirector_emit(r, d, &ev);
}

static const struct usb_session_ops redirector_session_ops = {
    .on_slot_released = on_slot_released,
    .on_ended = on_session_ended,
    .on_freed = on_session_freed,
    .on_event = on_session_event,
};

static void on_peer(void *ctx, struct usb_slot *slot, struct net_conn *c)
{
    (void)ctx;
    usb_session_peer_arrived(slot->session, c);
}

static void on_slot_retired(void *ctx, struct usb_slot *slot)
{
    (void)ctx;
    usb_session_leave_slot(slot->session);
}

const struct usb_slots_ops usb_redirector_slots_ops = {
    .on_peer = on_peer,
    .on_retired = on_slot_retired,
};

void usb_redirector_start_session(struct usb_redirector *r,
                                  struct device_node *d)
{
    struct usb_session_params p = {
        .loop = r->loop,
        .usb = r->usb,
        .dev = d->e->dev,
        .name = d->e->name,
        .access = d->e->decision.access,
        .cfg = &r->cfg,
    };

    d->session = usb_session_new(&p, &redirector_session_ops, r);
    if (!d->session) {
        log_err("%s: out of memory", d->e->name);
        return;
    }
    r->live_sessions++;
    d->seq = r->next_seq++;
    if (r->slots.n == 0) {
        log_notice("%s: no USB targets now (target --clear); it stays with "
                   "the host until there is one",
                   d->e->name);
        return;
    }
    if (!usb_slots_find_free(&r->slots)) {
        log_notice("%s: all %zu slots are busy; waiting for one to free up",
                   d->e->name, r->slots.n);
        return;
    }
    usb_redirector_offer_slots(r);
}
