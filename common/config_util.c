/* Pieces shared by the agent's and the relay's config parsers: a counting line
 * reader for inih, number parsing. */
#include "config_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Reports the [name] a header line opens, if it is one. */
static void reader_check_header(struct config_reader *r, const char *line)
{
    char name[CONFIG_SECTION_NAME_MAX];
    const char *end;

    while (isspace((unsigned char)*line))
        line++;
    if (*line != '[' || !(end = strchr(line, ']')))
        return; /* inih reports a header without ']' itself */
    size_t n = (size_t)(end - line - 1);
    if (n >= sizeof(name)) {
        r->on_error(r->ctx, "section name too long");
        return;
    }
    memcpy(name, line + 1, n);
    name[n] = '\0';
    r->on_section(r->ctx, name);
}

char *config_reader_gets(char *str, int num, void *stream)
{
    struct config_reader *r = stream;
    char *line = fgets(str, num, r->file);
    char what[64];

    if (!line)
        return NULL;
    (*r->line)++;
    size_t len = strlen(line);
    if (len == (size_t)num - 1 && line[len - 1] != '\n' && !feof(r->file)) {
        snprintf(what, sizeof(what), "line longer than %d characters", num - 2);
        r->on_error(r->ctx, what);
        int c;
        while ((c = fgetc(r->file)) != EOF && c != '\n')
            ;
    }
    reader_check_header(r, line);
    return line;
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
