/* SPDX-License-Identifier: MIT */
/* The serial device's system calls: open, termios2, modem lines, break,
 * flush, and which errors mean the device is gone. No libuv, no state. */
#include "serial_tty.h"

/* termios2 lives in the kernel's headers, which clash with glibc's
 * <termios.h>: this file uses ioctl() only. */
#include <asm/termbits.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/serial.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

int serial_tty_open(const char *path, bool printer)
{
    int flags = O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    int fd = open(path, flags | (printer ? O_WRONLY : O_RDWR));

    if (fd < 0)
        return -errno;
    if (printer)
        return fd;
    struct termios2 t;
    if (ioctl(fd, TCGETS2, &t) < 0) {
        int err = errno;
        close(fd);
        return err == EINVAL ? -ENOTTY : -err;
    }
    ioctl(fd, TIOCEXCL); /* best effort: not every driver cares */
    return fd;
}

void serial_tty_release(int fd)
{
    /* the exclusive flag belongs to the tty, not to our fd: while another
     * program still holds the tty it would outlive us and refuse our own
     * next open (EBUSY for a user without CAP_SYS_ADMIN) */
    ioctl(fd, TIOCNXCL);
}

int serial_tty_set_line(int fd, const struct serial_line *l)
{
    struct termios2 t;

    if (ioctl(fd, TCGETS2, &t) < 0)
        return -errno;
    serial_line_to_termios2(l, &t);
    /* TCSETS2, not TCSETSW2: waiting for the output to drain would stall
     * the loop for as long as the device is flow-controlled. */
    if (ioctl(fd, TCSETS2, &t) < 0)
        return -errno;
    return 0;
}

int serial_tty_set_modem(int fd, enum serial_modem_output line, bool on)
{
    int bits = line == SERIAL_DTR ? TIOCM_DTR : TIOCM_RTS;

    return ioctl(fd, on ? TIOCMBIS : TIOCMBIC, &bits) < 0 ? -errno : 0;
}

int serial_tty_get_modem(int fd)
{
    int bits;

    return ioctl(fd, TIOCMGET, &bits) < 0 ? -errno : bits;
}

int serial_tty_break(int fd, bool on)
{
    return ioctl(fd, on ? TIOCSBRK : TIOCCBRK) < 0 ? -errno : 0;
}

int serial_tty_flush(int fd, enum serial_flush which)
{
    static const int queues[] = {
        [SERIAL_FLUSH_INPUT] = TCIFLUSH,
        [SERIAL_FLUSH_OUTPUT] = TCOFLUSH,
        [SERIAL_FLUSH_BOTH] = TCIOFLUSH,
    };
    return ioctl(fd, TCFLSH, queues[which]) < 0 ? -errno : 0;
}

/* Error bits for the counters that moved since *seen. */
static uint8_t line_errors(int fd, struct serial_tty_errors *seen)
{
    struct serial_icounter_struct now;
    uint8_t bits = 0;

    if (ioctl(fd, TIOCGICOUNT, &now) < 0)
        return 0;
    int overrun = now.overrun + now.buf_overrun;
    if (seen->valid) {
        bits |= now.brk != seen->brk ? RFC2217_LINE_BREAK : 0;
        bits |= now.frame != seen->frame ? RFC2217_LINE_FRAMING : 0;
        bits |= now.parity != seen->parity ? RFC2217_LINE_PARITY : 0;
        bits |= overrun != seen->overrun ? RFC2217_LINE_OVERRUN : 0;
    }
    *seen = (struct serial_tty_errors){.valid = true,
                                       .frame = now.frame,
                                       .parity = now.parity,
                                       .brk = now.brk,
                                       .overrun = overrun};
    return bits;
}

uint8_t serial_tty_linestate(int fd, struct serial_tty_errors *seen)
{
    int queued = 0, lsr = 0;
    uint8_t state = line_errors(fd, seen);

    if (ioctl(fd, TIOCINQ, &queued) == 0 && queued > 0)
        state |= RFC2217_LINE_DATA_READY;
    if (ioctl(fd, TIOCOUTQ, &queued) == 0 && queued == 0)
        state |= RFC2217_LINE_HOLDING_EMPTY;
    /* Only UART drivers know whether the shift register emptied; others
     * are taken as empty once their queue is. */
    if (ioctl(fd, TIOCSERGETLSR, &lsr) == 0
            ? (lsr & TIOCSER_TEMT)
            : (state & RFC2217_LINE_HOLDING_EMPTY))
        state |= RFC2217_LINE_SHIFT_EMPTY;
    return state;
}

bool serial_tty_gone(int err)
{
    switch (err) {
    case EIO:    /* pty master closed, USB adapter unplugged mid-transfer */
    case ENXIO:  /* no such device (any more) */
    case ENODEV: /* usblp, usb-serial after disconnect */
    case EPIPE:  /* a FIFO standing in for a printer lost its reader */
    case EBADF:
    case ESHUTDOWN: return true;
    default: return false;
    }
}

bool serial_tty_hung_up(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = 0};

    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}
