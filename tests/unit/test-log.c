/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

static void test_ratelimit_lets_a_burst_through_then_counts_what_it_drops(void **state) {
        LogRateLimit rl = LOG_RATELIMIT_INIT(200 * 1000ULL, 3);
        unsigned suppressed = 99;

        for (int i = 0; i < 3; i++) {
                assert_true(log_ratelimit_ok(&rl, &suppressed));
                assert_int_equal(suppressed, 0);
        }
        for (int i = 0; i < 1000; i++)
                assert_false(log_ratelimit_ok(&rl, &suppressed));
        usleep(250 * 1000);
        /* A new interval: the first message learns how many were left out. */
        assert_true(log_ratelimit_ok(&rl, &suppressed));
        assert_int_equal(suppressed, 1000);
        assert_true(log_ratelimit_ok(&rl, &suppressed));
        assert_int_equal(suppressed, 0);
}

static void test_log_returns_the_negative_errno_it_was_given(void **state) {
        log_set_max_level(LOG_EMERG); /* nothing printed */
        assert_int_equal(log_error_errno(EINVAL, "x"), -EINVAL);
        assert_int_equal(log_error_errno(-ENOENT, "x"), -ENOENT);
        assert_int_equal(log_parse_level("debug"), LOG_DEBUG);
        assert_int_equal(log_parse_level("loud"), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ratelimit_lets_a_burst_through_then_counts_what_it_drops),
                cmocka_unit_test(test_log_returns_the_negative_errno_it_was_given),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
