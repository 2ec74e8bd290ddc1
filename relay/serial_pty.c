/* SPDX-License-Identifier: MIT */
/* The pty behind a serial target, as system calls: creating it in raw
 * mode with EXTPROC and packet mode, and reading the line settings QEMU
 * applied to its slave. No libuv (whose header brings glibc's termios). */
#include "serial_pty.h"

#include <asm/termbits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int pty_setup(int master, int slave)
{
    struct termios2 t;
    struct serial_line l;
    int on = 1;

    if (ioctl(slave, TCGETS2, &t) < 0)
        return -errno;
    serial_line_default(&l);
    serial_line_to_termios2(&l, &t);
    t.c_lflag |= EXTPROC;
    if (ioctl(slave, TCSETS2, &t) < 0 || ioctl(master, TIOCPKT, &on) < 0)
        return -errno;
    return 0;
}

int serial_pty_open(int *master, int *slave, char *name, size_t len)
{
    int rc;

    *slave = -1;
    *master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (*master < 0)
        return -errno;
    if (grantpt(*master) < 0 || unlockpt(*master) < 0 ||
        (errno = ptsname_r(*master, name, len)) != 0) {
        rc = -errno;
        goto fail;
    }
    *slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*slave < 0) {
        rc = -errno;
        goto fail;
    }
    rc = pty_setup(*master, *slave);
    if (rc == 0)
        return 0;
fail:
    close(*master);
    if (*slave >= 0)
        close(*slave);
    *master = *slave = -1;
    return rc;
}

int serial_pty_adopt(int master, int slave, char *name, size_t len)
{
    struct stat named, held;
    int on = 1;

    if ((errno = ptsname_r(master, name, len)) != 0)
        return -errno; /* ENOTTY: not a pty's master */
    if (stat(name, &named) < 0 || fstat(slave, &held) < 0)
        return -errno;
    if (!S_ISCHR(held.st_mode) || held.st_rdev != named.st_rdev)
        return -EXDEV; /* not this master's slave */
    if (fcntl(master, F_SETFL, O_RDWR | O_NONBLOCK) < 0 ||
        ioctl(master, TIOCPKT, &on) < 0)
        return -errno;
    return 0;
}

int serial_pty_line(int master, struct serial_line *l)
{
    struct termios2 t;

    if (ioctl(master, TCGETS2, &t) < 0)
        return -errno;
    serial_line_from_termios2(&t, l);
    return 0;
}
