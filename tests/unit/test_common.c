/* SPDX-License-Identifier: MIT */
/* Unit tests of the small common pieces: HOST:PORT parsing, backoff, the hello
 * check, systemd's fd store. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backoff.h"
#include "check.h"
#include "fdstore.h"
#include "hostport.h"
#include "log_limit.h"
#include "usbredir_hello.h"

static void test_hostport(void)
{
    struct hostport hp;
    char why[300], buf[300];

    CHECK(hostport_parse("127.0.0.1:4000", &hp, why, sizeof(why)) == 0, "%s",
          why);
    CHECK(strcmp(hp.host, "127.0.0.1") == 0 && hp.port == 4000, "v4");
    CHECK(hostport_parse("[fe80::1%eth0]:1", &hp, why, sizeof(why)) == 0, "%s",
          why);
    CHECK(strcmp(hostport_str(&hp, buf, sizeof(buf)), "[fe80::1%eth0]:1") == 0,
          "%s", buf);
    CHECK(hostport_parse("::1:4000", &hp, why, sizeof(why)) < 0,
          "bare v6 accepted");
    CHECK(hostport_parse("host:", &hp, why, sizeof(why)) < 0,
          "no port accepted");
    CHECK(hostport_parse("host:+1", &hp, why, sizeof(why)) < 0, "+1 accepted");
    CHECK(hostport_parse("host: 1", &hp, why, sizeof(why)) < 0,
          "space accepted");
    CHECK(hostport_parse("[]:1", &hp, why, sizeof(why)) < 0,
          "empty v6 accepted");
    char longhost[400];
    memset(longhost, 'a', sizeof(longhost));
    strcpy(longhost + 300, ":80");
    CHECK(hostport_parse(longhost, &hp, why, sizeof(why)) < 0,
          "long host accepted");
}

static void test_backoff(void)
{
    struct backoff b;
    uint32_t prev = 0;

    backoff_init(&b, 100, 5000);
    for (int i = 0; i < 20; i++) {
        uint32_t d = backoff_next(&b, 0x12345678u * (uint32_t)(i + 1));
        CHECK(d >= 75 && d <= 6250, "delay %u out of range", d);
        if (i > 8)
            CHECK(d >= 3750, "delay %u should have reached the cap", d);
        prev = d;
    }
    (void)prev;
    CHECK(backoff_next(&b, 0) == 3750, "lowest jitter at the cap");
    backoff_reset(&b);
    uint32_t d = backoff_next(&b, 0);
    CHECK(d == 75, "after reset %u", d);
    backoff_init(&b, 0, 0);
    CHECK(backoff_next(&b, 0xffffffffu) >= 1, "zero config still waits");
}

static void test_hello(void)
{
    const char *why = NULL;
    uint8_t hello[12] = {0, 0, 0, 0, 68, 0, 0, 0, 0, 0, 0, 0};
    uint8_t garbage[12] = {0x47, 0x45, 0x54, 0x20};

    CHECK(usbredir_hello_check(hello, 0, &why) == USBREDIR_HELLO_NEED_MORE,
          "empty");
    CHECK(usbredir_hello_check(hello, 11, &why) == USBREDIR_HELLO_NEED_MORE,
          "partial");
    CHECK(usbredir_hello_check(hello, 12, &why) == USBREDIR_HELLO_OK, "valid");
    CHECK(usbredir_hello_check(garbage, 1, &why) == USBREDIR_HELLO_BAD,
          "garbage judged from its first byte");
    CHECK(why && strstr(why, "not a usbredir hello"), "why: %s", why);
    hello[4] = 63;
    CHECK(usbredir_hello_check(hello, 12, &why) == USBREDIR_HELLO_BAD,
          "short length");
    hello[4] = 66;
    CHECK(usbredir_hello_check(hello, 12, &why) == USBREDIR_HELLO_BAD,
          "odd caps");
    hello[4] = 0;
    hello[5] = 1;
    CHECK(usbredir_hello_check(hello, 12, &why) == USBREDIR_HELLO_BAD,
          "huge length");
}

/* A reason is logged when new and when it changes; repeats are held back
 * and summarised with how many and over how long. */
static void test_log_limit(void)
{
    struct log_limit ll = {0};
    unsigned rep;
    char buf[LOG_LIMIT_SUMMARY_MAX];

    CHECK(log_limit_check(&ll, "connection refused", 1000, &rep) && rep == 0,
          "first");
    for (int i = 0; i < 12; i++)
        CHECK(!log_limit_check(&ll, "connection refused", 2000 + i, &rep),
              "repeat %d logged", i);
    CHECK(log_limit_check(&ll, "not a usbredir peer", 3000, &rep) && rep == 0,
          "a new reason is logged at once");
    CHECK(log_limit_check(&ll, "connection refused", 4000, &rep) && rep == 0,
          "a changed reason is logged at once");
    for (int i = 0; i < 12; i++)
        log_limit_check(&ll, "connection refused", 5000 + i, &rep);
    CHECK(log_limit_check(&ll, "connection refused", 64000, &rep) && rep == 12,
          "summary after the interval: %u", rep);
    CHECK(strcmp(log_limit_summary(&ll, rep, buf, sizeof(buf)),
                 "failed 12 more times in 60 s: ") == 0,
          "%s", buf);
    CHECK(strcmp(log_limit_summary(&ll, 0, buf, sizeof(buf)), "") == 0, "none");
}

