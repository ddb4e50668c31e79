/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "engine.h"
#include "oomprotect/protocol.h"

static void test_root_may_change_any_process(void **state) {
        Caller c = { .uid = 0, .gid = 0 };
        uid_t owner = 5;
        OpError e = {};

        assert_int_equal(auth_check_modify(&c, 100, &owner, &e), 0);
        assert_int_equal(owner, UID_ANY);
}

static void test_group_member_may_change_only_own_uid(void **state) {
        const gid_t groups[] = { 27, 100 };
        Caller by_supplementary = { .uid = 1000, .gid = 1000, .groups = groups, .n_groups = 2 };
        Caller by_primary = { .uid = 1001, .gid = 100 };
        uid_t owner = 0;
        OpError e = {};

        assert_int_equal(auth_check_modify(&by_supplementary, 100, &owner, &e), 0);
        assert_int_equal(owner, 1000);
        assert_int_equal(auth_check_modify(&by_primary, 100, &owner, &e), 0);
        assert_int_equal(owner, 1001);
}

static void test_everyone_else_is_read_only(void **state) {
        const gid_t groups[] = { 27 };
        Caller c = { .uid = 65534, .gid = 65534, .groups = groups, .n_groups = 1 };
        uid_t owner = 42;
        OpError e = {};

        assert_int_equal(auth_check_modify(&c, 100, &owner, &e), -EPERM);
        assert_string_equal(e.name, OOMPROTECT_ERROR_PERMISSION_DENIED);
        assert_non_null(strstr(e.message, "65534"));
        assert_int_equal(owner, 42);
}

static void test_unset_allow_group_admits_nobody_but_root(void **state) {
        Caller c = { .uid = 1000, .gid = (gid_t) -1 };
        uid_t owner;
        OpError e = {};

        assert_int_equal(auth_check_modify(&c, (gid_t) -1, &owner, &e), -EPERM);
        assert_int_equal(auth_resolve_group(""), (gid_t) -1);
        assert_int_equal(auth_resolve_group(NULL), (gid_t) -1);
        assert_int_equal(auth_resolve_group("no-such-group-oomprotect-test"), (gid_t) -1);
        assert_int_equal(auth_resolve_group("root"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_root_may_change_any_process),
                cmocka_unit_test(test_group_member_may_change_only_own_uid),
                cmocka_unit_test(test_everyone_else_is_read_only),
                cmocka_unit_test(test_unset_allow_group_admits_nobody_but_root),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
