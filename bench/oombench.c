/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The timing loops of the benchmarks (bench/run.sh drives them). Each verb
 * runs one kind of round trip COUNT times (or until --seconds are up, at
 * least 5 times), after a few warm-up rounds, and prints one line of
 * key=value pairs for the script:
 *
 *   n=200 p50_us=123.4 p99_us=456.7 mean_us=130.2 per_s=7680.1
 *
 * Verbs (every one acts on one victim process, --pid, that starts in
 * --orig with oom_score_adj --orig-adj; the daemon, where one is involved,
 * runs with OOMScoreAdjust=--adj):
 *
 *   raw         the kernel floor, in-process: mkdir the scope, memory.min
 *               where the file exists, cgroup.procs, oom_score_adj, and back
 *               (cgroup.procs, oom_score_adj, rmdir)
 *   noop        a D-Bus round trip to the daemon that changes nothing
 *               (--method ping: org.freedesktop.DBus.Peer.Ping, answered by
 *               sd-bus; --method get: the Version property, through the vtable)
 *   dbus-pair   Protect(u) + Unprotect(u) over D-Bus (sd-bus, one connection)
 *   protect     Protect(u) alone; the Unprotect after it is not measured
 *   ctl-pair    "setprotection PID 1" + "setprotection PID 0" on ctl.sock
 *   shell-pair  the shell way, one fork/exec per step: mkdir, sh -c 'echo PID
 *               > cgroup.procs', choom -p PID -n ADJ, and back
 *   list        ListProtected() (also prints entries=)
 *   status-read open + read the whole compat status file (also prints bytes=)
 *   status-fresh  Protect over D-Bus, then how long until status lists the
 *               pid (0 when it already does as the reply arrives); Unprotect
 *   burst       --pids FILE ("PID ..." lines): one Protect per pid sent at
 *               once on one connection (pipelined), then one Unprotect each;
 *               how long each burst takes (bench/run.sh counts the status
 *               rewrites meanwhile with strace: inotify merges the renames)
 *   hog         no daemon, no victim: memory pressure for bench/vm/91-bench-pressure.sh. Takes
 *               anonymous memory, locked, in 4 MiB steps until MemAvailable is down to --margin-mb
 *               (or memory PSI "full avg10" reaches --max-full %, the guard against a livelock),
 *               prints "held_mb=N avail_mb=N full_avg10=X locked=yes|no" once there; then, with
 *               --stream FILE, reads FILE over and over, page cache that pushes every unlocked file
 *               page out, until SIGTERM or SIGINT, and prints "streamed_mb=N mb_per_s=X"
 *
 * --mlock: the bench locks its own memory first, so that under pressure its own page faults are not
 * in the figures (the daemon's and dbus-daemon's are).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "oomprotect/protocol.h"

extern char **environ;

#define WARMUP 3
#define MIN_ROUNDS 5

typedef struct Options {
        const char *verb;
        const char *root;   /* the cgroup2 mount */
        const char *parent; /* where the raw and shell scopes go, relative to root */
        const char *orig;   /* the victim's cgroup, relative to root */
        const char *socket; /* ctl.sock */
        const char *status; /* the compat status file */
        const char *method; /* noop: ping or get */
        const char *pids;   /* burst: a file of "PID ..." lines */
        pid_t pid;
        int adj, orig_adj;
        unsigned count;
        double seconds;
        unsigned gap_us; /* a pause between rounds, not measured */
        unsigned margin_mb; /* hog: MemAvailable to leave */
        double max_full;    /* hog: stop growing at this memory PSI full avg10 (%) */
        const char *stream; /* hog: the file read over and over once the memory is held */
        bool mlock;
} Options;

typedef int (*RoundFn)(const Options *o, void *ctx);

static sd_bus *bus;

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000U + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample that at least q of the samples do not exceed. */
static double percentile_us(const uint64_t *sorted, size_t n, double q) {
        size_t rank = (size_t) ceil(q * (double) n);

        if (rank < 1)
                rank = 1;
        return (double) sorted[MIN(rank, n) - 1] / 1000.0;
}

