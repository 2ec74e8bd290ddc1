/* SPDX-License-Identifier: MIT */
/* The local control socket: one request line per connection, answered by the
 * agent and closed; or, for "events", kept open for a stream of lines. Each
 * request comes with the peer's credentials. */
#ifndef REDIR_CONTROL_H
#define REDIR_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "control_proto.h"

struct control_server;
struct strbuf;

enum control_outcome {
    CONTROL_DONE,      /* the reply is all: close */
    CONTROL_SUBSCRIBE, /* reply, then stay open for control_broadcast() */
};

/* Answers one request line (without its newline) into reply; peer is who
 * sent it. */
typedef enum control_outcome (*control_handler)(void *ctx, const char *request,
                                                const struct control_peer *peer,
                                                struct strbuf *reply);

/* The socket file's mode and group ((gid_t)-1: the agent's). */
struct control_socket_opts {
    unsigned mode;
    gid_t group;
};

/* Listens on path. A stale socket file is replaced; one another agent
 * answers on is an error. NULL after logging why. */
struct control_server *control_start(uv_loop_t *loop, const char *path,
                                     const struct control_socket_opts *opts,
                                     control_handler handler, void *ctx);

/* Sends line (with its newline) to every subscriber; one that does not
 * read is cut off rather than buffered without end. */
void control_broadcast(struct control_server *c, const char *line, size_t len);

size_t control_subscribers(const struct control_server *c);

/* Stops listening, hangs up on clients, removes the socket file and frees
 * the server. */
void control_stop(struct control_server *c);

#endif
