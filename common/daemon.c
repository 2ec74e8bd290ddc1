/* SPDX-License-Identifier: MIT */
/* Daemon plumbing shared by agent and relay: pidfile and systemd readiness
 * notifications. */
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

void daemon_notify(const char *state)
{
    const char *where = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len;

    if (!where || (where[0] != '/' && where[0] != '@') ||
        (len = strlen(where)) >= sizeof(sun.sun_path))
        return;
    memcpy(sun.sun_path, where, len);
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        log_debug("systemd notification '%s' failed: %s", state,
                  strerror(errno));
    close(fd);
}