/*
 * Runs fn WARMUP times unmeasured, then up to o->count times (at least MIN_ROUNDS, at most o->seconds);
 * before, if set, runs ahead of every round, untimed.
 */
static int measure_with(const Options *o, RoundFn before, RoundFn fn, void *ctx, const char *extra) {
        _cleanup_free_ uint64_t *samples = calloc(MAX(o->count, 1), sizeof(uint64_t));
        uint64_t begin, deadline, total = 0;
        size_t n = 0;
        int r;

        if (!samples)
                return -ENOMEM;
        for (int i = 0; i < WARMUP; i++) {
                r = before ? before(o, ctx) : 0;
                if (r >= 0)
                        r = fn(o, ctx);
                if (r < 0)
                        return r;
        }
        begin = now_ns();
        deadline = begin + (uint64_t) (o->seconds * 1e9);
        while (n < o->count && (n < MIN_ROUNDS || now_ns() < deadline)) {
                r = before ? before(o, ctx) : 0;
                if (r < 0)
                        return r;
                uint64_t t = now_ns();
                r = fn(o, ctx);
                if (r < 0)
                        return r;
                samples[n] = now_ns() - t;
                total += samples[n++];
                if (o->gap_us > 0)
                        usleep(o->gap_us);
        }
        qsort(samples, n, sizeof(uint64_t), cmp_u64);
        printf("n=%zu p50_us=%.1f p99_us=%.1f mean_us=%.1f per_s=%.1f%s%s\n", n, percentile_us(samples, n, 0.50),
               percentile_us(samples, n, 0.99), (double) total / (double) n / 1000.0,
               (double) n * 1e9 / (double) total, extra ? " " : "", strempty(extra));
        return 0;
}

static int measure(const Options *o, RoundFn fn, void *ctx, const char *extra) {
        return measure_with(o, NULL, fn, ctx, extra);
}

/* ---- the kernel floor ---- */

static int write_at(int dirfd, const char *name, const char *s) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
        size_t len = strlen(s);

        if (fd < 0)
                return -errno;
        if (write(fd, s, len) != (ssize_t) len)
                return -errno;
        return 0;
}

typedef struct RawCtx {
        int rootfd;
        char scope[512], procs[600], min[600], orig_procs[600], adj_path[64];
        char pid[16], adj[16], orig_adj[16];
        bool has_memory_min;
} RawCtx;

static int raw_round(const Options *o, void *userdata) {
        RawCtx *c = userdata;
        int r;

        if (mkdirat(c->rootfd, c->scope, 0755) < 0)
                return -errno;
        if (c->has_memory_min) {
                r = write_at(c->rootfd, c->min, "0");
                if (r < 0)
                        return r;
        }
        r = write_at(c->rootfd, c->procs, c->pid);
        if (r < 0)
                return r;
        r = write_at(AT_FDCWD, c->adj_path, c->adj);
        if (r < 0)
                return r;
        r = write_at(c->rootfd, c->orig_procs, c->pid);
        if (r < 0)
                return r;
        r = write_at(AT_FDCWD, c->adj_path, c->orig_adj);
        if (r < 0)
                return r;
        if (unlinkat(c->rootfd, c->scope, AT_REMOVEDIR) < 0)
                return -errno;
        return 0;
}

