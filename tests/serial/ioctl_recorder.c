/* SPDX-License-Identifier: MIT */
/* LD_PRELOAD library for the serial e2e tests: logs the modem-line,
 * break and termios ioctls a program issues (ptys cannot show DTR, RTS,
 * BREAK, parity or data size) to $REDIR_IOCTL_LOG, one line each, then
 * passes them on; with $REDIR_IOCTL_MODEM, TIOCMGET answers the TIOCM_*
 * bits written in that file (a pty has no modem inputs to show); with
 * $REDIR_IOCTL_ICOUNT, TIOCGICOUNT answers the error counters written in
 * that file, "FRAME PARITY OVERRUN BRK" (a pty has no line errors). */
#include <asm/termbits.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/serial.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

typedef int (*ioctl_fn)(int fd, unsigned long request, ...);

int ioctl(int fd, unsigned long request, ...);

static void record(const char *line)
{
    const char *path = getenv("REDIR_IOCTL_LOG");
    int log;

    if (!path)
        return;
    log = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log < 0)
        return;
    /* one write per line: O_APPEND keeps lines whole */
    if (write(log, line, strlen(line)) < 0) {
        /* nothing to do: the test will miss the line */
    }
    close(log);
}

/* The text of the file $env names (the test rewrites it at will), or
 * NULL when unset or empty: then the tty answers. */
static const char *fake_text(const char *env, char *text, size_t len)
{
    const char *path = getenv(env);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read(fd, text, len - 1) : -1;

    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return NULL;
    text[n] = '\0';
    return text;
}

/* TIOCMGET from $REDIR_IOCTL_MODEM ("0x120"): 0, or -1 to ask the tty. */
static int fake_modem(int *bits)
{
    char text[32];

    if (!fake_text("REDIR_IOCTL_MODEM", text, sizeof(text)))
        return -1;
    *bits = (int)strtol(text, NULL, 0);
    return 0;
}

/* TIOCGICOUNT from $REDIR_IOCTL_ICOUNT: 0, or -1 to ask the tty. */
static int fake_icount(struct serial_icounter_struct *c)
{
    char text[64];

    if (!fake_text("REDIR_IOCTL_ICOUNT", text, sizeof(text)))
        return -1;
    memset(c, 0, sizeof(*c));
    if (sscanf(text, "%d %d %d %d", &c->frame, &c->parity, &c->overrun,
               &c->brk) != 4)
        return -1;
    return 0;
}

static void describe(unsigned long request, void *arg, char *line, size_t len)
{
    switch (request) {
    case TIOCMBIS:
    case TIOCMBIC:
    case TIOCMSET:
        snprintf(line, len, "%s 0x%x\n",
                 request == TIOCMBIS   ? "TIOCMBIS"
                 : request == TIOCMBIC ? "TIOCMBIC"
                                       : "TIOCMSET",
                 *(int *)arg);
        return;
    case TIOCSBRK: snprintf(line, len, "TIOCSBRK\n"); return;
    case TIOCCBRK: snprintf(line, len, "TIOCCBRK\n"); return;
    case TCSBRK: snprintf(line, len, "TCSBRK %ld\n", (long)arg); return;
    case TCSETS:
    case TCSETSW:
    case TCSETSF: {
        struct termios *t = arg;
        snprintf(line, len, "TCSETS cflag=0%o iflag=0%o\n", t->c_cflag,
                 t->c_iflag);
        return;
    }
    case TCSETS2:
    case TCSETSW2:
    case TCSETSF2: {
        struct termios2 *t = arg;
        snprintf(line, len, "TCSETS2 cflag=0%o iflag=0%o ospeed=%u\n",
                 t->c_cflag, t->c_iflag, t->c_ospeed);
        return;
    }
    default: line[0] = '\0';
    }
}

int ioctl(int fd, unsigned long request, ...)
{
    static ioctl_fn real;
    char line[128];
    va_list ap;
    void *arg;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (!real)
        real = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
    describe(request, arg, line, sizeof(line));
    if (line[0])
        record(line);
    if (request == TIOCMGET && fake_modem(arg) == 0)
        return 0;
    if (request == TIOCGICOUNT && fake_icount(arg) == 0)
        return 0;
    return real(fd, request, arg);
}
