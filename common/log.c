/* SPDX-License-Identifier: MIT */
/* Logging: one line per event, to stderr in the foreground or syslog as a
 * daemon. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static bool log_to_stderr = true;
static int log_level = LOG_INFO;
static const char *log_ident = "redir";

static const char *const level_names[] = {
    [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
    [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
    [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void log_open(const char *ident, bool to_stderr)
{
    log_ident = ident;
    log_to_stderr = to_stderr;
    if (!to_stderr)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_close(void)
{
    if (!log_to_stderr)
        closelog();
}

void log_set_level(int level) { log_level = level; }

int log_get_level(void) { return log_level; }

int log_level_from_name(const char *name)
{
    for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static void log_write_stderr(int level, const char *msg)
{
    struct timeval tv;
    struct tm tm;
    char stamp[32];

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    /* One fprintf per line so concurrent writers never interleave mid-line. */
    fprintf(stderr, "%s.%03ld %s %s: %s\n", stamp, (long)(tv.tv_usec / 1000),
            log_ident, level_names[level], msg);
}

void log_msg(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_to_stderr)
        log_write_stderr(level, msg);
    else
        syslog(level, "%s", msg);
}
