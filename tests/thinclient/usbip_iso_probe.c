/* SPDX-License-Identifier: MIT */
/* Thin-client probe: attaches a usbip-vudc gadget to vhci-hcd over loopback
 * TCP, and submits isochronous URBs through usbfs to show what comes back. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define USB_SPEED_HIGH 3
#define DESC_MAX 4096

static int write_attr(const char *dir, const char *name, const char *value)
{
    char path[512];
    int fd, rc;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY);
    if (fd < 0) {
        perror(path);
        return -1;
    }
    rc = (int)write(fd, value, strlen(value));
    if (rc < 0)
        perror(path);
    close(fd);
    return rc < 0 ? -1 : 0;
}

/* A loopback TCP pair: the device end goes to vudc, the host end to vhci
 * (the kernel keeps both sockets; this process may exit). */
static int attach(const char *vudc, const char *vhci, const char *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0), c, s;
    char buf[128];

    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) < 0)
        return perror("listen"), 1;
    c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
        return perror("connect"), 1;
    s = accept(l, NULL, NULL);
    snprintf(buf, sizeof(buf), "%d", s);
    if (write_attr(vudc, "usbip_sockfd", buf) < 0)
        return 1;
    /* vhci: "port sockfd devid speed"; vudc ignores the device id */
    snprintf(buf, sizeof(buf), "%s %d %d %d", port, c, (1 << 16) | 2,
             USB_SPEED_HIGH);
    if (write_attr(vhci, "attach", buf) < 0)
        return 1;
    printf("attached\n");
    return 0;
}

/* wMaxPacketSize (with high-bandwidth multiplier) of endpoint ep in the
 * given interface and alternate setting, from usbfs's descriptors. */
static int max_packet(int fd, int iface, int alt, int ep)
{
    unsigned char d[DESC_MAX];
    int n = (int)read(fd, d, sizeof(d)), cur_if = -1, cur_alt = -1;

    for (int o = 0; o + 7 <= n && d[o] >= 2; o += d[o]) {
        if (d[o + 1] == 4) {
            cur_if = d[o + 2];
            cur_alt = d[o + 3];
        } else if (d[o + 1] == 5 && cur_if == iface && cur_alt == alt &&
                   d[o + 2] == ep) {
            int w = d[o + 4] | d[o + 5] << 8;
            return (w & 0x7ff) * (1 + ((w >> 11) & 3));
        }
    }
    return -1;
}

static int submit_and_reap(int fd, int ep, int psize, int npkts)
{
    size_t sz = sizeof(struct usbdevfs_urb) +
                (size_t)npkts * sizeof(struct usbdevfs_iso_packet_desc);
    struct usbdevfs_urb *u = calloc(1, sz), *r = NULL;
    char *buf = calloc((size_t)npkts, (size_t)psize);

    u->type = USBDEVFS_URB_TYPE_ISO;
    u->endpoint = (unsigned char)ep;
    u->flags = USBDEVFS_URB_ISO_ASAP;
    u->buffer = buf;
    u->buffer_length = psize * npkts;
    u->number_of_packets = npkts;
    for (int i = 0; i < npkts; i++)
        u->iso_frame_desc[i].length = (unsigned)psize;
    if (ioctl(fd, USBDEVFS_SUBMITURB, u) < 0 ||
        ioctl(fd, USBDEVFS_REAPURB, &r) < 0)
        return perror("iso urb"), 1;
    printf("ep %02x: urb status %d actual %d; packets:", ep, r->status,
           r->actual_length);
    for (int i = 0; i < npkts; i++)
        printf(" %d/%u", r->iso_frame_desc[i].status,
               r->iso_frame_desc[i].actual_length);
    printf("\n");
    free(buf);
    free(u);
    return 0;
}

static int iso(const char *node, int iface, int alt, int ep, int npkts)
{
    struct usbdevfs_disconnect_claim dc = {.interface = (unsigned)iface};
    struct usbdevfs_setinterface si = {.interface = (unsigned)iface,
                                       .altsetting = (unsigned)alt};
    int fd = open(node, O_RDWR), psize;

    if (fd < 0)
        return perror(node), 1;
    if ((psize = max_packet(fd, iface, alt, ep)) <= 0)
        return fprintf(stderr, "no endpoint %02x\n", ep), 1;
    if (ioctl(fd, USBDEVFS_DISCONNECT_CLAIM, &dc) < 0 ||
        ioctl(fd, USBDEVFS_SETINTERFACE, &si) < 0)
        return perror("claim/setinterface"), 1;
    printf("ep %02x: wMaxPacketSize %d\n", ep, psize);
    return submit_and_reap(fd, ep, psize, npkts);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "attach") == 0)
        return attach(argv[2], argv[3], argv[4]);
    if (argc == 7 && strcmp(argv[1], "iso") == 0)
        return iso(argv[2], atoi(argv[3]), atoi(argv[4]),
                   (int)strtol(argv[5], NULL, 0), atoi(argv[6]));
    fprintf(stderr,
            "usage: %s attach VUDC_DIR VHCI_DIR PORT\n"
            "       %s iso /dev/bus/usb/B/D IFACE ALT EP NPACKETS\n",
            argv[0], argv[0]);
    return 2;
}
