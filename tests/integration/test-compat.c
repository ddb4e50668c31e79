/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The historic text protocol end to end: the real oomprotectd (--no-bus)
 * serving CompatDirectory= in a temporary directory, real processes in a
 * real cgroup2 subtree. ctl is written the way scripts write it (a shell's
 * echo, open/write/close), ctl.sock is spoken to as root, as uid 65534 and
 * as an AllowGroup= member; status is compared byte for byte with a text
 * built here independently. Every kind of bad input is checked to be
 * rejected, logged with its reason, to change nothing, and to leave the
 * daemon serving.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "fileio.h"
#include "itest.h"
#include "oomprotect/protocol.h"

#define NOBODY 65534
#define WAIT_MS 10000

static Sandbox sb;
static Child kids[3];
static pid_t daemon_pid, nobody_pid, writer_pid;
static int passed_fds[2] = { -EBADF, -EBADF }; /* what a "service manager" holds in the socket activation test */
static char config_path[256], log_path[256], compat_dir[256], ctl_path[300], sock_path[300], status_path[300],
        usage_path[300];

/* ---- the daemon ---- */

static void dump_log(void) {
        char cmd[512];

        snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", log_path);
        (void) !system(cmd);
}

static void start_daemon(void) {
        const char *args[] = { "--no-bus", "--config", config_path, NULL };

        daemon_pid = daemon_start(&sb, args, log_path);
        if (daemon_pid < 0)
                dump_log();
        assert_true(daemon_pid > 0);
}

static bool daemon_alive(void) {
        return daemon_pid > 0 && waitpid(daemon_pid, NULL, WNOHANG) == 0;
}

static void stop_daemon(void) {
        assert_int_equal(daemon_stop(daemon_pid, SIGTERM), 0);
        daemon_pid = 0;
}

static bool log_has(void *needle) {
        return file_contains(log_path, needle);
}

static void assert_logged(const char *needle) {
        if (!wait_for(log_has, (void *) needle, WAIT_MS)) {
                dump_log();
                fail_msg("the daemon never logged: %s", needle);
        }
}

static size_t log_count(const char *needle) {
        _cleanup_free_ char *text = NULL;
        size_t n = 0;

        if (read_full_file_at(AT_FDCWD, log_path, 256 << 20, &text, NULL) < 0)
                return 0;
        for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* ---- processes ---- */

static bool in_scope(pid_t pid) {
        _cleanup_free_ char *cg = pid_cgroup(pid);
        char want[512];

        snprintf(want, sizeof(want), "/%s/" OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX, sb.slice_rel,
                 (int) pid);
        return cg && streq(cg, want) && pid_adj(pid) == sb.protect_adj;
}

static bool in_scope_cb(void *arg) {
        return in_scope(*(pid_t *) arg);
}

static bool restored(pid_t pid, const char *sub) {
        _cleanup_free_ char *cg = pid_cgroup(pid), *want = sandbox_path(&sb, sub);

        return cg && streq(cg, want) && pid_adj(pid) == sb.child_adj;
}

static bool restored_cb(void *arg) {
        return restored(*(pid_t *) arg, "orig-a");
}

static void assert_becomes_protected(pid_t pid) {
        if (!wait_for(in_scope_cb, &pid, WAIT_MS))
                fail_msg("PID %d did not get protected", (int) pid);
}

static void assert_becomes_restored(pid_t pid) {
        if (!wait_for(restored_cb, &pid, WAIT_MS))
                fail_msg("PID %d was not restored to its cgroup and oom_score_adj", (int) pid);
}

/* A process of uid NOBODY in <top>/nobody, with the children's adj; it waits for SIGKILL. */
static pid_t spawn_nobody(void) {
        char dir[512], procs[600], adj[16];
        int p[2];
        char c;
        pid_t pid;

        snprintf(dir, sizeof(dir), "%s/%s/nobody", sb.mount, sb.top);
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        snprintf(adj, sizeof(adj), "%d", sb.child_adj);
        assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (write_string_file_at(AT_FDCWD, procs, "0") < 0 ||
                    write_string_file_at(AT_FDCWD, "/proc/self/oom_score_adj", adj) < 0 ||
                    setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
                    setresuid(NOBODY, NOBODY, NOBODY) < 0)
                        _exit(1);
                /* A user's own process is dumpable (it exec'd); a setresuid() from root is not, until it says so. */
                (void) prctl(PR_SET_DUMPABLE, 1);
                (void) !write(p[1], "r", 1);
                for (;;)
                        pause();
        }
        close(p[1]);
        assert_int_equal(read(p[0], &c, 1), 1);
        close(p[0]);
        return pid;
}

/* A PID that was a process a moment ago and is no more. */
static pid_t vanished_pid(void) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0)
                _exit(0);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        return pid;
}

/* ---- status ---- */

static int cmp_pid(const void *a, const void *b) {
        return *(const pid_t *) a < *(const pid_t *) b ? -1 : *(const pid_t *) a > *(const pid_t *) b;
}

/* The module's status text for pids, built here from its printf formats, not by the daemon's code. */
static char *expected_status(const pid_t *pids, size_t n) {
        pid_t sorted[8];
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        assert_true(n <= ELEMENTSOF(sorted));
        if (n > 0)
                memcpy(sorted, pids, n * sizeof(pid_t));
        qsort(sorted, n, sizeof(pid_t), cmp_pid);
        fprintf(f, "OOM protected processes:\n");
        fprintf(f, "%-10s %-16s\n", "PID", "NAME");
        fprintf(f, "%-10s %-16s\n", "---", "----");
        for (size_t i = 0; i < n; i++) {
                char path[64];
                _cleanup_free_ char *comm = NULL;

                snprintf(path, sizeof(path), "/proc/%d/comm", (int) sorted[i]);
                assert_int_equal(read_one_line_at(AT_FDCWD, path, &comm), 0);
                fprintf(f, "%-10d %-16s\n", (int) sorted[i], comm);
        }
        fclose(f);
        return buf;
}

