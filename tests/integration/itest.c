/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cgroup.h"
#include "engine.h"
#include "fileio.h"
#include "itest.h"
#include "macro.h"

static bool probe_lower_adj(void) {
        pid_t pid = fork();
        int status;

        if (pid == 0)
                _exit(write_string_file_at(AT_FDCWD, "/proc/self/oom_score_adj", "-1") < 0);
        return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void remove_tree(int parentfd, const char *rel);

/* Sandboxes of earlier runs whose test process is gone (killed by a timeout): kill what is left, remove them. */
static void remove_stale_sandboxes(int rootfd) {
        DIR *d = fdopendir(dup(rootfd));
        struct dirent *de;
        int pid;

        if (!d)
                return;
        rewinddir(d);
        while ((de = readdir(d))) {
                char kill_path[300], proc[64];
                if (sscanf(de->d_name, "oomptest%d.slice", &pid) != 1)
                        continue;
                snprintf(proc, sizeof(proc), "/proc/%d", pid);
                if (access(proc, F_OK) == 0)
                        continue;
                snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", de->d_name);
                (void) write_string_file_at(rootfd, kill_path, "1");
                remove_tree(rootfd, de->d_name);
        }
        closedir(d);
}

int sandbox_setup(Sandbox *s, const char **reason) {
        char *mount = NULL;
        int fd;

        *s = (Sandbox) {};
        if (geteuid() != 0) {
                *reason = "not root: the integration tests need to write cgroupfs";
                return 77;
        }
        if (cgroup_find_mount(&mount) < 0) {
                *reason = "no cgroup2 file system is mounted";
                return 77;
        }
        snprintf(s->mount, sizeof(s->mount), "%s", mount);
        free(mount);
        snprintf(s->name, sizeof(s->name), "oomptest%d", (int) getpid());
        snprintf(s->top, sizeof(s->top), "%s.slice", s->name);
        snprintf(s->slice, sizeof(s->slice), "%s-protected.slice", s->name);
        snprintf(s->slice_rel, sizeof(s->slice_rel), "%s/%s", s->top, s->slice);

        if (cgroup_open_root(s->mount, &fd) < 0) {
                *reason = "the cgroup2 mount cannot be opened";
                return 77;
        }
        remove_stale_sandboxes(fd);
        if (mkdirat(fd, s->top, 0755) < 0) {
                safe_close(fd);
                *reason = "the cgroup2 mount is not writable";
                return 77;
        }
        safe_close(fd);

        snprintf(s->statedir, sizeof(s->statedir), "/tmp/oomprotect-itest.XXXXXX");
        if (!mkdtemp(s->statedir)) {
                *reason = "cannot make a temporary directory";
                return 77;
        }
        snprintf(s->compatdir, sizeof(s->compatdir), "%s/compat", s->statedir);
        s->can_lower_adj = probe_lower_adj();
        /* Without CAP_SYS_RESOURCE nothing may go below 0: children start high, the engine lowers to 0. */
        s->protect_adj = s->can_lower_adj ? -1000 : 0;
        s->child_adj = s->can_lower_adj ? 0 : 700;
        if (!s->can_lower_adj)
                fprintf(stderr, "# note: no CAP_SYS_RESOURCE here; protecting with oom_score_adj 0 from 700\n");
        return 0;
}

int sandbox_setup_or_skip(Sandbox *s, bool need_daemon) {
        const char *reason = NULL;

        if (need_daemon && !getenv("OOMPROTECT_DAEMON")) {
                printf("SKIP: OOMPROTECT_DAEMON does not name the oomprotectd to test (ctest sets it)\n");
                return 77;
        }
        if (sandbox_setup(s, &reason) != 0) {
                printf("SKIP: %s\n", reason);
                return 77;
        }
        return 0;
}

/* cgroup.kill everything below, reap our children, then rmdir depth-first. */
static void remove_tree(int parentfd, const char *rel) {
        _cleanup_close_ int fd = openat(parentfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d)
                return;
        TAKE_FD(fd);
        while ((de = readdir(d)))
                if (de->d_type == DT_DIR && de->d_name[0] != '.')
                        remove_tree(dirfd(d), de->d_name);
        closedir(d);
        for (int i = 0; i < 100 && unlinkat(parentfd, rel, AT_REMOVEDIR) < 0 && errno == EBUSY; i++)
                usleep(10000);
}

void sandbox_teardown(Sandbox *s) {
        char path[512];
        int fd;

        if (!s->top[0])
                return;
        snprintf(path, sizeof(path), "%s/%s/cgroup.kill", s->mount, s->top);
        (void) write_string_file_at(AT_FDCWD, path, "1");
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        usleep(20000);
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        if (cgroup_open_root(s->mount, &fd) >= 0) {
                remove_tree(fd, s->top);
                safe_close(fd);
        }
        snprintf(path, sizeof(path), "rm -rf '%s'", s->statedir);
        if (s->statedir[0])
                (void) !system(path);
        s->top[0] = '\0';
}

void sandbox_config(const Sandbox *s, Config *c) {
        char adj[16];

        config_init(c);
        snprintf(adj, sizeof(adj), "%d", s->protect_adj);
        config_set(c, "CgroupRoot", s->mount, "itest", 1);
        config_set(c, "Slice", s->slice, "itest", 2);
        config_set(c, "StateDirectory", s->statedir, "itest", 3);
        config_set(c, "OOMScoreAdjust", adj, "itest", 4);
        config_set(c, "Backend", "cgroupfs", "itest", 5);
        config_set(c, "CompatDirectory", s->compatdir, "itest", 6);
}

void sandbox_write_config(const Sandbox *s, const char *path, const char *extra) {
        FILE *f = fopen(path, "we");

        if (!f)
                abort();
        fprintf(f,
                "[Manager]\nBackend=cgroupfs\nCgroupRoot=%s\nSlice=%s\nStateDirectory=%s\nCompatDirectory=%s\n"
                "OOMScoreAdjust=%d\n%s",
                s->mount, s->slice, s->statedir, s->compatdir, s->protect_adj, extra ? extra : "");
        fclose(f);
}

static void child_main(int cmd, int reply) {
        char c;

        while (read(cmd, &c, 1) == 1) {
                if (c == 'q')
                        _exit(0);
                if (c != 'f' && c != 'u')
                        continue;
                pid_t g = fork();
                if (g == 0) {
                        if (c == 'u' && setresuid(65534, 65534, 65534) < 0)
                                _exit(1);
                        (void) prctl(PR_SET_DUMPABLE, 1); /* as a user's own process is */
                        for (;;)
                                pause();
                }
                (void) !write(reply, &g, sizeof(g));
        }
        _exit(0);
}

int sandbox_spawn(Sandbox *s, const char *sub, int adj, Child *ret) {
        int cmd[2], reply[2], fd;
        char rel[256], value[16];
        pid_t pid;

        snprintf(rel, sizeof(rel), "%s/%s", s->top, sub);
        if (cgroup_open_root(s->mount, &fd) < 0)
                return -EIO;
        if (cgroup_create(fd, rel) < 0 || pipe2(cmd, O_CLOEXEC) < 0 || pipe2(reply, O_CLOEXEC) < 0) {
                safe_close(fd);
                return -EIO;
        }
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* A test killed by ctest's timeout must not leave its children behind. */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                signal(SIGTERM, SIG_DFL);
                snprintf(value, sizeof(value), "%d", adj);
                if (cgroup_write(fd, rel, "cgroup.procs", "0") < 0 ||
                    write_string_file_at(AT_FDCWD, "/proc/self/oom_score_adj", value) < 0)
                        _exit(1);
                (void) !write(reply[1], "r", 1);
                child_main(cmd[0], reply[1]);
        }
        safe_close(fd);
        close(cmd[0]);
        close(reply[1]);
        char ready;
        if (read(reply[0], &ready, 1) != 1) {
                close(cmd[1]);
                close(reply[0]);
                waitpid(pid, NULL, 0);
                return -EIO;
        }
        *ret = (Child) { .pid = pid, .cmd = cmd[1], .reply = reply[0] };
        return 0;
}

