/* SPDX-License-Identifier: MIT */
/* libusb's file descriptors watched by the libuv loop: no event thread, and
 * no timer except for descriptors epoll refuses (emulated devices). */
#include "usb_events.h"

#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"

/* epoll refuses regular files (always ready by definition): umockdev's
 * emulated usbfs nodes are such files. Real usbfs fds are pollable, so this
 * only runs under emulation, at a period short enough to keep transfers
 * moving and long enough not to burn a core. */
#define UNWATCHABLE_FD_POLL_MS 1

struct usb_fd_watch {
    uv_poll_t poll;
    int fd;
    bool unwatchable; /* poll handle unused: serviced by the timer */
    struct usb_events *ev;
    struct usb_fd_watch *next;
};

static int poll_to_uv_events(short events)
{
    int uv_events = 0;
    if (events & POLLIN)
        uv_events |= UV_READABLE;
    if (events & POLLOUT)
        uv_events |= UV_WRITABLE;
    return uv_events;
}

static void usb_events_arm_timeout(struct usb_events *ev);

void usb_events_handle(struct usb_events *ev)
{
    struct timeval zero = {0, 0};

    if (ev->stopped)
        return;
    int rc = libusb_handle_events_timeout_completed(ev->ctx, &zero, NULL);
    if (rc < 0 && rc != LIBUSB_ERROR_INTERRUPTED)
        log_warn("libusb event handling failed: %s", libusb_error_name(rc));
    usb_events_arm_timeout(ev);
}

static void on_fd_ready(uv_poll_t *poll, int status, int events)
{
    struct usb_fd_watch *w = poll->data;
    (void)status; /* errors are reported by libusb itself */
    (void)events;
    usb_events_handle(w->ev);
}

static void on_timeout(uv_timer_t *timer) { usb_events_handle(timer->data); }

static void usb_events_add_unwatchable(struct usb_events *ev, int fd)
{
    if (ev->unwatchable_fds++ == 0) {
        log_debug("libusb fd %d cannot be watched by epoll; servicing it "
                  "every %d ms",
                  fd, UNWATCHABLE_FD_POLL_MS);
        uv_timer_start(&ev->unwatchable_timer, on_timeout,
                       UNWATCHABLE_FD_POLL_MS, UNWATCHABLE_FD_POLL_MS);
    }
}

static void usb_events_remove_unwatchable(struct usb_events *ev)
{
    if (--ev->unwatchable_fds == 0)
        uv_timer_stop(&ev->unwatchable_timer);
}

/* Without timerfd, libusb expects us to call it when its next transfer
 * timeout expires. On Linux this is never used. */
static void usb_events_arm_timeout(struct usb_events *ev)
{
    struct timeval tv;

    if (ev->timeouts_by_fd || ev->stopped)
        return;
    if (libusb_get_next_timeout(ev->ctx, &tv) == 1) {
        uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
        uv_timer_start(&ev->timeout_timer, on_timeout, ms, 0);
    } else {
        uv_timer_stop(&ev->timeout_timer);
    }
}

static void on_watch_closed(uv_handle_t *handle) { free(handle->data); }

static void usb_events_watch(struct usb_events *ev, int fd, short events)
{
    struct usb_fd_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        log_err("out of memory watching libusb fd %d", fd);
        return;
    }
    w->fd = fd;
    w->ev = ev;
    int rc = uv_poll_init(ev->loop, &w->poll, fd);
    if (rc == UV_EPERM) {
        w->unwatchable = true;
        usb_events_add_unwatchable(ev, fd);
    } else if (rc < 0) {
        log_err("cannot watch libusb fd %d: %s", fd, uv_strerror(rc));
        free(w);
        return;
    } else {
        w->poll.data = w;
        uv_poll_start(&w->poll, poll_to_uv_events(events), on_fd_ready);
    }
    w->next = ev->watches;
    ev->watches = w;
}

static void usb_events_unwatch(struct usb_events *ev, int fd)
{
    for (struct usb_fd_watch **pp = &ev->watches; *pp; pp = &(*pp)->next) {
        struct usb_fd_watch *w = *pp;
        if (w->fd != fd)
            continue;
        *pp = w->next;
        if (w->unwatchable) {
            usb_events_remove_unwatchable(ev);
            free(w);
            return;
        }
        uv_poll_stop(&w->poll);
        uv_close((uv_handle_t *)&w->poll, on_watch_closed);
        return;
    }
}

/* Called by libusb when it opens a device or creates an internal fd. */
static void on_pollfd_added(int fd, short events, void *user_data)
{
    usb_events_watch(user_data, fd, events);
}

/* Called by libusb before it closes an fd (e.g. from libusb_close). */
static void on_pollfd_removed(int fd, void *user_data)
{
    usb_events_unwatch(user_data, fd);
}

int usb_events_start(struct usb_events *ev, uv_loop_t *loop,
                     libusb_context *ctx)
{
    const struct libusb_pollfd **fds;

    ev->loop = loop;
    ev->ctx = ctx;
    ev->watches = NULL;
    ev->stopped = 0;
    ev->timeouts_by_fd = libusb_pollfds_handle_timeouts(ctx);
    uv_timer_init(loop, &ev->timeout_timer);
    ev->timeout_timer.data = ev;
    uv_timer_init(loop, &ev->unwatchable_timer);
    ev->unwatchable_timer.data = ev;
    ev->unwatchable_fds = 0;

    fds = libusb_get_pollfds(ctx);
    if (!fds) {
        log_err("libusb does not expose its file descriptors");
        return -1;
    }
    for (size_t i = 0; fds[i]; i++)
        usb_events_watch(ev, fds[i]->fd, fds[i]->events);
    libusb_free_pollfds(fds);
    libusb_set_pollfd_notifiers(ctx, on_pollfd_added, on_pollfd_removed, ev);
    return 0;
}

void usb_events_stop(struct usb_events *ev)
{
    libusb_set_pollfd_notifiers(ev->ctx, NULL, NULL, NULL);
    while (ev->watches)
        usb_events_unwatch(ev, ev->watches->fd);
    uv_timer_stop(&ev->timeout_timer);
    uv_close((uv_handle_t *)&ev->timeout_timer, NULL);
    uv_close((uv_handle_t *)&ev->unwatchable_timer, NULL);
    ev->stopped = 1;
}
