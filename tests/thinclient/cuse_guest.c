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
 *   cuse_guest bytes PATH SENDFILE NBYTES 9600|115200
 *        the line set to that speed 8N1, then NBYTES of SENDFILE written
 *        one byte per write(), waiting in poll() on EAGAIN: how QEMU's
 *        16550 hands a guest's stream to its chardev
 *   cuse_guest qemu LOG STEP... -- QEMU ARGS...
 *        QEMU itself: its 16550 (isa-serial at 0x3f8) on -chardev
 *        serial,path=..., the guest's register writes made through
 *        qtest (no guest OS): the same STEPs, plus send256 (0..255
 *        through THR) and recv256 (256 bytes through LSR/RBR, which
 *        must be 255..0); wait-FILE (prints "WAIT FILE", then waits up to
 *        120 s until FILE exists, QEMU left alone: the chardev's fd stays
 *        open while the test restarts the relay); idle-arm (the UART's
 *        receive interrupt on, IRQs reported through qtest) and, later,
 *        recv-idle (waits for the IRQ a received byte raises, sending
 *        QEMU nothing meanwhile, then reads that byte: what woke QEMU's
 *        idle main loop was the tty's poll notification, not qtest, as
 *        for an idle guest); send-down (the 12 bytes "\0while-down\377"
 *        through THR, each once LSR shows THR empty, sent while the test
 *        has no relay running: QEMU's write waits in the kernel until a
 *        relay serves the device, and the time that took is printed);
 *        hangup (QEMU's own fd on the chardev's device, taken with
 *        pidfd_getfd, reports an error or hang-up; QEMU still answers).
 *        QEMU must quit within 10 s of SIGTERM at the end.
 *   cuse_guest hostile PATH   ioctls a buggy or hostile program may send:
 *        unknown ones, bad pointers, a NULL argument; each must fail
 *        with its errno, the tty must still work after
 *   cuse_guest storm PATH SECONDS   TIOCMGET without pause (a guest
 *        polling its modem status hard, so that a relay killed meanwhile
 *        dies serving or reading a request), "alive N eintr E" every
 *        200 ms; any error but EINTR (what a restarted relay answers for a
 *        request the dead one left) fails it
 *   cuse_guest gen FILE NBYTES SEED      (every byte value, runs of 0x00
 *                                         and 0xff, then pseudo-random)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* How long a step may take to show up before the helper gives up (the
 * test asserts the 1 s on the printed latency). */
#define WAIT_MS 5000
#define LINE_MAX_LEN 256
#define PUMP_CHUNK 65536
/* wait-FILE: the test restarts the relay meanwhile (a TCG boot of an
 * ASan relay under systemd takes seconds, not minutes). */
#define WAIT_FILE_MS 120000
/* A qtest answer: QEMU's main loop may wait in the kernel on a FUSE
 * request a broken relay never answers; fail instead of hanging. */
#define QTEST_ANSWER_S 30
/* send-down: the relay restarted meanwhile takes as long as wait-FILE's. */
#define SEND_DOWN_MS WAIT_FILE_MS
/* recv-idle: a byte sent while QEMU idles raises the IRQ this soon. */
#define IDLE_IRQ_MS 10000
#define UART_GSI 4 /* COM1's IRQ at the IOAPIC */
/* hangup: how long QEMU's fd may take to report the device gone. */
#define HANGUP_MS 5000
/* QEMU quits this soon after SIGTERM, even on a dead chardev. */
#define QUIT_MS 10000

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

/* Waits for what step name should have done at the agent's port and
 * says OK with the latency, or FAIL. */