static int verb_raw(const Options *o) {
        RawCtx c = {};
        struct stat st;
        char extra[64];
        int r;

        c.rootfd = open(o->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c.rootfd < 0)
                return -errno;
        snprintf(c.scope, sizeof(c.scope), "%s/oombench-raw-%d.scope", o->parent, (int) o->pid);
        snprintf(c.procs, sizeof(c.procs), "%s/cgroup.procs", c.scope);
        snprintf(c.min, sizeof(c.min), "%s/memory.min", c.scope);
        snprintf(c.orig_procs, sizeof(c.orig_procs), "%s/cgroup.procs", o->orig);
        snprintf(c.adj_path, sizeof(c.adj_path), "/proc/%d/oom_score_adj", (int) o->pid);
        snprintf(c.pid, sizeof(c.pid), "%d", (int) o->pid);
        snprintf(c.adj, sizeof(c.adj), "%d", o->adj);
        snprintf(c.orig_adj, sizeof(c.orig_adj), "%d", o->orig_adj);
        /* memory.min exists in a new child only where the parent delegates the memory controller. */
        if (mkdirat(c.rootfd, c.scope, 0755) < 0)
                return -errno;
        c.has_memory_min = fstatat(c.rootfd, c.min, &st, 0) == 0;
        (void) unlinkat(c.rootfd, c.scope, AT_REMOVEDIR);
        snprintf(extra, sizeof(extra), "memory_min=%s", c.has_memory_min ? "yes" : "no");
        r = measure(o, raw_round, &c, extra);
        safe_close(c.rootfd);
        return r;
}

/* ---- D-Bus ---- */

static int call_manager(const char *method, sd_bus_message **ret, const char *types, ...) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                           OOMPROTECT_MANAGER_INTERFACE, method);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0)
                fprintf(stderr, "oombench: %s failed: %s\n", method, e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        sd_bus_message_unref(m);
        if (ret)
                *ret = reply;
        else
                sd_bus_message_unref(reply);
        return r;
}

static int noop_round(const Options *o, void *ctx) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r;

        if (streq(o->method, "ping"))
                r = sd_bus_call_method(bus, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH, "org.freedesktop.DBus.Peer",
                                       "Ping", &e, &reply, "");
        else
                r = sd_bus_get_property(bus, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                        OOMPROTECT_MANAGER_INTERFACE, "Version", &e, &reply, "s");
        if (r < 0)
                fprintf(stderr, "oombench: %s failed: %s\n", o->method, e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        return r;
}

static int dbus_pair_round(const Options *o, void *ctx) {
        int r;

        r = call_manager("Protect", NULL, "u", (uint32_t) o->pid);
        if (r < 0)
                return r;
        return call_manager("Unprotect", NULL, "u", (uint32_t) o->pid);
}

/* The Protect is timed; the Unprotect that undoes the one before runs ahead of it, untimed. */
static int unprotect_if_armed(const Options *o, void *ctx) {
        bool *armed = ctx;

        if (!*armed)
                return 0;
        *armed = false;
        return call_manager("Unprotect", NULL, "u", (uint32_t) o->pid);
}

static int protect_round(const Options *o, void *ctx) {
        bool *armed = ctx;
        int r;

        r = call_manager("Protect", NULL, "u", (uint32_t) o->pid);
        *armed = r >= 0;
        return r;
}

static int list_round(const Options *o, void *ctx) {
        sd_bus_message *reply = NULL;
        unsigned *entries = ctx;
        int r;

        r = call_manager("ListProtected", &reply, "");
        if (r < 0)
                return r;
        *entries = 0;
        r = sd_bus_message_enter_container(reply, 'a', "(usssiittss)");
        while (r >= 0 && (r = sd_bus_message_skip(reply, "(usssiittss)")) > 0)
                (*entries)++;
        sd_bus_message_unref(reply);
        return r < 0 ? r : 0;
}

static int verb_noop(const Options *o) {
        return measure(o, noop_round, NULL, NULL);
}

static int verb_dbus_pair(const Options *o) {
        return measure(o, dbus_pair_round, NULL, NULL);
}

static int verb_protect(const Options *o) {
        bool armed = false;
        int r;

        r = measure_with(o, unprotect_if_armed, protect_round, &armed, NULL);
        if (r >= 0)
                r = unprotect_if_armed(o, &armed);
        return r;
}

