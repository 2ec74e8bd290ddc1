/* SPDX-License-Identifier: MIT */
/* USB redirection as a whole: hotplug, a policy decision per device, slots,
 * and a session for every device that is redirected. */
#include "usb_redirector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "usb_device.h"
#include "usb_events.h"
#include "usb_kernel_hotplug.h"
#include "usb_policy.h"
#include "usb_rebind.h"
#include "usb_redirector_int.h"
#include "usb_slots.h"

static const struct usb_session_ops redirector_session_ops;

/* ---- slots ---- */

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
static void offer_slots(struct usb_redirector *r)
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
    offer_slots(r);
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

static void redirector_finish(struct usb_redirector *r);

/* The libusb context outlives every session's device reference. */
static void on_session_freed(void *ctx)
{
    struct usb_redirector *r = ctx;

    if (--r->live_sessions == 0 && r->stopping)
        redirector_finish(r);
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

static const struct usb_slots_ops redirector_slots_ops = {
    .on_peer = on_peer,
    .on_retired = on_slot_retired,
};

/* ---- decisions ---- */

static void device_decide(struct usb_redirector *r, struct device_node *d)
{
    const char *owner = r->ops->serial_owner(r->ctx, d->e->port, d->e->serial);
    usb_device_decide(d->e, &r->policy, owner);
    usb_redirector_apply_marks(d, owner);
}

/* "decision" for the events stream. */
static void device_emit_decision(struct usb_redirector *r,
                                 const struct device_node *d)
{
    struct usb_event ev = {
        .kind = USB_EVENT_DECISION,
        .redirect = d->e->decision.redirect,
        .access = d->e->decision.redirect
                      ? usb_access_name(d->e->decision.access)
                      : NULL,
        .detail = d->e->decision.reason,
    };
    usb_redirector_emit(r, d, &ev);
}

static void device_log_decision(const struct usb_device_entry *e)
{
    const struct usb_decision *dec = &e->decision;

    if (dec->redirect)
        log_info("%s: redirect %s (%s)", e->name, usb_access_name(dec->access),
                 dec->reason);
    else
        log_msg(e->info.dev_class == USB_CLASS_HUB ? LOG_DEBUG : LOG_INFO,
                "%s: stays local (%s)", e->name, dec->reason);
}

static void device_start_session(struct usb_redirector *r,
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
    offer_slots(r);
}

/* A device's bus and device number are unique while it is plugged. */
static struct device_node *find_by_address(struct usb_redirector *r,
                                           uint8_t busnum, uint8_t devnum)
{
    for (struct device_node *d = r->devices; d; d = d->next)
        if (libusb_get_bus_number(d->e->dev) == busnum &&
            libusb_get_device_address(d->e->dev) == devnum)
            return d;
    return NULL;
}

/* port is NULL when libusb knows it. A device the policy keeps local gets
 * its driverless interfaces back at start: after a crash, nobody else
 * would. */
static void handle_arrival(struct usb_redirector *r, libusb_device *dev,
                           const char *port, bool at_start)
{
    struct device_node *d;

    /* Both libusb and the kernel's uevents may report it (udevd started
     * after the agent, or a plug while the agent started). */
    if (find_by_address(r, libusb_get_bus_number(dev),
                        libusb_get_device_address(dev)))
        return;
    d = calloc(1, sizeof(*d));
    if (d)
        d->e = usb_device_entry_new_at(dev, port);
    if (!d || !d->e) {
        free(d);
        log_warn("a new USB device could not be read; ignoring it");
        return;
    }
    d->next = r->devices;
    r->devices = d;
    device_decide(r, d);
    device_log_decision(d->e);
    usb_redirector_emit(r, d, &(struct usb_event){.kind = USB_EVENT_ARRIVED});
    device_emit_decision(r, d);
    if (d->e->decision.redirect)
        device_start_session(r, d);
    else if (at_start && d->e->info.dev_class != USB_CLASS_HUB)
        usb_rebind_driverless(d->e->dev, d->e->port, d->e->name);
}

/* A device the kernel reported: libusb's own device list never learns of
 * it without udevd, so it is opened by its address. */
static void handle_kernel_arrival(struct usb_redirector *r,
                                  const struct hotplug_event *ev)
{
    libusb_device *dev;

    if (find_by_address(r, ev->busnum, ev->devnum))
        return; /* libusb reported it already */
    dev = usb_device_wrap(r->usb, ev->busnum, ev->devnum);
    if (!dev) {
        log_info("new USB device at %s could not be opened (gone "
                 "already?); ignoring it",
                 ev->port);
        return;
    }
    handle_arrival(r, dev, ev->port, false);
    libusb_unref_device(dev); /* the entry holds its own reference */
}

static void device_node_free(struct device_node *d)
{
    usb_device_entry_free(d->e);
    free(d);
}

/* The departing device is dev, or (dev NULL) the one at that address. */
static void handle_departure(struct usb_redirector *r, libusb_device *dev,
                             uint8_t busnum, uint8_t devnum)
{
    for (struct device_node **pp = &r->devices; *pp; pp = &(*pp)->next) {
        struct device_node *d = *pp;
        if (dev ? d->e->dev != dev
                : libusb_get_bus_number(d->e->dev) != busnum ||
                      libusb_get_device_address(d->e->dev) != devnum)
            continue;
        *pp = d->next;
        usb_redirector_emit(r, d, &(struct usb_event){.kind = USB_EVENT_LEFT});
        if (d->session)
            usb_session_device_left(d->session); /* may end it now */
        else
            log_msg(d->e->info.dev_class == USB_CLASS_HUB ? LOG_DEBUG
                                                          : LOG_INFO,
                    "%s: unplugged (was local)", d->e->name);
        device_node_free(d);
        return;
    }
}

/* Decides d again under the current rules; a running session keeps its
 * decision (a reload) unless even_if_redirecting (detach, attach). */
void usb_redirector_redecide(struct usb_redirector *r, struct device_node *d,
                             bool even_if_redirecting)
{
    struct usb_decision before = d->e->decision;

    if (d->session && usb_session_is_redirecting(d->session) &&
        !even_if_redirecting)
        return;
    device_decide(r, d);
    if (before.redirect == d->e->decision.redirect &&
        before.access == d->e->decision.access)
        return;
    device_log_decision(d->e);
    device_emit_decision(r, d);
    if (d->session && !d->e->decision.redirect)
        usb_session_withdraw(d->session);
    else if (d->session)
        usb_session_set_access(d->session, d->e->decision.access);
    else if (d->e->decision.redirect)
        device_start_session(r, d);
}

static void set_policy(struct usb_redirector *r)
{
    r->policy = (struct usb_policy){
        .rules = r->cfg->rules,
        .n_rules = r->cfg->n_rules,
        .filter_rules = r->cfg->filter_rules,
        .filter_count = r->cfg->filter_count,
    };
}

/* Called on reload after the config was replaced. */
size_t usb_redirector_reconfigure(struct usb_redirector *r,
                                  const struct usb_config *cfg)
{
    r->cfg = cfg;
    set_policy(r);
    size_t changed = usb_slots_reconfigure(&r->slots, cfg);
    if (changed)
        log_info("%zu USB slot%s changed; devices on them move", changed,
                 changed == 1 ? "" : "s");
    for (struct device_node *d = r->devices; d; d = d->next)
        usb_redirector_redecide(r, d, false);
    offer_slots(r);
    return changed;
}

/* ---- hotplug ---- */

static void handle_event(struct usb_redirector *r,
                         const struct hotplug_event *ev)
{
    if (ev->event == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT)
        handle_departure(r, ev->dev, ev->busnum, ev->devnum);
    else if (ev->dev)
        handle_arrival(r, ev->dev, NULL, ev->at_start);
    else
        handle_kernel_arrival(r, ev);
}

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
        if (!r->stopping)
            handle_event(r, ev);
        if (ev->dev)
            libusb_unref_device(ev->dev);
        free(ev);
    }
}

