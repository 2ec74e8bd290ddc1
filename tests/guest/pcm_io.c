/* SPDX-License-Identifier: MIT */
/* Guest-side headset check with bare ALSA ioctls (no alsa-lib): plays a
 * 16-bit ramp, or captures and checks the emulated microphone's ramp, at
 * 48 kHz (mono, or the same ramp on every channel), and reports RESULT
 * lines; sets a card's playback volumes to their maximum. */
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

static unsigned channels = 1;

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
    interval_set(&p, SNDRV_PCM_HW_PARAM_CHANNELS, channels, channels);
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
    static int16_t buf[PERIOD * 8];
    long done = 0;
    unsigned xruns = 0;
    uint16_t v = 0;

    while (done < frames) {
        struct snd_xferi x = {.buf = buf, .frames = PERIOD};

        for (int i = 0; i < PERIOD; i++) {
            v = (uint16_t)(v + PLAY_STEP);
            for (unsigned c = 0; c < channels; c++)
                buf[i * channels + c] = (int16_t)v;
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

/* Every "... Playback Volume" control of the card to its maximum and every
 * "... Playback Switch" on, so that a device that scales by its volume
 * passes the samples through unchanged. */
static int max_volume(const char *ctl_path)
{
    struct snd_ctl_elem_list list = {0};
    struct snd_ctl_elem_id ids[64];
    int fd = open(ctl_path, O_RDWR), set = 0;

    if (fd < 0)
        return perror(ctl_path), 1;
    list.space = 64;
    list.pids = ids;
    if (ioctl(fd, SNDRV_CTL_IOCTL_ELEM_LIST, &list) < 0)
        return perror("ELEM_LIST"), 1;
    for (unsigned i = 0; i < list.used; i++) {
        struct snd_ctl_elem_info info = {.id = ids[i]};
        struct snd_ctl_elem_value val = {.id = ids[i]};
        const char *name = (const char *)ids[i].name;

        if (!strstr(name, "Playback") ||
            ioctl(fd, SNDRV_CTL_IOCTL_ELEM_INFO, &info) < 0)
            continue;
        for (unsigned c = 0; c < info.count && c < 128; c++)
            val.value.integer.value[c] =
                info.type == SNDRV_CTL_ELEM_TYPE_INTEGER
                    ? info.value.integer.max
                    : 1;
        if (ioctl(fd, SNDRV_CTL_IOCTL_ELEM_WRITE, &val) == 0)
            set++;
    }
    printf("RESULT: mixer_controls_set=%d\n", set);
    return 0;
}

int main(int argc, char **argv)
{
    long frames;
    int fd;

    if (argc == 3 && strcmp(argv[1], "maxvol") == 0)
        return max_volume(argv[2]);
    if (argc < 4 || argc > 5 ||
        (strcmp(argv[1], "play") && strcmp(argv[1], "capture"))) {
        fprintf(stderr,
                "usage: %s play|capture /dev/snd/pcmCxDx[pc] SECONDS "
                "[CHANNELS]\n       %s maxvol /dev/snd/controlCx\n",
                argv[0], argv[0]);
        return 2;
    }
    if (argc == 5)
        channels = (unsigned)atoi(argv[4]);
    if (channels < 1 || channels > 8)
        return 2;
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
