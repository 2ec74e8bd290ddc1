/* SPDX-License-Identifier: MIT */
/* net_pace (common/net/net_pace.c) on a real loop and timerfd: a lone
 * batch never rests, a stream does (for half the line's time for it, at
 * most 2 ms) and resume comes from the loop once; a big read or a line
 * without speed never rests; NULL is a pace that never rests; a pace
 * freed while resting calls nobody and leaves nothing open. */
#include <string.h>
#include <uv.h>

#include "check.h"
#include "net_pace.h"
#include "serial_line.h"

static int resumed;

static void on_resume(void *arg)
{
    (void)arg;
    resumed++;
}

static struct serial_line line(uint32_t baud)
{
    struct serial_line l;

    serial_line_default(&l);
    l.baud = baud;
    return l;
}

/* Runs the loop until resume came (or 1 s passed): the rest in ns. */
static uint64_t wait_resume(uv_loop_t *loop)
{
    uint64_t t0 = uv_hrtime();

    while (!resumed && uv_hrtime() - t0 < 1000000000u)
        uv_run(loop, UV_RUN_ONCE);
    return uv_hrtime() - t0;
}

static void test_stream(uv_loop_t *loop)
{
    struct net_pace *p = net_pace_new(loop, "test", on_resume, NULL);
    struct serial_line l = line(9600); /* 10 bits: 1.04 ms a character */

    CHECK(p != NULL, "new");
    net_pace_line(p, &l);
    CHECK(!net_pace_after(p, 1), "a lone byte rests");
    CHECK(!net_pace_resting(p), "resting after a lone byte");
    CHECK(net_pace_after(p, 1), "the next byte, the line busy: no rest");
    CHECK(net_pace_resting(p), "not resting in a stream");
    resumed = 0;
    uint64_t ns = wait_resume(loop);
    CHECK(resumed == 1 && !net_pace_resting(p), "resume %d", resumed);
    CHECK(ns >= 400000 && ns < 500000000u, "a rest of %llu ns for 1 byte",
          (unsigned long long)ns);
    CHECK(!net_pace_after(p, 1024), "a 1 KiB read rests");
    CHECK(net_pace_after(p, 100), "100 bytes in a stream: no rest");
    resumed = 0;
    ns = wait_resume(loop);
    CHECK(resumed == 1 && ns < 500000000u, "the 2 ms cap: %llu ns",
          (unsigned long long)ns);
    net_pace_free(p);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void test_never(uv_loop_t *loop)
{
    struct net_pace *p = net_pace_new(loop, "test", on_resume, NULL);
    struct serial_line l = line(0);

    net_pace_line(p, &l); /* no speed: never paced */
    CHECK(!net_pace_after(p, 1) && !net_pace_after(p, 1), "no speed rests");
    net_pace_line(p, NULL);
    CHECK(!net_pace_after(p, 1) && !net_pace_after(p, 1), "no line rests");
    net_pace_free(p);
    net_pace_line(NULL, &l);
    CHECK(!net_pace_after(NULL, 1) && !net_pace_resting(NULL), "NULL rests");
    net_pace_free(NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void test_free_resting(uv_loop_t *loop)
{
    struct net_pace *p = net_pace_new(loop, "test", on_resume, NULL);
    struct serial_line l = line(300); /* 33 ms a character: a 2 ms rest */

    net_pace_line(p, &l);
    net_pace_after(p, 1);
    CHECK(net_pace_after(p, 1), "no rest");
    resumed = 0;
    net_pace_free(p);
    uv_run(loop, UV_RUN_DEFAULT); /* returns: nothing is left open */
    CHECK(resumed == 0, "resume after free");
}

int main(void)
{
    uv_loop_t loop;

    uv_loop_init(&loop);
    test_stream(&loop);
    test_never(&loop);
    test_free_resting(&loop);
    CHECK(uv_loop_close(&loop) == 0, "handles left open");
    return check_summary();
}
