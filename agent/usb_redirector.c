/* USB redirection as a whole: hotplug, policy decisions, slots, and the
 * sessions on them. */
#include "usb_redirector.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "peer_conn.h"
#include "usb_device.h"
#include "usb_session.h"

#define LISTEN_BACKLOG 4 /* one peer per slot; a few in flight at restart */

struct hotplug_event {
    struct hotplug_event *next;
    libusb_device *dev; /* referenced */
    libusb_hotplug_event event;
};

/* ---- slots ---- */

static struct usb_slot *find_free_slot(struct usb_redirector *r)
{
    for (size_t i = 0; i < r->nslots; i++)
        if (!r->slots[i].session)
            return &r->slots[i];
    return NULL;
}

static void offer_slot(struct usb_redirector *r, struct usb_session *s)
{
    struct usb_slot *slot = find_free_slot(r);
    if (slot) {
        usb_session_take_slot(s, slot);
        return;
    }
    log_notice("%s: all %zu slots are busy; waiting for one to free up",
               s->name, r->nslots);
}

void usb_redirector_release_slot(struct usb_redirector *r,
                                 struct usb_session *s)
{
    struct usb_slot *slot = s->slot;

    if (!slot)
        return;
    slot->session = NULL;
    s->slot = NULL;
    if (r->stopping)
        return;
    /* The list is in arrival order: the longest-waiting device goes next. */
    for (struct usb_session *w = r->sessions; w; w = w->next) {
        if (w->state == SESSION_WAIT_SLOT && w != s) {
            log_info("%s: slot %u is free now", w->name, slot->index);
            usb_session_take_slot(w, slot);
            return;
        }
    }
}

