/* One bridged port's state (device, network side, the client, timers) and
 * the calls the serial_*.c files of the agent make to each other. */
#ifndef REDIR_SERIAL_PORT_H
#define REDIR_SERIAL_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "backoff.h"
#include "config_serial.h"
#include "rfc2217.h"
#include "serial_line.h"
#include "serial_tty.h"
#include "telnet.h"

/* Per client and direction: what one read at full speed brings (ser2net's
 * tuned setting, and a 4 Mbaud line's worth of 160 ms), and the most a
 * slow peer can make us hold. */
#define SERIAL_BUF_SIZE (64 * 1024)
/* Telnet answers not yet sent; decoding pauses while less than
 * SERIAL_CTL_ROOM is free (the longest single answer, a signature, needs
 * under 200 bytes). */
#define SERIAL_CTL_SIZE 4096
#define SERIAL_CTL_ROOM 256
/* Reading the socket or the device is not worth a system call for less
 * room than this. */
#define SERIAL_NET_READ_MIN 4096
#define SERIAL_TTY_READ_MIN 256
/* How often a missing device's path is tried: an unplug-replug takes a
 * human a second, udev a few hundred milliseconds. */
#define SERIAL_DEVICE_RETRY_MS 500
/* A printer whose driver cannot be polled (parport lp) is retried this
 * often while it is busy. */
#define SERIAL_PRINTER_RETRY_MS 20
/* A telnet IAC BRK holds the line in break this long, the classic
 * tcsendbreak() duration, without blocking the loop. */
#define SERIAL_BREAK_MS 250
/* Modem and line state are polled for RFC 2217 notifications this often:
 * the lines change at human speed, and it costs one ioctl. */
#define SERIAL_STATUS_POLL_MS 250
/* Graceful closes get this long to hand over the last bytes: well inside
 * the agent's 2 s SIGTERM budget. */
#define SERIAL_CLOSE_FLUSH_MS 500
/* While backpressure stops reading a client's socket and nothing is being
 * written to it, libuv watches nothing on it and a reset would go
 * unnoticed: it is checked (one poll(2)) this often. */
#define SERIAL_STALL_CHECK_MS 1000
/* connect mode: a dial that neither succeeds nor fails (packets dropped)
 * is given up after this, then retried with backoff. */
#define SERIAL_CONNECT_TIMEOUT_MS 10000
/* A connect-mode session that ran this long resets the backoff. */
#define SERIAL_SESSION_STABLE_MS 10000
/* Our RFC 2217 signature, and how much of a client's is logged. */
#define SERIAL_SIGNATURE_MAX 96

struct serial_bridge;

/* A linear buffer: bytes [head, tail) are pending. */
struct serial_buf {
    uint8_t *data;
    size_t head, tail;
};

enum serial_client_phase {
    CLIENT_CONNECTING, /* connect mode: resolving and dialing */
    CLIENT_OPEN,
    CLIENT_CLOSING,
};

/* One TCP connection and everything that lives and dies with it: its
 * buffers both ways and its telnet/RFC 2217 session. */
struct serial_client {
    uv_tcp_t tcp;
    uv_timer_t timer;       /* connect timeout, then idle timeout, then the
                               close deadline */
    uv_timer_t stall_timer; /* liveness checks while reading is paused */
    uv_getaddrinfo_t resolve_req;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    struct serial_port *port; /* NULL once the port let go of it */
    struct serial_bridge *bridge;
    uv_loop_t *loop;
    enum serial_client_phase phase;
    int pending;    /* handles and requests not finished; freed at 0 */
    bool resolving; /* resolve_req in flight */
    bool reading;   /* uv_read_start'ed */
    bool writing;   /* write_req in flight */
    bool eof;       /* the peer sent everything it will send */
    size_t writing_ctl, writing_data; /* what the write in flight covers */
    char name[HOSTPORT_HOST_MAX + 8]; /* the peer's address */
    uint64_t since_ms, active_ms;     /* connected at, last byte at */
    uint64_t bytes_in, bytes_out;

    /* network -> device: [head, tail) decoded data for the device;
     * [undecoded, undecoded_end) raw telnet input not decoded yet */
    struct serial_buf to_tty;
    size_t undecoded, undecoded_end;
    /* device -> network: data (telnet-escaped as needed) and, sent before
     * it, telnet answers */
    struct serial_buf to_net;
    uint8_t ctl[SERIAL_CTL_SIZE];
    size_t ctl_len;

    /* telnet and RFC 2217 session */
    struct telnet_decoder decoder;
    struct telnet_options options;
    bool com_port;  /* RFC 2217 agreed */
    bool suspended; /* FLOWCONTROL-SUSPEND: send nothing */
    uint8_t linestate_mask, modemstate_mask;
    uint8_t linestate, modemstate; /* last reported */

