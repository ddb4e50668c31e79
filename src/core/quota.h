/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op-error.h"

/*
 * What callers who are not root may hold, so that none of them, and not all
 * of them together, can starve root (issue 10, class 3). Pure arithmetic:
 * the engine counts, this decides.
 *
 * One uid: at most MaxProtectedPerUser= protections and
 * MemoryMinBudgetPerUser= of memory.min. All uids but root together: what
 * MaxProtected= and MemoryMinBudget= leave once root's share
 * (QUOTA_ROOT_SHARE_PERCENT, at least one protection) is kept back.
 */
#define QUOTA_ROOT_SHARE_PERCENT 10

typedef struct QuotaLimits {
        size_t max_total;        /* MaxProtected= */
        size_t max_per_user;     /* MaxProtectedPerUser= */
        uint64_t budget;         /* MemoryMinBudget= in bytes, 0 = no limit */
        uint64_t budget_per_user; /* MemoryMinBudgetPerUser= in bytes, 0 = no limit */
} QuotaLimits;

typedef struct QuotaUsage {
        size_t user_count;     /* protections of processes of this uid */
        uint64_t user_min;     /* their memory.min */
        size_t nonroot_count;  /* protections of processes of any uid but 0 */
        uint64_t nonroot_min;
} QuotaUsage;

/* What all non-root uids together may hold: the total without root's share. */
size_t quota_nonroot_max(size_t max_total);
uint64_t quota_nonroot_budget(uint64_t budget); /* 0 (no limit) stays 0 */

/*
 * May a caller of uid (not root) add a protection of want_min bytes
 * (adding: a new protection, else a raise of an existing one by want_min)?
 * 0, or -EUSERS / -ENOSPC with err filled.
 */
int quota_check(const QuotaLimits *l, const QuotaUsage *u, unsigned uid, uint64_t want_min, bool adding,
                OpError *err);
