/* SPDX-License-Identifier: MIT */
/* Round trips of 64-byte HID reports, a security key's traffic (CTAPHID
 * packets are 64-byte reports): "echo" runs on the thin client's gadget
 * side and sends every output report back as an input report; "ping" runs
 * in the VDI guest on the redirected device's hidraw node and times write
 * report -> read the echo. Prints percentiles in microseconds.
 *
 *   hidrtt echo /dev/hidgN
 *   hidrtt ping /dev/hidrawN COUNT [WARMUP] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rtt_clock.h"

#define REPORT 64

static int echo(const char *dev)
{
    int fd = open(dev, O_RDWR);
    uint8_t buf[REPORT];
    if (fd < 0) {
        perror(dev);
        return 1;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            return n < 0;
        if (write(fd, buf, (size_t)n) != n)
            return 1;
    }
}

static int ping(const char *dev, int count, int warmup)
{
    int fd = open(dev, O_RDWR);
    uint8_t out[REPORT + 1], in[REPORT];
    double *t = calloc((size_t)count, sizeof(double)), sum = 0;
    if (fd < 0 || !t) {
        perror(dev);
        return 1;
    }
    for (int i = -warmup; i < count; i++) {
        out[0] = 0; /* no report ids */
        for (int k = 1; k <= REPORT; k++)
            out[k] = (uint8_t)(i + k);
        double t0 = now_us();
        if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out)) {
            perror("write");
            return 1;
        }
        ssize_t n = read(fd, in, sizeof(in));
        double dt = now_us() - t0;
        if (n != REPORT || memcmp(in, out + 1, REPORT) != 0) {
            fprintf(stderr, "round trip %d: wrong echo (%zd bytes)\n", i, n);
            return 1;
        }
        if (i >= 0) {
            t[i] = dt;
            sum += dt;
        }
    }
    qsort(t, (size_t)count, sizeof(double), cmp_double);
    printf("RESULT: rtt_p50=%.0f\nRESULT: rtt_p90=%.0f\nRESULT: rtt_p99=%.0f\n"
           "RESULT: rtt_mean=%.0f\nRESULT: rtt_min=%.0f\nRESULT: rtt_n=%d\n",
           t[count / 2], t[count * 9 / 10], t[count * 99 / 100], sum / count,
           t[0], count);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "echo") == 0)
        return echo(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "ping") == 0)
        return ping(argv[2], atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 20);
    fprintf(stderr, "usage: hidrtt echo /dev/hidgN | ping /dev/hidrawN COUNT "
                    "[WARMUP]\n");
    return 2;
}
