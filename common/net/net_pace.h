/* SPDX-License-Identifier: MIT */
/* Pacing the reads of a byte stream bound for a serial line: rests
 * between reads while the line would still be sending, so a writer that
 * hands over one byte per system call (QEMU's 16550) is read in batches. */
#ifndef REDIR_NET_PACE_H
#define REDIR_NET_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct serial_line;
struct net_pace;

/* resume(arg) is called when a rest ends, from the loop. name is for
 * logs. Without a timer (logged once) the pace never rests: the reader
 * reads as before, slower for the writer, not wrong. NULL when out of
 * memory; every call below takes NULL as a pace that never rests. */
struct net_pace *net_pace_new(uv_loop_t *loop, const char *name,
                              void (*resume)(void *arg), void *arg);

/* The line the bytes go out on (its speed and framing set the time of a
 * character); a line with no speed, or none at all (NULL), is never
 * paced. */
void net_pace_line(struct net_pace *p, const struct serial_line *l);

/* n bytes were handed on. Returns true when the reader is to rest now:
 * the line was still sending the bytes before (a stream) and n is small.
 * The rest is half the time the line needs for n bytes (at most 2 ms), so
 * the next batch arrives while it still sends these. */
bool net_pace_after(struct net_pace *p, size_t n);

bool net_pace_resting(const struct net_pace *p);

/* Stops and frees p (its handle closes in the loop's next turn). */
void net_pace_free(struct net_pace *p);

#endif
