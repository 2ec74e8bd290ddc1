/* SPDX-License-Identifier: MIT */
/* redir-agent COMMAND: sends one request line to the running agent over its
 * control socket and prints the answer (for "events", every line until the
 * agent goes). */
#include "control_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define CLIENT_TIMEOUT_S 5 /* the agent answers at once; this is a hang */
#define CLIENT_REPLY_MAX (1u << 20) /* the agent's own bound (STRBUF_MAX) */

static int client_connect(const char *path, const char *command)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
        return fd;
    fprintf(stderr, "redir-agent %s: cannot connect to %s: %s%s\n", command,
            path, strerror(errno),
            errno == EACCES ? " (the control socket is for root, the agent's "
                              "user and its group: see [agent] control_group)"
            : errno == ENOENT || errno == ECONNREFUSED
                ? " (is the agent running?)"
                : "");
    if (fd >= 0)
        close(fd);
    return -1;
}

/* A refusal: "error: WHY" (text) or {"ok":false,...} (JSON). */
static bool is_refusal(const char *reply)
{
    return strncmp(reply, "error: ", 7) == 0 ||
           strncmp(reply, "{\"ok\":false", 11) == 0;
}

/* Reads the whole reply (one request, one answer, then the agent closes). */
static int read_reply(int fd, const char *command)
{
    static char buf[CLIENT_REPLY_MAX + 1];
    size_t len = 0;
    ssize_t n;

    while (len < CLIENT_REPLY_MAX &&
           (n = read(fd, buf + len, CLIENT_REPLY_MAX - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    if (len == 0) {
        fprintf(stderr, "redir-agent %s: no answer from the agent%s%s\n",
                command, errno ? ": " : "", errno ? strerror(errno) : "");
        return 1;
    }
    if (strncmp(buf, "error: ", 7) == 0) {
        fprintf(stderr, "redir-agent %s: %s", command, buf + 7);
        return 1;
    }
    fwrite(buf, 1, len, stdout);
    return is_refusal(buf) ? 1 : 0;
}

/* events: lines as they come, flushed each time (a pipe to an applet); a
 * refusal instead of the stream (too many subscribers) is an error. */
static int read_stream(int fd, const char *command)
{
    char buf[4096];
    ssize_t n;
    bool first = true;

    while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
        buf[n] = '\0';
        if (first && strncmp(buf, "error: ", 7) == 0) {
            fprintf(stderr, "redir-agent %s: %s", command, buf + 7);
            return 1;
        }
        first = false;
        fwrite(buf, 1, (size_t)n, stdout);
        fflush(stdout);
    }
    return 0;
}

int control_client_run(const char *socket_path, const char *command,
                       const char *request, bool stream)
{
    struct timeval tv = {.tv_sec = CLIENT_TIMEOUT_S};
    int fd = client_connect(socket_path, command), rc;

    if (fd < 0)
        return 1;
    if (!stream)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (write(fd, request, strlen(request)) < 0 || write(fd, "\n", 1) < 0) {
        fprintf(stderr, "redir-agent %s: %s\n", command, strerror(errno));
        close(fd);
        return 1;
    }
    errno = 0;
    rc = stream ? read_stream(fd, command) : read_reply(fd, command);
    close(fd);
    return rc;
}
