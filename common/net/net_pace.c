/* SPDX-License-Identifier: MIT */
/* Pacing the reads of a byte stream bound for a serial line (net_pace.h):
 * a timerfd on the loop ends each rest, with microsecond precision (a
 * character at 115200 baud is 87 us; libuv's timers count milliseconds). */
#include "net_pace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "serial_line.h"

/* Why these: measured with bench/serial_relay/guest.py (QEMU writing a
 * pty byte by byte): reading as soon as readable gave 2.5 bytes per
 * wakeup and slowed QEMU to 0.51-0.70x; rests brought batches of
 * hundreds. */
#define PACE_MAX_NS 2000000 /* the longest rest: 2 ms */
#define PACE_MIN_NS 20000   /* shorter rests cost more than they save */
#define PACE_BATCH 1024     /* a read this big amortises its wakeups: no rest */

struct net_pace {
    uv_poll_t poll;      /* on fd, once has_handle */
    bool has_handle;     /* poll initialized: closed before p is freed */
    bool usable;         /* the timer works: rests are possible */
    int fd;              /* the timerfd, -1 without one */
    uint64_t char_ns;    /* one character on the line; 0: never paced */
    uint64_t busy_until; /* uv_hrtime: the line sends the last batch */
    bool resting;
    void (*resume)(void *arg);
    void *arg;
};

static void on_timer(uv_poll_t *h, int status, int events)
{
    struct net_pace *p = h->data;
    uint64_t expirations;

    (void)status;
    (void)events;
    if (read(p->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        log_warn("pacing timer: %s", strerror(errno));
    p->resting = false;
    p->resume(p->arg);
}

struct net_pace *net_pace_new(uv_loop_t *loop, const char *name,
                              void (*resume)(void *arg), void *arg)
{
    struct net_pace *p = calloc(1, sizeof(*p));
    int rc;

    if (!p)
        return NULL;
    p->resume = resume;
    p->arg = arg;
    p->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    rc = p->fd < 0 ? uv_translate_sys_error(errno)
                   : uv_poll_init(loop, &p->poll, p->fd);
    if (rc == 0) {
        p->has_handle = true;
        p->poll.data = p;
        rc = uv_poll_start(&p->poll, UV_READABLE, on_timer);
    }
    p->usable = rc == 0;
    if (!p->usable)
        log_warn("%s: no pacing timer (%s): its stream is read as it comes",
                 name, uv_strerror(rc));
    return p;
}

void net_pace_line(struct net_pace *p, const struct serial_line *l)
{
    unsigned bits;

    if (!p)
        return;
    if (!l || !l->baud) {
        p->char_ns = 0;
        return;
    }
    bits = 1 + l->data_bits + (l->parity != SERIAL_PARITY_NONE) +
           (l->stop == SERIAL_STOP_1 ? 1 : 2);
    p->char_ns = (uint64_t)bits * 1000000000u / l->baud;
}

bool net_pace_after(struct net_pace *p, size_t n)
{
    if (!p)
        return false;
    uint64_t now = uv_hrtime(), ns = p->char_ns * n / 2;
    bool stream = now < p->busy_until;
    struct itimerspec when = {0};

    p->busy_until = now + p->char_ns * n;
    if (!stream || n >= PACE_BATCH || !p->usable || ns < PACE_MIN_NS)
        return false;
    if (ns > PACE_MAX_NS)
        ns = PACE_MAX_NS;
    when.it_value.tv_nsec = (long)ns;
    if (timerfd_settime(p->fd, 0, &when, NULL) < 0)
        return false;
    p->resting = true;
    return true;
}

bool net_pace_resting(const struct net_pace *p) { return p && p->resting; }

static void on_closed(uv_handle_t *h)
{
    struct net_pace *p = h->data;

    close(p->fd);
    free(p);
}

void net_pace_free(struct net_pace *p)
{
    if (!p)
        return;
    if (p->has_handle) {
        uv_close((uv_handle_t *)&p->poll, on_closed);
        return;
    }
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}
