/* SPDX-License-Identifier: MIT */
/* Guest side of bench/serial_relay/guest.py: throughput and 1-byte round
 * trips on a serial port (/dev/ttyS1...) as a VM's application sees them.
 *
 *   guest_serial SEQ tx DEV N   write N pseudo-random bytes to DEV
 *   guest_serial SEQ rx DEV N   read N bytes from DEV, CRC-32 them
 *   guest_serial SEQ rtt DEV N  N rounds: write 1 byte, read its echo
 *
 * Each prints "BENCH-READY SEQ MODE DEV N" on stdout (the console the bench
 * watches) once the port is flushed and set raw, then waits for the
 * bench's go byte on DEV; rx answers it with one of its own.
 * The result is one line "RESULT: benchSEQ=k:v ...": bytes, crc, the
 * guest's CLOCK_MONOTONIC nanoseconds; for rtt the p50/p99/min/max. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* A TCG guest on a loaded 2-core host can stall for seconds; a port that
 * stays silent this long has lost bytes or the bench has died. */
#define STALL_MS 30000
#define CHUNK 4096 /* per read()/write(); the tty layer splits it */
#define MAX_BYTES                                                              \
    (64 << 20) /* the guest has 256 MiB; tmp buffers live here                 \
                */
#define MAX_ROUNDS 100000
#define CRC32_POLY 0xedb88320u /* the reflected IEEE polynomial (zlib's) */
#define GO_BYTE 'G'

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (CRC32_POLY & (0u - (crc & 1u)));
    }
    return crc ^ 0xffffffffu;
}

static int die(const char *what)
{
    printf("GUEST-FAIL: guest_serial: %s: %s\n", what, strerror(errno));
    return 1;
}

/* Raw 8N1 at 115200, no flow control, no echo (what `stty raw -echo`
 * gives), CLOCAL so that no modem line matters; then drop stale bytes. */
static int set_raw(int fd)
{
    struct termios t;

    if (tcgetattr(fd, &t) != 0)
        return -1;
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(CRTSCTS | CSTOPB | PARENB);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    if (tcsetattr(fd, TCSANOW, &t) != 0)
        return -1;
    return tcflush(fd, TCIOFLUSH);
}

/* Waits up to STALL_MS for fd to be ready for `events`; 0 if it is. */
static int wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;

    do
        r = poll(&p, 1, STALL_MS);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        errno = ETIMEDOUT;
    return r == 1 ? 0 : -1;
}

/* Reads exactly n bytes. */
static int read_all(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        if (wait_fd(fd, POLLIN) != 0)
            return -1;
        size_t want = n - got < CHUNK ? n - got : CHUNK;
        ssize_t r = read(fd, buf + got, want);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const unsigned char *buf, size_t n)
{
    size_t done = 0;

    while (done < n) {
        size_t want = n - done < CHUNK ? n - done : CHUNK;
        ssize_t r = write(fd, buf + done, want);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
            if (wait_fd(fd, POLLOUT) != 0)
                return -1;
            continue;
        }
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static int wait_go(int fd)
{
    unsigned char c;

    if (read_all(fd, &c, 1) != 0)
        return -1;
    if (c != GO_BYTE) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/* xorshift32: bytes the bench cannot guess, without reading /dev/urandom
 * (whose entropy a fresh guest may lack). */
static void fill_pattern(unsigned char *buf, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)(x >> 24);
    }
}

static int do_tx(const char *seq, int fd, unsigned char *buf, size_t n)
{
    fill_pattern(buf, n, (uint32_t)n ^ (uint32_t)now_ns());
    if (wait_go(fd) != 0)
        return die("waiting for the go byte");
    uint64_t t0 = now_ns();
    if (write_all(fd, buf, n) != 0)
        return die("write");
    uint64_t t1 = now_ns();
    if (tcdrain(fd) != 0)
        return die("tcdrain");
    uint64_t t2 = now_ns();
    printf("RESULT: bench%s=bytes:%zu crc:%08x write_ns:%llu drain_ns:%llu\n",
           seq, n, crc32_of(buf, n), (unsigned long long)(t1 - t0),
           (unsigned long long)(t2 - t0));
    return 0;
}

/* Timed from the go byte the guest sends in answer to the bench's (the
 * bench then sends nothing until it has it) to the last byte read. Timing
 * from the first byte read instead measured only a burst when the reader
 * ran late, the bytes before it having queued up in the guest's tty
 * buffer. The bench's go byte comes first: a guest that started its clock
 * at once counted the time the bench still spent on the previous phase
 * (draining a port at --line pace). */
static int do_rx(const char *seq, int fd, unsigned char *buf, size_t n)
{
    unsigned char go = GO_BYTE;

    if (wait_go(fd) != 0)
        return die("waiting for the go byte");
    uint64_t t0 = now_ns();
    if (write_all(fd, &go, 1) != 0)
        return die("write of the go byte");
    if (read_all(fd, buf, n) != 0)
        return die("read");
    uint64_t last = now_ns();
    printf("RESULT: bench%s=bytes:%zu crc:%08x span_ns:%llu\n", seq, n,
           crc32_of(buf, n), (unsigned long long)(last - t0));
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int do_rtt(const char *seq, int fd, size_t rounds)
{
    uint64_t *ns = calloc(rounds, sizeof(*ns));

    if (!ns)
        return die("calloc");
    if (wait_go(fd) != 0)
        return die("waiting for the go byte");
    for (size_t i = 0; i < rounds; i++) {
        unsigned char out = (unsigned char)(i * 37 + 11), in;
        uint64_t t0 = now_ns();
        if (write_all(fd, &out, 1) != 0 || read_all(fd, &in, 1))
            return die("round trip");
        ns[i] = now_ns() - t0;
        if (in != out) {
            printf("GUEST-FAIL: round %zu: sent %02x, got %02x back\n", i, out,
                   in);
            return 1;
        }
    }
    qsort(ns, rounds, sizeof(*ns), cmp_u64);
    printf("RESULT: bench%s=rounds:%zu p50_ns:%llu p99_ns:%llu min_ns:%llu "
           "max_ns:%llu\n",
           seq, rounds, (unsigned long long)ns[rounds / 2],
           (unsigned long long)ns[(rounds * 99 + 99) / 100 - 1],
           (unsigned long long)ns[0], (unsigned long long)ns[rounds - 1]);
    free(ns);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s SEQ tx|rx|rtt DEV N\n", argv[0]);
        return 2;
    }
    const char *seq = argv[1], *mode = argv[2], *dev = argv[3];
    long n = strtol(argv[4], NULL, 10);
    int rtt = strcmp(mode, "rtt") == 0;
    if (n <= 0 || n > (rtt ? MAX_ROUNDS : MAX_BYTES) ||
        (!rtt && strcmp(mode, "tx") != 0 && strcmp(mode, "rx") != 0)) {
        fprintf(stderr, "guest_serial: bad mode or count: %s %s\n", mode,
                argv[4]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd = open(dev, O_RDWR | O_NOCTTY);
    if (fd < 0 || set_raw(fd) != 0)
        return die(dev);
    unsigned char *buf = rtt ? NULL : malloc((size_t)n);
    if (!rtt && !buf)
        return die("malloc");
    printf("BENCH-READY %s %s %s %ld\n", seq, mode, dev, n);
    if (rtt)
        return do_rtt(seq, fd, (size_t)n);
    if (mode[0] == 't')
        return do_tx(seq, fd, buf, (size_t)n);
    return do_rx(seq, fd, buf, (size_t)n);
}
