/* SPDX-License-Identifier: MIT */
/* libusb's file descriptors watched by the libuv loop: no event thread, and
 * no timer except for descriptors epoll refuses (emulated devices). */
#ifndef REDIR_USB_EVENTS_H
#define REDIR_USB_EVENTS_H

#include <libusb.h>
#include <uv.h>

struct usb_fd_watch;

struct usb_events {
    uv_loop_t *loop;
    libusb_context *ctx;
    struct usb_fd_watch *watches; /* one per libusb pollfd */
    uv_timer_t timeout_timer;     /* only used if libusb has no timerfd */
    uv_timer_t unwatchable_timer; /* services fds epoll refuses */
    unsigned unwatchable_fds;
    int timeouts_by_fd; /* libusb_pollfds_handle_timeouts() */
    int stopped;
};

int usb_events_start(struct usb_events *ev, uv_loop_t *loop,
                     libusb_context *ctx);

/* Runs libusb's pending events now. Called from fd readiness, the timeout
 * timer, and by the agent after it touched devices outside of an event. */
void usb_events_handle(struct usb_events *ev);

/* Stops watching; handles close asynchronously within the loop. */
void usb_events_stop(struct usb_events *ev);

#endif
