/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "engine.h"
#include "guard.h"
#include "macro.h"
#include "unit-protection.h"

/*
 * guard_check_protect() reads /proc through the engine's procfd. A machine
 * where every process but one has oom_score_adj -1000 cannot be arranged on
 * a shared build machine, so these tests give it a /proc of their own: a
 * directory with PID/stat, PID/status and PID/oom_score_adj files, read by
 * the same code the daemon runs.
 */
static char fakeproc[] = "/tmp/oomprotect-test-guard.XXXXXX";

static void fake_process(pid_t pid, char state, unsigned flags, int adj, unsigned rss_kb) {
        char dir[256], path[300];
        FILE *f;

        snprintf(dir, sizeof(dir), "%s/%d", fakeproc, (int) pid);
        (void) mkdir(dir, 0755);
        snprintf(path, sizeof(path), "%s/stat", dir);
        assert_non_null(f = fopen(path, "we"));
        fprintf(f, "%d (p%d) %c 1 %d %d 0 -1 %u 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", (int) pid, (int) pid, state,
                (int) pid, (int) pid, flags, 1000 + (int) pid);
        fclose(f);
        snprintf(path, sizeof(path), "%s/status", dir);
        assert_non_null(f = fopen(path, "we"));
        fprintf(f, "Name:\tp%d\nVmRSS:\t%u kB\n", (int) pid, rss_kb);
        fclose(f);
        snprintf(path, sizeof(path), "%s/oom_score_adj", dir);
        assert_non_null(f = fopen(path, "we"));
        fprintf(f, "%d\n", adj);
        fclose(f);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

typedef struct Fixture {
        Config config;
        Engine engine;
} Fixture;

static int setup(void **state) {
        Fixture *x = calloc(1, sizeof(Fixture));

        assert_non_null(mkdtemp(fakeproc));
        assert_int_equal(config_init(&x->config), 0);
        x->engine.config = &x->config;
        x->engine.procfd = open(fakeproc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(x->engine.procfd >= 0);
        x->engine.backend.rootfd = -EBADF; /* no memory controller: RSS is what counts */
        *state = x;
        return 0;
}

static int teardown(void **state) {
        Fixture *x = *state;

        close(x->engine.procfd);
        config_done(&x->config);
        free(x);
        nftw(fakeproc, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        strcpy(fakeproc, "/tmp/oomprotect-test-guard.XXXXXX");
        return 0;
}

static Protection candidate(pid_t pid, int adj) {
        return (Protection) { .pid = pid, .applied_adj = adj, .kind = PROTECTION_MOVED };
}

static void test_guard_refuses_a_protect_that_leaves_nothing_killable(void **state) {
        Fixture *x = *state;
        Protection c = candidate(100, -1000);
        OpError err = {};

        fake_process(1, 'S', 0, 0, 1000);          /* init: the kernel never picks it */
        fake_process(2, 'S', 0x00200000, 0, 0);    /* a kernel thread */
        fake_process(50, 'S', 0, -1000, 1000);     /* protected, by whoever */
        fake_process(60, 'Z', 0, 0, 0);            /* a zombie */
        fake_process(100, 'S', 0, 0, 1000);        /* the candidate */
        assert_int_equal(guard_check_protect(&x->engine, &c, &err), -ENOSPC);
        assert_string_equal(err.name, "org.oomprotect.Error.OverBudget");
        assert_non_null(strstr(err.message, "no process the kernel's OOM killer may pick"));
}

static void test_guard_allows_when_one_other_process_is_killable(void **state) {
        Fixture *x = *state;
        Protection c = candidate(100, -1000);
        OpError err = {};

        fake_process(1, 'S', 0, 0, 1000);
        fake_process(100, 'S', 0, 0, 1000);
        fake_process(200, 'R', 0, -999, 1000);
        assert_int_equal(guard_check_protect(&x->engine, &c, &err), 0);
}

static void test_guard_does_not_count_a_protect_that_keeps_the_process_killable(void **state) {
        Fixture *x = *state;
        Protection c = candidate(100, 0); /* OOMScoreAdjust=0: the kernel may still pick it */
        OpError err = {};

        fake_process(1, 'S', 0, 0, 1000);
        fake_process(100, 'S', 0, 0, 1000);
        assert_int_equal(guard_check_protect(&x->engine, &c, &err), 0);
}

static void test_guard_refuses_an_update_to_minus_1000_that_leaves_nothing_killable(void **state) {
        Fixture *x = *state;
        Protection p = candidate(100, 0); /* protected with adj 0: still the kernel's to pick */
        OpError err = {};

        fake_process(1, 'S', 0, 0, 1000);
        fake_process(50, 'S', 0, -1000, 1000);
        fake_process(100, 'S', 0, 0, 1000);
        assert_int_equal(guard_check_protect_update(&x->engine, &p, -1000, &err), -ENOSPC);
        assert_string_equal(err.name, "org.oomprotect.Error.OverBudget");
        assert_non_null(strstr(err.message, "PID 100 would leave no process"));
        err = (OpError) {};
        assert_int_equal(guard_check_protect_update(&x->engine, &p, -999, &err), 0); /* still killable */
        fake_process(200, 'S', 0, 0, 1000);
        assert_int_equal(guard_check_protect_update(&x->engine, &p, -1000, &err), 0); /* another one is */
}

static void test_guard_passes_an_update_that_changes_nothing_the_kernel_may_pick(void **state) {
        Fixture *x = *state;
        Protection p = candidate(100, -1000); /* unkillable already: a new memory.min changes nothing */
        OpError err = {};

        fake_process(1, 'S', 0, 0, 1000);
        fake_process(100, 'S', 0, -1000, 1000);
        assert_int_equal(guard_check_protect_update(&x->engine, &p, -1000, &err), 0);
}

static void test_guard_ceiling_refuses_what_would_pass_it(void **state) {
        Fixture *x = *state;
        Protection c = candidate(100, -1000);
        OpError err = {};

        fake_process(1, 'S', 0, 0, 1000);
        fake_process(100, 'S', 0, 0, 8192); /* 8 MiB resident */
        fake_process(200, 'S', 0, 0, 1000);
        assert_int_equal(config_set(&x->config, "MaxProtectedMemory", "4M", "t", 1), 0);
        assert_int_equal(guard_check_protect(&x->engine, &c, &err), -ENOSPC);
        assert_non_null(strstr(err.message, "MaxProtectedMemory=4.0M"));
        err = (OpError) {};
        assert_int_equal(config_set(&x->config, "MaxProtectedMemory", "16M", "t", 2), 0);
        assert_int_equal(guard_check_protect(&x->engine, &c, &err), 0);
}

/*
 * A cgroup tree of its own beside the /proc: directories with cgroup.procs
 * and memory.current, read through the backend's rootfd like the real one.
 */
static char fakecg[] = "/tmp/oomprotect-test-guard-cg.XXXXXX";

static void fake_cgroup(const char *rel, const char *procs, uint64_t current) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", fakecg, rel);
        assert_int_equal(mkdir(path, 0755) == 0 || errno == EEXIST, true);
        snprintf(path, sizeof(path), "%s/%s/cgroup.procs", fakecg, rel);
        assert_non_null(f = fopen(path, "we"));
        fputs(procs, f);
        fclose(f);
        snprintf(path, sizeof(path), "%s/%s/memory.current", fakecg, rel);
        assert_non_null(f = fopen(path, "we"));
        fprintf(f, "%llu\n", (unsigned long long) current);
        fclose(f);
}

static int setup_with_cgroups(void **state) {
        Fixture *x;

        setup(state);
        x = *state;
        assert_non_null(mkdtemp(fakecg));
        x->engine.backend.rootfd = open(fakecg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(x->engine.backend.rootfd >= 0);
        return 0;
}

static int teardown_with_cgroups(void **state) {
        Fixture *x = *state;

        for (size_t i = 0; i < x->engine.units.n; i++)
                x->engine.units.items[i]->pending = NULL;
        unit_table_done(&x->engine.units);
        registry_done(&x->engine.registry);
        close(x->engine.backend.rootfd);
        nftw(fakecg, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        strcpy(fakecg, "/tmp/oomprotect-test-guard-cg.XXXXXX");
        return teardown(state);
}

static void add_in_place(Engine *e, pid_t pid, const char *cgroup) {
        Protection *p = protection_new();

        assert_non_null(p);
        p->pid = pid;
        p->kind = PROTECTION_IN_PLACE;
        p->applied_adj = -1000;
        assert_non_null(p->original_cgroup = strdup(cgroup));
        assert_int_equal(registry_add(&e->registry, p), 0);
}

static void add_unit(Engine *e, const char *unit, const char *cgroup) {
        UnitProtection *u = unit_protection_new();

        assert_non_null(u);
        assert_non_null(u->unit = strdup(unit));
        assert_non_null(u->cgroup = strdup(cgroup));
        assert_int_equal(unit_table_add(&e->units, u), 0);
}

/* memory.current holds a cgroup's subtree: a unit and an in-place PID in it (or below it) are one figure. */
static void test_guard_counts_a_cgroup_once_for_a_unit_and_a_pid_in_it(void **state) {
        Fixture *x = *state;
        Engine *e = &x->engine;

        e->backend.has_memory = true;
        fake_cgroup("a.slice", "", 300 << 20);
        fake_cgroup("a.slice/x.service", "100\n", 100 << 20);
        fake_cgroup("a.slice/x.service/inner", "101\n", 40 << 20);
        fake_cgroup("a.slice/y.service", "200\n", 7 << 20);
        add_unit(e, "x.service", "/a.slice/x.service");
        add_in_place(e, 100, "/a.slice/x.service");
        add_in_place(e, 101, "/a.slice/x.service/inner");
        add_in_place(e, 102, "/a.slice/x.service"); /* a second one in the same cgroup */
        add_in_place(e, 200, "/a.slice/y.service");
        assert_int_equal(guard_protected_usage(e), (uint64_t) (100 + 7) << 20);
}

/* A unit counted after an in-place PID below it (in-place protections are listed first): still one figure. */
static void test_guard_counts_a_unit_once_whatever_order_its_cgroups_come_in(void **state) {
        Fixture *x = *state;
        Engine *e = &x->engine;

        e->backend.has_memory = true;
        fake_cgroup("a.slice", "", 300 << 20);
        fake_cgroup("a.slice/u.service", "100\n", 100 << 20);
        fake_cgroup("a.slice/u.service/app", "101\n", 40 << 20);
        fake_cgroup("a.slice/u.service/app/x", "102\n", 10 << 20);
        add_in_place(e, 102, "/a.slice/u.service/app/x");
        add_in_place(e, 101, "/a.slice/u.service/app");
        add_unit(e, "u.service", "/a.slice/u.service");
        assert_int_equal(guard_protected_usage(e), (uint64_t) 100 << 20);
}

/* Without the memory controller RSS counts, by process: one protected in its own right and a unit's is one. */
static void test_guard_counts_a_process_once_for_a_unit_and_its_own_protection(void **state) {
        Fixture *x = *state;
        Engine *e = &x->engine;

        fake_process(1, 'S', 0, 0, 1000);
        fake_process(100, 'S', 0, -1000, 8192);
        fake_process(101, 'S', 0, -1000, 2048);
        fake_cgroup("a.slice", "", 0);
        fake_cgroup("a.slice/x.service", "100\n101\n", 0);
        add_unit(e, "x.service", "/a.slice/x.service");
        add_in_place(e, 100, "/a.slice/x.service");
        assert_int_equal(guard_protected_usage(e), (uint64_t) (8192 + 2048) * 1024);
}

/* A candidate that is counted already adds nothing: a unit whose process is protected, a PID inside a unit. */
static void test_guard_ceiling_counts_a_candidate_counted_already_once(void **state) {
        Fixture *x = *state;
        Engine *e = &x->engine;
        Protection c = { .pid = 101, .applied_adj = -1000, .kind = PROTECTION_IN_PLACE,
                         .original_cgroup = (char *) "/a.slice/x.service" };
        UnitProtection *u = unit_protection_new();
        OpError err = {};

        fake_process(1, 'S', 0, 0, 1000);
        fake_process(100, 'S', 0, 0, 8192);
        fake_process(101, 'S', 0, 0, 2048);
        fake_process(300, 'S', 0, 0, 1000); /* killable: the last-killable check passes */
        fake_cgroup("a.slice", "", 0);
        fake_cgroup("a.slice/x.service", "100\n101\n", 0);
        assert_int_equal(config_set(&x->config, "MaxProtectedMemory", "12M", "t", 1), 0);
        add_in_place(e, 100, "/a.slice/x.service");
        assert_non_null(u);
        assert_non_null(u->unit = strdup("x.service"));
        assert_non_null(u->cgroup = strdup("/a.slice/x.service"));
        u->applied_adj = -1000;
        /* 8M protected; the unit adds 101's 2M, not 100's 8M again: 10M fits under 12M. */
        assert_int_equal(guard_check_unit(e, u, &err), 0);
        assert_int_equal(unit_table_add(&e->units, u), 0);
        e->guard_usage_usec = 0; /* the cache: what the unit brought is counted from now on */
        /* 101 is the unit's: protecting it on its own adds nothing. */
        assert_int_equal(guard_check_protect(e, &c, &err), 0);
        assert_int_equal(guard_protected_usage(e), (uint64_t) (8192 + 2048) * 1024);
}

static void test_guard_parse_status_rss_reads_kilobytes(void **state) {
        uint64_t rss = 0;

        assert_int_equal(guard_parse_status_rss("Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n", &rss),
                         0);
        assert_int_equal(rss, 2048 * 1024);
}

static void test_guard_parse_status_rss_without_line_or_garbage(void **state) {
        uint64_t rss = 7;

        assert_int_equal(guard_parse_status_rss("Name:\tkworker\nState:\tI (idle)\n", &rss), -ENODATA);
        assert_int_equal(guard_parse_status_rss("VmRSS:\tlots\n", &rss), -EINVAL);
        assert_int_equal(guard_parse_status_rss("VmRSS:\t99999999999999999999 kB\n", &rss), -EINVAL);
        assert_int_equal(rss, 7);
}

static void test_guard_ceiling_allows_up_to_and_not_past(void **state) {
        assert_true(guard_ceiling_allows(0, 100, 0)); /* no ceiling */
        assert_true(guard_ceiling_allows(60, 40, 100));
        assert_false(guard_ceiling_allows(61, 40, 100));
        assert_false(guard_ceiling_allows(0, 101, 100));
        assert_false(guard_ceiling_allows(UINT64_MAX, 1, 100));
        assert_false(guard_ceiling_allows(1, UINT64_MAX, UINT64_MAX)); /* no overflow */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_guard_parse_status_rss_reads_kilobytes),
                cmocka_unit_test(test_guard_parse_status_rss_without_line_or_garbage),
                cmocka_unit_test(test_guard_ceiling_allows_up_to_and_not_past),
                cmocka_unit_test_setup_teardown(test_guard_refuses_a_protect_that_leaves_nothing_killable, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_guard_allows_when_one_other_process_is_killable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_guard_does_not_count_a_protect_that_keeps_the_process_killable,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_guard_ceiling_refuses_what_would_pass_it, setup, teardown),
                cmocka_unit_test_setup_teardown(test_guard_refuses_an_update_to_minus_1000_that_leaves_nothing_killable,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_guard_passes_an_update_that_changes_nothing_the_kernel_may_pick,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_guard_counts_a_unit_once_whatever_order_its_cgroups_come_in,
                                                setup_with_cgroups, teardown_with_cgroups),
                cmocka_unit_test_setup_teardown(test_guard_counts_a_cgroup_once_for_a_unit_and_a_pid_in_it,
                                                setup_with_cgroups, teardown_with_cgroups),
                cmocka_unit_test_setup_teardown(test_guard_counts_a_process_once_for_a_unit_and_its_own_protection,
                                                setup_with_cgroups, teardown_with_cgroups),
                cmocka_unit_test_setup_teardown(test_guard_ceiling_counts_a_candidate_counted_already_once,
                                                setup_with_cgroups, teardown_with_cgroups),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