static int verb_list(const Options *o) {
        unsigned entries = 0;
        char extra[64];
        int r;

        /* The count is printed after the run: measure() takes the extra text first, so run once to know it. */
        r = list_round(o, &entries);
        if (r < 0)
                return r;
        snprintf(extra, sizeof(extra), "entries=%u", entries);
        return measure(o, list_round, &entries, extra);
}

/* ---- ctl.sock ---- */

static int ctl_command(int fd, const char *line) {
        char reply[512];
        size_t len = strlen(line), got = 0;

        if (write(fd, line, len) != (ssize_t) len)
                return -errno;
        while (got < sizeof(reply) - 1) {
                ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);
                if (n <= 0)
                        return n < 0 ? -errno : -ECONNRESET;
                got += (size_t) n;
                if (reply[got - 1] == '\n')
                        break;
        }
        reply[got] = '\0';
        if (!strneq(reply, "OK\n", 3)) {
                fprintf(stderr, "oombench: ctl.sock answered %s", reply);
                return -EIO;
        }
        return 0;
}

typedef struct CtlCtx {
        int fd;
        char on[64], off[64];
} CtlCtx;

static int ctl_pair_round(const Options *o, void *userdata) {
        CtlCtx *c = userdata;
        int r;

        r = ctl_command(c->fd, c->on);
        if (r < 0)
                return r;
        return ctl_command(c->fd, c->off);
}

static int verb_ctl_pair(const Options *o) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        CtlCtx c = {};
        int r;

        if (!o->socket || strlen(o->socket) >= sizeof(sa.sun_path))
                return -EINVAL;
        strcpy(sa.sun_path, o->socket);
        c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0)
                return -errno;
        if (connect(c.fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = -errno;
                safe_close(c.fd);
                return r;
        }
        snprintf(c.on, sizeof(c.on), OOMPROTECT_CTL_VERB " %d 1\n", (int) o->pid);
        snprintf(c.off, sizeof(c.off), OOMPROTECT_CTL_VERB " %d 0\n", (int) o->pid);
        r = measure(o, ctl_pair_round, &c, NULL);
        safe_close(c.fd);
        return r;
}

/* ---- the shell way ---- */

/* Spawns argv with stdout on /dev/null (choom tells what it changed) and waits: one fork/exec. */
static int run(const char *const *argv) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int status, r;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        r = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        if (waitpid(pid, &status, 0) != pid)
                return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "oombench: %s failed\n", argv[0]);
                return -EIO;
        }
        return 0;
}

typedef struct ShellCtx {
        char scope[600], to_scope[700], to_orig[700], pid[16], adj[16], orig_adj[16];
} ShellCtx;

