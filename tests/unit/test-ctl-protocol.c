/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ctl-protocol.h"
#include "macro.h"

static int parse(const char *line, CtlCommand *c, const char **reason) {
        return ctl_parse_line(line, strlen(line), c, reason);
}

static void test_ctl_parses_setprotection_on_and_off(void **state) {
        CtlCommand c;
        const char *reason = NULL;

        assert_int_equal(parse("setprotection 1234 1", &c, &reason), 1);
        assert_int_equal(c.pid, 1234);
        assert_true(c.protect);
        assert_int_equal(parse("setprotection 1234 0", &c, &reason), 1);
        assert_int_equal(c.pid, 1234);
        assert_false(c.protect);
}

static void test_ctl_reads_pid_in_base_0_like_the_module(void **state) {
        CtlCommand c;
        const char *reason;

        assert_int_equal(parse("setprotection 0x4d2 1", &c, &reason), 1);
        assert_int_equal(c.pid, 1234);
        assert_int_equal(parse("setprotection 02322 1", &c, &reason), 1);
        assert_int_equal(c.pid, 1234);
        assert_int_equal(parse("setprotection 0x1 0x0", &c, &reason), 1);
        assert_int_equal(c.pid, 1);
        assert_false(c.protect);
}

static void test_ctl_omitted_flag_means_protect(void **state) {
        CtlCommand c;
        const char *reason;

        /* Decision documented in the README: the module read past the PID and unprotected; we protect. */
        assert_int_equal(parse("setprotection 77", &c, &reason), 1);
        assert_int_equal(c.pid, 77);
        assert_true(c.protect);
}

static void test_ctl_tolerates_blanks_tabs_and_crlf(void **state) {
        CtlCommand c;
        const char *reason;

        assert_int_equal(parse("  setprotection\t42  1 \r", &c, &reason), 1);
        assert_int_equal(c.pid, 42);
        assert_true(c.protect);
}

static void test_ctl_blank_line_is_no_command(void **state) {
        CtlCommand c = { .pid = 9 };
        const char *reason = NULL;

        assert_int_equal(parse("", &c, &reason), 0);
        assert_int_equal(parse("   \t\r", &c, &reason), 0);
        assert_int_equal(c.pid, 9);
        assert_null(reason);
}

static void test_ctl_rejects_unknown_verb(void **state) {
        CtlCommand c;
        const char *reason = NULL;

        assert_int_equal(parse("protect 1234 1", &c, &reason), -EOPNOTSUPP);
        assert_non_null(strstr(reason, "unknown command"));
        /* The module matched a 13-byte prefix; we want the word itself. */
        assert_int_equal(parse("setprotectionX1234 1", &c, &reason), -EOPNOTSUPP);
        assert_int_equal(parse("SETPROTECTION 1234 1", &c, &reason), -EOPNOTSUPP);
}

static void test_ctl_rejects_missing_or_zero_pid(void **state) {
        CtlCommand c;
        const char *reason = NULL;

        assert_int_equal(parse("setprotection", &c, &reason), -EINVAL);
        assert_string_equal(reason, "no pid was supplied");
        assert_int_equal(parse("setprotection 0 1", &c, &reason), -ERANGE);
        assert_non_null(strstr(reason, "out of range"));
}

static void test_ctl_rejects_negative_overflowing_and_non_numeric_pid(void **state) {
        CtlCommand c;
        const char *reason = NULL;

        assert_int_equal(parse("setprotection -5 1", &c, &reason), -EINVAL);
        assert_non_null(strstr(reason, "not a number"));
        assert_int_equal(parse("setprotection abc 1", &c, &reason), -EINVAL);
        assert_int_equal(parse("setprotection 12x 1", &c, &reason), -EINVAL);
        assert_int_equal(parse("setprotection 089 1", &c, &reason), -EINVAL);
        assert_int_equal(parse("setprotection 4194305 1", &c, &reason), -ERANGE);
        assert_int_equal(parse("setprotection 99999999999999999999999 1", &c, &reason), -ERANGE);
        assert_int_equal(parse("setprotection 4294967297 1", &c, &reason), -ERANGE);
}