static int report(const char *log, long *offset, const char *name,
                  const struct want *w, double t0)
{
    double ms = wait_log(log, offset, w, t0);

    if (ms < 0) {
        printf("FAIL %s: not seen at the agent's port within %d ms\n", name,
               WAIT_MS);
        return 1;
    }
    printf("OK %s %.1f ms\n", name, ms);
    fflush(stdout);
    return 0;
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
    return report(log, offset, name, &w1, t0);
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

static int bytes(char **argv)
{
    size_t n = strtoul(argv[4], NULL, 10), sent = 0;
    int fd = open(argv[2], O_RDWR | O_NONBLOCK | O_NOCTTY);
    int b9600 = strcmp(argv[5], "9600") == 0;

    if (!b9600 && strcmp(argv[5], "115200") != 0) {
        printf("FAIL speed %s: 9600 or 115200\n", argv[5]);
        return 1;
    }
    if (fd < 0)
        die("open");
    unsigned char *out = slurp(argv[3], n);
    serial_init(fd, b9600 ? B9600 : B115200, 8, 'N', 1);
    double t0 = now_ms();
    while (sent < n) {
        ssize_t w = write(fd, out + sent, 1);
        struct pollfd p = {fd, POLLOUT, 0};
        if (w == 1)
            sent++;
        else if (w < 0 && errno == EAGAIN)
            poll(&p, 1, 1000);
        else if (w < 0)
            die("write");
        else {
            printf("FAIL write returned %zd after %zu bytes\n", w, sent);
            return 1;
        }
    }
    printf("OK wrote %zu bytes one per write() in %.0f ms\n", n, now_ms() - t0);
    close(fd);
    free(out);
    return 0;
}

/* ---- QEMU's 16550 through qtest ---- */

#define QTEST_SOCK "/tmp/cuse-qtest.sock"
#define UART 0x3f8 /* COM1: THR/RBR, DLL, DLM, LCR = +3, MCR = +4, LSR = +5 */

/* qtest's socket: one stream each way (a read-write stream would have to
 * seek, which a socket cannot, between a read and a write) */
static FILE *qt, *qt_out;
static pid_t qemu_pid;
static dev_t chardev_rdev; /* the device behind -chardev serial,path= */

/* One qtest command; returns its "OK [value]" answer's value. */
static unsigned long qtest(const char *fmt, unsigned port, unsigned val)
{
    char line[LINE_MAX_LEN];

    fprintf(qt_out, fmt, port, val);
    fputc('\n', qt_out);
    fflush(qt_out);
    while (fgets(line, sizeof(line), qt))
        if (strncmp(line, "IRQ", 3) != 0) {
            if (strncmp(line, "OK", 2) != 0) {
                printf("FAIL qtest: %s", line);
                exit(1);
            }
            return strtoul(line + 2, NULL, 0);
        }
    die("qtest");
    return 0;
}

static void outb(unsigned port, unsigned val)
{
    qtest("outb 0x%x 0x%x", port, val);
}

/* The guest's UART driver: divisor latch, then the line control. */
static void uart_line(unsigned divisor, unsigned lcr)
{
    outb(UART + 3, 0x80);
    outb(UART, divisor & 0xff);
    outb(UART + 1, divisor >> 8);
    outb(UART + 3, lcr);
}

static int uart_recv256(void)
{
    double t0 = now_ms();
    int got = 0;

    while (got < 256 && now_ms() - t0 < WAIT_MS) {
        if (!(qtest("inb 0x%x%.0u", UART + 5, 0) & 1)) { /* LSR: DR */
            usleep(1000);
            continue;
        }
        unsigned v = (unsigned)qtest("inb 0x%x%.0u", UART, 0);
        if (v != (unsigned)(255 - got)) {
            printf("FAIL recv256: byte %d is 0x%02x\n", got, v);
            return 1;
        }
        got++;
    }
    printf("%s recv256 %d bytes in %.0f ms\n", got == 256 ? "OK" : "FAIL", got,
           now_ms() - t0);
    return got == 256 ? 0 : 1;
}

/* send-down: as a guest's driver writes, each byte once LSR says THR is
 * empty (QEMU holds a byte its chardev refused, EAGAIN, until the tty
 * polls writable; a THR written meanwhile would replace it). */
static int send_down(double t0)
{
    static const char down[] = "\0while-down\377";

    for (size_t i = 0; i < sizeof(down) - 1; i++) {
        while (!(qtest("inb 0x%x%.0u", UART + 5, 0) & 0x20)) { /* THRE */
            if (now_ms() - t0 > SEND_DOWN_MS) {
                printf("FAIL send-down: THR still full after %d ms, "
                       "byte %zu\n",
                       SEND_DOWN_MS, i);
                return 1;
            }
            usleep(1000);
        }
        outb(UART, (unsigned char)down[i]);
    }
    printf("OK send-down %zu bytes in %.0f ms\n", sizeof(down) - 1,
           now_ms() - t0);
    return 0;
}

/* idle-arm: the receive-data interrupt on; qtest reports the IOAPIC's
 * lines ("IRQ raise N") from now on, unasked. */
static int idle_arm(void)
{
    static int intercepted;

    if (!intercepted)
        qtest("irq_intercept_in ioapic%.0u%.0u", 0, 0);
    intercepted = 1;
    outb(UART + 1, 0x01); /* IER: received data available */
    printf("OK idle-arm\n");
    return 0;
}

/* recv-idle: nothing is sent to QEMU until the UART's IRQ is raised (a
 * byte arrived and was read from the tty while QEMU idled), then that
 * byte is taken from RBR and the interrupt turned off. */
static int recv_idle(void)
{
    char line[LINE_MAX_LEN];
    struct timeval tv = {1, 0}, answer = {QTEST_ANSWER_S, 0};
    double t0 = now_ms();
    int raised = 0;

    setsockopt(fileno(qt), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (!raised && now_ms() - t0 < IDLE_IRQ_MS) {
        if (!fgets(line, sizeof(line), qt)) {
            clearerr(qt); /* the 1 s timeout: look at the clock */
            continue;
        }
        unsigned n;
        raised = sscanf(line, "IRQ raise %u", &n) == 1 && n == UART_GSI;
    }
    setsockopt(fileno(qt), SOL_SOCKET, SO_RCVTIMEO, &answer, sizeof(answer));
    if (!raised) {
        printf("FAIL recv-idle: no IRQ %d within %d ms: the byte sent did "
               "not wake QEMU\n",
               UART_GSI, IDLE_IRQ_MS);
        return 1;
    }
    unsigned v = (unsigned)qtest("inb 0x%x%.0u", UART, 0);
    outb(UART + 1, 0x00);
    printf("OK recv-idle 0x%02x, IRQ %d after %.0f ms of the step\n", v,
           UART_GSI, now_ms() - t0);
    return 0;
}

/* wait-FILE: QEMU runs on, untouched, until the test says go. */
static int wait_file(const char *log, long *offset, const char *file)
{
    double t0 = now_ms();

    printf("WAIT %s\n", file);
    fflush(stdout);
    while (access(file, F_OK) != 0) {
        if (now_ms() - t0 > WAIT_FILE_MS) {
            printf("FAIL wait-%s: not there after %d ms\n", file, WAIT_FILE_MS);
            return 1;
        }
        usleep(10000);
    }
    /* what the agent's port did meanwhile (the restored settings) is not
     * what the next steps look for */
    *offset = log_size(log);
    printf("OK wait-%s %.0f ms\n", file, now_ms() - t0);
    return 0;
}

/* QEMU's fd whose file is the chardev's device (its node may be gone:
 * stat through /proc follows the open file itself). */
static int qemu_chardev_fd(char *link, size_t len)
{
    char dir[64], path[PATH_MAX];
    struct dirent *e;
    struct stat st;
    int found = -1;

    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)qemu_pid);
    DIR *d = opendir(dir);
    if (!d)
        die(dir);
    while (found < 0 && (e = readdir(d))) {
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(path, &st) < 0 ||
            !S_ISCHR(st.st_mode) || st.st_rdev != chardev_rdev)
            continue;
        found = atoi(e->d_name);
        ssize_t n = readlink(path, link, len - 1);
        link[n < 0 ? 0 : n] = '\0';
    }
    closedir(d);
    return found;
}

