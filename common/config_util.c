/* SPDX-License-Identifier: MIT */
/* What the agent's and the relay's config parsers share: reading a file with
 * inih line by line, the first error as FILE:LINE: what, number parsing. */
#include "config_util.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void config_verror(struct config_parse *p, int line, const char *fmt,
                          va_list ap)
{
    if (p->err_line)
        return;
    p->err_line = line > 0 ? line : 1;
    int n = snprintf(p->err, sizeof(p->err), "%s:%d: ", p->path, p->err_line);
    if (n > 0 && (size_t)n < sizeof(p->err))
        vsnprintf(p->err + n, sizeof(p->err) - (size_t)n, fmt, ap);
}

void config_error(struct config_parse *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_verror(p, p->line, fmt, ap);
    va_end(ap);
}

void config_error_at(struct config_parse *p, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_verror(p, line, fmt, ap);
    va_end(ap);
}

/* What inih's stream reader and handler see. */
struct reader {
    FILE *file;
    struct config_parse *p;
    const struct config_grammar *grammar;
    void *ctx;
};

/* Reports the [name] a header line opens, if it is one. */
static void reader_check_header(struct reader *r, const char *line)
{
    char name[CONFIG_SECTION_NAME_MAX];
    const char *end;

    while (isspace((unsigned char)*line))
        line++;
    if (*line != '[' || !(end = strchr(line, ']')))
        return; /* inih reports a header without ']' itself */
    size_t n = (size_t)(end - line - 1);
    if (n >= sizeof(name)) {
        config_error(r->p, "section name too long");
        return;
    }
    memcpy(name, line + 1, n);
    name[n] = '\0';
    r->grammar->section(r->ctx, name);
}

static char *reader_gets(char *str, int num, void *stream)
{
    struct reader *r = stream;
    char *line = fgets(str, num, r->file);

    if (!line)
        return NULL;
    r->p->line++;
    size_t len = strlen(line);
    if (len == (size_t)num - 1 && line[len - 1] != '\n' && !feof(r->file)) {
        config_error(r->p, "line longer than %d characters", num - 2);
        int c;
        while ((c = fgetc(r->file)) != EOF && c != '\n')
            ;
    }
    reader_check_header(r, line);
    return line;
}

static int reader_key(void *user, const char *section, const char *name,
                      const char *value)
{
    struct reader *r = user;
    return r->grammar->key(r->ctx, section, name, value);
}

int config_load_file(const char *path, struct config_parse *p,
                     const struct config_grammar *grammar, void *ctx)
{
    struct reader r = {.p = p, .grammar = grammar, .ctx = ctx};

    p->path = path;
    r.file = fopen(path, "re");
    if (!r.file) {
        snprintf(p->err, sizeof(p->err), "%s: cannot open: %s", path,
                 strerror(errno));
        p->err_line = -1;
        return -1;
    }
    int syntax_line = ini_parse_stream(reader_gets, &r, reader_key, &r);
    fclose(r.file);
    if (syntax_line > 0 && (!p->err_line || syntax_line < p->err_line)) {
        snprintf(p->err, sizeof(p->err),
                 "%s:%d: syntax error: expected 'key = value' or '[section]'",
                 path, syntax_line);
        p->err_line = syntax_line;
    } else if (syntax_line < 0) {
        snprintf(p->err, sizeof(p->err), "%s: out of memory while parsing",
                 path);
        p->err_line = -1;
    }
    return p->err_line ? -1 : 0;
}

int config_parse_u32(const char *value, uint32_t min, uint32_t max,
                     uint32_t *out)
{
    char *end;

    if (!isdigit((unsigned char)*value))
        return -1;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int config_parse_size(const char *value, uint32_t min, uint32_t max,
                      uint32_t *out)
{
    char *end;

    if (!isdigit((unsigned char)*value))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    unsigned long long unit = 1;
    if (*end == 'K' || *end == 'k')
        unit = 1024;
    else if (*end == 'M' || *end == 'm')
        unit = 1024 * 1024;
    if (unit > 1)
        end++;
    if (errno || *end || v > max / unit || v * unit < min)
        return -1;
    *out = (uint32_t)(v * unit);
    return 0;
}

int config_parse_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(value, yes[i]) == 0 || strcasecmp(value, no[i]) == 0) {
            *out = strcasecmp(value, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}
