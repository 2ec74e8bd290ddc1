/* SPDX-License-Identifier: MIT */
/* A TCP forwarder that adds a fixed one-way delay each way: the round trip
 * of a link profile (bench/link) where the kernel has no sch_netem. Each
 * chunk read is written to the other side DELAY_US after it arrived;
 * reading stops while 4 MiB wait in one direction. TCP_NODELAY both ways.
 *
 *   delayproxy DELAY_US LISTEN_IP UPSTREAM_IP LPORT:UPORT [LPORT:UPORT...]
 *
 * Prints "READY" once every port listens. One thread, epoll, a timerfd. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_QUEUED (4u << 20)
#define READ_MAX (64u * 1024)
#define MAX_MAPS 16

struct chunk {
    struct chunk *next;
    uint64_t due_ns;
    size_t len, off; /* len 0: end of stream (shut the write side) */
    uint8_t data[];
};

struct dir {
    int from, to;
    struct chunk *head, *tail;
    size_t queued;
    int eof_read, eof_sent;
};

struct pair {
    struct dir d[2]; /* 0: client -> upstream, 1: upstream -> client */
    int fds[2];      /* client, upstream */
    int dead;
    struct pair *next;
};

struct mapping {
    int listen_fd;
    uint16_t uport;
};

static uint64_t delay_ns;
static int ep, tfd;
static struct sockaddr_in upstream;
static struct mapping maps[MAX_MAPS];
static int n_maps;
static struct pair *pairs;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Tag in epoll data: pair pointer with the low bit for the side. */
static void watch(struct pair *p, int side)
{
    struct dir *rd = &p->d[side];     /* read side: fds[side] feeds d[side] */
    struct dir *wd = &p->d[side ^ 1]; /* fds[side] is written by d[side^1] */
    uint32_t ev = 0;
    if (!rd->eof_read && rd->queued < MAX_QUEUED)
        ev |= EPOLLIN;
    if (wd->head && wd->head->due_ns <= now_ns())
        ev |= EPOLLOUT;
    struct epoll_event e = {
        .events = ev, .data.u64 = (uint64_t)(uintptr_t)p | (uint64_t)side};
    epoll_ctl(ep, EPOLL_CTL_MOD, p->fds[side], &e);
}

static void kill_pair(struct pair *p)
{
    if (p->dead)
        return;
    p->dead = 1;
    for (int i = 0; i < 2; i++) {
        epoll_ctl(ep, EPOLL_CTL_DEL, p->fds[i], NULL);
        close(p->fds[i]);
        struct chunk *c = p->d[i].head;
        while (c) {
            struct chunk *n = c->next;
            free(c);
            c = n;
        }
        p->d[i].head = p->d[i].tail = NULL;
    }
}

static void do_read(struct pair *p, int side)
{
    struct dir *d = &p->d[side];
    if (d->eof_read)
        return;
    struct chunk *c = malloc(sizeof(*c) + READ_MAX);
    if (!c) {
        kill_pair(p);
        return;
    }
    ssize_t n = read(p->fds[side], c->data, READ_MAX);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        free(c);
        return;
    }
    if (n < 0) {
        free(c);
        kill_pair(p);
        return;
    }
    if (n > 0 && n < (ssize_t)READ_MAX) {
        struct chunk *s = realloc(c, sizeof(*c) + (size_t)n);
        if (s)
            c = s;
    }
    c->next = NULL;
    c->len = (size_t)n;
    c->off = 0;
    c->due_ns = now_ns() + delay_ns;
    if (n == 0)
        d->eof_read = 1;
    if (d->tail)
        d->tail->next = c;
    else
        d->head = c;
    d->tail = c;
    d->queued += (size_t)n;
}

/* Writes what is due in direction i; returns -1 if the pair died. */
static int do_write(struct pair *p, int i)
{
    struct dir *d = &p->d[i];
    uint64_t now = now_ns();
    while (d->head && d->head->due_ns <= now) {
        struct chunk *c = d->head;
        if (c->len == 0) {
            shutdown(d->to, SHUT_WR);
            d->eof_sent = 1;
        } else {
            ssize_t n = write(d->to, c->data + c->off, c->len - c->off);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
            if (n < 0) {
                kill_pair(p);
                return -1;
            }
            c->off += (size_t)n;
            d->queued -= (size_t)n;
            if (c->off < c->len)
                return 0;
        }
        d->head = c->next;
        if (!d->head)
            d->tail = NULL;
        free(c);
    }
    return 0;
}

