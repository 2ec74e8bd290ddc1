/* SPDX-License-Identifier: MIT */
/* Files that hold secrets (the relay's shared secret, TLS keys): refused
 * unless they are regular files that only their owner, this process's
 * user, can read or write. */
#ifndef REDIR_SECURE_FILE_H
#define REDIR_SECURE_FILE_H

#include <stddef.h>

#define SECURE_FILE_ERR_MAX 512

/* Checks the open fd of path. Returns 0, or -1 with "PATH: what is wrong
 * (and the fix)" in err. */
int secure_file_check(int fd, const char *path, char *err, size_t err_len);

/* Resolves "credential:NAME" (systemd's LoadCredential=) to
 * $CREDENTIALS_DIRECTORY/NAME; any other path is copied as it is. Returns
 * 0, or -1 with why in err. */
int secure_file_path(const char *path, char *out, size_t out_len, char *err,
                     size_t err_len);

#endif
