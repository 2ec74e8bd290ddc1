/* SPDX-License-Identifier: MIT */
/* Hotplug without a udev daemon: the kernel's uevents heard directly
 * (NETLINK_KOBJECT_UEVENT), each USB device event answered by a sysfs
 * rescan whose differences are reported up. */
#include "usb_kernel_hotplug.h"

#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "uevent_msg.h"

/* systemd-udevd's control socket: libudev's udev_monitor and sd-device's
 * monitor only join udevd's group if it exists (or /dev is a devtmpfs). */
#define UDEVD_CONTROL_SOCKET "/run/udev/control"
/* The kernel multicasts its uevents to group 1; udevd re-broadcasts them,
 * processed, to group 2, which is what libusb's udev backend hears. */
#define KERNEL_UEVENT_GROUP 1
/* Every subsystem's uevents arrive here, not only USB: a hub with a disk
 * sends dozens at once. The kernel caps the request at net.core.rmem_max;
 * an overflow is noticed (ENOBUFS) and answered by a rescan. */
#define UEVENT_RCVBUF (256 * 1024)
/* Messages read per wakeup before letting the loop run something else;
 * the rest wait for the next (level-triggered) readiness. */
#define UEVENT_READS_PER_WAKEUP 64
/* A thin client has a few dozen USB devices, root hubs included; more are
 * not followed (and say so once). */
#define KERNEL_HOTPLUG_MAX_DEVICES 256

struct known_device {
    struct usb_sysfs_device d;
    bool reported; /* present at start, or reported as arrived */
    bool seen;     /* in the current scan */
};

struct usb_kernel_hotplug {
    uv_poll_t poll;
    int fd;
    const struct usb_kernel_hotplug_ops *ops;
    void *ctx;
    bool reporting; /* started and not stopped */
    bool warned_full;
    size_t n_known;
    struct known_device known[KERNEL_HOTPLUG_MAX_DEVICES];
    uint8_t buf[UEVENT_MSG_MAX];
};

/* A live socket bound to path in this network namespace: a line of
 * /proc/net/unix ends with it. A left-over socket file has none. */
static bool unix_socket_bound(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "re");
    size_t plen = strlen(path);
    char line[512];
    bool found = false;

    if (!f)
        return true; /* cannot tell: trust the file, as libudev does */
    while (!found && fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\n");
        found = n > plen && line[n - plen - 1] == ' ' &&
                memcmp(line + n - plen, path, plen) == 0;
    }
    fclose(f);
    return found;
}

bool usb_kernel_hotplug_udevd_runs(const char **why)
{
    if (access(UDEVD_CONTROL_SOCKET, F_OK) != 0) {
        *why = "no udev daemon running";
        return false;
    }
    if (!unix_socket_bound(UDEVD_CONTROL_SOCKET)) {
        *why = "no udev daemon running; " UDEVD_CONTROL_SOCKET " is left over";
        return false;
    }
    return true;
}

static struct known_device *find_known(struct usb_kernel_hotplug *kh,
                                       const struct usb_sysfs_device *d)
{
    for (size_t i = 0; i < kh->n_known; i++) {
        struct usb_sysfs_device *k = &kh->known[i].d;
        /* a replug at the same port gets a new device number */
        if (k->busnum == d->busnum && k->devnum == d->devnum &&
            strcmp(k->name, d->name) == 0)
            return &kh->known[i];
    }
    return NULL;
}

/* Known devices sysfs no longer lists are gone. */
static void report_departures(struct usb_kernel_hotplug *kh)
{
    size_t kept = 0;

    for (size_t i = 0; i < kh->n_known; i++) {
        struct known_device *k = &kh->known[i];
        if (!k->seen && k->reported && kh->reporting)
            kh->ops->left(kh->ctx, &k->d);
        if (k->seen)
            kh->known[kept++] = *k;
    }
    kh->n_known = kept;
}

/* Devices listed now: new ones are noted, and reported once configured. */
static void note_present(struct usb_kernel_hotplug *kh,
                         const struct usb_sysfs_device *now, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct known_device *k = find_known(kh, &now[i]);
        if (!k && kh->n_known == KERNEL_HOTPLUG_MAX_DEVICES) {
            if (!kh->warned_full)
                log_warn("hotplug: more than %d USB devices; %s and further "
                         "ones are not followed",
                         KERNEL_HOTPLUG_MAX_DEVICES, now[i].name);
            kh->warned_full = true;
            continue;
        }
        if (!k) {
            k = &kh->known[kh->n_known++];
            *k = (struct known_device){.d = now[i]};
        }
        k->seen = true;
        k->d.bound = now[i].bound;
        if (!k->reported && k->d.bound && kh->reporting) {
            k->reported = true;
            kh->ops->arrived(kh->ctx, &k->d);
        }
    }
}

/* sysfs is the truth; uevents only say when to look. A lost uevent is
 * caught up with by the next scan. */
