/* SPDX-License-Identifier: MIT */
/* Guest-side headset check with bare ALSA ioctls (no alsa-lib): plays a
 * 16-bit ramp, or captures and checks the emulated microphone's ramp, at
 * 48 kHz mono, and reports RESULT lines. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sound/asound.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define RATE 48000
/* 50 ms periods, 800 ms of buffer: the kernel gives up on a stream whose
 * period did not elapse within 1.1 buffer times (EIO), and a TCG guest on a
 * busy host can stall for hundreds of milliseconds. */
#define PERIOD 2400
#define PERIODS 16
#define CAP_STEP 3 /* tests/fixture/emu_headset.c */
#define PLAY_STEP 5

static void mask_set(struct snd_pcm_hw_params *p, int param, unsigned bit)
{
    struct snd_mask *m = &p->masks[param - SNDRV_PCM_HW_PARAM_FIRST_MASK];

    memset(m, 0, sizeof(*m));
    m->bits[bit / 32] = 1u << (bit % 32);
}

static void interval_set(struct snd_pcm_hw_params *p, int param, unsigned min,
                         unsigned max)
{
    struct snd_interval *i =
        &p->intervals[param - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL];

    memset(i, 0, sizeof(*i));
    i->min = min;
    i->max = max;
    i->integer = min == max;
}

/* Every mask and interval open, then the values we need pinned. */
static int set_params(int fd)
{
    struct snd_pcm_hw_params p;

    memset(&p, 0, sizeof(p));
    for (int i = 0; i <= SNDRV_PCM_HW_PARAM_LAST_MASK; i++)
        memset(&p.masks[i], 0xff, sizeof(p.masks[i]));
    for (int i = SNDRV_PCM_HW_PARAM_FIRST_INTERVAL;
         i <= SNDRV_PCM_HW_PARAM_LAST_INTERVAL; i++)
        interval_set(&p, i, 0, UINT_MAX);
    p.rmask = ~0u;
    mask_set(&p, SNDRV_PCM_HW_PARAM_ACCESS, SNDRV_PCM_ACCESS_RW_INTERLEAVED);
    mask_set(&p, SNDRV_PCM_HW_PARAM_FORMAT, SNDRV_PCM_FORMAT_S16_LE);
    mask_set(&p, SNDRV_PCM_HW_PARAM_SUBFORMAT, SNDRV_PCM_SUBFORMAT_STD);
    interval_set(&p, SNDRV_PCM_HW_PARAM_CHANNELS, 1, 1);
    interval_set(&p, SNDRV_PCM_HW_PARAM_RATE, RATE, RATE);
    interval_set(&p, SNDRV_PCM_HW_PARAM_PERIOD_SIZE, PERIOD, PERIOD);
    interval_set(&p, SNDRV_PCM_HW_PARAM_PERIODS, PERIODS, PERIODS);
    if (ioctl(fd, SNDRV_PCM_IOCTL_HW_PARAMS, &p) < 0) {
        perror("SNDRV_PCM_IOCTL_HW_PARAMS");
        return -1;
    }
    if (ioctl(fd, SNDRV_PCM_IOCTL_PREPARE) < 0) {
        perror("SNDRV_PCM_IOCTL_PREPARE");
        return -1;
    }
    return 0;
}

/* Writes `frames` samples of the ramp; an underrun (EPIPE) or a stall
 * (EIO) is counted and the stream prepared again, as aplay does. */
static int play(int fd, long frames)
{
    static int16_t buf[PERIOD];
    long done = 0;
    unsigned xruns = 0;
    uint16_t v = 0;

    while (done < frames) {
        struct snd_xferi x = {.buf = buf, .frames = PERIOD};

        for (int i = 0; i < PERIOD; i++) {
            v = (uint16_t)(v + PLAY_STEP);
            buf[i] = (int16_t)v;
        }
        while (ioctl(fd, SNDRV_PCM_IOCTL_WRITEI_FRAMES, &x) < 0) {
            if (errno != EPIPE && errno != EIO)
                return perror("WRITEI"), 1;
            xruns++;
            ioctl(fd, SNDRV_PCM_IOCTL_PREPARE);
        }
        done += PERIOD;
    }
    ioctl(fd, SNDRV_PCM_IOCTL_DRAIN);
    printf("RESULT: play_samples=%ld\nRESULT: play_xruns=%u\n", done, xruns);
    return 0;
}

static int capture(int fd, long frames)
{
    static int16_t buf[PERIOD];
    long done = 0, breaks = 0;
    unsigned xruns = 0;
    int have = 0;
    uint16_t prev = 0;

    while (done < frames) {
        struct snd_xferi x = {.buf = buf, .frames = PERIOD};

        if (ioctl(fd, SNDRV_PCM_IOCTL_READI_FRAMES, &x) < 0) {
            if (errno != EPIPE && errno != EIO)
                return perror("READI"), 1;
            xruns++;
            ioctl(fd, SNDRV_PCM_IOCTL_PREPARE);
            continue;
        }
        for (long i = 0; i < (long)x.result; i++) {
            uint16_t v = (uint16_t)buf[i];

            if (have && v != (uint16_t)(prev + CAP_STEP))
                breaks++;
            prev = v;
            have = 1;
        }
        done += (long)x.result;
    }
    printf("RESULT: cap_samples=%ld\nRESULT: cap_breaks=%ld\n"
           "RESULT: cap_xruns=%u\n",
           done, breaks, xruns);
    return 0;
}

int main(int argc, char **argv)
{
    long frames;
    int fd;

    if (argc != 4 || (strcmp(argv[1], "play") && strcmp(argv[1], "capture"))) {
        fprintf(stderr, "usage: %s play|capture /dev/snd/pcmCxDx[pc] SECONDS\n",
                argv[0]);
        return 2;
    }
    frames = (long)(atof(argv[3]) * RATE);
    fd = open(argv[2], O_RDWR);
    if (fd < 0) {
        perror(argv[2]);
        return 1;
    }
    if (set_params(fd) < 0)
        return 1;
    return strcmp(argv[1], "play") == 0 ? play(fd, frames)
                                        : capture(fd, frames);
}