static struct hotplug_event *queue_event(struct usb_redirector *r,
                                         libusb_hotplug_event event)
{
    struct hotplug_event *ev = calloc(1, sizeof(*ev));

    if (!ev) {
        log_err("out of memory queueing a hotplug event");
        return NULL;
    }
    ev->event = event;
    if (r->queue_tail)
        r->queue_tail->next = ev;
    else
        r->queue_head = ev;
    r->queue_tail = ev;
    uv_timer_start(&r->queue_timer, on_drain_hotplug, 0, 0);
    return ev;
}

/* Called by libusb from event handling (or from registration, for the
 * devices already present): only queues. */
static int on_hotplug(libusb_context *ctx, libusb_device *dev,
                      libusb_hotplug_event event, void *user_data)
{
    struct usb_redirector *r = user_data;
    struct hotplug_event *ev = queue_event(r, event);
    (void)ctx;

    if (ev) {
        ev->dev = libusb_ref_device(dev);
        ev->at_start = r->enumerating;
    }
    return 0;
}

/* The kernel's uevents, without udevd: queued like libusb's. */
static void queue_kernel_event(struct usb_redirector *r,
                               libusb_hotplug_event event,
                               const struct usb_sysfs_device *d)
{
    struct hotplug_event *ev = queue_event(r, event);

    if (!ev)
        return;
    ev->busnum = d->busnum;
    ev->devnum = d->devnum;
    snprintf(ev->port, sizeof(ev->port), "%s", d->port);
}

static void on_kernel_arrived(void *ctx, const struct usb_sysfs_device *d)
{
    queue_kernel_event(ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, d);
}

static void on_kernel_left(void *ctx, const struct usb_sysfs_device *d)
{
    queue_kernel_event(ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, d);
}