static pid_t child_fork_with(Child *c, const char *cmd) {
        pid_t g = -1;

        if (write(c->cmd, cmd, 1) != 1 || read(c->reply, &g, sizeof(g)) != sizeof(g))
                return -1;
        return g;
}

pid_t child_fork(Child *c) {
        return child_fork_with(c, "f");
}

pid_t child_fork_as_nobody(Child *c) {
        return child_fork_with(c, "u");
}

void child_kill(Child *c) {
        if (c->pid > 0) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, NULL, 0);
        }
        c->cmd = safe_close(c->cmd);
        c->reply = safe_close(c->reply);
        c->pid = 0;
}

char *pid_cgroup(pid_t pid) {
        char path[64], *text = NULL, *cg = NULL;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        if (read_full_file_at(AT_FDCWD, path, 65536, &text, NULL) < 0)
                return NULL;
        char *l = strstr(text, "0::");
        if (l && (l == text || l[-1] == '\n'))
                cg = strndup(l + 3, strcspn(l + 3, "\n"));
        free(text);
        return cg;
}

int pid_adj(pid_t pid) {
        char path[64], *text = NULL;
        int adj = -9999;

        snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int) pid);
        if (read_full_file_at(AT_FDCWD, path, 64, &text, NULL) >= 0)
                adj = atoi(text);
        free(text);
        return adj;
}

