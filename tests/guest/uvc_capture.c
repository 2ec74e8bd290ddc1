/* SPDX-License-Identifier: MIT */
/* Guest-side webcam check: captures from a V4L2 node for a while, checks
 * every frame's sequence number and pattern, and reports frames, drops,
 * the gaps between good frames and per-second counts and latency as RESULT
 * lines. */
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define NBUF 4
#define FRAME_MAGIC 0x46414452u
#define MAX_SECONDS 600

struct stats {
    unsigned good, bad_pattern, bad_size, errors, truncated;
    unsigned missing; /* sequence numbers skipped between good frames */
    long first_seq, last_seq;
    double first_t, last_t, max_gap, max_gap_at;
    unsigned per_s[MAX_SECONDS];
    /* Latency beyond the best seen: arrival time minus the camera's time
     * of the frame (sequence number / nominal frame rate). */
    double fps, min_lag, lag_s[MAX_SECONDS];
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* The emulated camera's frame (tests/fixture/emu_webcam.c): magic, seq,
 * width, ~seq, length, then a pattern; MJPEG frames are wrapped in SOI and
 * EOI markers.  Returns the sequence number, -1 if the frame is wrong, -2
 * if it is shorter than it says (a lost packet: uvcvideo cannot tell for
 * compressed formats). */
static long check_frame(const uint8_t *f, size_t n, unsigned width, int mjpeg)
{
    size_t base = mjpeg ? 2 : 0, end = mjpeg ? n - 2 : n;
    const uint8_t *h = f + base;
    uint32_t seq;

    if (n < base + 24 || get32(h) != FRAME_MAGIC || get32(h + 8) != width)
        return -1;
    if (get32(h + 16) != n)
        return get32(h + 16) > n ? -2 : -1;
    if (mjpeg &&
        (f[0] != 0xff || f[1] != 0xd8 || f[n - 2] != 0xff || f[n - 1] != 0xd9))
        return -1;
    seq = get32(h + 4);
    if (get32(h + 12) != ~seq)
        return -1;
    for (size_t i = 20; i < end - base; i++)
        if (h[i] != (uint8_t)(i * 7u + seq * 13u + (i >> 8)))
            return -1;
    return seq;
}

static int xioctl(int fd, unsigned long req, void *arg)
{
    int r;

    do
        r = ioctl(fd, req, arg);
    while (r < 0 && errno == EINTR);
    return r;
}

static int setup(int fd, unsigned w, unsigned h, uint32_t pixfmt, void **maps,
                 size_t *lens)
{
    struct v4l2_format fmt = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
    struct v4l2_requestbuffers rb = {.count = NBUF,
                                     .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                     .memory = V4L2_MEMORY_MMAP};

    fmt.fmt.pix.width = w;
    fmt.fmt.pix.height = h;
    fmt.fmt.pix.pixelformat = pixfmt;
    fmt.fmt.pix.field = V4L2_FIELD_NONE;
    if (xioctl(fd, VIDIOC_S_FMT, &fmt) < 0 || fmt.fmt.pix.width != w ||
        fmt.fmt.pix.height != h || fmt.fmt.pix.pixelformat != pixfmt) {
        perror("VIDIOC_S_FMT");
        return -1;
    }
    if (xioctl(fd, VIDIOC_REQBUFS, &rb) < 0 || rb.count < 2) {
        perror("VIDIOC_REQBUFS");
        return -1;
    }
    for (unsigned i = 0; i < rb.count; i++) {
        struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                .memory = V4L2_MEMORY_MMAP,
                                .index = i};

        if (xioctl(fd, VIDIOC_QUERYBUF, &b) < 0)
            return -1;
        lens[i] = b.length;
        maps[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                       b.m.offset);
        if (maps[i] == MAP_FAILED || xioctl(fd, VIDIOC_QBUF, &b) < 0)
            return -1;
    }
    return (int)rb.count;
}

static void account(struct stats *st, long seq, double t, double t0)
{
    if (st->good > 0) {
        double gap = t - st->last_t;

        if (gap > st->max_gap) {
            st->max_gap = gap;
            st->max_gap_at = st->last_t - t0;
        }
        if (seq > st->last_seq + 1)
            st->missing += (unsigned)(seq - st->last_seq - 1);
    } else {
        st->first_seq = seq;
        st->first_t = t;
    }
    st->good++;
    st->last_seq = seq;
    st->last_t = t;
    if (t - t0 >= 0 && t - t0 < MAX_SECONDS) {
        double lag = t - seq / st->fps;
        int i = (int)(t - t0);

        if (st->good == 1 || lag < st->min_lag)
            st->min_lag = lag;
        st->per_s[i]++;
        if (lag > st->lag_s[i])
            st->lag_s[i] = lag;
    }
}

