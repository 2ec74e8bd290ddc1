/* SPDX-License-Identifier: MIT */
/* What the agent's and the relay's config parsers share: reading a file with
 * inih line by line, the first error as FILE:LINE: what, number parsing. */
#ifndef REDIR_CONFIG_UTIL_H
#define REDIR_CONFIG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_SECTION_NAME_MAX 128
#define CONFIG_ERR_MAX 512

/* A parse in progress: where the reader is and the first error found.
 * Later errors are dropped: they are often fallout of the first. */
struct config_parse {
    const char *path;
    int line;     /* line the reader handed to inih last */
    int err_line; /* of the first error, 0 if none */
    char err[CONFIG_ERR_MAX];
};

/* Records "PATH:LINE: what" at p->line, unless an error is already
 * recorded. */
void config_error(struct config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same at another line (a check made after the whole file was read). */
void config_error_at(struct config_parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The callbacks of one config format. inih does not tell its handler
 * which line it is on and does not report a section without keys: the
 * loader counts lines and reports every [section] header itself, and
 * refuses over-long lines and section names (inih would silently split
 * or skip them). */
struct config_grammar {
    void (*section)(void *ctx, const char *name);
    /* return 0 to stop (after recording why) */
    int (*key)(void *ctx, const char *section, const char *name,
               const char *value);
};

/* Parses path with grammar; ctx is handed to its callbacks, which report
 * errors into p. Returns 0, or -1 with "PATH:LINE: what" (or "PATH:
 * cannot open: ...") in p->err. */
int config_load_file(const char *path, struct config_parse *p,
                     const struct config_grammar *grammar, void *ctx);

/* A decimal integer in [min, max], nothing else; 0 or -1. */
int config_parse_u32(const char *value, uint32_t min, uint32_t max,
                     uint32_t *out);

/* A byte count with an optional K or M suffix (powers of 1024) in
 * [min, max]; 0 or -1. */
int config_parse_size(const char *value, uint32_t min, uint32_t max,
                      uint32_t *out);

/* yes/no, true/false, on/off, 1/0 (any case); 0 or -1. */
int config_parse_bool(const char *value, bool *out);

#endif
