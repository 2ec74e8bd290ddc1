/* SPDX-License-Identifier: MIT */
/* Logging: one line per event, to stderr in the foreground or syslog as a
 * daemon. */
#ifndef REDIR_LOG_H
#define REDIR_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Levels are syslog's: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG.
 */
void log_open(const char *ident, bool to_stderr);
void log_set_level(int level);
int log_get_level(void);
void log_close(void);

/* Parses "error" | "warning" | "notice" | "info" | "debug"; -1 if unknown. */
int log_level_from_name(const char *name);

void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
