/* SPDX-License-Identifier: MIT */
/* systemd's file descriptor store: the fds passed back at start, and the
 * FDSTORE/FDSTOREREMOVE notifications (see fdstore.h). */
#include "fdstore.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/* sd_listen_fds(3): passed fds start here. */
#define FDSTORE_FD_START 3
/* More than any configuration stores (two per serial target, targets are
 * bounded by the relay's own limit): a larger LISTEN_FDS is not ours. */
#define FDSTORE_MAX 1024

struct stored {
    char name[FDSTORE_NAME_MAX + 1];
    int fd; /* -1 once taken */
};

static struct stored *passed;
static size_t n_passed;
static bool keeping;

/* LISTEN_FDS, when LISTEN_PID says it is for this process. */
static long passed_count(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    char *end;

    if (!pid || !fds || strtol(pid, &end, 10) != (long)getpid() || *end)
        return 0;
    long n = strtol(fds, &end, 10);
    if (*end || n < 0 || n > FDSTORE_MAX) {
        log_warn("systemd passed LISTEN_FDS=%s: ignored", fds);
        return 0;
    }
    return n;
}

void fdstore_init(void)
{
    long n = passed_count();
    const char *names = getenv("LISTEN_FDNAMES");

    passed = n ? calloc((size_t)n, sizeof(*passed)) : NULL;
    n_passed = passed ? (size_t)n : 0;
    for (size_t i = 0; i < n_passed; i++) {
        size_t seg = names ? strcspn(names, ":") : 0;
        if (names && seg <= FDSTORE_NAME_MAX) /* else not a name of ours */
            memcpy(passed[i].name, names, seg);
        passed[i].fd = FDSTORE_FD_START + (int)i;
        fcntl(passed[i].fd, F_SETFD, FD_CLOEXEC);
        if (names)
            names = names[seg] ? names + seg + 1 : NULL;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* A name is stored once; more fds under it are stale copies (systemd
 * keeps every fd sent under a name, e.g. a pair stored again after an
 * earlier run could not adopt it): closed here, so that dropping the
 * unclaimed ones later never removes the name the caller stores anew. */
int fdstore_take(const char *name)
{
    int fd = -1;

    for (size_t i = 0; i < n_passed; i++) {
        if (passed[i].fd < 0 || strcmp(passed[i].name, name) != 0)
            continue;
        if (fd < 0)
            fd = passed[i].fd;
        else
            close(passed[i].fd);
        passed[i].fd = -1;
    }
    return fd;
}

int fdstore_put(const char *name, int fd)
{
    char msg[sizeof("FDSTORE=1\nFDNAME=") + FDSTORE_NAME_MAX];

    if (strlen(name) > FDSTORE_NAME_MAX || strchr(name, ':'))
        return -EINVAL;
    snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
    return daemon_notify_fds(msg, &fd, 1);
}

void fdstore_remove(const char *name)
{
    char msg[sizeof("FDSTOREREMOVE=1\nFDNAME=") + FDSTORE_NAME_MAX];

    if (keeping)
        return;
    snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
    daemon_notify(msg);
}

void fdstore_keep(void) { keeping = true; }

bool fdstore_keeping(void) { return keeping; }

int fdstore_barrier(int timeout_ms)
{
    int p[2], rc;

    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    rc = daemon_notify_fds("BARRIER=1", &p[1], 1);
    close(p[1]); /* systemd's copy is the last: it closes it when done */
    if (rc == 0) {
        struct pollfd pfd = {.fd = p[0], .events = 0};
        int n = poll(&pfd, 1, timeout_ms); /* POLLHUP needs no asking */
        rc = n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
    }
    close(p[0]);
    return rc;
}

size_t fdstore_drop_unclaimed(void)
{
    size_t n = 0;

    for (size_t i = 0; i < n_passed; i++) {
        if (passed[i].fd < 0)
            continue;
        close(passed[i].fd);
        passed[i].fd = -1;
        fdstore_remove(passed[i].name);
        n++;
    }
    free(passed);
    passed = NULL;
    n_passed = 0;
    return n;
}
