/* SPDX-License-Identifier: MIT */
/* Comma-separated lists of shell globs ("desk-*, lab-7"): which certificate
 * names may use a listener or a relay target. */
#ifndef REDIR_GLOB_LIST_H
#define REDIR_GLOB_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* True if name matches one glob of list. An empty list (or NULL) matches
 * any name; a NULL name matches only an empty list. */
bool glob_list_match(const char *list, const char *name);

/* True if name matches one glob of list; an empty list matches nothing. */
bool glob_list_contains(const char *list, const char *name);

/* Checks a list: every entry non-empty, at most len_max characters, made of
 * visible ASCII. Returns 0, or -1 with the bad entry in why. */
int glob_list_check(const char *list, size_t len_max, char *why,
                    size_t why_len);

#endif
