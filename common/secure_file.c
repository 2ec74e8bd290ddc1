/* SPDX-License-Identifier: MIT */
/* Files that hold secrets (the relay's shared secret, TLS keys): refused
 * unless they are regular files that only their owner, this process's
 * user, can read or write. */
#include "secure_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CREDENTIAL_PREFIX "credential:"

int secure_file_check(int fd, const char *path, char *err, size_t err_len)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s: not a regular file", path);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, err_len,
                 "%s: readable or writable by others (mode %04o); a secret "
                 "or key must not be: chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, err_len,
                 "%s: owned by uid %u, not by this process's user (uid %u); "
                 "chown it",
                 path, (unsigned)st.st_uid, (unsigned)geteuid());
        return -1;
    }
    return 0;
}

int secure_file_path(const char *path, char *out, size_t out_len, char *err,
                     size_t err_len)
{
    size_t prefix = strlen(CREDENTIAL_PREFIX);

    if (strncmp(path, CREDENTIAL_PREFIX, prefix) != 0) {
        snprintf(out, out_len, "%s", path);
        return 0;
    }
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    const char *name = path + prefix;
    if (!dir || !*dir) {
        snprintf(err, err_len,
                 "%s: no $CREDENTIALS_DIRECTORY (set by systemd's "
                 "LoadCredential=)",
                 path);
        return -1;
    }
    if (!*name || strchr(name, '/')) {
        snprintf(err, err_len, "%s: a credential name has no '/'", path);
        return -1;
    }
    snprintf(out, out_len, "%s/%s", dir, name);
    return 0;
}
