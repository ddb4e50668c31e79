/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus-trusted.h"

/* The shape of a real /proc/PID/status (Linux 6.x), cut down. */
#define STATUS_HEAD "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t1\n"

static void test_parses_uids_gids_and_groups(void **state) {
        StatusIds ids = {};

        assert_int_equal(trusted_parse_status(STATUS_HEAD "Uid:\t1000\t1001\t1002\t1003\nGid:\t100\t101\t102\t103\n"
                                              "FDSize:\t64\nGroups:\t4 24 27 100 \nNStgid:\t4242\n",
                                              &ids),
                         0);
        assert_int_equal(ids.uid[0], 1000);
        assert_int_equal(ids.uid[3], 1003);
        assert_int_equal(ids.gid[1], 101);
        assert_int_equal(ids.n_groups, 4);
        assert_int_equal(ids.groups[0], 4);
        assert_int_equal(ids.groups[3], 100);
        free(ids.groups);
}

static void test_empty_groups_line_is_no_groups(void **state) {
        StatusIds ids = {};

        assert_int_equal(trusted_parse_status(STATUS_HEAD "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n", &ids), 0);
        assert_int_equal(ids.n_groups, 0);
        free(ids.groups);
}

static void test_a_key_inside_another_line_is_not_taken(void **state) {
        StatusIds ids = {};

        /* "Groups:" only as the start of a line: a process name cannot forge it. */
        assert_int_equal(trusted_parse_status("Name:\tx Groups: 0\nUid:\t5\t5\t5\t5\nGid:\t5\t5\t5\t5\n", &ids),
                         -EBADMSG);
}

static void test_refuses_malformed_status(void **state) {
        StatusIds ids = {};

        assert_int_equal(trusted_parse_status(STATUS_HEAD "Gid:\t0\t0\t0\t0\nGroups:\t\n", &ids), -EBADMSG);
        assert_int_equal(trusted_parse_status(STATUS_HEAD "Uid:\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n", &ids),
                         -EBADMSG);
        assert_int_equal(trusted_parse_status(STATUS_HEAD "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 x\n", &ids),
                         -EBADMSG);
        assert_int_equal(trusted_parse_status(STATUS_HEAD "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t4294967295\nGroups:\t\n",
                                              &ids),
                         -EBADMSG);
        assert_int_equal(trusted_parse_status("", &ids), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parses_uids_gids_and_groups),
                cmocka_unit_test(test_empty_groups_line_is_no_groups),
                cmocka_unit_test(test_a_key_inside_another_line_is_not_taken),
                cmocka_unit_test(test_refuses_malformed_status),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