/* hangup: the device behind QEMU's chardev is gone; QEMU's own open
 * file says so (error or hang-up), and QEMU still runs its main loop. */
static int hangup(void)
{
    char link[PATH_MAX];
    int qfd = qemu_chardev_fd(link, sizeof(link));
    int pidfd = (int)syscall(SYS_pidfd_open, qemu_pid, 0);
    int fd = qfd < 0 || pidfd < 0
                 ? -1
                 : (int)syscall(SYS_pidfd_getfd, pidfd, qfd, 0);
    double t0 = now_ms();
    char c;

    if (qfd < 0) {
        printf("FAIL hangup: QEMU holds no fd on the chardev's device\n");
        return 1;
    }
    if (fd < 0)
        die("pidfd_getfd");
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, HANGUP_MS);
    ssize_t r = read(fd, &c, 1);
    int err = errno;
    if (n != 1 || !(p.revents & (POLLERR | POLLHUP | POLLNVAL)) || r > 0 ||
        (r < 0 && err == EAGAIN)) {
        printf("FAIL hangup: QEMU's fd %d (%s): poll %d revents 0x%x, "
               "read %zd (%s)\n",
               qfd, link, n, p.revents, r, r < 0 ? strerror(err) : "-");
        return 1;
    }
    printf("OK hangup: QEMU's fd %d (%s): poll revents 0x%x in %.0f ms, "
           "read: %s\n",
           qfd, link, p.revents, now_ms() - t0, r ? strerror(err) : "EOF");
    qtest("inb 0x%x%.0u", UART + 5, 0);
    printf("OK hangup: QEMU still answers\n");
    close(fd);
    close(pidfd);
    return 0;
}

