/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "oomprotect/protocol.h"
#include "proc.h"

static void test_stat_reads_comm_state_ppid_flags_and_starttime(void **state) {
        const char *line = "1234 (sshd) S 1 1234 1234 0 -1 4194560 1402 0 3 0 2 1 0 0 20 0 1 0 5678 "
                           "16838656 1986 18446744073709551615 1 1 0 0 0 0 0 4096 81925 0 0 0 17 0 0 0 0 0 0\n";
        ProcStat s;

        assert_int_equal(proc_parse_stat(line, &s), 0);
        assert_string_equal(s.comm, "sshd");
        assert_int_equal(s.state, 'S');
        assert_int_equal(s.ppid, 1);
        assert_int_equal(s.flags, 4194560);
        assert_int_equal(s.starttime, 5678);
}

static void test_stat_comm_may_hold_spaces_and_parentheses(void **state) {
        const char *line = "77 (a) b (c)) Z 5 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0\n";
        ProcStat s;

        assert_int_equal(proc_parse_stat(line, &s), 0);
        assert_string_equal(s.comm, "a) b (c)");
        assert_int_equal(s.state, 'Z');
        assert_int_equal(s.ppid, 5);
        assert_int_equal(s.starttime, 99);
}

static void test_stat_flags_mark_kernel_threads(void **state) {
        const char *line = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 2 0 0\n";
        ProcStat s;
        ProcInfo i = { .pid = 2 };
        OpError e = {};

        assert_int_equal(proc_parse_stat(line, &s), 0);
        assert_true(s.flags & PF_KTHREAD_FLAG);
        i.stat = s;
        assert_int_equal(proc_check_protectable(&i, 999, &e), -EPERM);
        assert_string_equal(e.name, OOMPROTECT_ERROR_INVALID_PROCESS);
        assert_non_null(strstr(e.message, "kernel thread"));
}

static void test_stat_rejects_truncated_and_garbage(void **state) {
        ProcStat s = { .ppid = 42 };

        assert_int_equal(proc_parse_stat("", &s), -EINVAL);
        assert_int_equal(proc_parse_stat("12 sshd S 1", &s), -EINVAL);
        assert_int_equal(proc_parse_stat("12 (sshd) S 1 2 3", &s), -EINVAL);
        assert_int_equal(proc_parse_stat(")( S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", &s), -EINVAL);
        assert_int_equal(s.ppid, 42);
}

static void test_check_protectable_has_a_distinct_reason_for_each_refusal(void **state) {
        ProcInfo init = { .pid = 1, .stat = { .state = 'S' } };
        ProcInfo zombie = { .pid = 50, .stat = { .state = 'Z' } };
        ProcInfo self = { .pid = 60, .stat = { .state = 'R' } };
        ProcInfo fine = { .pid = 70, .stat = { .state = 'S' } };
        OpError e1 = {}, e2 = {}, e3 = {}, e4 = {};

        assert_int_equal(proc_check_protectable(&init, 60, &e1), -EPERM);
        assert_non_null(strstr(e1.message, "PID 1"));
        assert_int_equal(proc_check_protectable(&zombie, 60, &e2), -ESRCH);
        assert_string_equal(e2.name, OOMPROTECT_ERROR_NO_SUCH_PROCESS);
        assert_non_null(strstr(e2.message, "zombie"));
        assert_int_equal(proc_check_protectable(&self, 60, &e3), -EPERM);
        assert_non_null(strstr(e3.message, "oomprotectd itself"));
        assert_int_equal(proc_check_protectable(&fine, 60, &e4), 0);
        assert_int_equal(e4.code, 0);
}

