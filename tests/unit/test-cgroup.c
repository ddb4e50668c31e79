/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"
#include "registry.h"

static void test_slice_names_map_to_nested_paths(void **state) {
        char *p = NULL;

        assert_int_equal(cgroup_slice_to_path("protected.slice", &p), 0);
        assert_string_equal(p, "protected.slice");
        free(p);
        assert_int_equal(cgroup_slice_to_path("test-protected.slice", &p), 0);
        assert_string_equal(p, "test.slice/test-protected.slice");
        free(p);
        assert_int_equal(cgroup_slice_to_path("a-b-c.slice", &p), 0);
        assert_string_equal(p, "a.slice/a-b.slice/a-b-c.slice");
        free(p);
}

static void test_bad_slice_names_are_refused(void **state) {
        const char *bad[] = { "", ".slice", "-.slice", "a--b.slice", "-a.slice", "a-.slice", "a.service",
                              "a/b.slice", "../x.slice", "a b.slice", "slice" };
        char *p = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(cgroup_slice_to_path(bad[i], &p), -EINVAL);
        assert_null(p);
}

static void test_paths_become_relative_for_at_calls(void **state) {
        assert_string_equal(cgroup_path_to_rel("/a/b"), "a/b");
        assert_string_equal(cgroup_path_to_rel("/"), ".");
        assert_string_equal(cgroup_path_to_rel("//x"), "x");
        assert_null(cgroup_path_to_rel("a/b"));
        assert_null(cgroup_path_to_rel("/../.."));
        assert_null(cgroup_path_to_rel("/a/../b"));
        assert_null(cgroup_path_to_rel("/a/.."));
        assert_string_equal(cgroup_path_to_rel("/a..b/..c"), "a..b/..c");
        assert_null(cgroup_path_to_rel(NULL));
}

static void test_controller_lists_match_whole_words(void **state) {
        assert_true(cgroup_controller_list_has("cpuset cpu io memory hugetlb pids\n", "memory"));
        assert_true(cgroup_controller_list_has("cpu io memory", "cpu"));
        assert_false(cgroup_controller_list_has("cpuset io", "cpu"));
        assert_false(cgroup_controller_list_has("", "memory"));
        assert_false(cgroup_controller_list_has("hugetlb\n", "memory"));
}

static void test_memory_events_oom_kill_is_read(void **state) {
        const char *events = "low 0\nhigh 12\nmax 3\noom 2\noom_kill 5\noom_group_kill 0\n";
        uint64_t v = 0;

        assert_int_equal(cgroup_parse_keyed(events, "oom_kill", &v), 0);
        assert_int_equal(v, 5);
        assert_int_equal(cgroup_parse_keyed(events, "oom", &v), 0);
        assert_int_equal(v, 2);
        assert_int_equal(cgroup_parse_keyed(events, "missing", &v), -ENODATA);
        assert_int_equal(cgroup_parse_keyed("oom_kill x\n", "oom_kill", &v), -EINVAL);
        assert_int_equal(cgroup_parse_keyed("oom_kill 007\n", "oom_kill", &v), -EINVAL);
}

static void test_mountinfo_finds_the_cgroup2_mount(void **state) {
        const char *hybrid =
                "25 30 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
                "31 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
                "32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
                "33 31 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        char *p = NULL;

        assert_int_equal(cgroup_parse_mountinfo_cgroup2(hybrid, &p), 0);
        assert_string_equal(p, "/sys/fs/cgroup/unified");
        free(p);
        p = NULL;
        assert_int_equal(cgroup_parse_mountinfo_cgroup2("33 31 0:28 / /x rw - cgroup cgroup rw\n", &p), -ENOENT);
        assert_null(p);
}

/* Found by fuzz-cgroup: a short line gave "cgroup2" as the mount point; the kernel's octal escapes were kept. */
static void test_mountinfo_decodes_escapes_and_skips_short_lines(void **state) {
        char *p = NULL;

        assert_int_equal(cgroup_parse_mountinfo_cgroup2("22 2roup ro - cgroup2 none rw\n", &p), -ENOENT);
        assert_int_equal(cgroup_parse_mountinfo_cgroup2("1 2 0:3 / x rw - cgroup2 none rw\n", &p), -ENOENT);
        assert_int_equal(cgroup_parse_mountinfo_cgroup2("1 2 0:3 / /a\\000b rw - cgroup2 none rw\n", &p), -ENOENT);
        assert_int_equal(cgroup_parse_mountinfo_cgroup2("1 2 0:3 / /tmp/with\\040space rw - cgroup2 none rw\n", &p),
                         0);
        assert_string_equal(p, "/tmp/with space");
        free(p);
}

static void test_budget_arithmetic_refuses_over_budget_and_overflow(void **state) {
        assert_true(budget_allows(0, 100, 0));           /* 0 = no limit */
        assert_true(budget_allows(UINT64_MAX, 100, 0));
        assert_true(budget_allows(50, 50, 100));
        assert_false(budget_allows(51, 50, 100));
        assert_false(budget_allows(0, 101, 100));
        assert_false(budget_allows(10, UINT64_MAX, 100)); /* no wrap-around */
        assert_false(budget_allows(UINT64_MAX, 1, UINT64_MAX));
}

static Protection *make(pid_t pid, uint64_t min) {
        Protection *p = protection_new();

        assert_non_null(p);
        p->pid = pid;
        p->memory_min = min;
        return p;
}

