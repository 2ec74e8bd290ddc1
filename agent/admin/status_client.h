/* SPDX-License-Identifier: MIT */
/* redir-agent status: asks the running agent over its control socket and prints
 * the answer. */
#ifndef REDIR_STATUS_CLIENT_H
#define REDIR_STATUS_CLIENT_H

#include <stdbool.h>

/* Returns the exit code: 0, or 1 if the agent could not be asked. */
int status_client_run(const char *socket_path, bool json);

#endif