bool cgroup_exists(const Sandbox *s, const char *rel) {
        char path[512];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", s->mount, rel[0] == '/' ? rel + 1 : rel);
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *sandbox_path(const Sandbox *s, const char *sub) {
        char *p = NULL;

        if (asprintf(&p, "/%s%s%s", s->top, sub[0] ? "/" : "", sub) < 0)
                abort();
        return p;
}

bool wait_for(bool (*cond)(void *), void *arg, int ms) {
        for (int i = 0; i < ms / 10; i++) {
                if (cond(arg))
                        return true;
                usleep(10000);
        }
        return cond(arg);
}

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

int notify_socket_open(const Sandbox *s, char *path, size_t size) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        snprintf(path, size, "%s/notify.%d", s->statedir, (int) getpid());
        unlink(path);
        if (strlen(path) >= sizeof(sa.sun_path))
                return -1;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                safe_close(fd);
                return -1;
        }
        return fd;
}

bool notify_wait_ready(int fd, pid_t pid) {
        for (int i = 0; i < 100; i++) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char buf[4096];

                if (poll(&p, 1, 100) == 1) {
                        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
                        if (n > 0) {
                                buf[n] = '\0';
                                if (strstr(buf, "READY=1"))
                                        return true;
                        }
                }
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        return false;
        }
        return false;
}

pid_t daemon_start(const Sandbox *s, const char *const *args, const char *logpath) {
        const char *daemon = getenv("OOMPROTECT_DAEMON");
        char path[256];
        const char *argv[32] = { daemon };
        int fd;
        pid_t pid;

        if (!daemon)
                return -1;
        for (size_t i = 0; args && args[i] && i < 30; i++)
                argv[i + 1] = args[i];
        fd = notify_socket_open(s, path, sizeof(path));
        if (fd < 0)
                return -1;
        pid = fork();
        if (pid == 0) {
                int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (log < 0 || dup2(log, STDERR_FILENO) < 0)
                        _exit(127);
                setenv("NOTIFY_SOCKET", path, 1);
                execv(daemon, (char *const *) argv);
                _exit(127);
        }
        bool ready = pid > 0 && notify_wait_ready(fd, pid);
        safe_close(fd);
        unlink(path);
        if (!ready && pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return -1;
        }
        return pid;
}

