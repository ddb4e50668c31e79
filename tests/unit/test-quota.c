/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "oomprotect/protocol.h"
#include "quota.h"

#define MIB (UINT64_C(1) << 20)

static void test_root_keeps_a_tenth_and_at_least_one(void **state) {
        assert_int_equal(quota_nonroot_max(10000), 9000);
        assert_int_equal(quota_nonroot_max(10), 9);
        assert_int_equal(quota_nonroot_max(4), 3);
        assert_int_equal(quota_nonroot_max(1), 0);
        assert_true(quota_nonroot_budget(1000 * MIB) == 900 * MIB);
        assert_true(quota_nonroot_budget(0) == 0); /* no limit stays no limit */
}

static void test_one_uid_is_held_to_its_count_and_memory(void **state) {
        QuotaLimits l = { .max_total = 100, .max_per_user = 3, .budget = 1000 * MIB, .budget_per_user = 100 * MIB };
        QuotaUsage u = { .user_count = 3, .user_min = 10 * MIB, .nonroot_count = 3, .nonroot_min = 10 * MIB };
        OpError e1 = {}, e2 = {};

        assert_int_equal(quota_check(&l, &u, 1000, 0, true, &e1), -EUSERS);
        assert_string_equal(e1.name, OOMPROTECT_ERROR_TOO_MANY);
        assert_non_null(strstr(e1.message, "MaxProtectedPerUser=3"));
        /* A raise of an existing protection adds no count. */
        assert_int_equal(quota_check(&l, &u, 1000, 90 * MIB, false, NULL), 0);
        assert_int_equal(quota_check(&l, &u, 1000, 90 * MIB + 1, false, &e2), -ENOSPC);
        assert_string_equal(e2.name, OOMPROTECT_ERROR_OVER_BUDGET);
        assert_non_null(strstr(e2.message, "MemoryMinBudgetPerUser="));
        u.user_count = 2;
        assert_int_equal(quota_check(&l, &u, 1000, 0, true, NULL), 0);
}

static void test_all_non_root_uids_together_leave_roots_share(void **state) {
        QuotaLimits l = { .max_total = 10, .max_per_user = 100, .budget = 1000 * MIB };
        QuotaUsage u = { .nonroot_count = 9 };
        OpError e1 = {}, e2 = {};

        assert_int_equal(quota_check(&l, &u, 1000, 0, true, &e1), -EUSERS);
        assert_non_null(strstr(e1.message, "kept for root"));
        u.nonroot_count = 8;
        assert_int_equal(quota_check(&l, &u, 1000, 0, true, NULL), 0);
        u.nonroot_min = 850 * MIB;
        assert_int_equal(quota_check(&l, &u, 1000, 50 * MIB, true, NULL), 0);
        assert_int_equal(quota_check(&l, &u, 1000, 50 * MIB + 1, true, &e2), -ENOSPC);
        assert_non_null(strstr(e2.message, "kept for root"));
        /* Overflowing sums are refused, not wrapped. */
        assert_int_equal(quota_check(&l, &u, 1000, UINT64_MAX, true, NULL), -ENOSPC);
}

static void test_no_budget_means_no_memory_limit(void **state) {
        QuotaLimits l = { .max_total = 10, .max_per_user = 5 };
        QuotaUsage u = { .user_min = UINT64_MAX / 2, .nonroot_min = UINT64_MAX / 2 };

        assert_int_equal(quota_check(&l, &u, 1000, UINT64_MAX / 2, true, NULL), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_root_keeps_a_tenth_and_at_least_one),
                cmocka_unit_test(test_one_uid_is_held_to_its_count_and_memory),
                cmocka_unit_test(test_all_non_root_uids_together_leave_roots_share),
                cmocka_unit_test(test_no_budget_means_no_memory_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
