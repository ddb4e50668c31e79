/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The window between exec and protection by rule (issue 16): how long a
 * freshly executed program runs before oomprotectd has protected it.
 *
 *   oombench-rules run N TARGET   fork N times; each child execs TARGET (a copy of this binary that a
 *                                 rule names by Executable=), one at a time; prints the figures
 *   TARGET target T0_NSEC         (what the children run) spins until /proc/self/cgroup names its own
 *                                 oomprotect-PID.scope, then writes how long that took from T0 (taken by
 *                                 the parent right before fork and exec) and from its own first
 *                                 instruction in main, and how long exec to main took (the baseline:
 *                                 the program's own start, which runs unprotected anyway)
 *
 * With OOMBENCH_UNIT_CGROUP=DIR and OOMBENCH_WANT_ADJ=N (bench/rules.sh
 * --unit), each run is a restart of a unit a rule protects by name: DIR is
 * removed and made again (as systemd does on a restart), the child moves
 * itself into it before the exec, and the target waits for its
 * oom_score_adj to become N instead of its own scope.
 *
 * Figures are CLOCK_MONOTONIC nanoseconds. The target polls every 20 us, so
 * that is the resolution; a target not protected within 5 s counts as a miss.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_NSEC 20000
#define GIVE_UP_NSEC (5ULL * 1000000000ULL)

static uint64_t now_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* One read of a small /proc/self file into buf, NUL-terminated; 0 if it cannot be read. */
static int read_self(const char *path, char *buf, size_t size) {
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return 0;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        return 1;
}

static int in_own_scope(const char *want) {
        char buf[4096];

        return read_self("/proc/self/cgroup", buf, sizeof(buf)) && strstr(buf, want) != NULL;
}

static int has_adj(const char *want) {
        char buf[32];

        return read_self("/proc/self/oom_score_adj", buf, sizeof(buf)) &&
               strtol(buf, NULL, 10) == strtol(want, NULL, 10);
}

static int protected_now(const char *scope, const char *want_adj) {
        return want_adj ? has_adj(want_adj) : in_own_scope(scope);
}

static int run_target(uint64_t t0) {
        uint64_t start = now_nsec(), t;
        struct timespec pause = { 0, POLL_NSEC };
        const char *want_adj = getenv("OOMBENCH_WANT_ADJ");
        unsigned polls = 0;
        char want[64];

        snprintf(want, sizeof(want), "/oomprotect-%d.scope\n", (int) getpid());
        for (; !protected_now(want, want_adj); polls++) {
                if (now_nsec() - start > GIVE_UP_NSEC) {
                        printf("miss\n");
                        return 1;
                }
                nanosleep(&pause, NULL);
        }
        t = now_nsec();
        printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %u\n", t - t0, t - start, start - t0, polls);
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* --unit: the unit's cgroup removed (once its last process is gone) and made again, as on a restart. */
static int unit_restart(const char *dir) {
        struct timespec pause = { 0, 1000000 };

        for (unsigned i = 0; rmdir(dir) < 0; i++) {
                if (errno == ENOENT)
                        break;
                if (errno != EBUSY || i >= 1000)
                        return -errno;
                nanosleep(&pause, NULL); /* the exited target's cgroup is freed asynchronously */
        }
        return mkdir(dir, 0755) < 0 ? -errno : 0;
}

static void unit_enter(const char *dir) {
        char path[4096];
        int fd;

        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1)
                _exit(126);
        close(fd);
}

/* One child: fork, exec the target, read its one line. */
static int one(const char *target, uint64_t *ret_exec, uint64_t *ret_main, uint64_t *ret_startup,
               unsigned *ret_polls) {
        char arg[32], line[128] = "";
        int p[2], status;
        uint64_t t0;
        pid_t pid;
        FILE *f;

        const char *unit = getenv("OOMBENCH_UNIT_CGROUP");

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        if (unit && unit_restart(unit) < 0)
                return -EIO;
        t0 = now_nsec();
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                snprintf(arg, sizeof(arg), "%" PRIu64, t0);
                dup2(p[1], STDOUT_FILENO);
                if (unit)
                        unit_enter(unit);
                execl(target, target, "target", arg, (char *) NULL);
                _exit(127);
        }
        close(p[1]);
        f = fdopen(p[0], "r");
        if (!f || !fgets(line, sizeof(line), f))
                line[0] = '\0';
        if (f)
                fclose(f);
        waitpid(pid, &status, 0);
        if (sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %u", ret_exec, ret_main, ret_startup, ret_polls) != 4)
                return -ETIMEDOUT;
        return 0;
}

static void report(const char *what, uint64_t *v, size_t n) {
        qsort(v, n, sizeof(uint64_t), cmp_u64);
        printf("%-34s min %7.3f  median %7.3f  p90 %7.3f  p99 %7.3f  max %7.3f ms\n", what, v[0] / 1e6,
               v[n / 2] / 1e6, v[n * 9 / 10] / 1e6, v[n * 99 / 100] / 1e6, v[n - 1] / 1e6);
}

static int run(size_t n, const char *target) {
        uint64_t *exec_ns = calloc(n, sizeof(uint64_t)), *main_ns = calloc(n, sizeof(uint64_t)),
                 *startup_ns = calloc(n, sizeof(uint64_t));
        size_t ok = 0, misses = 0, before_main = 0;
        unsigned polls;

        if (!exec_ns || !main_ns || !startup_ns)
                return 1;
        for (size_t i = 0; i < n; i++) {
                if (one(target, &exec_ns[ok], &main_ns[ok], &startup_ns[ok], &polls) < 0)
                        misses++;
                else {
                        before_main += polls == 0;
                        ok++;
                }
        }
        printf("runs %zu, protected %zu (%zu of them already at main()'s first look), missed (not within 5 s) %zu\n",
               n, ok, before_main, misses);
        if (ok > 0) {
                report("before exec -> protected seen", exec_ns, ok);
                report("target's main() -> protected seen", main_ns, ok);
                report("before exec -> main() (baseline)", startup_ns, ok);
        }
        free(exec_ns);
        free(main_ns);
        free(startup_ns);
        return misses > 0 ? 1 : 0;
}

int main(int argc, char *argv[]) {
        if (argc == 3 && strcmp(argv[1], "target") == 0)
                return run_target(strtoull(argv[2], NULL, 10));
        if (argc == 4 && strcmp(argv[1], "run") == 0)
                return run(strtoul(argv[2], NULL, 10) ?: 1, argv[3]);
        fprintf(stderr, "usage: oombench-rules run N TARGET\n");
        return 2;
}