/* A change of reason says what the old one did since its line. */
static void test_log_limit_closing(void)
{
    struct log_limit ll = {0};
    unsigned rep;
    char buf[LOG_LIMIT_CLOSING_MAX];

    log_limit_check(&ll, "bad secret", 1000, &rep);
    CHECK(!log_limit_closing(&ll, "garbage", buf, sizeof(buf)),
          "nothing held back yet");
    for (int i = 0; i < 3; i++)
        log_limit_check(&ll, "bad secret", 1500 + 1000 * i, &rep);
    CHECK(!log_limit_closing(&ll, "bad secret", buf, sizeof(buf)), "same");
    const char *c = log_limit_closing(&ll, "garbage", buf, sizeof(buf));
    CHECK(c && strcmp(c, "3 more times in 3 s: bad secret") == 0, "%s",
          c ? c : "NULL");
    CHECK(log_limit_check(&ll, "garbage", 4000, &rep) && rep == 0, "new");
    CHECK(!log_limit_closing(&ll, "bad secret", buf, sizeof(buf)),
          "the new reason held nothing back");
    log_limit_check(&ll, "garbage", 4100, &rep);
    c = log_limit_closing(&ll, "busy", buf, sizeof(buf));
    CHECK(c && strcmp(c, "1 more time in 0 s: garbage") == 0, "%s",
          c ? c : "NULL");
}

/* fds systemd passes back: only for our pid, named, each handed out once;
 * the rest closed; the variables gone for children. */
static void test_fdstore_passed(void)
{
    char pid[32], names[400];

    int nul = open("/dev/null", O_RDONLY), hi = fcntl(nul, F_DUPFD, 10);

    close(nul);
    for (int fd = 3; fd <= 5; fd++) /* where systemd puts them */
        dup2(hi, fd);
    close(hi);
    setenv("LISTEN_PID", "1", 1); /* another process's */
    setenv("LISTEN_FDS", "3", 1);
    fdstore_init();
    CHECK(fdstore_take("a") < 0, "not ours");
    CHECK(!getenv("LISTEN_FDS"), "unset");
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "3x", 1);
    fdstore_init();
    CHECK(fdstore_take("a") < 0, "garbage count");
    /* 3 fds, 2 names, one too long for systemd: unnamed */
    memset(names, 'x', sizeof(names) - 1);
    names[sizeof(names) - 1] = '\0';
    memcpy(names, "a:", 2);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "3", 1);
    setenv("LISTEN_FDNAMES", names, 1);
    fdstore_init();
    CHECK(fdstore_take(names + 2) < 0, "an over-long name is no name");
    CHECK(fdstore_take("a") == 3, "first");
    CHECK(fdstore_take("a") < 0, "once");
    CHECK(fcntl(3, F_GETFD) == FD_CLOEXEC, "close-on-exec");
    CHECK(fdstore_drop_unclaimed() == 2, "two nobody took");
    CHECK(fcntl(4, F_GETFD) < 0 && fcntl(5, F_GETFD) < 0, "closed");
    CHECK(fcntl(3, F_GETFD) >= 0, "the taken one is the caller's");
    close(3);
    /* two fds under one name (stale copies): one taken, the other closed,
     * and dropping the unclaimed does not touch the name */
    nul = open("/dev/null", O_RDONLY);
    hi = fcntl(nul, F_DUPFD, 10);
    close(nul);
    for (int fd = 3; fd <= 4; fd++)
        dup2(hi, fd);
    close(hi);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_FDNAMES", "p:p", 1);
    fdstore_init();
    CHECK(fdstore_take("p") == 3, "the first of a name");
    CHECK(fcntl(4, F_GETFD) < 0, "its stale copy closed");
    CHECK(fdstore_drop_unclaimed() == 0, "a copy counted unclaimed");
    close(3);
}

/* FDSTORE=1 with the fd, FDSTOREREMOVE=1, nothing once kept. */
static void test_fdstore_notify(void)
{
    char path[] = "/tmp/redir-fdstore-XXXXXX", sock[64], buf[128];
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = {buf, sizeof(buf) - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0), fd;

    unsetenv("NOTIFY_SOCKET");
    CHECK(fdstore_put("x", 0) == -ENOTCONN, "not under systemd");
    CHECK(mkdtemp(path) != NULL, "mkdtemp");
    snprintf(sock, sizeof(sock), "%s/n", path);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
    CHECK(bind(s, (struct sockaddr *)&sun, sizeof(sun)) == 0, "bind");
    setenv("NOTIFY_SOCKET", sock, 1);
    CHECK(fdstore_put("a:b", 0) == -EINVAL, "':' separates names");
    CHECK(fdstore_put("pty-master.x", 0) == 0, "put");
    msg.msg_control = ctl.b;
    msg.msg_controllen = sizeof(ctl.b);
    ssize_t n = recvmsg(s, &msg, 0);
    buf[n > 0 ? n : 0] = '\0';
    CHECK(strcmp(buf, "FDSTORE=1\nFDNAME=pty-master.x") == 0, "%s", buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    CHECK(c && c->cmsg_type == SCM_RIGHTS, "an fd came along");
    if (c) {
        memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        close(fd);
    }
    fdstore_remove("pty-master.x");
    n = recv(s, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    CHECK(strcmp(buf, "FDSTOREREMOVE=1\nFDNAME=pty-master.x") == 0, "%s", buf);
    fdstore_keep();
    fdstore_remove("pty-master.x");
    CHECK(recv(s, buf, sizeof(buf), 0) < 0, "kept: no removal sent");
    unsetenv("NOTIFY_SOCKET");
    close(s);
    unlink(sock);
    rmdir(path);
}

int main(void)
{
    test_fdstore_passed();
    test_fdstore_notify();
    test_log_limit();
    test_log_limit_closing();
    test_hostport();
    test_backoff();
    test_hello();
    return check_summary();
}
