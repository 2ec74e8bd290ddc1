/* Pieces shared by the agent's and the relay's config parsers: a counting line
 * reader for inih, number parsing. */
#ifndef REDIR_CONFIG_UTIL_H
#define REDIR_CONFIG_UTIL_H

#include <stdint.h>
#include <stdio.h>

#define CONFIG_SECTION_NAME_MAX 128

/* inih does not tell its handler which line it is on, and does not report
 * a section that has no keys: this reader, given to ini_parse_stream(),
 * counts lines, reports every [section] header, and refuses over-long
 * lines and section names (inih would silently split or skip them). */
struct config_reader {
    FILE *file;
    int *line; /* the parser's line counter, advanced per line */
    void (*on_section)(void *ctx, const char *name);
    void (*on_error)(void *ctx, const char *what);
    void *ctx;
};

/* An ini_reader: stream is a struct config_reader. */
char *config_reader_gets(char *str, int num, void *stream);

/* A decimal integer in [min, max], nothing else; 0 or -1. */
int config_parse_u32(const char *value, uint32_t min, uint32_t max,
                     uint32_t *out);

#endif
