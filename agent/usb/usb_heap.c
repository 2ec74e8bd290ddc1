/* SPDX-License-Identifier: MIT */
/* Gives the heap a burst of USB traffic freed back to the system once the
 * traffic stops (see usb_heap.h). */
#include "usb_heap.h"

#include <malloc.h>
#include <stdbool.h>

/* Quiet this long after the last flush of USB traffic: the burst is over
 * (an interrupt endpoint's device flushes every few ms while in use). */
#define HEAP_TRIM_QUIET_MS 2000

static uv_timer_t trim_timer;
static bool trim_timer_ready;
static uint64_t last_traffic; /* uv_now() of the last flush */

/* The timer is not pushed back at every flush (a hot path): when it comes
 * due it checks whether traffic came since and waits out the rest. */
static void on_quiet(uv_timer_t *t)
{
    uint64_t quiet = uv_now(t->loop) - last_traffic;

    if (quiet < HEAP_TRIM_QUIET_MS) {
        uv_timer_start(t, on_quiet, HEAP_TRIM_QUIET_MS - quiet, 0);
        return;
    }
    /* glibc keeps freed chunks between live ones (and raises its trim
     * threshold after large frees): 3-5 MiB of an agent that streamed 8
     * disks stayed resident until trimmed */
    malloc_trim(0);
}

void usb_heap_traffic(uv_loop_t *loop)
{
    last_traffic = uv_now(loop); /* the loop's cached time: no syscall */
    if (!trim_timer_ready) {
        if (uv_timer_init(loop, &trim_timer) < 0)
            return;
        uv_unref((uv_handle_t *)&trim_timer); /* never keeps the loop up */
        trim_timer_ready = true;
    }
    if (!uv_is_active((uv_handle_t *)&trim_timer))
        uv_timer_start(&trim_timer, on_quiet, HEAP_TRIM_QUIET_MS, 0);
}
