/* SPDX-License-Identifier: MIT */
/* Round trips of 64 bytes on the emulated vendor loopback device (bulk OUT
 * 0x01 then bulk IN 0x82), timed with CLOCK_MONOTONIC, on the host without
 * a VM: "direct" does them with libusb itself (run it under umockdev's
 * preload: the device alone), "peer" plays QEMU's usb-redir with
 * libusbredirparser for a redirector that dials it (usbredirect --to,
 * redir-agent connect =). Prints percentiles in microseconds.
 *
 *   hostrtt direct COUNT WARMUP
 *   hostrtt peer COUNT WARMUP
 *
 * peer: prints "LISTENING <port>" (127.0.0.1, any port), then after the
 * handshake and the warm-up "READY"; a line on stdin starts the COUNT timed
 * round trips (results, then "DONE"); then a line "count M" runs M untimed
 * ones ("COUNTED", for a tracer attached meanwhile); EOF ends it.
 *
 * Another device (bench/link/vmrtt.py: a configfs Loopback gadget, whose
 * endpoint addresses the UDC assigns): HOSTRTT_DEVICE=VID:PID (direct) and
 * HOSTRTT_ENDPOINTS=OUT:IN (both modes), in hex; unset, the emulated
 * loopback's 1209:100b and 01:82. */
#define _GNU_SOURCE
#include <errno.h>
#include <libusb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <usbredirfilter.h>
#include <usbredirparser.h>

#include "rtt_clock.h"

#define LEN 64      /* one full-speed max packet; a CTAPHID-sized exchange */
#define EP_OUT 0x01 /* the emulated loopback's; HOSTRTT_ENDPOINTS others */
#define EP_IN 0x82
#define VID 0x1209 /* the emulated loopback's; HOSTRTT_DEVICE another */
#define PID 0x100b
#define WAIT_MS 5000 /* a reply later than this is a hang, not a figure */
#define MAX_COUNT 1000000

/* The device and endpoints in use (HOSTRTT_DEVICE, HOSTRTT_ENDPOINTS). */
static uint16_t vid = VID, pid = PID;
static uint8_t ep_out = EP_OUT, ep_in = EP_IN;

/* "XXXX:YYYY" (hex) into a, b, each at most max; -1 if malformed. */
static int parse_pair(const char *s, unsigned max, unsigned *a, unsigned *b)
{
    char tail;
    if (sscanf(s, "%x:%x%c", a, b, &tail) != 2 || *a > max || *b > max)
        return -1;
    return 0;
}

static int choose_device(void)
{
    const char *dev = getenv("HOSTRTT_DEVICE");
    const char *eps = getenv("HOSTRTT_ENDPOINTS");
    unsigned a, b;
    if (dev) {
        if (parse_pair(dev, 0xffff, &a, &b) < 0) {
            fprintf(stderr, "HOSTRTT_DEVICE=%s: not VID:PID in hex\n", dev);
            return -1;
        }
        vid = (uint16_t)a;
        pid = (uint16_t)b;
    }
    if (eps) {
        if (parse_pair(eps, 0xff, &a, &b) < 0 || (a & 0x80) || !(b & 0x80)) {
            fprintf(stderr, "HOSTRTT_ENDPOINTS=%s: not OUT:IN in hex\n", eps);
            return -1;
        }
        ep_out = (uint8_t)a;
        ep_in = (uint8_t)b;
    }
    return 0;
}

static void report(double *t, int count)
{
    double sum = 0;
    for (int i = 0; i < count; i++)
        sum += t[i];
    qsort(t, (size_t)count, sizeof(double), cmp_double);
    printf("RESULT: rtt_p50=%.1f\nRESULT: rtt_p90=%.1f\nRESULT: rtt_p99=%.1f\n"
           "RESULT: rtt_mean=%.1f\nRESULT: rtt_min=%.1f\nRESULT: rtt_n=%d\n",
           t[count / 2], t[count * 9 / 10], t[count * 99 / 100], sum / count,
           t[0], count);
    fflush(stdout);
}

static void fill(uint8_t *buf, int i)
{
    for (int k = 0; k < LEN; k++)
        buf[k] = (uint8_t)(i * 7 + k);
}

/* ---- the device alone: libusb's synchronous bulk transfers ---- */