static int qemu_step(const char *log, long *offset, const char *name)
{
    const unsigned frame = CSIZE | PARENB | PARODD | CSTOPB;
    struct want w2 = {0}, w1 = {0};
    double t0 = now_ms();

    if (strcmp(name, "9600-7E2") == 0) {
        uart_line(12, 0x1e); /* 7 bits, 2 stop, parity, even */
        w1 = (struct want){"TCSETS2", frame, CS7 | PARENB | CSTOPB, 9600, 0};
    } else if (strcmp(name, "115200-8N1") == 0) {
        uart_line(1, 0x03);
        w1 = (struct want){"TCSETS2", frame, CS8, 115200, 0};
    } else if (strcmp(name, "modem-off") == 0) {
        outb(UART + 4, 0x00); /* MCR */
        w2 = (struct want){"TIOCMBIC 0x4", 0, 0, 0, 0};
        w1 = (struct want){"TIOCMBIC 0x2", 0, 0, 0, &w2};
    } else if (strcmp(name, "modem-on") == 0) {
        outb(UART + 4, 0x03); /* DTR | RTS */
        w2 = (struct want){"TIOCMBIS 0x4", 0, 0, 0, 0};
        w1 = (struct want){"TIOCMBIS 0x2", 0, 0, 0, &w2};
    } else if (strcmp(name, "break") == 0) { /* LCR bit 6, 8N1 */
        outb(UART + 3, 0x43);
        outb(UART + 3, 0x03);
        w1 = (struct want){"TIOCSBRK", 0, 0, 0, 0};
    } else if (strcmp(name, "send256") == 0) {
        for (unsigned i = 0; i < 256; i++)
            outb(UART, i);
        printf("OK send256\n");
        return 0;
    } else if (strcmp(name, "recv256") == 0) {
        return uart_recv256();
    } else if (strcmp(name, "send-down") == 0) {
        return send_down(t0);
    } else if (strncmp(name, "wait-", 5) == 0) {
        return wait_file(log, offset, name + 5);
    } else if (strcmp(name, "hangup") == 0) {
        return hangup();
    } else if (strcmp(name, "idle-arm") == 0) {
        return idle_arm();
    } else if (strcmp(name, "recv-idle") == 0) {
        return recv_idle();
    } else {
        printf("FAIL unknown step %s\n", name);
        return 1;
    }
    return report(log, offset, name, &w1, t0);
}

/* Starts QEMU (argv after "--", plus -qtest) and waits for its qtest
 * connection. Returns its pid. */
static pid_t qemu_start(char **argv)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int argc = 0, srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", QTEST_SOCK);
    unlink(QTEST_SOCK);
    if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(srv, 1) < 0)
        die("qtest socket");
    while (argv[argc])
        argc++;
    char **args = calloc((size_t)argc + 5, sizeof(*args));
    memcpy(args, argv, (size_t)argc * sizeof(*args));
    args[argc] = "-qtest";
    args[argc + 1] = "unix:" QTEST_SOCK;
    args[argc + 2] = "-qtest-log";
    args[argc + 3] = "/dev/null";
    pid_t pid = fork();
    if (pid == 0) {
        execvp(args[0], args);
        _exit(127);
    }
    free(args);
    struct pollfd p = {srv, POLLIN, 0};
    if (pid < 0 || poll(&p, 1, 60000) != 1)
        die("QEMU did not connect to qtest");
    int c = accept(srv, NULL, NULL);
    struct timeval tv = {QTEST_ANSWER_S, 0};
    close(srv);
    if (c < 0 || setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        !(qt = fdopen(c, "r")) || !(qt_out = fdopen(dup(c), "w")))
        die("accept");
    return pid;
}

/* The device -chardev serial,path=P opens (hangup finds QEMU's fd by it). */
static void note_chardev(char **argv)
{
    for (; *argv; argv++) {
        const char *p = strstr(*argv, "path=");
        char path[PATH_MAX];
        struct stat st;
        if (!p || strncmp(*argv, "serial,", 7) != 0)
            continue;
        snprintf(path, sizeof(path), "%.*s", (int)strcspn(p + 5, ","), p + 5);
        if (stat(path, &st) == 0)
            chardev_rdev = st.st_rdev;
    }
}

/* SIGTERM, then at most QUIT_MS for QEMU to exit. */
static int qemu_quit(pid_t pid)
{
    double t0 = now_ms();

    kill(pid, SIGTERM);
    while (waitpid(pid, NULL, WNOHANG) == 0) {
        if (now_ms() - t0 > QUIT_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            printf("FAIL QEMU did not quit within %d ms of SIGTERM\n", QUIT_MS);
            return 1;
        }
        usleep(10000);
    }
    printf("OK qemu quit in %.0f ms\n", now_ms() - t0);
    return 0;
}

