/* SPDX-License-Identifier: MIT */
/* The head of an HTTP/1.x request, as far as a metrics endpoint needs it:
 * method and path. Pure: no I/O. */
#include "http_request.h"

#include <string.h>

/* The end of the head ("\r\n\r\n" or "\n\n"), or NULL. */
static const char *head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n')
            return buf + i;
        if (i + 3 < len && memcmp(buf + i, "\r\n\r\n", 4) == 0)
            return buf + i;
    }
    return NULL;
}

/* Copies the next word of [*p, end) into out: printable ASCII up to a
 * space or the line's end; anything else is not HTTP. */
static int word(const char **p, const char *end, char *out, size_t cap)
{
    const char *s = *p;
    size_t n = 0;

    while (s + n < end && s[n] != ' ' && s[n] != '\r' && s[n] != '\n') {
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
            return -1;
        n++;
    }
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    *p = s + n;
    return 0;
}

int http_request_parse(const char *buf, size_t len, struct http_request *req)
{
    const char *end = head_end(buf, len), *p = buf;
    char version[16];

    if (!end)
        return len >= HTTP_HEAD_MAX ? -1 : 0;
    if (end - buf >= HTTP_HEAD_MAX)
        return -1;
    if (word(&p, end, req->method, sizeof(req->method)) < 0 || *p++ != ' ' ||
        word(&p, end, req->path, sizeof(req->path)) < 0 || *p++ != ' ' ||
        word(&p, end, version, sizeof(version)) < 0 ||
        strncmp(version, "HTTP/1.", 7) != 0 || req->path[0] != '/')
        return -1;
    for (const char *c = req->method; *c; c++)
        if (*c < 'A' || *c > 'Z')
            return -1;
    req->path[strcspn(req->path, "?")] = '\0';
    return 1;
}