static void test_registry_keeps_pid_order_and_the_memory_sum(void **state) {
        Registry r = {};
        const pid_t pids[] = { 500, 3, 90000, 42, 7 };

        for (size_t i = 0; i < ELEMENTSOF(pids); i++)
                assert_int_equal(registry_add(&r, make(pids[i], 10)), 0);
        assert_int_equal(r.n, 5);
        assert_int_equal(r.memory_min_sum, 50);
        for (size_t i = 1; i < r.n; i++)
                assert_true(r.items[i - 1]->pid < r.items[i]->pid);
        Protection *dup = make(42, 1);
        assert_int_equal(registry_add(&r, dup), -EEXIST);
        protection_free(dup);
        assert_non_null(registry_get(&r, 90000));
        assert_null(registry_get(&r, 8));
        Protection *p = registry_remove(&r, 42);
        assert_non_null(p);
        protection_free(p);
        assert_null(registry_remove(&r, 42));
        assert_int_equal(r.n, 4);
        assert_int_equal(r.memory_min_sum, 40);
        registry_done(&r);
        assert_int_equal(r.n, 0);
}

static void test_limit_text_max_is_no_limit(void **state) {
        static const char *const files[] = { "memory.max", "memory.high", "memory.swap.max", "pids.max" };

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                assert_false(cgroup_limit_text_limits(files[i], "max\n", UINT64_MAX));
                assert_false(cgroup_limit_text_limits(files[i], "max", UINT64_MAX));
                assert_true(cgroup_limit_text_limits(files[i], "536870912\n", UINT64_MAX));
                assert_true(cgroup_limit_text_limits(files[i], "0\n", UINT64_MAX));
                assert_true(cgroup_limit_text_limits(files[i], "maximum\n", UINT64_MAX));
        }
}

/* systemd gives every scope DefaultTasksMax=: a pids.max no lower than that is nothing a move escapes. */
static void test_limit_text_pids_counts_only_below_the_floor(void **state) {
        assert_false(cgroup_limit_text_limits("pids.max", "4915\n", 4915));
        assert_false(cgroup_limit_text_limits("pids.max", "10813\n", 4915));
        assert_true(cgroup_limit_text_limits("pids.max", "8\n", 4915));
        assert_false(cgroup_limit_text_limits("pids.max", "max\n", 4915));
        /* Other limits know no floor. */
        assert_true(cgroup_limit_text_limits("memory.max", "67108864\n", UINT64_MAX - 1));
}

static void test_limit_text_cpu_max_quota_max_is_no_limit(void **state) {
        assert_false(cgroup_limit_text_limits("cpu.max", "max 100000\n", UINT64_MAX));
        assert_false(cgroup_limit_text_limits("cpu.max", "max\n", UINT64_MAX));
        assert_true(cgroup_limit_text_limits("cpu.max", "50000 100000\n", UINT64_MAX));
}

static void test_limit_text_io_max_limits_when_any_device_is_listed(void **state) {
        assert_false(cgroup_limit_text_limits("io.max", "", UINT64_MAX));
        assert_false(cgroup_limit_text_limits("io.max", "\n", UINT64_MAX));
        assert_true(cgroup_limit_text_limits("io.max", "8:0 rbps=1048576 wbps=max riops=max wiops=max\n", UINT64_MAX));
}

static void test_clean_cgroup_paths_are_absolute_without_dot_components(void **state) {
        assert_true(cgroup_path_is_clean("/"));
        assert_true(cgroup_path_is_clean("/a.slice/b.scope"));
        assert_true(cgroup_path_is_clean("/a/..b/c.."));
        assert_false(cgroup_path_is_clean(NULL));
        assert_false(cgroup_path_is_clean(""));
        assert_false(cgroup_path_is_clean("a/b"));
        assert_false(cgroup_path_is_clean("/a/../b"));
        assert_false(cgroup_path_is_clean("/.."));
        assert_false(cgroup_path_is_clean("/a/."));
        assert_false(cgroup_path_is_clean("/a//b"));
        assert_false(cgroup_path_is_clean("/a/"));
        assert_false(cgroup_path_is_clean("/a\nb"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_clean_cgroup_paths_are_absolute_without_dot_components),
                cmocka_unit_test(test_slice_names_map_to_nested_paths),
                cmocka_unit_test(test_limit_text_pids_counts_only_below_the_floor),
                cmocka_unit_test(test_bad_slice_names_are_refused),
                cmocka_unit_test(test_paths_become_relative_for_at_calls),
                cmocka_unit_test(test_controller_lists_match_whole_words),
                cmocka_unit_test(test_memory_events_oom_kill_is_read),
                cmocka_unit_test(test_mountinfo_finds_the_cgroup2_mount),
                cmocka_unit_test(test_mountinfo_decodes_escapes_and_skips_short_lines),
                cmocka_unit_test(test_budget_arithmetic_refuses_over_budget_and_overflow),
                cmocka_unit_test(test_registry_keeps_pid_order_and_the_memory_sum),
                cmocka_unit_test(test_limit_text_max_is_no_limit),
                cmocka_unit_test(test_limit_text_cpu_max_quota_max_is_no_limit),
                cmocka_unit_test(test_limit_text_io_max_limits_when_any_device_is_listed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