static int qemu(int argc, char **argv)
{
    int dash = 3;
    long offset;

    while (dash < argc && strcmp(argv[dash], "--") != 0)
        dash++;
    if (dash >= argc - 1)
        return 2;
    double t0 = now_ms();
    offset = log_size(argv[2]);
    note_chardev(argv + dash + 1);
    pid_t pid = qemu_pid = qemu_start(argv + dash + 1);
    /* qtest connects before QEMU's machine is up: the first answer says
     * it is, so the steps time the UART alone */
    qtest("inb 0x%x%.0u", UART + 5, 0);
    printf("OK qemu up in %.0f ms\n", now_ms() - t0);
    int rc = 0;
    for (int i = 3; i < dash && !rc; i++)
        rc = qemu_step(argv[2], &offset, argv[i]);
    return qemu_quit(pid) || rc;
}

/* ---- bad ioctls ---- */

static int expect_fail(int fd, const char *what, unsigned long cmd, void *arg,
                       int want)
{
    errno = 0;
    int rc = ioctl(fd, cmd, arg);
    if (rc == -1 && errno == want) {
        printf("OK %s: %s\n", what, strerror(errno));
        return 0;
    }
    printf("FAIL %s: rc %d, %s (want %s)\n", what, rc, strerror(errno),
           strerror(want));
    return 1;
}

static int hostile(const char *path)
{
    int fd = open(path, O_RDWR | O_NONBLOCK | O_NOCTTY);
    char c = 'x';
    int bad = 0;
    struct termios t;

    if (fd < 0)
        die("open");
    bad |= expect_fail(fd, "TIOCSTI (unknown)", TIOCSTI, &c, ENOTTY);
    bad |= expect_fail(fd, "TIOCSCTTY (unknown)", TIOCSCTTY, NULL, ENOTTY);
    bad |= expect_fail(fd, "_IOR 4000 bytes (unknown)",
                       _IOR('x', 1, char[4000]), &c, ENOTTY);
    bad |= expect_fail(fd, "0xdeadbeef", 0xdeadbeef, NULL, ENOTTY);
    bad |= expect_fail(fd, "TCGETS to NULL", TCGETS, NULL, EFAULT);
    bad |= expect_fail(fd, "TCSETS from a bad pointer", TCSETS, (void *)16,
                       EFAULT);
    bad |= expect_fail(fd, "TIOCMSET from NULL", TIOCMSET, NULL, EFAULT);
    bad |= expect_fail(fd, "TCFLSH 9", TCFLSH, (void *)9, EINVAL);
    if (tcgetattr(fd, &t) < 0 || cfgetospeed(&t) == 0)
        die("tcgetattr after");
    printf("%s hostile: the tty still answers\n", bad ? "FAIL" : "OK");
    close(fd);
    return bad;
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

#define STORM_REPORT_MS 200

static int storm(const char *path, const char *seconds)
{
    int fd = open(path, O_RDWR | O_NONBLOCK | O_NOCTTY), bits;
    double end = now_ms() + atof(seconds) * 1e3, next = 0;
    unsigned long n = 0, eintr = 0;

    if (fd < 0)
        die("storm: open");
    for (double t = now_ms(); t < end; t = now_ms()) {
        if (ioctl(fd, TIOCMGET, &bits) == 0)
            n++;
        else if (errno == EINTR)
            eintr++;
        else
            die("storm: TIOCMGET");
        if (t >= next) {
            printf("alive %lu eintr %lu\n", n, eintr);
            next = t + STORM_REPORT_MS;
        }
    }
    printf("OK storm %lu calls, %lu EINTR\n", n, eintr);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 5 && strcmp(argv[1], "steps") == 0)
        return steps(argc, argv);
    if (argc == 7 && strcmp(argv[1], "pump") == 0)
        return pump(argv);
    if (argc == 6 && strcmp(argv[1], "bytes") == 0)
        return bytes(argv);
    if (argc == 3 && strcmp(argv[1], "hostile") == 0)
        return hostile(argv[2]);
    if (argc >= 5 && strcmp(argv[1], "qemu") == 0)
        return qemu(argc, argv);
    if (argc == 4 && strcmp(argv[1], "storm") == 0)
        return storm(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "gen") == 0)
        return gen(argv);
    fprintf(stderr, "usage: see the first comment of cuse_guest.c\n");
    return 2;
}
