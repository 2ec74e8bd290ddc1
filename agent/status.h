/* What "redir-agent status" shows: devices, sessions, peers, counters, rates.
 */
#ifndef REDIR_STATUS_H
#define REDIR_STATUS_H

#include <stdbool.h>

struct agent;
struct strbuf;

/* A human table, or JSON for scripts. */
void status_render(const struct agent *a, bool json, struct strbuf *out);

#endif
