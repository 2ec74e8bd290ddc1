/* SPDX-License-Identifier: MIT */
/* The thin client's serial port, far end, for bench/serial_relay/vm_tx.py:
 * reads N bytes of the counting pattern a guest's UART sends (0, 1, ...,
 * 255, 0, ...) from a tty and prints their rate, timed from the first byte
 * to the last (the guest's boot is not in it).
 *
 *   vm_port TTY N READY_FILE TIMEOUT_S
 *
 * TTY is set raw and flushed, then READY_FILE is created: the guest may
 * start. Prints "OK bytes N span_us T kB/s R" and exits 0, or says what went
 * wrong (a wrong byte, silence for TIMEOUT_S) and exits 1. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 4096 /* a read: the tty gives at most its flip buffer's share */

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int open_raw(const char *path)
{
    struct termios t;
    int fd = open(path, O_RDWR | O_NOCTTY);

    if (fd < 0 || tcgetattr(fd, &t) < 0) {
        fprintf(stderr, "vm_port: %s: %s\n", path, strerror(errno));
        return -1;
    }
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    if (tcsetattr(fd, TCSANOW, &t) < 0 || tcflush(fd, TCIOFLUSH) < 0) {
        fprintf(stderr, "vm_port: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return fd;
}

/* Reads n pattern bytes; 0, or -1 with the reason printed. */
static int take(int fd, long n, int timeout_s, double *first, double *last)
{
    unsigned char buf[CHUNK];
    long got = 0;

    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout_s * 1000);
        if (r <= 0) {
            printf("FAIL %ld of %ld bytes, then %s\n", got, n,
                   r ? strerror(errno) : "silence");
            return -1;
        }
        ssize_t k = read(fd, buf, n - got < CHUNK ? n - got : CHUNK);
        if (k <= 0) {
            printf("FAIL read after %ld bytes: %s\n", got,
                   k ? strerror(errno) : "end of file");
            return -1;
        }
        if (got == 0)
            *first = now_us();
        for (ssize_t i = 0; i < k; i++, got++)
            if (buf[i] != (unsigned char)got) {
                printf("FAIL byte %ld is %u, not %u\n", got, buf[i],
                       (unsigned)(got & 0xff));
                return -1;
            }
    }
    *last = now_us();
    return 0;
}

int main(int argc, char **argv)
{
    double first = 0, last = 0;

    if (argc != 5 || atol(argv[2]) < 2) {
        fprintf(stderr, "usage: vm_port TTY N READY_FILE TIMEOUT_S\n");
        return 2;
    }
    int fd = open_raw(argv[1]);
    long n = atol(argv[2]);
    if (fd < 0)
        return 1;
    int ready = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (ready < 0) {
        fprintf(stderr, "vm_port: %s: %s\n", argv[3], strerror(errno));
        return 1;
    }
    close(ready);
    if (take(fd, n, atoi(argv[4]), &first, &last) < 0)
        return 1;
    /* n - 1 bytes arrived after the first one's arrival */
    printf("OK bytes %ld span_us %.0f kB/s %.2f\n", n, last - first,
           (n - 1) / (last - first) * 1e3);
    return 0;
}