int daemon_stop(pid_t pid, int sig) {
        int status;

        if (kill(pid, sig) < 0)
                return -1;
        for (int i = 0; i < 1000; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
}

bool file_contains(const char *path, const char *needle) {
        _cleanup_free_ char *text = NULL;

        return read_full_file_at(AT_FDCWD, path, 64 << 20, &text, NULL) >= 0 && strstr(text, needle);
}

#define ITEST_WAIT_USEC (30 * 1000000ULL)

void itest_on_done(Engine *e, const EngineResult *res, void *userdata) {
        Waiter *w = userdata;

        assert_false(w->done); /* exactly once */
        w->done = true;
        w->result = *res;
        w->result.report.fallback_path = res->report.fallback_path ? strdup(res->report.fallback_path) : NULL;
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

int itest_wait(Engine *e, Waiter *w) {
        uint64_t deadline = monotonic_usec() + ITEST_WAIT_USEC;

        while (!w->done) {
                assert_true(monotonic_usec() < deadline);
                assert_true(sd_event_run(e->event, 100 * 1000) >= 0);
        }
        return w->result.r;
}

/* The result of w, with its err and report handed out (or dropped). */
static int waiter_finish(Waiter *w, OpError *err, UnprotectReport *ret_report) {
        if (err)
                *err = w->result.err;
        if (ret_report)
                *ret_report = w->result.report;
        else
                unprotect_report_done(&w->result.report);
        return w->result.r;
}

int itest_start(Engine *e) {
        Waiter w = {};
        int r;

        r = engine_start(e, itest_on_done, &w);
        if (r < 0)
                return r;
        (void) itest_wait(e, &w);
        return waiter_finish(&w, NULL, NULL);
}

int itest_engine_open(const Config *c, Engine **ret, OpError *err) {
        int r;

        r = engine_new(c, NULL, NULL, NULL, ret, err);
        if (r < 0)
                return r;
        return itest_start(*ret);
}

int itest_protect(Engine *e, const ProtectRequest *req, Protection **ret, OpError *err) {
        Waiter w = {};

        assert_int_equal(engine_protect(e, req, itest_on_done, &w), 0);
        (void) itest_wait(e, &w);
        if (w.result.r >= 0 && ret)
                *ret = engine_get(e, w.result.pid);
        return waiter_finish(&w, err, NULL);
}

int itest_unprotect(Engine *e, pid_t pid, uid_t owner, const char *reason, UnprotectReport *ret_report,
                    OpError *err) {
        Waiter w = {};

        assert_int_equal(engine_unprotect(e, pid, owner, reason, itest_on_done, &w), 0);
        (void) itest_wait(e, &w);
        return waiter_finish(&w, err, ret_report);
}

int itest_unprotect_all(Engine *e, uid_t owner, const char *reason) {
        Waiter w = {};

        assert_int_equal(engine_unprotect_all(e, owner, reason, itest_on_done, &w), 0);
        (void) itest_wait(e, &w);
        return waiter_finish(&w, NULL, NULL);
}

int itest_unprotect_tag(Engine *e, const char *tag, uid_t owner, const char *reason) {
        Waiter w = {};

        assert_int_equal(engine_unprotect_tag(e, tag, owner, reason, itest_on_done, &w), 0);
        (void) itest_wait(e, &w);
        return waiter_finish(&w, NULL, NULL);
}

void engine_killed_at(const Config *c, pid_t target, const char *point) {
        pid_t pid = fork();
        int status;

        assert_true(pid >= 0);
        if (pid == 0) {
                ProtectRequest req = { .pid = target, .pidfd = -1, .source = "test", .owner = UID_ANY };
                Engine *e = NULL;
                OpError err = {};

                setenv("OOMPROTECT_FAULT", point, 1);
                if (itest_engine_open(c, &e, &err) < 0)
                        _exit(2);
                if (itest_protect(e, &req, NULL, &err) < 0)
                        _exit(3);
                (void) itest_unprotect(e, target, UID_ANY, "test", NULL, &err);
                _exit(4); /* the point was not reached */
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
}
