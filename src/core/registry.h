/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protection.h"

/*
 * The protections in memory, sorted by pid: lookups are a binary search,
 * iteration is in pid order (the status file's order), and the items array
 * is what state_save() takes.
 */
typedef struct Registry {
        Protection **items;
        size_t n, alloc;
        uint64_t memory_min_sum; /* sum of memory_min over items: what MemoryMinBudget= counts */
        uint64_t slice_min_sum, slice_low_sum; /* the same over moved protections: what the slice must carry */
} Registry;

/* Adds (or takes away) p's figures to the sums: around a change of an item's memory_min/low or kind. */
void registry_account(Registry *r, const Protection *p, bool add);

/* Takes ownership on success; -EEXIST if the pid is there already. */
int registry_add(Registry *r, Protection *p);
Protection *registry_get(const Registry *r, pid_t pid);
/* Gives ownership back to the caller; NULL if absent. */
Protection *registry_remove(Registry *r, pid_t pid);
void registry_done(Registry *r);

/* Pure budget arithmetic: may `request` more bytes be protected on top of `in_use` (budget 0 = no limit)? */
bool budget_allows(uint64_t in_use, uint64_t request, uint64_t budget);
