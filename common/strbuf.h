/* SPDX-License-Identifier: MIT */
/* A growable text buffer for status output: printf-append and JSON strings. */
#ifndef REDIR_STRBUF_H
#define REDIR_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#define STRBUF_MAX (1u << 20) /* status output larger than this is a bug */

struct strbuf {
    char *data;
    size_t len, cap;
    bool failed; /* out of memory or over STRBUF_MAX: output is truncated */
};

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends s as a JSON string literal, quotes included. */
void strbuf_json_string(struct strbuf *sb, const char *s);

void strbuf_free(struct strbuf *sb);

#endif
