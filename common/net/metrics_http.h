/* SPDX-License-Identifier: MIT */
/* A Prometheus text endpoint: GET /metrics over HTTP/1.x on a TCP listener,
 * answered from the owner's render callback, one request per connection. */
#ifndef REDIR_METRICS_HTTP_H
#define REDIR_METRICS_HTTP_H

#include <uv.h>

#include "hostport.h"

struct metrics_http;
struct strbuf;

/* Appends the metrics in Prometheus text format (0.0.4) to out. */
typedef void (*metrics_render_fn)(void *ctx, struct strbuf *out);

/* Listens on addr; who names the daemon in log lines. NULL after logging
 * why. */
struct metrics_http *metrics_http_start(uv_loop_t *loop,
                                        const struct hostport *addr,
                                        metrics_render_fn render, void *ctx);

/* Stops listening, hangs up on clients, frees. */
void metrics_http_stop(struct metrics_http *m);

#endif
