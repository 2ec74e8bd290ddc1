/* SPDX-License-Identifier: MIT */
/* Daemon plumbing shared by agent and relay: pidfile and systemd readiness
 * notifications (with file descriptors, for the fd store). */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

int daemon_pidfile_write(const char *path)
{
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    struct stat st;

    /* O_NOFOLLOW: a symbolic link planted at path (say, to /etc/shadow by
     * whoever can write the pidfile's directory) is refused, never followed.
     * O_NONBLOCK: a FIFO planted there cannot hang the open. No O_TRUNC: the
     * file is only changed once it is known to be a plain file. */
    int fd = open(path,
                  O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
                      O_NOCTTY,
                  0644);
    if (fd < 0) {
        if (errno == ELOOP)
            log_err("pidfile %s: is a symbolic link; refused, not followed "
                    "(remove it)",
                    path);
        else
            log_err("pidfile %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        log_err("pidfile %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* A hard link to another file would have it overwritten. */
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        log_err("pidfile %s: not a regular file with a single link; refused "
                "(remove it)",
                path);
        close(fd);
        return -1;
    }
    /* The new pid over the old one, then the rest cut off: a reader sees
     * one pid or the other, never an empty file. */
    errno = 0;
    bool ok = pwrite(fd, pid, (size_t)len, 0) == len && ftruncate(fd, len) == 0;
    int err = errno;
    if (close(fd) < 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        log_err("pidfile %s: %s", path, err ? strerror(err) : "short write");
        return -1;
    }
    return 0;
}

void daemon_pidfile_remove(const char *path)
{
    char buf[32], pid[32];
    ssize_t n = 0;

    if (!path)
        return;
    /* Only our own: not what a failed start found there (another instance's
     * pidfile, a planted link). */
    int fd =
        open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
    }
    snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (n > 0 && (size_t)n == strlen(pid) && memcmp(buf, pid, (size_t)n) == 0)
        unlink(path);
}

int daemon_notify_fds(const char *state, const int *fds, size_t n_fds)
{
    const char *where = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    union { /* aligned room for the SCM_RIGHTS header and fds */
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * DAEMON_NOTIFY_FDS_MAX)];
    } ctl;
    struct iovec iov = {.iov_base = (void *)state, .iov_len = strlen(state)};
    struct msghdr msg = {.msg_name = &sun, .msg_iov = &iov, .msg_iovlen = 1};
    size_t len;
    int rc = 0;

    if (!where || (where[0] != '/' && where[0] != '@') ||
        (len = strlen(where)) >= sizeof(sun.sun_path))
        return -ENOTCONN;
    if (n_fds > DAEMON_NOTIFY_FDS_MAX)
        return -EINVAL;
    memcpy(sun.sun_path, where, len);
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0'; /* abstract namespace */
    msg.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (n_fds) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

void daemon_notify(const char *state)
{
    int rc = daemon_notify_fds(state, NULL, 0);

    if (rc < 0 && rc != -ENOTCONN)
        log_debug("systemd notification '%s' failed: %s", state, strerror(-rc));
}
