/* One TCP connection to a usbredir peer: resolve, connect or accept, read,
 * batched writes, close. */
#ifndef REDIR_PEER_CONN_H
#define REDIR_PEER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hostport.h"

#define PEER_CONN_READ_BUF (64 * 1024) /* one read syscall takes this much */

struct peer_conn;

/* Every callback gets the owner given to peer_conn_set_owner(). After
 * peer_conn_close() only on_closed is called, exactly once. */
struct peer_conn_ops {
    void (*on_connected)(void *owner, struct peer_conn *c, int status);
    /* data stays valid only during the call */
    void (*on_data)(void *owner, struct peer_conn *c, const uint8_t *data,
                    size_t len);
    /* the peer closed (UV_EOF) or the connection failed */
    void (*on_gone)(void *owner, struct peer_conn *c, int status);
    void (*on_closed)(void *owner, struct peer_conn *c);
};

/* Called when a write finished (status 0) or was abandoned (< 0); the
 * callee frees the buffers it passed to peer_conn_write(). */
typedef void (*peer_conn_write_done)(void *ctx, uv_buf_t *bufs, unsigned nbufs,
                                     int status);

/* Starts resolving and connecting; on_connected reports the outcome,
 * failing after timeout_ms. */
struct peer_conn *peer_conn_connect(uv_loop_t *loop, const struct hostport *to,
                                    uint32_t timeout_ms,
                                    const struct peer_conn_ops *ops,
                                    void *owner);

/* Accepts a pending connection from a listener; NULL on failure. */
struct peer_conn *peer_conn_accept(uv_stream_t *listener);

void peer_conn_set_owner(struct peer_conn *c, const struct peer_conn_ops *ops,
                         void *owner);
int peer_conn_read_start(struct peer_conn *c);
void peer_conn_read_stop(struct peer_conn *c);

/* Queues bufs as one writev; done(ctx, ...) runs when it finished. */
int peer_conn_write(struct peer_conn *c, uv_buf_t *bufs, unsigned nbufs,
                    peer_conn_write_done done, void *ctx);

/* graceful: pending writes are flushed (for at most a second) first. */
void peer_conn_close(struct peer_conn *c, bool graceful);

const char *peer_conn_name(const struct peer_conn *c);

#endif
