/* SPDX-License-Identifier: MIT */
/* Daemon plumbing shared by agent and relay: pidfile and systemd readiness
 * notifications. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

int daemon_pidfile_write(const char *path)
{
    char tmp[4096], pid[32];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());

    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        log_err("pidfile %s: path too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, pid, (size_t)len) != len || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        log_err("pidfile %s: %s", path, strerror(errno));
        if (fd >= 0)
            unlink(tmp);
        return -1;
    }
    return 0;
}

void daemon_pidfile_remove(const char *path)
{
    if (path)
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
