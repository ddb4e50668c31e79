/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The real oomprotectd (no bus, no front end needed): reconcile at start,
 * exit tracking through pidfds, SIGTERM with and without RestoreOnStop=,
 * SIGKILL and restart, --check-config. Protections are made by an engine in
 * a forked stand-in for an earlier daemon, killed at a chosen instant.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "itest.h"
#include "state.h"
#include "oomprotect/protocol.h"

static Sandbox sb;
static Child kid;
static char config_path[256], log_path[256], state_path[256];
static pid_t daemon_pid;

static int setup(void **state) {
        snprintf(config_path, sizeof(config_path), "%s/oomprotectd.conf", sb.statedir);
        snprintf(log_path, sizeof(log_path), "%s/daemon.log", sb.statedir);
        snprintf(state_path, sizeof(state_path), "%s/state.json", sb.statedir);
        sandbox_write_config(&sb, config_path, NULL);
        unlink(state_path);
        assert_int_equal(sandbox_spawn(&sb, "orig-a", sb.child_adj, &kid), 0);
        return 0;
}

static int teardown(void **state) {
        if (daemon_pid > 0)
                daemon_stop(daemon_pid, SIGKILL);
        daemon_pid = 0;
        child_kill(&kid);
        /* Whatever a failed test left protected goes back through a throw-away engine. */
        Config c;
        Engine *e = NULL;
        OpError err = {};
        sandbox_config(&sb, &c);
        if (itest_engine_open(&c, &e, &err) >= 0)
                itest_unprotect_all(e, UID_ANY, "teardown");
        engine_free(e);
        config_done(&c);
        return 0;
}

/* An earlier daemon that protected pid and was SIGKILLed at point. */
static void protect_and_die_at(pid_t pid, const char *point) {
        Config c;

        sandbox_config(&sb, &c);
        engine_killed_at(&c, pid, point);
        config_done(&c);
}

static void start_daemon(void) {
        const char *args[] = { "--no-bus", "--config", config_path, NULL };

        daemon_pid = daemon_start(&sb, args, log_path);
        if (daemon_pid < 0)
                (void) !system("cat /tmp/oomprotect-itest.*/daemon.log >&2");
        assert_true(daemon_pid > 0);
}

static bool in_scope(pid_t pid) {
        _cleanup_free_ char *cg = pid_cgroup(pid);
        return cg && strstr(cg, OOMPROTECT_SCOPE_PREFIX) && pid_adj(pid) == sb.protect_adj;
}