static int shell_pair_round(const Options *o, void *userdata) {
        ShellCtx *c = userdata;
        const char *const steps[][7] = {
                { "/bin/mkdir", c->scope, NULL },
                { "/bin/sh", "-c", c->to_scope, NULL },
                { "/usr/bin/choom", "-p", c->pid, "-n", c->adj, NULL },
                { "/bin/sh", "-c", c->to_orig, NULL },
                { "/usr/bin/choom", "-p", c->pid, "-n", c->orig_adj, NULL },
                { "/bin/rmdir", c->scope, NULL },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                r = run(steps[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int verb_shell_pair(const Options *o) {
        ShellCtx c = {};

        snprintf(c.scope, sizeof(c.scope), "%s/%s/oombench-shell-%d.scope", o->root, o->parent, (int) o->pid);
        snprintf(c.to_scope, sizeof(c.to_scope), "echo %d > %s/cgroup.procs", (int) o->pid, c.scope);
        snprintf(c.to_orig, sizeof(c.to_orig), "echo %d > %s/%s/cgroup.procs", (int) o->pid, o->root, o->orig);
        snprintf(c.pid, sizeof(c.pid), "%d", (int) o->pid);
        snprintf(c.adj, sizeof(c.adj), "%d", o->adj);
        snprintf(c.orig_adj, sizeof(c.orig_adj), "%d", o->orig_adj);
        return measure(o, shell_pair_round, &c, NULL);
}

/* ---- the status file ---- */

static int read_status(const char *path, size_t *ret_len, pid_t find, bool *ret_found) {
        static char buf[4 << 20];
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t len = 0;
        ssize_t n;

        if (fd < 0)
                return -errno;
        while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t) n;
        if (n < 0)
                return -errno;
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        if (ret_found) {
                char needle[32];
                snprintf(needle, sizeof(needle), "\n%-10d ", (int) find);
                *ret_found = strstr(buf, needle) != NULL;
        }
        return 0;
}

static int status_read_round(const Options *o, void *ctx) {
        return read_status(o->status, ctx, 0, NULL);
}

static int verb_status_read(const Options *o) {
        size_t len = 0;
        char extra[64];
        int r;

        r = read_status(o->status, &len, 0, NULL);
        if (r < 0)
                return r;
        snprintf(extra, sizeof(extra), "bytes=%zu", len);
        return measure(o, status_read_round, &len, extra);
}

typedef struct FreshCtx {
        uint64_t worst_ns, sum_ns;
        unsigned late, rounds;
} FreshCtx;

/* Measured: the Protect call plus the wait until status lists the pid. Unprotect is outside the figure. */
static int status_fresh_round(const Options *o, void *userdata) {
        FreshCtx *c = userdata;
        uint64_t replied, waited;
        bool found = false;
        int r;

        r = call_manager("Protect", NULL, "u", (uint32_t) o->pid);
        if (r < 0)
                return r;
        replied = now_ns();
        for (int i = 0; i < 100000 && !found; i++) {
                r = read_status(o->status, NULL, o->pid, &found);
                if (r < 0)
                        return r;
        }
        waited = now_ns() - replied;
        c->rounds++;
        c->sum_ns += waited;
        c->late += waited > 1000000; /* more than 1 ms after the reply */
        c->worst_ns = MAX(c->worst_ns, waited);
        return call_manager("Unprotect", NULL, "u", (uint32_t) o->pid);
}

static int verb_status_fresh(const Options *o) {
        FreshCtx c = {};
        int r;

        r = measure(o, status_fresh_round, &c, NULL);
        if (r < 0)
                return r;
        printf("fresh_mean_us=%.1f fresh_max_us=%.1f late_over_1ms=%u\n",
               (double) c.sum_ns / (double) MAX(c.rounds, 1u) / 1000.0, (double) c.worst_ns / 1000.0, c.late);
        return 0;
}

/* ---- a burst ---- */

static int on_burst_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        unsigned *pending = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (e)
                fprintf(stderr, "oombench: burst call failed: %s\n", e->message ? e->message : e->name);
        (*pending)--;
        return 0;
}

/* Sends method(pid) for every pid at once, then waits for every reply; returns the time taken in ns. */
static int64_t burst_calls(const char *method, const pid_t *pids, size_t n) {
        unsigned pending = 0;
        uint64_t t = now_ns();
        int r;

        for (size_t i = 0; i < n; i++) {
                r = sd_bus_call_method_async(bus, NULL, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                             OOMPROTECT_MANAGER_INTERFACE, method, on_burst_reply, &pending, "u",
                                             (uint32_t) pids[i]);
                if (r < 0)
                        return r;
                pending++;
        }
        while (pending > 0) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r == 0 && (r = sd_bus_wait(bus, UINT64_MAX)) < 0)
                        return r;
        }
        return (int64_t) (now_ns() - t);
}