static void kernel_hotplug_rescan(struct usb_kernel_hotplug *kh)
{
    struct usb_sysfs_device *now =
        malloc(KERNEL_HOTPLUG_MAX_DEVICES * sizeof(*now));
    int n;

    if (!now) {
        log_err("hotplug: out of memory rescanning USB devices");
        return;
    }
    n = usb_sysfs_devices(now, KERNEL_HOTPLUG_MAX_DEVICES);
    if (n < 0) {
        log_warn("hotplug: cannot list /sys/bus/usb/devices: %s",
                 strerror(errno));
    } else {
        for (size_t i = 0; i < kh->n_known; i++)
            kh->known[i].seen = false;
        /* sysfs is read before anything is reported: departures first, so
         * a replug at the same port reads as unplug, then plug. */
        for (size_t i = 0; i < (size_t)n; i++) {
            struct known_device *k = find_known(kh, &now[i]);
            if (k)
                k->seen = true;
        }
        report_departures(kh);
        note_present(kh, now, (size_t)n);
    }
    free(now);
}

/* One message from the socket: true if it calls for a rescan. */
static bool handle_message(struct usb_kernel_hotplug *kh, size_t len,
                           const struct sockaddr_nl *src)
{
    struct uevent_msg m;

    /* Only the kernel sends with port id 0; anyone else (even root) is
     * ignored, as libudev does. */
    if (src->nl_pid != 0 || uevent_msg_parse(kh->buf, len, &m) < 0 ||
        !uevent_msg_is_usb_device(&m))
        return false;
    log_debug("hotplug: uevent %s %s (bus %d, device %d)",
              uevent_action_name(m.action), uevent_msg_sysname(&m), m.busnum,
              m.devnum);
    /* add comes before the kernel configured the device; bind after its
     * interfaces' drivers were probed, which is when it is reported. */
    return m.action == UEVENT_ACTION_ADD || m.action == UEVENT_ACTION_BIND ||
           m.action == UEVENT_ACTION_REMOVE;
}

/* Reads one message; 1 if it calls for a rescan, 0 if not, -1 when the
 * socket is drained or failed. */
static int read_message(struct usb_kernel_hotplug *kh)
{
    struct sockaddr_nl src;
    struct iovec iov = {kh->buf, sizeof(kh->buf)};
    struct msghdr mh = {.msg_name = &src,
                        .msg_namelen = sizeof(src),
                        .msg_iov = &iov,
                        .msg_iovlen = 1};
    ssize_t n = recvmsg(kh->fd, &mh, MSG_DONTWAIT);

    if (n < 0 && errno == ENOBUFS) {
        log_info("hotplug: kernel uevents were lost (receive buffer full); "
                 "rescanning USB devices");
        return 1;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            log_warn("hotplug: reading kernel uevents failed: %s",
                     strerror(errno));
        return -1;
    }
    if (mh.msg_flags & MSG_TRUNC) /* cannot be the kernel's: too long */
        return 0;
    return handle_message(kh, (size_t)n, &src) ? 1 : 0;
}

static void on_readable(uv_poll_t *poll, int status, int events)
{
    struct usb_kernel_hotplug *kh = poll->data;
    bool rescan = false;
    (void)events;

    if (status < 0) {
        log_warn("hotplug: kernel uevent socket failed: %s",
                 uv_strerror(status));
        return;
    }
    for (int i = 0; i < UEVENT_READS_PER_WAKEUP; i++) {
        int rc = read_message(kh);
        if (rc < 0)
            break;
        rescan |= rc > 0;
    }
    if (rescan && kh->reporting)
        kernel_hotplug_rescan(kh);
}

static int open_uevent_socket(void)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
                             .nl_groups = KERNEL_UEVENT_GROUP};
    int rcvbuf = UEVENT_RCVBUF;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    NETLINK_KOBJECT_UEVENT);

    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    /* best effort: a smaller buffer only means more rescans */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    return fd;
}

struct usb_kernel_hotplug *
usb_kernel_hotplug_start(uv_loop_t *loop,
                         const struct usb_kernel_hotplug_ops *ops, void *ctx)
{
    struct usb_kernel_hotplug *kh = calloc(1, sizeof(*kh));

    if (!kh) {
        log_err("hotplug: out of memory");
        return NULL;
    }
    kh->ops = ops;
    kh->ctx = ctx;
    /* The socket first: a device plugged while sysfs is read is then
     * heard, not missed. */
    kh->fd = open_uevent_socket();
    if (kh->fd < 0) {
        log_err("hotplug: cannot listen to kernel uevents: %s",
                strerror(errno));
        free(kh);
        return NULL;
    }
    int rc = uv_poll_init(loop, &kh->poll, kh->fd);
    if (rc < 0) {
        log_err("hotplug: cannot watch kernel uevents: %s", uv_strerror(rc));
        close(kh->fd);
        free(kh);
        return NULL;
    }
    kh->poll.data = kh;
    /* The devices present now are known, not reported: libusb enumerates
     * them. */
    kernel_hotplug_rescan(kh);
    for (size_t i = 0; i < kh->n_known; i++)
        kh->known[i].reported = true;
    kh->reporting = true;
    uv_poll_start(&kh->poll, UV_READABLE, on_readable);
    return kh;
}

static void on_poll_closed(uv_handle_t *handle)
{
    struct usb_kernel_hotplug *kh = handle->data;

    close(kh->fd);
    free(kh);
}

void usb_kernel_hotplug_stop(struct usb_kernel_hotplug *kh)
{
    kh->reporting = false;
    uv_poll_stop(&kh->poll);
    uv_close((uv_handle_t *)&kh->poll, on_poll_closed);
}
