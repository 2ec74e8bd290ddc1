/* SPDX-License-Identifier: MIT */
/* An intrusive doubly linked list: O(1) insertion and removal for objects
 * that sit in one owner's list (the relay's thousands of sessions). */
#ifndef REDIR_LIST_H
#define REDIR_LIST_H

#include <stddef.h>

struct list_node {
    struct list_node *prev, *next;
};

/* An empty list is a node pointing at itself. */
static inline void list_init(struct list_node *head)
{
    head->prev = head->next = head;
}

static inline int list_empty(const struct list_node *head)
{
    return head->next == head;
}

static inline void list_add(struct list_node *head, struct list_node *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

static inline void list_remove(struct list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define list_entry(node, type, member)                                         \
    ((type *)((char *)(node)-offsetof(type, member)))

#endif
