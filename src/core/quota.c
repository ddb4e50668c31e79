/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include "oomprotect/protocol.h"
#include "parse.h"
#include "quota.h"

size_t quota_nonroot_max(size_t max_total) {
        size_t keep = max_total / (100 / QUOTA_ROOT_SHARE_PERCENT);

        if (keep == 0)
                keep = 1;
        return max_total > keep ? max_total - keep : 0;
}

uint64_t quota_nonroot_budget(uint64_t budget) {
        return budget - budget / (100 / QUOTA_ROOT_SHARE_PERCENT);
}

/* Whether used + want stays within limit (0: no limit), without overflowing. */
static bool fits(uint64_t used, uint64_t want, uint64_t limit) {
        return limit == 0 || (used <= limit && want <= limit - used);
}

int quota_check(const QuotaLimits *l, const QuotaUsage *u, unsigned uid, uint64_t want_min, bool adding,
                OpError *err) {
        char want[FORMAT_BYTES_MAX], used[FORMAT_BYTES_MAX], limit[FORMAT_BYTES_MAX];
        size_t nonroot_max = quota_nonroot_max(l->max_total);
        uint64_t nonroot_budget = quota_nonroot_budget(l->budget);

        if (adding && u->user_count >= l->max_per_user)
                return op_error_set(err, -EUSERS, OOMPROTECT_ERROR_TOO_MANY,
                                    "uid %u has %zu protections already (MaxProtectedPerUser=%zu).", uid,
                                    u->user_count, l->max_per_user);
        if (adding && u->nonroot_count >= nonroot_max)
                return op_error_set(err, -EUSERS, OOMPROTECT_ERROR_TOO_MANY,
                                    "Users other than root hold %zu protections, their share of MaxProtected=%zu "
                                    "(%d%% is kept for root).",
                                    u->nonroot_count, l->max_total, QUOTA_ROOT_SHARE_PERCENT);
        if (!fits(u->user_min, want_min, l->budget_per_user))
                return op_error_set(err, -ENOSPC, OOMPROTECT_ERROR_OVER_BUDGET,
                                    "memory.min %s on top of the %s uid %u holds exceeds MemoryMinBudgetPerUser=%s.",
                                    format_bytes(want, sizeof(want), want_min),
                                    format_bytes(used, sizeof(used), u->user_min), uid,
                                    format_bytes(limit, sizeof(limit), l->budget_per_user));
        if (!fits(u->nonroot_min, want_min, nonroot_budget))
                return op_error_set(err, -ENOSPC, OOMPROTECT_ERROR_OVER_BUDGET,
                                    "memory.min %s on top of the %s users other than root hold exceeds their "
                                    "share of MemoryMinBudget= (%s; %d%% is kept for root).",
                                    format_bytes(want, sizeof(want), want_min),
                                    format_bytes(used, sizeof(used), u->nonroot_min),
                                    format_bytes(limit, sizeof(limit), nonroot_budget), QUOTA_ROOT_SHARE_PERCENT);
        return 0;
}