static void arm_timer(void)
{
    uint64_t next = UINT64_MAX;
    for (struct pair *p = pairs; p; p = p->next)
        for (int i = 0; i < 2 && !p->dead; i++)
            if (p->d[i].head && p->d[i].head->due_ns < next)
                next = p->d[i].head->due_ns;
    struct itimerspec its = {0};
    if (next != UINT64_MAX) {
        its.it_value.tv_sec = (time_t)(next / 1000000000u);
        its.it_value.tv_nsec = (long)(next % 1000000000u);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1;
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void service(struct pair *p)
{
    for (int i = 0; i < 2 && !p->dead; i++)
        if (do_write(p, i) < 0)
            return;
    if (p->dead)
        return;
    if (p->d[0].eof_sent && p->d[1].eof_sent) {
        kill_pair(p);
        return;
    }
    watch(p, 0);
    watch(p, 1);
}

static void accept_one(struct mapping *m)
{
    int c = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = upstream;
    a.sin_port = htons(m->uport);
    if (u < 0 || connect(u, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(c);
        if (u >= 0)
            close(u);
        return;
    }
    fcntl(u, F_SETFL, fcntl(u, F_GETFL) | O_NONBLOCK);
    nodelay(c);
    nodelay(u);
    struct pair *p = calloc(1, sizeof(*p));
    p->fds[0] = c;
    p->fds[1] = u;
    p->d[0] = (struct dir){.from = c, .to = u};
    p->d[1] = (struct dir){.from = u, .to = c};
    p->next = pairs;
    pairs = p;
    for (int i = 0; i < 2; i++) {
        struct epoll_event e = {.events = EPOLLIN,
                                .data.u64 =
                                    (uint64_t)(uintptr_t)p | (uint64_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, p->fds[i], &e);
    }
}

static void reap(void)
{
    struct pair **pp = &pairs;
    while (*pp) {
        if ((*pp)->dead) {
            struct pair *d = *pp;
            *pp = d->next;
            free(d);
        } else {
            pp = &(*pp)->next;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: delayproxy DELAY_US LISTEN_IP UPSTREAM_IP "
                        "LPORT:UPORT...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    delay_ns = strtoull(argv[1], NULL, 10) * 1000u;
    upstream.sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[3], &upstream.sin_addr) != 1)
        return 2;
    ep = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event te = {.events = EPOLLIN, .data.u64 = 1ull << 63};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te);
    for (int i = 4; i < argc && n_maps < MAX_MAPS; i++) {
        unsigned lp, up;
        if (sscanf(argv[i], "%u:%u", &lp, &up) != 2)
            return 2;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(lp)};
        inet_pton(AF_INET, argv[2], &a.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(fd, 64) < 0) {
            perror("listen");
            return 1;
        }
        maps[n_maps] = (struct mapping){fd, (uint16_t)up};
        struct epoll_event e = {.events = EPOLLIN,
                                .data.u64 = (1ull << 62) | (uint64_t)n_maps};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        n_maps++;
    }
    printf("READY\n");
    fflush(stdout);
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == 1ull << 63) {
                uint64_t x;
                if (read(tfd, &x, sizeof(x)) < 0) {
                    /* nothing to do: the timer is re-armed below */
                }
                for (struct pair *p = pairs; p; p = p->next)
                    if (!p->dead)
                        service(p);
            } else if (tag & (1ull << 62)) {
                accept_one(&maps[tag & 0xff]);
            } else {
                struct pair *p = (struct pair *)(uintptr_t)(tag & ~1ull);
                int side = (int)(tag & 1);
                if (p->dead)
                    continue;
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    do_read(p, side);
                if (!p->dead)
                    service(p);
            }
        }
        reap();
        arm_timer();
    }
}