static int direct_once(libusb_device_handle *h, int i)
{
    uint8_t out[LEN], in[LEN];
    int n = 0, rc;
    fill(out, i);
    rc = libusb_bulk_transfer(h, ep_out, out, LEN, &n, WAIT_MS);
    if (rc == 0 && n == LEN)
        rc = libusb_bulk_transfer(h, ep_in, in, LEN, &n, WAIT_MS);
    if (rc != 0 || n != LEN || memcmp(in, out, LEN) != 0) {
        fprintf(stderr, "round trip %d: %s, %d bytes\n", i,
                libusb_error_name(rc), n);
        return -1;
    }
    return 0;
}

static int direct(int count, int warmup, double *t)
{
    libusb_context *ctx = NULL;
    libusb_device_handle *h = NULL;
    int rc = libusb_init(&ctx);
    if (rc == 0 && !(h = libusb_open_device_with_vid_pid(ctx, vid, pid)))
        rc = LIBUSB_ERROR_NO_DEVICE;
    if (rc == 0)
        rc = libusb_claim_interface(h, 0);
    if (rc != 0) {
        fprintf(stderr, "loopback device: %s\n", libusb_error_name(rc));
        return 1;
    }
    for (int i = -warmup; i < count; i++) {
        double t0 = now_us();
        if (direct_once(h, i) < 0)
            return 1;
        if (i >= 0)
            t[i] = now_us() - t0;
    }
    report(t, count);
    libusb_release_interface(h, 0);
    libusb_close(h);
    libusb_exit(ctx);
    return 0;
}

/* ---- a usbredir peer playing QEMU ---- */

struct peer {
    int fd;
    struct usbredirparser *p;
    int connected; /* device_connect seen */
    uint64_t want; /* id of the bulk packet awaited */
    int got, status, len;
    uint8_t data[LEN];
};

static int on_read(void *priv, uint8_t *data, int count)
{
    struct peer *pe = priv;
    ssize_t n = recv(pe->fd, data, (size_t)count, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return n > 0 ? (int)n : -1; /* EOF is an error: the peer never ends */
}

static int on_write(void *priv, uint8_t *data, int count)
{
    struct peer *pe = priv;
    ssize_t n = send(pe->fd, data, (size_t)count, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return (int)n;
}

static void on_device_connect(void *priv,
                              struct usb_redir_device_connect_header *h)
{
    (void)h;
    ((struct peer *)priv)->connected = 1;
}

static void on_bulk(void *priv, uint64_t id,
                    struct usb_redir_bulk_packet_header *h, uint8_t *data,
                    int len)
{
    struct peer *pe = priv;
    if (id == pe->want) {
        pe->got = 1;
        pe->status = h->status;
        pe->len = h->length | (int)h->length_high << 16;
        if (data && len == LEN)
            memcpy(pe->data, data, LEN);
    }
    usbredirparser_free_packet_data(pe->p, data);
}

/* usbredirparser calls every callback unchecked: the ones a usb-host sends
 * during a session, ignored here */
static void on_hello(void *priv, struct usb_redir_hello_header *h)
{
    (void)priv;
    (void)h;
}

static void on_interface_info(void *priv,
                              struct usb_redir_interface_info_header *h)
{
    (void)priv;
    (void)h;
}

static void on_ep_info(void *priv, struct usb_redir_ep_info_header *h)
{
    (void)priv;
    (void)h;
}

static void on_filter(void *priv, struct usbredirfilter_rule *rules, int n)
{
    (void)priv;
    (void)n;
    usbredirfilter_free(rules);
}

static void on_disconnect(void *priv) { ((struct peer *)priv)->connected = 0; }

static void on_log(void *priv, int level, const char *msg)
{
    (void)priv;
    if (level <= usbredirparser_warning)
        fprintf(stderr, "usbredirparser: %s\n", msg);
}

/* Reads until *flag is set; -1 on EOF, error or WAIT_MS of silence. */
static int pump(struct peer *pe, int *flag)
{
    while (!*flag) {
        struct pollfd pfd = {.fd = pe->fd, .events = POLLIN};
        if (poll(&pfd, 1, WAIT_MS) <= 0)
            return -1;
        if (usbredirparser_do_read(pe->p) == usbredirparser_read_io_error)
            return -1;
    }
    return 0;
}

static int flush(struct peer *pe)
{
    while (usbredirparser_has_data_to_write(pe->p))
        if (usbredirparser_do_write(pe->p) < 0)
            return -1;
    return 0;
}

static int bulk(struct peer *pe, uint8_t ep, uint8_t *out, uint64_t id)
{
    struct usb_redir_bulk_packet_header h = {.endpoint = ep, .length = LEN};
    pe->want = id;
    pe->got = 0;
    usbredirparser_send_bulk_packet(pe->p, id, &h, out, out ? LEN : 0);
    if (flush(pe) < 0 || pump(pe, &pe->got) < 0)
        return -1;
    return pe->status == usb_redir_success && pe->len == LEN ? 0 : -1;
}

static int peer_once(struct peer *pe, int i)
{
    static uint64_t id;
    uint8_t out[LEN];
    fill(out, i);
    if (bulk(pe, ep_out, out, ++id) < 0 || bulk(pe, ep_in, NULL, ++id) < 0 ||
        memcmp(pe->data, out, LEN) != 0) {
        fprintf(stderr, "round trip %d: status %d, %d bytes\n", i, pe->status,
                pe->len);
        return -1;
    }
    return 0;
}

static int listen_any(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 1) ||
        getsockname(s, (struct sockaddr *)&a, &alen)) {
        perror("listen");
        return -1;
    }
    printf("LISTENING %d\n", ntohs(a.sin_port));
    fflush(stdout);
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    close(s);
    /* QEMU's socket chardev sets TCP_NODELAY too */
    if (c >= 0)
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return c;
}