static void test_ctl_rejects_flag_other_than_0_or_1(void **state) {
        CtlCommand c;
        const char *reason = NULL;

        assert_int_equal(parse("setprotection 12 2", &c, &reason), -EINVAL);
        assert_string_equal(reason, "the protection flag must be 0 or 1");
        assert_int_equal(parse("setprotection 12 -1", &c, &reason), -EINVAL);
        assert_int_equal(parse("setprotection 12 yes", &c, &reason), -EINVAL);
}

static void test_ctl_rejects_trailing_garbage(void **state) {
        CtlCommand c;
        const char *reason = NULL;

        assert_int_equal(parse("setprotection 12 1 extra", &c, &reason), -EINVAL);
        assert_non_null(strstr(reason, "trailing garbage"));
        assert_int_equal(parse("setprotection 12 1 a b c d e f", &c, &reason), -EINVAL);
}

static void test_ctl_rejects_line_over_4096_bytes(void **state) {
        char line[OOMPROTECT_CTL_LINE_MAX + 2];
        CtlCommand c;
        const char *reason = NULL;

        /* Exactly 4096 bytes is allowed (padding blanks). */
        memset(line, ' ', sizeof(line));
        memcpy(line, "setprotection 5 1", 17);
        assert_int_equal(ctl_parse_line(line, OOMPROTECT_CTL_LINE_MAX, &c, &reason), 1);
        assert_int_equal(ctl_parse_line(line, OOMPROTECT_CTL_LINE_MAX + 1, &c, &reason), -E2BIG);
        assert_non_null(strstr(reason, "4096"));
}

static void test_ctl_rejects_binary_garbage_and_nul_bytes(void **state) {
        const char nul[] = "setprotection 5\0 1";
        const char bin[] = "\x01\xff\xfe setprotection";
        CtlCommand c;
        const char *reason = NULL;

        assert_int_equal(ctl_parse_line(nul, sizeof(nul) - 1, &c, &reason), -EINVAL);
        assert_non_null(strstr(reason, "NUL"));
        assert_int_equal(ctl_parse_line(bin, sizeof(bin) - 1, &c, &reason), -EOPNOTSUPP);
}

/* The reader: collects what a FIFO delivers into lines. */
typedef struct Seen {
        char lines[8][64];
        bool too_long[8];
        size_t n;
} Seen;

static void collect(const char *line, size_t len, bool too_long, void *userdata) {
        Seen *s = userdata;

        assert_true(s->n < 8);
        snprintf(s->lines[s->n], sizeof(s->lines[s->n]), "%.*s", (int) MIN(len, 63), line);
        s->too_long[s->n++] = too_long;
}

static void test_reader_splits_several_lines_per_write(void **state) {
        CtlReader r = {};
        Seen s = {};
        const char data[] = "setprotection 1 1\nsetprotection 2 0\n";

        ctl_reader_feed(&r, data, strlen(data), collect, &s);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.lines[0], "setprotection 1 1");
        assert_string_equal(s.lines[1], "setprotection 2 0");
}

static void test_reader_joins_a_line_split_across_reads(void **state) {
        CtlReader r = {};
        Seen s = {};

        ctl_reader_feed(&r, "setprot", 7, collect, &s);
        assert_int_equal(s.n, 0);
        ctl_reader_feed(&r, "ection 9 1\nsetpro", 17, collect, &s);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.lines[0], "setprotection 9 1");
        /* The writer closed mid-line: the rest comes out at the end of the stream. */
        ctl_reader_flush(&r, collect, &s);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.lines[1], "setpro");
        ctl_reader_flush(&r, collect, &s);
        assert_int_equal(s.n, 2);
}

static void test_reader_reports_a_1mb_line_once_and_recovers(void **state) {
        const size_t big = 1024 * 1024;
        _cleanup_free_ char *data = malloc(big);
        CtlReader r = {};
        Seen s = {};

        assert_non_null(data);
        memset(data, 'A', big);
        for (size_t off = 0; off < big; off += 1000)
                ctl_reader_feed(&r, data + off, MIN(1000, big - off), collect, &s);
        ctl_reader_feed(&r, "\nsetprotection 3 1\n", 19, collect, &s);
        assert_int_equal(s.n, 2);
        assert_true(s.too_long[0]);
        assert_false(s.too_long[1]);
        assert_string_equal(s.lines[1], "setprotection 3 1");
}

