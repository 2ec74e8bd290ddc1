/* SPDX-License-Identifier: MIT */
/* USB redirection as a whole: hotplug, a policy decision per device, slots,
 * and a session for every device that is redirected. This file: starting
 * (libusb, hotplug, slots), reloading and stopping it. The hotplug queue
 * is in usb_redirector_hotplug.c, the device list and its decisions in
 * usb_redirector_devices.c, slots and sessions in
 * usb_redirector_sessions.c, the control commands in
 * usb_redirector_control.c. */
#include "usb_redirector.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "usb_events.h"
#include "usb_kernel_hotplug.h"
#include "usb_redirector_int.h"
#include "usb_slots.h"

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
    usb_redirector_offer_slots(r);
    return changed;
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
void usb_redirector_finish(struct usb_redirector *r)
{
    usb_redirector_free_devices(r);
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
    usb_redirector_choose_hotplug(r);
    if (redirector_init_libusb(r) < 0 ||
        usb_slots_open(&r->slots, loop, cfg, &usb_redirector_slots_ops, r) <
            0 ||
        usb_redirector_watch_hotplug(r) < 0) {
        r->ops = NULL; /* a failed start reports nothing */
        r->stopping = true;
        usb_redirector_finish(r);
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
    usb_redirector_drain_hotplug(r); /* frees queued events */
    uv_timer_stop(&r->queue_timer);
    usb_slots_close(&r->slots); /* no new peers; slots go with sessions */
    for (struct device_node *d = r->devices; d; d = d->next)
        if (d->session)
            usb_session_shutdown(d->session); /* may end it now */
    if (r->live_sessions == 0) /* else on_session_freed finishes */
        usb_redirector_finish(r);
}
