/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A flood of protect/unprotect from several real clients while one quiet
 * client measures how long the daemon takes to answer it (issue 10, class 7).
 *
 *   flood-helper [--clients N] [--pids N] [--ctl-clients N --socket PATH]
 *                [--seconds S] [--interval-ms MS] [--targets CGROUPDIR]
 *                [--storm PIDFILE]
 *
 * Each of the --clients processes has its own bus connection and --pids
 * sleeping children of its own; it keeps one call outstanding per child at
 * all times (Protect, then Unprotect, then Protect...), so --clients ×
 * --pids calls are always in flight. Each of the --ctl-clients does the
 * same through ctl.sock, all its lines written at once before it reads the
 * replies. Meanwhile the parent, on a connection of its own, calls
 * org.freedesktop.DBus.Peer.Ping every --interval-ms and, every tenth time,
 * Protect + Unprotect of a child of its own, and times each answer.
 * At the end every flooding client unprotects what it still holds. Prints:
 *
 *   ping_n=… ping_p50_ms=… ping_p99_ms=… ping_max_ms=…
 *   quiet_n=… quiet_p50_ms=… quiet_max_ms=… quiet_errors=…
 *   flood_ops=… flood_errors=… flood_ops_per_s=…
 *
 * An error of a flooding call is counted, not fatal (the test asserts on
 * the count); a failure of the bus itself exits 1.
 *
 * --targets: the sleeping children go into this cgroup (so that the test can
 * freeze the clients without them). --storm (test-storm.sh, which SIGKILLs
 * the daemon over and over): nothing is measured; the clients write their
 * children's PIDs to PIDFILE and flood until --seconds are up whatever
 * happens to the daemon: every reply, error or not, moves a child on to the
 * other call, a call that found no daemon is sent again 5 ms later, and a
 * ctl.sock client whose connection broke connects again.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "oomprotect/protocol.h"

typedef struct Options {
        unsigned clients, pids, ctl_clients, interval_ms;
        double seconds;
        const char *socket, *targets, *storm;
} Options;

static const Options *opts;

typedef struct Counts {
        uint64_t ops, errors;
} Counts;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* A child that sleeps until it is killed, in --targets if given (before this returns); it dies with its parent. */
static pid_t spawn_sleeper(void) {
        pid_t pid = fork();

        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                for (;;)
                        pause();
        }
        if (pid > 0 && opts->targets) {
                char path[4096];
                FILE *f;
                snprintf(path, sizeof(path), "%s/cgroup.procs", opts->targets);
                f = fopen(path, "we");
                if (!f || fprintf(f, "%d", (int) pid) < 0 || fclose(f) != 0) {
                        fprintf(stderr, "flood-helper: cannot move %d into %s\n", (int) pid, opts->targets);
                        exit(1);
                }
        }
        if (pid > 0 && opts->storm) {
                FILE *f = fopen(opts->storm, "ae");
                if (f) {
                        fprintf(f, "%d\n", (int) pid);
                        fclose(f);
                }
        }
        return pid;
}

/* In a storm, a call that met no daemon (killed, not back yet). */
static bool no_daemon(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NO_REPLY,
                                      SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_DISCONNECTED);
}

/* ---- a flooding client on the bus ---- */

typedef struct Slot {
        struct Flood *flood;
        pid_t pid;
        bool protected; /* what the last successful call made it */
        bool busy;      /* a call is outstanding */
} Slot;

typedef struct Flood {
        sd_bus *bus;
        Counts counts;
        bool stopping;
} Flood;

static int send_op(Slot *s);

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Slot *s = userdata;

        s->busy = false;
        s->flood->counts.ops++;
        if (sd_bus_message_is_method_error(reply, NULL)) {
                s->flood->counts.errors++;
                if (opts->storm && no_daemon(sd_bus_message_get_error(reply)))
                        usleep(5 * 1000);
                else if (opts->storm)
                        s->protected = !s->protected;
        } else
                s->protected = !s->protected;
        if (!s->flood->stopping || s->protected)
                return send_op(s);
        return 0;
}

static int send_op(Slot *s) {
        int r;

        r = sd_bus_call_method_async(s->flood->bus, NULL, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH,
                                     OOMPROTECT_MANAGER_INTERFACE, s->protected ? "Unprotect" : "Protect", on_reply,
                                     s, "u", (uint32_t) s->pid);
        if (r >= 0)
                s->busy = true;
        return r;
}

static bool any_busy(const Slot *slots, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (slots[i].busy)
                        return true;
        return false;
}