static void test_reader_overlong_line_at_eof_is_not_delivered_twice(void **state) {
        char data[OOMPROTECT_CTL_LINE_MAX + 10];
        CtlReader r = {};
        Seen s = {};

        memset(data, 'B', sizeof(data));
        ctl_reader_feed(&r, data, sizeof(data), collect, &s);
        ctl_reader_flush(&r, collect, &s);
        assert_int_equal(s.n, 1);
        assert_true(s.too_long[0]);
}

static void test_status_matches_module_format_byte_for_byte(void **state) {
        const StatusEntry e[] = { { 1234, "sshd" }, { 98765, "postgres" }, { 7, "a-fifteen-chars" } };
        const char expected[] = "OOM protected processes:\n"
                                "PID        NAME            \n"
                                "---        ----            \n"
                                "1234       sshd            \n"
                                "98765      postgres        \n"
                                "7          a-fifteen-chars \n";
        size_t len;
        _cleanup_free_ char *s = ctl_format_status(e, 3, &len);

        assert_non_null(s);
        assert_int_equal(len, sizeof(expected) - 1);
        assert_memory_equal(s, expected, sizeof(expected) - 1);
}

static void test_status_with_no_process_has_only_the_header(void **state) {
        _cleanup_free_ char *s = ctl_format_status(NULL, 0, NULL);

        assert_string_equal(s, "OOM protected processes:\n"
                               "PID        NAME            \n"
                               "---        ----            \n");
}

static void test_status_neutralizes_control_characters_in_comm(void **state) {
        const StatusEntry e[] = { { 42, "evil\n1 fake" } };
        _cleanup_free_ char *s = ctl_format_status(e, 1, NULL);

        assert_non_null(strstr(s, "42         evil?1 fake     \n"));
        assert_null(strstr(s, "\n1 fake"));
}

static void test_status_masks_escapes_c1_and_invalid_utf8_in_comm(void **state) {
        const StatusEntry e[] = { { 43, "\033[2Jx\xc2\x9b\xff\xc3\xa9" } };
        _cleanup_free_ char *s = ctl_format_status(e, 1, NULL);

        /* ESC, the two bytes of U+009B (CSI), a stray 0xff: each '?'; a valid "é" stays. */
        assert_non_null(strstr(s, "43         ?[2Jx???\xc3\xa9      \n"));
        assert_null(strchr(s, '\033'));
}

static void test_status_scales_to_ten_thousand_entries(void **state) {
        const size_t n = 10000;
        _cleanup_free_ StatusEntry *e = calloc(n, sizeof(StatusEntry));
        size_t len;

        assert_non_null(e);
        for (size_t i = 0; i < n; i++)
                e[i] = (StatusEntry) { .pid = 4194304 - (pid_t) i, .comm = "fifteen-chars-x" };
        _cleanup_free_ char *s = ctl_format_status(e, n, &len);
        assert_int_equal(len, 25 + 28 * 2 + 28 * n);
        assert_int_equal(strlen(s), len);
}

static void test_usage_names_the_real_directory(void **state) {
        _cleanup_free_ char *u = ctl_format_usage("/run/oom_kill_protection");

        assert_string_equal(u, "Usage:\n"
                               "cat /run/oom_kill_protection/status\n"
                               "echo \"setprotection <pid> [0/1]\" > /run/oom_kill_protection/ctl\n");
}

static void test_escape_quotes_control_bytes_quotes_and_backslashes(void **state) {
        static const char line[] = "set\x01\t\"q\"\\\xff\r\n\0x";
        _cleanup_free_ char *e = ctl_escape_line(line, sizeof(line) - 1, 64);

        assert_string_equal(e, "set\\x01\\t\\\"q\\\"\\\\\\xff\\r\\n\\x00x");
}