/* What a start would load: the document and the journal after it (a "del" line ends a record). */
static bool state_mentions_pid(pid_t pid) {
        _cleanup_close_ int fd = open(sb.statedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        Protection **records = NULL;
        size_t n = 0;
        bool found = false;

        assert_true(fd >= 0);
        if (state_load(fd, &records, &n, NULL, NULL, NULL) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                found = found || records[i]->pid == pid;
        protection_array_free(records, n);
        return found;
}

static bool state_forgets(void *arg) {
        return !state_mentions_pid(*(pid_t *) arg);
}

/* The daemon saves the state before it logs the change: wait for the log line too. */
static bool log_says_exited(void *arg) {
        return file_contains(log_path, ", exited");
}

static void assert_original(pid_t pid) {
        _cleanup_free_ char *cg = pid_cgroup(pid), *want = sandbox_path(&sb, "orig-a");
        assert_string_equal(cg, want);
        assert_int_equal(pid_adj(pid), sb.child_adj);
}

static void test_daemon_reapplies_a_record_persisted_before_a_crash(void **state) {
        protect_and_die_at(kid.pid, "protect:persisted"); /* recorded, nothing applied yet */
        assert_false(in_scope(kid.pid));
        start_daemon();
        assert_true(in_scope(kid.pid));
        assert_true(file_contains(log_path, "1 protection(s) restored"));
}

static void test_daemon_forgets_a_process_that_exits_and_removes_its_scope(void **state) {
        pid_t pid = kid.pid;
        char scope[512];

        protect_and_die_at(pid, "protect:adj-applied");
        start_daemon();
        assert_true(in_scope(pid));
        snprintf(scope, sizeof(scope), "%s/" OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX, sb.slice_rel,
                 (int) pid);
        assert_true(cgroup_exists(&sb, scope));
        child_kill(&kid);
        assert_true(wait_for(state_forgets, &pid, 5000));
        assert_false(cgroup_exists(&sb, scope));
        assert_true(wait_for(log_says_exited, NULL, 5000));
}

static void test_sigterm_keeps_protections_by_default(void **state) {
        protect_and_die_at(kid.pid, "protect:adj-applied");
        start_daemon();
        assert_int_equal(daemon_stop(daemon_pid, SIGTERM), 0);
        daemon_pid = 0;
        assert_true(in_scope(kid.pid));
        assert_true(state_mentions_pid(kid.pid));
        assert_true(file_contains(log_path, "RestoreOnStop=no"));
}

static void test_sigterm_restores_everything_with_restore_on_stop(void **state) {
        sandbox_write_config(&sb, config_path, "RestoreOnStop=yes\n");
        protect_and_die_at(kid.pid, "protect:adj-applied");
        start_daemon();
        assert_true(in_scope(kid.pid));
        assert_int_equal(daemon_stop(daemon_pid, SIGTERM), 0);
        daemon_pid = 0;
        assert_original(kid.pid);
        assert_false(state_mentions_pid(kid.pid));
}

static void test_sigkill_and_restart_lose_nothing(void **state) {
        protect_and_die_at(kid.pid, "protect:adj-applied");
        start_daemon();
        assert_int_equal(daemon_stop(daemon_pid, SIGKILL) & 0x7f, SIGKILL);
        start_daemon();
        assert_true(in_scope(kid.pid));
        assert_true(state_mentions_pid(kid.pid));
}

static void test_check_config_accepts_good_and_rejects_bad_values(void **state) {
        char cmd[1024], out[256];

        snprintf(out, sizeof(out), "%s/check.out", sb.statedir);
        snprintf(cmd, sizeof(cmd), "%s --check-config --config %s >%s 2>&1", getenv("OOMPROTECT_DAEMON"),
                 config_path, out);
        assert_int_equal(WEXITSTATUS(system(cmd)), 0);
        assert_true(file_contains(out, "[Manager]"));
        assert_true(file_contains(out, sb.slice));

        sandbox_write_config(&sb, config_path, "OOMScoreAdjust=-5000\n");
        assert_int_equal(WEXITSTATUS(system(cmd)), 1);
        assert_true(file_contains(out, "oomprotectd.conf:"));
        assert_true(file_contains(out, "OOMScoreAdjust"));
}

static void test_daemon_refuses_to_start_on_an_unusable_cgroup_root(void **state) {
        const char *args[] = { "--no-bus", "--config", config_path, NULL };

        sandbox_write_config(&sb, config_path, "CgroupRoot=/tmp\n");
        assert_true(daemon_start(&sb, args, log_path) < 0);
        assert_true(file_contains(log_path, "/tmp is not a usable cgroup2 mount"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
                T(test_daemon_reapplies_a_record_persisted_before_a_crash),
                T(test_daemon_forgets_a_process_that_exits_and_removes_its_scope),
                T(test_sigterm_keeps_protections_by_default),
                T(test_sigterm_restores_everything_with_restore_on_stop),
                T(test_sigkill_and_restart_lose_nothing),
                T(test_check_config_accepts_good_and_rejects_bad_values),
                T(test_daemon_refuses_to_start_on_an_unusable_cgroup_root),
#undef T
        };
        int r;

        if (sandbox_setup_or_skip(&sb, true) != 0)
                return 77;
        r = cmocka_run_group_tests(tests, NULL, NULL);
        sandbox_teardown(&sb);
        return r;
}
