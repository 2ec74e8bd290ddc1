/* SPDX-License-Identifier: MIT */
/* The shared secret of agents and relay, read from a file only root can
 * read. */
#ifndef REDIR_RELAY_SECRET_H
#define REDIR_RELAY_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "relay_proto.h"

/* Reads the secret in path into buf (RELAY_SECRET_MAX bytes) and its
 * length into *len. The file must be a regular file not readable by
 * others (mode o-r: "chmod 600"); trailing newlines (\n, \r\n) are cut;
 * what remains must be RELAY_SECRET_MIN to RELAY_SECRET_MAX bytes. Returns
 * 0, or -1 with "PATH: what is wrong" in err (RELAY_ERR_MAX bytes). Wipe
 * buf with sodium_memzero when done. */
int relay_secret_load(const char *path, uint8_t *buf, size_t *len, char *err);

#endif
