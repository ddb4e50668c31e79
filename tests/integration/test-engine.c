/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The real engine against a real cgroup2 subtree with real processes:
 * protect, exact restore, exit, restart, and SIGKILL at every step.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"
#include "engine.h"
#include "fileio.h"
#include "itest.h"
#include "oomprotect/protocol.h"
#include "parse.h"
#include "state.h"

static Sandbox sb;
static Config cfg;
static Engine *engine;
static Child kid;

static void start_engine(void) {
        OpError err = {};

        assert_int_equal(engine_new(&cfg, NULL, NULL, NULL, &engine, &err), 0);
        assert_true(itest_start(engine) >= 0);
}

static int setup(void **state) {
        sandbox_config(&sb, &cfg);
        start_engine();
        assert_int_equal(sandbox_spawn(&sb, "orig-a", sb.child_adj, &kid), 0);
        return 0;
}

static int teardown(void **state) {
        if (engine)
                (void) itest_unprotect_all(engine, UID_ANY, "test teardown");
        engine = engine_free(engine);
        child_kill(&kid);
        config_done(&cfg);
        (void) unlinkat(AT_FDCWD, "state.json", 0);
        char path[256];
        snprintf(path, sizeof(path), "%s/state.json", sb.statedir);
        unlink(path);
        return 0;
}

static ProtectRequest request(pid_t pid) {
        return (ProtectRequest) { .pid = pid, .pidfd = -1, .source = "test", .owner = UID_ANY };
}

static void assert_protected(pid_t pid) {
        _cleanup_free_ char *cg = pid_cgroup(pid);
        char want[512];

        snprintf(want, sizeof(want), "/%s/" OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX, sb.slice_rel,
                 (int) pid);
        assert_non_null(cg);
        assert_string_equal(cg, want);
        assert_int_equal(pid_adj(pid), sb.protect_adj);
}

static void assert_restored(pid_t pid, const char *sub, int adj) {
        _cleanup_free_ char *cg = pid_cgroup(pid), *want = sandbox_path(&sb, sub);

        assert_non_null(cg);
        assert_string_equal(cg, want);
        assert_int_equal(pid_adj(pid), adj);
}

static char *scope_of(pid_t pid) {
        char *s = NULL;

        assert_true(asprintf(&s, "%s/" OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX, sb.slice_rel,
                             (int) pid) > 0);
        return s;
}

