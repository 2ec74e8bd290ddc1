/* SPDX-License-Identifier: MIT */
/* A growable text buffer for status output: printf-append and JSON strings. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static bool strbuf_reserve(struct strbuf *sb, size_t extra)
{
    size_t need = sb->len + extra + 1;
    size_t cap = sb->cap ? sb->cap : 256;

    if (sb->failed)
        return false;
    if (need <= sb->cap)
        return true;
    while (cap < need)
        cap *= 2;
    char *data = cap <= STRBUF_MAX ? realloc(sb->data, cap) : NULL;
    if (!data) {
        sb->failed = true;
        return false;
    }
    sb->data = data;
    sb->cap = cap;
    return true;
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !strbuf_reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void strbuf_json_string(struct strbuf *sb, const char *s)
{
    strbuf_printf(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            strbuf_printf(sb, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            strbuf_printf(sb, "\\u%04x", *p); /* strings are ASCII here */
        else
            strbuf_printf(sb, "%c", *p);
    }
    strbuf_printf(sb, "\"");
}

void strbuf_free(struct strbuf *sb)
{
    free(sb->data);
    *sb = (struct strbuf){0};
}
