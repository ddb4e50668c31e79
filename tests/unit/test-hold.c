/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pure part of in-place protection: cgroup chains, unit names, and what each held cgroup gets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "hold.h"
#include "macro.h"

#define MiB (1024ULL * 1024ULL)

/* ---- cgroup_is_ancestor ---- */

static void test_ancestor_is_a_strict_path_prefix_at_a_slash(void **state) {
        assert_true(cgroup_is_ancestor("/a", "/a/b"));
        assert_true(cgroup_is_ancestor("/a", "/a/b/c"));
        assert_true(cgroup_is_ancestor("/a/b", "/a/b/c"));
        assert_false(cgroup_is_ancestor("/a", "/ab"));
        assert_false(cgroup_is_ancestor("/a", "/a"));
        assert_false(cgroup_is_ancestor("/a", "/a/"));
        assert_false(cgroup_is_ancestor("/a/b", "/a"));
        assert_false(cgroup_is_ancestor("/a/b", "/a/c/d"));
}

static void test_root_is_the_ancestor_of_every_other_cgroup(void **state) {
        assert_true(cgroup_is_ancestor("/", "/a"));
        assert_true(cgroup_is_ancestor("/", "/a/b"));
        assert_false(cgroup_is_ancestor("/", "/"));
}

/* ---- unit_name_owns_cgroup ---- */