static void test_cgroup_v2_line_is_found_among_v1_lines(void **state) {
        const char *hybrid = "9:name=systemd:/\n4:memory:/x\n0::/user.slice/session-1.scope\n";
        char *p = NULL;

        assert_int_equal(proc_parse_cgroup_v2(hybrid, &p), 0);
        assert_string_equal(p, "/user.slice/session-1.scope");
        free(p);
        assert_int_equal(proc_parse_cgroup_v2("0::/\n", &p), 0);
        assert_string_equal(p, "/");
        free(p);
}

static void test_cgroup_v2_missing_or_bad_line(void **state) {
        char *p = NULL;

        assert_int_equal(proc_parse_cgroup_v2("4:memory:/x\n", &p), -ENODATA);
        assert_int_equal(proc_parse_cgroup_v2("", &p), -ENODATA);
        assert_int_equal(proc_parse_cgroup_v2("0::\n", &p), -EINVAL);
        assert_int_equal(proc_parse_cgroup_v2("0::relative\n", &p), -EINVAL);
        assert_null(p);
}

static void test_status_uid_is_the_real_uid(void **state) {
        uid_t uid = 7;

        assert_int_equal(proc_parse_status_uid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\n", &uid), 0);
        assert_int_equal(uid, 1000);
        assert_int_equal(proc_parse_status_uid("Uid:\t5\t5\t5\t5\n", &uid), 0);
        assert_int_equal(uid, 5);
        assert_int_equal(proc_parse_status_uid("Name:\tx\n", &uid), -EINVAL);
}

static void test_status_tgid_names_a_threads_process(void **state) {
        pid_t tgid = 3;

        assert_int_equal(proc_parse_status_tgid("Name:\tx\nTgid:\t4000\nPid:\t4001\n", &tgid), 0);
        assert_int_equal(tgid, 4000);
        assert_int_equal(proc_parse_status_tgid("Name:\tx\n", &tgid), -EINVAL);
        assert_int_equal(proc_parse_status_tgid("Name:\tx\nTgid:\t0\n", &tgid), -EINVAL);
        assert_int_equal(tgid, 4000);
}

static void test_status_uids_are_real_effective_saved_and_fs(void **state) {
        uid_t u[4] = {};

        assert_int_equal(proc_parse_status_uids("Name:\tx\nUid:\t1000\t0\t0\t1000\nGid:\t0\n", u), 0);
        assert_int_equal(u[0], 1000);
        assert_int_equal(u[1], 0);
        assert_int_equal(u[2], 0);
        assert_int_equal(u[3], 1000);
        assert_int_equal(proc_parse_status_uids("Uid:\t5\t6\t7\t8", u), 0);
        assert_int_equal(u[3], 8);
        assert_int_equal(proc_parse_status_uids("Name:\tx\nUid:\t1000\t0\n", u), -EINVAL);
        assert_int_equal(proc_parse_status_uids("Uid:\t1\t2\t3\t4\t5\n", u), -EINVAL);
        assert_int_equal(proc_parse_status_uids("Uid:\t4294967295\t0\t0\t0\n", u), -EINVAL);
        assert_int_equal(proc_parse_status_uids("Name:\tUid:\n", u), -EINVAL);
}

static void test_only_a_process_whose_every_uid_is_the_callers_and_dumpable_is_owned(void **state) {
        ProcInfo mine = { .pid = 9, .uids = { 1000, 1000, 1000, 1000 }, .dump_owner = 1000 };
        ProcInfo setuid_root = { .pid = 9, .uids = { 1000, 0, 0, 0 }, .dump_owner = 0 };
        ProcInfo saved_root = { .pid = 9, .uids = { 1000, 1000, 0, 1000 }, .dump_owner = 1000 };
        ProcInfo fs_other = { .pid = 9, .uids = { 1000, 1000, 1000, 0 }, .dump_owner = 1000 };
        ProcInfo undumpable = { .pid = 9, .uids = { 1000, 1000, 1000, 1000 }, .dump_owner = 0 };
        OpError e1 = {}, e2 = {}, e3 = {}, e4 = {};

        assert_int_equal(proc_check_owned_by(&mine, 1000, NULL), 0);
        assert_int_equal(proc_check_owned_by(&setuid_root, 1000, &e1), -EPERM);
        assert_string_equal(e1.name, OOMPROTECT_ERROR_PERMISSION_DENIED);
        assert_non_null(strstr(e1.message, "effective uid 0"));
        assert_int_equal(proc_check_owned_by(&saved_root, 1000, &e2), -EPERM);
        assert_non_null(strstr(e2.message, "saved uid 0"));
        assert_int_equal(proc_check_owned_by(&fs_other, 1000, &e3), -EPERM);
        assert_non_null(strstr(e3.message, "filesystem uid 0"));
        assert_int_equal(proc_check_owned_by(&undumpable, 1000, &e4), -EPERM);
        assert_non_null(strstr(e4.message, "not dumpable"));
        assert_int_equal(proc_check_owned_by(&mine, 1001, NULL), -EPERM);
}

static void test_status_threads_and_a_zombie_leader_with_live_threads_is_alive(void **state) {
        ProcInfo leader_gone = { .pid = 80, .stat = { .state = 'Z' }, .threads = 3 };
        ProcInfo zombie = { .pid = 81, .stat = { .state = 'Z' }, .threads = 1 };
        ProcInfo dead = { .pid = 82, .stat = { .state = 'X' }, .threads = 2 };
        unsigned n = 0;

        assert_int_equal(proc_parse_status_threads("Name:\tx\nThreads:\t3\nSigQ:\t0/1\n", &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(proc_parse_status_threads("Name:\tx\n", &n), -EINVAL);
        assert_int_equal(proc_check_protectable(&leader_gone, 1, NULL), 0);
        assert_int_equal(proc_check_protectable(&zombie, 1, NULL), -ESRCH);
        assert_int_equal(proc_check_protectable(&dead, 1, NULL), -ESRCH);
}

static void test_descendants_walk_the_tree_and_survive_cycles(void **state) {
        const PidPair pairs[] = { { 10, 1 }, { 11, 10 }, { 12, 10 }, { 13, 11 }, { 20, 1 }, { 30, 31 }, { 31, 30 } };
        pid_t *d = NULL;
        size_t n = 0;

        assert_int_equal(proc_descendants_from_pairs(pairs, ELEMENTSOF(pairs), 10, &d, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(d[0], 11);
        assert_int_equal(d[1], 12);
        assert_int_equal(d[2], 13);
        free(d);
        assert_int_equal(proc_descendants_from_pairs(pairs, ELEMENTSOF(pairs), 30, &d, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(d[0], 31);
        free(d);
        assert_int_equal(proc_descendants_from_pairs(pairs, ELEMENTSOF(pairs), 99, &d, &n), 0);
        assert_int_equal(n, 0);
        free(d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stat_reads_comm_state_ppid_flags_and_starttime),
                cmocka_unit_test(test_stat_comm_may_hold_spaces_and_parentheses),
                cmocka_unit_test(test_stat_flags_mark_kernel_threads),
                cmocka_unit_test(test_stat_rejects_truncated_and_garbage),
                cmocka_unit_test(test_check_protectable_has_a_distinct_reason_for_each_refusal),
                cmocka_unit_test(test_cgroup_v2_line_is_found_among_v1_lines),
                cmocka_unit_test(test_cgroup_v2_missing_or_bad_line),
                cmocka_unit_test(test_status_uid_is_the_real_uid),
                cmocka_unit_test(test_status_tgid_names_a_threads_process),
                cmocka_unit_test(test_status_uids_are_real_effective_saved_and_fs),
                cmocka_unit_test(test_only_a_process_whose_every_uid_is_the_callers_and_dumpable_is_owned),
                cmocka_unit_test(test_status_threads_and_a_zombie_leader_with_live_threads_is_alive),
                cmocka_unit_test(test_descendants_walk_the_tree_and_survive_cycles),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
