/* SPDX-License-Identifier: MIT */
/* Bench-only LD_PRELOAD shim for the agent under umockdev (hostrtt.py):
 * epoll refuses umockdev's regular-file usbfs nodes, so the agent services
 * them on a 1 ms timer (agent/usb/usb_events.c), which would dominate a
 * round trip measured in microseconds. poll(), which libusb's own event
 * handling (usbredirect) uses, reports a regular file always ready. This
 * gives epoll the same answer: a uv_poll_init() refused with UV_EPERM is
 * redone on an eventfd that is always readable and writable, so the agent's
 * loop services the device on every iteration, as usbredirect's libusb
 * thread does. Real usbfs nodes are pollable and never reach this. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/eventfd.h>
#include <uv.h>

typedef int (*poll_init_fn)(uv_loop_t *, uv_poll_t *, int);

int uv_poll_init(uv_loop_t *loop, uv_poll_t *handle, int fd)
{
    static poll_init_fn real;
    if (!real)
        real = (poll_init_fn)dlsym(RTLD_NEXT, "uv_poll_init");
    int rc = real(loop, handle, fd);
    if (rc != UV_EPERM)
        return rc;
    /* counter 1: readable until read, and nobody reads it; never closed
     * (one per device the agent opens, for the length of a bench run) */
    int efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
    return efd < 0 ? rc : real(loop, handle, efd);
}