    uint8_t to_tty_mem[SERIAL_BUF_SIZE];
    uint8_t to_net_mem[SERIAL_BUF_SIZE];
};

/* All of one [serial.NAME] port's state. */
struct serial_port {
    struct serial_bridge *bridge;
    const struct serial_port_config *cfg;
    uv_loop_t *loop;
    char label[SERIAL_NAME_MAX + 300]; /* "[serial.NAME] DEV <-> ADDR" */
    bool stopping;

    /* device */
    int fd;        /* -1 while missing */
    bool pollable; /* fd works with epoll (else: timer-driven writes) */
    uv_poll_t poll;
    bool poll_init, poll_closing;
    int poll_events;
    uv_timer_t retry_timer;        /* reopen while missing; busy printer */
    int open_error;                /* last open() errno, logged once */
    bool modem_lines;              /* TIOCMGET works on this device */
    struct serial_line line;       /* in effect: config's or client's */
    struct serial_control control; /* DTR/RTS/BREAK as last set */
    struct serial_tty_errors line_errors; /* counters at the last report */
    uv_timer_t break_timer;               /* ends an IAC BRK */
    uv_timer_t status_timer; /* RFC 2217 modem/line state polling */

    /* network */
    uv_tcp_t listener;
    bool listener_init;
    struct serial_client *client;  /* the one connected client */
    struct serial_client *dialing; /* connect mode: attempt in progress */
    uv_timer_t dial_timer;         /* connect mode: next attempt */
    struct backoff backoff;
    unsigned dial_failures; /* in a row, for quieter logs */
};

/* serial_bridge.c: counts what must close before the bridge is done. */
void serial_bridge_hold(struct serial_bridge *b);
void serial_bridge_release(struct serial_bridge *b);

/* serial_port.c: policy, reached from the device and network sides. */
void serial_port_label(struct serial_port *p,
                       const struct serial_port_config *cfg);
void serial_port_start(struct serial_port *p, struct serial_bridge *b,
                       uv_loop_t *loop, const struct serial_port_config *cfg,
                       int listen_fd);
void serial_port_stop(struct serial_port *p);
void serial_port_client_ready(struct serial_port *p, struct serial_client *c);
void serial_port_client_gone(struct serial_port *p, const char *why,
                             bool graceful);
void serial_port_dial_failed(struct serial_port *p, const char *why);
void serial_port_device_lost(struct serial_port *p, const char *why);
void serial_port_device_back(struct serial_port *p);
int serial_port_set_line(struct serial_port *p, const struct serial_line *l);
void serial_port_set_control(struct serial_port *p,
                             enum rfc2217_control_target target,
                             const struct serial_control *ctl);
void serial_port_purge(struct serial_port *p, uint8_t what);
void serial_port_telnet_break(struct serial_port *p);
/* The port's client if it is connected and attached, else NULL. */
struct serial_client *serial_port_client(const struct serial_port *p);

/* serial_device.c: the device side. */
void serial_device_init(struct serial_port *p);
void serial_device_open(struct serial_port *p);
void serial_device_update(struct serial_port *p);
void serial_device_write(struct serial_port *p);
void serial_device_close(struct serial_port *p, bool flush_output);

/* serial_net.c: the network side. */
int serial_net_bind(const struct serial_port_config *cfg, const char *label);
int serial_net_listen(struct serial_port *p, int fd);
void serial_net_dial(struct serial_port *p);
void serial_net_start(struct serial_client *c, uint32_t idle_timeout_s);
void serial_net_flush(struct serial_client *c);
void serial_net_update_read(struct serial_client *c);
void serial_net_check_eof(struct serial_client *c);
void serial_net_close(struct serial_client *c, bool graceful);
/* Queues a telnet answer; false if there is no room (dropped). */
bool serial_net_queue_ctl(struct serial_client *c, const uint8_t *bytes,
                          size_t len);
void serial_net_purge_output(struct serial_client *c);
void serial_net_touch(struct serial_client *c);

/* serial_telnet.c: the telnet session of a client. */
void serial_telnet_start(struct serial_client *c);
void serial_telnet_input(struct serial_client *c);

/* serial_rfc2217.c: its Com Port Control. */
void serial_rfc2217_start(struct serial_client *c);
void serial_rfc2217_request(struct serial_client *c,
                            const struct telnet_event *ev);
void serial_rfc2217_device_changed(struct serial_port *p);
void serial_rfc2217_stop(struct serial_port *p);

/* Buffer helpers. */
static inline size_t serial_buf_len(const struct serial_buf *b)
{
    return b->tail - b->head;
}

#endif