static void test_unit_names_that_own_a_cgroup(void **state) {
        static const char *const yes[] = { "x.service", "user.slice", "a-b.slice", "session-1.scope",
                                           "sshd.socket", "home.mount", "dev-sda2.swap" };
        static const char *const no[] = { "payload", "x.target", "x.timer", "x.device", ".service",
                                          "service", "x.service.d", "" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                assert_true(unit_name_owns_cgroup(yes[i]));
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                assert_false(unit_name_owns_cgroup(no[i]));
}

/* ---- hold_chain ---- */

static void test_chain_lists_every_prefix_from_the_top_with_its_unit(void **state) {
        char **paths = NULL, **units = NULL;
        size_t n = 0;

        assert_int_equal(hold_chain("/a.slice/a-b.slice/x.service", &paths, &units, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(paths[0], "/a.slice");
        assert_string_equal(paths[1], "/a.slice/a-b.slice");
        assert_string_equal(paths[2], "/a.slice/a-b.slice/x.service");
        assert_string_equal(units[0], "a.slice");
        assert_string_equal(units[1], "a-b.slice");
        assert_string_equal(units[2], "x.service");
        hold_chain_free(paths, units, n);
}

static void test_chain_has_no_unit_from_the_first_component_that_is_none(void **state) {
        char **paths = NULL, **units = NULL;
        size_t n = 0;

        /* A delegated subtree: a container's own cgroups below its unit, even one that looks like a unit name. */
        assert_int_equal(hold_chain("/system.slice/docker-1.scope/payload/inner.service", &paths, &units, &n), 0);
        assert_int_equal(n, 4);
        assert_string_equal(units[0], "system.slice");
        assert_string_equal(units[1], "docker-1.scope");
        assert_null(units[2]);
        assert_null(units[3]);
        assert_string_equal(paths[3], "/system.slice/docker-1.scope/payload/inner.service");
        hold_chain_free(paths, units, n);
}

static void test_chain_of_a_top_level_cgroup_is_itself(void **state) {
        char **paths = NULL, **units = NULL;
        size_t n = 0;

        assert_int_equal(hold_chain("/init.scope", &paths, &units, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(paths[0], "/init.scope");
        assert_string_equal(units[0], "init.scope");
        hold_chain_free(paths, units, n);
}

static void test_chain_rejects_root_and_relative_paths(void **state) {
        static const char *const bad[] = { "/", "", "a.slice/x.service" };
        char **paths = (char **) 0x1, **units = (char **) 0x1;
        size_t n = 99;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(hold_chain(bad[i], &paths, &units, &n), -EINVAL);
        assert_int_equal(hold_chain(NULL, &paths, &units, &n), -EINVAL);
        /* Untouched on failure. */
        assert_ptr_equal(paths, (char **) 0x1);
        assert_int_equal(n, 99);
}

/* hold.c means to ("a \"//\" or a trailing '/'"): an empty component is no cgroup. */
static void test_chain_rejects_empty_components(void **state) {
        static const char *const bad[] = { "/a.slice//x.service", "/a.slice/" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char **paths = NULL, **units = NULL;
                size_t n = 0;
                int r = hold_chain(bad[i], &paths, &units, &n);
                if (r >= 0)
                        hold_chain_free(paths, units, n);
                assert_int_equal(r, -EINVAL);
        }
}

/* ---- the table ---- */

static void test_table_keeps_the_first_originals_of_a_cgroup(void **state) {
        _cleanup_(hold_table_done) HoldTable t = {};
        CgroupHold *h;

        assert_int_equal(hold_table_add(&t, "/a.slice", "a.slice", 10, 20), 0);
        assert_int_equal(hold_table_add(&t, "/a.slice", "a.slice", 99, 99), -EEXIST);
        assert_int_equal(hold_table_add(&t, "/a.slice/payload", NULL, 0, 0), 0);
        assert_int_equal(t.n, 2);
        h = hold_table_get(&t, "/a.slice");
        assert_non_null(h);
        assert_int_equal(h->original_min, 10);
        assert_int_equal(h->original_low, 20);
        assert_null(hold_table_get(&t, "/a.slice/payload")->unit);
        assert_null(hold_table_get(&t, "/b.slice"));
        hold_table_remove(&t, 0);
        assert_int_equal(t.n, 1);
        assert_null(hold_table_get(&t, "/a.slice"));
        assert_non_null(hold_table_get(&t, "/a.slice/payload"));
}

/* ---- hold_compute ---- */

static void test_target_gets_the_larger_of_its_original_and_its_demand(void **state) {
        _cleanup_(hold_table_done) HoldTable t = {};
        uint64_t min[2], low[2];

        assert_int_equal(hold_table_add(&t, "/a.slice", "a.slice", 0, 0), 0);
        assert_int_equal(hold_table_add(&t, "/a.slice/x.service", "x.service", 10 * MiB, 0), 0);
        HoldDemand d[] = { { .cgroup = "/a.slice/x.service", .min = 64 * MiB, .low = 128 * MiB } };
        hold_compute(&t, d, ELEMENTSOF(d), min, low);
        assert_int_equal(min[1], 64 * MiB);
        assert_int_equal(low[1], 128 * MiB);
        /* The ancestor: its original plus the target's delta (64M - 10M), but at least what the target has. */
        assert_int_equal(min[0], 64 * MiB);
        assert_int_equal(low[0], 128 * MiB);
}

/* A target whose own original covers its demand is still capped by an ancestor that never covered it. */
static void test_ancestor_covers_a_target_whose_original_was_enough(void **state) {
        _cleanup_(hold_table_done) HoldTable t = {};
        uint64_t min[2], low[2];

        assert_int_equal(hold_table_add(&t, "/system.slice", "system.slice", 0, 0), 0);
        assert_int_equal(hold_table_add(&t, "/system.slice/db.service", "db.service", 200 * MiB, 0), 0);
        HoldDemand d[] = { { .cgroup = "/system.slice/db.service", .min = 100 * MiB } };
        hold_compute(&t, d, ELEMENTSOF(d), min, low);
        assert_int_equal(min[1], 200 * MiB);
        assert_int_equal(min[0], 200 * MiB);
        assert_int_equal(low[0], 0);
}

static void test_every_ancestor_is_raised_by_the_targets_delta(void **state) {
        _cleanup_(hold_table_done) HoldTable t = {};
        uint64_t min[3], low[3];

        assert_int_equal(hold_table_add(&t, "/a.slice", "a.slice", 100 * MiB, 5 * MiB), 0);
        assert_int_equal(hold_table_add(&t, "/a.slice/a-b.slice", "a-b.slice", 20 * MiB, 0), 0);
        assert_int_equal(hold_table_add(&t, "/a.slice/a-b.slice/x.service", "x.service", 0, 0), 0);
        HoldDemand d[] = { { .cgroup = "/a.slice/a-b.slice/x.service", .min = 30 * MiB, .low = 1 * MiB } };
        hold_compute(&t, d, ELEMENTSOF(d), min, low);
        assert_int_equal(min[2], 30 * MiB);
        assert_int_equal(min[1], 50 * MiB);
        assert_int_equal(min[0], 130 * MiB);
        assert_int_equal(low[2], 1 * MiB);
        assert_int_equal(low[1], 1 * MiB);
        assert_int_equal(low[0], 6 * MiB);
}

static void test_two_targets_under_one_ancestor_add_up(void **state) {
        _cleanup_(hold_table_done) HoldTable t = {};
        uint64_t min[3], low[3];

        assert_int_equal(hold_table_add(&t, "/system.slice", "system.slice", 100 * MiB, 0), 0);
        assert_int_equal(hold_table_add(&t, "/system.slice/x.service", "x.service", 10 * MiB, 0), 0);
        assert_int_equal(hold_table_add(&t, "/system.slice/y.service", "y.service", 0, 0), 0);
        HoldDemand d[] = {
                { .cgroup = "/system.slice/x.service", .min = 50 * MiB },
                { .cgroup = "/system.slice/y.service", .min = 30 * MiB },
        };
        hold_compute(&t, d, ELEMENTSOF(d), min, low);
        assert_int_equal(min[1], 50 * MiB);
        assert_int_equal(min[2], 30 * MiB);
        assert_int_equal(min[0], (100 + 40 + 30) * MiB);
}

static void test_two_protections_of_one_cgroup_add_up(void **state) {
        _cleanup_(hold_table_done) HoldTable t = {};
        uint64_t min[2], low[2];

        assert_int_equal(hold_table_add(&t, "/a.slice", "a.slice", 0, 0), 0);
        assert_int_equal(hold_table_add(&t, "/a.slice/x.service", "x.service", 0, 0), 0);
        HoldDemand d[] = {
                { .cgroup = "/a.slice/x.service", .min = 10 * MiB },
                { .cgroup = "/a.slice/x.service", .min = 20 * MiB },
        };
        hold_compute(&t, d, ELEMENTSOF(d), min, low);
        assert_int_equal(min[1], 30 * MiB);
        assert_int_equal(min[0], 30 * MiB);
}

static void test_an_ancestor_that_is_also_a_target_gets_both(void **state) {
        _cleanup_(hold_table_done) HoldTable t = {};
        uint64_t min[2], low[2];

        assert_int_equal(hold_table_add(&t, "/a.slice", "a.slice", 100 * MiB, 0), 0);
        assert_int_equal(hold_table_add(&t, "/a.slice/x.service", "x.service", 0, 0), 0);
        HoldDemand d[] = {
                { .cgroup = "/a.slice", .min = 150 * MiB },
                { .cgroup = "/a.slice/x.service", .min = 40 * MiB },
        };
        hold_compute(&t, d, ELEMENTSOF(d), min, low);
        assert_int_equal(min[1], 40 * MiB);
        /* Its own max(100M, 150M), plus what the target below it was raised by. */
        assert_int_equal(min[0], 190 * MiB);
}

static void test_nothing_is_lowered_below_its_original(void **state) {
        _cleanup_(hold_table_done) HoldTable t = {};
        uint64_t min[3], low[3];

        assert_int_equal(hold_table_add(&t, "/a.slice", "a.slice", 100 * MiB, 7 * MiB), 0);
        assert_int_equal(hold_table_add(&t, "/a.slice/x.service", "x.service", 80 * MiB, 9 * MiB), 0);
        assert_int_equal(hold_table_add(&t, "/a.slice/y.service", "y.service", 5 * MiB, 0), 0);
        HoldDemand d[] = { { .cgroup = "/a.slice/x.service", .min = 50 * MiB, .low = 1 * MiB } };
        hold_compute(&t, d, ELEMENTSOF(d), min, low);
        assert_int_equal(min[1], 80 * MiB);
        assert_int_equal(low[1], 9 * MiB);
        assert_int_equal(min[0], 100 * MiB); /* the demand fits in the original: no delta, and it covers x's 80M */
        assert_int_equal(low[0], 9 * MiB);   /* at least x.service's memory.low */
        assert_int_equal(min[2], 5 * MiB); /* held, no demand: its original */
        assert_int_equal(low[2], 0);

        /* No demand at all: everything at its original. */
        hold_compute(&t, NULL, 0, min, low);
        assert_int_equal(min[0], 100 * MiB);
        assert_int_equal(min[1], 80 * MiB);
        assert_int_equal(min[2], 5 * MiB);
}

static void test_compute_saturates_instead_of_wrapping(void **state) {
        _cleanup_(hold_table_done) HoldTable t = {};
        uint64_t min[2], low[2];

        assert_int_equal(hold_table_add(&t, "/a.slice", "a.slice", UINT64_MAX - 1, 0), 0);
        assert_int_equal(hold_table_add(&t, "/a.slice/x.service", "x.service", 0, 0), 0);
        HoldDemand d[] = { { .cgroup = "/a.slice/x.service", .min = 10 * MiB } };
        hold_compute(&t, d, ELEMENTSOF(d), min, low);
        assert_true(min[0] == UINT64_MAX);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ancestor_is_a_strict_path_prefix_at_a_slash),
                cmocka_unit_test(test_root_is_the_ancestor_of_every_other_cgroup),
                cmocka_unit_test(test_unit_names_that_own_a_cgroup),
                cmocka_unit_test(test_chain_lists_every_prefix_from_the_top_with_its_unit),
                cmocka_unit_test(test_chain_has_no_unit_from_the_first_component_that_is_none),
                cmocka_unit_test(test_chain_of_a_top_level_cgroup_is_itself),
                cmocka_unit_test(test_chain_rejects_root_and_relative_paths),
                cmocka_unit_test(test_chain_rejects_empty_components),
                cmocka_unit_test(test_table_keeps_the_first_originals_of_a_cgroup),
                cmocka_unit_test(test_target_gets_the_larger_of_its_original_and_its_demand),
                cmocka_unit_test(test_ancestor_covers_a_target_whose_original_was_enough),
                cmocka_unit_test(test_every_ancestor_is_raised_by_the_targets_delta),
                cmocka_unit_test(test_two_targets_under_one_ancestor_add_up),
                cmocka_unit_test(test_two_protections_of_one_cgroup_add_up),
                cmocka_unit_test(test_an_ancestor_that_is_also_a_target_gets_both),
                cmocka_unit_test(test_nothing_is_lowered_below_its_original),
                cmocka_unit_test(test_compute_saturates_instead_of_wrapping),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
