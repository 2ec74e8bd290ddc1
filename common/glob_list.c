/* SPDX-License-Identifier: MIT */
/* Comma-separated lists of shell globs: which certificate names may use a
 * listener or a relay target. */
#include "glob_list.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#define GLOB_MAX 256

/* The next entry of *p, trimmed, into out; false at the end. */
static bool next_entry(const char **p, char *out, size_t out_len, size_t *len)
{
    const char *s = *p, *end;

    while (*s == ' ' || *s == '\t' || *s == ',')
        s++;
    if (!*s)
        return false;
    end = strchr(s, ',');
    if (!end)
        end = s + strlen(s);
    *p = end;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *len = (size_t)(end - s);
    snprintf(out, out_len, "%.*s", (int)*len, s);
    return true;
}

/* 1: name matches a glob, 0: it matches none, -1: the list is empty. */
static int glob_list_find(const char *list, const char *name)
{
    char glob[GLOB_MAX];
    size_t len;
    int found = -1;

    while (list && next_entry(&list, glob, sizeof(glob), &len)) {
        found = 0;
        if (name && len < sizeof(glob) && fnmatch(glob, name, 0) == 0)
            return 1;
    }
    return found;
}

bool glob_list_match(const char *list, const char *name)
{
    return glob_list_find(list, name) != 0;
}

bool glob_list_contains(const char *list, const char *name)
{
    return glob_list_find(list, name) == 1;
}

int glob_list_check(const char *list, size_t len_max, char *why, size_t why_len)
{
    char glob[GLOB_MAX];
    size_t len;

    while (next_entry(&list, glob, sizeof(glob), &len)) {
        if (len > len_max || len >= sizeof(glob)) {
            snprintf(why, why_len, "\"%.40s...\" is longer than %zu characters",
                     glob, len_max);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)glob[i];
            if (c <= ' ' || c >= 0x7f) {
                snprintf(why, why_len,
                         "\"%s\" has a character that is not visible ASCII",
                         glob);
                return -1;
            }
        }
    }
    return 0;
}