static char *read_status(void) {
        char *text = NULL;

        if (read_full_file_at(AT_FDCWD, status_path, 1 << 20, &text, NULL) < 0)
                return NULL;
        return text;
}

static bool status_is(void *expected) {
        _cleanup_free_ char *text = read_status();
        return text && streq(text, expected);
}

static void assert_status(const pid_t *pids, size_t n) {
        _cleanup_free_ char *want = expected_status(pids, n);

        if (!wait_for(status_is, want, WAIT_MS)) {
                _cleanup_free_ char *got = read_status();
                fail_msg("status is\n%s\nexpected\n%s", strna(got), want);
        }
}

/* Right now, without waiting: for "nothing changed" after a rejection was logged. */
static void assert_status_now(const pid_t *pids, size_t n) {
        _cleanup_free_ char *want = expected_status(pids, n), *got = read_status();

        assert_non_null(got);
        assert_string_equal(got, want);
}

/* ---- ctl ---- */

/* Opens ctl for writing without blocking when nobody reads it (ENXIO), then makes writes blocking. */
static int ctl_open(void) {
        int fd = open(ctl_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (fcntl(fd, F_SETFL, 0) < 0) {
                safe_close(fd);
                return -errno;
        }
        return fd;
}

static void write_all(int fd, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                assert_true(n > 0);
                p += n;
                len -= (size_t) n;
        }
}

/* One writer: open, write, close. */
static void ctl_write(const void *data, size_t len) {
        int fd = ctl_open();

        assert_true(fd >= 0);
        write_all(fd, data, len);
        safe_close(fd);
}

static void ctl_printf(const char *fmt, ...) _printf_(1, 2);
static void ctl_printf(const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        ctl_write(s, (size_t) n);
}

static bool pipe_empty(void *arg) {
        int n = -1;
        return ioctl(*(int *) arg, FIONREAD, &n) == 0 && n == 0;
}

/* The daemon has read everything written to fd so far. */
static void wait_consumed(int fd) {
        assert_true(wait_for(pipe_empty, &fd, WAIT_MS));
}

/* The daemon still serves ctl: a valid command protects kids[0], another restores it. */
static void assert_ctl_still_serves(void) {
        assert_true(daemon_alive());
        ctl_printf("setprotection %d 1\n", (int) kids[0].pid);
        assert_becomes_protected(kids[0].pid);
        ctl_printf("setprotection %d 0\n", (int) kids[0].pid);
        assert_becomes_restored(kids[0].pid);
        assert_status(NULL, 0);
}

/* ---- ctl.sock; no cmocka asserts here, these also run in forked children ---- */

/* The paths here are far shorter than sun_path; a longer one is cut and fails to connect. */
static void sun_path_set(struct sockaddr_un *sa, const char *path) {
        size_t n = MIN(strlen(path), sizeof(sa->sun_path) - 1);

        memcpy(sa->sun_path, path, n);
        sa->sun_path[n] = '\0';
}

static int sock_connect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        sun_path_set(&sa, sock_path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        return fd;
}

/* Everything fd receives until the daemon closes it (10 s at most); NULL on failure. */
static char *sock_read_all(int fd) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char chunk[4096];
                ssize_t n;

                if (poll(&p, 1, WAIT_MS) <= 0)
                        break;
                n = read(fd, chunk, sizeof(chunk));
                if (n <= 0) {
                        fclose(f);
                        if (n == 0)
                                return buf;
                        free(buf);
                        return NULL;
                }
                fwrite(chunk, 1, (size_t) n, f);
        }
        fclose(f);
        free(buf);
        return NULL;
}

/* Sends input, half-closes, returns all replies. */
static char *sock_exchange_len(const void *input, size_t len) {
        _cleanup_close_ int fd = sock_connect();
        const char *p = input;

        if (fd < 0)
                return NULL;
        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n < 0)
                        return NULL;
                p += n;
                len -= (size_t) n;
        }
        if (shutdown(fd, SHUT_WR) < 0)
                return NULL;
        return sock_read_all(fd);
}

static char *sock_exchange(const char *input) {
        return sock_exchange_len(input, strlen(input));
}

typedef char *(*as_func_t)(const void *arg);

static char *exchange_func(const void *input) {
        return sock_exchange(input);
}

