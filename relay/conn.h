/* One stream socket of the relay (an agent, or a QEMU chardev over TCP or a
 * unix socket): shared read buffer, batched writes with a count of what is
 * queued, lingering close. */
#ifndef REDIR_RELAY_CONN_H
#define REDIR_RELAY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define CONN_READ_BUF (64 * 1024) /* what one read takes, for all conns */
#define CONN_BATCH_MAX 16         /* buffers gathered into one writev */
#define CONN_NAME_MAX 128

struct conn;

/* Callbacks get the owner of conn_set_owner(); none after conn_close(). */
struct conn_ops {
    void (*on_connected)(void *owner, struct conn *c, int status);
    /* data is the shared read buffer: valid only during the call */
    void (*on_data)(void *owner, struct conn *c, const uint8_t *data,
                    size_t len);
    /* end of stream or an error; reported once */
    void (*on_gone)(void *owner, struct conn *c, int status);
    /* queued bytes fell to half the high water mark after reaching it */
    void (*on_drained)(void *owner, struct conn *c);
};

struct conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    uv_timer_t linger; /* bounds a graceful close; reports write errors */
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    const struct conn_ops *ops;
    void *owner;
    uint8_t *read_buf; /* shared, CONN_READ_BUF bytes */
    size_t queued;     /* written or batched, not yet taken by the kernel */
    size_t high_water; /* congested from here */
    bool congested, connecting, closing, gone;
    int write_error; /* a write failed to queue; reported from the loop */
    int handles_open;
    unsigned nbatch;
    uv_buf_t batch[CONN_BATCH_MAX]; /* malloc'ed buffers for the next writev */
    char name[CONN_NAME_MAX];
};

/* Starts connecting to a TCP address or a unix socket path; on_connected
 * reports the outcome (the caller bounds the time). NULL if out of
 * memory. */
struct conn *conn_connect_tcp(uv_loop_t *loop, const struct sockaddr *addr,
                              const char *name, uint8_t *read_buf,
                              const struct conn_ops *ops, void *owner);
struct conn *conn_connect_unix(uv_loop_t *loop, const char *path,
                               uint8_t *read_buf, const struct conn_ops *ops,
                               void *owner);

/* Accepts a pending connection of a TCP or unix listener; NULL on
 * failure. */
struct conn *conn_accept(uv_stream_t *listener, uint8_t *read_buf);

void conn_set_owner(struct conn *c, const struct conn_ops *ops, void *owner);
void conn_set_high_water(struct conn *c, size_t bytes);

void conn_read_start(struct conn *c);
void conn_read_stop(struct conn *c);

/* Queues buf (malloc'ed; the conn frees it) for the next writev, which
 * goes out at conn_flush() or when the batch is full. */
void conn_queue(struct conn *c, uint8_t *buf, size_t len);
/* Same for a copy of data; false if out of memory. */
bool conn_queue_copy(struct conn *c, const uint8_t *data, size_t len);
void conn_flush(struct conn *c);

/* Queued bytes reached the high water mark (stop feeding it). */
bool conn_congested(const struct conn *c);

/* graceful: queued data is sent, then our side is shut down and the peer
 * gets CONN_LINGER_MS to close its side (so it reads our last bytes
 * instead of a reset). The conn frees itself; no callback follows. */
void conn_close(struct conn *c, bool graceful);

#endif
