/* SPDX-License-Identifier: MIT */
/* The shared secret of agents and relay, read from a file only root can
 * read. */
#include "relay_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secure_file.h"

/* Reads up to cap bytes; returns the count, or -1 with err set. */
static ssize_t secret_read(int fd, const char *path, uint8_t *buf, size_t cap,
                           char *err)
{
    size_t have = 0;

    while (have < cap) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, RELAY_ERR_MAX, "%s: %s", path, strerror(errno));
            return -1;
        }
        if (n == 0)
            break;
        have += (size_t)n;
    }
    return (ssize_t)have;
}

int relay_secret_load(const char *path, uint8_t *buf, size_t *len, char *err)
{
    uint8_t raw[RELAY_SECRET_MAX + 3]; /* a longest secret, "\r\n", one
                                          more byte that says too long */
    char real[4096];
    ssize_t n = -1;

    *len = 0;
    if (secure_file_path(path, real, sizeof(real), err, RELAY_ERR_MAX) < 0)
        return -1;
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, RELAY_ERR_MAX, "%s: cannot open: %s", path,
                 strerror(errno));
        return -1;
    }
    if (secure_file_check(fd, path, err, RELAY_ERR_MAX) == 0)
        n = secret_read(fd, path, raw, sizeof(raw), err);
    close(fd);
    if (n < 0)
        return -1;
    bool too_long = (size_t)n == sizeof(raw);
    while (!too_long && n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
        n--;
    if (too_long || n < RELAY_SECRET_MIN || n > RELAY_SECRET_MAX) {
        snprintf(err, RELAY_ERR_MAX,
                 "%s: the secret must be %d to %d bytes long (newline at "
                 "the end not counted)%s",
                 path, RELAY_SECRET_MIN, RELAY_SECRET_MAX,
                 n < RELAY_SECRET_MIN
                     ? "; make one with: head -c 32 /dev/urandom | base64"
                     : "");
        sodium_memzero(raw, sizeof(raw));
        return -1;
    }
    memcpy(buf, raw, (size_t)n);
    *len = (size_t)n;
    sodium_memzero(raw, sizeof(raw));
    return 0;
}
