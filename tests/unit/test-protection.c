/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Restore planning: where each process in a scope goes back to, and which oom_score_adj it gets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protection.h"

static ProtectionMember members[] = {
        { .pid = 201, .starttime = 9, .original_cgroup = (char *) "/elsewhere", .original_adj = 300 },
        { .pid = 202, .starttime = 9, .original_cgroup = NULL, .original_adj = 0 },
};

static Protection protection(void) {
        return (Protection) {
                .pid = 200,
                .starttime = 5,
                .original_cgroup = (char *) "/system.slice/app.service",
                .original_adj = 100,
                .applied_adj = -1000,
                .members = members,
                .n_members = ELEMENTSOF(members),
                .pidfd = -EBADF,
        };
}

static void test_protected_process_and_born_children_go_back_to_its_cgroup(void **state) {
        Protection p = protection();

        assert_string_equal(protection_restore_cgroup(&p, 200, 5), "/system.slice/app.service");
        assert_string_equal(protection_restore_cgroup(&p, 999, 7), "/system.slice/app.service");
}

static void test_members_go_back_to_their_own_cgroup(void **state) {
        Protection p = protection();

        assert_string_equal(protection_restore_cgroup(&p, 201, 9), "/elsewhere");
        /* A member recorded without a cgroup (adj-only) follows the protection. */
        assert_string_equal(protection_restore_cgroup(&p, 202, 9), "/system.slice/app.service");
}

static void test_protected_process_gets_its_original_adj_whatever_it_has_now(void **state) {
        Protection p = protection();
        int adj = 7;

        assert_true(protection_restore_adj(&p, 200, 5, -1000, &adj));
        assert_int_equal(adj, 100);
        assert_true(protection_restore_adj(&p, 200, 5, 555, &adj)); /* changed by hand meanwhile: still ours */
        assert_int_equal(adj, 100);
        assert_false(protection_restore_adj(&p, 200, 5, 100, &adj)); /* already right: nothing to write */
}

static void test_members_get_their_own_original_adj(void **state) {
        Protection p = protection();
        int adj = 7;

        assert_true(protection_restore_adj(&p, 201, 9, -1000, &adj));
        assert_int_equal(adj, 300);
        assert_true(protection_restore_adj(&p, 202, 9, -1000, &adj));
        assert_int_equal(adj, 0);
}

static void test_born_child_gets_parents_original_only_if_it_kept_the_applied_value(void **state) {
        Protection p = protection();
        int adj = 7;

        assert_true(protection_restore_adj(&p, 999, 7, -1000, &adj));
        assert_int_equal(adj, 100);
        adj = 7;
        /* It set its own value since: that is its business, not ours. */
        assert_false(protection_restore_adj(&p, 999, 7, 250, &adj));
        assert_int_equal(adj, 7);
}

/* A member exited and a child born in the scope took its PID (another start time): a child, not the member. */
static void test_newcomer_at_a_members_or_the_processs_pid_is_a_child(void **state) {
        Protection p = protection();
        int adj = 7;

        assert_string_equal(protection_restore_cgroup(&p, 201, 10), "/system.slice/app.service");
        assert_true(protection_restore_adj(&p, 201, 10, -1000, &adj));
        assert_int_equal(adj, 100); /* the protection's original, not the member's 300 */
        adj = 7;
        assert_false(protection_restore_adj(&p, 201, 10, 250, &adj)); /* its own value: left */
        assert_false(protection_restore_adj(&p, 200, 6, 250, &adj)); /* at the process's PID, but not it */
        assert_int_equal(adj, 7);
        assert_true(protection_restore_adj(&p, 200, 6, -1000, &adj));
        assert_int_equal(adj, 100);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_protected_process_and_born_children_go_back_to_its_cgroup),
                cmocka_unit_test(test_members_go_back_to_their_own_cgroup),
                cmocka_unit_test(test_protected_process_gets_its_original_adj_whatever_it_has_now),
                cmocka_unit_test(test_members_get_their_own_original_adj),
                cmocka_unit_test(test_born_child_gets_parents_original_only_if_it_kept_the_applied_value),
                cmocka_unit_test(test_newcomer_at_a_members_or_the_processs_pid_is_a_child),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
