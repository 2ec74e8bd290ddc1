/* SPDX-License-Identifier: MIT */
/* Where redirected devices go: one slot per configured endpoint (a chardev
 * or a relay target), one device at a time; in listen mode the slot's
 * listener and a peer that connected before any device needed it. */
#include "usb_slots.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net_conn.h"
#include "net_listener.h"
#include "net_tls.h"

#define LISTEN_BACKLOG 4 /* one peer per slot; a few in flight at restart */

void usb_slot_park(struct usb_slot *slot, struct net_conn *c)
{
    if (slot->parked)
        net_conn_close(slot->parked, false);
    slot->parked = c;
}

struct net_conn *usb_slot_take_parked(struct usb_slot *slot)
{
    struct net_conn *c = slot->parked;

    slot->parked = NULL;
    return c;
}

static void on_accept(void *ctx, struct net_conn *c)
{
    struct usb_slot *slot = ctx;
    struct usb_slots *t = slot->table;

    if (slot->session) {
        t->ops->on_peer(t->ctx, slot, c);
        return;
    }
    log_info("slot %u: peer %s connected on %s; no device for it yet",
             slot->index, net_conn_name(c), slot->name);
    usb_slot_park(slot, c);
}

static int slot_listen(struct usb_slot *slot)
{
    char why[ENDPOINT_STR_MAX + 128];

    slot->listener =
        net_listener_open(slot->table->loop, &slot->ep, LISTEN_BACKLOG, 0,
                          on_accept, slot, why, sizeof(why));
    if (!slot->listener) {
        log_err("slot %u: %s", slot->index, why);
        return -1;
    }
    net_listener_set_guard(slot->listener, &slot->table->guard);
    log_info("slot %u: listening on %s%s", slot->index, slot->name,
             slot->table->tls ? " (TLS, client certificates required)" : "");
    return 0;
}

const char *usb_slot_peer_name(const struct usb_slot *slot)
{
    return slot->table->peer_name[0] ? slot->table->peer_name
                                     : slot->ep.tcp.host;
}

/* The TLS context and listener guard of u. Returns 0, or -1 after
 * logging why (then nothing may be redirected: no silent plaintext). */
static int slots_security(struct usb_slots *t, const struct usb_config *u)
{
    char err[NET_TLS_ERR_MAX];
    struct net_tls_ctx *tls = NULL;

    if (u->tls.enabled) {
        tls = net_tls_ctx_new(&u->tls, u->mode == USB_PEER_LISTEN, err,
                              sizeof(err));
        if (!tls) {
            log_err("[usb] TLS: %s", err);
            return -1;
        }
    }
    net_tls_ctx_unref(t->tls);
    t->tls = tls;
    snprintf(t->peer_name, sizeof(t->peer_name), "%s",
             u->tls.peer_name ? u->tls.peer_name : "");
    net_guard_init(&t->guard, "usb listener");
    t->guard.allow_any = u->allow_any || !u->allow.n;
    t->guard.allow = u->allow;
    t->guard.tls = tls;
    if (u->mode == USB_PEER_LISTEN && u->tls.peer_name) /* client globs */
        snprintf(t->guard.peer_glob, sizeof(t->guard.peer_glob), "%s",
                 u->tls.peer_name);
    return 0;
}

/* Stops listening and hangs up a parked peer. */
static void slot_quiesce(struct usb_slot *slot)
{
    if (slot->parked)
        net_conn_close(slot->parked, false);
    slot->parked = NULL;
    if (slot->listener)
        net_listener_close(slot->listener);
    slot->listener = NULL;
}

static struct usb_slot *
slot_new(struct usb_slots *t, const struct usb_slot_config *sc, unsigned index)
{
    struct usb_slot *slot = calloc(1, sizeof(*slot));

    if (!slot) {
        log_err("slot %u: out of memory", index);
        return NULL;
    }
    slot->table = t;
    slot->index = index;
    slot->ep.tcp = sc->addr;
    memcpy(slot->target, sc->target, sizeof(slot->target));
    endpoint_str(&slot->ep, slot->name, sizeof(slot->name));
    if (t->mode == USB_PEER_LISTEN && slot_listen(slot) < 0) {
        free(slot);
        return NULL;
    }
    return slot;
}

