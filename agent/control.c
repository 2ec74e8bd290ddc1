/* The local control socket: answers "status" requests from redir-agent status.
 */
#include "control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "status.h"
#include "strbuf.h"

#define CONTROL_MAX_CLIENTS 8          /* admins and scripts, not a crowd */
#define CONTROL_REQUEST_MAX 128        /* "status json\n" and friends */
#define CONTROL_CLIENT_TIMEOUT_MS 2000 /* a client that says nothing */
#define CONTROL_SOCKET_MODE 0660       /* root and the socket's group */

struct control_client {
    struct control_client *next;
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_write_t write_req;
    struct control_server *server;
    char request[CONTROL_REQUEST_MAX];
    size_t len;
    struct strbuf reply;
    int handles_open;
    bool answered;
};

static void on_client_handle_closed(uv_handle_t *handle)
{
    struct control_client *cl = handle->data;
    if (--cl->handles_open)
        return;
    for (struct control_client **pp = &cl->server->client_list; *pp;
         pp = &(*pp)->next) {
        if (*pp == cl) {
            *pp = cl->next;
            break;
        }
    }
    cl->server->clients--;
    strbuf_free(&cl->reply);
    free(cl);
}

static void client_close(struct control_client *cl)
{
    if (uv_is_closing((uv_handle_t *)&cl->pipe))
        return;
    uv_close((uv_handle_t *)&cl->timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&cl->pipe, on_client_handle_closed);
}

static void on_reply_written(uv_write_t *req, int status)
{
    (void)status;
    client_close(req->data);
}

/* Answers one request line; the connection closes after the reply. */
static void client_answer(struct control_client *cl)
{
    struct agent *a = cl->server->agent;

    cl->answered = true;
    uv_read_stop((uv_stream_t *)&cl->pipe);
    if (strcmp(cl->request, "status") == 0)
        status_render(a, false, &cl->reply);
    else if (strcmp(cl->request, "status json") == 0)
        status_render(a, true, &cl->reply);
    else
        strbuf_printf(&cl->reply, "error: unknown request (try: status, "
                                  "status json)\n");
    if (cl->reply.failed || !cl->reply.data) {
        client_close(cl);
        return;
    }
    uv_buf_t buf = uv_buf_init(cl->reply.data, (unsigned)cl->reply.len);
    cl->write_req.data = cl;
    if (uv_write(&cl->write_req, (uv_stream_t *)&cl->pipe, &buf, 1,
                 on_reply_written) < 0)
        client_close(cl);
}

static void on_client_alloc(uv_handle_t *handle, size_t suggested,
                            uv_buf_t *buf)
{
    struct control_client *cl = handle->data;
    (void)suggested;
    *buf = uv_buf_init(cl->request + cl->len,
                       (unsigned)(sizeof(cl->request) - 1 - cl->len));
}

static void on_client_read(uv_stream_t *stream, ssize_t nread,
                           const uv_buf_t *buf)
{
    struct control_client *cl = stream->data;
    (void)buf;

    if (nread < 0) {
        client_close(cl);
        return;
    }
    cl->len += (size_t)nread;
    cl->request[cl->len] = '\0';
    char *nl = strchr(cl->request, '\n');
    if (nl) {
        *nl = '\0';
        client_answer(cl);
    } else if (cl->len == sizeof(cl->request) - 1) {
        client_close(cl); /* no request is this long */
    }
}

static void on_client_timeout(uv_timer_t *timer)
{
    struct control_client *cl = timer->data;
    if (!cl->answered)
        client_close(cl);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct control_server *c = server->data;
    struct control_client *cl;

    if (status < 0)
        return;
    cl = calloc(1, sizeof(*cl));
    if (!cl)
        return;
    cl->server = c;
    uv_pipe_init(server->loop, &cl->pipe, 0);
    uv_timer_init(server->loop, &cl->timer);
    cl->pipe.data = cl->timer.data = cl;
    cl->handles_open = 2;
    cl->next = c->client_list;
    c->client_list = cl;
    c->clients++;
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) < 0 ||
        c->clients > CONTROL_MAX_CLIENTS) {
        client_close(cl);
        return;
    }
    uv_timer_start(&cl->timer, on_client_timeout, CONTROL_CLIENT_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&cl->pipe, on_client_alloc, on_client_read);
}

/* Returns true if an agent answers on path (then we must not steal it). */
static bool socket_in_use(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool used;

    if (fd < 0)
        return false;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    used = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    return used;
}

int control_start(struct control_server *c, struct agent *a)
{
    const char *path = a->cfg.control_socket;
    int rc;

    c->agent = a;
    if (socket_in_use(path)) {
        log_err("control socket %s: another redir-agent is running", path);
        return -1;
    }
    unlink(path); /* a stale file left by a crash */
    uv_pipe_init(a->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->listening = true;
    mode_t old = umask(0777 & ~CONTROL_SOCKET_MODE);
    rc = uv_pipe_bind(&c->pipe, path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&c->pipe, CONTROL_MAX_CLIENTS,
                       on_connection);
    if (rc < 0) {
        log_err("control socket %s: %s", path, uv_strerror(rc));
        return -1;
    }
    log_debug("control socket listening on %s", path);
    return 0;
}

void control_stop(struct control_server *c)
{
    if (!c->listening)
        return;
    c->listening = false;
    for (struct control_client *cl = c->client_list; cl; cl = cl->next)
        client_close(cl);
    uv_close((uv_handle_t *)&c->pipe, NULL);
    unlink(c->agent->cfg.control_socket);
}
