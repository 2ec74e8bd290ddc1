/* SPDX-License-Identifier: MIT */
/* The "guest" of thinclient_cuse: does to a serial target's tty exactly
 * what QEMU's tty chardev (chardev/char-serial.c) does for the guest's
 * 16550 (open O_RDWR|O_NONBLOCK, tcgetattr/tcsetattr TCSANOW for speed
 * and framing, TIOCMGET+TIOCMSET for DTR/RTS, tcsendbreak(fd, 1) for
 * BREAK) and, after each step, waits until the agent's port shows it in
 * the ioctl recorder's log, printing how long that took. Also moves data
 * both ways with poll(), as QEMU's fd chardev does.
 *
 *   cuse_guest steps PATH LOG STEP...   STEP: 9600-7E2 | 115200-8N1 |
 *                                        modem-off | modem-on | break
 *   cuse_guest pump PATH SENDFILE RECVFILE NBYTES TIMEOUT_S
 *   cuse_guest gen FILE NBYTES SEED      (every byte value, runs of 0x00
 *                                         and 0xff, then pseudo-random)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* How long a step may take to show up before the helper gives up (the
 * test asserts the 1 s on the printed latency). */
#define WAIT_MS 5000
#define LINE_MAX_LEN 256
#define PUMP_CHUNK 65536

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    printf("FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

/* QEMU's tty_serial_init(): raw, the speed, data bits, parity, stop. */
static void serial_init(int fd, speed_t spd, int bits, char parity, int stop)
{
    struct termios tty;

    if (tcgetattr(fd, &tty) < 0)
        die("tcgetattr");
    cfsetispeed(&tty, spd);
    cfsetospeed(&tty, spd);
    tty.c_iflag &=
        ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    tty.c_oflag |= OPOST;
    tty.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN | ISIG);
    tty.c_cflag &= ~(CSIZE | PARENB | PARODD | CRTSCTS | CSTOPB);
    tty.c_cflag |= bits == 7 ? CS7 : CS8;
    if (parity == 'E')
        tty.c_cflag |= PARENB;
    else if (parity == 'O')
        tty.c_cflag |= PARENB | PARODD;
    if (stop == 2)
        tty.c_cflag |= CSTOPB;
    if (tcsetattr(fd, TCSANOW, &tty) < 0)
        die("tcsetattr");
}

/* QEMU's CHR_IOCTL_SERIAL_SET_TIOCM: read, replace DTR/RTS, write. */
static void set_tiocm(int fd, int lines)
{
    int targ;

    if (ioctl(fd, TIOCMGET, &targ) < 0)
        die("TIOCMGET");
    targ &= ~(TIOCM_DTR | TIOCM_RTS);
    targ |= lines;
    if (ioctl(fd, TIOCMSET, &targ) < 0)
        die("TIOCMSET");
}

struct want {
    const char *prefix;      /* "TCSETS2", "TIOCMBIC 0x2", "TIOCSBRK" ... */
    unsigned mask, cflag;    /* TCSETS2: cflag & mask == cflag */
    unsigned ospeed;         /* TCSETS2: 0 = any */
    const struct want *next; /* then this one, later in the log */
};

static int line_matches(const char *line, const struct want *w)
{
    unsigned cflag, iflag, ospeed;

    if (strncmp(line, w->prefix, strlen(w->prefix)) != 0)
        return 0;
    if (!w->mask)
        return 1;
    if (sscanf(line, "TCSETS2 cflag=0%o iflag=0%o ospeed=%u", &cflag, &iflag,
               &ospeed) != 3)
        return 0;
    return (cflag & w->mask) == w->cflag && (!w->ospeed || ospeed == w->ospeed);
}

/* Waits until the log, from *offset on, has every line of w in order. */
static double wait_log(const char *log, long *offset, const struct want *w,
                       double t0)
{
    char line[LINE_MAX_LEN];

    while (now_ms() - t0 < WAIT_MS) {
        FILE *f = fopen(log, "r");
        const struct want *cur = w;
        long at = *offset;
        if (f && fseek(f, *offset, SEEK_SET) == 0)
            while (cur && fgets(line, sizeof(line), f)) {
                if (line_matches(line, cur))
                    cur = cur->next;
                at = ftell(f);
            }
        if (f)
            fclose(f);
        if (!cur) {
            *offset = at;
            return now_ms() - t0;
        }
        usleep(2000);
    }
    return -1;
}

static long log_size(const char *log)
{
    FILE *f = fopen(log, "r");
    long n = 0;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (f)
        fclose(f);
    return n;
}

