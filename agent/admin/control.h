/* SPDX-License-Identifier: MIT */
/* The local control socket: one request line per connection, answered by the
 * agent and closed. */
#ifndef REDIR_CONTROL_H
#define REDIR_CONTROL_H

#include <uv.h>

struct control_server;
struct strbuf;

/* Answers one request line ("status", "status json", ...) into reply. */
typedef void (*control_handler)(void *ctx, const char *request,
                                struct strbuf *reply);

/* Listens on path (mode 0660). A stale socket file is replaced; one another
 * agent answers on is an error. NULL after logging why. */
struct control_server *control_start(uv_loop_t *loop, const char *path,
                                     control_handler handler, void *ctx);

/* Stops listening, hangs up on clients, removes the socket file and frees
 * the server. */
void control_stop(struct control_server *c);

#endif
