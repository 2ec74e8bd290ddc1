/* SPDX-License-Identifier: MIT */
/* The head of an HTTP/1.x request, as far as a metrics endpoint needs it:
 * method and path. Pure: no I/O. */
#ifndef REDIR_HTTP_REQUEST_H
#define REDIR_HTTP_REQUEST_H

#include <stddef.h>

#define HTTP_HEAD_MAX 8192 /* Prometheus sends a few hundred bytes */
#define HTTP_PATH_MAX 256

struct http_request {
    char method[16];
    char path[HTTP_PATH_MAX]; /* without the query string */
};

/* Parses buf[0..len) (no NUL needed). Returns 1 once the head is complete
 * (an empty line), 0 if more is needed, -1 if it is not an HTTP/1.x request
 * or longer than HTTP_HEAD_MAX. */
int http_request_parse(const char *buf, size_t len, struct http_request *req);

#endif