static void peer_init(struct peer *pe)
{
    uint32_t caps[USB_REDIR_CAPS_SIZE] = {0};
    static const int qemu_caps[] = {usb_redir_cap_bulk_streams,
                                    usb_redir_cap_connect_device_version,
                                    usb_redir_cap_filter,
                                    usb_redir_cap_device_disconnect_ack,
                                    usb_redir_cap_ep_info_max_packet_size,
                                    usb_redir_cap_64bits_ids,
                                    usb_redir_cap_32bits_bulk_length,
                                    usb_redir_cap_bulk_receiving};
    for (size_t i = 0; i < sizeof(qemu_caps) / sizeof(qemu_caps[0]); i++)
        usbredirparser_caps_set_cap(caps, qemu_caps[i]);
    pe->p = usbredirparser_create();
    pe->p->priv = pe;
    pe->p->log_func = on_log;
    pe->p->read_func = on_read;
    pe->p->write_func = on_write;
    pe->p->device_connect_func = on_device_connect;
    pe->p->bulk_packet_func = on_bulk;
    pe->p->hello_func = on_hello;
    pe->p->interface_info_func = on_interface_info;
    pe->p->ep_info_func = on_ep_info;
    pe->p->filter_filter_func = on_filter;
    pe->p->device_disconnect_func = on_disconnect;
    usbredirparser_init(pe->p, "hostrtt", caps, USB_REDIR_CAPS_SIZE, 0);
}

static int wait_line(char *buf, size_t size)
{
    return fgets(buf, (int)size, stdin) ? 0 : -1;
}

static int peer_run(struct peer *pe, int n, double *t)
{
    static int seq;
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        if (peer_once(pe, seq++) < 0)
            return -1;
        if (t)
            t[i] = now_us() - t0;
    }
    return 0;
}

static int peer(int count, int warmup, double *t)
{
    struct peer pe = {.fd = listen_any()};
    char line[64];
    int m;
    if (pe.fd < 0)
        return 1;
    peer_init(&pe);
    if (flush(&pe) < 0 || pump(&pe, &pe.connected) < 0 ||
        peer_run(&pe, warmup, NULL) < 0) {
        fprintf(stderr, "peer: no device or no echo during warm-up\n");
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    if (wait_line(line, sizeof(line)) < 0 || peer_run(&pe, count, t) < 0)
        return 1;
    report(t, count);
    printf("DONE\n");
    fflush(stdout);
    while (wait_line(line, sizeof(line)) == 0 &&
           sscanf(line, "count %d", &m) == 1 && m > 0 && m <= MAX_COUNT) {
        if (peer_run(&pe, m, NULL) < 0)
            return 1;
        printf("COUNTED\n");
        fflush(stdout);
    }
    usbredirparser_destroy(pe.p);
    close(pe.fd);
    return 0;
}

int main(int argc, char **argv)
{
    int count = argc > 2 ? atoi(argv[2]) : 0;
    int warmup = argc > 3 ? atoi(argv[3]) : 0;
    double *t = count > 0 && count <= MAX_COUNT && warmup >= 0
                    ? calloc((size_t)count, sizeof(double))
                    : NULL;
    if (choose_device() < 0)
        return 2;
    if (argc == 4 && t && strcmp(argv[1], "direct") == 0)
        return direct(count, warmup, t);
    if (argc == 4 && t && strcmp(argv[1], "peer") == 0)
        return peer(count, warmup, t);
    fprintf(stderr, "usage: hostrtt direct|peer COUNT WARMUP\n");
    return 2;
}
