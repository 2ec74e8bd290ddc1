/* SPDX-License-Identifier: MIT */
/* The guest's side for bench/serial_relay/vm_tx.py --writer program: what
 * QEMU's 16550 does to its chardev, without a nested QEMU. Writes N bytes
 * of the counting pattern (0, 1, ..., 255, 0, ...) one per system call,
 * as QEMU hands each THR byte on, to a tty set raw at 115200 8N1 first
 * (QEMU's tty chardev) or to 127.0.0.1:PORT (its socket chardev, with
 * TCP_NODELAY as QEMU sets), waiting in poll() when the fd is full.
 *
 *   vm_writer PATH|PORT N
 *
 * Prints "OK wrote N in T us" and exits 0, or says what went wrong. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 60000 /* no room for this long: the path is stuck */

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int open_tty(const char *path)
{
    int fd = open(path, O_RDWR | O_NONBLOCK | O_NOCTTY);
    struct termios t;

    if (fd < 0 || tcgetattr(fd, &t) < 0)
        return -1;
    cfmakeraw(&t);
    cfsetspeed(&t, B115200);
    return tcsetattr(fd, TCSANOW, &t) < 0 ? -1 : fd;
}

static int open_tcp(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 3 || atol(argv[2]) < 1) {
        fprintf(stderr, "usage: vm_writer PATH|PORT N\n");
        return 2;
    }
    long n = atol(argv[2]), sent = 0;
    int fd = argv[1][0] == '/' ? open_tty(argv[1]) : open_tcp(atoi(argv[1]));
    if (fd < 0) {
        fprintf(stderr, "vm_writer: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    double t0 = now_us();
    while (sent < n) {
        unsigned char b = (unsigned char)sent;
        ssize_t w = write(fd, &b, 1);
        struct pollfd p = {fd, POLLOUT, 0};
        if (w == 1)
            sent++;
        else if (w < 0 && errno == EAGAIN && poll(&p, 1, WAIT_MS) == 1)
            continue;
        else {
            fprintf(stderr, "vm_writer: stuck after %ld bytes: %s\n", sent,
                    w < 0 ? strerror(errno) : "no room");
            return 1;
        }
    }
    printf("OK wrote %ld in %.0f us\n", n, now_us() - t0);
    return 0;
}