void usb_redirector_forget(struct usb_redirector *r, struct usb_session *s)
{
    for (struct usb_device_entry *e = r->devices; e; e = e->next)
        if (e->session == s)
            e->session = NULL;
    for (struct usb_session **pp = &r->sessions; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    usb_redirector_release_slot(r, s);
}

static void usb_redirector_finish_stop(struct usb_redirector *r);

void usb_redirector_session_closed(struct usb_redirector *r)
{
    r->live_sessions--;
    if (r->stopping && r->live_sessions == 0)
        usb_redirector_finish_stop(r);
}

/* ---- decisions ---- */

static void device_decide(struct usb_redirector *r, struct usb_device_entry *e)
{
    usb_device_decide(e, &r->policy, r->cfg);
}

static void device_log_decision(const struct usb_device_entry *e)
{
    const struct usb_decision *d = &e->decision;
    if (d->redirect)
        log_info("%s: redirect %s (%s)", e->name, usb_access_name(d->access),
                 d->reason);
    else
        log_msg(e->info.dev_class == USB_CLASS_HUB ? LOG_DEBUG : LOG_INFO,
                "%s: stays local (%s)", e->name, d->reason);
}

static void device_start_session(struct usb_redirector *r,
                                 struct usb_device_entry *e)
{
    struct usb_session *s =
        usb_session_new(r, e->dev, e->name, e->decision.access);
    if (!s) {
        log_err("%s: out of memory", e->name);
        return;
    }
    struct usb_session **tail = &r->sessions;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
    r->live_sessions++;
    e->session = s;
    offer_slot(r, s);
}

static void handle_arrival(struct usb_redirector *r, libusb_device *dev)
{
    struct usb_device_entry *e = usb_device_entry_new(dev);

    if (!e) {
        log_warn("a new USB device could not be read; ignoring it");
        return;
    }
    e->next = r->devices;
    r->devices = e;
    device_decide(r, e);
    device_log_decision(e);
    if (e->decision.redirect)
        device_start_session(r, e);
}

static void handle_departure(struct usb_redirector *r, libusb_device *dev)
{
    for (struct usb_device_entry **pp = &r->devices; *pp; pp = &(*pp)->next) {
        struct usb_device_entry *e = *pp;
        if (e->dev != dev)
            continue;
        *pp = e->next;
        if (e->session)
            usb_session_device_left(e->session); /* may free it */
        else
            log_msg(e->info.dev_class == USB_CLASS_HUB ? LOG_DEBUG : LOG_INFO,
                    "%s: unplugged (was local)", e->name);
        usb_device_entry_free(e);
        return;
    }
}

/* Called on SIGHUP after the config was swapped. */
void usb_redirector_reconfigure(struct usb_redirector *r)
{
    r->policy = (struct usb_policy){
        .rules = r->cfg->usb_rules,
        .n_rules = r->cfg->n_usb_rules,
        .filter_rules = r->cfg->usb_filter_rules,
        .filter_count = r->cfg->usb_filter_count,
    };
    for (struct usb_device_entry *e = r->devices; e; e = e->next) {
        if (e->session && usb_session_is_redirecting(e->session))
            continue; /* running sessions keep their decision */
        struct usb_decision before = e->decision;
        device_decide(r, e);
        if (before.redirect == e->decision.redirect &&
            before.access == e->decision.access)
            continue;
        device_log_decision(e);
        if (e->session && !e->decision.redirect)
            usb_session_withdraw(e->session);
        else if (e->session)
            e->session->access = e->decision.access;
        else if (e->decision.redirect)
            device_start_session(r, e);
    }
}

/* ---- hotplug ---- */

/* Runs outside libusb's event handling: opening, claiming and closing
 * devices from inside a hotplug callback is not allowed. */
static void on_drain_hotplug(uv_timer_t *timer)
{
    struct usb_redirector *r = timer->data;

    while (r->queue_head) {
        struct hotplug_event *ev = r->queue_head;
        r->queue_head = ev->next;
        if (!r->queue_head)
            r->queue_tail = NULL;
        if (!r->stopping) {
            if (ev->event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED)
                handle_arrival(r, ev->dev);
            else
                handle_departure(r, ev->dev);
        }
        libusb_unref_device(ev->dev);
        free(ev);
    }
}

/* Called by libusb from event handling (or from registration, for the
 * devices already present): only queues. */
static int on_hotplug(libusb_context *ctx, libusb_device *dev,
                      libusb_hotplug_event event, void *user_data)
{
    struct usb_redirector *r = user_data;
    struct hotplug_event *ev = calloc(1, sizeof(*ev));
    (void)ctx;

    if (!ev) {
        log_err("out of memory queueing a hotplug event");
        return 0;
    }
    ev->dev = libusb_ref_device(dev);
    ev->event = event;
    if (r->queue_tail)
        r->queue_tail->next = ev;
    else
        r->queue_head = ev;
    r->queue_tail = ev;
    uv_timer_start(&r->queue_timer, on_drain_hotplug, 0, 0);
    return 0;
}

/* ---- listen mode ---- */

static void on_peer_connection(uv_stream_t *server, int status)
{
    struct usb_slot *slot = server->data;
    struct peer_conn *c;

    if (status < 0) {
        log_warn("slot %u: accepting on %s failed: %s", slot->index, slot->name,
                 uv_strerror(status));
        return;
    }
    c = peer_conn_accept(server);
    if (!c)
        return;
    if (slot->r->stopping) {
        peer_conn_close(c, false);
        return;
    }
    if (slot->session) {
        usb_session_peer_arrived(slot->session, c);
        return;
    }
    log_info("slot %u: peer %s connected on %s; no device for it yet",
             slot->index, peer_conn_name(c), slot->name);
    if (slot->parked)
        peer_conn_close(slot->parked, false);
    slot->parked = c;
}

static int slot_listen(struct usb_redirector *r, struct usb_slot *slot)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char port[8];
    int rc;

    snprintf(port, sizeof(port), "%u", slot->addr.port);
    rc = getaddrinfo(slot->addr.host, port, &hints, &res);
    if (rc != 0) {
        log_err("slot %u: cannot resolve %s: %s", slot->index, slot->name,
                gai_strerror(rc));
        return -1;
    }
    uv_tcp_init(r->loop, &slot->listener);
    slot->listener.data = slot;
    slot->listening = true;
    rc = uv_tcp_bind(&slot->listener, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&slot->listener, LISTEN_BACKLOG,
                       on_peer_connection);
    if (rc < 0) {
        log_err("slot %u: cannot listen on %s: %s", slot->index, slot->name,
                uv_strerror(rc));
        return -1;
    }
    log_info("slot %u: listening on %s", slot->index, slot->name);
    return 0;
}

