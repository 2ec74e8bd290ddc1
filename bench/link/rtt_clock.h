/* SPDX-License-Identifier: MIT */
/* What the round-trip benches (hidrtt.c in a guest, hostrtt.c on the
 * host) share: a microsecond clock and the comparison to sort samples. */
#ifndef REDIR_BENCH_RTT_CLOCK_H
#define REDIR_BENCH_RTT_CLOCK_H

#include <time.h>

static inline double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* qsort() order of doubles. */
static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