/* want: the frame size, 0 for MJPEG (variable: checked by the frame's own
 * length field). */
static void one_buffer(int fd, struct stats *st, void **maps, unsigned w,
                       size_t want, double t0)
{
    struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                            .memory = V4L2_MEMORY_MMAP};
    double t;
    long seq;

    if (xioctl(fd, VIDIOC_DQBUF, &b) < 0)
        return;
    t = now_s();
    if (b.flags & V4L2_BUF_FLAG_ERROR)
        st->errors++;
    else if (want ? b.bytesused != want : b.bytesused < 32)
        st->bad_size++;
    else if ((seq = check_frame(maps[b.index], b.bytesused, w, !want)) == -2)
        st->truncated++;
    else if (seq < 0)
        st->bad_pattern++;
    else
        account(st, seq, t, t0);
    xioctl(fd, VIDIOC_QBUF, &b);
}

static void report(const struct stats *st, double secs)
{
    double span = st->last_t - st->first_t;

    printf("RESULT: video_frames=%u\n", st->good);
    printf("RESULT: video_bad_pattern=%u\n", st->bad_pattern);
    printf("RESULT: video_bad_size=%u\n", st->bad_size);
    printf("RESULT: video_error_frames=%u\n", st->errors);
    printf("RESULT: video_truncated=%u\n", st->truncated);
    printf("RESULT: video_missing_seq=%u\n", st->missing);
    printf("RESULT: video_first_seq=%ld\n", st->good ? st->first_seq : -1);
    printf("RESULT: video_last_seq=%ld\n", st->good ? st->last_seq : -1);
    printf("RESULT: video_fps=%.2f\n",
           st->good > 1 && span > 0 ? (st->good - 1) / span : 0.0);
    printf("RESULT: video_max_gap_s=%.3f\n", st->max_gap);
    printf("RESULT: video_max_gap_at_s=%.1f\n", st->max_gap_at);
    printf("RESULT: video_per_s=");
    for (int i = 0; i < (int)secs && i < MAX_SECONDS; i++)
        printf("%s%u", i ? "," : "", st->per_s[i]);
    printf("\nRESULT: video_lag_per_s=");
    for (int i = 0; i < (int)secs && i < MAX_SECONDS; i++)
        printf("%s%.2f", i ? "," : "",
               st->per_s[i] ? st->lag_s[i] - st->min_lag : -1.0);
    printf("\n");
}

int main(int argc, char **argv)
{
    static struct stats st;
    void *maps[NBUF];
    size_t lens[NBUF];
    enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    unsigned w, h;
    double secs, t0;
    int fd, n, mjpeg;

    if (argc < 5 || argc > 7) {
        fprintf(
            stderr,
            "usage: %s /dev/videoN WIDTH HEIGHT SECONDS [FPS [yuyv|mjpeg]]\n",
            argv[0]);
        return 2;
    }
    st.fps = argc >= 6 ? atof(argv[5]) : 15.0;
    mjpeg = argc == 7 && strcmp(argv[6], "mjpeg") == 0;
    w = (unsigned)atoi(argv[2]);
    h = (unsigned)atoi(argv[3]);
    secs = atof(argv[4]);
    fd = open(argv[1], O_RDWR | O_NONBLOCK);
    if (fd < 0 ||
        (n = setup(fd, w, h, mjpeg ? V4L2_PIX_FMT_MJPEG : V4L2_PIX_FMT_YUYV,
                   maps, lens)) < 0) {
        perror(argv[1]);
        return 1;
    }
    if (xioctl(fd, VIDIOC_STREAMON, &type) < 0) {
        perror("VIDIOC_STREAMON");
        return 1;
    }
    printf("RESULT: video_streaming=1\n");
    fflush(stdout);
    t0 = now_s();
    while (now_s() - t0 < secs) {
        struct pollfd p = {.fd = fd, .events = POLLIN};

        if (poll(&p, 1, 200) > 0)
            one_buffer(fd, &st, maps, w, mjpeg ? 0 : (size_t)w * h * 2, t0);
    }
    xioctl(fd, VIDIOC_STREAMOFF, &type);
    report(&st, secs);
    for (int i = 0; i < n; i++)
        munmap(maps[i], lens[i]);
    close(fd);
    return 0;
}