/* ---- start / stop ---- */

static void on_libusb_log(libusb_context *ctx, enum libusb_log_level level,
                          const char *msg)
{
    (void)ctx;
    /* libusb reports unplug fallout as errors; the session logs what
     * matters to an admin. */
    log_msg(level == LIBUSB_LOG_LEVEL_ERROR ? LOG_INFO : LOG_DEBUG,
            "libusb: %.*s", (int)strcspn(msg, "\n"), msg);
}

static int usb_redirector_init_slots(struct usb_redirector *r)
{
    r->nslots = r->cfg->usb_nslots;
    for (size_t i = 0; i < r->nslots; i++) {
        struct usb_slot *slot = &r->slots[i];
        slot->r = r;
        slot->index = (unsigned)i + 1;
        slot->addr = r->cfg->usb_slots[i];
        hostport_str(&slot->addr, slot->name, sizeof(slot->name));
        if (r->cfg->usb_mode == USB_PEER_LISTEN && slot_listen(r, slot) < 0)
            return -1;
    }
    return 0;
}

int usb_redirector_start(struct usb_redirector *r, uv_loop_t *loop,
                         const struct agent_config *cfg)
{
    int rc;

    memset(r, 0, sizeof(*r));
    r->loop = loop;
    r->cfg = cfg;
    usb_redirector_reconfigure(r); /* no devices yet: sets the policy */
    uv_timer_init(loop, &r->queue_timer);
    r->queue_timer.data = r;

    rc = libusb_init(&r->ctx);
    if (rc < 0) {
        log_err("cannot initialise libusb: %s", libusb_error_name(rc));
        return -1;
    }
    libusb_set_log_cb(r->ctx, on_libusb_log, LIBUSB_LOG_CB_CONTEXT);
    libusb_set_option(r->ctx, LIBUSB_OPTION_LOG_LEVEL,
                      LIBUSB_LOG_LEVEL_WARNING);
    if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
        log_err("libusb has no hotplug support on this system");
        return -1;
    }
    if (usb_events_start(&r->events, loop, r->ctx) < 0)
        return -1;
    if (usb_redirector_init_slots(r) < 0)
        return -1;
    rc = libusb_hotplug_register_callback(
        r->ctx,
        LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
        LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY,
        LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, r,
        &r->hotplug);
    if (rc < 0) {
        log_err("cannot watch USB hotplug: %s", libusb_error_name(rc));
        return -1;
    }
    r->hotplug_registered = true;
    return 0;
}

static void usb_redirector_finish_stop(struct usb_redirector *r)
{
    while (r->devices) {
        struct usb_device_entry *e = r->devices;
        r->devices = e->next;
        usb_device_entry_free(e);
    }
    usb_events_stop(&r->events);
    if (r->ctx) {
        libusb_exit(r->ctx);
        r->ctx = NULL;
    }
    if (r->on_stopped)
        r->on_stopped(r);
}

void usb_redirector_stop(struct usb_redirector *r,
                         void (*on_stopped)(struct usb_redirector *r))
{
    r->stopping = true;
    r->on_stopped = on_stopped;
    if (r->hotplug_registered) {
        libusb_hotplug_deregister_callback(r->ctx, r->hotplug);
        r->hotplug_registered = false;
    }
    on_drain_hotplug(&r->queue_timer); /* frees queued events */
    uv_close((uv_handle_t *)&r->queue_timer, NULL);
    for (size_t i = 0; i < r->nslots; i++) {
        struct usb_slot *slot = &r->slots[i];
        if (slot->parked) {
            peer_conn_close(slot->parked, false);
            slot->parked = NULL;
        }
        if (slot->listening)
            uv_close((uv_handle_t *)&slot->listener, NULL);
        slot->listening = false;
    }
    /* Sessions unlink themselves, possibly right away. */
    struct usb_session *s = r->sessions;
    while (s) {
        struct usb_session *next = s->next;
        usb_session_shutdown(s);
        s = next;
    }
    if (r->live_sessions == 0)
        usb_redirector_finish_stop(r);
}
