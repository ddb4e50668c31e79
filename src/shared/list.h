/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * An intrusive doubly-linked list (systemd's list.h, reduced): the items
 * have prev and next pointers, the owner keeps the head.
 */

#define LIST_PREPEND(head, item)                      \
        do {                                          \
                (item)->prev = NULL;                  \
                (item)->next = (head);                \
                if ((head))                           \
                        (head)->prev = (item);        \
                (head) = (item);                      \
        } while (0)

#define LIST_REMOVE(head, item)                            \
        do {                                               \
                if ((item)->prev)                          \
                        (item)->prev->next = (item)->next; \
                else                                       \
                        (head) = (item)->next;             \
                if ((item)->next)                          \
                        (item)->next->prev = (item)->prev; \
                (item)->prev = (item)->next = NULL;        \
        } while (0)
