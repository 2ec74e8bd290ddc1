/* SPDX-License-Identifier: MIT */
/* Repeated failures without a flooded log: a reason is logged when it first
 * occurs and when it changes; repeats are counted and summarised at most
 * once per interval ("12 more in 60 s"). */
#ifndef REDIR_LOG_LIMIT_H
#define REDIR_LOG_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_LIMIT_REASON_MAX 160
#define LOG_LIMIT_INTERVAL_MS 60000

struct log_limit {
    char reason[LOG_LIMIT_REASON_MAX]; /* last logged */
    uint64_t logged_ms;                /* when */
    unsigned repeats;                  /* not logged since */
    uint64_t span_ms; /* from the line before the last one to it */
    uint64_t last_ms; /* the reason's last occurrence, logged or not */
};

/* True if reason is to be logged now; then *repeats is how many were held
 * back since the last line (0 for a new reason), to be said with it. */
bool log_limit_check(struct log_limit *ll, const char *reason, uint64_t now_ms,
                     unsigned *repeats);

/* " (and N more since the last such line)", or "" for none, into buf. */
#define LOG_LIMIT_SUFFIX_MAX 64
const char *log_limit_suffix(unsigned repeats, char *buf, size_t len);

/* For a reason logged again after repeats: "failed 12 more times in 60 s:
 * " (what the repeats were, and over how long), or "" for none. */
#define LOG_LIMIT_SUMMARY_MAX 64
const char *log_limit_summary(const struct log_limit *ll, unsigned repeats,
                              char *buf, size_t len);

/* Before the line for a reason that replaces the last one: what the last
 * one did since its line, "3 more times in 2 s: REASON" (the caller says
 * what failed), so a change does not swallow the old reason's repeats.
 * NULL when reason is the same, or nothing was held back. Call it before
 * log_limit_check. */
#define LOG_LIMIT_CLOSING_MAX (LOG_LIMIT_REASON_MAX + 48)
const char *log_limit_closing(const struct log_limit *ll, const char *reason,
                              char *buf, size_t len);

#endif
