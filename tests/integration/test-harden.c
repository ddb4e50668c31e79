/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Issue 10, the engine against hostile callers, files and processes: a
 * setuid-like process, crafted records in state.json, a state directory that
 * cannot be written, per-user limits, a multi-threaded process whose main
 * thread exited, a cgroup with a BPF program attached.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/bpf.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"
#include "engine.h"
#include "fileio.h"
#include "itest.h"
#include "oomprotect/protocol.h"
#include "proc.h"
#include "state.h"

#define NOBODY ((uid_t) 65534)

static Sandbox sb;
static Config cfg;
static Engine *engine;
static pid_t kids[16];
static size_t n_kids;

typedef struct Creds {
        uid_t ruid, euid, suid;
        bool undumpable;
        bool leader_exits; /* start a thread, then end the main thread alone */
} Creds;

static int thread_ready = -1;

static void *thread_main(void *arg) {
        pid_t tid = (pid_t) syscall(SYS_gettid);

        (void) !write(thread_ready, &tid, sizeof(tid));
        for (;;)
                pause();
        return NULL;
}

/* A child in <top>/<sub> with the given uids; returns its pid (and the live thread's id in *ret_tid). */
static pid_t spawn(const char *sub, const Creds *c, pid_t *ret_tid) {
        char rel[256], value[16];
        int ready[2], rootfd;
        pid_t pid, tid = 0;

        snprintf(rel, sizeof(rel), "%s/%s", sb.top, sub);
        assert_int_equal(cgroup_open_root(sb.mount, &rootfd), 0);
        assert_true(cgroup_create(rootfd, rel) >= 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                pthread_t t;
                snprintf(value, sizeof(value), "%d", sb.child_adj);
                if (cgroup_write(rootfd, rel, "cgroup.procs", "0") < 0 ||
                    write_string_file_at(AT_FDCWD, "/proc/self/oom_score_adj", value) < 0)
                        _exit(1);
                if (c && setresuid(c->ruid, c->euid, c->suid) < 0)
                        _exit(2);
                /* A change of euid makes a process undumpable (and clears the death signal): set both as asked. */
                (void) prctl(PR_SET_DUMPABLE, c && c->undumpable ? 0 : 1);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                thread_ready = ready[1];
                if (c && c->leader_exits) {
                        if (pthread_create(&t, NULL, thread_main, NULL) != 0)
                                _exit(3);
                        syscall(SYS_exit, 0); /* the main thread alone */
                }
                tid = getpid();
                (void) !write(ready[1], &tid, sizeof(tid));
                for (;;)
                        pause();
        }
        close(ready[1]);
        close(rootfd);
        assert_int_equal(read(ready[0], &tid, sizeof(tid)), sizeof(tid));
        close(ready[0]);
        kids[n_kids++] = pid;
        if (ret_tid)
                *ret_tid = tid;
        return pid;
}

static void start_engine(void) {
        OpError err = {};

        assert_int_equal(engine_new(&cfg, NULL, NULL, NULL, &engine, &err), 0);
        assert_true(itest_start(engine) >= 0);
}

static int setup(void **state) {
        sandbox_config(&sb, &cfg);
        return 0;
}

static int teardown(void **state) {
        char path[256];

        if (engine)
                (void) itest_unprotect_all(engine, UID_ANY, "test teardown");
        engine = engine_free(engine);
        for (size_t i = 0; i < n_kids; i++) {
                kill(kids[i], SIGKILL);
                waitpid(kids[i], NULL, 0);
        }
        n_kids = 0;
        config_done(&cfg);
        (void) umount2(sb.statedir, MNT_DETACH);
        snprintf(path, sizeof(path), "%s/state.json", sb.statedir);
        unlink(path);
        return 0;
}

static ProtectRequest request(pid_t pid, uid_t owner) {
        return (ProtectRequest) { .pid = pid, .pidfd = -1, .source = "test", .owner = owner };
}

static char *scope_of(pid_t pid) {
        char *s = NULL;

        assert_true(asprintf(&s, "/%s/" OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX, sb.slice_rel,
                             (int) pid) > 0);
        return s;
}