static int run_bus_client(const Options *o, uint64_t deadline, Counts *ret) {
        Flood f = {};
        Slot *slots = calloc(o->pids, sizeof(Slot));
        int r;

        if (!slots)
                return -ENOMEM;
        r = sd_bus_open_system(&f.bus);
        for (unsigned i = 0; r >= 0 && i < o->pids; i++) {
                slots[i] = (Slot) { .flood = &f, .pid = spawn_sleeper() };
                r = send_op(&slots[i]);
        }
        while (r >= 0 && (now_usec() < deadline || any_busy(slots, o->pids))) {
                if (now_usec() >= deadline)
                        f.stopping = true; /* no new Protect; what is protected gets its Unprotect */
                r = sd_bus_process(f.bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(f.bus, 100 * 1000);
        }
        *ret = f.counts;
        sd_bus_flush_close_unref(f.bus);
        free(slots);
        return r < 0 ? r : 0;
}

/* ---- a flooding client on ctl.sock ---- */

static int ctl_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* Reads n reply lines; counts the ERR ones. */
static int ctl_read_replies(int fd, unsigned n, Counts *c) {
        char buf[4096];
        bool line_start = true;

        while (n > 0) {
                ssize_t k = read(fd, buf, sizeof(buf));
                if (k <= 0)
                        return k < 0 ? -errno : -EPIPE;
                for (ssize_t i = 0; i < k; i++) {
                        if (line_start && buf[i] == 'E')
                                c->errors++;
                        line_start = buf[i] == '\n';
                        if (line_start) {
                                c->ops++;
                                n--;
                        }
                }
        }
        return 0;
}

static int run_ctl_client(const Options *o, uint64_t deadline, Counts *ret) {
        size_t size = (size_t) o->pids * 2 * 40;
        char *lines = malloc(size);
        pid_t *pids = calloc(o->pids, sizeof(pid_t));
        Counts c = {};
        int fd, r = 0;

        if (!lines || !pids)
                return -ENOMEM;
        for (unsigned i = 0; i < o->pids; i++)
                pids[i] = spawn_sleeper();
        fd = ctl_connect(o->socket);
        if (fd < 0 && !o->storm)
                return fd;
        while (now_usec() < deadline) {
                if (r < 0 || fd < 0) { /* a storm: the daemon was killed; connect again */
                        if (!o->storm)
                                break;
                        if (fd >= 0)
                                close(fd);
                        usleep(5 * 1000);
                        fd = ctl_connect(o->socket);
                        r = 0;
                        if (fd < 0)
                                continue;
                }
                size_t len = 0;
                for (unsigned i = 0; i < o->pids; i++)
                        len += (size_t) snprintf(lines + len, size - len, "setprotection %d 1\n", (int) pids[i]);
                for (unsigned i = 0; i < o->pids; i++)
                        len += (size_t) snprintf(lines + len, size - len, "setprotection %d 0\n", (int) pids[i]);
                for (size_t done = 0; r >= 0 && done < len;) {
                        /* No SIGPIPE when the daemon is killed meanwhile: it would kill this client and its children. */
                        ssize_t k = send(fd, lines + done, len - done, MSG_NOSIGNAL);
                        if (k < 0)
                                r = -errno;
                        else
                                done += (size_t) k;
                }
                if (r >= 0)
                        r = ctl_read_replies(fd, o->pids * 2, &c);
        }
        if (fd >= 0)
                close(fd);
        if (o->storm)
                r = 0;
        free(lines);
        free(pids);
        *ret = c;
        return r;
}

/* ---- the quiet client, which measures ---- */

typedef struct Samples {
        double *v;
        size_t n, alloc;
} Samples;

static void sample_add(Samples *s, double ms) {
        if (s->n == s->alloc) {
                s->alloc = s->alloc ? s->alloc * 2 : 256;
                s->v = realloc(s->v, s->alloc * sizeof(double));
                if (!s->v)
                        abort();
        }
        s->v[s->n++] = ms;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

static double percentile(Samples *s, double p) {
        size_t i;

        if (s->n == 0)
                return 0;
        qsort(s->v, s->n, sizeof(double), cmp_double);
        i = (size_t) (p * (double) (s->n - 1) + 0.5);
        return s->v[i];
}

/* One timed call; its latency in ms, or a negative errno. */
static int timed_call(sd_bus *bus, const char *iface, const char *method, const char *types, uint32_t pid,
                      double *ret_ms) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t t0 = now_usec();
        int r;

        if (types)
                r = sd_bus_call_method(bus, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH, iface, method, &e, NULL,
                                       types, pid);
        else
                r = sd_bus_call_method(bus, OOMPROTECT_BUS_NAME, OOMPROTECT_OBJECT_PATH, iface, method, &e, NULL,
                                       "");
        *ret_ms = (double) (now_usec() - t0) / 1000.0;
        if (r < 0)
                fprintf(stderr, "flood-helper: %s: %s\n", method, e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        return r;
}

static int measure(const Options *o, uint64_t start, uint64_t deadline, Samples *ping, Samples *quiet,
                   unsigned *quiet_errors) {
        sd_bus *bus = NULL;
        pid_t me = spawn_sleeper();
        double ms;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        while (now_usec() < start)
                usleep(10 * 1000);
        for (unsigned i = 0; now_usec() < deadline; i++) {
                r = timed_call(bus, "org.freedesktop.DBus.Peer", "Ping", NULL, 0, &ms);
                if (r < 0)
                        break;
                sample_add(ping, ms);
                if (i % 10 == 9) {
                        if (timed_call(bus, OOMPROTECT_MANAGER_INTERFACE, "Protect", "u", (uint32_t) me, &ms) < 0)
                                (*quiet_errors)++;
                        sample_add(quiet, ms);
                        if (timed_call(bus, OOMPROTECT_MANAGER_INTERFACE, "Unprotect", "u", (uint32_t) me, &ms) < 0)
                                (*quiet_errors)++;
                        sample_add(quiet, ms);
                }
                usleep(o->interval_ms * 1000);
        }
        sd_bus_flush_close_unref(bus);
        kill(me, SIGKILL);
        return r < 0 ? r : 0;
}

/* ---- main ---- */

static int parse_options(int argc, char **argv, Options *o) {
        static const struct option longopts[] = {
                { "clients", required_argument, NULL, 'c' },   { "pids", required_argument, NULL, 'p' },
                { "ctl-clients", required_argument, NULL, 'C' }, { "socket", required_argument, NULL, 'S' },
                { "seconds", required_argument, NULL, 's' },   { "interval-ms", required_argument, NULL, 'i' },
                { "targets", required_argument, NULL, 't' },   { "storm", required_argument, NULL, 'x' },
                {},
        };
        int c;

        *o = (Options) { .clients = 8, .pids = 16, .seconds = 5, .interval_ms = 10 };
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0)
                switch (c) {
                case 'c':
                        o->clients = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'p':
                        o->pids = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'C':
                        o->ctl_clients = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'S':
                        o->socket = optarg;
                        break;
                case 's':
                        o->seconds = strtod(optarg, NULL);
                        break;
                case 'i':
                        o->interval_ms = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 't':
                        o->targets = optarg;
                        break;
                case 'x':
                        o->storm = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (o->pids == 0 || o->seconds <= 0 || (o->ctl_clients > 0 && !o->socket))
                return -EINVAL;
        return 0;
}

/* Forks the flooding clients; each writes its Counts to fd and exits. */
static int spawn_clients(const Options *o, uint64_t deadline, int fd, pid_t *pids, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        return -errno;
                if (pids[i] == 0) {
                        Counts c = {};
                        int r = i < o->clients ? run_bus_client(o, deadline, &c) : run_ctl_client(o, deadline, &c);
                        if (r < 0)
                                fprintf(stderr, "flood-helper: client %u: %s\n", i, strerror(-r));
                        (void) !write(fd, &c, sizeof(c));
                        _exit(r < 0 ? 1 : 0);
                }
        }
        return 0;
}

int main(int argc, char **argv) {
        Samples ping = {}, quiet = {};
        unsigned quiet_errors = 0, n, failed = 0;
        Counts total = {}, c;
        uint64_t start, deadline;
        Options o;
        pid_t *pids;
        int p[2], r, status;

        if (parse_options(argc, argv, &o) < 0) {
                fprintf(stderr, "usage: flood-helper [--clients N] [--pids N] [--ctl-clients N --socket PATH] "
                                "[--seconds S] [--interval-ms MS] [--targets CGROUPDIR] [--storm PIDFILE]\n");
                return 2;
        }
        opts = &o;
        n = o.clients + o.ctl_clients;
        pids = calloc(n > 0 ? n : 1, sizeof(pid_t));
        if (!pids || pipe(p) < 0)
                return 1;
        start = now_usec() + 300 * 1000; /* the flood is under way before the first Ping */
        deadline = start + (uint64_t) (o.seconds * 1e6);
        r = spawn_clients(&o, deadline, p[1], pids, n);
        close(p[1]);
        if (r >= 0 && !o.storm)
                r = measure(&o, start, deadline, &ping, &quiet, &quiet_errors);
        if (r < 0)
                fprintf(stderr, "flood-helper: measuring: %s\n", strerror(-r));
        while (read(p[0], &c, sizeof(c)) == (ssize_t) sizeof(c)) {
                total.ops += c.ops;
                total.errors += c.errors;
        }
        for (unsigned i = 0; i < n; i++)
                if (pids[i] > 0 && (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
                                    WEXITSTATUS(status) != 0))
                        failed++;
        printf("ping_n=%zu ping_p50_ms=%.2f ping_p99_ms=%.2f ping_max_ms=%.2f\n", ping.n, percentile(&ping, 0.5),
               percentile(&ping, 0.99), percentile(&ping, 1.0));
        printf("quiet_n=%zu quiet_p50_ms=%.2f quiet_max_ms=%.2f quiet_errors=%u\n", quiet.n,
               percentile(&quiet, 0.5), percentile(&quiet, 1.0), quiet_errors);
        printf("flood_ops=%" PRIu64 " flood_errors=%" PRIu64 " flood_ops_per_s=%.0f clients_failed=%u\n", total.ops,
               total.errors, (double) total.ops / o.seconds, failed);
        free(ping.v);
        free(quiet.v);
        free(pids);
        return r < 0 || failed > 0 ? 1 : 0;
}
