/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "oomprotect/protocol.h"
#include "op-error.h"

static void test_first_error_wins_and_code_is_returned(void **state) {
        OpError e = {};

        assert_int_equal(op_error_set(&e, -ESRCH, NULL, "first %d", 1), -ESRCH);
        assert_int_equal(op_error_set(&e, -EPERM, NULL, "second"), -EPERM);
        assert_int_equal(e.code, -ESRCH);
        assert_string_equal(e.name, OOMPROTECT_ERROR_NO_SUCH_PROCESS);
        assert_string_equal(e.message, "first 1");
        assert_int_equal(op_error_set(NULL, -EIO, NULL, "nowhere"), -EIO);
}

static void test_message_quoting_a_hostile_process_name_stays_printable_ascii(void **state) {
        OpError e = {};

        /* comm and cgroup names may hold any byte: D-Bus would refuse the reply, ctl.sock would split it. */
        op_error_set(&e, -ESRCH, NULL, "PID 5 (%s) has exited.", "\xff\xfe" "a\nb\x7f");
        assert_string_equal(e.message, "PID 5 (??a?b?) has exited.");
}

static void test_errno_maps_to_a_dbus_error_name(void **state) {
        assert_string_equal(op_error_name_from_errno(-ESRCH), OOMPROTECT_ERROR_NO_SUCH_PROCESS);
        assert_string_equal(op_error_name_from_errno(-EACCES), OOMPROTECT_ERROR_PERMISSION_DENIED);
        assert_string_equal(op_error_name_from_errno(-ERANGE), OOMPROTECT_ERROR_INVALID_ARGUMENT);
        assert_string_equal(op_error_name_from_errno(-EIO), OOMPROTECT_ERROR_BACKEND);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_first_error_wins_and_code_is_returned),
                cmocka_unit_test(test_message_quoting_a_hostile_process_name_stays_printable_ascii),
                cmocka_unit_test(test_errno_maps_to_a_dbus_error_name),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
