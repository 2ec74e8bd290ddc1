/* SPDX-License-Identifier: MIT */
/* redir-agent COMMAND: sends one request line to the running agent over its
 * control socket and prints the answer (for "events", every line until the
 * agent goes). */
#ifndef REDIR_CONTROL_CLIENT_H
#define REDIR_CONTROL_CLIENT_H

#include <stdbool.h>

/* request without its newline; command names it in messages. Returns the
 * exit code: 0; 1 if the agent refused (its reason on stderr, or the JSON
 * on stdout) or could not be asked. */
int control_client_run(const char *socket_path, const char *command,
                       const char *request, bool stream);

#endif
