/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
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

/* stderr on a datagram socket: each write(2) arrives as one datagram, so one recv() is one write. */
static int capture_stderr(int *ret_saved) {
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
        *ret_saved = dup(STDERR_FILENO);
        assert_true(dup2(sv[1], STDERR_FILENO) >= 0);
        close(sv[1]);
        return sv[0];
}

static void release_stderr(int fd, int saved) {
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fd);
}

static void test_log_line_is_one_write_with_prefix_message_and_newline(void **state) {
        char buf[256];
        int saved, fd = capture_stderr(&saved);
        ssize_t n;

        log_set_max_level(LOG_INFO);
        log_set_prefix(true);
        log_error_errno(ENOENT, "Failed to open %s: %m", "x");
        n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        release_stderr(fd, saved);
        assert_true(n > 0);
        buf[n] = '\0';
        assert_string_equal(buf, "<3>Failed to open x: No such file or directory\n");
}

static void test_log_line_longer_than_the_stack_buffer_is_whole_and_one_write(void **state) {
        static char msg[5000], buf[6000];
        int saved, fd = capture_stderr(&saved);
        ssize_t n;

        memset(msg, 'a', sizeof(msg) - 1);
        log_set_max_level(LOG_INFO);
        log_set_prefix(false);
        log_info("%s", msg);
        n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        release_stderr(fd, saved);
        log_set_prefix(true);
        assert_int_equal(n, (ssize_t) sizeof(msg)); /* 4999 bytes and the newline */
        assert_int_equal(buf[n - 1], '\n');
        assert_int_equal(memcmp(buf, msg, sizeof(msg) - 1), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ratelimit_lets_a_burst_through_then_counts_what_it_drops),
                cmocka_unit_test(test_log_returns_the_negative_errno_it_was_given),
                cmocka_unit_test(test_log_line_is_one_write_with_prefix_message_and_newline),
                cmocka_unit_test(test_log_line_longer_than_the_stack_buffer_is_whole_and_one_write),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