static int step(int fd, const char *log, long *offset, const char *name)
{
    const unsigned frame = CSIZE | PARENB | PARODD | CSTOPB;
    struct want w2 = {0}, w1 = {0};
    double t0 = now_ms();

    if (strcmp(name, "9600-7E2") == 0) {
        serial_init(fd, B9600, 7, 'E', 2);
        w1 = (struct want){"TCSETS2", frame, CS7 | PARENB | CSTOPB, 9600, 0};
    } else if (strcmp(name, "115200-8N1") == 0) {
        serial_init(fd, B115200, 8, 'N', 1);
        w1 = (struct want){"TCSETS2", frame, CS8, 115200, 0};
    } else if (strcmp(name, "modem-off") == 0) {
        set_tiocm(fd, 0);
        w2 = (struct want){"TIOCMBIC 0x4", 0, 0, 0, 0};
        w1 = (struct want){"TIOCMBIC 0x2", 0, 0, 0, &w2};
    } else if (strcmp(name, "modem-on") == 0) {
        set_tiocm(fd, TIOCM_DTR | TIOCM_RTS);
        w2 = (struct want){"TIOCMBIS 0x4", 0, 0, 0, 0};
        w1 = (struct want){"TIOCMBIS 0x2", 0, 0, 0, &w2};
    } else if (strcmp(name, "break") == 0) {
        /* the end of the BREAK is checked in the agent's log: ttyACM0
         * refuses TIOCSBRK (the gadget lacks USB_CDC_CAP_BRK), so the
         * agent has no BREAK to clear with TIOCCBRK */
        if (tcsendbreak(fd, 1) < 0)
            die("tcsendbreak");
        w1 = (struct want){"TIOCSBRK", 0, 0, 0, 0};
    } else {
        printf("FAIL unknown step %s\n", name);
        return 1;
    }
    double ms = wait_log(log, offset, &w1, t0);
    if (ms < 0) {
        printf("FAIL %s: not seen at the agent's port within %d ms\n", name,
               WAIT_MS);
        return 1;
    }
    printf("OK %s %.1f ms\n", name, ms);
    fflush(stdout);
    return 0;
}

static int steps(int argc, char **argv)
{
    /* QEMU: qemu_chr_open_tty opens non-blocking and inits 115200 8N1 */
    int fd = open(argv[2], O_RDWR | O_NONBLOCK | O_NOCTTY);
    long offset;

    if (fd < 0)
        die("open");
    if (!isatty(fd))
        die("isatty");
    offset = log_size(argv[3]);
    serial_init(fd, B115200, 8, 'N', 1);
    for (int i = 4; i < argc; i++)
        if (step(fd, argv[3], &offset, argv[i]))
            return 1;
    close(fd);
    return 0;
}

static unsigned char *slurp(const char *path, size_t n)
{
    unsigned char *p = malloc(n);
    int fd = open(path, O_RDONLY);
    size_t got = 0;
    if (!p || fd < 0)
        die(path);
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r <= 0)
            die(path);
        got += (size_t)r;
    }
    close(fd);
    return p;
}

static int pump(char **argv)
{
    size_t n = strtoul(argv[5], NULL, 10);
    double limit = atof(argv[6]) * 1e3, t0 = now_ms();
    unsigned char *out = slurp(argv[3], n), *in = malloc(n);
    size_t sent = 0, got = 0;
    int fd = open(argv[2], O_RDWR | O_NONBLOCK | O_NOCTTY);

    if (fd < 0 || !in)
        die("open");
    while ((sent < n || got < n) && now_ms() - t0 < limit) {
        struct pollfd p = {
            fd, (got < n ? POLLIN : 0) | (sent < n ? POLLOUT : 0), 0};
        if (poll(&p, 1, 200) < 0 && errno != EINTR)
            die("poll");
        if ((p.revents & POLLOUT) && sent < n) {
            size_t len = n - sent < PUMP_CHUNK ? n - sent : PUMP_CHUNK;
            ssize_t w = write(fd, out + sent, len);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                die("write");
        }
        if ((p.revents & POLLIN) && got < n) {
            ssize_t r = read(fd, in + got, n - got);
            if (r > 0)
                got += (size_t)r;
            else if (r < 0 && errno != EAGAIN)
                die("read");
        }
    }
    double ms = now_ms() - t0;
    int wfd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (wfd < 0 || write(wfd, in, got) != (ssize_t)got)
        die(argv[4]);
    close(wfd);
    printf("%s sent %zu got %zu in %.0f ms\n",
           sent == n && got == n ? "OK" : "FAIL", sent, got, ms);
    return sent == n && got == n ? 0 : 1;
}

/* Test data: 0..255, 4 KiB of 0xff (each one doubled by telnet
 * escaping) and of 0x00, then an LCG's bytes. */
static int gen(char **argv)
{
    size_t n = strtoul(argv[3], NULL, 10);
    unsigned x = (unsigned)strtoul(argv[4], NULL, 10) * 2654435761u + 1;
    unsigned char *p = malloc(n);
    FILE *f = fopen(argv[2], "wb");

    if (!p || !f)
        die("gen");
    for (size_t i = 0; i < n; i++) {
        if (i < 256)
            p[i] = (unsigned char)i;
        else if (i < 256 + 4096)
            p[i] = 0xff;
        else if (i < 256 + 8192)
            p[i] = 0x00;
        else {
            x = x * 1103515245u + 12345u;
            p[i] = (unsigned char)(x >> 16);
        }
    }
    if (fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die("gen");
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 5 && strcmp(argv[1], "steps") == 0)
        return steps(argc, argv);
    if (argc == 7 && strcmp(argv[1], "pump") == 0)
        return pump(argv);
    if (argc == 5 && strcmp(argv[1], "gen") == 0)
        return gen(argv);
    fprintf(stderr, "usage: see the first comment of cuse_guest.c\n");
    return 2;
}