static int verb_burst(const Options *o) {
        pid_t pids[4096];
        int64_t on, off;
        size_t n = 0;
        FILE *f;
        int pid;

        if (!o->pids || !(f = fopen(o->pids, "re")))
                return -EINVAL;
        while (n < ELEMENTSOF(pids) && fscanf(f, "%d%*[^\n]", &pid) == 1)
                pids[n++] = pid;
        fclose(f);
        on = burst_calls("Protect", pids, n);
        if (on < 0)
                return (int) on;
        off = burst_calls("Unprotect", pids, n);
        if (off < 0)
                return (int) off;
        printf("n=%zu protect_ms=%.1f unprotect_ms=%.1f\n", n, (double) on / 1e6, (double) off / 1e6);
        return 0;
}

/* ---- memory pressure ---- */

#define HOG_STEP (4U << 20)

static volatile sig_atomic_t hog_stop;

static void hog_on_signal(int sig) {
        hog_stop = sig;
}

/* A "Key:   N kB" line of /proc/meminfo in MiB, or -1. */
static long meminfo_mb(const char *key) {
        FILE *f = fopen("/proc/meminfo", "re");
        char line[256];
        size_t len = strlen(key);
        long v = -1;

        if (!f)
                return -1;
        while (v < 0 && fgets(line, sizeof(line), f))
                if (strncmp(line, key, len) == 0 && line[len] == ':')
                        v = strtol(line + len + 1, NULL, 10) / 1024;
        fclose(f);
        return v;
}

/* avg10 of the "full" line of /proc/pressure/memory (the share of time all tasks waited on memory), or 0. */
static double psi_full_avg10(void) {
        FILE *f = fopen("/proc/pressure/memory", "re");
        char line[256];
        double v = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "full avg10=%lf", &v) == 1)
                        break;
        fclose(f);
        return v;
}

/* Reads path from the start again at its end until a signal; returns the MiB read. */
static int hog_stream(const char *path, uint64_t *ret_bytes) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = malloc(1U << 20);
        uint64_t total = 0;

        if (fd < 0)
                return -errno;
        if (!buf)
                return -ENOMEM;
        while (!hog_stop) {
                ssize_t k = read(fd, buf, 1U << 20);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0 && lseek(fd, 0, SEEK_SET) < 0)
                        return -errno;
                total += (uint64_t) k;
        }
        *ret_bytes = total;
        return 0;
}