static size_t saved_records(void) {
        _cleanup_close_ int fd = open(sb.statedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        Protection **records = NULL;
        size_t n = 0, skipped = 0;
        char *moved = NULL;
        const char *reason = NULL;

        assert_true(fd >= 0);
        assert_int_equal(state_load(fd, &records, &n, &skipped, &moved, &reason), 0);
        assert_null(moved);
        for (size_t i = 0; i < n; i++)
                protection_free(records[i]);
        free(records);
        return n;
}

static void test_protect_moves_process_into_scope_and_sets_adj(void **state) {
        ProtectRequest req = request(kid.pid);
        Protection *p = NULL;
        OpError err = {};

        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        assert_protected(kid.pid);
        assert_non_null(engine_get(engine, kid.pid));
        _cleanup_free_ char *orig = sandbox_path(&sb, "orig-a");
        assert_string_equal(p->original_cgroup, orig);
        assert_int_equal(p->original_adj, sb.child_adj);
        assert_int_equal(saved_records(), 1);
        if (engine->backend.has_memory) {
                _cleanup_free_ char *scope = scope_of(kid.pid), *min = NULL;
                assert_int_equal(cgroup_read(engine->backend.rootfd, scope, "memory.min", &min), 0);
        } else
                fprintf(stderr, "# note: no memory controller in this cgroup2: memory.min not checked here\n");
}

static void test_protect_twice_is_idempotent(void **state) {
        ProtectRequest req = request(kid.pid);
        Protection *p1 = NULL, *p2 = NULL;
        OpError err = {};

        assert_int_equal(itest_protect(engine, &req, &p1, &err), 1);
        assert_int_equal(itest_protect(engine, &req, &p2, &err), 0);
        assert_ptr_equal(p1, p2);
        assert_int_equal(engine_count(engine), 1);
}

static void test_unprotect_restores_exact_cgroup_and_adj(void **state) {
        ProtectRequest req = request(kid.pid);
        UnprotectReport report = {};
        Protection *p = NULL;
        OpError err = {};
        _cleanup_free_ char *scope = scope_of(kid.pid);

        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        assert_true(cgroup_exists(&sb, scope));
        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", &report, &err), 0);
        assert_restored(kid.pid, "orig-a", sb.child_adj);
        assert_false(report.fallback);
        assert_false(cgroup_exists(&sb, scope));
        assert_null(engine_get(engine, kid.pid));
        assert_int_equal(saved_records(), 0);
        unprotect_report_done(&report);
}

static void test_unprotect_of_unknown_pid_is_not_protected(void **state) {
        OpError err = {};

        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", NULL, &err), -ENOENT);
        assert_string_equal(err.name, OOMPROTECT_ERROR_NOT_PROTECTED);
        assert_restored(kid.pid, "orig-a", sb.child_adj);
}

static void wait_pidfd(Protection *p) {
        struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

        assert_int_equal(poll(&pfd, 1, 5000), 1);
}

/* Makes <top>/<sub> an inner node with a controller enabled: the kernel then refuses processes in it (EBUSY). */
static char enabled_ctrl[32];
static bool root_had_ctrl;

static bool make_unattachable(const char *sub) {
        _cleanup_free_ char *controllers = NULL, *root_enabled = NULL;
        char rel[256], value[64], ctrl[32];
        int fd;
        bool ok;

        assert_int_equal(cgroup_open_root(sb.mount, &fd), 0);
        if (cgroup_read(fd, ".", "cgroup.controllers", &controllers) < 0 || sscanf(controllers, "%31s", ctrl) != 1 ||
            cgroup_read(fd, ".", "cgroup.subtree_control", &root_enabled) < 0) {
                close(fd);
                return false;
        }
        snprintf(enabled_ctrl, sizeof(enabled_ctrl), "%s", ctrl);
        root_had_ctrl = cgroup_controller_list_has(root_enabled, ctrl);
        snprintf(rel, sizeof(rel), "%s/%s/inner", sb.top, sub);
        snprintf(value, sizeof(value), "+%s", ctrl);
        ok = cgroup_create(fd, rel) >= 0 && cgroup_write(fd, ".", "cgroup.subtree_control", value) >= 0 &&
             cgroup_write(fd, sb.top, "cgroup.subtree_control", value) >= 0;
        snprintf(rel, sizeof(rel), "%s/%s", sb.top, sub);
        ok = ok && cgroup_write(fd, rel, "cgroup.subtree_control", value) >= 0;
        close(fd);
        return ok;
}

/* Leaves the host's root subtree_control as it was. */
static void undo_unattachable(const char *sub) {
        char rel[256], value[64];
        int fd;

        assert_int_equal(cgroup_open_root(sb.mount, &fd), 0);
        snprintf(rel, sizeof(rel), "%s/%s/inner", sb.top, sub);
        (void) cgroup_remove(fd, rel);
        snprintf(rel, sizeof(rel), "%s/%s", sb.top, sub);
        snprintf(value, sizeof(value), "-%s", enabled_ctrl);
        (void) cgroup_write(fd, rel, "cgroup.subtree_control", value);
        (void) cgroup_remove(fd, rel);
        (void) cgroup_write(fd, sb.top, "cgroup.subtree_control", value);
        if (!root_had_ctrl)
                (void) cgroup_write(fd, ".", "cgroup.subtree_control", value);
        close(fd);
}

static void test_unprotect_that_cannot_restore_keeps_the_record_and_says_why(void **state) {
        Child c;
        Protection *p = NULL;
        OpError err = {};

        assert_int_equal(sandbox_spawn(&sb, "busy", sb.child_adj, &c), 0);
        ProtectRequest req = request(c.pid);
        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        if (!make_unattachable("busy")) {
                child_kill(&c);
                skip(); /* no controller to enable in this cgroup2: nothing can make a restore fail here */
        }
        assert_true(itest_unprotect(engine, c.pid, UID_ANY, "test", NULL, &err) < 0);
        assert_non_null(strstr(err.message, "Cannot restore"));
        fprintf(stderr, "# %s\n", err.message);
        assert_non_null(engine_get(engine, c.pid));
        assert_protected(c.pid);
        assert_int_equal(saved_records(), 1);

        /* Once it exits there is nothing left to retry for: the record goes, the loop is not left spinning. */
        pid_t pid = c.pid;
        child_kill(&c);
        wait_pidfd(p);
        assert_int_equal(engine_process_exited(engine, pid), 0);
        assert_null(engine_get(engine, pid));
        assert_int_equal(saved_records(), 0);
        undo_unattachable("busy");
}

static void test_exited_process_is_forgotten_and_scope_removed(void **state) {
        ProtectRequest req = request(kid.pid);
        Protection *p = NULL;
        OpError err = {};
        pid_t pid = kid.pid;
        _cleanup_free_ char *scope = scope_of(pid);

        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        child_kill(&kid);
        wait_pidfd(p);
        assert_int_equal(engine_process_exited(engine, pid), 0);
        assert_null(engine_get(engine, pid));
        assert_false(cgroup_exists(&sb, scope));
        assert_int_equal(saved_records(), 0);
}

static void test_restore_goes_to_nearest_ancestor_when_original_is_gone(void **state) {
        Child c;
        UnprotectReport report = {};
        Protection *p = NULL;
        OpError err = {};
        char gone[512];

        assert_int_equal(sandbox_spawn(&sb, "gone-a/gone-b", sb.child_adj, &c), 0);
        ProtectRequest req = request(c.pid);
        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        snprintf(gone, sizeof(gone), "%s/%s/gone-a/gone-b", sb.mount, sb.top);
        assert_int_equal(rmdir(gone), 0);
        assert_int_equal(itest_unprotect(engine, c.pid, UID_ANY, "test", &report, &err), 0);
        assert_true(report.fallback);
        _cleanup_free_ char *ancestor = sandbox_path(&sb, "gone-a");
        assert_string_equal(report.fallback_path, ancestor);
        assert_restored(c.pid, "gone-a", sb.child_adj);
        unprotect_report_done(&report);
        child_kill(&c);
}

static void test_children_born_in_scope_are_restored_with_adj(void **state) {
        ProtectRequest req = request(kid.pid);
        Protection *p = NULL;
        OpError err = {};
        pid_t g;

        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        g = child_fork(&kid);
        assert_true(g > 0);
        /* Born in its parent's scope with the applied adj: covered. */
        _cleanup_free_ char *cg = pid_cgroup(g), *scope = scope_of(kid.pid);
        assert_string_equal(cg + 1, scope);
        assert_int_equal(pid_adj(g), sb.protect_adj);
        /* Protecting it on its own is refused: its parent's protection covers it. */
        ProtectRequest child_req = request(g);
        Protection *q = NULL;
        assert_int_equal(itest_protect(engine, &child_req, &q, &err), -EEXIST);
        assert_string_equal(err.name, OOMPROTECT_ERROR_ALREADY_PROTECTED);
        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", NULL, &err), 0);
        assert_restored(kid.pid, "orig-a", sb.child_adj);
        assert_restored(g, "orig-a", sb.child_adj);
        kill(g, SIGKILL);
}

static void test_descendants_moves_the_tree_and_restores_each_origin(void **state) {
        Protection *p = NULL;
        OpError err = {};
        int fd;
        pid_t g = child_fork(&kid);

        /* The grandchild lives elsewhere with its own adj before the protection. */
        assert_true(g > 0);
        assert_int_equal(cgroup_open_root(sb.mount, &fd), 0);
        char rel[256], adj[16];
        snprintf(rel, sizeof(rel), "%s/orig-g", sb.top);
        assert_true(cgroup_create(fd, rel) >= 0);
        assert_int_equal(cgroup_attach(fd, rel, g), 0);
        close(fd);
        snprintf(rel, sizeof(rel), "/proc/%d/oom_score_adj", (int) g);
        snprintf(adj, sizeof(adj), "%d", sb.child_adj + 100);
        assert_int_equal(write_string_file_at(AT_FDCWD, rel, adj), 0);

        ProtectRequest req = request(kid.pid);
        req.options.descendants = true;
        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        assert_int_equal(p->n_members, 1);
        assert_protected(kid.pid);
        _cleanup_free_ char *cg = pid_cgroup(g), *scope = scope_of(kid.pid);
        assert_string_equal(cg + 1, scope);
        assert_int_equal(pid_adj(g), sb.protect_adj);

        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", NULL, &err), 0);
        assert_restored(kid.pid, "orig-a", sb.child_adj);
        assert_restored(g, "orig-g", sb.child_adj + 100);
        kill(g, SIGKILL);
}


/* A process that forks as fast as it can, each child waiting to be killed with it. */
static pid_t spawn_forker(const char *sub) {
        char rel[256], value[16];
        int fd, ready[2];
        pid_t pid;

        snprintf(rel, sizeof(rel), "%s/%s", sb.top, sub);
        assert_int_equal(cgroup_open_root(sb.mount, &fd), 0);
        assert_true(cgroup_create(fd, rel) >= 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                snprintf(value, sizeof(value), "%d", sb.child_adj);
                if (cgroup_write(fd, rel, "cgroup.procs", "0") < 0 ||
                    write_string_file_at(AT_FDCWD, "/proc/self/oom_score_adj", value) < 0)
                        _exit(1);
                (void) !write(ready[1], "r", 1);
                for (unsigned i = 0; i < 4000; i++) {
                        pid_t c = fork();
                        if (c == 0) {
                                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                                pause();
                                _exit(0);
                        }
                        usleep(100);
                }
                pause();
                _exit(0);
        }
        close(fd);
        close(ready[1]);
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        return pid;
}

static void test_children_forked_during_unprotect_get_the_original_adj(void **state) {
        _cleanup_free_ char *orig = sandbox_path(&sb, "forker");
        pid_t forker = spawn_forker("forker");
        Protection *p = NULL;
        OpError err = {};
        char path[512];

        for (int round = 0; round < 5; round++) {
                ProtectRequest req = request(forker);
                memset(&err, 0, sizeof(err));
                assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
                usleep(20000); /* children born in the scope with the applied adj */
                assert_int_equal(itest_unprotect(engine, forker, UID_ANY, "test", NULL, &err), 0);
        }
        usleep(20000);
        kill(forker, SIGSTOP); /* no more children while we look */
        snprintf(path, sizeof(path), "%s/%s/forker/cgroup.procs", sb.mount, sb.top);
        _cleanup_free_ char *procs = NULL;
        assert_int_equal(read_full_file_at(AT_FDCWD, path, 1 << 20, &procs, NULL), 0);
        unsigned checked = 0;
        for (char *save = NULL, *t = strtok_r(procs, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
                int adj = pid_adj(atoi(t));
                if (adj == -9999)
                        continue; /* exited meanwhile */
                if (adj != sb.child_adj)
                        fail_msg("PID %s has oom_score_adj %d after unprotect, expected %d", t, adj, sb.child_adj);
                checked++;
        }
        fprintf(stderr, "# %u processes of the forker, all back at oom_score_adj %d in %s\n", checked,
                sb.child_adj, orig);
        assert_true(checked > 5);
        _cleanup_free_ char *scope = scope_of(forker);
        assert_false(cgroup_exists(&sb, scope));
        kill(forker, SIGKILL);
        waitpid(forker, NULL, 0);
}


static void test_descendants_of_a_group_member_leave_out_other_users_processes(void **state) {
        Protection *p = NULL;
        OpError err = {};
        pid_t mine = child_fork(&kid), theirs = child_fork_as_nobody(&kid);

        assert_true(mine > 0 && theirs > 0);
        usleep(50000); /* the setresuid() */
        ProtectRequest req = request(kid.pid);
        req.owner = 0; /* a caller who may touch uid 0's processes only */
        req.options.descendants = true;
        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        assert_int_equal(p->n_members, 1);
        assert_int_equal(p->members[0].pid, mine);
        assert_restored(theirs, "orig-a", sb.child_adj); /* untouched */
        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", NULL, &err), 0);
        kill(mine, SIGKILL);
        kill(theirs, SIGKILL);
}

static void test_descendants_leaves_out_what_is_protected_already(void **state) {
        Protection *p = NULL;
        OpError err = {};
        pid_t g = child_fork(&kid);

        assert_true(g > 0);
        ProtectRequest child_req = request(g);
        assert_int_equal(itest_protect(engine, &child_req, &p, &err), 1);
        ProtectRequest req = request(kid.pid);
        req.options.descendants = true;
        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        assert_int_equal(p->n_members, 0);
        _cleanup_free_ char *cg = pid_cgroup(g), *own = scope_of(g);
        assert_string_equal(cg + 1, own);

        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", NULL, &err), 0);
        assert_restored(kid.pid, "orig-a", sb.child_adj);
        _cleanup_free_ char *still = pid_cgroup(g);
        assert_string_equal(still + 1, own); /* still protected on its own */
        assert_int_equal(pid_adj(g), sb.protect_adj);
        assert_int_equal(itest_unprotect(engine, g, UID_ANY, "test", NULL, &err), 0);
        assert_restored(g, "orig-a", sb.child_adj);
        kill(g, SIGKILL);
}

static void assert_untouched(pid_t pid) {
        assert_restored(pid, "orig-a", sb.child_adj);
        assert_null(engine_get(engine, pid));
        assert_int_equal(saved_records(), 0);
        _cleanup_free_ char *scope = scope_of(pid);
        assert_false(cgroup_exists(&sb, scope));
}


static void test_leftover_scope_with_processes_is_not_joined(void **state) {
        _cleanup_free_ char *scope = scope_of(kid.pid);
        Protection *p = NULL;
        OpError err = {};
        Child stray;
        int fd;

        /* What an earlier protection of the same PID number could not empty. */
        assert_int_equal(sandbox_spawn(&sb, "orig-stray", sb.child_adj, &stray), 0);
        assert_int_equal(cgroup_open_root(sb.mount, &fd), 0);
        assert_true(cgroup_create(fd, scope) >= 0);
        assert_int_equal(cgroup_attach(fd, scope, stray.pid), 0);
        ProtectRequest req = request(kid.pid);
        assert_int_equal(itest_protect(engine, &req, &p, &err), -EBUSY);
        assert_non_null(strstr(err.message, "earlier protection"));
        assert_restored(kid.pid, "orig-a", sb.child_adj);
        assert_null(engine_get(engine, kid.pid));
        assert_int_equal(saved_records(), 0);
        _cleanup_free_ char *stray_cg = pid_cgroup(stray.pid);
        assert_string_equal(stray_cg + 1, scope); /* left where it was */
        child_kill(&stray);
        for (int i = 0; i < 100 && cgroup_remove(fd, scope) < 0; i++)
                usleep(10000);
        close(fd);
        assert_false(cgroup_exists(&sb, scope));
}

static void test_over_budget_is_refused_and_changes_nothing(void **state) {
        ProtectRequest req = request(kid.pid);
        Protection *p = NULL;
        OpError err = {};

        engine->budget = 1 << 20;
        req.options.has_memory_min = true;
        req.options.memory_min = 2 << 20;
        assert_int_equal(itest_protect(engine, &req, &p, &err), -ENOSPC);
        assert_string_equal(err.name, OOMPROTECT_ERROR_OVER_BUDGET);
        assert_non_null(strstr(err.message, "MemoryMinBudget"));
        assert_untouched(kid.pid);

        /* Within budget, the same works, and the sum counts. */
        req.options.memory_min = 1 << 20;
        memset(&err, 0, sizeof(err));
        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        assert_int_equal(engine_memory_min_in_use(engine), 1 << 20);
}

static void test_huge_or_bad_options_are_refused_and_change_nothing(void **state) {
        ProtectRequest req = request(kid.pid);
        Protection *p = NULL;
        OpError err = {};

        req.options.has_memory_min = true;
        req.options.memory_min = UINT64_MAX;
        assert_int_equal(itest_protect(engine, &req, &p, &err), -ERANGE);
        assert_string_equal(err.name, OOMPROTECT_ERROR_INVALID_ARGUMENT);
        assert_untouched(kid.pid);

        req = request(kid.pid);
        req.options.has_adj = true;
        req.options.adj = -1001;
        memset(&err, 0, sizeof(err));
        assert_int_equal(itest_protect(engine, &req, &p, &err), -ERANGE);
        assert_untouched(kid.pid);

        req = request(kid.pid);
        req.options.tag = "bad\ntag";
        memset(&err, 0, sizeof(err));
        assert_int_equal(itest_protect(engine, &req, &p, &err), -EINVAL);
        assert_untouched(kid.pid);
}

static void *thread_main(void *arg) {
        *(pid_t *) arg = (pid_t) syscall(SYS_gettid);
        pause();
        return NULL;
}

static void expect_refusal(pid_t pid, int code, const char *name) {
        ProtectRequest req = request(pid);
        Protection *p = NULL;
        OpError err = {};

        assert_int_equal(itest_protect(engine, &req, &p, &err), code);
        assert_string_equal(err.name, name);
        assert_true(strlen(err.message) > 10);
        fprintf(stderr, "# PID %d refused: %s\n", (int) pid, err.message);
        assert_int_equal(engine_count(engine), 0);
        assert_int_equal(saved_records(), 0);
}

static void test_refuses_pid1_self_zombie_vanished_thread_and_bad_pid(void **state) {
        pid_t zombie, gone, tid = 0;
        pthread_t t;

        expect_refusal(1, -EPERM, OOMPROTECT_ERROR_INVALID_PROCESS);
        expect_refusal(getpid(), -EPERM, OOMPROTECT_ERROR_INVALID_PROCESS);
        expect_refusal(0, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT);
        expect_refusal(-5, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT);
        expect_refusal(OOMPROTECT_PID_MAX_LIMIT + 1, -EINVAL, OOMPROTECT_ERROR_INVALID_ARGUMENT);

        zombie = fork();
        if (zombie == 0)
                _exit(0);
        usleep(100000);
        expect_refusal(zombie, -ESRCH, OOMPROTECT_ERROR_NO_SUCH_PROCESS);
        waitpid(zombie, NULL, 0);
        gone = zombie; /* reaped now: no such process (unless reused, vanishingly unlikely) */
        expect_refusal(gone, -ESRCH, OOMPROTECT_ERROR_NO_SUCH_PROCESS);

        assert_int_equal(pthread_create(&t, NULL, thread_main, &tid), 0);
        while (__atomic_load_n(&tid, __ATOMIC_SEQ_CST) == 0)
                usleep(1000);
        expect_refusal(tid, -EINVAL, OOMPROTECT_ERROR_INVALID_PROCESS);
        pthread_cancel(t);
        pthread_join(t, NULL);
}

static void test_refuses_another_uids_process_when_owner_is_set(void **state) {
        ProtectRequest req = request(kid.pid);
        Protection *p = NULL;
        OpError err = {};

        req.owner = 65534;
        assert_int_equal(itest_protect(engine, &req, &p, &err), -EPERM);
        assert_string_equal(err.name, OOMPROTECT_ERROR_PERMISSION_DENIED);
        assert_untouched(kid.pid);
}

static void test_max_protected_is_enforced(void **state) {
        Child c2;
        Protection *p = NULL;
        OpError err = {};

        cfg.max_protected = 1;
        ProtectRequest req = request(kid.pid);
        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        assert_int_equal(sandbox_spawn(&sb, "orig-b", sb.child_adj, &c2), 0);
        req = request(c2.pid);
        assert_int_equal(itest_protect(engine, &req, &p, &err), -EUSERS);
        assert_string_equal(err.name, OOMPROTECT_ERROR_TOO_MANY);
        assert_restored(c2.pid, "orig-b", sb.child_adj);
        child_kill(&c2);
        cfg.max_protected = 10000;
}

static void test_unprotect_tag_and_all_count_what_they_did(void **state) {
        Child c2;
        Protection *p = NULL;
        OpError err = {};

        assert_int_equal(sandbox_spawn(&sb, "orig-b", sb.child_adj, &c2), 0);
        ProtectRequest req = request(kid.pid);
        req.options.tag = "container-1";
        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        req = request(c2.pid);
        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        assert_int_equal(itest_unprotect_tag(engine, "container-2", UID_ANY, "test"), 0);
        assert_int_equal(itest_unprotect_tag(engine, "container-1", UID_ANY, "test"), 1);
        assert_restored(kid.pid, "orig-a", sb.child_adj);
        assert_protected(c2.pid);
        assert_int_equal(itest_unprotect_all(engine, UID_ANY, "test"), 1);
        assert_restored(c2.pid, "orig-b", sb.child_adj);
        child_kill(&c2);
}

static void test_protection_survives_a_restart(void **state) {
        ProtectRequest req = request(kid.pid);
        Protection *p = NULL;
        OpError err = {};

        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        engine = engine_free(engine); /* a stop with RestoreOnStop=no */
        assert_protected(kid.pid);
        start_engine();
        assert_non_null(engine_get(engine, kid.pid));
        assert_true(engine_get(engine, kid.pid)->pidfd >= 0);
        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", NULL, &err), 0);
        assert_restored(kid.pid, "orig-a", sb.child_adj);
}

static void test_record_of_process_dead_while_stopped_is_dropped_at_start(void **state) {
        ProtectRequest req = request(kid.pid);
        Protection *p = NULL;
        OpError err = {};
        pid_t pid = kid.pid, g;
        _cleanup_free_ char *scope = scope_of(pid);

        assert_int_equal(itest_protect(engine, &req, &p, &err), 1);
        g = child_fork(&kid); /* outlives its parent inside the scope */
        engine = engine_free(engine);
        child_kill(&kid);
        start_engine();
        assert_null(engine_get(engine, pid));
        assert_false(cgroup_exists(&sb, scope));
        assert_restored(g, "orig-a", sb.child_adj);
        assert_int_equal(saved_records(), 0);
        kill(g, SIGKILL);
}

static void test_corrupt_state_is_moved_aside_at_start(void **state) {
        char path[256];
        FILE *f;

        engine = engine_free(engine);
        snprintf(path, sizeof(path), "%s/state.json", sb.statedir);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("{ this is not json", f);
        fclose(f);
        start_engine();
        assert_int_equal(engine_count(engine), 0);
        snprintf(path, sizeof(path), "ls %s/state.json.corrupt-* >/dev/null 2>&1", sb.statedir);
        assert_int_equal(system(path), 0);
        snprintf(path, sizeof(path), "rm -f %s/state.json.corrupt-*", sb.statedir);
        assert_int_equal(system(path), 0);
}

static void test_sigkill_at_every_step_leaves_protected_or_fully_restored(void **state) {
        static const char *const points[] = {
                "protect:persisted",         "protect:slice-raised", "protect:scope-applied",
                "protect:adj-applied",       "unprotect:adj-restored",    "unprotect:cgroup-restored",
                "unprotect:forgotten",
                /* state.c: the first commit of a start writes the file whole; the protect's own is appended */
                "state:rewrite-written",     "state:rewrite-renamed", "state:appended",
        };
        _cleanup_free_ char *scope = scope_of(kid.pid);

        engine = engine_free(engine);
        for (size_t i = 0; i < ELEMENTSOF(points); i++) {
                engine_killed_at(&cfg, kid.pid, points[i]);
                start_engine(); /* the restarted daemon */
                if (engine_get(engine, kid.pid)) {
                        assert_protected(kid.pid);
                        /* A restore killed midway left the scope frozen; the restart must have thawed it. */
                        _cleanup_free_ char *events = NULL;
                        uint64_t frozen = 1;
                        assert_int_equal(cgroup_read(engine->backend.rootfd, scope, "cgroup.events", &events), 0);
                        assert_int_equal(cgroup_parse_keyed(events, "frozen", &frozen), 0);
                        assert_int_equal(frozen, 0);
                        fprintf(stderr, "# killed at %s: still protected after restart\n", points[i]);
                        OpError err = {};
                        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", NULL, &err), 0);
                } else {
                        fprintf(stderr, "# killed at %s: fully restored after restart\n", points[i]);
                }
                assert_restored(kid.pid, "orig-a", sb.child_adj);
                assert_false(cgroup_exists(&sb, scope));
                assert_int_equal(saved_records(), 0);
                engine = engine_free(engine);
        }
        start_engine();
}

/* A backend that answers 300 ms late (the test hook): the engine completes from its loop, and refuses meanwhile. */
static void test_late_backend_completes_from_the_loop_and_refuses_a_second_operation(void **state) {
        ProtectRequest req = request(kid.pid);
        Waiter first = {}, second = {};
        OpError err = {};

        engine = engine_free(engine);
        assert_int_equal(setenv("OOMPROTECT_TEST_BACKEND_DELAY_USEC", "300000", 1), 0);
        start_engine();
        assert_int_equal(unsetenv("OOMPROTECT_TEST_BACKEND_DELAY_USEC"), 0);

        assert_int_equal(engine_protect(engine, &req, itest_on_done, &first), 0);
        assert_false(first.done);
        assert_non_null(engine_get(engine, kid.pid));
        assert_non_null(engine_get(engine, kid.pid)->pending);
        assert_int_equal(engine_pending(engine), 1);

        assert_int_equal(engine_protect(engine, &req, itest_on_done, &second), 0);
        assert_true(second.done); /* refused at once */
        assert_int_equal(second.result.r, -EBUSY);
        assert_string_equal(second.result.err.name, OOMPROTECT_ERROR_BUSY);
        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", NULL, &err), -EBUSY);

        assert_int_equal(itest_wait(engine, &first), 1);
        assert_int_equal(engine_pending(engine), 0);
        assert_null(engine_get(engine, kid.pid)->pending);
        assert_protected(kid.pid);
        assert_int_equal(itest_unprotect(engine, kid.pid, UID_ANY, "test", NULL, &err), 0);
        assert_restored(kid.pid, "orig-a", sb.child_adj);
}

/* RestoreOnStop=yes and UnprotectAll while a protect is still being applied: they wait for it, and include it. */
static void test_unprotect_all_waits_for_a_protect_under_way(void **state) {
        ProtectRequest req = request(kid.pid);
        Waiter protect = {}, all = {};

        engine = engine_free(engine);
        assert_int_equal(setenv("OOMPROTECT_TEST_BACKEND_DELAY_USEC", "300000", 1), 0);
        start_engine();
        assert_int_equal(unsetenv("OOMPROTECT_TEST_BACKEND_DELAY_USEC"), 0);

        assert_int_equal(engine_protect(engine, &req, itest_on_done, &protect), 0);
        assert_false(protect.done);
        assert_int_equal(engine_unprotect_all(engine, UID_ANY, "test", itest_on_done, &all), 0);
        assert_false(all.done); /* waits: the protect is under way */
        assert_int_equal(itest_wait(engine, &protect), 1);
        assert_int_equal(itest_wait(engine, &all), 1);  /* ...and it was counted */
        assert_null(engine_get(engine, kid.pid));
        assert_restored(kid.pid, "orig-a", sb.child_adj);
        assert_int_equal(saved_records(), 0);
}

/*
 * An unprotect-many starts its restores a turn of the loop at a time (16),
 * so the loop answers others in between; all are restored and counted.
 */
static void test_unprotect_all_of_many_runs_in_turns_and_restores_all(void **state) {
        enum { N = 150 };
        Child c[N];
        Waiter all = {};
        OpError err = {};

        for (size_t i = 0; i < N; i++) {
                ProtectRequest req;
                assert_int_equal(sandbox_spawn(&sb, "orig-many", sb.child_adj, &c[i]), 0);
                req = request(c[i].pid);
                assert_int_equal(itest_protect(engine, &req, NULL, &err), 1);
        }
        assert_int_equal(engine_unprotect_all(engine, UID_ANY, "test", itest_on_done, &all), 0);
        assert_false(all.done);
        assert_true(engine->n_pending <= 16); /* one turn's worth under way, the rest to come */
        assert_non_null(engine->starting);
        assert_int_equal(itest_wait(engine, &all), N);
        assert_null(engine->starting);
        for (size_t i = 0; i < N; i++) {
                assert_restored(c[i].pid, "orig-many", sb.child_adj);
                child_kill(&c[i]);
        }
        assert_int_equal(saved_records(), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
                T(test_protect_moves_process_into_scope_and_sets_adj),
                T(test_protect_twice_is_idempotent),
                T(test_unprotect_restores_exact_cgroup_and_adj),
                T(test_unprotect_of_unknown_pid_is_not_protected),
                T(test_exited_process_is_forgotten_and_scope_removed),
                T(test_restore_goes_to_nearest_ancestor_when_original_is_gone),
                T(test_children_born_in_scope_are_restored_with_adj),
                T(test_unprotect_that_cannot_restore_keeps_the_record_and_says_why),
                T(test_descendants_moves_the_tree_and_restores_each_origin),
                T(test_descendants_leaves_out_what_is_protected_already),
                T(test_descendants_of_a_group_member_leave_out_other_users_processes),
                T(test_children_forked_during_unprotect_get_the_original_adj),
                T(test_over_budget_is_refused_and_changes_nothing),
                T(test_leftover_scope_with_processes_is_not_joined),
                T(test_huge_or_bad_options_are_refused_and_change_nothing),
                T(test_refuses_pid1_self_zombie_vanished_thread_and_bad_pid),
                T(test_refuses_another_uids_process_when_owner_is_set),
                T(test_max_protected_is_enforced),
                T(test_unprotect_tag_and_all_count_what_they_did),
                T(test_protection_survives_a_restart),
                T(test_record_of_process_dead_while_stopped_is_dropped_at_start),
                T(test_corrupt_state_is_moved_aside_at_start),
                T(test_sigkill_at_every_step_leaves_protected_or_fully_restored),
                T(test_late_backend_completes_from_the_loop_and_refuses_a_second_operation),
                T(test_unprotect_all_waits_for_a_protect_under_way),
                T(test_unprotect_all_of_many_runs_in_turns_and_restores_all),
#undef T
        };
        int r;

        if (sandbox_setup_or_skip(&sb, false) != 0)
                return 77;
        r = cmocka_run_group_tests(tests, NULL, NULL);
        sandbox_teardown(&sb);
        return r;
}
