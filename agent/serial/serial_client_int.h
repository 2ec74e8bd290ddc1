/* SPDX-License-Identifier: MIT */
/* What the files of a serial client share: its state and the
 * serial_client__ functions one part calls in another. Not for other
 * modules. */
#ifndef REDIR_SERIAL_CLIENT_INT_H
#define REDIR_SERIAL_CLIENT_INT_H

#include "net_conn.h"
#include "net_pace.h"
#include "serial_client.h"
#include "serial_telnet.h"
#include "stream_codec.h"

/* Per direction: what one read at full speed brings (ser2net's tuned
 * setting, and a 4 Mbaud line's worth of 160 ms), and the most a slow
 * peer can make us hold. */
#define BUF_SIZE (64 * 1024)
/* Telnet answers not yet sent. */
#define CTL_SIZE 4096
/* Reading the socket is not worth a system call for less room. */
#define NET_READ_MIN 4096
/* transport = lz4: what one read of the relay's frames may bring, and
 * what the handshake's read may have brought past the answer. */
#define WIRE_SIZE BUF_SIZE
/* A decoded frame lands in an empty to_tty (lz4 input). */
_Static_assert(CODEC_MAX_CHUNK <= BUF_SIZE, "a frame must fit in to_tty");
/* A linear buffer: bytes [head, tail) are pending. */
struct buf {
    uint8_t *data;
    size_t head, tail;
};

enum client_phase {
    CLIENT_DIALING,
    CLIENT_OPEN,
    CLIENT_CLOSING,
};

struct serial_client {
    struct serial_client_params p;
    struct net_conn *conn;
    enum client_phase phase;
    bool started;     /* the port took it */
    bool eof;         /* the peer sent everything it will send */
    bool silent;      /* never handed out: its end is nobody's business */
    unsigned writing; /* buffers of the write in flight */
    size_t writing_ctl, writing_data;
    uv_timer_t idle_timer, poll_timer;
    /* the client's stream read in batches at the port's pace (a tty; a
     * printer takes bytes as fast as they come): NULL, never resting */
    struct net_pace *pace;
    int handles; /* timers not yet closed, and the connection */
    char name[NET_CONN_NAME_MAX];
    uint64_t since_ms, active_ms;
    uint64_t bytes_in, bytes_out;

    /* network -> device: [head, tail) decoded data for the device;
     * [undecoded, undecoded_end) raw telnet input not decoded yet */
    struct buf to_tty;
    size_t undecoded, undecoded_end;
    /* device -> network: data (telnet-escaped as needed) and, sent before
     * it, telnet answers */
    struct buf to_net;
    uint8_t ctl[CTL_SIZE];
    size_t ctl_len;

    bool telnet_on;
    struct serial_telnet telnet;
    /* connect = HOST:PORT/TARGET: the relay handshake, until it is done */
    struct relay_client *relay_hs;
    /* lz4 agreed with the relay: frames both ways; wire holds frames
     * read and not decoded yet [wire_head, wire_tail), decoded into
     * to_tty once it is empty */
    bool lz4;
    struct codec_encoder enc;
    struct codec_decoder dec;
    uint8_t *wire;
    size_t wire_head, wire_tail;
    uint8_t to_tty_mem[BUF_SIZE];
    uint8_t to_net_mem[BUF_SIZE];
};

static inline size_t serial_client__buf_len(const struct buf *b)
{
    return b->tail - b->head;
}

/* Taken by its port and connected. */
static inline bool serial_client__open(const struct serial_client *c)
{
    return c->phase == CLIENT_OPEN && c->started;
}

static inline void serial_client__touch(struct serial_client *c)
{
    c->active_ms = uv_now(c->p.loop);
}

/* serial_client_io.c */
void serial_client__flush(struct serial_client *c);
/* A buffer of the write in flight was written (net_release_fn). */
void serial_client__write_released(void *ctx, void *base, size_t len);
/* Telnet-decodes [undecoded, undecoded_end) into to_tty, sends answers. */
void serial_client__pump_input(struct serial_client *c);
void serial_client__update_read(struct serial_client *c);
/* A rest of the client's pace ended: read again (net_pace's resume). */
void serial_client__rested(void *arg);
void serial_client__check_eof(struct serial_client *c);
bool serial_client__queue_ctl(struct serial_client *c, const uint8_t *bytes,
                              size_t len);
void serial_client__on_alloc(void *owner, struct net_conn *conn, uv_buf_t *out);
void serial_client__on_data(void *owner, struct net_conn *conn,
                            const uint8_t *data, size_t n);
/* What arrived with the relay's answer: decoded once the port took us. */
void serial_client__resume_input(struct serial_client *c);

/* serial_client_lz4.c */
/* lz4 agreed: frames from now on; rest (len bytes) came with the answer.
 * Returns 0, or -1 when out of memory. */
int serial_client__lz4_start(struct serial_client *c, const uint8_t *rest,
                             size_t len);
void serial_client__lz4_free(struct serial_client *c);
/* serial_client__flush with lz4: writing_ctl and writing_data, framed. */
void serial_client__lz4_flush(struct serial_client *c);
/* Decodes frames from the wire into an empty to_tty, one at a time. */
void serial_client__lz4_input(struct serial_client *c);
/* A closing session's last bytes, copied (and framed with lz4). */
void serial_client__queue_last(struct serial_client *c, const uint8_t *p,
                               size_t n);

/* serial_client_relay.c */
/* Connected to a relay: sends the AUTH once its hello is in. */
void serial_client__relay_start(struct serial_client *c);
/* n handshake bytes landed at to_tty's tail. */
void serial_client__relay_data(struct serial_client *c, size_t n);
void serial_client__relay_free(struct serial_client *c);

#endif