static void test_escape_cuts_long_lines(void **state) {
        _cleanup_free_ char *e = ctl_escape_line("abcdefgh", 8, 3), *whole = ctl_escape_line("abc", 3, 3);

        assert_string_equal(e, "abc...");
        assert_string_equal(whole, "abc");
}

static void test_reply_is_ok_or_err_with_the_errno_name(void **state) {
        char buf[CTL_REPLY_MAX];

        assert_int_equal(ctl_format_reply(0, NULL, buf), 3);
        assert_string_equal(buf, "OK\n");
        assert_int_equal(ctl_format_reply(1, "ignored", buf), 3);
        assert_string_equal(buf, "OK\n");
        ctl_format_reply(-ESRCH, "No process with PID 4242.", buf);
        assert_string_equal(buf, "ERR ESRCH No process with PID 4242.\n");
        ctl_format_reply(-E2BIG, CTL_REASON_TOO_LONG, buf);
        assert_string_equal(buf, "ERR E2BIG the line is longer than 4096 bytes\n");
        /* Without a reason, the errno's own text. */
        ctl_format_reply(-EPERM, NULL, buf);
        assert_string_equal(buf, "ERR EPERM Operation not permitted\n");
}

static void test_reply_cannot_be_forged_by_a_reason_or_overflow(void **state) {
        char buf[CTL_REPLY_MAX], reason[2000];
        size_t n;

        ctl_format_reply(-EPERM, "PID 7 (evil\nOK) is a kernel thread.", buf);
        assert_string_equal(buf, "ERR EPERM PID 7 (evil?OK) is a kernel thread.\n");
        memset(reason, 'r', sizeof(reason) - 1);
        reason[sizeof(reason) - 1] = '\0';
        n = ctl_format_reply(-EINVAL, reason, buf);
        assert_int_equal(n, CTL_REPLY_MAX - 1);
        assert_int_equal(strlen(buf), n);
        assert_int_equal(buf[n - 1], '\n');
        assert_null(memchr(buf, '\n', n - 1));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ctl_parses_setprotection_on_and_off),
                cmocka_unit_test(test_ctl_reads_pid_in_base_0_like_the_module),
                cmocka_unit_test(test_ctl_omitted_flag_means_protect),
                cmocka_unit_test(test_ctl_tolerates_blanks_tabs_and_crlf),
                cmocka_unit_test(test_ctl_blank_line_is_no_command),
                cmocka_unit_test(test_ctl_rejects_unknown_verb),
                cmocka_unit_test(test_ctl_rejects_missing_or_zero_pid),
                cmocka_unit_test(test_ctl_rejects_negative_overflowing_and_non_numeric_pid),
                cmocka_unit_test(test_ctl_rejects_flag_other_than_0_or_1),
                cmocka_unit_test(test_ctl_rejects_trailing_garbage),
                cmocka_unit_test(test_ctl_rejects_line_over_4096_bytes),
                cmocka_unit_test(test_ctl_rejects_binary_garbage_and_nul_bytes),
                cmocka_unit_test(test_reader_splits_several_lines_per_write),
                cmocka_unit_test(test_reader_joins_a_line_split_across_reads),
                cmocka_unit_test(test_reader_reports_a_1mb_line_once_and_recovers),
                cmocka_unit_test(test_reader_overlong_line_at_eof_is_not_delivered_twice),
                cmocka_unit_test(test_status_matches_module_format_byte_for_byte),
                cmocka_unit_test(test_status_with_no_process_has_only_the_header),
                cmocka_unit_test(test_status_neutralizes_control_characters_in_comm),
                cmocka_unit_test(test_status_masks_escapes_c1_and_invalid_utf8_in_comm),
                cmocka_unit_test(test_status_scales_to_ten_thousand_entries),
                cmocka_unit_test(test_usage_names_the_real_directory),
                cmocka_unit_test(test_escape_quotes_control_bytes_quotes_and_backslashes),
                cmocka_unit_test(test_escape_cuts_long_lines),
                cmocka_unit_test(test_reply_is_ok_or_err_with_the_errno_name),
                cmocka_unit_test(test_reply_cannot_be_forged_by_a_reason_or_overflow),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
