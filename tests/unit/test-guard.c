/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "guard.h"

static void test_guard_parse_status_rss_reads_kilobytes(void **state) {
        uint64_t rss = 0;

        assert_int_equal(guard_parse_status_rss("Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n", &rss),
                         0);
        assert_int_equal(rss, 2048 * 1024);
}

static void test_guard_parse_status_rss_without_line_or_garbage(void **state) {
        uint64_t rss = 7;

        assert_int_equal(guard_parse_status_rss("Name:\tkworker\nState:\tI (idle)\n", &rss), -ENODATA);
        assert_int_equal(guard_parse_status_rss("VmRSS:\tlots\n", &rss), -EINVAL);
        assert_int_equal(guard_parse_status_rss("VmRSS:\t99999999999999999999 kB\n", &rss), -EINVAL);
        assert_int_equal(rss, 7);
}

static void test_guard_ceiling_allows_up_to_and_not_past(void **state) {
        assert_true(guard_ceiling_allows(0, 100, 0)); /* no ceiling */
        assert_true(guard_ceiling_allows(60, 40, 100));
        assert_false(guard_ceiling_allows(61, 40, 100));
        assert_false(guard_ceiling_allows(0, 101, 100));
        assert_false(guard_ceiling_allows(UINT64_MAX, 1, 100));
        assert_false(guard_ceiling_allows(1, UINT64_MAX, UINT64_MAX)); /* no overflow */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_guard_parse_status_rss_reads_kilobytes),
                cmocka_unit_test(test_guard_parse_status_rss_without_line_or_garbage),
                cmocka_unit_test(test_guard_ceiling_allows_up_to_and_not_past),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