static int verb_hog(const Options *o) {
        struct sigaction sa = { .sa_handler = hog_on_signal }; /* no SA_RESTART: a read ends with EINTR */
        unsigned held = 0;
        bool locked = true;
        long avail;
        uint64_t begin, bytes = 0;
        int r;

        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        while (!hog_stop && (avail = meminfo_mb("MemAvailable")) > (long) o->margin_mb &&
               psi_full_avg10() < o->max_full) {
                char *p = mmap(NULL, HOG_STEP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

                if (p == MAP_FAILED)
                        break;
                memset(p, 0x5a, HOG_STEP); /* not the zero page: real pages */
                if (mlock(p, HOG_STEP) < 0)
                        locked = false; /* still unreclaimable without swap */
                held += HOG_STEP >> 20;
                /* Near the margin, give reclaim time to show in MemAvailable. */
                if (avail < (long) o->margin_mb + 64)
                        usleep(20000);
        }
        printf("held_mb=%u avail_mb=%ld full_avg10=%.2f locked=%s\n", held, meminfo_mb("MemAvailable"),
               psi_full_avg10(), locked ? "yes" : "no");
        fflush(stdout);
        if (!o->stream) {
                while (!hog_stop)
                        pause();
                return 0;
        }
        begin = now_ns();
        r = hog_stream(o->stream, &bytes);
        if (r < 0)
                return r;
        printf("streamed_mb=%" PRIu64 " mb_per_s=%.1f\n", bytes >> 20,
               (double) (bytes >> 20) * 1e9 / (double) MAX(now_ns() - begin, 1U));
        return 0;
}

/* ---- main ---- */

static int parse_args(int argc, char **argv, Options *o) {
        static const struct option options[] = {
                { "root", required_argument, NULL, 'r' },   { "parent", required_argument, NULL, 'P' },
                { "orig", required_argument, NULL, 'o' },   { "socket", required_argument, NULL, 's' },
                { "status", required_argument, NULL, 'S' }, { "method", required_argument, NULL, 'm' },
                { "pid", required_argument, NULL, 'p' },    { "adj", required_argument, NULL, 'a' },
                { "orig-adj", required_argument, NULL, 'A' }, { "count", required_argument, NULL, 'n' },
                { "seconds", required_argument, NULL, 't' }, { "gap-us", required_argument, NULL, 'g' },
                { "pids", required_argument, NULL, 'f' }, { "margin-mb", required_argument, NULL, 'M' },
                { "max-full", required_argument, NULL, 'F' }, { "stream", required_argument, NULL, 'T' },
                { "mlock", no_argument, NULL, 'L' }, {},
        };
        int c;

        *o = (Options) { .method = "ping", .count = 200, .seconds = 5.0, .margin_mb = 32, .max_full = 20.0 };
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'r': o->root = optarg; break;
                case 'P': o->parent = optarg; break;
                case 'o': o->orig = optarg; break;
                case 's': o->socket = optarg; break;
                case 'S': o->status = optarg; break;
                case 'm': o->method = optarg; break;
                case 'p': o->pid = (pid_t) atoi(optarg); break;
                case 'a': o->adj = atoi(optarg); break;
                case 'A': o->orig_adj = atoi(optarg); break;
                case 'n': o->count = (unsigned) strtoul(optarg, NULL, 10); break;
                case 't': o->seconds = strtod(optarg, NULL); break;
                case 'g': o->gap_us = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'f': o->pids = optarg; break;
                case 'M': o->margin_mb = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'F': o->max_full = strtod(optarg, NULL); break;
                case 'T': o->stream = optarg; break;
                case 'L': o->mlock = true; break;
                default: return -EINVAL;
                }
        if (optind != argc - 1)
                return -EINVAL;
        o->verb = argv[optind];
        if (o->count < MIN_ROUNDS)
                o->count = MIN_ROUNDS;
        return 0;
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                int (*fn)(const Options *o);
                bool needs_bus;
        } verbs[] = {
                { "raw", verb_raw, false },
                { "noop", verb_noop, true },
                { "dbus-pair", verb_dbus_pair, true },
                { "protect", verb_protect, true },
                { "ctl-pair", verb_ctl_pair, false },
                { "shell-pair", verb_shell_pair, false },
                { "status-read", verb_status_read, false },
                { "list", verb_list, true },
                { "status-fresh", verb_status_fresh, true },
                { "burst", verb_burst, true },
                { "hog", verb_hog, false },
        };
        Options o;
        int r = -EINVAL;

        if (parse_args(argc, argv, &o) < 0) {
                fprintf(stderr, "usage: oombench [--pid PID --root MOUNT --parent REL --orig REL --adj N "
                                "--orig-adj N --socket PATH --status PATH --method ping|get --count N --seconds S --gap-us N --pids FILE "
                                "--margin-mb N --max-full PCT --stream FILE --mlock] "
                                "raw|noop|dbus-pair|protect|ctl-pair|shell-pair|list|status-read|status-fresh|burst|hog\n");
                return 2;
        }
        if (o.mlock && mlockall(MCL_CURRENT | MCL_FUTURE) < 0) {
                fprintf(stderr, "oombench: cannot lock its own memory: %s\n", strerror(errno));
                return 1;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (!streq(o.verb, verbs[i].name))
                        continue;
                if (verbs[i].needs_bus) {
                        r = sd_bus_open_system(&bus);
                        if (r < 0) {
                                fprintf(stderr, "oombench: cannot connect to the system bus: %s\n", strerror(-r));
                                return 1;
                        }
                }
                r = verbs[i].fn(&o);
        }
        if (r < 0)
                fprintf(stderr, "oombench %s: %s\n", o.verb, strerror(-r));
        sd_bus_flush_close_unref(bus);
        return r < 0;
}
