/* SPDX-License-Identifier: MIT */
/* Repeated failures without a flooded log: a reason is logged when it first
 * occurs and when it changes; repeats are counted and summarised at most
 * once per interval ("12 more in 60 s"). */
#include "log_limit.h"

#include <stdio.h>
#include <string.h>

bool log_limit_check(struct log_limit *ll, const char *reason, uint64_t now_ms,
                     unsigned *repeats)
{
    bool changed = strncmp(ll->reason, reason, sizeof(ll->reason) - 1) != 0;

    *repeats = 0;
    ll->last_ms = now_ms;
    if (!changed && ll->logged_ms &&
        now_ms - ll->logged_ms < LOG_LIMIT_INTERVAL_MS) {
        ll->repeats++;
        return false;
    }
    *repeats = changed ? 0 : ll->repeats;
    ll->span_ms =
        ll->logged_ms && now_ms > ll->logged_ms ? now_ms - ll->logged_ms : 0;
    ll->repeats = 0;
    ll->logged_ms = now_ms ? now_ms : 1;
    snprintf(ll->reason, sizeof(ll->reason), "%s", reason);
    return true;
}

const char *log_limit_suffix(unsigned repeats, char *buf, size_t len)
{
    if (repeats == 0)
        return "";
    snprintf(buf, len, " (and %u more since the last such line)", repeats);
    return buf;
}

const char *log_limit_summary(const struct log_limit *ll, unsigned repeats,
                              char *buf, size_t len)
{
    if (repeats == 0)
        return "";
    snprintf(buf, len, "failed %u more time%s in %llu s: ", repeats,
             repeats == 1 ? "" : "s",
             (unsigned long long)((ll->span_ms + 500) / 1000));
    return buf;
}

const char *log_limit_closing(const struct log_limit *ll, const char *reason,
                              char *buf, size_t len)
{
    if (ll->repeats == 0 ||
        strncmp(ll->reason, reason, sizeof(ll->reason) - 1) == 0)
        return NULL;
    uint64_t span =
        ll->last_ms > ll->logged_ms ? ll->last_ms - ll->logged_ms : 0;
    snprintf(buf, len, "%u more time%s in %llu s: %s", ll->repeats,
             ll->repeats == 1 ? "" : "s",
             (unsigned long long)((span + 500) / 1000), ll->reason);
    return buf;
}
