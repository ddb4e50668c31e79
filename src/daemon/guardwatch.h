/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * MaxProtectedMemory= after the protect: a protected process that grows
 * past the ceiling. Event driven, no polling: a PSI trigger on
 * /proc/pressure/memory (some stall of 150 ms in 2 s, the shortest window
 * an unprivileged trigger may have) wakes the daemon when memory gets
 * scarce, which is when protected memory matters; then what the
 * protections hold is summed, and crossing the ceiling (either way) is
 * logged and signalled (ProtectedMemoryOverCeiling). Without PSI, only each
 * protect checks.
 */

typedef struct Manager Manager;
typedef struct GuardWatch GuardWatch;

int guardwatch_setup(Manager *m);
void guardwatch_done(Manager *m);

/* Sums now and reports a crossing: for a PSI event, and for status readers that want the figure. */
void guardwatch_check(Manager *m, uint64_t *ret_in_use, uint64_t *ret_ceiling, bool *ret_over);