static const struct usb_kernel_hotplug_ops kernel_hotplug_ops = {
    .arrived = on_kernel_arrived,
    .left = on_kernel_left,
};

/* Debian's libusb is built with udev: it hears only udevd's re-broadcast
 * of uevents, and its device list never changes without one. The choice
 * is made once and logged once. Before libusb enumerates, so that a
 * device plugged meanwhile is heard. */
static void redirector_choose_hotplug(struct usb_redirector *r)
{
    const char *why;

    if (usb_kernel_hotplug_udevd_runs(&why)) {
        log_info("hotplug: udev (libusb hears the udev daemon's events)");
        return;
    }
    r->kernel_hotplug =
        usb_kernel_hotplug_start(r->loop, &kernel_hotplug_ops, r);
    if (r->kernel_hotplug)
        log_info("hotplug: kernel uevents (%s)", why);
    else
        log_warn("hotplug: none (%s, and kernel uevents cannot be heard): "
                 "only devices present now are seen",
                 why);
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

static int redirector_init_libusb(struct usb_redirector *r)
{
    int rc = libusb_init(&r->usb);

    if (rc < 0) {
        log_err("cannot initialise libusb: %s", libusb_error_name(rc));
        r->usb = NULL;
        return -1;
    }
    libusb_set_log_cb(r->usb, on_libusb_log, LIBUSB_LOG_CB_CONTEXT);
    libusb_set_option(r->usb, LIBUSB_OPTION_LOG_LEVEL,
                      LIBUSB_LOG_LEVEL_WARNING);
    if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
        log_err("libusb has no hotplug support on this system");
        return -1;
    }
    return usb_events_start(&r->events, r->loop, r->usb);
}

static int redirector_watch_hotplug(struct usb_redirector *r)
{
    r->enumerating = true; /* the present devices are reported now */
    int rc = libusb_hotplug_register_callback(
        r->usb,
        LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
        LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY,
        LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, r,
        &r->hotplug);

    r->enumerating = false;
    if (rc < 0) {
        log_err("cannot watch USB hotplug: %s", libusb_error_name(rc));
        return -1;
    }
    r->hotplug_registered = true;
    return 0;
}

static void on_queue_timer_closed(uv_handle_t *handle)
{
    struct usb_redirector *r = handle->data;
    const struct usb_redirector_ops *ops = r->ops;
    void *ctx = r->ctx;

    free(r);
    if (ops)
        ops->on_stopped(ctx);
}

/* Everything is released: the libusb context goes, then the redirector. */
static void redirector_finish(struct usb_redirector *r)
{
    while (r->devices) {
        struct device_node *d = r->devices;
        r->devices = d->next;
        device_node_free(d);
    }
    usb_slots_close(&r->slots);
    if (r->kernel_hotplug) {
        usb_kernel_hotplug_stop(r->kernel_hotplug);
        r->kernel_hotplug = NULL;
    }
    if (r->usb) {
        usb_events_stop(&r->events);
        libusb_exit(r->usb);
        r->usb = NULL;
    }
    uv_close((uv_handle_t *)&r->queue_timer, on_queue_timer_closed);
}

struct usb_redirector *
usb_redirector_start(uv_loop_t *loop, const struct usb_config *cfg,
                     const struct usb_redirector_ops *ops, void *ctx)
{
    struct usb_redirector *r = calloc(1, sizeof(*r));

    if (!r) {
        log_err("out of memory");
        return NULL;
    }
    r->loop = loop;
    r->cfg = cfg;
    r->ops = ops;
    r->ctx = ctx;
    set_policy(r);
    uv_timer_init(loop, &r->queue_timer);
    r->queue_timer.data = r;
    redirector_choose_hotplug(r);
    if (redirector_init_libusb(r) < 0 ||
        usb_slots_open(&r->slots, loop, cfg, &redirector_slots_ops, r) < 0 ||
        redirector_watch_hotplug(r) < 0) {
        r->ops = NULL; /* a failed start reports nothing */
        r->stopping = true;
        redirector_finish(r);
        return NULL;
    }
    return r;
}

void usb_redirector_stop(struct usb_redirector *r)
{
    r->stopping = true;
    if (r->kernel_hotplug) {
        usb_kernel_hotplug_stop(r->kernel_hotplug);
        r->kernel_hotplug = NULL;
    }
    if (r->hotplug_registered) {
        libusb_hotplug_deregister_callback(r->usb, r->hotplug);
        r->hotplug_registered = false;
    }
    on_drain_hotplug(&r->queue_timer); /* frees queued events */
    uv_timer_stop(&r->queue_timer);
    usb_slots_close(&r->slots); /* no new peers; slots go with sessions */
    for (struct device_node *d = r->devices; d; d = d->next)
        if (d->session)
            usb_session_shutdown(d->session); /* may end it now */
    if (r->live_sessions == 0) /* else on_session_freed finishes */
        redirector_finish(r);
}