/* Runs f(arg) in a child with the given credentials; returns what it returned. */
static char *run_as(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, as_func_t f, const void *arg) {
        char *buf = NULL;
        size_t size = 0;
        int p[2], status;
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char *out;
                if (setgroups(n_groups, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(2);
                out = f(arg);
                if (!out)
                        _exit(3);
                (void) !write(p[1], out, strlen(out));
                _exit(0);
        }
        close(p[1]);
        FILE *o = open_memstream(&buf, &size);
        char chunk[4096];
        ssize_t n;
        while ((n = read(p[0], chunk, sizeof(chunk))) > 0)
                fwrite(chunk, 1, (size_t) n, o);
        fclose(o);
        close(p[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("the child as uid %u failed (status 0x%x)", (unsigned) uid, (unsigned) status);
        return buf;
}

/* ---- fixtures ---- */

static void remove_compat_dir(void) {
        static const char *const names[] = { "ctl", "ctl.sock", "status", "usage" };
        struct dirent *de;
        DIR *d;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char path[512];
                snprintf(path, sizeof(path), "%s/%s", compat_dir, names[i]);
                (void) unlink(path);
        }
        if (rmdir(compat_dir) >= 0 || errno == ENOENT || !(d = opendir(compat_dir)))
                return;
        /* Something else was left (a daemon killed in the middle of a write?): say what, then remove it. */
        while ((de = readdir(d))) {
                char path[512];
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                fprintf(stderr, "# left in %s by the test before: %s\n", compat_dir, de->d_name);
                snprintf(path, sizeof(path), "%s/%s", compat_dir, de->d_name);
                (void) unlink(path);
        }
        closedir(d);
        (void) rmdir(compat_dir);
}

static int setup(void **state) {
        char path[300];

        snprintf(config_path, sizeof(config_path), "%s/oomprotectd.conf", sb.statedir);
        snprintf(log_path, sizeof(log_path), "%s/daemon.log", sb.statedir);
        snprintf(compat_dir, sizeof(compat_dir), "%s", sb.compatdir);
        snprintf(ctl_path, sizeof(ctl_path), "%s/ctl", compat_dir);
        snprintf(sock_path, sizeof(sock_path), "%s/ctl.sock", compat_dir);
        snprintf(status_path, sizeof(status_path), "%s/status", compat_dir);
        snprintf(usage_path, sizeof(usage_path), "%s/usage", compat_dir);
        snprintf(path, sizeof(path), "%s/state.json", sb.statedir);
        (void) unlink(path);
        (void) unlink(log_path);
        remove_compat_dir();
        sandbox_write_config(&sb, config_path, NULL);
        assert_int_equal(sandbox_spawn(&sb, "orig-a", sb.child_adj, &kids[0]), 0);
        return 0;
}

static int teardown(void **state) {
        if (daemon_pid > 0)
                daemon_stop(daemon_pid, SIGKILL);
        daemon_pid = 0;
        if (nobody_pid > 0) {
                kill(nobody_pid, SIGKILL);
                waitpid(nobody_pid, NULL, 0);
        }
        nobody_pid = 0;
        if (writer_pid > 0) {
                kill(writer_pid, SIGKILL);
                waitpid(writer_pid, NULL, 0);
        }
        writer_pid = 0;
        for (size_t i = 0; i < ELEMENTSOF(kids); i++)
                child_kill(&kids[i]);
        passed_fds[0] = safe_close(passed_fds[0]);
        passed_fds[1] = safe_close(passed_fds[1]);
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

/* ---- ctl: what the module did ---- */

static void test_ctl_echo_protects_a_process_and_echo_0_restores_it_exactly(void **state) {
        pid_t pid = kids[0].pid;
        char cmd[512], scope[512];

        start_daemon();
        snprintf(cmd, sizeof(cmd), "echo \"setprotection %d 1\" > %s", (int) pid, ctl_path);
        assert_int_equal(system(cmd), 0);
        assert_becomes_protected(pid);
        assert_status(&pid, 1);
        snprintf(scope, sizeof(scope), "%s/" OOMPROTECT_SCOPE_PREFIX "%d" OOMPROTECT_SCOPE_SUFFIX, sb.slice_rel,
                 (int) pid);
        assert_true(cgroup_exists(&sb, scope));

        snprintf(cmd, sizeof(cmd), "echo \"setprotection %d 0\" > %s", (int) pid, ctl_path);
        assert_int_equal(system(cmd), 0);
        assert_becomes_restored(pid);
        assert_status(NULL, 0);
        assert_false(cgroup_exists(&sb, scope));
}

static void test_status_lists_processes_in_ascending_pid_order_byte_for_byte(void **state) {
        pid_t pids[3];

        assert_int_equal(sandbox_spawn(&sb, "orig-a", sb.child_adj, &kids[1]), 0);
        assert_int_equal(sandbox_spawn(&sb, "orig-a", sb.child_adj, &kids[2]), 0);
        for (size_t i = 0; i < 3; i++)
                pids[i] = kids[i].pid;
        qsort(pids, 3, sizeof(pid_t), cmp_pid);
        start_daemon();
        /* Highest PID first, and the middle one written in hex: status sorts them. */
        ctl_printf("setprotection %d 1\nsetprotection 0x%x 1\nsetprotection %d\n", (int) pids[2],
                   (unsigned) pids[1], (int) pids[0]);
        for (size_t i = 0; i < 3; i++)
                assert_becomes_protected(pids[i]);
        assert_status(pids, 3);

        ctl_printf("setprotection %d 0\n", (int) pids[1]);
        assert_status((pid_t[]) { pids[0], pids[2] }, 2);
}

static void test_status_and_usage_are_written_at_start_with_their_modes(void **state) {
        _cleanup_free_ char *usage = NULL;
        char want[1024];
        struct stat st;

        start_daemon();
        assert_status_now(NULL, 0);
        snprintf(want, sizeof(want), "Usage:\ncat %s/status\necho \"setprotection <pid> [0/1]\" > %s/ctl\n",
                 compat_dir, compat_dir);
        assert_int_equal(read_full_file_at(AT_FDCWD, usage_path, 4096, &usage, NULL), 0);
        assert_string_equal(usage, want);

        assert_int_equal(stat(compat_dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
        assert_int_equal(lstat(ctl_path, &st), 0);
        assert_true(S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0600 && st.st_uid == 0);
        assert_int_equal(lstat(sock_path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0666);
        assert_int_equal(lstat(status_path, &st), 0);
        assert_true(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
        assert_int_equal(lstat(usage_path, &st), 0);
        assert_true(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644);
}

static void test_status_follows_a_process_exit_and_a_restart(void **state) {
        pid_t pid = kids[0].pid;
        _cleanup_free_ char *reply = NULL;

        assert_int_equal(sandbox_spawn(&sb, "orig-a", sb.child_adj, &kids[1]), 0);
        start_daemon();
        ctl_printf("setprotection %d 1\nsetprotection %d 1\n", (int) pid, (int) kids[1].pid);
        assert_status((pid_t[]) { pid, kids[1].pid }, 2);

        /* Changes no front end made (an exit) reach status too. */
        child_kill(&kids[1]);
        assert_status(&pid, 1);

        /* A restart writes status at once, with what was restored from state.json. */
        assert_int_equal(daemon_stop(daemon_pid, SIGKILL) & 0x7f, SIGKILL);
        daemon_pid = 0;
        assert_int_equal(unlink(status_path), 0);
        start_daemon();
        assert_status_now(&pid, 1);
        assert_true(in_scope(pid));
}

/* ---- ctl: partial lines ---- */

static void test_ctl_takes_a_line_without_newline_as_complete_when_the_writer_closes(void **state) {
        pid_t pid = kids[0].pid;

        start_daemon();
        ctl_printf("setprotection %d 1", (int) pid); /* the module's one write = one command */
        assert_becomes_protected(pid);
        ctl_printf("setprotection %d 0", (int) pid);
        assert_becomes_restored(pid);
        assert_status(NULL, 0);
}

static void test_ctl_joins_a_line_written_in_pieces_by_one_writer(void **state) {
        pid_t pid = kids[0].pid;
        char tail[64];
        int fd;

        start_daemon();
        fd = ctl_open();
        assert_true(fd >= 0);
        write_all(fd, "setprot", 7);
        wait_consumed(fd); /* the daemon holds "setprot", the writer is still there */
        write_all(fd, "ection ", 7);
        wait_consumed(fd);
        snprintf(tail, sizeof(tail), "%d 1\n", (int) pid);
        write_all(fd, tail, strlen(tail));
        assert_becomes_protected(pid);
        safe_close(fd);
        assert_status(&pid, 1);
        assert_int_equal(log_count("Rejected"), 0);
}

static void test_ctl_rejects_the_fragment_of_a_writer_that_closes_mid_line(void **state) {
        start_daemon();
        ctl_write("setprot", 7);
        assert_logged("Rejected a line written to");
        assert_logged("unknown command, expected \"setprotection <pid> [0/1]\": \"setprot\"");
        assert_status_now(NULL, 0);
        assert_ctl_still_serves();
}

/* ---- ctl: bad input of every kind ---- */

static bool two_long_lines(void *arg) {
        return log_count("longer than 4096 bytes") == 2;
}

static void test_ctl_rejects_a_1mb_line_and_goes_on(void **state) {
        size_t big = 1 << 20;
        _cleanup_free_ char *buf = malloc(big + 64);
        int n;

        assert_non_null(buf);
        start_daemon();
        /* One writer: a 1 MB line, then a valid one right behind it in the same stream. */
        memset(buf, 'A', big);
        n = snprintf(buf + big, 64, "\nsetprotection %d 1\n", (int) kids[0].pid);
        ctl_write(buf, big + (size_t) n);
        assert_becomes_protected(kids[0].pid);
        assert_logged("the line is longer than 4096 bytes: "
                      "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...\""); /* 64, then cut */
        assert_int_equal(log_count("longer than 4096 bytes"), 1); /* once, not once per 4 KiB */
        /* The FIFO has no reply to be current by: status follows the protection, a moment after its adj. */
        assert_status(&kids[0].pid, 1);

        /* A 1 MB line whose writer closes without a newline: reported once, the rest skipped. */
        ctl_write(buf, big);
        assert_true(wait_for(two_long_lines, NULL, WAIT_MS));
        assert_status_now(&kids[0].pid, 1);
        /*
         * The next writer starts with a newline: should it write before the
         * daemon saw the first one close, the FIFO joins the two, and the
         * newline ends the overlong line (README: lines without newline).
         */
        ctl_printf("\nsetprotection %d 0\n", (int) kids[0].pid);
        assert_becomes_restored(kids[0].pid);
        assert_int_equal(log_count("longer than 4096 bytes"), 2);
        assert_ctl_still_serves();
}

static void test_ctl_rejects_binary_garbage_and_nul_bytes(void **state) {
        static const char garbage[] = "\x01\x02\xfe\xff\x7f gar\"bage\\\n";
        char nul[64];
        int n;

        start_daemon();
        ctl_write(garbage, sizeof(garbage) - 1);
        assert_logged("unknown command, expected \"setprotection <pid> [0/1]\": "
                      "\"\\x01\\x02\\xfe\\xff\\x7f gar\\\"bage\\\\\"");
        n = snprintf(nul, sizeof(nul), "setprotection %d", (int) kids[0].pid);
        memcpy(nul + n, "\0 1\n", 4);
        ctl_write(nul, (size_t) n + 4);
        assert_logged("the line contains a NUL byte: \"setprotection ");
        assert_logged("\\x00 1\"");
        assert_status_now(NULL, 0);
        assert_true(restored(kids[0].pid, "orig-a"));
        assert_ctl_still_serves();
}

static void test_ctl_rejects_unknown_verbs_bad_pids_and_vanished_processes(void **state) {
        pid_t pid = kids[0].pid, gone = vanished_pid();
        char want[512];

        start_daemon();
        ctl_printf("killprotection %d 1\n", (int) pid);
        assert_logged("unknown command, expected \"setprotection <pid> [0/1]\": \"killprotection ");
        ctl_printf("setprotection 0 1\n");
        assert_logged("the pid is out of range (1 to 4194304): \"setprotection 0 1\"");
        ctl_printf("setprotection 99999999999999999999999 1\n");
        assert_logged("out of range (1 to 4194304): \"setprotection 99999999999999999999999 1\"");
        ctl_printf("setprotection 4194305 1\n");
        assert_logged("out of range (1 to 4194304): \"setprotection 4194305 1\"");
        ctl_printf("setprotection\n");
        assert_logged("no pid was supplied: \"setprotection\"");
        ctl_printf("setprotection %d 2\n", (int) pid);
        assert_logged("the protection flag must be 0 or 1");
        ctl_printf("setprotection %d 1 now\n", (int) pid);
        assert_logged("trailing garbage after the protection flag");
        ctl_printf("setprotection %d 1\n", (int) gone);
        snprintf(want, sizeof(want), "\"setprotection %d 1\" written to %s/ctl failed: No process with PID %d.",
                 (int) gone, compat_dir, (int) gone);
        assert_logged(want);
        ctl_printf("setprotection %d 0\n", (int) pid);
        snprintf(want, sizeof(want), "failed: PID %d is not protected.", (int) pid);
        assert_logged(want);
        assert_status_now(NULL, 0);
        assert_true(restored(pid, "orig-a"));
        assert_ctl_still_serves();
}

static bool ten_thousand_rejected(void *arg) {
        return log_count(arg) >= 10000;
}

static void test_ctl_survives_a_flood_of_ten_thousand_writes(void **state) {
        _cleanup_free_ char *lines = NULL;
        size_t size = 0;
        FILE *f;

        start_daemon();
        /* Ten thousand writers, one bad line each... */
        for (int i = 0; i < 10000; i++)
                ctl_printf("flood %d\n", i);
        assert_true(wait_for(ten_thousand_rejected, "\"flood ", 60000));
        assert_int_equal(log_count("\"flood "), 10000); /* every line rejected, and logged, once */
        assert_logged("\"flood 9999\"");

        /* ...and one writer with ten thousand lines. */
        f = open_memstream(&lines, &size);
        assert_non_null(f);
        for (int i = 0; i < 10000; i++)
                fprintf(f, "deluge %d\n", i);
        fclose(f);
        ctl_write(lines, size);
        assert_true(wait_for(ten_thousand_rejected, "\"deluge ", 60000));
        assert_int_equal(log_count("\"deluge "), 10000);
        assert_status_now(NULL, 0);
        assert_ctl_still_serves();
}

/* ---- ctl.sock ---- */

static void test_ctl_sock_answers_each_line_with_ok_or_err_and_an_errno_name(void **state) {
        pid_t pid = kids[0].pid, gone = vanished_pid();
        _cleanup_free_ char *input = NULL, *want = NULL, *got = NULL;
        char longline[5001];

        memset(longline, 'a', 5000);
        longline[5000] = '\0';
        assert_true(asprintf(&input,
                             "setprotection %1$d 1\n"
                             "\n"
                             "setprotection %1$d 1\n"
                             "hello\n"
                             "setprotection abc 1\n"
                             "setprotection 0 1\n"
                             "setprotection %2$d 1\n"
                             "%3$s\n"
                             "setprotection 1 1\n"
                             "setprotection %1$d 0\n"
                             "setprotection %1$d 0\r\n",
                             (int) pid, (int) gone, longline) > 0);
        assert_true(asprintf(&want,
                             "OK\n"
                             "OK\n"
                             "ERR EOPNOTSUPP unknown command, expected \"setprotection <pid> [0/1]\"\n"
                             "ERR EINVAL the pid is not a number (decimal, 0x hex or 0 octal)\n"
                             "ERR ERANGE the pid is out of range (1 to 4194304)\n"
                             "ERR ESRCH No process with PID %2$d.\n"
                             "ERR E2BIG the line is longer than 4096 bytes\n"
                             "ERR EPERM PID 1 is the init process: the kernel never OOM-kills it.\n"
                             "OK\n"
                             "ERR ENOENT PID %1$d is not protected.\n",
                             (int) pid, (int) gone) > 0);
        start_daemon();
        got = sock_exchange(input);
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_true(restored(pid, "orig-a"));
        assert_status_now(NULL, 0);
}

static void test_ctl_sock_status_is_current_when_ok_arrives(void **state) {
        pid_t pid = kids[0].pid;
        _cleanup_close_ int fd = -EBADF;
        char line[64], reply[16] = {};

        start_daemon();
        fd = sock_connect();
        assert_true(fd >= 0);
        snprintf(line, sizeof(line), "setprotection %d 1\n", (int) pid);
        assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t) strlen(line));
        assert_int_equal(read(fd, reply, 3), 3);
        assert_string_equal(reply, "OK\n");
        /* No waiting: the reply went out after status was rewritten. */
        assert_true(in_scope(pid));
        assert_status_now(&pid, 1);
}

static void test_ctl_sock_does_not_execute_a_last_line_without_newline(void **state) {
        _cleanup_free_ char *input = NULL, *got = NULL;

        start_daemon();
        assert_true(asprintf(&input, "setprotection %d 1", (int) kids[0].pid) > 0);
        got = sock_exchange(input);
        assert_non_null(got);
        assert_string_equal(got, "ERR EINVAL the last line does not end with a newline; it was not executed\n");
        /* Trailing blanks without a newline are no line at all. */
        free(got);
        got = sock_exchange("setprotection 1 0\n  ");
        assert_non_null(got);
        assert_string_equal(got, "ERR ENOENT PID 1 is not protected.\n");
        assert_true(restored(kids[0].pid, "orig-a"));
        assert_status_now(NULL, 0);
}

static void test_ctl_sock_refuses_a_peer_that_is_not_root_with_eperm(void **state) {
        _cleanup_free_ char *input = NULL, *got = NULL, *garbage = NULL;
        pid_t pid = kids[0].pid;

        start_daemon();
        assert_true(asprintf(&input, "setprotection %d 1\nsetprotection %d 0\n", (int) pid, (int) pid) > 0);
        got = run_as(NOBODY, NOBODY, NULL, 0, exchange_func, input);
        assert_string_equal(got,
                            "ERR EPERM Only root and members of the AllowGroup= group may change protections; "
                            "uid 65534 may only read them.\n"
                            "ERR EPERM Only root and members of the AllowGroup= group may change protections; "
                            "uid 65534 may only read them.\n");
        assert_logged("Refused \"setprotection ");
        assert_logged("from uid 65534");
        /* A malformed line is answered as such whoever sends it. */
        garbage = run_as(NOBODY, NOBODY, NULL, 0, exchange_func, "bogus\n");
        assert_string_equal(garbage, "ERR EOPNOTSUPP unknown command, expected \"setprotection <pid> [0/1]\"\n");
        assert_true(restored(pid, "orig-a"));
        assert_status_now(NULL, 0);
}

static void test_ctl_sock_lets_allowgroup_members_change_only_their_own_processes(void **state) {
        struct group *g = getgrgid(NOBODY);
        _cleanup_free_ char *extra = NULL, *input = NULL, *got = NULL, *want = NULL, *root_input = NULL,
                            *root_got = NULL;
        gid_t groups[] = { NOBODY };
        pid_t mine, theirs = kids[0].pid;

        if (!g) {
                print_message("# note: no group %d here: AllowGroup= over ctl.sock not tested\n", NOBODY);
                skip();
        }
        assert_true(asprintf(&extra, "AllowGroup=%s\n", g->gr_name) > 0);
        sandbox_write_config(&sb, config_path, extra);
        nobody_pid = mine = spawn_nobody();
        start_daemon();

        root_input = NULL;
        assert_true(asprintf(&root_input, "setprotection %d 1\n", (int) theirs) > 0);
        root_got = sock_exchange(root_input);
        assert_string_equal(root_got, "OK\n");

        assert_true(asprintf(&input, "setprotection %1$d 1\nsetprotection %2$d 1\nsetprotection %2$d 0\n",
                             (int) mine, (int) theirs) > 0);
        assert_true(asprintf(&want,
                             "OK\n"
                             "ERR EPERM PID %1$d belongs to uid 0: you may only protect your own processes.\n"
                             "ERR EPERM PID %1$d belongs to uid 0: you may only unprotect your own processes.\n",
                             (int) theirs) > 0);
        /* The group is only a supplementary one: SO_PEERGROUPS must be read. */
        got = run_as(NOBODY, 12345, groups, 1, exchange_func, input);
        assert_string_equal(got, want);
        assert_true(in_scope(mine));
        assert_true(in_scope(theirs));
        assert_status_now((pid_t[]) { mine, theirs }, 2);

        free(input);
        free(got);
        assert_true(asprintf(&input, "setprotection %d 0\n", (int) mine) > 0);
        got = run_as(NOBODY, 12345, groups, 1, exchange_func, input);
        assert_string_equal(got, "OK\n");
        assert_status_now(&theirs, 1);
}

static void test_ctl_sock_survives_a_client_that_never_reads(void **state) {
        _cleanup_free_ char *on = NULL, *off = NULL, *got = NULL;
        _cleanup_close_ int fd = -EBADF;
        char chunk[4096];
        size_t sent = 0;

        start_daemon();
        fd = sock_connect();
        assert_true(fd >= 0);
        assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
        for (size_t i = 0; i < sizeof(chunk); i += 2)
                memcpy(chunk + i, "x\n", 2); /* each line earns a 70-byte ERR reply nobody reads */
        for (;;) {
                ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
                if (n > 0) {
                        sent += (size_t) n;
                        if (sent > (64U << 20))
                                break;
                        continue;
                }
                assert_int_equal(errno, EAGAIN);
                /* Writable again within a second means the daemon still reads: keep pushing. */
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                if (poll(&p, 1, 1000) == 0)
                        break;
        }
        /* The daemon stopped reading once its reply queue was full; the kernel's buffers hold the rest. */
        assert_true(sent < (8U << 20));
        assert_true(daemon_alive());

        /* Others are served meanwhile. */
        assert_true(asprintf(&on, "setprotection %d 1\n", (int) kids[0].pid) > 0);
        got = sock_exchange(on);
        assert_string_equal(got, "OK\n");
        assert_true(in_scope(kids[0].pid));

        /* The client leaves without reading: its replies are dropped, the daemon goes on. */
        fd = safe_close(fd);
        free(got);
        assert_true(asprintf(&off, "setprotection %d 0\n", (int) kids[0].pid) > 0);
        got = sock_exchange(off);
        assert_string_equal(got, "OK\n");
        assert_becomes_restored(kids[0].pid);
        assert_true(daemon_alive());
}

static bool connection_accepted_again(void *arg) {
        _cleanup_free_ char *got = sock_exchange("setprotection 0 1\n");
        return got && streq(got, "ERR ERANGE the pid is out of range (1 to 4194304)\n");
}

static char *open_seventeen(const void *arg) {
        int fds[16];
        char *reply;
        int fd;

        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                if ((fds[i] = sock_connect()) < 0)
                        return NULL;
        fd = sock_connect();
        if (fd < 0)
                return NULL;
        reply = sock_read_all(fd);
        safe_close(fd);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                safe_close(fds[i]);
        return reply;
}

static void test_ctl_sock_caps_concurrent_connections_at_64(void **state) {
        _cleanup_free_ char *refused = NULL, *want = NULL;
        int fds[64], fd;

        start_daemon();
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                fds[i] = sock_connect();
                assert_true(fds[i] >= 0);
        }
        /* Accepted in order: the 65th finds 64 open. */
        fd = sock_connect();
        assert_true(fd >= 0);
        refused = sock_read_all(fd);
        safe_close(fd);
        assert_true(asprintf(&want, "ERR EAGAIN Too many connections to %s (64); try again later.\n",
                             sock_path) > 0);
        assert_string_equal(refused, want);
        assert_logged("64 are open already");

        /* One goes, one more may come. */
        fds[0] = safe_close(fds[0]);
        assert_true(wait_for(connection_accepted_again, NULL, WAIT_MS));
        for (size_t i = 1; i < ELEMENTSOF(fds); i++)
                safe_close(fds[i]);
        assert_true(daemon_alive());
}

static void test_ctl_sock_caps_connections_of_one_uid_at_16(void **state) {
        _cleanup_free_ char *per_uid = NULL, *want = NULL;

        start_daemon();
        per_uid = run_as(NOBODY, NOBODY, NULL, 0, open_seventeen, NULL);
        assert_true(asprintf(&want,
                             "ERR EAGAIN uid 65534 has 16 connections to %s open already; close one first.\n",
                             sock_path) > 0);
        assert_string_equal(per_uid, want);
        assert_true(connection_accepted_again(NULL)); /* root is not held back by uid 65534 */
        assert_true(daemon_alive());
}

/* ---- the directory: what is there already, socket activation ---- */

static void test_ctl_refuses_to_replace_a_regular_file_but_serves_the_rest(void **state) {
        _cleanup_free_ char *content = NULL, *input = NULL, *got = NULL;

        assert_int_equal(mkdir(compat_dir, 0755), 0);
        FILE *f = fopen(ctl_path, "we");
        assert_non_null(f);
        fputs("precious\n", f);
        assert_int_equal(fclose(f), 0);
        start_daemon();
        assert_logged("/ctl is a regular file, not a FIFO: refusing to replace it.");
        assert_int_equal(read_full_file_at(AT_FDCWD, ctl_path, 4096, &content, NULL), 0);
        assert_string_equal(content, "precious\n");
        assert_true(asprintf(&input, "setprotection %d 1\n", (int) kids[0].pid) > 0);
        got = sock_exchange(input);
        assert_string_equal(got, "OK\n");
        assert_status_now(&kids[0].pid, 1);
}

static void test_an_existing_root_only_fifo_is_reused_and_a_loose_one_replaced(void **state) {
        struct stat before, after;

        assert_int_equal(mkdir(compat_dir, 0755), 0);
        assert_int_equal(mkfifo(ctl_path, 0600), 0);
        assert_int_equal(stat(ctl_path, &before), 0);
        start_daemon();
        assert_int_equal(stat(ctl_path, &after), 0);
        assert_true(before.st_ino == after.st_ino);
        assert_ctl_still_serves();
        stop_daemon();

        /* Anyone could write into this one: it is replaced by a root-only FIFO. */
        assert_int_equal(chmod(ctl_path, 0666), 0);
        start_daemon();
        assert_logged("with mode 0666; replacing it with one only root may write to.");
        assert_int_equal(stat(ctl_path, &after), 0);
        assert_true(S_ISFIFO(after.st_mode) && (after.st_mode & 07777) == 0600);
        assert_ctl_still_serves();
}

static void test_a_stale_ctl_sock_is_replaced_and_removed_at_exit(void **state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *got = NULL;
        struct stat st;
        int fd;

        assert_int_equal(mkdir(compat_dir, 0755), 0);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sun_path_set(&sa, sock_path);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        safe_close(fd); /* what a daemon killed with SIGKILL leaves */
        start_daemon();
        got = sock_exchange("setprotection 1 0\n");
        assert_string_equal(got, "ERR ENOENT PID 1 is not protected.\n");
        stop_daemon();
        assert_true(lstat(sock_path, &st) < 0 && errno == ENOENT);
        /* ctl stays, so that `echo > ctl` waits for the next daemon instead of creating a regular file. */
        assert_int_equal(lstat(ctl_path, &st), 0);
        assert_true(S_ISFIFO(st.st_mode));
}

static bool blocked_in_openat(void *arg) {
        _cleanup_free_ char *line = NULL;
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/syscall", *(pid_t *) arg);
        return read_one_line_at(AT_FDCWD, path, &line) >= 0 && atol(line) == SYS_openat;
}

static void test_ctl_written_while_the_daemon_is_away_is_served_when_it_starts(void **state) {
        pid_t pid = kids[0].pid, writer;
        char cmd[512];
        int status;

        start_daemon();
        stop_daemon();
        /* The FIFO stayed: a writer now waits in open() for the next daemon, it does not create a file. */
        snprintf(cmd, sizeof(cmd), "printf 'setprotection %d 1' > %s", (int) pid, ctl_path);
        writer_pid = writer = fork();
        assert_true(writer >= 0);
        if (writer == 0) {
                execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
                _exit(127);
        }
        assert_true(wait_for(blocked_in_openat, &writer, WAIT_MS));
        start_daemon();
        assert_becomes_protected(pid);
        assert_int_equal(waitpid(writer, &status, 0), writer);
        writer_pid = 0;
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_status(&pid, 1);
}

/* As the service manager does it: fds 3 and 4, LISTEN_FDS, LISTEN_PID. */
static pid_t start_daemon_activated(int fifo_fd, int sock_fd) {
        const char *argv[] = { getenv("OOMPROTECT_DAEMON"), "--no-bus", "--config", config_path, NULL };
        char notify[256];
        _cleanup_close_ int nfd = notify_socket_open(&sb, notify, sizeof(notify));
        pid_t pid;

        assert_true(nfd >= 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char spid[16];
                int a = fcntl(fifo_fd, F_DUPFD, 10), b = fcntl(sock_fd, F_DUPFD, 10);
                int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (a < 0 || b < 0 || log < 0 || dup2(log, STDERR_FILENO) < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0)
                        _exit(127);
                snprintf(spid, sizeof(spid), "%d", (int) getpid());
                setenv("LISTEN_FDS", "2", 1);
                setenv("LISTEN_PID", spid, 1);
                setenv("NOTIFY_SOCKET", notify, 1);
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        if (!notify_wait_ready(nfd, pid)) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                dump_log();
                fail_msg("the socket-activated daemon did not get ready");
        }
        return pid;
}

static void test_socket_activation_uses_the_fifo_and_socket_passed_in(void **state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *want = NULL, *got = NULL, *input = NULL;
        pid_t pid = kids[0].pid;
        struct stat st;

        /* What oomprotectd-ctl.socket and oomprotectd.socket make: the FIFO opened O_RDWR, a listening socket. */
        assert_int_equal(mkdir(compat_dir, 0755), 0);
        assert_int_equal(mkfifo(ctl_path, 0600), 0);
        passed_fds[0] = open(ctl_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        assert_true(passed_fds[0] >= 0);
        passed_fds[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sun_path_set(&sa, sock_path);
        assert_int_equal(bind(passed_fds[1], (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(chmod(sock_path, 0666), 0);
        assert_int_equal(listen(passed_fds[1], 16), 0);

        daemon_pid = start_daemon_activated(passed_fds[0], passed_fds[1]);
        assert_true(asprintf(&want, "Socket activation: serving %s and %s as passed by the service manager.",
                             ctl_path, sock_path) > 0);
        assert_logged(want);

        /* The manager's O_RDWR end means no EPOLLHUP: a line without newline completes after a quiet spell. */
        ctl_printf("setprotection %d 1", (int) pid);
        assert_becomes_protected(pid);
        assert_true(asprintf(&input, "setprotection %d 0\n", (int) pid) > 0);
        got = sock_exchange(input);
        assert_string_equal(got, "OK\n");
        assert_true(restored(pid, "orig-a"));
        assert_status_now(NULL, 0);

        /* The socket belongs to the service manager: it stays when the daemon stops. */
        stop_daemon();
        assert_int_equal(lstat(sock_path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
                T(test_ctl_echo_protects_a_process_and_echo_0_restores_it_exactly),
                T(test_status_lists_processes_in_ascending_pid_order_byte_for_byte),
                T(test_status_and_usage_are_written_at_start_with_their_modes),
                T(test_status_follows_a_process_exit_and_a_restart),
                T(test_ctl_takes_a_line_without_newline_as_complete_when_the_writer_closes),
                T(test_ctl_joins_a_line_written_in_pieces_by_one_writer),
                T(test_ctl_rejects_the_fragment_of_a_writer_that_closes_mid_line),
                T(test_ctl_rejects_a_1mb_line_and_goes_on),
                T(test_ctl_rejects_binary_garbage_and_nul_bytes),
                T(test_ctl_rejects_unknown_verbs_bad_pids_and_vanished_processes),
                T(test_ctl_survives_a_flood_of_ten_thousand_writes),
                T(test_ctl_sock_answers_each_line_with_ok_or_err_and_an_errno_name),
                T(test_ctl_sock_status_is_current_when_ok_arrives),
                T(test_ctl_sock_does_not_execute_a_last_line_without_newline),
                T(test_ctl_sock_refuses_a_peer_that_is_not_root_with_eperm),
                T(test_ctl_sock_lets_allowgroup_members_change_only_their_own_processes),
                T(test_ctl_sock_survives_a_client_that_never_reads),
                T(test_ctl_sock_caps_concurrent_connections_at_64),
                T(test_ctl_sock_caps_connections_of_one_uid_at_16),
                T(test_ctl_refuses_to_replace_a_regular_file_but_serves_the_rest),
                T(test_an_existing_root_only_fifo_is_reused_and_a_loose_one_replaced),
                T(test_a_stale_ctl_sock_is_replaced_and_removed_at_exit),
                T(test_ctl_written_while_the_daemon_is_away_is_served_when_it_starts),
                T(test_socket_activation_uses_the_fifo_and_socket_passed_in),
#undef T
        };
        int r;

        if (sandbox_setup_or_skip(&sb, true) != 0)
                return 77;
        signal(SIGPIPE, SIG_IGN);
        /* uid 65534 must reach ctl.sock below the (mkdtemp 0700) state directory. */
        if (chmod(sb.statedir, 0755) < 0) {
                sandbox_teardown(&sb);
                printf("SKIP: cannot open up %s for uid %d: %m\n", sb.statedir, NOBODY);
                return 77;
        }
        r = cmocka_run_group_tests(tests, NULL, NULL);
        sandbox_teardown(&sb);
        return r;
}