int usb_slots_open(struct usb_slots *t, uv_loop_t *loop,
                   const struct usb_config *u, const struct usb_slots_ops *ops,
                   void *ctx)
{
    memset(t, 0, sizeof(*t));
    t->loop = loop;
    t->mode = u->mode;
    t->transport = u->transport;
    t->ops = ops;
    t->ctx = ctx;
    if (slots_security(t, u) < 0)
        return -1;
    for (size_t i = 0; i < u->nslots; i++) {
        t->slots[i] = slot_new(t, &u->slots[i], (unsigned)i + 1);
        if (!t->slots[i]) {
            usb_slots_close(t);
            return -1;
        }
        t->n = i + 1;
    }
    return 0;
}

/* The slot of t that serves sc unchanged, taken out of t, or NULL. */
static struct usb_slot *slot_take_same(struct usb_slots *t,
                                       const struct usb_slot_config *sc)
{
    for (size_t i = 0; i < t->n; i++) {
        struct usb_slot *slot = t->slots[i];
        if (slot && slot->ep.tcp.port == sc->addr.port &&
            strcmp(slot->ep.tcp.host, sc->addr.host) == 0 &&
            strcmp(slot->target, sc->target) == 0) {
            t->slots[i] = NULL;
            return slot;
        }
    }
    return NULL;
}

static void slot_retire(struct usb_slots *t, struct usb_slot *slot)
{
    slot->retired = true;
    slot_quiesce(slot);
    if (slot->session)
        t->ops->on_retired(t->ctx, slot);
    else
        free(slot);
}

size_t usb_slots_reconfigure(struct usb_slots *t, const struct usb_config *u)
{
    struct usb_slots old = *t;
    struct usb_slot *kept[USB_CONFIG_MAX_SLOTS] = {NULL};
    size_t n = 0, changed = 0;
    bool secure = slots_security(t, u) == 0;

    if (t->mode != u->mode || t->transport != u->transport || !secure)
        old.n = 0; /* nothing can be kept */
    t->rebuilding = true;
    for (size_t i = 0; i < u->nslots; i++)
        kept[i] = slot_take_same(&old, &u->slots[i]);
    /* Retired listeners close first: a new slot may reuse the address. */
    for (size_t i = 0; i < t->n; i++) {
        bool taken = false;
        for (size_t k = 0; k < u->nslots && !taken; k++)
            taken = kept[k] == t->slots[i];
        if (!taken) {
            changed++;
            slot_retire(t, t->slots[i]);
        }
        t->slots[i] = NULL;
    }
    t->mode = u->mode;
    t->transport = u->transport;
    for (size_t i = 0; i < u->nslots && secure; i++) {
        struct usb_slot *slot = kept[i];
        if (!slot) {
            changed++;
            slot = slot_new(t, &u->slots[i], (unsigned)n + 1);
        } else if (slot->listener) {
            net_listener_set_guard(slot->listener, &t->guard);
        }
        if (!slot)
            continue;
        slot->index = (unsigned)n + 1;
        t->slots[n++] = slot;
    }
    t->n = n;
    t->rebuilding = false;
    return changed;
}

void usb_slots_released(struct usb_slots *t, struct usb_slot *slot)
{
    (void)t;
    if (slot->retired)
        free(slot);
}

void usb_slots_close(struct usb_slots *t)
{
    for (size_t i = 0; i < t->n; i++) {
        slot_quiesce(t->slots[i]);
        if (t->slots[i]->session)
            t->slots[i]->retired = true; /* freed when released */
        else
            free(t->slots[i]);
        t->slots[i] = NULL;
    }
    t->n = 0;
    net_tls_ctx_unref(t->tls); /* sessions' connections hold their own */
    t->tls = NULL;
}

struct usb_slot *usb_slots_find_free(struct usb_slots *t)
{
    if (t->rebuilding)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        if (!t->slots[i]->session)
            return t->slots[i];
    return NULL;
}