static void assert_untouched(pid_t pid, const char *sub) {
        _cleanup_free_ char *cg = pid_cgroup(pid), *want = sandbox_path(&sb, sub);

        assert_non_null(cg);
        assert_string_equal(cg, want);
        assert_int_equal(pid_adj(pid), sb.child_adj);
}

/* ---- class 2: no privilege through protection ---- */

static void test_group_member_cannot_protect_a_setuid_like_process(void **state) {
        const Creds setuid_root = { .ruid = NOBODY };      /* a setuid-root program it started */
        const Creds saved_root = { .ruid = NOBODY, .euid = NOBODY };    /* one that can switch back to root */
        const Creds undumpable = { .ruid = NOBODY, .euid = NOBODY, .suid = NOBODY, .undumpable = true };
        const Creds mine = { .ruid = NOBODY, .euid = NOBODY, .suid = NOBODY };
        pid_t a = spawn("suid", &setuid_root, NULL), b = spawn("saved", &saved_root, NULL);
        pid_t c = spawn("nodump", &undumpable, NULL), d = spawn("mine", &mine, NULL);
        ProtectRequest req;
        OpError err = {};

        start_engine();
        req = request(a, NOBODY);
        assert_int_equal(itest_protect(engine, &req, NULL, &err), -EPERM);
        assert_string_equal(err.name, OOMPROTECT_ERROR_PERMISSION_DENIED);
        assert_non_null(strstr(err.message, "effective uid 0"));
        assert_untouched(a, "suid");
        err = (OpError) {};
        req = request(b, NOBODY);
        assert_int_equal(itest_protect(engine, &req, NULL, &err), -EPERM);
        assert_non_null(strstr(err.message, "saved uid 0"));
        assert_untouched(b, "saved");
        err = (OpError) {};
        req = request(c, NOBODY);
        assert_int_equal(itest_protect(engine, &req, NULL, &err), -EPERM);
        assert_non_null(strstr(err.message, "not dumpable"));
        assert_untouched(c, "nodump");
        assert_int_equal(engine_count(engine), 0);

        /* Its own, dumpable process it may protect; root may protect any of them. */
        err = (OpError) {};
        req = request(d, NOBODY);
        if (itest_protect(engine, &req, NULL, &err) != 1)
                fail_msg("%s", err.message);
        req = request(a, UID_ANY);
        if (itest_protect(engine, &req, NULL, &err) != 1)
                fail_msg("%s", err.message);
}

/* ---- class 9: processes as Linux has them ---- */

static void test_process_whose_main_thread_exited_is_alive_and_protectable(void **state) {
        const Creds leader_exits = { .leader_exits = true };
        pid_t tid = 0, pid = spawn("threads", &leader_exits, &tid);
        _cleanup_free_ char *scope = scope_of(pid), *cg = NULL, *stat = NULL, *v2 = NULL;
        char path[64];
        ProtectRequest req = request(pid, UID_ANY);
        OpError err = {};
        ProcStat st;

        assert_true(tid != pid);
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        for (int i = 0; i < 200; i++) { /* the main thread's exit is seen a moment later */
                free(stat);
                stat = NULL;
                assert_int_equal(read_full_file_at(AT_FDCWD, path, 4096, &stat, NULL), 0);
                assert_int_equal(proc_parse_stat(stat, &st), 0);
                if (st.state == 'Z')
                        break;
                usleep(10000);
        }
        assert_int_equal(st.state, 'Z');
        start_engine();
        assert_int_equal(itest_protect(engine, &req, NULL, &err), 1);
        snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", (int) pid, (int) tid);
        assert_int_equal(read_full_file_at(AT_FDCWD, path, 4096, &cg, NULL), 0);
        assert_int_equal(proc_parse_cgroup_v2(cg, &v2), 0);
        assert_string_equal(v2, scope);
        assert_int_equal(pid_adj(pid), sb.protect_adj);
}

/* ---- class 5: records are input too ---- */

