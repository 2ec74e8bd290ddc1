/* SPDX-License-Identifier: MIT */
/* What the files of the connection module share: the connection's state
 * and the net__ functions one part calls in another. Not for other modules. */
#ifndef REDIR_NET_CONN_INT_H
#define REDIR_NET_CONN_INT_H

#include "list.h"
#include "net_conn.h"
#include "net_tls.h"

/* Buffers gathered into one writev. A write request is allocated for the
 * first buffer queued and submitted by the flush: an idle connection
 * holds no batch memory. */
#define BATCH_MAX 64

enum conn_phase {
    PHASE_RESOLVING,
    PHASE_CONNECTING,
    PHASE_HANDSHAKE, /* TLS: connected, the handshake under way */
    PHASE_OPEN,
    PHASE_CLOSING, /* net_conn_close() was called */
};

struct queued_buf {
    net_release_fn release;
    void *ctx;
};

/* One writev: the libuv request, its buffers and who releases them. */
struct write_batch {
    uv_write_t req;
    struct net_conn *c;
    struct write_batch *next; /* a pair's queue toward its other end */
    size_t bytes;
    unsigned n;
    uv_buf_t bufs[BATCH_MAX];
    struct queued_buf owners[BATCH_MAX];
};

/* What differs between the kinds of connection: a socket (net_conn.c,
 * net_conn_write.c) and one end of net_conn_pair() (net_conn_pair.c).
 * The public net_conn_* calls that differ go through it. */
struct net__kind {
    void (*read)(struct net_conn *c, bool on); /* the owner wants reads */
    void (*flush)(struct net_conn *c);         /* the batch goes out */
    void (*close)(struct net_conn *c, bool graceful);
    /* reading ended for good (on_gone): stop what delivers reads */
    void (*stop_delivery)(struct net_conn *c);
    /* a paused connection's liveness check on or off, as its state asks */
    void (*watch_stall)(struct net_conn *c);
    /* the process is exiting: a closed connection still lingering (for
     * the peer's FIN, or for its reader) ends now */
    void (*end_linger)(struct net_conn *c);
    bool tls; /* can carry TLS (a pair's ends are in one process) */
};

extern const struct net__kind net__socket_kind, net__pair_kind;

struct net_conn {
    const struct net__kind *kind;
    /* in the lingering list from a graceful close until freed (only
     * those: LeakSanitizer must still see any other connection leak) */
    struct list_node lingering;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_idle_t idle; /* a pair end: hands its owner what waits */
    } u;
    uv_timer_t timer; /* connect timeout, stall check, linger */
    uv_getaddrinfo_t resolve_req;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    enum conn_phase phase;
    bool stream_init;  /* u is initialized and must be closed */
    bool resolving;    /* resolve_req in flight */
    bool reading;      /* the owner wants reads */
    bool gone;         /* on_gone was reported (or is not wanted) */
    bool eof;          /* the peer finished sending: no more reads */
    bool failed;       /* the connection failed: writes are dropped */
    bool congested;    /* queued reached high water */
    bool sync_release; /* releases may run inside net_conn_flush */
    bool closed_told;  /* on_closed was called */
    int handles_open;  /* closing handles not yet called back */
    int write_error;   /* a batch failed to submit; reported from the loop */
    unsigned writes;   /* batches in flight */
    size_t queued;     /* bytes batched or in flight */
    size_t high_water, low_water;
    uint32_t linger_ms;
    int unsent_limit; /* TCP_NOTSENT_LOWAT, 0: the kernel's default */
    const struct net_tcp_keepalive *keepalive;
    struct write_batch *batch;   /* being filled, not submitted yet */
    struct net_tls_session *tls; /* NULL: plaintext */
    const struct net_conn_ops *ops;
    void *owner;
    char name[NET_CONN_NAME_MAX];
    /* one end of net_conn_pair() (net_conn_pair.c) */
    bool peer_closed;            /* the other end is gone: EOF next */
    bool pair_done;              /* unlinked from the other end */
    struct net_conn *peer;       /* the other end, NULL once it is gone */
    struct write_batch *in_head; /* the other end's batches for us */
    struct write_batch *in_tail;
    unsigned in_idx; /* in in_head: buffer and offset */
    size_t in_off;
};

/* net_conn.c */
/* The one read buffer (every owner consumes a read before returning). */
uint8_t *net__read_buf(void);
struct net_conn *net__new(uv_loop_t *loop);
int net__init_stream(struct net_conn *c, uv_loop_t *loop, bool is_unix);
void net__tune(struct net_conn *c);
void net__close_handles(struct net_conn *c);
void net__report_gone(struct net_conn *c, int status);
void net__fail_later(struct net_conn *c, int status);
void net__tell_closed(struct net_conn *c);
void net__free(struct net_conn *c);
/* c was closed and waits (for the peer's FIN, or for its reader): at exit
 * net_conn_end_lingering() ends it. */
void net__lingers(struct net_conn *c);

/* Reports the end of connecting (TCP and, with TLS, the handshake). */
void net__connected(struct net_conn *c, int status);
/* Raw reads on (TLS handshakes read whatever the owner wants). */
void net__read_raw(struct net_conn *c, bool on);

/* net_conn_write.c */
/* Gives a buffer back to its owner: release(ctx, base, len), or free. */
void net__release(net_release_fn release, void *ctx, void *base, size_t len);
void net__drop_batch(struct net_conn *c);
/* The socket kind's flush: the batch (sealed with TLS) to uv_write. */
void net__socket_flush(struct net_conn *c);
/* Releases every buffer of b and keeps b for reuse. */
void net__batch_release(struct write_batch *b);

/* Queues bytes as they go on the wire (ciphertext with TLS). */
void net__queue_raw(struct net_conn *c, void *base, size_t len,
                    net_release_fn release, void *ctx);

/* net_conn_tls.c: TLS over memory BIOs; plaintext in and out */
struct net_tls_session;
int net__tls_start(struct net_conn *c);
void net__tls_input(struct net_conn *c, const uint8_t *data, size_t len);
void net__tls_deliver(struct net_conn *c);
bool net__tls_has_pending(const struct net_conn *c);
void net__tls_kick(struct net_conn *c);
/* The peer went away mid-handshake. */
void net__tls_lost(struct net_conn *c, int status);
/* The owner's plaintext waits for the handshake or its flush (counted as
 * queued); net__tls_seal() encrypts what waits, small buffers gathered
 * into full records; released once its ciphertext is written. */
void net__tls_hold(struct net_conn *c, void *base, size_t len,
                   net_release_fn release, void *ctx);
void net__tls_seal(struct net_conn *c);
/* The handshake is over: seal what waits (send) or drop it. */
void net__tls_release_held(struct net_conn *c, bool send);
void net__tls_shutdown(struct net_conn *c);
void net__tls_free(struct net_conn *c);

#endif
