/* SPDX-License-Identifier: MIT */
/* Gives the heap a burst of USB traffic freed back to the system once the
 * traffic stops: a one-shot timer trims the heap once after
 * HEAP_TRIM_QUIET_MS of no traffic (an idle agent has no wakeup; during
 * traffic it wakes once per HEAP_TRIM_QUIET_MS). */
#ifndef REDIR_USB_HEAP_H
#define REDIR_USB_HEAP_H

#include <uv.h>

/* A session flushed what its device sent: traffic is flowing. Costs a
 * store of the loop's time. The timer lives in the loop until the agent's
 * final sweep closes it. */
void usb_heap_traffic(uv_loop_t *loop);

#endif