/* A record as a crafted state.json would hold it: pid's real starttime, comm "crafted". */
static Protection *crafted(pid_t pid, ProtectionState state, const char *original, const char *scope) {
        _cleanup_close_ int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        Protection *p = protection_new();

        assert_non_null(p);
        p->pid = pid;
        assert_int_equal(proc_read_starttime(procfd, pid, &p->starttime), 0);
        strcpy(p->comm, "crafted");
        p->state = state;
        p->kind = PROTECTION_MOVED;
        p->original_adj = p->applied_adj = pid_adj(pid);
        p->original_cgroup = original ? strdup(original) : pid_cgroup(pid);
        p->scope_cgroup = scope ? strdup(scope) : scope_of(pid);
        p->source = strdup("crafted");
        return p;
}

static void save_records(Protection **records, size_t n) {
        _cleanup_close_ int fd = open(sb.statedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(state_save(fd, records, n), 0);
        for (size_t i = 0; i < n; i++)
                protection_free(records[i]);
}

static bool is_kernel_thread(pid_t pid) {
        _cleanup_free_ char *text = NULL;
        char path[32];
        ProcStat st;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        return read_full_file_at(AT_FDCWD, path, 4096, &text, NULL) >= 0 && proc_parse_stat(text, &st) >= 0 &&
               (st.flags & PF_KTHREAD_FLAG);
}

static void test_crafted_records_never_move_the_daemon_pid1_or_out_of_the_slice(void **state) {
        pid_t outside = spawn("outside", NULL, NULL), dotdot = spawn("dotdot", NULL, NULL);
        pid_t fine = spawn("fine", NULL, NULL);
        _cleanup_free_ char *self_cgroup = pid_cgroup(getpid()), *pid1_cgroup = pid_cgroup(1);
        _cleanup_free_ char *elsewhere = sandbox_path(&sb, "elsewhere"), *bad = NULL;
        Protection *records[6];
        size_t n = 0;

        assert_true(asprintf(&bad, "/%s/../../x", sb.top) > 0);
        records[n++] = crafted(1, PROTECTION_RESTORING, NULL, NULL);
        records[n++] = crafted(getpid(), PROTECTION_ACTIVE, NULL, NULL); /* the "daemon" is this test */
        records[n++] = crafted(outside, PROTECTION_ACTIVE, NULL, elsewhere);
        records[n++] = crafted(dotdot, PROTECTION_RESTORING, bad, NULL);
        records[n++] = crafted(fine, PROTECTION_ACTIVE, NULL, NULL);
        if (is_kernel_thread(2))
                records[n++] = crafted(2, PROTECTION_ACTIVE, "/", NULL);
        else
                print_message("# note: PID 2 is no kernel thread here: that record is not tried\n");
        save_records(records, n);

        start_engine();
        _cleanup_free_ char *self_now = pid_cgroup(getpid()), *pid1_now = pid_cgroup(1);
        assert_string_equal(self_now, self_cgroup);
        assert_string_equal(pid1_now, pid1_cgroup);
        assert_untouched(outside, "outside");
        assert_untouched(dotdot, "dotdot");
        assert_false(cgroup_exists(&sb, elsewhere));
        /* Only the clean record was taken, and the file no longer holds the others. */
        assert_int_equal(engine_count(engine), 1);
        assert_non_null(engine_get(engine, fine));
        _cleanup_free_ char *fine_now = pid_cgroup(fine), *fine_scope = scope_of(fine);
        assert_string_equal(fine_now, fine_scope);
}

/* ---- class 6: failures are failures ---- */

static void assert_in_scope(pid_t pid) {
        _cleanup_free_ char *cg = pid_cgroup(pid), *scope = scope_of(pid);

        assert_non_null(cg);
        assert_string_equal(cg, scope);
        assert_int_equal(pid_adj(pid), sb.protect_adj);
}

/* An engine that protected pid and went away (RestoreOnStop=no keeps it), so the next one loads it. */
static void protect_with_earlier_engine(pid_t pid) {
        ProtectRequest req = request(pid, UID_ANY);
        OpError err = {};

        start_engine();
        assert_int_equal(itest_protect(engine, &req, NULL, &err), 1);
        engine = engine_free(engine);
        assert_in_scope(pid);
}

/* Unprotect, UnprotectAll and Protect against a state directory that takes no writes: each fails and changes nothing. */
static void assert_nothing_changes_without_persisting(pid_t protected, pid_t other, const char *other_sub) {
        ProtectRequest req = request(other, UID_ANY);
        OpError err = {};

        start_engine();
        assert_in_scope(protected);
        assert_true(itest_unprotect(engine, protected, UID_ANY, "test", NULL, &err) < 0);
        assert_non_null(strstr(err.message, "Cannot save the state"));
        assert_non_null(strstr(err.message, "stays protected"));
        assert_non_null(engine_get(engine, protected));
        assert_in_scope(protected);
        assert_true(itest_unprotect_all(engine, UID_ANY, "test") < 0);
        assert_in_scope(protected);
        err = (OpError) {};
        assert_true(itest_protect(engine, &req, NULL, &err) < 0);
        assert_non_null(strstr(err.message, "nothing was changed"));
        assert_null(engine_get(engine, other));
        assert_untouched(other, other_sub);
        engine = engine_free(engine);
}

static void test_read_only_state_directory_fails_every_change_and_changes_nothing(void **state) {
        pid_t a = spawn("ro-a", NULL, NULL), b = spawn("ro-b", NULL, NULL);

        protect_with_earlier_engine(a);
        if (mount(sb.statedir, sb.statedir, NULL, MS_BIND, NULL) < 0 ||
            mount(NULL, sb.statedir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
                print_message("# note: cannot bind-mount %s read-only (%m): not tested here\n", sb.statedir);
                skip();
        }
        assert_nothing_changes_without_persisting(a, b, "ro-b");
        assert_int_equal(umount2(sb.statedir, MNT_DETACH), 0);
}

static void test_full_state_directory_fails_every_change_and_changes_nothing(void **state) {
        pid_t a = spawn("full-a", NULL, NULL), b = spawn("full-b", NULL, NULL);
        _cleanup_free_ char *saved = NULL, *fill = NULL, *path = NULL;
        size_t len = 0;
        int fd;

        protect_with_earlier_engine(a);
        assert_true(asprintf(&path, "%s/state.json", sb.statedir) > 0);
        assert_int_equal(read_full_file_at(AT_FDCWD, path, 1 << 20, &saved, &len), 0);
        if (mount("tmpfs", sb.statedir, "tmpfs", 0, "size=16k,mode=0700") < 0) {
                print_message("# note: cannot mount a tmpfs on %s (%m): not tested here\n", sb.statedir);
                skip();
        }
        fd = open(sb.statedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write_file_atomic_at(fd, "state.json", saved, len, 0600), 0);
        close(fd);
        assert_true(asprintf(&fill, "%s/fill", sb.statedir) > 0);
        fd = open(fill, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        for (char block[512] = {}; write(fd, block, sizeof(block)) > 0;)
                ;
        close(fd);
        assert_nothing_changes_without_persisting(a, b, "full-b");
        assert_int_equal(umount2(sb.statedir, MNT_DETACH), 0);
}

/* ---- class 3: no starvation of root ---- */

static void test_a_member_fills_its_share_and_root_can_still_protect(void **state) {
        const Creds mine = { .ruid = NOBODY, .euid = NOBODY, .suid = NOBODY };
        pid_t theirs[5], root_kid = spawn("root-kid", NULL, NULL), root_kid2 = spawn("root-kid2", NULL, NULL);
        ProtectRequest req;
        OpError err = {};

        for (size_t i = 0; i < ELEMENTSOF(theirs); i++)
                theirs[i] = spawn("member", &mine, NULL);
        config_set(&cfg, "MaxProtected", "4", "test", 1); /* non-root uids together: 3 */
        config_set(&cfg, "MaxProtectedPerUser", "2", "test", 2);
        config_set(&cfg, "MemoryMinBudget", "100M", "test", 3); /* non-root uids together: 90M */
        config_set(&cfg, "MemoryMinBudgetPerUser", "infinity", "test", 4);
        start_engine();

        /* Per uid: two. */
        for (size_t i = 0; i < 2; i++) {
                req = request(theirs[i], NOBODY);
                assert_int_equal(itest_protect(engine, &req, NULL, &err), 1);
        }
        req = request(theirs[2], NOBODY);
        assert_int_equal(itest_protect(engine, &req, NULL, &err), -EUSERS);
        assert_non_null(strstr(err.message, "MaxProtectedPerUser=2"));
        assert_untouched(theirs[2], "member");

        /* All of them together: 3 of 4, then root's share is all that is left. */
        cfg.max_protected_per_user = 100;
        req = request(theirs[2], NOBODY);
        assert_int_equal(itest_protect(engine, &req, NULL, &err), 1);
        err = (OpError) {};
        req = request(theirs[3], NOBODY);
        assert_int_equal(itest_protect(engine, &req, NULL, &err), -EUSERS);
        assert_non_null(strstr(err.message, "kept for root"));
        req = request(root_kid, UID_ANY);
        assert_int_equal(itest_protect(engine, &req, NULL, &err), 1);
        assert_int_equal(itest_unprotect_all(engine, UID_ANY, "test"), 4);

        /* memory.min: 90M for them together, the last 10M root's. */
        err = (OpError) {};
        req = request(theirs[0], NOBODY);
        req.options = (ProtectOptions) { .has_memory_min = true, .memory_min = 90 << 20 };
        assert_int_equal(itest_protect(engine, &req, NULL, &err), 1);
        req = request(theirs[1], NOBODY);
        req.options = (ProtectOptions) { .has_memory_min = true, .memory_min = 1 << 20 };
        assert_int_equal(itest_protect(engine, &req, NULL, &err), -ENOSPC);
        assert_non_null(strstr(err.message, "kept for root"));
        req = request(root_kid2, UID_ANY);
        req.options = (ProtectOptions) { .has_memory_min = true, .memory_min = 10 << 20 };
        err = (OpError) {};
        assert_int_equal(itest_protect(engine, &req, NULL, &err), 1);
}

/* ---- class 7: load; class 1: PID reuse of members ---- */

static void test_protect_is_refused_cleanly_before_descriptors_run_out(void **state) {
        struct rlimit saved, low;
        pid_t kids_[3];
        ProtectRequest req;
        OpError err = {};
        int open_now = 0;

        for (int fd = 0; fd < 1024; fd++) /* new descriptors take the lowest free numbers: count them */
                if (fcntl(fd, F_GETFD) >= 0)
                        open_now++;
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
        for (size_t i = 0; i < ELEMENTSOF(kids_); i++)
                kids_[i] = spawn("fds", NULL, NULL);
        /* Room for two pidfds above the engine's reserve. */
        low = (struct rlimit) { .rlim_cur = 128 + 2, .rlim_max = saved.rlim_max };
        assert_true((int) low.rlim_cur > open_now + 8);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
        start_engine();
        for (size_t i = 0; i < 2; i++) {
                req = request(kids_[i], UID_ANY);
                assert_int_equal(itest_protect(engine, &req, NULL, &err), 1);
        }
        req = request(kids_[2], UID_ANY);
        assert_int_equal(itest_protect(engine, &req, NULL, &err), -EUSERS);
        assert_non_null(strstr(err.message, "raise LimitNOFILE="));
        assert_untouched(kids_[2], "fds");
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

static void test_member_whose_pid_names_another_process_is_never_moved(void **state) {
        pid_t parent = spawn("reuse-parent", NULL, NULL), stranger = spawn("reuse-stranger", NULL, NULL);
        Protection *p = crafted(parent, PROTECTION_ACTIVE, NULL, NULL);

        /* The member that was at this PID exited; the PID now names a stranger (another start time). */
        p->descendants = true;
        p->members = calloc(1, sizeof(ProtectionMember));
        assert_non_null(p->members);
        p->members[0] = (ProtectionMember) { .pid = stranger, .original_cgroup = pid_cgroup(stranger),
                                             .original_adj = pid_adj(stranger) };
        p->members[0].starttime = p->starttime + 1000000; /* not the stranger's */
        p->n_members = 1;
        save_records(&p, 1);

        start_engine();
        _cleanup_free_ char *cg = pid_cgroup(parent), *scope = scope_of(parent);
        assert_string_equal(cg, scope);
        assert_untouched(stranger, "reuse-stranger");
        assert_int_equal(engine_get(engine, parent)->n_members, 0);
}

/* ---- class 1: an adj write reaches the recorded process or none ---- */

/* A sleeping child, given PID want if want > 0 and no one takes it first (ns_last_pid). */
static pid_t fork_sleeper_at(pid_t want) {
        pid_t pid;

        if (want > 0) {
                char value[16];
                snprintf(value, sizeof(value), "%d", (int) want - 1);
                (void) write_string_file_at(AT_FDCWD, "/proc/sys/kernel/ns_last_pid", value);
        }
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                for (;;)
                        pause();
        }
        kids[n_kids++] = pid;
        return pid;
}

static void test_adj_write_never_reaches_a_newcomer_at_a_reused_pid(void **state) {
        _cleanup_close_ int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        pid_t old = fork_sleeper_at(0), newcomer;
        int pidfd = proc_pidfd_open(old), adj = pid_adj(old);
        uint64_t starttime;

        assert_true(pidfd >= 0);
        assert_int_equal(proc_read_starttime(procfd, old, &starttime), 0);
        assert_int_equal(proc_write_oom_score_adj_of(procfd, old, pidfd, starttime, adj + 1), 0);
        assert_int_equal(pid_adj(old), adj + 1);

        kill(old, SIGKILL);
        waitpid(old, NULL, 0);
        kids[--n_kids] = 0;
        /* A start time counts clock ticks: within the same one (10 ms) a newcomer at the PID would look the same. */
        usleep(30 * 1000);
        newcomer = fork_sleeper_at(old);
        if (newcomer != old) {
                print_message("note: another process took PID %d first; the newcomer case is not tried\n", (int) old);
                assert_int_equal(proc_write_oom_score_adj_of(procfd, old, pidfd, starttime, adj + 2), -ESRCH);
        } else {
                assert_int_equal(proc_write_oom_score_adj_of(procfd, old, pidfd, 0, adj + 2), -ESRCH);
                assert_int_equal(proc_write_oom_score_adj_of(procfd, old, -EBADF, starttime, adj + 2), -ESRCH);
                assert_int_equal(pid_adj(newcomer), adj); /* the newcomer's own, untouched */
        }
        close(pidfd);
}

/*
 * A parent in <top>/mr-parent with one child in <top>/mr-member (its adj
 * raised by 50); the parent reaps it when it dies. *ret_child: the child.
 */
static pid_t spawn_parent_with_member(pid_t *ret_child) {
        char parent_rel[256], member_rel[256], value[16];
        int ready[2], rootfd;
        pid_t pid, child = 0;

        snprintf(parent_rel, sizeof(parent_rel), "%s/mr-parent", sb.top);
        snprintf(member_rel, sizeof(member_rel), "%s/mr-member", sb.top);
        assert_int_equal(cgroup_open_root(sb.mount, &rootfd), 0);
        assert_true(cgroup_create(rootfd, parent_rel) >= 0);
        assert_true(cgroup_create(rootfd, member_rel) >= 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                snprintf(value, sizeof(value), "%d", sb.child_adj);
                if (cgroup_write(rootfd, parent_rel, "cgroup.procs", "0") < 0 ||
                    write_string_file_at(AT_FDCWD, "/proc/self/oom_score_adj", value) < 0)
                        _exit(1);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                child = fork();
                if (child == 0) {
                        snprintf(value, sizeof(value), "%d", sb.child_adj + 50);
                        if (cgroup_write(rootfd, member_rel, "cgroup.procs", "0") < 0 ||
                            write_string_file_at(AT_FDCWD, "/proc/self/oom_score_adj", value) < 0)
                                _exit(1);
                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                        (void) !write(ready[1], &child, sizeof(child)); /* 0: ready */
                        for (;;)
                                pause();
                }
                (void) !write(ready[1], &child, sizeof(child));
                for (;;)
                        if (waitpid(-1, NULL, 0) < 0)
                                pause();
        }
        close(ready[1]);
        close(rootfd);
        for (int i = 0; i < 2; i++) {
                pid_t v;
                assert_int_equal(read(ready[0], &v, sizeof(v)), sizeof(v));
                if (v > 0)
                        child = v;
        }
        close(ready[0]);
        kids[n_kids++] = pid;
        *ret_child = child;
        return pid;
}

/*
 * A member exits; a child born in the scope since takes its PID: on
 * unprotect that newcomer is a child of the protection (the protected
 * process's cgroup and adj), not the member (its cgroup, its adj).
 */
static void test_newcomer_at_an_exited_members_pid_is_not_taken_for_the_member(void **state) {
        pid_t member, parent = spawn_parent_with_member(&member), newcomer;
        ProtectRequest req = request(parent, UID_ANY);
        OpError err = {};
        int rootfd;

        start_engine();
        req.options.descendants = true;
        if (itest_protect(engine, &req, NULL, &err) != 1)
                fail_msg("%s", err.message);
        assert_int_equal(engine_get(engine, parent)->n_members, 1);
        char scope[256];
        char *s = scope_of(parent), *mcg = pid_cgroup(member);
        snprintf(scope, sizeof(scope), "%s", s);
        bool in_scope = mcg && streq(mcg, s);
        free(s); /* freed now: skip() and a failed assert longjmp past cleanup attributes */
        free(mcg);
        assert_true(in_scope);

        kill(member, SIGKILL); /* its parent reaps it */
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d", (int) member);
        for (int i = 0; i < 200 && access(path, F_OK) == 0; i++)
                usleep(10 * 1000);
        usleep(30 * 1000); /* another start time tick */
        newcomer = fork_sleeper_at(member);
        if (newcomer != member) {
                print_message("note: another process took PID %d first; the reuse case is not tried\n", (int) member);
                skip();
        }
        /* Born in the scope: there, with the applied value it would have inherited. */
        char value[16];
        snprintf(value, sizeof(value), "%d", (int) newcomer);
        assert_int_equal(cgroup_open_root(sb.mount, &rootfd), 0);
        assert_int_equal(cgroup_write(rootfd, cgroup_path_to_rel(scope), "cgroup.procs", value), 0);
        close(rootfd);
        snprintf(value, sizeof(value), "%d", engine_get(engine, parent)->applied_adj);
        snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int) newcomer);
        assert_int_equal(write_string_file_at(AT_FDCWD, path, value), 0);

        if (itest_unprotect(engine, parent, UID_ANY, "test", NULL, &err) < 0)
                fail_msg("%s", err.message);
        _cleanup_free_ char *ncg = pid_cgroup(newcomer), *want = sandbox_path(&sb, "mr-parent");
        assert_string_equal(ncg, want);                 /* not mr-member */
        assert_int_equal(pid_adj(newcomer), sb.child_adj); /* not the member's child_adj + 50 */
        assert_untouched(parent, "mr-parent");
}

/* ---- class 2 on cgroupfs: a cgroup BPF program is a limit too ---- */

/* Attaches a device filter that allows everything to <top>/sub; false when this kernel or process cannot. */
static bool attach_device_filter(const char *sub) {
        const struct bpf_insn allow[] = {
                { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
                { .code = BPF_JMP | BPF_EXIT },
        };
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int prog = -EBADF, cg = -EBADF;
        union bpf_attr attr;

        assert_true(asprintf(&path, "%s/%s/%s", sb.mount, sb.top, sub) > 0);
        memset(&attr, 0, sizeof(attr));
        attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        attr.insns = (uint64_t) (uintptr_t) allow;
        attr.insn_cnt = ELEMENTSOF(allow);
        attr.license = (uint64_t) (uintptr_t) "GPL";
        prog = (int) syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
        cg = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (prog < 0 || cg < 0)
                return false;
        memset(&attr, 0, sizeof(attr));
        attr.target_fd = (uint32_t) cg;
        attr.attach_bpf_fd = (uint32_t) prog;
        attr.attach_type = BPF_CGROUP_DEVICE;
        return syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof(attr)) == 0;
}

static void test_a_cgroup_bpf_program_is_a_limit_no_member_moves_out_of(void **state) {
        const Creds mine = { .ruid = NOBODY, .euid = NOBODY, .suid = NOBODY };
        pid_t a = spawn("bpf", &mine, NULL), b;
        const char *what = NULL;
        ProtectRequest req;
        OpError err = {};
        int rootfd;

        if (!attach_device_filter("bpf")) {
                print_message("SKIP: cannot load and attach a cgroup BPF program here: %m\n");
                skip();
        }
        b = spawn("bpf", &mine, NULL);
        assert_int_equal(cgroup_open_root(sb.mount, &rootfd), 0);
        _cleanup_free_ char *rel = NULL;
        assert_true(asprintf(&rel, "%s/bpf", sb.top) > 0);
        assert_int_equal(cgroup_find_bpf(rootfd, rel, &what), 1);
        assert_string_equal(what, "a BPF device filter");
        assert_int_equal(cgroup_find_limit(rootfd, rel, UINT64_MAX, &what), 1);
        close(rootfd);

        start_engine();
        /* A member asking for a move out of it is refused, nothing changed... */
        req = request(a, NOBODY);
        req.options.has_in_place = true;
        req.options.in_place = false;
        assert_int_equal(itest_protect(engine, &req, NULL, &err), -EPERM);
        assert_non_null(strstr(err.message, "a BPF device filter"));
        assert_untouched(a, "bpf");
        /* ...and without InPlace its process is protected where it is. */
        err = (OpError) {};
        req = request(a, NOBODY);
        if (itest_protect(engine, &req, NULL, &err) != 1)
                fail_msg("%s", err.message);
        assert_int_equal(engine_get(engine, a)->kind, PROTECTION_IN_PLACE);
        _cleanup_free_ char *cg = pid_cgroup(a), *want = sandbox_path(&sb, "bpf");
        assert_string_equal(cg, want);
        /* Root may still ask for the move. */
        req = request(b, UID_ANY);
        req.options.has_in_place = true;
        req.options.in_place = false;
        if (itest_protect(engine, &req, NULL, &err) != 1)
                fail_msg("%s", err.message);
        _cleanup_free_ char *cgb = pid_cgroup(b), *scope = scope_of(b);
        assert_string_equal(cgb, scope);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
                T(test_group_member_cannot_protect_a_setuid_like_process),
                T(test_process_whose_main_thread_exited_is_alive_and_protectable),
                T(test_crafted_records_never_move_the_daemon_pid1_or_out_of_the_slice),
                T(test_read_only_state_directory_fails_every_change_and_changes_nothing),
                T(test_a_member_fills_its_share_and_root_can_still_protect),
                T(test_protect_is_refused_cleanly_before_descriptors_run_out),
                T(test_member_whose_pid_names_another_process_is_never_moved),
                T(test_full_state_directory_fails_every_change_and_changes_nothing),
                T(test_a_cgroup_bpf_program_is_a_limit_no_member_moves_out_of),
                T(test_adj_write_never_reaches_a_newcomer_at_a_reused_pid),
                T(test_newcomer_at_an_exited_members_pid_is_not_taken_for_the_member),
#undef T
        };
        int r;

        if (sandbox_setup_or_skip(&sb, false) != 0)
                return 77;
        r = cmocka_run_group_tests(tests, NULL, NULL);
        sandbox_teardown(&sb);
        return r;
}
