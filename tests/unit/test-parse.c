/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"

static void test_u64_base0_reads_decimal_hex_and_octal_like_simple_strtoul(void **state) {
        uint64_t v;

        assert_int_equal(parse_u64_base0("123", &v), 0);
        assert_int_equal(v, 123);
        assert_int_equal(parse_u64_base0("0x7b", &v), 0);
        assert_int_equal(v, 123);
        assert_int_equal(parse_u64_base0("0X7B", &v), 0);
        assert_int_equal(v, 123);
        assert_int_equal(parse_u64_base0("0173", &v), 0);
        assert_int_equal(v, 123);
        assert_int_equal(parse_u64_base0("0", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_u64_base0("18446744073709551615", &v), 0);
        assert_true(v == UINT64_MAX);
}

static void test_u64_base0_rejects_garbage_signs_blanks_and_empty(void **state) {
        uint64_t v = 42;
        const char *bad[] = { "", "-1", "+1", " 1", "1 ", "12a", "0x", "0xg", "08", "09", "abc", "1\n", "0x-1" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(parse_u64_base0(bad[i], &v), -EINVAL);
        assert_int_equal(v, 42); /* untouched on failure */
        assert_int_equal(parse_u64_base0(NULL, &v), -EINVAL);
}

static void test_u64_base0_reports_overflow_as_erange(void **state) {
        uint64_t v = 7;

        assert_int_equal(parse_u64_base0("18446744073709551616", &v), -ERANGE);
        assert_int_equal(parse_u64_base0("0x10000000000000000", &v), -ERANGE);
        assert_int_equal(parse_u64_base0("99999999999999999999999999999", &v), -ERANGE);
        assert_int_equal(v, 7);
}

static void test_pid_accepts_1_to_pid_max_limit_only(void **state) {
        pid_t p = 5;

        assert_int_equal(parse_pid("1", &p), 0);
        assert_int_equal(p, 1);
        assert_int_equal(parse_pid("4194304", &p), 0);
        assert_int_equal(p, 4194304);
        assert_int_equal(parse_pid("0x10", &p), 0);
        assert_int_equal(p, 16);
        assert_int_equal(parse_pid("0", &p), -ERANGE);
        assert_int_equal(parse_pid("4194305", &p), -ERANGE);
        assert_int_equal(parse_pid("4294967297", &p), -ERANGE); /* would wrap to 1 as a 32-bit int */
        assert_int_equal(parse_pid("-5", &p), -EINVAL);
        assert_int_equal(p, 16);
}

static void test_int_range_accepts_signs_and_enforces_bounds(void **state) {
        int v = 3;

        assert_int_equal(parse_int_range("-1000", -1000, 1000, &v), 0);
        assert_int_equal(v, -1000);
        assert_int_equal(parse_int_range("+1000", -1000, 1000, &v), 0);
        assert_int_equal(v, 1000);
        assert_int_equal(parse_int_range("-1001", -1000, 1000, &v), -ERANGE);
        assert_int_equal(parse_int_range("1001", -1000, 1000, &v), -ERANGE);
        assert_int_equal(parse_int_range("99999999999999999999", -1000, 1000, &v), -ERANGE);
        assert_int_equal(parse_int_range("-2147483648", INT32_MIN, 0, &v), 0);
        assert_int_equal(v, INT32_MIN);
        assert_int_equal(parse_int_range("--1", -10, 10, &v), -EINVAL);
        assert_int_equal(parse_int_range("1.5", -10, 10, &v), -EINVAL);
        assert_int_equal(parse_int_range("", -10, 10, &v), -EINVAL);
        assert_int_equal(parse_int_range("-", -10, 10, &v), -EINVAL);
        assert_int_equal(v, INT32_MIN);
}

static void test_boolean_knows_the_usual_words(void **state) {
        assert_int_equal(parse_boolean("yes"), 1);
        assert_int_equal(parse_boolean("TRUE"), 1);
        assert_int_equal(parse_boolean("on"), 1);
        assert_int_equal(parse_boolean("1"), 1);
        assert_int_equal(parse_boolean("no"), 0);
        assert_int_equal(parse_boolean("Off"), 0);
        assert_int_equal(parse_boolean("0"), 0);
        assert_int_equal(parse_boolean("2"), -EINVAL);
        assert_int_equal(parse_boolean(""), -EINVAL);
        assert_int_equal(parse_boolean(NULL), -EINVAL);
}

static void test_size_accepts_bytes_and_binary_suffixes(void **state) {
        uint64_t v;

        assert_int_equal(parse_size("0", 0, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_size("4096", 0, &v), 0);
        assert_int_equal(v, 4096);
        assert_int_equal(parse_size("512K", 0, &v), 0);
        assert_int_equal(v, 512 * 1024);
        assert_int_equal(parse_size("64M", 0, &v), 0);
        assert_int_equal(v, 64 * 1024 * 1024);
        assert_int_equal(parse_size("64m", 0, &v), 0);
        assert_int_equal(v, 64 * 1024 * 1024);
        assert_int_equal(parse_size("2G", 0, &v), 0);
        assert_true(v == 2ULL << 30);
        assert_int_equal(parse_size("2GiB", 0, &v), 0);
        assert_true(v == 2ULL << 30);
        assert_int_equal(parse_size("3GB", 0, &v), 0);
        assert_true(v == 3ULL << 30);
        assert_int_equal(parse_size("1T", 0, &v), 0);
        assert_true(v == 1ULL << 40);
}

/* As systemd writes them: "1.5G", "infinity". */
static void test_size_accepts_decimals_with_a_unit_and_infinity(void **state) {
        uint64_t v;

        assert_int_equal(parse_size("1.5G", 0, &v), 0);
        assert_true(v == 3ULL << 29);
        assert_int_equal(parse_size("0.5K", 0, &v), 0);
        assert_int_equal(v, 512);
        assert_int_equal(parse_size("2.25MiB", 0, &v), 0);
        assert_true(v == 9ULL << 18);
        assert_int_equal(parse_size("1.1K", 0, &v), 0);
        assert_int_equal(v, 1126); /* 1126.4 rounded down */
        assert_int_equal(parse_size("0.000000001T", 0, &v), 0);
        assert_int_equal(v, 1099);
        assert_int_equal(parse_size("infinity", 0, &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(parse_size("1.5", 0, &v), -EINVAL);      /* a byte has no fraction */
        assert_int_equal(parse_size("1.G", 0, &v), -EINVAL);
        assert_int_equal(parse_size(".5G", 0, &v), -EINVAL);
        assert_int_equal(parse_size("1.0000000001G", 0, &v), -EINVAL); /* more than 9 decimals */
        assert_int_equal(parse_size("16777216.5T", 0, &v), -ERANGE);
        assert_int_equal(parse_size("Infinity", 0, &v), -EINVAL);
}

static void test_size_takes_percent_of_the_ram_given(void **state) {
        const uint64_t ram = 8ULL << 30;
        uint64_t v;

        assert_int_equal(parse_size("50%", ram, &v), 0);
        assert_true(v == 4ULL << 30);
        assert_int_equal(parse_size("100%", ram, &v), 0);
        assert_true(v == ram);
        assert_int_equal(parse_size("0%", ram, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_size("2.5%", 1000000, &v), 0);
        assert_int_equal(v, 25000);
        assert_int_equal(parse_size("101%", ram, &v), -ERANGE);
        assert_int_equal(parse_size("100.1%", ram, &v), -ERANGE);
        assert_int_equal(parse_size("5%", 0, &v), -EOPNOTSUPP);
        assert_int_equal(parse_size("%", ram, &v), -EINVAL);
        assert_int_equal(parse_size("5%%", ram, &v), -EINVAL);
        assert_int_equal(parse_size("5.%", ram, &v), -EINVAL);
        assert_int_equal(parse_size("5.25%", ram, &v), -EINVAL);
        assert_int_equal(parse_size("5%M", ram, &v), -EINVAL);
}

static void test_size_rejects_negative_overflow_and_garbage(void **state) {
        uint64_t v = 99;
        const char *bad[] = { "", "-1", "-1M", "+1", " 1M", "1M ", "1X", "1MM", "1Mb", "M", "1.5", "0x10", "1KiBB" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(parse_size(bad[i], 1 << 30, &v), -EINVAL);
        assert_int_equal(parse_size("16777216T", 0, &v), -ERANGE);
        assert_int_equal(parse_size("18446744073709551616", 0, &v), -ERANGE);
        assert_int_equal(v, 99);
}

static void test_format_bytes_is_readable(void **state) {
        char buf[FORMAT_BYTES_MAX];

        assert_string_equal(format_bytes(buf, sizeof(buf), 0), "0B");
        assert_string_equal(format_bytes(buf, sizeof(buf), 1023), "1023B");
        assert_string_equal(format_bytes(buf, sizeof(buf), 1024), "1.0K");
        assert_string_equal(format_bytes(buf, sizeof(buf), 64ULL << 20), "64.0M");
        assert_string_equal(format_bytes(buf, sizeof(buf), 1536ULL << 20), "1.5G");
        assert_string_equal(format_bytes(buf, sizeof(buf), UINT64_MAX), "15.9E");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_u64_base0_reads_decimal_hex_and_octal_like_simple_strtoul),
                cmocka_unit_test(test_u64_base0_rejects_garbage_signs_blanks_and_empty),
                cmocka_unit_test(test_u64_base0_reports_overflow_as_erange),
                cmocka_unit_test(test_pid_accepts_1_to_pid_max_limit_only),
                cmocka_unit_test(test_int_range_accepts_signs_and_enforces_bounds),
                cmocka_unit_test(test_boolean_knows_the_usual_words),
                cmocka_unit_test(test_size_accepts_bytes_and_binary_suffixes),
                cmocka_unit_test(test_size_accepts_decimals_with_a_unit_and_infinity),
                cmocka_unit_test(test_size_takes_percent_of_the_ram_given),
                cmocka_unit_test(test_size_rejects_negative_overflow_and_garbage),
                cmocka_unit_test(test_format_bytes_is_readable),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
