/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "op-error.h"

/*
 * Guard rails (issue 16): protection must never leave the machine with
 * nothing the kernel may kill ("System is deadlocked on memory").
 *
 *  - MaxProtectedMemory=: what the protections hold together. Each counts the
 *    memory.current of its cgroup where the memory controller is there (the
 *    scope of a moved one, at least the RSS of its processes, as memory
 *    charged before the move stays behind; the unit's cgroup of an in-place
 *    one, once however many protections share it), else the RSS of its
 *    processes.
 *  - The last killable process: a protect that gives oom_score_adj -1000 is
 *    refused when no other userspace process but PID 1 (which the kernel
 *    never picks) would be left with an adj above -1000.
 */

typedef struct Engine Engine;
typedef struct Protection Protection;

/* Pure: VmRSS of a /proc/PID/status text, in bytes. -ENODATA without one (a kernel thread, a zombie). */
int guard_parse_status_rss(const char *text, uint64_t *ret);

/* Pure: whether adding want to in_use passes ceiling (0: no ceiling). */
bool guard_ceiling_allows(uint64_t in_use, uint64_t want, uint64_t ceiling);

/* What the protections of e hold now (above), in bytes: summed afresh, one read per protection. */
uint64_t guard_protected_usage(Engine *e);

/*
 * The same, summed at most once a second (GUARD_USAGE_MAX_AGE_USEC), for the
 * check of every protect: with 10,000 protections a sum is 10,000 reads. No
 * timer: the sum is only made when asked for.
 */
#define GUARD_USAGE_MAX_AGE_USEC 1000000ULL
uint64_t guard_protected_usage_cached(Engine *e);

/* MaxProtectedMemory= in bytes for this machine (0: none). */
uint64_t guard_ceiling(const Engine *e);

/*
 * Checked on every new protection, before anything is touched: the ceiling,
 * then the last killable process. -ENOSPC with err filled (OverBudget) when
 * refused.
 */
int guard_check_protect(Engine *e, const Protection *candidate, OpError *err);

/* The same for a unit protected by name (ProtectUnit): its cgroup's processes are the candidate's. */
typedef struct UnitProtection UnitProtection;
int guard_check_unit(Engine *e, const UnitProtection *u, OpError *err);

/*
 * An update of a protection (Protect/ProtectUnit again) that gives it adj:
 * the last killable check of a new one, for what becomes unkillable. A
 * PID protection is checked when adj takes its process (and members) out
 * of the kernel's choice; a unit whenever adj is -1000, with the processes
 * of u->cgroup (where it runs now: every one of them gets it). Not the
 * ceiling: what they hold is counted already.
 */
int guard_check_protect_update(Engine *e, const Protection *p, int adj, OpError *err);
int guard_check_unit_killable(Engine *e, const UnitProtection *u, OpError *err);
