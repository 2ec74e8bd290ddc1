/* SPDX-License-Identifier: MIT */
/* redir-agent status: asks the running agent over its control socket and prints
 * the answer. */
#include "status_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define STATUS_TIMEOUT_S 5 /* the agent answers at once; this is a hang */

int status_client_run(const char *socket_path, bool json)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = STATUS_TIMEOUT_S};
    const char *request = json ? "status json\n" : "status\n";
    char buf[4096];
    ssize_t n;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", socket_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr,
                "redir-agent status: cannot connect to %s: %s (is the agent "
                "running?)\n",
                socket_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (write(fd, request, strlen(request)) < 0) {
        fprintf(stderr, "redir-agent status: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    close(fd);
    if (n < 0) {
        fprintf(stderr, "redir-agent status: no answer from %s: %s\n",
                socket_path, strerror(errno));
        return 1;
    }
    return 0;
}
