/* The local control socket: answers "status" requests from redir-agent status.
 */
#ifndef REDIR_CONTROL_H
#define REDIR_CONTROL_H

#include <stdbool.h>
#include <uv.h>

struct agent;
struct control_client;

struct control_server {
    uv_pipe_t pipe;
    bool listening;
    struct agent *agent;
    unsigned clients; /* connected now */
    struct control_client *client_list;
};

/* Listens on a->cfg.control_socket. A stale socket file is replaced; one
 * another agent answers on is an error. */
int control_start(struct control_server *c, struct agent *a);

/* Stops listening and removes the socket file. Idempotent. */
void control_stop(struct control_server *c);

#endif
